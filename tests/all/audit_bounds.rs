//! A hostile tool against the audit log's size: guest-chosen text is capped in every
//! record, and a task that makes calls without end runs out of records, not the disk.

use crate::support::Sandbox;

/// The probe with `extra` appended to its manifest.
fn probe(extra: &str) -> Sandbox {
    let sb = Sandbox::new("probe", "probe");
    let text = std::fs::read_to_string(&sb.manifest).unwrap();
    std::fs::write(&sb.manifest, format!("{text}\n{extra}")).unwrap();
    sb
}

#[test]
fn a_huge_guest_path_is_recorded_as_a_prefix_its_length_and_hash() {
    let sb = probe("");
    // Under the 128 KiB a single command-line argument may have.
    let path = format!("/rw/{}", "a".repeat(100_000));
    let input = serde_json::json!({ "op": "read", "path": path }).to_string();
    let run = sb.run(&input);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let hash = blake3::hash(path.as_bytes()).to_hex().to_string();
    let line_len = std::fs::read_to_string(&sb.audit)
        .unwrap()
        .lines()
        .map(str::len)
        .max()
        .unwrap();
    assert!(line_len < 8 * 1024, "a record of {line_len} bytes");
    let mentions: Vec<_> = run
        .records
        .iter()
        .filter(|r| r.to_string().contains(&hash))
        .collect();
    assert!(
        !mentions.is_empty(),
        "no record names the path's hash: {run:#?}"
    );
    for r in mentions {
        let resource = r["resource"].as_str().unwrap_or_default();
        assert!(
            resource.starts_with("/rw/aaaa") && resource.contains("100004 bytes"),
            "{r:#}"
        );
    }
    run.assert_recorded();
    let verify =
        crate::support::warden(&["audit", "verify", sb.audit.to_str().unwrap()], &[], None);
    assert_eq!(verify.status.code(), Some(0), "{verify:?}");
}

#[test]
fn a_task_that_floods_the_log_ends_at_its_record_budget() {
    let sb = probe("[audit]\nmax-records = 40\n");
    let run = sb.run(r#"{"op":"stat_loop","path":"/ro/hello.txt","n":100000}"#);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("budget of 40 audit records"),
        "{}",
        run.stderr
    );
    // 40 records, the one that says the budget is spent, and the end.
    assert_eq!(run.records.len(), 42, "{run:#?}");
    assert_eq!(run.events("audit.budget").len(), 1, "{run:#?}");
    assert!(
        run.end()["outcome"].as_str().unwrap().starts_with("trap"),
        "{:#}",
        run.end()
    );

    // Another tool on the same log carries on.
    let next = sb.run(r#"{"op":"read","path":"/ro/hello.txt"}"#);
    assert_eq!(next.json()["ok"], true, "{next:#?}");
}
