//! Differential test against the real reference, `@reflag/flag-evaluation` 1.0.1 under node.
//!
//! Generates a few thousand random rule lists and contexts from a fixed seed (random trees over a
//! pool of fields, every operator, awkward numbers, V8 date forms, unicode, JS key-order traps),
//! runs them through `tests/differential/evaluate.mjs` in one node process and through
//! `eval::cli::run_evaluate`, and compares the outputs entry by entry (object order included).
//! Skipped, loudly, when `node` or the npm package is not installed (`npm ci` in that directory;
//! the Makefile does it). `GATEHOUSE_DIFF_DIR` overrides the directory; `GATEHOUSE_DIFF_CASES`
//! the number of cases.

use gatehouse::eval::cli::run_evaluate;
use gatehouse::eval::jsdate::parse_js_date;
use gatehouse::model::JsValue;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// splitmix64: tiny, deterministic, good enough to drive generators.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const FIELDS: &[&str] = &[
    "company.id",
    "company.name",
    "company.plan",
    "company.employees",
    "company.createdAt",
    "company.tags.0",
    "company.tags",
    "company.meta",
    "user.id",
    "user.email",
    "user.age",
    "user.beta",
    "user.signup",
    "other.eventId",
    "other.score",
    "0",
    "1",
    "a.b",
    "a.b.c",
    "x",
    "constructorx",
    "",
];

const OPERATORS: &[&str] = &[
    "IS",
    "IS_NOT",
    "ANY_OF",
    "NOT_ANY_OF",
    "CONTAINS",
    "NOT_CONTAINS",
    "GT",
    "LT",
    "AFTER",
    "BEFORE",
    "DATE_AFTER",
    "DATE_BEFORE",
    "SET",
    "NOT_SET",
    "IS_TRUE",
    "IS_FALSE",
    "REGEX",
];

const STRINGS: &[&str] = &[
    "acme",
    "Acme",
    "globex",
    "initech",
    "",
    " ",
    "true",
    "false",
    "True",
    "0",
    "1",
    "2",
    "10",
    "-1",
    " 12 ",
    "0x10",
    "0b11",
    "0o7",
    "1e3",
    "1_000",
    "12px",
    "Infinity",
    "-Infinity",
    ".5",
    "5.",
    "1e",
    "NaN",
    "3.14",
    "ÄBC",
    "äb",
    "straße",
    "STRASSE",
    "ΣΑΣ",
    "σας",
    "日本",
    "😀",
    "a.b",
    "user@example.com",
    "EXAMPLE",
    "null",
    "undefined",
];

const DATES: &[&str] = &[
    "2024-01-10",
    "2024-01-08T12:00:00Z",
    "2024-01-10T00:00:00",
    "2024",
    "2024-06",
    "01/15/2024",
    "2024/01/15",
    "Jan 15 2024",
    "15 Jan 2024 10:00 GMT",
    "Wed, 10 Jan 2024 01:00:00 +0100",
    "2024-01-10 10:00",
    "not a date",
    "2024-13-01",
    "2024-02-31",
    "1704844800000",
    "+002024-01-10",
    "-000000-01-01",
    "12:00 2024-01-10",
    "January 10, 2024 10:00 PM",
    "2024-01-09T24:00",
    "2023-12-31T23:59:59.999Z",
    "1.5.2024",
    "hello 1",
];

fn random_date(rng: &mut Rng) -> String {
    if rng.chance(50) {
        return rng.pick(DATES).to_string();
    }
    let y = 1990 + rng.below(50);
    let m = 1 + rng.below(13);
    let d = 1 + rng.below(32);
    let h = rng.below(26);
    let mi = rng.below(61);
    let s = rng.below(61);
    let months = [
        "Jan", "feb", "MAR", "April", "may", "Jun", "July", "aug", "Sept", "oct", "Nov", "December",
    ];
    match rng.below(9) {
        0 => format!("{y}-{m:02}-{d:02}"),
        1 => format!("{y}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        2 => format!(
            "{y}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}+{:02}:{:02}",
            rng.below(1000),
            rng.below(25),
            rng.below(60)
        ),
        3 => format!("{m}/{d}/{y}"),
        4 => format!("{} {d} {y} {h}:{mi}", rng.pick(&months)),
        5 => format!(
            "{d} {} {y} {h}:{mi}:{s} GMT{}{:04}",
            rng.pick(&months),
            rng.pick(&["+", "-"]),
            rng.below(2400)
        ),
        6 => format!(
            "{y}/{m}/{d} {h}:{mi} {}",
            rng.pick(&["AM", "PM", "pm", "UTC", "PST", "Z", ""])
        ),
        7 => format!("{y}-{m}-{d} {h}:{mi}"),
        _ => format!(
            "{}-{m:02}-{d:02}",
            rng.pick(&["+010000", "-000001", "+002024", "02024", "24"])
        ),
    }
}

