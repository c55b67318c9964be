//! The example policies against crafted inputs, compile errors, failing closed, the
//! cache, and the input schema against the README.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::{Value, json};

use super::*;

/// 2026-11-23 00:00 UTC, a Monday.
const MONDAY: u64 = 1_795_392_000;

/// `day` days after Monday 2026-11-23 (0 = Monday), at `hour:minute` UTC.
fn at(day: u64, hour: u64, minute: u64) -> PolicyTime {
    PolicyTime::at(
        UNIX_EPOCH + Duration::from_secs(MONDAY + day * 86_400 + hour * 3600 + minute * 60),
    )
}

fn call_name(kind: CallKind) -> &'static str {
    match kind {
        CallKind::FsRead | CallKind::FsWrite => "wasi:filesystem/types.[method]descriptor.open-at",
        CallKind::Env => "wasi:cli/environment.get-environment",
        CallKind::Http => "wasi:http/outgoing-handler.handle",
        CallKind::Tcp => "wasi:sockets/tcp.[method]tcp-socket.start-connect",
        CallKind::Dns => "wasi:sockets/ip-name-lookup.resolve-addresses",
        CallKind::Secret => "warden:tool/secrets.hmac-sha256",
    }
}

/// A call of `kind` on `resource`, by a root grant, on a Wednesday at 10:00 UTC, with no
/// context.
fn input(kind: CallKind, resource: &str) -> PolicyInput {
    PolicyInput {
        agent: Some("planner".into()),
        tool: "notes".into(),
        task: "task-1".into(),
        grant: GrantInfo::root("g-1", None),
        call: CallInfo::new(call_name(kind), kind),
        resource: Some(resource.into()),
        method: (kind == CallKind::Http).then(|| "GET".to_owned()),
        context: Default::default(),
        client: Default::default(),
        time: at(2, 10, 0),
    }
}

fn with_context(mut input: PolicyInput, context: Value) -> PolicyInput {
    input.context = context.as_object().expect("an object").clone();
    input
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/policies")
}

fn example(name: &str) -> Policy {
    let path = examples_dir().join(name);
    Policy::load(&path).unwrap_or_else(|e| panic!("{name} does not load: {e}"))
}

fn compile(src: &str) -> Policy {
    Policy::from_source("p.rego", src).unwrap_or_else(|e| panic!("does not compile: {e}"))
}

/// Asserts a denial with exactly these messages.
#[track_caller]
fn assert_denied(verdict: &Verdict, messages: &[&str]) {
    assert!(!verdict.allowed, "allowed: {verdict:?}");
    assert_eq!(verdict.messages, messages);
}

#[track_caller]
fn assert_allowed(verdict: &Verdict) {
    assert!(verdict.allowed, "denied: {verdict:?}");
    assert!(verdict.messages.is_empty(), "{verdict:?}");
}

// --- The example policies ------------------------------------------------------------

#[test]
fn no_writes_unless_low_risk() {
    let policy = example("no-writes-unless-low-risk.rego");
    let write = |context: Value| {
        policy.evaluate(&with_context(
            input(CallKind::FsWrite, "/notes/a.md"),
            context,
        ))
    };

    for risk in [json!(0), json!(0.1), json!(0.29)] {
        let v = write(json!({ "risk": risk }));
        assert_allowed(&v);
        assert!(v.cacheable);
    }
    assert_denied(
        &write(json!({"risk": 0.3})),
        &["writes need context.risk below 0.3; context.risk is 0.3"],
    );
    let v = write(json!({"risk": 0.4}));
    assert_denied(
        &v,
        &["writes need context.risk below 0.3; context.risk is 0.4"],
    );
    assert!(v.cacheable);
    assert_denied(
        &write(json!({})),
        &["writes need context.risk below 0.3; no context.risk was given"],
    );
    // A string is not a number, however low it reads.
    assert_denied(
        &write(json!({"risk": "0.1"})),
        &["writes need context.risk below 0.3; context.risk is 0.1"],
    );

    // Only writes are its business.
    let read = with_context(input(CallKind::FsRead, "/notes/a.md"), json!({"risk": 0.9}));
    assert_allowed(&policy.evaluate(&read));
    assert_allowed(&policy.evaluate(&input(CallKind::Http, "https://example.com/")));
}

