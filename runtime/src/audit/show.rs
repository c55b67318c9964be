//! An audit log for people: one line per record, or the chosen records' lines as they are.
//!
//! Reads without verifying: `warden audit show` is for looking, `warden audit verify` for
//! trusting.

use std::io::{BufRead, Write};

/// Which records to show.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only records of this task (its id, or the start of it).
    pub task: Option<String>,
    /// Only denied calls.
    pub deny_only: bool,
}

impl Filter {
    fn keeps(&self, record: &serde_json::Value) -> bool {
        let field = |name: &str| record.get(name).and_then(|v| v.as_str());
        let task_kept = match &self.task {
            Some(t) => field("task").is_some_and(|id| id.starts_with(t.as_str())),
            None => true,
        };
        task_kept && (!self.deny_only || field("decision") == Some("deny"))
    }
}

/// A line of the log that was not shown, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skipped {
    /// The last line has no newline: a write cut short. Nothing after it is read.
    #[error("line {line}: torn ({bytes} bytes without a newline), skipped")]
    Torn {
        /// Its line number, from 1.
        line: u64,
        /// Its length.
        bytes: usize,
    },
    /// The line is not a JSON object.
    #[error("line {line}: not a JSON object, skipped")]
    NotAnObject {
        /// Its line number, from 1.
        line: u64,
    },
}

/// Writes the records of `log` that `filter` keeps to `out`: as [`line`]s, or with `json` as
/// the log holds them. Each line skipped goes to `skipped`. Only reading the log can fail: a
/// reader that went away (a pager closed) ends the output quietly.
pub fn show(
    log: impl BufRead,
    filter: &Filter,
    json: bool,
    mut out: impl Write,
    mut skipped: impl FnMut(Skipped),
) -> std::io::Result<()> {
    let mut log = log;
    let mut text = Vec::new();
    let mut number = 0u64;
    loop {
        text.clear();
        let n = log.read_until(b'\n', &mut text)?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if text.last() != Some(&b'\n') {
            skipped(Skipped::Torn {
                line: number,
                bytes: n,
            });
            return Ok(());
        }
        text.pop();
        let record: serde_json::Value = match serde_json::from_slice(&text) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            Ok(_) | Err(_) => {
                skipped(Skipped::NotAnObject { line: number });
                continue;
            }
        };
        if !filter.keeps(&record) {
            continue;
        }
        let written = if json {
            out.write_all(&text).and_then(|_| out.write_all(b"\n"))
        } else {
            writeln!(out, "{}", line(&record))
        };
        if written.is_err() {
            return Ok(());
        }
    }
}

/// One record for people: seq, time to the millisecond, the first 8 digits of the task id,
/// event, call, resource, decision, rule (quoted: it has spaces), outcome; `-` where a record
/// has no such field.
pub fn line(r: &serde_json::Value) -> String {
    let text = |name: &str| match r.get(name) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => "-".into(),
        Some(v) => v.to_string(),
    };
    let time = text("time");
    // 2026-11-25T19:47:18.123456789Z -> 2026-11-25T19:47:18.123Z
    let time = match time.split_once('.') {
        Some((secs, frac)) if frac.ends_with('Z') && frac.len() > 4 => {
            format!("{secs}.{}Z", &frac[..3])
        }
        _ => time,
    };
    let task: String = text("task").chars().take(8).collect();
    let rule = match r.get("rule").and_then(|v| v.as_str()) {
        Some(rule) => format!("{rule:?}"),
        None => "-".into(),
    };
    format!(
        "{:>6}  {time}  {task:<8}  {:<10}  {}  {}  {}  {rule}  {}",
        text("seq"),
        text("event"),
        text("call"),
        text("resource"),
        text("decision"),
        text("outcome"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = concat!(
        r#"{"seq":0,"time":"2026-11-25T19:47:18.123456789Z","task":"0123456789ab","event":"call","call":"fs.open","resource":"/data/a","decision":"allow","outcome":"ok"}"#,
        "\n",
        "[1]\n",
        r#"{"seq":1,"time":"2026-11-25T19:47:18.2Z","task":"ffff","event":"call","call":"fs.open","decision":"deny","rule":"no grant"}"#,
        "\n",
        r#"{"seq":2,"task":"0123"#,
    );

    fn shown(filter: Filter, json: bool) -> (String, Vec<Skipped>) {
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        show(LOG.as_bytes(), &filter, json, &mut out, |s| skipped.push(s)).unwrap();
        (String::from_utf8(out).unwrap(), skipped)
    }

    #[test]
    fn every_record_is_a_line_and_what_is_not_a_record_is_named() {
        let (out, skipped) = shown(Filter::default(), false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].contains("2026-11-25T19:47:18.123Z  01234567  call"));
        assert!(lines[1].contains("deny  \"no grant\"  -"), "{}", lines[1]);
        assert_eq!(
            skipped,
            [
                Skipped::NotAnObject { line: 2 },
                Skipped::Torn { line: 4, bytes: 21 }
            ]
        );
    }

    #[test]
    fn filters_keep_a_task_by_prefix_and_denials_and_json_is_the_line_as_written() {
        let task = Filter {
            task: Some("0123".into()),
            ..Filter::default()
        };
        let (out, _) = shown(task, true);
        assert_eq!(out, LOG.lines().next().unwrap().to_owned() + "\n");
        let deny = Filter {
            deny_only: true,
            ..Filter::default()
        };
        let (out, _) = shown(deny, false);
        assert_eq!(out.lines().count(), 1);
        assert!(out.starts_with("     1  "));
    }
}
