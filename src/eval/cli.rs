//! The `gatehouse evaluate` command as a library function.
//!
//! Reads JSON lines `{"flagKey", "rules": [{"filter", "value"}], "context"}` and writes one JSON
//! line per input in the shape of the reference's `evaluateFlagRules` result, so outputs can be
//! diffed against `@reflag/flag-evaluation` directly. A malformed line yields
//! `{"line": N, "error": "…"}` and processing continues. Generic over `BufRead`/`Write` so the
//! binary passes stdin/stdout and tests pass buffers; the clock comes from the caller.

use super::flags::evaluate_flag_rules;
use crate::model::{JsValue, Rule};
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, Write};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    flag_key: String,
    rules: Vec<Rule<JsValue>>,
    #[serde(default)]
    context: JsValue,
}

#[derive(Serialize)]
struct LineError<'a> {
    line: usize,
    error: &'a str,
}

/// Evaluates every non-blank input line at `now_ms` (epoch ms) and writes one output line each.
/// Returns `Ok(true)` when at least one line failed to parse; I/O errors abort.
pub fn run_evaluate<R: BufRead, W: Write>(input: R, mut output: W, now_ms: i64) -> io::Result<bool> {
    let mut any_failed = false;
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let json = match serde_json::from_str::<Input>(&line) {
            Ok(input) => {
                let result = evaluate_flag_rules(&input.flag_key, &input.rules, &input.context, now_ms);
                serde_json::to_string(&result)
            }
            Err(e) => {
                any_failed = true;
                let msg = e.to_string();
                serde_json::to_string(&LineError {
                    line: i + 1,
                    error: &msg,
                })
            }
        };
        writeln!(output, "{}", json.map_err(io::Error::other)?)?;
    }
    output.flush()?;
    Ok(any_failed)
}