#[test]
fn business_hours() {
    let policy = example("business-hours.rego");
    let call = |time: PolicyTime| {
        let mut i = input(CallKind::FsRead, "/notes/a.md");
        i.time = time;
        policy.evaluate(&i)
    };

    for (day, hour, minute) in [(0, 9, 0), (2, 12, 30), (4, 16, 59)] {
        let v = call(at(day, hour, minute));
        assert_allowed(&v);
        // It reads the time, so no verdict of it may be reused.
        assert!(!v.cacheable);
    }
    let closed = |weekday: &str, hour: u32| {
        format!(
            "calls are allowed Monday to Friday, 9:00 to 17:00 UTC; it is {weekday}, hour {hour} UTC"
        )
    };
    assert_denied(&call(at(2, 8, 59)), &[&closed("Wednesday", 8)]);
    assert_denied(&call(at(2, 17, 0)), &[&closed("Wednesday", 17)]);
    assert_denied(&call(at(5, 12, 0)), &[&closed("Saturday", 12)]);
    assert_denied(&call(at(6, 10, 0)), &[&closed("Sunday", 10)]);
    assert!(!call(at(6, 10, 0)).cacheable);

    // Every kind of call, not only writes.
    let mut secret = input(CallKind::Secret, "github");
    secret.time = at(5, 12, 0);
    assert!(!policy.evaluate(&secret).allowed);
}

#[test]
fn no_secrets_below_depth_1() {
    let policy = example("no-secrets-below-depth-1.rego");
    let chain = |n: usize| -> GrantInfo {
        GrantInfo::new((0..=n).map(|i| format!("g{i}")).collect(), None).unwrap()
    };
    let secret_at = |depth: usize| {
        let mut i = input(CallKind::Secret, "github");
        i.grant = chain(depth);
        policy.evaluate(&i)
    };

    assert_allowed(&secret_at(0));
    assert_allowed(&secret_at(1));
    let v = secret_at(2);
    assert_denied(
        &v,
        &["secrets may be used at grant depth 1 or less; grant g2 is at depth 2 (g0 > g1 > g2)"],
    );
    assert!(v.cacheable);
    assert_denied(
        &secret_at(3),
        &[
            "secrets may be used at grant depth 1 or less; grant g3 is at depth 3 (g0 > g1 > g2 > g3)",
        ],
    );

    // Deep grants keep everything else their grant allows.
    let mut http = input(CallKind::Http, "https://api.github.com/repos/x");
    http.grant = chain(3);
    assert_allowed(&policy.evaluate(&http));
}

#[test]
fn examples_have_a_comment_header_that_says_how_to_use_them() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rego") {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(text.starts_with("# "), "{name}: no comment header");
        assert!(
            text.contains(&format!("file = \"{name}\"")),
            "{name}: the header does not show the [policy] section that uses it"
        );
        // Every example compiles, as it would at manifest load.
        Policy::load(&path).unwrap();
    }
    assert_eq!(seen, 3);
}

// --- Semantics ---------------------------------------------------------------------

#[test]
fn deny_reports_every_message_and_wins_over_allow() {
    let policy = compile(
        r#"package warden
        deny contains "b: second" if input.call.kind == "fs.write"
        deny contains "a: first" if input.call.kind == "fs.write"
        allow := true
        "#,
    );
    let v = policy.evaluate(&input(CallKind::FsWrite, "/x"));
    assert_denied(&v, &["a: first", "b: second"]);
    let denied = v.into_result(policy.name()).unwrap_err();
    assert_eq!(denied.message(), "policy p.rego: a: first; b: second");
    assert_allowed(&policy.evaluate(&input(CallKind::FsRead, "/x")));
}