fn random_string(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=1 => random_date(rng),
        2 => format!("company-{}", rng.below(2000)),
        3 => (rng.next() % 200).to_string(),
        _ => rng.pick(STRINGS).to_string(),
    }
}

fn random_number(rng: &mut Rng) -> f64 {
    match rng.below(8) {
        0 => f64::from_bits(rng.next()),
        1 => rng.pick(&[
            0.1,
            1e21,
            1e-7,
            -0.0,
            5e-324,
            9007199254740993.0,
            123456789012345680000.0,
            1.5e300,
            0.000001,
        ]),
        2 => (rng.next() % 100_000) as f64 / 100.0,
        3 => -((rng.next() % 1000) as f64),
        _ => (rng.next() % 200) as f64,
    }
}

fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        42.0
    }
}

fn random_leaf(rng: &mut Rng) -> JsValue {
    match rng.below(10) {
        0 => JsValue::Null,
        1 => JsValue::Bool(rng.chance(50)),
        2..=3 => JsValue::Number(finite(random_number(rng))),
        4 => JsValue::Array(Vec::new()),
        5 => JsValue::Object(Default::default()),
        _ => JsValue::String(random_string(rng)),
    }
}

fn random_context_value(rng: &mut Rng, depth: usize) -> JsValue {
    if depth == 0 || rng.chance(60) {
        return random_leaf(rng);
    }
    if rng.chance(30) {
        let n = rng.below(4);
        return JsValue::Array((0..n).map(|_| random_context_value(rng, depth - 1)).collect());
    }
    let keys = [
        "id",
        "name",
        "plan",
        "employees",
        "createdAt",
        "tags",
        "meta",
        "b",
        "c",
        "0",
        "1",
        "10",
        "2",
        "email",
    ];
    let n = rng.below(5);
    JsValue::object(
        (0..n)
            .map(|_| (rng.pick(&keys).to_string(), random_context_value(rng, depth - 1)))
            .collect::<Vec<_>>(),
    )
}

fn random_context(rng: &mut Rng) -> JsValue {
    let mut entries: Vec<(String, JsValue)> = Vec::new();
    let tops = [
        "company",
        "user",
        "other",
        "a",
        "x",
        "0",
        "1",
        "company.id",
        "user",
    ];
    for _ in 0..rng.below(6) {
        let top = rng.pick(&tops).to_string();
        let value = if top == "company" || top == "user" || rng.chance(50) {
            let keys: &[&str] = if top == "user" {
                &["id", "email", "age", "beta", "signup", "name"]
            } else {
                &[
                    "id",
                    "name",
                    "plan",
                    "employees",
                    "createdAt",
                    "tags",
                    "meta",
                    "b",
                ]
            };
            let n = rng.below(6);
            JsValue::object(
                (0..n)
                    .map(|_| {
                        let k = rng.pick(keys).to_string();
                        let v = if k == "tags" || k == "b" {
                            random_context_value(rng, 2)
                        } else if k == "createdAt" || k == "signup" {
                            JsValue::String(random_date(rng))
                        } else {
                            random_leaf(rng)
                        };
                        (k, v)
                    })
                    .collect::<Vec<_>>(),
            )
        } else {
            random_context_value(rng, 2)
        };
        entries.push((top, value));
    }
    JsValue::object(entries)
}

fn s(v: &str) -> JsValue {
    JsValue::String(v.to_owned())
}

