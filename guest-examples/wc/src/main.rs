//! `wc`: a plain `wasi:cli/command` (no Warden bindings) that counts the
//! lines, words and bytes on stdin, the way `wc` does.

use std::io::{self, Read, Write};
use std::process::ExitCode;

const USAGE: &str = "usage: wc [-l] [-w] [-c]  (counts stdin)";

/// Which counts to print; all of them when no flag is given, like `wc`.
#[derive(Default)]
struct Select {
    lines: bool,
    words: bool,
    bytes: bool,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Select, String> {
    let mut select = Select::default();
    for arg in args {
        match arg.as_str() {
            "-l" => select.lines = true,
            "-w" => select.words = true,
            "-c" => select.bytes = true,
            other => return Err(format!("wc: unknown argument {other:?}\n{USAGE}")),
        }
    }
    if !(select.lines || select.words || select.bytes) {
        select = Select {
            lines: true,
            words: true,
            bytes: true,
        };
    }
    Ok(select)
}

fn main() -> ExitCode {
    let select = match parse_args(std::env::args().skip(1)) {
        Ok(select) => select,
        Err(message) => {
            eprintln!("{message}");
            // Today's wasip2 std only reports success or failure through
            // `wasi:cli/run`, so the host sees status 1; 2 is what a native
            // build exits with and what a future std will pass on.
            return ExitCode::from(2);
        }
    };

    // Read everything: the runtime bounds stdin, and counting bytes rather
    // than chars keeps the result independent of the encoding.
    let mut input = Vec::new();
    if let Err(err) = io::stdin().read_to_end(&mut input) {
        eprintln!("wc: reading stdin: {err}");
        return ExitCode::from(1);
    }

    let lines = input.iter().filter(|&&b| b == b'\n').count();
    let words = input
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .count();
    let bytes = input.len();

    let counts: Vec<String> = [
        (select.lines, lines),
        (select.words, words),
        (select.bytes, bytes),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| n.to_string())
    .collect();

    // A closed stdout is the caller's choice, but the exit code must say the
    // count was not delivered.
    if let Err(err) = writeln!(io::stdout(), "{}", counts.join(" ")) {
        eprintln!("wc: writing stdout: {err}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
