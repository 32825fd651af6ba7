//! The flag page's Usage section: checks per day for the last 30 days in the working
//! environment (enabled and disabled stacked), the companies the flag reached per day, markers
//! where its targeting or stage changed, and when each environment last checked it. Drawn as
//! server-rendered SVG, so it needs no JavaScript; bars and markers carry `<title>` tooltips.

use leptos::prelude::*;

use super::format::{date, datetime};
use crate::model::{FlagUsage, UsageDay};

/// The chart's drawing area, in SVG units (it scales to the card's width).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 140.0;

/// The largest value a bar or the line reaches, for the scale (at least 1).
fn ceiling(days: &[UsageDay], value: impl Fn(&UsageDay) -> i64) -> i64 {
    days.iter().map(value).max().unwrap_or(0).max(1)
}

#[component]
pub fn UsageCard(usage: FlagUsage, environment: String) -> impl IntoView {
    let Some(shown) = usage
        .environments
        .iter()
        .find(|e| e.environment == environment)
        .cloned()
    else {
        return view! { <section class="card" id="usage"><h2>"Usage"</h2></section> }.into_any();
    };
    let days = shown.days.clone();
    let checks = shown.checks();
    let last_checked: Vec<(String, String)> = usage
        .environments
        .iter()
        .map(|e| {
            let when = e.last_checked.map_or_else(|| "never".to_string(), datetime);
            (e.name.clone(), when)
        })
        .collect();
    let last_checked_view = view! {
        <ul class="plain usage-last">
            {last_checked.into_iter().map(|(name, when)| view! { <li><strong>{name}</strong> ": last checked " {when}</li> }).collect_view()}
        </ul>
    };
    if checks == 0 && shown.companies == 0 {
        return view! {
            <section class="card" id="usage">
                <h2>"Usage in " {shown.name.clone()} <span class="muted">" · last " {usage.days} " days"</span></h2>
                <p class="empty">
                    "Nothing checked this flag here in the last " {usage.days} " days. Usage arrives when an application "
                    "evaluates it through the evaluation API (" <code>"/features/evaluated"</code> ", OpenFeature's OFREP) "
                    "or when a Reflag SDK reports its checks (" <code>"/features/events"</code> "); counts show here within seconds."
                </p>
                {last_checked_view}
            </section>
        }
        .into_any();
    }
    let n = days.len().max(1) as f64;
    let slot = WIDTH / n;
    let top = ceiling(&days, UsageDay::checks);
    let top_companies = ceiling(&days, |d| d.companies);
    let y = |value: i64, scale: i64| HEIGHT - (value as f64 / scale as f64) * HEIGHT;
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let x = i as f64 * slot + slot * 0.15;
            let w = slot * 0.7;
            let enabled_top = y(day.enabled, top);
            let all_top = y(day.checks(), top);
            let title = format!(
                "{}: {} checks, {} enabled, {} disabled, {} companies",
                date(day.day),
                day.checks(),
                day.enabled,
                day.disabled,
                day.companies
            );
            view! {
                <g>
                    <title>{title}</title>
                    <rect class="bar-off" x=format!("{x:.1}") y=format!("{all_top:.1}") width=format!("{w:.1}") height=format!("{:.1}", enabled_top - all_top)/>
                    <rect class="bar-on" x=format!("{x:.1}") y=format!("{enabled_top:.1}") width=format!("{w:.1}") height=format!("{:.1}", HEIGHT - enabled_top)/>
                </g>
            }
        })
        .collect_view();
    let line: Vec<String> = days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            format!(
                "{:.1},{:.1}",
                (i as f64 + 0.5) * slot,
                y(day.companies, top_companies)
            )
        })
        .collect();
    let span = (n * 86_400_000.0) as i64;
    let markers = usage
        .markers
        .iter()
        .filter(|m| m.environment.as_deref().is_none_or(|e| e == environment))
        .map(|m| {
            let x = ((m.at - usage.since) as f64 / span as f64 * WIDTH).clamp(0.0, WIDTH);
            let title = format!("{}: {}", datetime(m.at), m.label);
            view! {
                <g class="marker">
                    <title>{title}</title>
                    <line x1=format!("{x:.1}") x2=format!("{x:.1}") y1="0" y2=format!("{HEIGHT}")/>
                </g>
            }
        })
        .collect_view();
    let first = days.first().map(|d| date(d.day)).unwrap_or_default();
    let last = days.last().map(|d| date(d.day)).unwrap_or_default();
    let summary = format!(
        "{} checks in {} days; {} companies and {} users got it",
        checks, usage.days, shown.companies, shown.users
    );
    let label = format!(
        "Checks per day in {} from {first} to {last}: {summary}",
        shown.name
    );
    view! {
        <section class="card" id="usage">
            <h2>"Usage in " {shown.name.clone()} <span class="muted">" · last " {usage.days} " days"</span></h2>
            <p>{summary}</p>
            <figure class="usage-chart">
                <div class="axis" aria-hidden="true">
                    <span>{format!("{top} checks")}</span>
                    <span>{format!("{top_companies} companies")}</span>
                </div>
                <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=label preserveAspectRatio="none">
                    {bars}
                    <polyline class="companies" points=line.join(" ")/>
                    {markers}
                </svg>
                <figcaption class="legend">
                    <span class="key on">"enabled"</span>
                    <span class="key off">"disabled"</span>
                    <span class="key line">"companies that got it"</span>
                    <span class="key mark">"targeting or stage changed"</span>
                    <span class="muted">{first} " – " {last}</span>
                </figcaption>
            </figure>
            {last_checked_view}
        </section>
    }
    .into_any()
}