#[test]
fn allow_makes_an_allow_list() {
    let policy = compile(
        r#"package warden
        default allow := false
        allow if input.call.kind == "fs.read"
        "#,
    );
    assert!(policy.has_allow());
    assert_allowed(&policy.evaluate(&input(CallKind::FsRead, "/x")));
    assert_denied(
        &policy.evaluate(&input(CallKind::Env, "HOME")),
        &["no allow rule matched this call"],
    );
    // Without a default, allow is undefined for other calls: the same refusal.
    let policy = compile("package warden\nallow if input.call.kind == \"fs.read\"\n");
    assert_denied(
        &policy.evaluate(&input(CallKind::Env, "HOME")),
        &["no allow rule matched this call"],
    );
}

#[test]
fn deny_may_be_a_boolean_or_one_message() {
    let policy = compile("package warden\ndeny if input.call.kind == \"env\"\n");
    assert_denied(
        &policy.evaluate(&input(CallKind::Env, "HOME")),
        &["deny is true"],
    );
    assert_allowed(&policy.evaluate(&input(CallKind::FsRead, "/x")));
    let policy = compile("package warden\ndeny := \"never\" if input.call.kind == \"env\"\n");
    assert_denied(&policy.evaluate(&input(CallKind::Env, "HOME")), &["never"]);
    // A message that is not a string is shown as JSON rather than lost.
    let policy = compile("package warden\ndeny contains {\"code\": 7} if true\n");
    assert_denied(
        &policy.evaluate(&input(CallKind::Env, "HOME")),
        &["{\"code\":7}"],
    );
}

#[test]
fn print_is_accepted() {
    let policy = compile(
        "package warden\ndeny contains \"env\" if {\n  print(\"kind\", input.call.kind)\n  input.call.kind == \"env\"\n}\n",
    );
    assert_denied(&policy.evaluate(&input(CallKind::Env, "HOME")), &["env"]);
}

#[test]
fn a_denial_is_one_line() {
    let denied = Denied {
        policy: "p.rego".into(),
        messages: vec!["two\n  lines".into(), "x".into()],
    };
    assert_eq!(denied.message(), "policy p.rego: two lines; x");
}

#[test]
fn evaluation_errors_deny_and_are_never_cached() {
    let policy = compile(
        "package warden\n\ndeny contains msg if {\n  msg := sprintf(\"%v\", [1 / input.context.zero])\n}\n\ncacheable := true\n",
    );
    let i = with_context(input(CallKind::FsRead, "/x"), json!({"zero": 0}));
    let v = policy.evaluate(&i);
    assert_denied(&v, &["policy error: p.rego:4:27: divide by zero"]);
    assert!(!v.cacheable);
    let cache = PolicyCache::new();
    assert!(policy.check(&i, &cache).is_err());
    assert!(cache.is_empty());

    // Built-ins are strict: a failing one does not make a deny rule quietly undefined.
    let policy =
        compile("package warden\ndeny contains \"risky\" if to_number(input.context.risk) > 0.5\n");
    let v = policy.evaluate(&with_context(
        input(CallKind::FsRead, "/x"),
        json!({"risk": "high"}),
    ));
    assert!(!v.allowed);
    assert!(
        v.messages[0].starts_with("policy error: p.rego:2:"),
        "{v:?}"
    );

    let policy = compile(
        "package warden\ndeny contains \"x\" if false\ncacheable := true\ncacheable := false if true\n",
    );
    let v = policy.evaluate(&input(CallKind::FsRead, "/x"));
    assert!(!v.allowed && !v.cacheable, "{v:?}");
    assert!(
        v.messages[0].starts_with("policy error: p.rego:4:"),
        "{v:?}"
    );

    let policy = compile("package warden\nallow := 1\n");
    assert_denied(
        &policy.evaluate(&input(CallKind::FsRead, "/x")),
        &["policy error: allow must be true or false, found 1"],
    );
    let policy = compile("package warden\ndeny contains \"x\" if false\ncacheable := \"yes\"\n");
    assert_denied(
        &policy.evaluate(&input(CallKind::FsRead, "/x")),
        &["policy error: cacheable must be true or false, found \"yes\""],
    );
    let policy = compile("package warden\ndeny := 3\n");
    assert_denied(
        &policy.evaluate(&input(CallKind::FsRead, "/x")),
        &["policy error: deny must be a set of messages, found 3"],
    );
}

