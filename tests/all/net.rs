//! Sockets and name lookup are off (HTTP egress is in `http.rs`).

use crate::support::Sandbox;

#[test]
fn tcp_connect_is_denied_and_recorded() {
    let sb = Sandbox::new("probe", "probe");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let run = sb.run(&format!(r#"{{"op":"tcp","addr":"{addr}"}}"#));
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let d = run.denial("create-tcp-socket");
    assert!(
        d["rule"]
            .as_str()
            .unwrap()
            .contains("sockets and name lookup are off")
    );
    run.assert_recorded();
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "nothing connected");
}

#[test]
fn name_lookup_is_denied_and_recorded() {
    let sb = Sandbox::new("probe", "probe");
    let run = sb.run(r#"{"op":"tcp","addr":"localhost:9"}"#);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let d = run.denial("resolve-addresses");
    assert_eq!(d["resource"], "localhost");
    run.assert_recorded();
}

#[test]
fn tool_log_lines_reach_the_audit_log() {
    let sb = Sandbox::new("probe", "probe");
    let run = sb.run(r#"{"op":"log","message":"hello auditor"}"#);
    assert_eq!(run.code, 0, "{run:#?}");
    let log = run
        .records
        .iter()
        .find(|r| r["event"] == "log")
        .expect("log record");
    assert_eq!(log["args"]["message"], "hello auditor");
    assert_eq!(log["args"]["level"], "info");
    run.assert_recorded();
}

#[test]
fn clocks_and_random_are_allowed_and_summed() {
    let sb = Sandbox::new("probe", "probe");
    let run = sb.run(r#"{"op":"time"}"#);
    assert_eq!(run.json()["ok"], true, "{run:#?}");
    assert!(
        run.records
            .iter()
            .any(|r| r["event"] == "call.summary"
                && r["call"] == "wasi:random/random.get-random-u64")
    );
    run.assert_recorded();
}
