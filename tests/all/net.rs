//! Sockets: off without `[[tcp]]`; with it, outgoing TCP connections only where a rule
//! allows, against a real server on 127.0.0.1 (HTTP egress is in `http.rs`). Every refusal
//! is checked on both sides: what the guest saw, and the deny record that says which
//! `[[tcp]]` line would allow it.

use crate::support::{Run, Sandbox, root};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A TCP server on 127.0.0.1 that answers each line with `echo: <line>`.
struct LineServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl LineServer {
    fn start() -> LineServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        // Lives as long as the test process: tests run in parallel, each with its own.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let mut line = String::new();
                if BufReader::new(&stream).read_line(&mut line).is_ok() {
                    let _ = writeln!(stream, "echo: {}", line.trim_end());
                }
            }
        });
        LineServer { port, accepted }
    }
}

/// A listener nobody serves: after a refused run, its backlog must be empty.
pub(crate) struct Silent(TcpListener);

impl Silent {
    pub(crate) fn new() -> Silent {
        Silent(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    pub(crate) fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }

    pub(crate) fn assert_untouched(&self) {
        self.0.set_nonblocking(true).unwrap();
        assert!(self.0.accept().is_err(), "nothing may have connected");
    }
}

/// The probe with its committed manifest plus these `[[tcp]]` connect rules.
fn probe_with(connect: &[String]) -> Sandbox {
    let sb = Sandbox::new("probe", "probe");
    let mut text =
        std::fs::read_to_string(root().join("guest-examples/probe/manifest.toml")).unwrap();
    for c in connect {
        text.push_str(&format!("\n[[tcp]]\nconnect = {c:?}\n"));
    }
    sb.write_manifest(&text, "probe");
    sb
}

/// Records of `call` (matched by the end of its WIT name).
fn calls<'a>(run: &'a Run, call: &str) -> Vec<&'a Value> {
    run.records
        .iter()
        .filter(|r| r["call"].as_str().is_some_and(|c| c.ends_with(call)))
        .collect()
}

fn rule(record: &Value) -> &str {
    record["rule"].as_str().unwrap_or_default()
}

#[test]
fn without_rules_sockets_are_off() {
    let silent = Silent::new();
    let sb = Sandbox::new("probe", "probe");
    let run = sb.run(&format!(
        r#"{{"op":"tcp","addr":"127.0.0.1:{}"}}"#,
        silent.port()
    ));
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    assert_eq!(run.json()["kind"], "PermissionDenied", "{run:#?}");
    let d = run.denial("create-tcp-socket");
    assert!(
        rule(d).contains("sockets and name lookup are off")
            && rule(d).contains("add a [[tcp]] entry with connect = \"host:port\""),
        "{d}"
    );
    run.assert_recorded();
    silent.assert_untouched();
}