#[test]
fn a_runaway_evaluation_is_stopped_and_denies() {
    // 25 million iterations: seconds of work, stopped by the time limit.
    let policy = compile(
        "package warden\ndeny contains \"never\" if {\n  some i in numbers.range(1, 5000)\n  some j in numbers.range(1, 5000)\n  i * j < 0\n}\n",
    );
    let start = Instant::now();
    let v = policy.evaluate(&input(CallKind::FsRead, "/x"));
    println!(
        "runaway policy stopped after {:?}: {:?}",
        start.elapsed(),
        v.messages
    );
    assert!(!v.allowed && !v.cacheable);
    assert!(v.messages[0].starts_with("policy error: "), "{v:?}");
}

// --- Compile errors ----------------------------------------------------------------

#[test]
fn compile_errors_name_file_line_and_column() {
    let cases = [
        (
            "package warden\n\ndeny contains msg if {\n  input.call.kind ==\n}\n",
            "p.rego:5:1: expecting expression",
        ),
        (
            "package warden\n\ndeny contains msg if {\n  x == 1\n}\n",
            "p.rego:4:3: use of undefined variable `x` is unsafe",
        ),
        (
            "package warden\nimport rego.v1\ndeny[\"x\"] { true }\n",
            "p.rego:3:11: `if` keyword is required before rule body",
        ),
        (
            "package warden\n\nhelper if {\n  startswith(input.resource, \"/x\")\n  sprintfx(\"%v\", [1])\n}\n\ndeny contains \"h\" if helper\n",
            "p.rego:5:3: unknown function sprintfx: neither a regorus built-in nor a function of this module",
        ),
        (
            "package warden\ndeny contains \"late\" if time.now_ns() > 0\n",
            "p.rego:2:36: unknown function time.now_ns: the time built-ins are not available, read input.time instead",
        ),
        (
            // Inside an assignment the compiler wraps the error; it is still found.
            "package warden\ndeny contains \"late\" if {\n  hour := time.clock([time.now_ns(), \"UTC\"])[0]\n  hour > 17\n}\n",
            "p.rego:3:21: unknown function time.clock: the time built-ins are not available, read input.time instead",
        ),
        (
            "# a comment\npackage authz\n\nallow := true\n",
            "p.rego:2: expected package warden, found package authz: a Warden policy starts with \"package warden\"",
        ),
        (
            "package warden\ncacheable := true\n",
            "p.rego: defines neither deny nor allow, so it would allow every call: add a rule such as \"deny contains msg if { ... }\"",
        ),
    ];
    for (src, want) in cases {
        let err = Policy::from_source("p.rego", src).unwrap_err();
        assert_eq!(err.to_string(), want, "for:\n{src}");
        assert!(!want.contains('\n'));
    }
    let err = Policy::from_source(
        "p.rego",
        "package warden\n\ndeny contains msg if {\n  x == 1\n}\n",
    )
    .unwrap_err();
    assert_eq!(err.line(), Some(4));
}

