//! `[env]`: the host environment is never inherited.

use crate::support::Sandbox;

#[test]
fn only_granted_variables_are_visible() {
    let sb = Sandbox::new("probe", "probe");
    let env = [
        ("WARDEN_PROBE_PASS", "passed"),
        ("HOME", "/root"),
        ("AWS_SECRET_ACCESS_KEY", "hunter2"),
    ];
    let run = sb.run_with(r#"{"op":"env_all"}"#, &env);
    let vars = &run.json()["vars"];
    assert_eq!(
        vars,
        &serde_json::json!({"GRANTED": "yes", "WARDEN_PROBE_PASS": "passed"}),
        "{run:#?}"
    );
    let call = run
        .records
        .iter()
        .find(|r| r["call"] == "wasi:cli/environment.get-environment")
        .expect("env read is recorded");
    // Names only: a value may be a credential.
    assert!(
        !serde_json::to_string(&run.records)
            .unwrap()
            .contains("passed")
    );
    assert_eq!(
        call["args"]["names"],
        serde_json::json!(["GRANTED", "WARDEN_PROBE_PASS"])
    );
    run.assert_recorded();

    let run = sb.run_with(r#"{"op":"env","name":"AWS_SECRET_ACCESS_KEY"}"#, &env);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
}

#[test]
fn pass_through_name_unset_on_the_host_is_absent() {
    let sb = Sandbox::new("probe", "probe");
    let run = sb.run(r#"{"op":"env","name":"WARDEN_PROBE_PASS"}"#);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
}
