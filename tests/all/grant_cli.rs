//! `warden grant key` and `warden grant revoke` through the real binary: the
//! issuer key is private and stable, and a revocation the CLI writes ends
//! tasks that the library runs under the revoked grant.

use crate::support::{Sandbox, warden};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use warden::manifest::Manifest;
use warden::token::{IssuerKey, IssuerPublicKey};
use warden::{EngineConfig, Runtime, TaskGrant, TaskRequest};
use warden_host_api::audit::NullSink;
use warden_host_api::grant::live::Revocations;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn grant_key_is_created_private_and_stable() {
    let state = tempfile::tempdir().unwrap();
    let env = [("XDG_STATE_HOME", state.path().to_str().unwrap())];
    let first = warden(&["grant", "key"], &env, None);
    assert!(first.status.success(), "{first:?}");
    let key = state.path().join("warden/keys/grant.key");
    assert_eq!(mode(&key), 0o600);
    let public = text(&first.stdout);
    assert!(public.starts_with("ed25519/"), "{public}");
    assert!(
        !public.contains("private"),
        "only the public half is printed"
    );
    // What another host is given verifies this host's tokens.
    assert_eq!(
        &IssuerPublicKey::parse(&public).unwrap(),
        IssuerKey::load_or_create(&key).unwrap().public()
    );
    let again = warden(&["grant", "key"], &env, None);
    assert_eq!(text(&again.stdout), public);

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loose = warden(&["grant", "key"], &env, None);
    assert_eq!(loose.status.code(), Some(2), "{loose:?}");
    let err = text(&loose.stderr);
    assert!(err.contains("readable by others (mode 644)"), "{err}");
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn grant_key_can_live_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state_env = ("XDG_STATE_HOME", state.to_str().unwrap());
    let flag = dir.path().join("keys/by-flag.key");
    let by_flag = warden(
        &["grant", "key", "--grant-key", flag.to_str().unwrap()],
        &[state_env],
        None,
    );
    assert!(by_flag.status.success(), "{by_flag:?}");
    assert_eq!(mode(&flag), 0o600);

    let by_env_path = dir.path().join("by-env.key");
    let by_env = warden(
        &["grant", "key"],
        &[
            state_env,
            ("WARDEN_GRANT_KEY", by_env_path.to_str().unwrap()),
        ],
        None,
    );
    assert!(by_env.status.success(), "{by_env:?}");
    assert!(by_env_path.exists());
    assert_ne!(text(&by_flag.stdout), text(&by_env.stdout));
    assert!(
        !state.join("warden/keys/grant.key").exists(),
        "the default key is not created when another is named"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_revocation_from_the_cli_refuses_tasks_under_it() {
    let state = tempfile::tempdir().unwrap();
    let env = [("XDG_STATE_HOME", state.path().to_str().unwrap())];
    let out = warden(&["grant", "revoke", "team-grant"], &env, None);
    assert!(out.status.success(), "{out:?}");
    let list = state.path().join("warden/revoked");
    let said = text(&out.stdout);
    assert!(said.contains("revoked grant team-grant"), "{said}");
    assert!(said.contains(list.to_str().unwrap()), "{said}");
    assert_eq!(std::fs::read_to_string(&list).unwrap(), "team-grant\n");

    let again = warden(&["grant", "revoke", "team-grant"], &env, None);
    assert!(again.status.success(), "{again:?}");
    assert!(text(&again.stdout).contains("already revoked"), "{again:?}");
    assert_eq!(std::fs::read_to_string(&list).unwrap(), "team-grant\n");

    // A runtime on the same list, as `warden run` builds one.
    let runtime = Runtime::new(&EngineConfig::default())
        .unwrap()
        .with_revocations(Arc::new(Revocations::new(Some(list))));
    let sb = Sandbox::new("probe", "probe");
    let tool = runtime.load(Manifest::load(&sb.manifest).unwrap()).unwrap();
    let request = |chain: &[&str]| {
        TaskRequest::new(r#"{"op":"time"}"#, Arc::new(NullSink))
            .agent("grant-cli-test")
            .grant(TaskGrant {
                chain: chain.iter().map(|s| s.to_string()).collect(),
                expires: None,
                caps: None,
            })
    };
    let err = tool
        .run(request(&["team-grant", "agent-7"]))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("grant agent-7 was revoked (team-grant was revoked)"),
        "{err}"
    );
    tool.run(request(&["other-grant", "agent-8"]))
        .await
        .expect("a grant outside the revoked chain runs");
}

#[test]
fn an_id_the_list_cannot_hold_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let env = [("XDG_STATE_HOME", state.path().to_str().unwrap())];
    for id in ["", " padded", "two words"] {
        let out = warden(&["grant", "revoke", id], &env, None);
        assert_eq!(out.status.code(), Some(2), "{id:?}: {out:?}");
        assert!(text(&out.stderr).contains("is not a grant id"), "{out:?}");
    }
    assert!(!state.path().join("warden/revoked").exists());
}

/// Runs `warden` with its own state dir (issuer key, revocation list).
fn w(state: &Path, args: &[&str]) -> std::process::Output {
    let env = [("XDG_STATE_HOME", state.to_str().unwrap())];
    warden(args, &env, None)
}

/// Issues (or attenuates) a token; panics with the output if refused.
fn token(state: &Path, args: &[&str]) -> String {
    let out = w(state, args);
    assert!(out.status.success(), "{out:?}");
    text(&out.stdout)
}

fn run_with(state: &Path, sb: &Sandbox, token: &str, input: &str) -> crate::support::Run {
    let before = sb.records().len();
    let out = w(
        state,
        &[
            "run",
            sb.manifest.to_str().unwrap(),
            "--audit",
            sb.audit.to_str().unwrap(),
            "--grant",
            token,
            "--input",
            input,
        ],
    );
    let records = sb.records().split_off(before);
    crate::support::Run::new(out, records)
}

const READ: &str = r#"{"op":"read","path":"/ro/hello.txt"}"#;
const WRITE: &str = r#"{"op":"write","path":"/rw/new.txt","data":"x"}"#;

#[test]
fn a_delegated_grant_runs_with_no_more_than_it_holds() {
    let state = tempfile::tempdir().unwrap();
    let sb = Sandbox::new("probe", "probe");
    let m = sb.manifest.to_str().unwrap();
    // The manifest grants /ro and /rw; the planner gets both for 10 minutes,
    // and hands a reader only /ro, read-only, for one minute.
    let planner = token(
        state.path(),
        &["grant", "issue", m, "--ttl", "10m", "--agent", "planner"],
    );
    let reader = token(
        state.path(),
        &[
            "grant",
            "attenuate",
            &planner,
            "--ttl",
            "1m",
            "--narrow",
            "fs=/ro:read",
            "--agent",
            "reader",
        ],
    );

    let run = run_with(state.path(), &sb, &planner, WRITE);
    assert_eq!(run.json()["ok"], true, "{run:#?}");
    let run = run_with(state.path(), &sb, &reader, READ);
    assert_eq!(run.json()["ok"], true, "{run:#?}");
    run.assert_recorded();
    // The reader's task has no /rw at all.
    let run = run_with(state.path(), &sb, &reader, WRITE);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    assert!(!sb.path("root/rw/new2.txt").exists());
    run.assert_recorded();

    // Widening is refused, naming the capability.
    let out = w(
        state.path(),
        &[
            "grant",
            "attenuate",
            &reader,
            "--narrow",
            "fs=/rw:read-write",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("fs[0]: /rw"), "{out:?}");
    let out = w(
        state.path(),
        &["grant", "attenuate", &reader, "--ttl", "1h"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("ttl: 1h reaches past the expiry"),
        "{out:?}"
    );

    // Revoking the planner's grant ends the reader's too.
    let root = warden::token::unverified_records(&planner).unwrap()[0]
        .id
        .clone();
    let out = w(state.path(), &["grant", "revoke", &root]);
    assert!(out.status.success(), "{out:?}");
    let run = run_with(state.path(), &sb, &reader, READ);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains(&format!("({root} was revoked)")),
        "{run:#?}"
    );
}

#[test]
fn forged_expired_foreign_and_too_wide_tokens_are_refused() {
    let state = tempfile::tempdir().unwrap();
    let sb = Sandbox::new("probe", "probe");
    let m = sb.manifest.to_str().unwrap();
    let good = token(
        state.path(),
        &["grant", "issue", m, "--narrow", "fs=/ro:read"],
    );

    // One character changed.
    let mut forged: Vec<char> = good.chars().collect();
    let i = forged.len() / 2;
    forged[i] = if forged[i] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    let run = run_with(state.path(), &sb, &forged, READ);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("grant token refused"), "{run:#?}");
    assert!(run.records.is_empty(), "nothing ran: {run:#?}");

    // Signed by another issuer.
    let other = tempfile::tempdir().unwrap();
    let foreign = token(other.path(), &["grant", "issue", m]);
    let run = run_with(state.path(), &sb, &foreign, READ);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("grant token refused"), "{run:#?}");
    // ... unless the run names that issuer.
    let issuer = text(&w(other.path(), &["grant", "key"]).stdout);
    let out = w(
        state.path(),
        &[
            "run",
            m,
            "--audit",
            sb.audit.to_str().unwrap(),
            "--grant",
            &foreign,
            "--issuer",
            &issuer,
            "--input",
            READ,
        ],
    );
    assert!(out.status.success(), "{out:?}");

    // Expired.
    let short = token(state.path(), &["grant", "issue", m, "--ttl", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let run = run_with(state.path(), &sb, &short, READ);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("expired"), "{run:#?}");

    // Issued for a manifest that grants more than this one.
    let wide = Sandbox::new("probe", "probe");
    let text_m = std::fs::read_to_string(&wide.manifest).unwrap()
        + "\n[[http]]\nurl = \"https://example.com/\"\n";
    std::fs::write(&wide.manifest, text_m).unwrap();
    let wider = token(
        state.path(),
        &["grant", "issue", wide.manifest.to_str().unwrap()],
    );
    let run = run_with(state.path(), &sb, &wider, READ);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("grants more than"), "{run:#?}");
}