#[test]
fn valid_rego_that_the_function_check_cannot_compile_still_loads() {
    // `with` is beyond regorus's bytecode compiler, which the unknown-function check
    // uses; it must not turn into a refusal of a valid policy.
    let policy = compile(
        r#"package warden
        is_env if input.call.kind == "env"
        deny contains "env" if is_env with input.call.kind as "env"
        "#,
    );
    assert!(!policy.evaluate(&input(CallKind::FsRead, "/x")).allowed);
}

#[test]
fn load_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.rego");
    std::fs::write(&path, "package warden\ndeny contains msg if { x == 1 }\n").unwrap();
    let err = Policy::load(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2:24: use of undefined variable `x` is unsafe",
            path.display()
        )
    );
    let missing = dir.path().join("missing.rego");
    let err = Policy::load(&missing).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read policy {}: ", missing.display())),
        "{err}"
    );
    let good = dir.path().join("good.rego");
    std::fs::write(
        &good,
        "package warden\ndeny contains \"no\" if input.call.kind == \"env\"\n",
    )
    .unwrap();
    let policy = Policy::load(&good).unwrap();
    assert_eq!(policy.name(), good.display().to_string());
    let denied = policy
        .check(&input(CallKind::Env, "HOME"), &PolicyCache::new())
        .unwrap_err();
    assert_eq!(denied.message(), format!("policy {}: no", good.display()));
}

// --- The cache -----------------------------------------------------------------------

/// Denies when `context.flag` is true, a fact the cache key does not hold: a verdict
/// that comes back unchanged after the flag flipped came from the cache.
const FLAG: &str = "package warden\ndeny contains \"flagged\" if input.context.flag\n";

fn flagged(mut input: PolicyInput, flag: bool) -> PolicyInput {
    input.context.insert("flag".into(), json!(flag));
    input
}

#[test]
fn a_cacheable_verdict_is_reused_for_the_same_grant_call_and_resource_only() {
    let policy = compile(&format!("{FLAG}cacheable := true\n"));
    let cache = PolicyCache::new();
    let first = input(CallKind::Http, "https://example.com/a");
    assert!(policy.check(&flagged(first.clone(), false), &cache).is_ok());
    assert_eq!(cache.len(), 1);

    // The same grant, call, method and resource: the stored verdict, not the policy.
    assert!(policy.check(&flagged(first.clone(), true), &cache).is_ok());
    assert_eq!(cache.get(&policy, &first).map(|v| v.allowed), Some(true));

    // Any part of the key different: the policy is asked, and says no.
    let mut other_resource = first.clone();
    other_resource.resource = Some("https://example.com/b".into());
    let mut other_grant = first.clone();
    other_grant.grant = GrantInfo::new(vec!["g-1".into(), "g-2".into()], None).unwrap();
    let mut other_call = first.clone();
    other_call.call.name = "wasi:http/outgoing-handler.handle-other".into();
    let mut other_kind = first.clone();
    other_kind.call.kind = CallKind::Tcp;
    let mut other_method = first.clone();
    other_method.method = Some("POST".into());
    let mut no_resource = first.clone();
    no_resource.resource = None;
    for (what, i) in [
        ("resource", other_resource),
        ("grant", other_grant),
        ("call name", other_call),
        ("call kind", other_kind),
        ("method", other_method),
        ("no resource", no_resource),
    ] {
        let denied = policy.check(&flagged(i, true), &cache);
        assert_eq!(
            denied.unwrap_err().messages,
            ["flagged"],
            "a different {what} reused a cached verdict"
        );
    }
    // Cacheable denials are stored too.
    assert_eq!(cache.len(), 7);

    // Not in the key: agent, task, context, time; these reuse.
    let mut same_key = flagged(first, true);
    same_key.agent = None;
    same_key.task = "task-2".into();
    same_key.time = at(5, 3, 0);
    assert!(policy.check(&same_key, &cache).is_ok());

    cache.forget_grant("g-1");
    assert_eq!(cache.len(), 1, "only the g-2 verdict is left");
    assert_eq!(
        policy.check(&same_key, &cache).unwrap_err().messages,
        ["flagged"]
    );
    cache.clear();
    assert!(cache.is_empty());
}