#[test]
fn without_rules_name_lookup_is_off() {
    let sb = Sandbox::new("probe", "probe");
    let run = sb.run(r#"{"op":"tcp","addr":"localhost:9"}"#);
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let d = run.denial("resolve-addresses");
    assert_eq!(d["resource"], "localhost");
    assert!(rule(d).contains("sockets and name lookup are off"), "{d}");
    run.assert_recorded();
}

#[test]
fn an_allowed_connect_reaches_the_server_and_is_recorded() {
    let server = LineServer::start();
    let port = server.port;
    let sb = probe_with(&[format!("127.0.0.1:{port}")]);
    let run = sb.run(&format!(
        r#"{{"op":"tcp","addr":"127.0.0.1:{port}","send":"hello warden"}}"#
    ));
    let out = run.json();
    assert_eq!(out["ok"], true, "{run:#?}");
    assert_eq!(out["reply"], "echo: hello warden", "{run:#?}");
    assert_eq!(out["peer"], format!("127.0.0.1:{port}"));
    assert!(run.denials().is_empty(), "{run:#?}");

    let create = calls(&run, "create-tcp-socket");
    assert_eq!(create.len(), 1, "{run:#?}");
    assert_eq!(create[0]["decision"], "allow");
    assert_eq!(create[0]["outcome"], "ok");

    let connect = calls(&run, "start-connect");
    assert_eq!(connect.len(), 1, "{run:#?}");
    let c = connect[0];
    assert_eq!(c["decision"], "allow");
    assert_eq!(c["outcome"], "ok");
    assert_eq!(c["args"]["address"], format!("127.0.0.1:{port}"));
    assert_eq!(c["resource"], format!("127.0.0.1:{port}"));
    assert_eq!(rule(c), format!("tcp[0] connect = \"127.0.0.1:{port}\""));
    // The connection's streams are named after it in their summaries.
    let named = format!("tcp 127.0.0.1:{port} ");
    assert!(
        run.records.iter().any(|r| r["resource"]
            .as_str()
            .is_some_and(|s| s.starts_with(&named))),
        "{run:#?}"
    );
    run.assert_recorded();
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn another_port_of_an_allowed_address_is_refused() {
    let server = LineServer::start();
    let silent = Silent::new();
    let sb = probe_with(&[format!("127.0.0.1:{}", server.port)]);
    let run = sb.run(&format!(
        r#"{{"op":"tcp","addr":"127.0.0.1:{}","send":"x"}}"#,
        silent.port()
    ));
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    assert_eq!(run.json()["kind"], "PermissionDenied", "{run:#?}");
    let d = run.denial("start-connect");
    assert_eq!(d["outcome"], "error:access-denied");
    let expected = format!(
        "127.0.0.1:{q} is not allowed: port {q} is not the port {p} of tcp[0]; to allow this \
         connection, add a [[tcp]] entry with connect = \"127.0.0.1:{q}\"",
        q = silent.port(),
        p = server.port
    );
    assert_eq!(rule(d), expected);
    run.assert_recorded();
    silent.assert_untouched();
    assert_eq!(server.accepted.load(Ordering::SeqCst), 0);
}

#[test]
fn a_name_that_resolves_to_loopback_does_not_reach_it() {
    let silent = Silent::new();
    let q = silent.port();
    let sb = probe_with(&[format!("localhost:{q}")]);
    let run = sb.run(&format!(r#"{{"op":"tcp","addr":"localhost:{q}"}}"#));
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    assert_eq!(run.json()["kind"], "PermissionDenied", "{run:#?}");

    // The lookup itself is allowed, and recorded with what it returned.
    let lookup = calls(&run, "resolve-addresses");
    assert_eq!(lookup.len(), 1, "{run:#?}");
    assert_eq!(lookup[0]["decision"], "allow");
    assert_eq!(
        rule(lookup[0]),
        format!("tcp[0] connect = \"localhost:{q}\"")
    );
    let given: Vec<&Value> = calls(&run, "resolve-next-address")
        .into_iter()
        .filter(|r| r["args"]["address"].is_string())
        .collect();
    assert!(
        given
            .iter()
            .any(|r| r["args"]["address"] == "127.0.0.1" && r["resource"] == "localhost"),
        "{run:#?}"
    );

    // Every address the guest then tried was refused: loopback, reached by name only.
    let connects = calls(&run, "start-connect");
    assert!(!connects.is_empty(), "{run:#?}");
    assert!(connects.iter().all(|r| r["decision"] == "deny"), "{run:#?}");
    let v4 = connects
        .iter()
        .find(|r| r["args"]["address"] == format!("127.0.0.1:{q}"))
        .unwrap_or_else(|| panic!("no connect to 127.0.0.1: {run:#?}"));
    assert_eq!(
        rule(v4),
        format!(
            "127.0.0.1:{q} is a loopback address that localhost resolved to, and tcp[0] names \
             only localhost; to allow this connection, add a [[tcp]] entry with connect = \
             \"127.0.0.1:{q}\""
        )
    );
    run.assert_recorded();
    silent.assert_untouched();
}

#[test]
fn a_name_reaches_loopback_when_a_rule_names_the_address() {
    let server = LineServer::start();
    let p = server.port;
    let sb = probe_with(&[format!("localhost:{p}"), format!("127.0.0.1:{p}")]);
    let run = sb.run(&format!(
        r#"{{"op":"tcp","addr":"localhost:{p}","send":"by name"}}"#
    ));
    assert_eq!(run.json()["reply"], "echo: by name", "{run:#?}");
    let ok = calls(&run, "start-connect")
        .into_iter()
        .find(|r| r["decision"] == "allow")
        .unwrap_or_else(|| panic!("no allowed connect: {run:#?}"));
    assert_eq!(ok["args"]["address"], format!("127.0.0.1:{p}"));
    assert_eq!(rule(ok), format!("tcp[1] connect = \"127.0.0.1:{p}\""));
    run.assert_recorded();
}

#[test]
fn a_lookup_records_the_name_and_every_address_it_returned() {
    let sb = probe_with(&["localhost:5432".to_owned()]);
    let run = sb.run(r#"{"op":"resolve","name":"localhost"}"#);
    let out = run.json();
    assert_eq!(out["ok"], true, "{run:#?}");
    let mut seen: Vec<String> = out["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert!(seen.contains(&"127.0.0.1".to_owned()), "{run:#?}");
    let last = calls(&run, "resolve-next-address")
        .into_iter()
        .find(|r| r["args"]["addresses"].is_array())
        .unwrap_or_else(|| panic!("no end-of-lookup record: {run:#?}"));
    assert_eq!(last["resource"], "localhost");
    let mut recorded: Vec<String> = last["args"]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    seen.dedup();
    recorded.sort();
    recorded.dedup();
    assert_eq!(seen, recorded);
    run.assert_recorded();
}

#[test]
fn a_name_in_no_rule_is_not_looked_up() {
    let silent = Silent::new();
    let q = silent.port();
    let sb = probe_with(&[format!("127.0.0.1:{q}")]);
    let run = sb.run(&format!(r#"{{"op":"tcp","addr":"db.example.test:{q}"}}"#));
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let d = run.denial("resolve-addresses");
    assert_eq!(d["resource"], "db.example.test");
    assert_eq!(
        rule(d),
        "no [[tcp]] rule names \"db.example.test\"; to allow this lookup, add a [[tcp]] entry \
         with connect = \"db.example.test:<port>\""
    );
    assert!(calls(&run, "start-connect").is_empty(), "{run:#?}");
    run.assert_recorded();
    silent.assert_untouched();
}

#[test]
fn loopback_in_other_spellings_is_not_a_rule_for_a_public_address() {
    let silent = Silent::new();
    let q = silent.port();
    // A rule for a public address (never connected to): none of these is that address.
    let sb = probe_with(&[format!("93.184.216.34:{q}")]);

    // The guest passes the IPv4-mapped IPv6 address itself: no lookup.
    let run = sb.run(&format!(
        r#"{{"op":"tcp","addr":"[::ffff:127.0.0.1]:{q}"}}"#
    ));
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    let d = run.denial("start-connect");
    assert_eq!(d["args"]["address"], format!("[::ffff:127.0.0.1]:{q}"));
    assert!(
        rule(d).starts_with(&format!(
            "127.0.0.1:{q} (written as [::ffff:127.0.0.1]:{q}) is not allowed: no [[tcp]] rule \
             names 127.0.0.1"
        )),
        "{d}"
    );
    run.assert_recorded();

    // Decimal and hex forms are names to std, so they go to the lookup, which reads them
    // as 127.0.0.1 (as wasmtime's resolver would) and refuses them.
    for spelling in ["2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1"] {
        let run = sb.run(&format!(r#"{{"op":"tcp","addr":"{spelling}:{q}"}}"#));
        assert_eq!(run.json()["ok"], false, "{spelling}: {run:#?}");
        let d = run.denial("resolve-addresses");
        assert_eq!(d["resource"], spelling);
        assert!(calls(&run, "start-connect").is_empty(), "{run:#?}");
        run.assert_recorded();
    }
    silent.assert_untouched();
}

#[test]
fn udp_is_refused_even_with_tcp_rules() {
    let target = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let sb = probe_with(&[format!("127.0.0.1:{port}")]);
    let run = sb.run(&format!(r#"{{"op":"udp","addr":"127.0.0.1:{port}"}}"#));
    assert_eq!(run.json()["ok"], false, "{run:#?}");
    assert_eq!(run.json()["stage"], "bind", "{run:#?}");
    let d = run.denial("create-udp-socket");
    assert_eq!(
        rule(d),
        "no manifest entry allows UDP: [[tcp]] grants outgoing TCP connections only"
    );
    run.assert_recorded();
    target.set_nonblocking(true).unwrap();
    assert!(target.recv(&mut [0; 16]).is_err(), "no datagram arrived");
}

#[test]
fn bind_and_listen_are_refused() {
    let sb = probe_with(&["127.0.0.1:5432".to_owned()]);

    let run = sb.run(r#"{"op":"tcp_listen","bind":"127.0.0.1:0"}"#);
    let out = run.json();
    assert_eq!(
        (&out["ok"], &out["stage"], &out["kind"]),
        (&false.into(), &"bind".into(), &"access-denied".into()),
        "{run:#?}"
    );
    let d = run.denial("start-bind");
    assert_eq!(d["args"]["local_address"], "127.0.0.1:0");
    assert!(rule(d).starts_with("no manifest entry allows bind"), "{d}");
    assert!(calls(&run, "start-listen").is_empty());
    run.assert_recorded();

    // Straight to listen, which would bind a port by itself.
    let run = sb.run(r#"{"op":"tcp_listen"}"#);
    let out = run.json();
    assert_eq!(
        (&out["stage"], &out["kind"]),
        (&"listen".into(), &"access-denied".into()),
        "{run:#?}"
    );
    let d = run.denial("start-listen");
    assert!(
        rule(d).starts_with("no manifest entry allows listen"),
        "{d}"
    );
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
    assert!(run.records.iter().any(|r| r["event"] == "call.summary"
        && r["args"]["calls"]["wasi:random/random.get-random-u64"].as_u64() > Some(0)));
    run.assert_recorded();
}
