//! Components that export plain functions, with no Warden SDK: `fs-tools` (world-level
//! `std::fs` functions under a read-only and a read-write grant) and `records` (an interface
//! of records, variants, enums, flags, options, results, tuples, lists, chars, floats and
//! every integer type), through the real CLI and the library.

use crate::support::{Capture, Run, Sandbox, example, warden, wasm};
use serde_json::{Value, json};
use std::sync::Arc;
use warden::manifest::Manifest;
use warden::{EngineConfig, Kind, Outcome, Runtime, TaskError, TaskRequest};

fn fs_tools() -> Sandbox {
    Sandbox::new("fs-tools", "fs_tools")
}

fn records() -> Sandbox {
    Sandbox::new("records", "records")
}

/// `warden run --call FUNC --input ARGS` on the sandbox's manifest.
fn call(sb: &Sandbox, func: &str, args: Value) -> Run {
    sb.run_args(&args.to_string(), &["--call", func], &[])
}

/// A call that succeeded, recorded as a task of this function; its JSON result.
fn ok(sb: &Sandbox, func: &str, args: Value) -> Value {
    let run = call(sb, func, args);
    assert_eq!(run.code, 0, "{func}: {run:#?}");
    run.assert_recorded();
    let start = &run.records[0];
    assert_eq!(start["args"]["kind"], "functions", "{start}");
    assert!(
        start["args"]["function"]
            .as_str()
            .is_some_and(|f| f.ends_with(func.rsplit('.').next().unwrap())),
        "{func}: {start}"
    );
    run.json()
}

/// A call refused before it ran: exit 2, nothing recorded; its message.
fn usage(sb: &Sandbox, func: &str, args: &str) -> String {
    let run = sb.run_args(args, &["--call", func], &[]);
    assert_eq!(run.code, 2, "{func} {args}: {run:#?}");
    assert!(run.records.is_empty(), "nothing runs: {run:#?}");
    run.stderr
}

/// The lines `warden inspect` prints for one function, up to the next one.
fn inspected<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let head = format!("  {name}: func(");
    let mut lines = text.lines().skip_while(|l| !l.starts_with(&head));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no {name} in {text}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| l.starts_with("    ")))
        .collect()
}

fn schema_line(lines: &[&str], which: &str) -> Value {
    let prefix = format!("    {which} schema: ");
    let line = lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {which} schema in {lines:#?}"));
    serde_json::from_str(line).expect("a schema is one line of JSON")
}

#[test]
fn inspect_prints_each_function_with_its_schemas() {
    let out = warden(&["inspect", wasm("fs_tools").to_str().unwrap()], &[], None);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kind: functions"), "{text}");
    // Kind, exports and imports are still there.
    assert!(text.contains("exports:\n  read-file\n"), "{text}");
    assert!(text.contains("imports:\n"), "{text}");
    let read = inspected(&text, "read-file");
    assert_eq!(
        read[0],
        "  read-file: func(path: string) -> result<string, string>"
    );
    assert_eq!(
        schema_line(&read, "input"),
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
            "additionalProperties": false,
        })
    );
    assert_eq!(
        schema_line(&read, "output"),
        json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "string"})
    );
    let size = inspected(&text, "file-size");
    assert_eq!(
        schema_line(&size, "output"),
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "integer", "minimum": 0, "maximum": u64::MAX,
        })
    );
    for f in ["write-file", "list-dir"] {
        inspected(&text, f);
    }

    let out = warden(&["inspect", wasm("records").to_str().unwrap()], &[], None);
    let text = String::from_utf8_lossy(&out.stdout);
    let summarize = inspected(&text, "people.summarize");
    assert_eq!(
        summarize[1],
        "    full name: local:records/people@0.1.0#summarize"
    );
    let input = schema_line(&summarize, "input");
    let user = &input["properties"]["users"]["items"];
    assert_eq!(user["required"], json!(["name", "age", "tags"]));
    assert_eq!(user["properties"]["age"]["maximum"], 255);
    let bytes = schema_line(&inspected(&text, "people.echo-bytes"), "input");
    assert_eq!(bytes["properties"]["data"]["contentEncoding"], "base64");
    // Two interfaces called `people` both export make-user: each goes by its full name.
    inspected(&text, "local:records/people@0.1.0#make-user");
    inspected(&text, "local:legacy/people@0.1.0#make-user");
    inspected(&text, "people.version");
}