#[test]
fn a_verdict_that_is_not_cacheable_is_never_stored() {
    let cache = PolicyCache::new();
    let i = input(CallKind::FsRead, "/x");
    for src in [
        FLAG.to_owned(),
        format!("{FLAG}cacheable := false\n"),
        format!("{FLAG}cacheable if input.call.kind == \"fs.write\"\n"),
    ] {
        let policy = compile(&src);
        assert!(policy.check(&flagged(i.clone(), false), &cache).is_ok());
        assert!(cache.is_empty(), "stored a verdict of:\n{src}");
        assert!(policy.check(&flagged(i.clone(), true), &cache).is_err());
        let v = policy.evaluate(&flagged(i.clone(), false));
        assert!(!cache.insert(&policy, &i, &v));
        assert!(cache.is_empty());
    }

    // A conditional `cacheable`: writes are stored, reads are not.
    let policy = compile(&format!(
        "{FLAG}cacheable if input.call.kind == \"fs.write\"\n"
    ));
    let write = input(CallKind::FsWrite, "/x");
    assert!(policy.check(&flagged(write.clone(), false), &cache).is_ok());
    assert_eq!(cache.len(), 1);
    assert!(policy.check(&flagged(write, true), &cache).is_ok());
}

#[test]
fn the_cache_is_bounded_and_keyed_by_policy() {
    let cache = PolicyCache::with_capacity(1);
    let allows = compile(&format!("{FLAG}cacheable := true\n"));
    let denies = compile("package warden\ndeny contains \"all\" if true\ncacheable := true\n");
    let a = input(CallKind::FsRead, "/a");
    assert!(allows.check(&a, &cache).is_ok());
    // Full: the next verdict is not stored, so the flag is seen.
    let b = input(CallKind::FsRead, "/b");
    assert!(allows.check(&b, &cache).is_ok());
    assert!(allows.check(&flagged(b, true), &cache).is_err());
    assert_eq!(cache.len(), 1);
    // Another policy never gets the first one's verdict for the same key.
    let shared = PolicyCache::new();
    assert!(allows.check(&a, &shared).is_ok());
    assert!(denies.check(&a, &shared).is_err());
    assert_eq!(shared.len(), 2);
    // Capacity 0 stores nothing.
    let off = PolicyCache::with_capacity(0);
    assert!(allows.check(&a, &off).is_ok());
    assert!(off.is_empty());
}

#[test]
fn a_decision_sees_nothing_of_the_one_before() {
    // One policy decides call after call: nothing of one input, one rule value, one failed
    // evaluation or one print may reach the next decision.
    let policy = compile(
        "package warden\n\nflagged if input.context.flag\n\ndeny contains \"flagged\" if {\n  print(\"flag\", input.context)\n  flagged\n}\n\ndeny contains msg if {\n  msg := sprintf(\"%v\", [1 / input.context.zero])\n}\n",
    );
    let plain = input(CallKind::FsRead, "/x");
    for round in 0..20 {
        assert_allowed(&policy.evaluate(&plain));
        let flagged = with_context(plain.clone(), json!({"flag": true}));
        assert_denied(&policy.evaluate(&flagged), &["flagged"]);
        assert_allowed(&policy.evaluate(&plain));
        if round % 5 == 0 {
            let failing = with_context(plain.clone(), json!({"zero": 0}));
            let v = policy.evaluate(&failing);
            assert!(
                !v.allowed && v.messages[0].starts_with("policy error: "),
                "{v:?}"
            );
        }
    }
}

// --- Concurrency and cost -------------------------------------------------------------