#[test]
fn a_narrowed_directory_cannot_be_a_symlink_out_of_the_grant() {
    let state = tempfile::tempdir().unwrap();
    let sb = Sandbox::new("probe", "probe");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "outside").unwrap();
    std::os::unix::fs::symlink(outside.path(), sb.path("root/ro/link")).unwrap();
    let m = sb.manifest.to_str().unwrap();
    // By name, /ro/link is inside /ro; on disk it leads out of it.
    let t = token(
        state.path(),
        &["grant", "issue", m, "--narrow", "fs=/ro/link:read"],
    );
    let run = run_with(
        state.path(),
        &sb,
        &t,
        r#"{"op":"read","path":"/ro/link/secret.txt"}"#,
    );
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("fs grant /ro/link: ") && run.stderr.contains("link is a symlink"),
        "{run:#?}"
    );
    assert!(!run.stdout.contains("outside"), "{run:#?}");
    let end = run.end();
    assert_eq!(end["outcome"], "error:fs-grant", "{run:#?}");

    // A real directory when the token is issued, a symlink out when it is spent.
    std::fs::create_dir(sb.path("root/ro/sub")).unwrap();
    let t = token(
        state.path(),
        &["grant", "issue", m, "--narrow", "fs=/ro/sub:read"],
    );
    std::fs::rename(sb.path("root/ro/sub"), sb.path("root/ro/sub.real")).unwrap();
    std::os::unix::fs::symlink(outside.path(), sb.path("root/ro/sub")).unwrap();
    let run = run_with(
        state.path(),
        &sb,
        &t,
        r#"{"op":"read","path":"/ro/sub/secret.txt"}"#,
    );
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("fs grant /ro/sub: ") && run.stderr.contains("sub is a symlink"),
        "{run:#?}"
    );
    assert!(!run.stdout.contains("outside"), "{run:#?}");
    assert_eq!(run.end()["outcome"], "error:fs-grant", "{run:#?}");
}

