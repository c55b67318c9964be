//! `[limits]`: each ends the task with an error naming the limit, and the
//! host process goes on to report it and write the task's end record.

use crate::support::Sandbox;

fn assert_limit(run: &crate::support::Run, name: &str, words: &str) {
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains(words),
        "stderr should name the limit: {run:#?}"
    );
    assert_eq!(
        run.end()["outcome"],
        format!("trap:limit:{name}"),
        "{run:#?}"
    );
}

#[test]
fn infinite_loop_is_stopped_by_the_timeout() {
    let sb = Sandbox::new("probe", "probe");
    let run = sb.run(r#"{"op":"spin"}"#);
    assert_limit(&run, "timeout", "timeout of 2s exceeded");
    // The task ended at the timeout, not long after: the end record's
    // duration is within the 2 s limit plus the 1 s backstop.
    let dur = run.end()["dur_ns"].as_u64().unwrap();
    assert!(dur < 3_000_000_000, "{dur} ns");
}

#[test]
fn memory_bomb_traps_on_the_memory_limit() {
    let sb = Sandbox::new("probe", "probe");
    let run = sb.run(r#"{"op":"membomb","mib":100}"#);
    assert_limit(&run, "memory", "memory limit of 33554432 bytes exceeded");
}

#[test]
fn result_over_the_output_cap_fails_cleanly() {
    let sb = Sandbox::new("probe", "probe");
    let run = sb.run(r#"{"op":"bigout","bytes":70000}"#);
    assert_limit(
        &run,
        "output",
        "output limit of 65536 bytes exceeded on result",
    );
    assert!(run.stdout.is_empty(), "no partial result is printed");
    // Just under the cap is fine.
    let run = sb.run(r#"{"op":"bigout","bytes":60000}"#);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn stdout_over_the_output_cap_fails_cleanly() {
    let sb = Sandbox::new("probe", "probe");
    let run = sb.run(r#"{"op":"print","bytes":70000}"#);
    assert_limit(
        &run,
        "output",
        "output limit of 65536 bytes exceeded on stdout",
    );
}

#[test]
fn fuel_limit_stops_a_busy_tool() {
    let sb = Sandbox::new("probe", "probe");
    let text = std::fs::read_to_string(&sb.manifest).unwrap();
    let text = text.replace("timeout = \"2s\"", "timeout = \"10s\"\nfuel = 50_000_000");
    sb.write_manifest(&text, "probe");
    let run = sb.run(r#"{"op":"spin"}"#);
    assert_limit(&run, "fuel", "fuel limit of 50000000 exhausted");
    // Fuel is metered for ordinary work too, and reported.
    let run = sb.run(r#"{"op":"time"}"#);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.end()["args"]["fuel"].as_u64().unwrap() > 0);
}