#[test]
fn one_policy_serves_many_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Policy>();
    send_sync::<PolicyCache>();

    let policy = example("no-writes-unless-low-risk.rego");
    let cache = PolicyCache::new();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (policy, cache) = (&policy, &cache);
            s.spawn(move || {
                for n in 0..50 {
                    let risk = if (t + n) % 2 == 0 { 0.1 } else { 0.9 };
                    let i = with_context(
                        input(CallKind::FsWrite, &format!("/{t}/{n}")),
                        json!({"risk": risk}),
                    );
                    assert_eq!(policy.evaluate(&i).allowed, risk < 0.3);
                    assert_eq!(policy.check(&i, cache).is_ok(), risk < 0.3);
                }
            });
        }
    });
    assert_eq!(cache.len(), 200);
}

#[test]
fn cost_per_evaluation() {
    // Printed, never asserted: run with --nocapture to see it. Benches measure properly.
    let policy = example("no-writes-unless-low-risk.rego");
    let i = with_context(
        input(CallKind::FsWrite, "/notes/a.md"),
        json!({"risk": 0.4}),
    );
    let n = 2_000u32;
    let start = Instant::now();
    for _ in 0..n {
        assert!(!policy.evaluate(&i).allowed);
    }
    let uncached = start.elapsed() / n;
    let cache = PolicyCache::new();
    let start = Instant::now();
    for _ in 0..n {
        assert!(policy.check(&i, &cache).is_err());
    }
    let cached = start.elapsed() / n;
    println!("no-writes-unless-low-risk: {uncached:?} per evaluation, {cached:?} per cached check");
}

// --- The documented schema ------------------------------------------------------------

/// The input the README and the `input` module docs show.
fn documented_input() -> PolicyInput {
    PolicyInput {
        agent: Some("planner".into()),
        tool: "repo-search".into(),
        task: "7f3a9c".into(),
        grant: GrantInfo::new(
            vec!["g-root".into(), "g-child".into(), "g-leaf".into()],
            Some(UNIX_EPOCH + Duration::from_secs(MONDAY + 2 * 86_400 + 18 * 3600)),
        )
        .unwrap(),
        call: CallInfo::new(
            "wasi:filesystem/types.[method]descriptor.open-at",
            CallKind::FsWrite,
        ),
        resource: Some("/workspace/out.txt".into()),
        method: None,
        context: json!({"risk": 0.4}).as_object().unwrap().clone(),
        client: json!({"risk": 0}).as_object().unwrap().clone(),
        time: at(2, 17, 30),
    }
}

/// The first ```json block after `marker` in `text`.
fn json_block_after(text: &str, marker: &str) -> Value {
    let after = &text[text.find(marker).unwrap_or_else(|| panic!("no {marker:?}"))..];
    let start = after.find("```json\n").expect("a ```json block") + "```json\n".len();
    let end = after[start..].find("```").expect("the block's end");
    // The module docs hold the block inside `//!` comments.
    let block: String = after[start..start + end]
        .lines()
        .map(|l| l.trim_start().strip_prefix("//!").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&block).unwrap_or_else(|e| panic!("{e}:\n{block}"))
}

#[test]
fn the_input_schema_is_what_the_readme_documents() {
    let actual = serde_json::to_value(documented_input()).unwrap();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    assert_eq!(
        json_block_after(&readme, "<!-- policy-input -->"),
        actual,
        "README.md's policy input document differs from what PolicyInput serializes to"
    );
    assert_eq!(
        json_block_after(include_str!("input.rs"), "//! ```json"),
        actual,
        "the input module's docs differ from what PolicyInput serializes to"
    );
    // Every kind the README lists, spelt as serialized.
    for kind in [
        CallKind::FsRead,
        CallKind::FsWrite,
        CallKind::Env,
        CallKind::Http,
        CallKind::Tcp,
        CallKind::Dns,
        CallKind::Secret,
    ] {
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        assert!(
            readme.contains(&format!("`{kind}`")),
            "README does not list {kind}"
        );
    }
}