#[test]
fn fs_tools_read_list_size_and_write_under_their_grants() {
    let sb = fs_tools();
    assert_eq!(
        ok(&sb, "read-file", json!({"path": "/ro/hello.txt"})),
        json!("hello from /ro\n")
    );
    assert_eq!(
        ok(&sb, "list-dir", json!({"path": "/ro"})),
        json!(["docs", "hello.txt"])
    );
    assert_eq!(
        ok(&sb, "file-size", json!({"path": "/ro/hello.txt"})),
        json!(15)
    );
    let written = ok(
        &sb,
        "write-file",
        json!({"path": "/rw/out.txt", "contents": "written by a function"}),
    );
    assert_eq!(written, Value::Null);
    assert_eq!(
        std::fs::read_to_string(sb.path("root/rw/out.txt")).unwrap(),
        "written by a function"
    );
    assert_eq!(
        ok(&sb, "read-file", json!({"path": "/rw/out.txt"})),
        json!("written by a function")
    );
    // A read records its open, and the write its intent before it is made.
    let run = call(
        &sb,
        "write-file",
        json!({"path": "/rw/b.txt", "contents": ""}),
    );
    let intent = run.events("call.intent");
    assert!(!intent.is_empty(), "{run:#?}");
    assert_eq!(intent[0]["rule"], "fs[1] /rw read-write");
}