/// The attacks: a token issued for one tool spent on another, or on another build
/// of the same tool (same name, different component). A token names both, and a run
/// refuses a token for anything else. The task's `task.start` records the grant chain
/// it runs under, with the id Warden gave each attenuation.
#[test]
fn a_token_is_spent_only_on_its_tool_and_its_chain_is_recorded() {
    let state = tempfile::tempdir().unwrap();
    let sb = Sandbox::new("probe", "probe");
    let m = sb.manifest.to_str().unwrap();
    let planner = token(state.path(), &["grant", "issue", m]);
    let issued = w(
        state.path(),
        &["grant", "attenuate", &planner, "--narrow", "fs=/ro:read"],
    );
    assert!(issued.status.success(), "{issued:?}");
    let reader = text(&issued.stdout);

    // Another tool: echo, whose manifest is as wide as it needs.
    let echo = Sandbox::new("echo", "echo");
    let out = w(
        state.path(),
        &[
            "run",
            echo.manifest.to_str().unwrap(),
            "--audit",
            echo.audit.to_str().unwrap(),
            "--grant",
            &planner,
            "--input",
            "{}",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains("it was issued for tool probe (blake3:"),
        "{err}"
    );
    assert!(err.contains("not echo (blake3:"), "{err}");

    // The same name on another component.
    let rebuilt = Sandbox::new("probe", "probe");
    let text_m = std::fs::read_to_string(&rebuilt.manifest).unwrap();
    rebuilt.write_manifest(&text_m, "echo");
    let run = run_with(state.path(), &rebuilt, &reader, READ);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains("issued for tool probe (blake3:"),
        "{run:#?}"
    );
    assert!(run.records.is_empty(), "nothing ran: {run:#?}");

    // Its own tool runs, and task.start names the chain: the issued id and the one
    // the attenuation was given (which `grant attenuate` printed).
    let run = run_with(state.path(), &sb, &reader, READ);
    assert_eq!(run.code, 0, "{run:#?}");
    let records = warden::token::unverified_records(&reader).unwrap();
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(run.records[0]["event"], "task.start");
    assert_eq!(
        run.records[0]["args"]["grant"]["chain"],
        serde_json::json!(ids)
    );
    assert!(
        text(&issued.stderr).contains(&format!("grant {} (depth 1", ids[1])),
        "{issued:?}"
    );
}
