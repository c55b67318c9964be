//! `[[secrets]]` through the real CLI: each provider (a real OpenBao for `vault:`), the
//! refusals, `warden:tool/secrets` use without reveal, and that a secret's value appears
//! nowhere but where the manifest lets it.
//!
//! Every value is fresh random per run, so finding it anywhere is a leak, not a fixture.

use crate::openbao::{bao, bao_tls, random_hex, unique_path};
use crate::support::{Run, Sandbox, example, warden, warden_command};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// A probe sandbox whose manifest has `secrets` appended, with the timeout raised to
/// `timeout`.
fn sandbox_with(secrets: &str, timeout: &str) -> Sandbox {
    let sb = Sandbox::new("probe", "probe");
    let base = std::fs::read_to_string(example("probe")).unwrap();
    assert!(base.contains("timeout = \"2s\""));
    let text = base.replace("timeout = \"2s\"", &format!("timeout = {timeout:?}"));
    sb.write_manifest(&format!("{text}\n\n{secrets}\n"), "probe");
    sb
}

fn sandbox(secrets: &str) -> Sandbox {
    sandbox_with(secrets, "2s")
}

/// A value nobody else has: `wdn-` and 32 hex digits.
fn fresh_value() -> String {
    format!("wdn-{}", random_hex(16))
}