fn random_filter(rng: &mut Rng, depth: usize) -> JsValue {
    let kind = if depth == 0 {
        2 + rng.below(3)
    } else {
        rng.below(6)
    };
    match kind {
        0 | 5 => {
            let n = rng.below(5);
            let op = rng.pick(&["and", "or", "and", "or", "AND"]);
            let children: Vec<JsValue> = (0..n).map(|_| random_filter(rng, depth - 1)).collect();
            JsValue::object([
                ("type", s("group")),
                ("operator", s(op)),
                ("filters", JsValue::Array(children)),
            ])
        }
        1 => JsValue::object([("type", s("negation")), ("filter", random_filter(rng, depth - 1))]),
        2 | 3 => {
            let op = rng.pick(OPERATORS);
            // CONTAINS without a value throws in the reference (a documented divergence).
            let min = usize::from(op.contains("CONTAINS"));
            let n = min + rng.below(if op.contains("ANY_OF") { 5 } else { 2 });
            let values: Vec<JsValue> = (0..n)
                .map(|_| {
                    if op.contains("DATE") || op == "AFTER" || op == "BEFORE" {
                        random_date_or_days(rng, op)
                    } else {
                        s(&random_string(rng))
                    }
                })
                .collect();
            let mut e = vec![
                ("type", s("context")),
                ("field", s(rng.pick(FIELDS))),
                ("operator", s(op)),
            ];
            if n > 0 || rng.chance(50) {
                e.push(("values", JsValue::Array(values)));
            }
            JsValue::object(e)
        }
        _ => {
            if rng.chance(20) {
                return JsValue::object([("type", s("constant")), ("value", JsValue::Bool(rng.chance(50)))]);
            }
            let threshold = match rng.below(5) {
                0 => rng.pick(&[0.0, 1.0, 0.5, 99999.0, 100000.0, 100001.0, -5.0]),
                _ => (rng.next() % 100_001) as f64,
            };
            let mut e = vec![
                ("type", s("rolloutPercentage")),
                ("partialRolloutAttribute", s(rng.pick(FIELDS))),
                ("partialRolloutThreshold", JsValue::Number(threshold)),
            ];
            if rng.chance(90) {
                e.push(("key", s(rng.pick(&["flag", "huddle", "test-flag", "f.x"]))));
            }
            JsValue::object(e)
        }
    }
}

fn random_date_or_days(rng: &mut Rng, op: &str) -> JsValue {
    if op.starts_with("DATE") {
        s(&random_date(rng))
    } else {
        s(rng.pick(&[
            "0",
            "1",
            "1.5",
            "1.9",
            "5",
            "10",
            "-5",
            "30",
            "365",
            "",
            "abc",
            "1e3",
            "40.7",
            "-0.5",
            "10000000000",
        ]))
    }
}

fn random_case(rng: &mut Rng, i: usize) -> String {
    let rules: Vec<JsValue> = (0..rng.below(5))
        .map(|_| {
            let value = match rng.below(4) {
                0 => JsValue::Bool(true),
                1 => s("variant"),
                2 => JsValue::Number(finite(random_number(rng))),
                _ => JsValue::object([
                    ("key", s("k")),
                    (
                        "payload",
                        JsValue::object([("b", JsValue::Number(1.0)), ("a", JsValue::Null)]),
                    ),
                ]),
            };
            JsValue::object([("filter", random_filter(rng, 3)), ("value", value)])
        })
        .collect();
    // Clocks spread over many days of month so fractional AFTER/BEFORE day counts are exercised.
    let now = 1_577_836_800_000_i64 + (rng.next() % 200_000_000_000) as i64;
    let case = JsValue::object([
        ("flagKey", s(&format!("flag-{i}"))),
        ("rules", JsValue::Array(rules)),
        ("context", random_context(rng)),
        ("now", JsValue::Number(now as f64)),
    ]);
    serde_json::to_string(&case).expect("serialize case")
}

fn diff_dir() -> PathBuf {
    std::env::var_os("GATEHOUSE_DIFF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/differential")))
}

fn skip(reason: &str) {
    eprintln!(
        "\n{}\nSKIPPED differential test: {reason}\n{}\n",
        "!".repeat(78),
        "!".repeat(78)
    );
}

/// Feeds `lines` to the reference script in one node process and returns its stdout.
fn run_node(dir: &std::path::Path, lines: &[String]) -> String {
    let mut child = Command::new("node")
        .arg(dir.join("evaluate.mjs"))
        .current_dir(dir)
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = lines.join("\n");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("node output");
    writer.join().expect("writer thread").expect("write to node");
    assert!(output.status.success(), "node failed");
    String::from_utf8(output.stdout).expect("utf8")
}

