//! The capability-drift gate and `warden diff`, through the real CLI: components from the
//! real registry, approvals recorded in the real audit log.

use crate::registry::{Host, refused, registry, repo, text};
use crate::support::wasm;
use serde_json::Value;
use std::path::Path;

/// `bytes` with a custom section appended: another component (another digest) that
/// imports and does exactly what the first does.
fn rebuilt(bytes: &[u8]) -> Vec<u8> {
    let name = b"warden-test-build";
    let payload = b"2";
    let mut out = bytes.to_vec();
    out.push(0);
    out.push((1 + name.len() + payload.len()) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(payload);
    out
}

fn approve(host: &Host, manifest: &Path, by: &str) -> std::process::Output {
    host.warden(&[
        "baseline",
        "approve",
        manifest.to_str().unwrap(),
        "--by",
        by,
        "--audit",
        host.audit.to_str().unwrap(),
        "--plain-http",
    ])
}

#[test]
fn warden_diff_shows_imports_schemas_and_grants_and_what_widens() {
    let host = Host::new();
    let echo = wasm("echo");
    let fetch = wasm("http_fetch");
    let out = host.warden(&["diff", echo.to_str().unwrap(), echo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("imports: unchanged") && !stdout.contains("widens"),
        "{stdout}"
    );

    let out = host.warden(&["diff", echo.to_str().unwrap(), fetch.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = text(&out.stdout);
    for line in [
        "  + wasi:http/outgoing-handler@",
        "  invoke: changed",
        "widens: imports wasi:http/",
    ] {
        assert!(stdout.contains(line), "{line:?} in\n{stdout}");
    }

    // Manifests: the same component, a grant added.
    let old = host.manifest("old.toml", echo.to_str().unwrap(), "");
    let new = host.path("new.toml");
    std::fs::write(
        &new,
        std::fs::read_to_string(&old).unwrap()
            + "\n[[http]]\nurl = \"https://api.example.com/v1/\"\nmethods = [\"GET\"]\n",
    )
    .unwrap();
    let out = host.warden(&[
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let diff: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(diff["imports"]["added"], serde_json::json!([]));
    let grants: Vec<&str> = diff["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(
        grants.contains(&"+ http[0].url = \"https://api.example.com/v1/\""),
        "{grants:?}"
    );
    assert!(
        diff["grants_widen"]
            .as_str()
            .unwrap()
            .contains("api.example.com"),
        "{diff}"
    );
    // Narrowing is a change, not a widening.
    let out = host.warden(&["diff", new.to_str().unwrap(), old.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        !text(&out.stdout).contains("widens"),
        "{}",
        text(&out.stdout)
    );

    // What a tag names now, against what a pin names.
    let registry = registry();
    let repo = repo("diffed");
    let v1 = registry.push(&repo, "1", &echo, false);
    registry.push(&repo, "1", &fetch, false);
    let pinned = format!("{}@{v1}", registry.reference(&repo, "1"));
    let out = host.warden(&[
        "diff",
        "--plain-http",
        &pinned,
        &registry.reference(&repo, "1"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stdout).contains("widens: imports wasi:http/"),
        "{out:?}"
    );
}

#[test]
fn a_drifted_version_is_refused_until_approved_and_the_approval_is_recorded() {
    let registry = registry();
    let host = Host::new();
    let repo = repo("gated");
    registry.push(&repo, "stable", &wasm("echo"), false);
    let reference = registry.reference(&repo, "stable");
    let manifest = host.manifest("tool.toml", &reference, "");
    let run = |input: &str| host.run(&manifest, input, &["--gate", "--plain-http"]);

    // Nothing approved yet: the gate refuses, and says what to do.
    let out = run("{}");
    refused(&out, "has no approved baseline");
    assert!(
        text(&out.stderr).contains("warden baseline approve"),
        "{out:?}"
    );
    assert_eq!(host.loads().pop().unwrap()["decision"], "deny");

    let out = approve(&host, &manifest, "alice");
    assert!(out.status.success(), "{out:?}");
    let approval = host.events("tool.approve").pop().unwrap();
    assert_eq!(approval["agent"], "alice");
    assert_eq!(approval["decision"], "allow");
    assert_eq!(approval["resource"], reference.as_str());
    assert_eq!(approval["args"]["previous"], Value::Null);
    let v1 = approval["component"].as_str().unwrap().to_owned();
    let out = run(r#"{"v":1}"#);
    assert!(out.status.success(), "{out:?}");
    let load = host.loads().pop().unwrap();
    assert_eq!(load["args"]["baseline"]["drift"], "same");

    // A rebuild that reaches no further loads without a new approval.
    let dir = tempfile::tempdir().unwrap();
    let same_reach = dir.path().join("echo.wasm");
    std::fs::write(&same_reach, rebuilt(&std::fs::read(wasm("echo")).unwrap())).unwrap();
    registry.push(&repo, "stable", &same_reach, false);
    assert!(host.pull(&reference).status.success());
    let out = run(r#"{"v":2}"#);
    assert!(out.status.success(), "{out:?}");
    let load = host.loads().pop().unwrap();
    assert_eq!(load["args"]["baseline"]["drift"], "within");
    assert_ne!(load["component"], v1.as_str());

    // The publisher moves the tag to a version that imports HTTP: refused.
    registry.push(&repo, "stable", &wasm("http_fetch"), false);
    assert!(host.pull(&reference).status.success());
    let out = run("{}");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("drifted from the version approved by alice")
            && stderr.contains("imports wasi:http/"),
        "{stderr}"
    );
    let denied = host.loads().pop().unwrap();
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["args"]["baseline"]["drift"], "widened");

    // A manifest that grants more is drift too, whatever the component.
    std::fs::write(
        &manifest,
        std::fs::read_to_string(&manifest).unwrap()
            + "\n[[http]]\nurl = \"https://api.example.com/\"\nmethods = [\"GET\"]\n",
    )
    .unwrap();
    let out = run("{}");
    refused(&out, "the manifest grants more");

    // Approved: recorded with what it widened, then it runs.
    let out = approve(&host, &manifest, "bob");
    assert!(out.status.success(), "{out:?}");
    let approval = host.events("tool.approve").pop().unwrap();
    assert_eq!(approval["agent"], "bob");
    assert_eq!(approval["args"]["previous"]["approved_by"], "alice");
    let widened = approval["args"]["widened"].to_string();
    assert!(
        widened.contains("wasi:http/") && widened.contains("grants more"),
        "{widened}"
    );
    let out = run(r#"{"url":"https://example.invalid/"}"#);
    let load = host.loads().pop().unwrap();
    assert_eq!(load["decision"], "allow", "{out:?}");
    assert_eq!(load["args"]["baseline"]["drift"], "same");

    // The log with the approvals in it verifies.
    let out = host.warden(&["audit", "verify", host.audit.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_baseline_edited_or_copied_by_a_local_user_approves_nothing() {
    let host = Host::new();
    let component = host.path("tool.wasm");
    std::fs::copy(wasm("echo"), &component).unwrap();
    let manifest = host.manifest("tool.toml", "tool.wasm", "");
    assert!(approve(&host, &manifest, "alice").status.success());
    let baseline = host.path("baselines/echo.baseline");
    let good = std::fs::read_to_string(&baseline).unwrap();

    // The attacker swaps in a component that imports HTTP and widens the approval to match.
    std::fs::copy(wasm("http_fetch"), &component).unwrap();
    let forged = good.replacen(
        "\"imports\":[",
        "\"imports\":[\"wasi:http/types@0.2.12\",\"wasi:http/outgoing-handler@0.2.12\",",
        1,
    );
    assert_ne!(forged, good);
    std::fs::write(&baseline, forged).unwrap();
    let out = host.run(&manifest, "{}", &["--gate"]);
    refused(&out, "not an approval signed by this host's key");

    // Nor does another tool's approval, signed as it is, approve this one.
    let other = host.path("other.toml");
    std::fs::write(
        &other,
        "[tool]\nname = \"other\"\ncomponent = \"tool.wasm\"\n",
    )
    .unwrap();
    std::fs::write(&baseline, &good).unwrap();
    std::fs::copy(&baseline, host.path("baselines/other.baseline")).unwrap();
    let out = host.run(&other, "{}", &["--gate"]);
    refused(&out, "it approves \"echo\", not \"other\"");
}