fn hmac_hex(key: &str, data: &str, sha512: bool) -> String {
    use hmac::{Hmac, Mac};
    let bytes = if sha512 {
        let mut m = Hmac::<sha2::Sha512>::new_from_slice(key.as_bytes()).unwrap();
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    } else {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value is in no output and nowhere in the audit log, whole or in part of its
/// random half.
fn assert_nowhere(sb: &Sandbox, run: &Run, value: &str) {
    let log = std::fs::read_to_string(&sb.audit).unwrap_or_default();
    let checkpoints =
        std::fs::read_to_string(sb.audit.with_extension("jsonl.checkpoints")).unwrap_or_default();
    let tail = &value[value.len() - 16..];
    for (what, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("audit log", &log),
        ("checkpoints", &checkpoints),
    ] {
        assert!(!text.contains(value), "the value is in {what}: {text}");
        assert!(
            !text.contains(tail),
            "part of the value is in {what}: {text}"
        );
    }
}

fn hmac_input(name: &str, data: &str) -> String {
    json!({"op": "secret_hmac", "name": name, "data": data}).to_string()
}

#[test]
fn env_secret_signs_without_being_seen() {
    let value = fresh_value();
    let sb = sandbox(
        r#"[[secrets]]
name = "signer"
source = "env:WARDEN_TEST_SIGNER"
purpose = "sign webhook payloads"
hmac = true
"#,
    );
    let env = [("WARDEN_TEST_SIGNER", value.as_str())];
    let run = sb.run_with(&hmac_input("signer", "payload-1"), &env);
    assert_eq!(run.code, 0, "{run:#?}");
    let out = run.json();
    assert_eq!(out["ok"], true, "{run:#?}");
    assert_eq!(out["name"], "signer");
    assert_eq!(out["hex"], hmac_hex(&value, "payload-1", false));
    run.assert_recorded();

    let fetch = run.events("secret.fetch");
    assert_eq!(fetch.len(), 1, "{run:#?}");
    assert_eq!(fetch[0]["args"]["name"], "signer");
    assert_eq!(fetch[0]["args"]["provider"], "env");
    assert_eq!(fetch[0]["args"]["source"], "env:WARDEN_TEST_SIGNER");
    assert_eq!(fetch[0]["args"]["reason"], "task");
    assert_eq!(fetch[0]["outcome"], "ok");
    let uses = run.events("secret.use");
    assert_eq!(uses.len(), 1, "{run:#?}");
    let u = uses[0];
    assert_eq!(u["call"], "warden:tool/secrets.[method]secret.hmac-sha256");
    assert_eq!(u["decision"], "allow");
    assert_eq!(u["args"]["operation"], "hmac-sha256");
    assert_eq!(u["args"]["purpose"], "sign webhook payloads");
    assert_eq!(u["args"]["provider"], "env");
    assert_eq!(u["args"]["data_len"], 9);
    assert_eq!(u["args"]["ttl_s"], Value::Null);
    // The handle's open and drop are recorded like any other resource's.
    let calls: Vec<&str> = run
        .records
        .iter()
        .filter_map(|r| r["call"].as_str())
        .filter(|c| c.starts_with("warden:tool/secrets"))
        .collect();
    assert_eq!(
        calls,
        [
            "warden:tool/secrets.[static]secret.open",
            "warden:tool/secrets.[method]secret.hmac-sha256",
            "warden:tool/secrets.[method]secret.name",
            "warden:tool/secrets.[resource-drop]secret",
        ],
        "{run:#?}"
    );
    assert_nowhere(&sb, &run, &value);

    let input = json!({"op": "secret_hmac", "name": "signer", "data": "p2", "algo": "sha512"});
    let run = sb.run_with(&input.to_string(), &env);
    assert_eq!(run.json()["hex"], hmac_hex(&value, "p2", true), "{run:#?}");
    assert_eq!(
        run.events("secret.use")[0]["args"]["operation"],
        "hmac-sha512"
    );
    run.assert_recorded();
    assert_nowhere(&sb, &run, &value);
}

#[test]
fn file_secret_only_its_owner_may_read() {
    use std::os::unix::fs::PermissionsExt;
    let value = fresh_value();
    let sb = sandbox(
        r#"[[secrets]]
name = "api"
source = "file:keys/api.key"
purpose = "call the API"
hmac = true
"#,
    );
    let keys = sb.path("keys");
    std::fs::create_dir(&keys).unwrap();
    let file = keys.join("api.key");
    std::fs::write(&file, format!("{value}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = sb.run(&hmac_input("api", "x"));
    assert_eq!(run.json()["hex"], hmac_hex(&value, "x", false), "{run:#?}");
    let fetch = run.events("secret.fetch");
    assert_eq!(
        fetch[0]["args"]["source"],
        format!("file:{}", file.display())
    );
    run.assert_recorded();
    assert_nowhere(&sb, &run, &value);

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = sb.run(&hmac_input("api", "x"));
    assert_eq!(run.code, 1, "{run:#?}");
    let expected = format!(
        "secret \"api\" (file:{path}): {path} has mode 0644, which lets group or others access it: run `chmod 600 {path}`",
        path = file.display()
    );
    assert!(run.stderr.contains(&expected), "{run:#?}");
    let fetch = run.events("secret.fetch");
    assert_eq!(fetch[0]["outcome"], "error:file-permissions");
    let end = run.end();
    assert_eq!(end["outcome"], "error:secret:file-permissions");
    assert!(
        end["args"]["error"].as_str().unwrap().contains("chmod 600"),
        "{end}"
    );
    assert!(run.events("secret.use").is_empty(), "the tool never ran");
    run.assert_recorded();
    assert_nowhere(&sb, &run, &value);
}

#[test]
fn a_missing_env_var_ends_the_task_naming_secret_and_provider() {
    let sb = sandbox(
        r#"[[secrets]]
name = "github"
source = "env:WARDEN_TEST_UNSET_TOKEN"
purpose = "read issues"
hmac = true
"#,
    );
    let run = sb.run(&hmac_input("github", "x"));
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains(
            "could not start: secret \"github\" (env:WARDEN_TEST_UNSET_TOKEN): WARDEN_TEST_UNSET_TOKEN is not set in warden's environment"
        ),
        "{run:#?}"
    );
    assert_eq!(run.events("secret.fetch")[0]["outcome"], "error:env-unset");
    run.assert_recorded();
}

#[test]
fn an_unknown_name_is_denied_and_recorded() {
    let value = fresh_value();
    let sb = sandbox(
        r#"[[secrets]]
name = "signer"
source = "env:WARDEN_TEST_SIGNER"
purpose = "sign"
hmac = true

[[secrets]]
name = "github"
source = "env:WARDEN_TEST_SIGNER"
purpose = "read issues"
hmac = true
"#,
    );
    let run = sb.run_with(
        &hmac_input("aws", "x"),
        &[("WARDEN_TEST_SIGNER", value.as_str())],
    );
    let out = run.json();
    assert_eq!(out["ok"], false, "{run:#?}");
    assert_eq!(out["kind"], "unknown");
    assert_eq!(
        out["error"],
        "no secret named \"aws\" is bound by the manifest; it binds signer, github"
    );
    let d = run.denial("secret.open");
    assert_eq!(d["args"]["name"], "aws");
    assert_eq!(
        d["rule"],
        "no [[secrets]] entry is named that: the manifest binds signer, github"
    );
    assert_eq!(d["outcome"], "error:unknown");
    run.assert_recorded();
    assert_nowhere(&sb, &run, &value);
}

#[test]
fn reveal_needs_reveal_true_and_is_recorded_either_way() {
    let value = fresh_value();
    let entry = |reveal: bool| {
        format!(
            "[[secrets]]\nname = \"db\"\nsource = \"env:WARDEN_TEST_DB\"\npurpose = \"connect\"\nhmac = true\nreveal = {reveal}\n"
        )
    };
    let env = [("WARDEN_TEST_DB", value.as_str())];
    let input = r#"{"op":"secret_reveal","name":"db"}"#;

    let sb = sandbox(&entry(false));
    let run = sb.run_with(input, &env);
    let out = run.json();
    assert_eq!(out["ok"], false, "{run:#?}");
    assert_eq!(out["kind"], "denied");
    assert_eq!(
        out["error"],
        "secret \"db\" does not allow this: set secrets[0].reveal = true in the manifest to allow the tool to see it"
    );
    let uses = run.events("secret.use");
    assert_eq!(uses.len(), 1);
    assert_eq!(uses[0]["args"]["operation"], "reveal");
    assert_eq!(uses[0]["decision"], "deny");
    assert_eq!(
        uses[0]["rule"],
        "secrets[0].reveal is not true: the tool may not see db"
    );
    run.assert_recorded();
    assert_nowhere(&sb, &run, &value);

    let sb = sandbox(&entry(true));
    let run = sb.run_with(input, &env);
    assert_eq!(run.json(), json!({"ok": true, "value": value}), "{run:#?}");
    let uses = run.events("secret.use");
    assert_eq!(uses[0]["args"]["operation"], "reveal");
    assert_eq!(uses[0]["decision"], "allow");
    assert_eq!(uses[0]["rule"], "secrets[0] db: reveal = true");
    run.assert_recorded();
    // Revealed on purpose: in the result, and still in no record.
    let log = std::fs::read_to_string(&sb.audit).unwrap();
    assert!(!log.contains(&value));
}

#[test]
fn warden_check_lists_secrets_without_fetching_them() {
    let value = fresh_value();
    let sb = sandbox(
        r#"[[secrets]]
name = "github"
source = "env:WARDEN_TEST_GH"
purpose = "read issues"
inject = { url = "https://api.github.com/", header = "Authorization", format = "Bearer {}" }
ttl = "5m"

[[secrets]]
name = "db"
source = "vault:secret/app/db#password"
purpose = "connect"
reveal = true
"#,
    );
    let out = warden(
        &["check", sb.manifest.to_str().unwrap()],
        &[("WARDEN_TEST_GH", value.as_str())],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let expected = "secrets (fetched for each task, never shown):
  github from env:WARDEN_TEST_GH (provider env)
    purpose: read issues
    inject: header authorization = \"Bearer {}\" into requests matching https://api.github.com/
    ttl: 5m, then fetched again
    hmac: no
    reveal: no, the tool never sees the value
  db from vault:secret/app/db#password (provider vault)
    purpose: connect
    inject: none
    ttl: none (kept for the task, unless a vault lease is shorter)
    hmac: no
    reveal: yes, the tool may read the value itself
";
    assert!(stdout.contains(expected), "{stdout}");
    assert!(!stdout.contains(&value));
}

/// `vault:` against a real OpenBao: a KV v2 secret at a path of this test's own.
struct VaultCase {
    path: String,
    value: String,
    sb: Sandbox,
}

fn vault_case(test: &str, field: &str, extra: &str, timeout: &str) -> VaultCase {
    let bao = bao();
    let path = unique_path(test);
    let value = fresh_value();
    bao.put(&path, json!({ "api_key": value, "owner": "team-payments" }));
    let sb = sandbox_with(
        &format!(
            "[[secrets]]\nname = \"payments\"\nsource = \"vault:secret/{path}#{field}\"\npurpose = \"sign payment requests\"\nhmac = true\n{extra}"
        ),
        timeout,
    );
    VaultCase { path, value, sb }
}

fn vault_env(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("VAULT_ADDR", bao().addr.clone()),
        ("VAULT_TOKEN", token.to_owned()),
    ]
}

fn run_env(sb: &Sandbox, input: &str, env: &[(&'static str, String)]) -> Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sb.run_with(input, &env)
}

#[test]
fn vault_secret_with_token_from_the_environment() {
    let c = vault_case("env-token", "api_key", "", "2s");
    let run = run_env(
        &c.sb,
        &hmac_input("payments", "order-17"),
        &vault_env(&bao().token),
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        run.json()["hex"],
        hmac_hex(&c.value, "order-17", false),
        "{run:#?}"
    );
    let fetch = run.events("secret.fetch");
    assert_eq!(fetch[0]["args"]["provider"], "vault");
    assert_eq!(
        fetch[0]["args"]["source"],
        format!("vault:secret/{}#api_key", c.path)
    );
    assert_eq!(fetch[0]["args"]["version"], 1);
    // KV v2 reads carry no lease; the record says so rather than leaving it out.
    assert_eq!(
        fetch[0]["args"]["lease"],
        json!({"id": "", "duration_s": 0, "renewable": false})
    );
    assert_eq!(fetch[0]["resource"], "secret payments");
    assert_eq!(run.events("secret.use")[0]["args"]["version"], 1);
    run.assert_recorded();
    assert_nowhere(&c.sb, &run, &c.value);
    assert!(
        !std::fs::read_to_string(&c.sb.audit)
            .unwrap()
            .contains(&bao().token)
    );
}

#[test]
fn vault_secret_with_token_from_a_file() {
    use std::os::unix::fs::PermissionsExt;
    let c = vault_case("file-token", "api_key", "", "2s");
    let token_file = c.sb.path("vault-token");
    std::fs::write(&token_file, format!("{}\n", bao().token)).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = vec![
        ("VAULT_ADDR", bao().addr.clone()),
        ("VAULT_TOKEN_FILE", token_file.display().to_string()),
    ];
    let run = run_env(&c.sb, &hmac_input("payments", "order-18"), &env);
    assert_eq!(
        run.json()["hex"],
        hmac_hex(&c.value, "order-18", false),
        "{run:#?}"
    );
    run.assert_recorded();
    assert_nowhere(&c.sb, &run, &c.value);

    // Without any token: a clear error, before the tool starts.
    let env = vec![("VAULT_ADDR", bao().addr.clone())];
    let run = run_env(&c.sb, &hmac_input("payments", "x"), &env);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains(&format!(
            "secret \"payments\" (vault:secret/{}#api_key): no vault token: set VAULT_TOKEN, or VAULT_TOKEN_FILE",
            c.path
        )),
        "{run:#?}"
    );
    run.assert_recorded();
}

#[test]
fn vault_refuses_a_wrong_token_with_a_clear_403() {
    let c = vault_case("wrong-token", "api_key", "", "2s");
    let wrong = format!("s.{}", random_hex(12));
    let run = run_env(&c.sb, &hmac_input("payments", "x"), &vault_env(&wrong));
    assert_eq!(run.code, 1, "{run:#?}");
    let expected = format!(
        "secret \"payments\" (vault:secret/{path}#api_key): vault at {addr} refused the token from VAULT_TOKEN for secret/data/{path} (403 permission denied): check that the token is valid, unexpired and allowed to read secret/data/{path}",
        path = c.path,
        addr = bao().addr,
    );
    assert!(run.stderr.contains(&expected), "{run:#?}");
    assert_eq!(
        run.events("secret.fetch")[0]["outcome"],
        "error:vault-forbidden"
    );
    run.assert_recorded();
    assert!(!run.stderr.contains(&wrong), "the token is not echoed");
    assert!(
        !std::fs::read_to_string(&c.sb.audit)
            .unwrap()
            .contains(&wrong)
    );
}

#[test]
fn vault_names_the_fields_a_secret_has_but_not_their_values() {
    let c = vault_case("missing-field", "apikey", "", "2s");
    let run = run_env(
        &c.sb,
        &hmac_input("payments", "x"),
        &vault_env(&bao().token),
    );
    assert_eq!(run.code, 1, "{run:#?}");
    let expected = format!(
        "secret \"payments\" (vault:secret/{path}#apikey): secret/data/{path} has no field \"apikey\"; its fields are \"api_key\", \"owner\"",
        path = c.path
    );
    assert!(run.stderr.contains(&expected), "{run:#?}");
    assert!(!run.stderr.contains("team-payments"), "{run:#?}");
    run.assert_recorded();
    assert_nowhere(&c.sb, &run, &c.value);

    // No such secret at all.
    let sb = sandbox(&format!(
        "[[secrets]]\nname = \"p\"\nsource = \"vault:secret/{}-none#k\"\npurpose = \"x\"\nhmac = true\n",
        c.path
    ));
    let run = run_env(&sb, &hmac_input("p", "x"), &vault_env(&bao().token));
    assert!(
        run.stderr.contains(&format!(
            "vault at {} has no secret at secret/data/{}-none (404)",
            bao().addr,
            c.path
        )),
        "{run:#?}"
    );
}

/// Reads the audit log while a task writes it: complete lines only.
fn records_so_far(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn vault_value_past_its_ttl_is_read_again_within_one_task() {
    let c = vault_case("ttl", "api_key", "ttl = \"1s\"\n", "20s");
    let input = json!({
        "op": "secret_hmac", "name": "payments", "data": "tick",
        "times": 2, "sleep_ms": 4000,
    })
    .to_string();
    let env = vault_env(&bao().token);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let child = warden_command(
        &[
            "run",
            c.sb.manifest.to_str().unwrap(),
            "--audit",
            c.sb.audit.to_str().unwrap(),
            "--input",
            &input,
        ],
        &env,
    )
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("warden starts");

    // The first use is in the log before the guest goes on (records are synced before a
    // call returns), so the new version is written while the guest sleeps; the sleep is
    // long so that a loaded machine still writes it in time.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !records_so_far(&c.sb.audit)
        .iter()
        .any(|r| r["event"] == "secret.use")
    {
        assert!(Instant::now() < deadline, "no first use recorded");
        std::thread::sleep(Duration::from_millis(10));
    }
    let rotated = fresh_value();
    let version = bao().put(&c.path, json!({ "api_key": rotated, "owner": "x" }));
    assert_eq!(version, 2);

    let out = child.wait_with_output().unwrap();
    let run = Run::new(out, crate::support::read_records(&c.sb.audit));
    assert_eq!(run.code, 0, "{run:#?}");
    let result = run.json();
    assert_eq!(
        result["hexes"],
        json!([
            hmac_hex(&c.value, "tick", false),
            hmac_hex(&rotated, "tick", false)
        ]),
        "{run:#?}"
    );
    let fetches = run.events("secret.fetch");
    assert_eq!(fetches.len(), 2, "{run:#?}");
    assert_eq!(fetches[0]["args"]["reason"], "task");
    assert_eq!(fetches[0]["args"]["ttl_s"], 1.0);
    assert_eq!(fetches[1]["args"]["reason"], "expired");
    assert_eq!(fetches[1]["args"]["version"], 2);
    assert_eq!(fetches[1]["outcome"], "ok");
    let uses = run.events("secret.use");
    assert_eq!(uses[0]["args"]["version"], 1);
    assert_eq!(uses[1]["args"]["version"], 2);
    run.assert_recorded();
    assert_nowhere(&c.sb, &run, &c.value);
    assert_nowhere(&c.sb, &run, &rotated);
}

#[test]
fn vault_over_https_trusts_the_ca_that_vault_cacert_names() {
    let tls = bao_tls();
    let path = unique_path("tls");
    let value = fresh_value();
    tls.put(&path, json!({ "api_key": value }));
    let sb = sandbox(&format!(
        "[[secrets]]\nname = \"payments\"\nsource = \"vault:secret/{path}#api_key\"\npurpose = \"x\"\nhmac = true\n"
    ));
    let ca = tls.ca.as_ref().unwrap().display().to_string();
    let mut env = vec![
        ("VAULT_ADDR", tls.addr.clone()),
        ("VAULT_TOKEN", tls.token.clone()),
        ("VAULT_CACERT", ca),
    ];
    let run = run_env(&sb, &hmac_input("payments", "over-tls"), &env);
    assert_eq!(
        run.json()["hex"],
        hmac_hex(&value, "over-tls", false),
        "{run:#?}"
    );
    run.assert_recorded();
    assert_nowhere(&sb, &run, &value);

    // The Web PKI roots do not know the dev server's CA: refused, with the fix.
    env.pop();
    let run = run_env(&sb, &hmac_input("payments", "x"), &env);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains(&format!("TLS with vault at {} failed: ", tls.addr)),
        "{run:#?}"
    );
    assert!(run.stderr.contains("set VAULT_CACERT"), "{run:#?}");
    assert_eq!(run.events("secret.fetch")[0]["outcome"], "error:vault-tls");
    run.assert_recorded();
}

/// A tool holding a secret the host only injects tries to use it as an HMAC oracle (to
/// sign what it likes, or to test guesses of the value): refused, with a deny record,
/// unless the entry says `hmac = true`; and a grant narrowed to `inject` refuses it too,
/// where the manifest would allow it.
#[test]
fn each_use_of_a_secret_is_a_permission_of_its_own() {
    let value = fresh_value();
    let env = [("WARDEN_TEST_API", value.as_str())];
    let inject_only = sandbox(
        r#"[[secrets]]
name = "api"
source = "env:WARDEN_TEST_API"
purpose = "call the API"
inject = { url = "https://api.example.com/", header = "x-api-key" }
"#,
    );
    let run = inject_only.run_with(&hmac_input("api", "guess"), &env);
    let out = run.json();
    assert_eq!(out["ok"], false, "{run:#?}");
    assert_eq!(out["kind"], "denied", "{run:#?}");
    assert_eq!(
        out["error"],
        "secret \"api\" does not allow this: set secrets[0].hmac = true in the manifest to allow the tool to sign with it"
    );
    let uses = run.events("secret.use");
    assert_eq!(uses.len(), 1, "{run:#?}");
    assert_eq!(uses[0]["decision"], "deny");
    assert_eq!(uses[0]["args"]["operation"], "hmac-sha256");
    assert_eq!(
        uses[0]["rule"],
        "secrets[0].hmac is not true: the tool may not sign with api"
    );
    assert!(!run.stdout.contains(&hmac_hex(&value, "guess", false)));
    run.assert_recorded();
    assert_nowhere(&inject_only, &run, &value);

    // The manifest allows both; a grant for inject alone does not sign.
    let both = sandbox(
        r#"[[secrets]]
name = "api"
source = "env:WARDEN_TEST_API"
purpose = "call the API"
inject = { url = "https://api.example.com/", header = "x-api-key" }
hmac = true
"#,
    );
    let state = tempfile::tempdir().unwrap();
    let state_env = ("XDG_STATE_HOME", state.path().to_str().unwrap());
    let m = both.manifest.to_str().unwrap();
    let issue = |narrow: &str| {
        let out = warden(
            &["grant", "issue", m, "--narrow", narrow],
            &[state_env],
            None,
        );
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let run_granted = |token: &str| {
        let before = both.records().len();
        let out = warden(
            &[
                "run",
                m,
                "--audit",
                both.audit.to_str().unwrap(),
                "--grant",
                token,
                "--input",
                &hmac_input("api", "guess"),
            ],
            &[state_env, env[0]],
            None,
        );
        let records = both.records().split_off(before);
        Run::new(out, records)
    };
    let run = run_granted(&issue("secrets=api:inject"));
    assert_eq!(run.json()["kind"], "denied", "{run:#?}");
    assert_eq!(run.events("secret.use")[0]["decision"], "deny");
    assert_nowhere(&both, &run, &value);
    let run = run_granted(&issue("secrets=api"));
    assert_eq!(
        run.json()["hex"],
        hmac_hex(&value, "guess", false),
        "{run:#?}"
    );
    // A child cannot ask for a use its parent lacks.
    let out = warden(
        &["grant", "issue", m, "--narrow", "secrets=api:reveal"],
        &[state_env],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("secrets: api:reveal is wider than the parent's api:inject+hmac, which does not allow reveal"),
        "{out:?}"
    );
}

/// `[env] pass` would copy the variable a secret is read from into the tool's
/// environment: the manifest is refused before anything runs.
#[test]
fn the_variable_a_secret_comes_from_is_not_passed_to_the_tool() {
    let value = fresh_value();
    let sb = sandbox(
        r#"[[secrets]]
name = "api"
source = "env:WARDEN_TEST_API"
purpose = "sign"
hmac = true
"#,
    );
    let text = std::fs::read_to_string(&sb.manifest).unwrap();
    let text = text.replace(
        r#"pass = ["WARDEN_PROBE_PASS"]"#,
        r#"pass = ["WARDEN_PROBE_PASS", "WARDEN_TEST_API"]"#,
    );
    std::fs::write(&sb.manifest, text).unwrap();
    let run = sb.run_with(
        r#"{"op":"env","name":"WARDEN_TEST_API"}"#,
        &[("WARDEN_TEST_API", value.as_str())],
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains(
            "env.pass[1]: \"WARDEN_TEST_API\" is where secrets[0] api is read from (source = \"env:WARDEN_TEST_API\"); passing it would give the tool the secret's value"
        ),
        "{run:#?}"
    );
    assert!(run.records.is_empty(), "nothing ran: {run:#?}");
    assert!(!run.stdout.contains(&value));
}