#[test]
fn fs_tools_is_held_to_its_grants() {
    let sb = fs_tools();
    // Writing into the read-only grant: refused, recorded, and the function's err.
    let run = call(
        &sb,
        "write-file",
        json!({"path": "/ro/new.txt", "contents": "x"}),
    );
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("fs-tools failed (failed)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("/ro/new.txt"), "{}", run.stderr);
    let d = run.denial("open-at");
    assert!(
        d["rule"]
            .as_str()
            .unwrap()
            .contains("fs[0] /ro read is read-only"),
        "{d}"
    );
    assert_eq!(run.end()["outcome"], "error:failed");
    run.assert_recorded();
    assert!(!sb.path("root/ro/new.txt").exists());

    // Overwriting a file that is there: the same.
    let run = call(
        &sb,
        "write-file",
        json!({"path": "/ro/hello.txt", "contents": "pwned"}),
    );
    assert_eq!(run.code, 1, "{run:#?}");
    run.denial("open-at");
    assert_eq!(
        std::fs::read_to_string(sb.path("root/ro/hello.txt")).unwrap(),
        "hello from /ro\n"
    );

    // Climbing out of every grant.
    let run = call(&sb, "read-file", json!({"path": "/ro/../../etc/passwd"}));
    assert_eq!(run.code, 1, "{run:#?}");
    let d = run.denial("open-at");
    assert_eq!(d["resource"], "/etc/passwd");
    assert!(
        d["rule"]
            .as_str()
            .unwrap()
            .contains("no fs grant covers /etc/passwd"),
        "{d}"
    );
    assert!(!run.stderr.contains("root:"), "{}", run.stderr);

    // From the read-only grant into the read-write one, to write.
    let run = call(
        &sb,
        "write-file",
        json!({"path": "/ro/../rw/sneaky.txt", "contents": "x"}),
    );
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(!run.denials().is_empty(), "{run:#?}");
    assert!(!sb.path("root/rw/sneaky.txt").exists());

    // A path no grant names never reaches a directory: nothing is allowed.
    for (func, path) in [("read-file", "/etc/passwd"), ("list-dir", "/")] {
        let run = call(&sb, func, json!({ "path": path }));
        assert_eq!(run.code, 1, "{func} {path}: {run:#?}");
        assert!(
            !run.records.iter().any(|r| r["event"] == "call"
                && r["decision"] == "allow"
                && r["resource"]
                    .as_str()
                    .is_some_and(|p| !p.starts_with("/ro") && !p.starts_with("/rw"))),
            "{run:#?}"
        );
        run.assert_recorded();
    }

    // A symlink planted in a grant that points out of it is not followed.
    std::os::unix::fs::symlink("/etc/passwd", sb.path("root/ro/escape")).unwrap();
    let run = call(&sb, "read-file", json!({"path": "/ro/escape"}));
    assert_eq!(run.code, 1, "{run:#?}");
    let d = run.denial("open-at");
    assert!(d["rule"].as_str().unwrap().contains("symlink"), "{d}");
    let run = call(&sb, "file-size", json!({"path": "/ro/escape"}));
    assert_eq!(run.code, 1, "{run:#?}");
    run.denial("stat-at");
    // Nor is one into the read-write grant, which would make /ro a way to reach /rw.
    std::os::unix::fs::symlink("../rw", sb.path("root/ro/to-rw")).unwrap();
    let run = call(&sb, "list-dir", json!({"path": "/ro/to-rw"}));
    assert_eq!(run.code, 1, "{run:#?}");
    run.denial("open-at");
    // Listing the parent of a grant.
    let run = call(&sb, "list-dir", json!({"path": "/ro/.."}));
    assert_eq!(run.code, 1, "{run:#?}");
    let d = run.denial("open-at");
    assert!(
        d["rule"].as_str().unwrap().contains("leaves fs[0] /ro"),
        "{d}"
    );
}

#[test]
fn records_functions_convert_every_type_both_ways() {
    let sb = records();
    let user = ok(
        &sb,
        "local:records/people@0.1.0#make-user",
        json!({"name": "ada", "age": 36, "tags": ["b", "a", "b"]}),
    );
    assert_eq!(
        user,
        json!({"name": "ada", "age": 36, "tags": ["a", "b"], "email": null})
    );
    let users = json!([
        user,
        {"name": "bob", "age": 71, "tags": [], "email": "bob@example.com"},
        {"name": "cy", "age": 71, "tags": []},
    ]);
    assert_eq!(
        ok(&sb, "people.summarize", json!({ "users": users })),
        json!([3, "bob"])
    );
    assert_eq!(
        ok(&sb, "people.summarize", json!({"users": []})),
        json!([0, null])
    );
    assert_eq!(
        ok(&sb, "people.echo-bytes", json!({"data": "AAEC/w=="})),
        json!("/wIBAA==")
    );
    let area = ok(&sb, "people.area", json!({"s": {"circle": 1.0}}));
    assert!((area.as_f64().unwrap() - std::f64::consts::PI).abs() < 1e-12);
    assert_eq!(
        ok(&sb, "people.area", json!({"s": {"rect": [2, 3.5]}})),
        json!(7.0)
    );
    assert_eq!(ok(&sb, "people.area", json!({"s": "point"})), json!(0.0));
    assert_eq!(
        ok(
            &sb,
            "people.scale",
            json!({"s": {"rect": [1.5, 2]}, "by": 2})
        ),
        json!({"rect": [3.0, 4.0]})
    );
    assert_eq!(
        ok(&sb, "people.scale", json!({"s": "point", "by": 0.5})),
        json!("point")
    );
    assert_eq!(
        ok(&sb, "people.next-color", json!({"c": "blue"})),
        json!("red")
    );
    assert_eq!(
        ok(&sb, "people.invert", json!({"p": ["read"]})),
        json!(["write", "exec"])
    );
    assert_eq!(
        ok(&sb, "people.invert", json!({"p": []})),
        json!(["read", "write", "exec"])
    );
    assert_eq!(
        ok(&sb, "people.checked-div", json!({"a": 7, "b": -2})),
        json!(-3)
    );
    assert_eq!(
        ok(&sb, "people.describe-char", json!({"c": "é"})),
        json!([233, true, "É"])
    );
    assert_eq!(
        ok(&sb, "people.describe-char", json!({"c": "🦀"})),
        json!([0x1F980, false, "🦀"])
    );
    let sum: i128 = i128::from(i8::MIN)
        + i128::from(u8::MAX)
        + i128::from(i16::MIN)
        + i128::from(u16::MAX)
        + i128::from(i32::MIN)
        + i128::from(u32::MAX)
        + i128::from(i64::MIN)
        + i128::from(u64::MAX);
    assert_eq!(
        ok(
            &sb,
            "people.sum-ints",
            json!({"a": i8::MIN, "b": u8::MAX, "c": i16::MIN, "d": u16::MAX,
                   "e": i32::MIN, "f": u32::MAX, "g": i64::MIN, "h": u64::MAX}),
        ),
        json!(sum.to_string())
    );
    assert_eq!(
        ok(&sb, "people.parse-all", json!({"items": ["12", "x"]})),
        json!([{"ok": 12}, {"err": "\"x\": invalid digit found in string"}])
    );
    assert_eq!(
        ok(&sb, "people.bump", json!({"x": {"some": 4}})),
        json!({"some": 5})
    );
    assert_eq!(
        ok(&sb, "people.bump", json!({"x": {"some": null}})),
        json!({"some": null})
    );
    assert_eq!(ok(&sb, "people.bump", json!({"x": null})), Value::Null);
    // An option parameter may be left out.
    assert_eq!(ok(&sb, "people.bump", json!({})), Value::Null);
    assert_eq!(ok(&sb, "people.ping", json!({})), Value::Null);
    assert_eq!(ok(&sb, "people.version", json!({})), json!(1));
    assert_eq!(
        ok(
            &sb,
            "local:legacy/people@0.1.0#make-user",
            json!({"name": "x"})
        ),
        json!("hello, x")
    );
}

#[test]
fn an_err_result_is_a_tool_error() {
    let sb = records();
    let run = call(&sb, "people.checked-div", json!({"a": 1, "b": 0}));
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains("records failed (failed): \"cannot divide 1 by 0\""),
        "{}",
        run.stderr
    );
    assert_eq!(run.end()["outcome"], "error:failed");
    assert!(run.stdout.is_empty(), "{run:#?}");
}