/// Whether the reference can run; prints the loud skip message when not.
fn reference_available(dir: &std::path::Path) -> bool {
    if Command::new("node").arg("--version").output().is_err() {
        skip("`node` is not installed");
        return false;
    }
    if !dir
        .join("node_modules/@reflag/flag-evaluation/package.json")
        .exists()
    {
        skip(&format!(
            "@reflag/flag-evaluation is not installed; run `npm ci` in {}",
            dir.display()
        ));
        return false;
    }
    true
}

#[test]
fn date_parser_matches_v8() {
    let dir = diff_dir();
    if !reference_available(&dir) {
        return;
    }
    let mut rng = Rng(0xDA7E_0000_0000_0002);
    let mut dates: Vec<String> = DATES.iter().map(|d| d.to_string()).collect();
    let noise = [
        "", " ", "  ", "T", "Z", "z", "+", "-", ":", ".", "/", ",", "(x)", ")", "GMT", "am", "PM", "Sept",
        "mon", "x",
    ];
    for _ in 0..20_000 {
        let mut d = random_date(&mut rng);
        // Splice random tokens in to reach the parser's less common paths.
        for _ in 0..rng.below(3) {
            let at = rng.below(d.len() + 1);
            if d.is_char_boundary(at) {
                d.insert_str(at, rng.pick(&noise));
            }
        }
        dates.push(d);
    }
    let line = serde_json::to_string(&serde_json::json!({ "dates": dates })).expect("json");
    let output = run_node(&dir, &[line]);
    let reply: serde_json::Value = serde_json::from_str(output.trim()).expect("reference JSON");
    let times = reply["times"].as_array().expect("times");
    let mut failures = Vec::new();
    for (d, t) in dates.iter().zip(times) {
        let ours = parse_js_date(d);
        let theirs = t.as_f64().unwrap_or(f64::NAN);
        if !(ours == theirs || (ours.is_nan() && theirs.is_nan())) {
            failures.push(format!("{d:?}: V8 {theirs}, ours {ours}"));
        }
    }
    let valid = times.iter().filter(|t| !t.is_null()).count();
    eprintln!(
        "date parser: {}/{} strings identical to V8 ({valid} valid dates)",
        dates.len() - failures.len(),
        dates.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn engine_matches_reference_implementation() {
    let dir = diff_dir();
    if !reference_available(&dir) {
        return;
    }
    let count: usize = std::env::var("GATEHOUSE_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut rng = Rng(0x6A7E_4005_E000_0001);
    let cases: Vec<String> = (0..count).map(|i| random_case(&mut rng, i)).collect();

    let output = run_node(&dir, &cases);
    let reference: Vec<&str> = output.lines().collect();
    assert_eq!(reference.len(), cases.len(), "one reference line per case");

    let mut failures = Vec::new();
    for (case, expected) in cases.iter().zip(&reference) {
        let input: serde_json::Value = serde_json::from_str(case).expect("case JSON");
        let now = input["now"].as_i64().expect("now");
        let mut out = Vec::new();
        let failed = run_evaluate(case.as_bytes(), &mut out, now).expect("run");
        assert!(!failed, "engine rejected a generated case: {case}");
        let ours: JsValue = serde_json::from_slice(&out).expect("engine JSON");
        let theirs: JsValue = serde_json::from_str(expected).expect("reference JSON");
        if ours != theirs {
            failures.push(format!(
                "case:     {case}\nexpected: {expected}\ngot:      {}",
                String::from_utf8_lossy(&out)
            ));
        }
    }
    let matched = cases.len() - failures.len();
    let hits = reference.iter().filter(|l| l.contains("matched\"")).count();
    let with_missing = reference
        .iter()
        .filter(|l| !l.contains("\"missingContextFields\":[]"))
        .count();
    eprintln!(
        "differential: reference matched a rule in {hits} cases, reported missing fields in {with_missing}"
    );
    eprintln!(
        "differential: {matched}/{} cases identical to @reflag/flag-evaluation 1.0.1",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches, first ones:\n{}",
        failures.len(),
        failures.iter().take(5).cloned().collect::<Vec<_>>().join("\n\n")
    );
}