#[test]
fn wrong_arguments_exit_2_naming_the_argument_and_the_type() {
    let sb = records();
    let make = "local:records/people@0.1.0#make-user";
    let cases = [
        (
            make,
            r#"{"name":"ada","age":-1,"tags":[]}"#,
            "argument age: expected u8 (0..=255), found -1",
        ),
        (
            make,
            r#"{"name":"ada","age":256,"tags":[]}"#,
            "argument age: expected u8 (0..=255), found 256",
        ),
        (
            make,
            r#"{"name":"ada","age":3,"tags":"a"}"#,
            "argument tags: expected list<string> (an array), found \"a\"",
        ),
        (
            make,
            r#"{"name":"ada","tags":[]}"#,
            "argument age: missing: expected u8",
        ),
        (
            make,
            r#"{"name":"ada","age":3,"tags":[],"nick":"a"}"#,
            "argument nick: no such parameter; local:records/people@0.1.0#make-user takes \
             name: string, age: u8, tags: list<string>, email: option<string>",
        ),
        (
            "people.summarize",
            r#"{"users":[{"name":"a","age":1,"tags":[]},{"name":"b","age":"old","tags":[]}]}"#,
            "argument users[1].age: expected u8 (0..=255), found \"old\"",
        ),
        (
            "people.summarize",
            r#"{"users":[{"name":"a","age":1,"tags":[],"extra":true}]}"#,
            "argument users[0].extra: no such field",
        ),
        (
            "people.describe-char",
            r#"{"c":"ab"}"#,
            "argument c: expected char (a string of exactly one Unicode scalar), found \"ab\"",
        ),
        (
            "people.echo-bytes",
            r#"{"data":[1,2]}"#,
            "argument data: expected list<u8> (a base64 string), found [1,2]",
        ),
        (
            "people.next-color",
            r#"{"c":"pink"}"#,
            "argument c: expected one of \"red\", \"green\", \"blue\", found \"pink\"",
        ),
        (
            "people.invert",
            r#"{"p":["read","read"]}"#,
            "argument p[1]: expected a flag",
        ),
        (
            "people.area",
            r#"{"s":{"square":1}}"#,
            "argument s: expected one of the cases",
        ),
        (
            "people.sum-ints",
            r#"{"a":0,"b":0,"c":0,"d":0,"e":0,"f":0,"g":0,"h":-1}"#,
            "argument h: expected u64 (0..=18446744073709551615), found -1",
        ),
        (
            "people.ping",
            r#"[]"#,
            "arguments: expected a JSON object keyed by parameter name",
        ),
        ("people.ping", r#"{"#, "--input is not valid JSON"),
    ];
    for (func, args, says) in cases {
        let stderr = usage(&sb, func, args);
        assert!(stderr.contains(says), "{func} {args}: {stderr}");
    }
}

#[test]
fn function_names_short_full_ambiguous_unknown_and_missing() {
    let sb = records();
    assert_eq!(ok(&sb, "people.version", json!({})), json!(1));
    assert_eq!(
        ok(&sb, "local:legacy/people@0.1.0#version", json!({})),
        json!(1)
    );
    let stderr = usage(&sb, "people.make-user", r#"{"name":"x"}"#);
    assert!(
        stderr.contains(
            "function \"people.make-user\" is ambiguous: call it by its full name, one of \
             local:records/people@0.1.0#make-user, local:legacy/people@0.1.0#make-user"
        ),
        "{stderr}"
    );
    let stderr = usage(&sb, "people.nope", "{}");
    assert!(
        stderr.contains("exports no function \"people.nope\"; it exports ")
            && stderr.contains("people.summarize"),
        "{stderr}"
    );
    // Without --call: the functions to choose from.
    let run = sb.run("{}");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr
            .contains("records exports functions: name the one to call (--call NAME), one of ")
            && run.stderr.contains("people.echo-bytes"),
        "{}",
        run.stderr
    );
    assert!(run.records.is_empty());

    // --call means nothing to a tool or a command.
    for (example, component) in [("echo", "echo"), ("wc", "wc")] {
        let sb = Sandbox::new(example, component);
        let run = sb.run_args("{}", &["--call", "invoke"], &[]);
        assert_eq!(run.code, 2, "{example}: {run:#?}");
        assert!(
            run.stderr
                .contains("exports no functions to call by name; run it without --call"),
            "{}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn the_library_lists_functions_and_runs_them_with_outputs_their_schemas_accept() {
    let runtime = Runtime::new(&EngineConfig::default()).unwrap();
    let tool = runtime
        .load(Manifest::load(&example("records")).unwrap())
        .unwrap();
    assert_eq!(tool.kind(), Kind::Functions);
    let names: Vec<&str> = tool.functions().iter().map(|f| f.name.as_str()).collect();
    assert!(names.contains(&"people.summarize"), "{names:?}");
    assert!(tool.functions().iter().all(|f| f.callable.is_ok()));
    let sink = Arc::new(Capture::default());
    let request = |call: &str, input: Value| {
        TaskRequest::new(input.to_string(), sink.clone())
            .agent("library-test")
            .call(call)
    };
    let calls = [
        (
            "people.summarize",
            json!({"users": [{"name": "a", "age": 1, "tags": []}]}),
        ),
        ("people.scale", json!({"s": {"circle": 2}, "by": 1.5})),
        ("people.invert", json!({"p": ["write"]})),
        ("people.parse-all", json!({"items": ["1", "-", "3"]})),
        ("people.bump", json!({"x": {"some": 1}})),
        ("people.echo-bytes", json!({"data": "aGVsbG8="})),
        ("people.describe-char", json!({"c": "z"})),
        ("people.ping", json!({})),
    ];
    for (name, args) in calls {
        let info = &tool.functions()[warden::func::resolve(tool.functions(), name).unwrap()];
        let input = jsonschema::draft202012::new(&info.input_schema).unwrap();
        assert!(
            input.is_valid(&args),
            "{name}: {args} fails its input schema"
        );
        let out = tool.run(request(name, args)).await.unwrap();
        let Outcome::Result(json) = out.outcome else {
            panic!("{name}: {:?}", out.outcome)
        };
        let value: Value = serde_json::from_str(&json).unwrap();
        let output = jsonschema::draft202012::new(&info.output_schema).unwrap();
        assert!(
            output.is_valid(&value),
            "{name}: {value} fails {}",
            info.output_schema
        );
    }
    // Bad arguments: nothing starts, nothing is recorded.
    let before = sink.records().len();
    let err = tool
        .run(request("people.next-color", json!({"c": 1})))
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::Arguments { .. }), "{err:?}");
    assert_eq!(sink.records().len(), before);
    let out = tool
        .run(request("people.checked-div", json!({"a": 1, "b": 0})))
        .await
        .unwrap();
    assert_eq!(
        out.outcome,
        Outcome::ToolError {
            kind: "failed",
            message: "\"cannot divide 1 by 0\"".into()
        }
    );
}
