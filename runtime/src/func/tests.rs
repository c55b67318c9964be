//! The converters and schemas against real WIT types: each type is a parameter of a function
//! that a small component (written in WAT) imports, read back through wasmtime's types, as
//! the runtime reads an exported function's.

use super::json::{from_json, to_json};
use super::*;
use serde_json::{Value, json};
use wasmtime::component::Type;

/// Named types the fixtures may use, declared the way WIT tooling writes them.
const NAMED: &str = r#"
    (type $user' (record (field "name" string) (field "age" u8)
        (field "tags" (list string)) (field "email" (option string))))
    (import "user" (type $user (eq $user')))
    (type $shape' (variant (case "circle" f64) (case "rect" (tuple f32 f32)) (case "point")))
    (import "shape" (type $shape (eq $shape')))
    (type $color' (enum "red" "green" "blue"))
    (import "color" (type $color (eq $color')))
    (type $perms' (flags "read" "write" "exec"))
    (import "perms" (type $perms (eq $perms')))
    (import "res" (type $r (sub resource)))
"#;

fn engine() -> wasmtime::Engine {
    wasmtime::Engine::default()
}

/// The WIT types written in WAT as `wat`, in order.
fn types(wat: &[&str]) -> Vec<Type> {
    let imports: String = wat
        .iter()
        .enumerate()
        .map(|(i, t)| format!("(import \"t{i}\" (func (param \"x\" {t})))\n"))
        .collect();
    let text = format!("(component {NAMED} {imports})");
    let engine = engine();
    let component = wasmtime::component::Component::new(&engine, text)
        .unwrap_or_else(|e| panic!("fixture does not compile: {e:#}"));
    let ty = component.component_type();
    (0..wat.len())
        .map(
            |i| match ty.get_import(&engine, &format!("t{i}")).map(|e| e.ty) {
                Some(ComponentItem::ComponentFunc(f)) => f.params().next().expect("one param").1,
                other => panic!("t{i} is not a function: {other:?}"),
            },
        )
        .collect()
}

fn ty(wat: &str) -> Type {
    types(&[wat]).remove(0)
}

/// `v` converted to `ty` and back is `v` again, and both schemas agree.
fn round_trip(t: &Type, v: Value) {
    let val = from_json(t, &v, "x").unwrap_or_else(|e| panic!("{v} as {}: {e}", types::wit(t)));
    assert_eq!(to_json(t, &val), v, "{}", types::wit(t));
    let schema = schema::of(t);
    assert!(validator(&schema).is_valid(&v), "{v} fails {schema}");
}

/// The error converting `v` to `ty`, as it is shown.
fn error(t: &Type, v: Value) -> String {
    match from_json(t, &v, "x") {
        Ok(val) => panic!("{v} was taken as {}: {val:?}", types::wit(t)),
        Err(e) => {
            // What the converter refuses, the schema refuses too.
            assert!(
                !validator(&schema::of(t)).is_valid(&v),
                "the schema of {} accepts {v}",
                types::wit(t)
            );
            e.to_string()
        }
    }
}

fn validator(schema: &Value) -> jsonschema::Validator {
    assert!(
        jsonschema::meta::is_valid(schema),
        "not a valid schema: {schema}"
    );
    jsonschema::draft202012::new(schema).expect("schema compiles")
}

#[test]
fn scalars_round_trip() {
    round_trip(&ty("bool"), json!(true));
    round_trip(&ty("string"), json!("héllo"));
    round_trip(&ty("char"), json!("é"));
    round_trip(&ty("char"), json!("🦀"));
    round_trip(&ty("f64"), json!(0.1));
    round_trip(&ty("f32"), json!(0.1));
    round_trip(&ty("f32"), json!(-2.5));
    for s in ["NaN", "Infinity", "-Infinity"] {
        round_trip(&ty("f64"), json!(s));
        round_trip(&ty("f32"), json!(s));
    }
}

#[test]
fn every_integer_type_round_trips_its_bounds_and_refuses_one_past_them() {
    let cases: [(&str, i128, i128); 8] = [
        ("s8", -128, 127),
        ("u8", 0, 255),
        ("s16", -32768, 32767),
        ("u16", 0, 65535),
        ("s32", i32::MIN.into(), i32::MAX.into()),
        ("u32", 0, u32::MAX.into()),
        ("s64", i64::MIN.into(), i64::MAX.into()),
        ("u64", 0, u64::MAX.into()),
    ];
    for (name, min, max) in cases {
        let t = ty(name);
        let number =
            |n: i128| -> Value { serde_json::from_str(&n.to_string()).expect("a JSON number") };
        round_trip(&t, number(min));
        round_trip(&t, number(max));
        round_trip(&t, json!(7));
        for beyond in [min - 1, max + 1] {
            // Not `error`: past 2^53 a JSON number is a float to the schema validator too,
            // and i64::MIN - 1 is the same float as i64::MIN.
            let msg = from_json(&t, &number(beyond), "x").unwrap_err().to_string();
            assert!(
                msg.starts_with(&format!(
                    "argument x: expected {name} ({min}..={max}), found "
                )),
                "{msg}"
            );
        }
    }
    assert_eq!(
        error(&ty("u8"), json!(-1)),
        "argument x: expected u8 (0..=255), found -1"
    );
    assert_eq!(
        error(&ty("s32"), json!(1.5)),
        "argument x: expected s32 (-2147483648..=2147483647), found 1.5"
    );
    assert_eq!(
        error(&ty("u16"), json!("3")),
        "argument x: expected u16 (0..=65535), found \"3\""
    );
    // JSON Schema counts 3.0 as an integer; so does the converter.
    let three = from_json(&ty("u8"), &json!(3.0), "x").unwrap();
    assert_eq!(to_json(&ty("u8"), &three), json!(3));
}

#[test]
fn scalar_errors_name_the_type() {
    assert_eq!(
        error(&ty("bool"), json!(1)),
        "argument x: expected bool (true or false), found 1"
    );
    assert_eq!(
        error(&ty("string"), json!(null)),
        "argument x: expected string, found null"
    );
    let one = "argument x: expected char (a string of exactly one Unicode scalar), found";
    assert_eq!(error(&ty("char"), json!("ab")), format!("{one} \"ab\""));
    assert_eq!(error(&ty("char"), json!("")), format!("{one} \"\""));
    assert_eq!(error(&ty("char"), json!(65)), format!("{one} 65"));
    assert_eq!(
        error(&ty("f64"), json!("1.5")),
        "argument x: expected f64 (a number), found \"1.5\""
    );
    assert!(
        error(&ty("f32"), json!(1e39)).contains("expected f32 (a number from"),
        "f32 overflow"
    );
    // The largest f32 as Rust prints it is still an f32.
    round_trip(&ty("f32"), json!(3.4028235e38));
}

#[test]
fn bytes_are_base64() {
    let t = ty("(list u8)");
    round_trip(&t, json!(""));
    round_trip(&t, json!("AAEC/w=="));
    let val = from_json(&t, &json!("aGk="), "x").unwrap();
    assert_eq!(val, Val::List(vec![Val::U8(b'h'), Val::U8(b'i')]));
    assert!(error(&t, json!("not base64!")).starts_with(
        "argument x: expected list<u8> (a base64 string), found a string that is not base64"
    ));
    assert!(error(&t, json!("aGk")).contains("not base64"), "unpadded");
    assert_eq!(
        error(&t, json!([1, 2])),
        "argument x: expected list<u8> (a base64 string), found [1,2]"
    );
}

#[test]
fn lists_and_tuples() {
    let list = ty("(list string)");
    round_trip(&list, json!([]));
    round_trip(&list, json!(["a", "b"]));
    assert_eq!(
        error(&list, json!(["a", 2])),
        "argument x[1]: expected string, found 2"
    );
    assert_eq!(
        error(&list, json!("a")),
        "argument x: expected list<string> (an array), found \"a\""
    );
    let tuple = ty("(tuple u32 (option string) char)");
    round_trip(&tuple, json!([1, null, "c"]));
    round_trip(&tuple, json!([1, "s", "c"]));
    assert_eq!(
        error(&tuple, json!([1, null])),
        "argument x: expected tuple<u32, option<string>, char> (an array of 3 items), found 2 items"
    );
    assert_eq!(
        error(&tuple, json!([1, null, "cc"])),
        "argument x[2]: expected char (a string of exactly one Unicode scalar), found \"cc\""
    );
}

#[test]
fn records_are_objects_whose_option_fields_may_be_absent() {
    let user = ty("$user");
    round_trip(
        &user,
        json!({"name": "ada", "age": 36, "tags": ["x"], "email": "a@b"}),
    );
    round_trip(
        &user,
        json!({"name": "ada", "age": 36, "tags": [], "email": null}),
    );
    // Absent is none, and comes back as null.
    let val = from_json(&user, &json!({"name": "ada", "age": 36, "tags": []}), "x").unwrap();
    assert_eq!(to_json(&user, &val)["email"], Value::Null);
    assert!(validator(&schema::of(&user)).is_valid(&json!({"name": "a", "age": 1, "tags": []})));
    assert_eq!(
        error(&user, json!({"name": "ada", "tags": []})),
        "argument x.age: missing: expected u8"
    );
    assert_eq!(
        error(
            &user,
            json!({"name": "ada", "age": 1, "tags": [], "agee": 2})
        ),
        "argument x.agee: no such field; the record has name, age, tags, email"
    );
    assert_eq!(
        error(&user, json!({"name": "ada", "age": 300, "tags": []})),
        "argument x.age: expected u8 (0..=255), found 300"
    );
    // Paths go all the way down.
    let users = ty("(list $user)");
    let msg = error(
        &users,
        json!([
            {"name": "a", "age": 1, "tags": []},
            {"name": "b", "age": 2, "tags": ["ok", "ok", 3]},
        ]),
    );
    assert_eq!(msg, "argument x[1].tags[2]: expected string, found 3");
}

#[test]
fn variants_are_a_case_name_or_an_object_of_one_case() {
    let shape = ty("$shape");
    round_trip(&shape, json!({"circle": 1.5}));
    round_trip(&shape, json!({"rect": [2.0, 3.0]}));
    round_trip(&shape, json!("point"));
    assert_eq!(
        error(&shape, json!("square")),
        "argument x: expected one of the cases circle, rect, point, found \"square\""
    );
    assert_eq!(
        error(&shape, json!({"point": null})),
        "argument x: expected case point written as \"point\": it has no payload, found {\"point\":null}"
    );
    assert_eq!(
        error(&shape, json!("circle")),
        "argument x: expected case circle written as {\"circle\": f64}, found \"circle\""
    );
    assert_eq!(
        error(&shape, json!({"circle": "big"})),
        "argument x.circle: expected f64 (a number), found \"big\""
    );
    assert!(
        error(&shape, json!({"circle": 1, "point": null})).contains("(a case name without"),
        "two cases at once"
    );
}

#[test]
fn enums_and_flags_are_names() {
    let color = ty("$color");
    round_trip(&color, json!("green"));
    assert_eq!(
        error(&color, json!("pink")),
        "argument x: expected one of \"red\", \"green\", \"blue\", found \"pink\""
    );
    let perms = ty("$perms");
    round_trip(&perms, json!([]));
    round_trip(&perms, json!(["read", "exec"]));
    assert_eq!(
        error(&perms, json!(["read", "read"])),
        "argument x[1]: expected a flag not given before, one of \"read\", \"write\", \"exec\", found \"read\""
    );
    assert!(error(&perms, json!(["fly"])).starts_with("argument x[0]: expected a flag"));
    assert!(error(&perms, json!("read")).contains("expected flags (an array of distinct names"));
}

#[test]
fn options_are_null_or_the_value_and_nested_ones_wrap_some() {
    let opt = ty("(option u8)");
    round_trip(&opt, json!(null));
    round_trip(&opt, json!(4));
    assert_eq!(
        error(&opt, json!(-4)),
        "argument x: expected u8 (0..=255), found -4"
    );
    let nested = ty("(option (option u8))");
    round_trip(&nested, json!(null));
    round_trip(&nested, json!({"some": null}));
    round_trip(&nested, json!({"some": 4}));
    assert_eq!(
        error(&nested, json!(4)),
        "argument x: expected option<option<u8>> (null or {\"some\": value}), found 4"
    );
    assert_eq!(
        error(&nested, json!({"some": "x"})),
        "argument x.some: expected u8 (0..=255), found \"x\""
    );
}

#[test]
fn results_are_ok_or_err_objects() {
    let r = ty("(result u32 (error string))");
    round_trip(&r, json!({"ok": 1}));
    round_trip(&r, json!({"err": "no"}));
    assert_eq!(
        error(&r, json!({"fine": 1})),
        "argument x: expected result<u32, string> ({\"ok\": value} or {\"err\": value}), found {\"fine\":1}"
    );
    assert_eq!(
        error(&r, json!({"ok": "1"})),
        "argument x.ok: expected u32 (0..=4294967295), found \"1\""
    );
    let unit = ty("(result (error string))");
    round_trip(&unit, json!({"ok": null}));
    assert_eq!(
        error(&unit, json!({"ok": 1})),
        "argument x.ok: expected null (this side of the result has no value), found 1"
    );
    let bare = ty("(result)");
    round_trip(&bare, json!({"ok": null}));
    round_trip(&bare, json!({"err": null}));
    assert!(error(&bare, json!("ok")).contains("{\"ok\": value}"));
}

#[test]
fn resources_are_not_passed_and_say_why() {
    let own = ty("(own $r)");
    let why = types::unsupported(&own).expect("a resource is unsupported");
    assert!(why.contains("resource handle"), "{why}");
    let msg = error(&own, json!(1));
    assert!(msg.contains("cannot be passed as JSON"), "{msg}");
    // Nested ones too.
    assert!(types::unsupported(&ty("(list (borrow $r))")).is_some());
    assert!(types::unsupported(&ty("(option (tuple u8 (own $r)))")).is_some());
    assert!(types::unsupported(&ty("$user")).is_none());
}

#[test]
fn schemas_accept_exactly_what_the_converter_takes() {
    // Each type, documents both accept, and documents both refuse.
    let cases: Vec<(&str, Vec<Value>, Vec<Value>)> = vec![
        (
            "u8",
            vec![json!(0), json!(255), json!(3.0)],
            vec![json!(-1), json!(256), json!(1.5), json!("1")],
        ),
        (
            "s64",
            vec![json!(i64::MIN), json!(i64::MAX)],
            vec![json!(9_223_372_036_854_775_808u64)],
        ),
        ("u64", vec![json!(u64::MAX), json!(0)], vec![json!(-1)]),
        (
            "f32",
            vec![json!(1.5), json!("NaN")],
            vec![json!(1e39), json!("nan"), json!(null)],
        ),
        (
            "char",
            vec![json!("a"), json!("🦀")],
            vec![json!(""), json!("ab"), json!('a' as u32)],
        ),
        (
            "(list u8)",
            vec![json!("AAEC"), json!("")],
            vec![json!("AAE"), json!("!!!!"), json!([0])],
        ),
        (
            "$user",
            vec![
                json!({"name": "a", "age": 1, "tags": []}),
                json!({"name": "a", "age": 1, "tags": ["t"], "email": null}),
            ],
            vec![
                json!({"name": "a", "tags": []}),
                json!({"name": "a", "age": 1, "tags": [], "x": 1}),
                json!([]),
            ],
        ),
        (
            "$shape",
            vec![
                json!("point"),
                json!({"circle": 2}),
                json!({"rect": [1, 2]}),
            ],
            vec![
                json!("circle"),
                json!({"point": null}),
                json!({"rect": [1]}),
                json!({}),
            ],
        ),
        ("$color", vec![json!("red")], vec![json!("Red"), json!(0)]),
        (
            "$perms",
            vec![json!([]), json!(["exec", "read"])],
            vec![json!(["read", "read"]), json!(["x"])],
        ),
        (
            "(option (option string))",
            vec![json!(null), json!({"some": null}), json!({"some": "s"})],
            vec![json!("s"), json!({"some": 1})],
        ),
        (
            "(result string (error u8))",
            vec![json!({"ok": "s"}), json!({"err": 1})],
            vec![json!({"ok": 1}), json!({"ok": "s", "err": 1}), json!("ok")],
        ),
        (
            "(tuple bool s8)",
            vec![json!([true, -1])],
            vec![json!([true]), json!([true, 1, 2])],
        ),
    ];
    for (wat, good, bad) in cases {
        let t = ty(wat);
        let v = validator(&schema::of(&t));
        for doc in good {
            assert!(v.is_valid(&doc), "{wat}: schema refuses {doc}");
            let val = from_json(&t, &doc, "x").unwrap_or_else(|e| panic!("{wat}: {e}"));
            // And what comes back out is valid too.
            let out = to_json(&t, &val);
            assert!(v.is_valid(&out), "{wat}: schema refuses the output {out}");
        }
        for doc in bad {
            assert!(!v.is_valid(&doc), "{wat}: schema accepts {doc}");
            assert!(
                from_json(&t, &doc, "x").is_err(),
                "{wat}: converter takes {doc}"
            );
        }
    }
}

#[test]
fn schemas_carry_bounds_encodings_and_names() {
    assert_eq!(
        schema::of(&ty("u8")),
        json!({"type": "integer", "minimum": 0, "maximum": 255})
    );
    assert_eq!(
        schema::of(&ty("s64")),
        json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX})
    );
    assert_eq!(
        schema::of(&ty("char")),
        json!({"type": "string", "minLength": 1, "maxLength": 1})
    );
    assert_eq!(schema::of(&ty("(list u8)"))["contentEncoding"], "base64");
    assert_eq!(
        schema::of(&ty("$color")),
        json!({"type": "string", "enum": ["red", "green", "blue"]})
    );
    let flags = schema::of(&ty("$perms"));
    assert_eq!(flags["uniqueItems"], true);
    assert_eq!(flags["items"]["enum"], json!(["read", "write", "exec"]));
    let user = schema::of(&ty("$user"));
    assert_eq!(user["required"], json!(["name", "age", "tags"]));
    assert_eq!(user["additionalProperties"], false);
    let shape = schema::of(&ty("$shape"));
    assert_eq!(
        shape["oneOf"][0],
        json!({"type": "string", "enum": ["point"]})
    );
    assert_eq!(shape["oneOf"].as_array().unwrap().len(), 3);
    let res = schema::of(&ty("(own $r)"));
    assert_eq!(res["not"], json!({}));
}

/// A function info for `params`, as [`functions`] would make for a world-level export.
fn info(name: &str, params: &[(&str, &str)], result: Option<&str>) -> FunctionInfo {
    let mut sig = String::new();
    for (n, t) in params {
        sig.push_str(&format!("(param \"{n}\" {t}) "));
    }
    if let Some(r) = result {
        sig.push_str(&format!("(result {r})"));
    }
    let text = format!("(component {NAMED} (import \"{name}\" (func {sig})))");
    let engine = engine();
    let c = wasmtime::component::Component::new(&engine, text).expect("fixture compiles");
    match c.component_type().get_import(&engine, name).map(|e| e.ty) {
        Some(ComponentItem::ComponentFunc(f)) => FunctionInfo::new(None, name, &f),
        _ => panic!("not a function"),
    }
}

#[test]
fn arguments_are_an_object_keyed_by_parameter_name() {
    let f = info(
        "make-user",
        &[
            ("name", "string"),
            ("age", "u8"),
            ("email", "(option string)"),
        ],
        Some("$user"),
    );
    let args = f.arguments(&json!({"name": "ada", "age": 36})).unwrap();
    assert_eq!(
        args,
        vec![Val::String("ada".into()), Val::U8(36), Val::Option(None)]
    );
    let err = |v: Value| f.arguments(&v).unwrap_err().to_string();
    assert_eq!(
        err(json!({"name": "ada"})),
        "argument age: missing: expected u8"
    );
    assert_eq!(
        err(json!({"name": "ada", "age": 1, "nick": "a"})),
        "argument nick: no such parameter; make-user takes name: string, age: u8, email: option<string>"
    );
    assert_eq!(
        err(json!(["ada", 36])),
        "arguments: expected a JSON object keyed by parameter name, found [\"ada\",36]; make-user takes name: string, age: u8, email: option<string>"
    );
    assert_eq!(
        err(json!({"name": "ada", "age": -1})),
        "argument age: expected u8 (0..=255), found -1"
    );
    assert_eq!(
        f.signature(),
        "func(name: string, age: u8, email: option<string>) -> record { name: string, age: u8, tags: list<string>, email: option<string> }"
    );
    // The input schema: every parameter but the option ones required, nothing else allowed.
    let v = validator(&f.input_schema);
    assert_eq!(f.input_schema["required"], json!(["name", "age"]));
    assert!(v.is_valid(&json!({"name": "ada", "age": 36})));
    assert!(!v.is_valid(&json!({"name": "ada"})));
    assert!(!v.is_valid(&json!({"name": "ada", "age": 36, "nick": 1})));
    assert_eq!(f.callable, Ok(()));
}

#[test]
fn results_unwrap_ok_and_turn_err_into_an_error() {
    let f = info(
        "read",
        &[("path", "string")],
        Some("(result string (error string))"),
    );
    let ok = Val::Result(Ok(Some(Box::new(Val::String("text".into())))));
    assert_eq!(f.returned(&[ok]), Ok(json!("text")));
    let err = Val::Result(Err(Some(Box::new(Val::String("gone".into())))));
    assert_eq!(f.returned(&[err]), Err(json!("gone")));
    assert_eq!(f.output_schema["type"], "string");
    assert!(validator(&f.output_schema).is_valid(&json!("text")));

    let unit = info("write", &[], Some("(result (error string))"));
    assert_eq!(unit.returned(&[Val::Result(Ok(None))]), Ok(Value::Null));
    assert_eq!(unit.output_schema["type"], "null");

    let none = info("ping", &[], None);
    assert_eq!(none.returned(&[]), Ok(Value::Null));
    assert_eq!(none.signature(), "func()");
    assert!(validator(&none.output_schema).is_valid(&Value::Null));
    let args = none.arguments(&json!({})).unwrap();
    assert!(args.is_empty());
    assert!(
        none.arguments(&json!({"x": 1}))
            .unwrap_err()
            .to_string()
            .contains("ping takes no arguments")
    );
}

#[test]
fn a_function_passing_a_resource_is_listed_but_not_callable() {
    let f = info("close", &[("handle", "(own $r)")], None);
    let why = f.callable.clone().unwrap_err();
    assert!(
        why.starts_with("parameter handle: it passes a resource handle"),
        "{why}"
    );
    assert_eq!(f.input_schema["properties"]["handle"]["not"], json!({}));
}

/// Infos named as [`functions`] names them, for the naming rules alone.
fn named(full_names: &[&str]) -> Vec<FunctionInfo> {
    let mut found: Vec<FunctionInfo> = full_names
        .iter()
        .map(|full| {
            let mut f = info("f", &[], None);
            let (name, _) = match full.split_once('#') {
                Some((i, func)) => (format!("{}.{func}", short_interface(i)), ()),
                None => (full.to_string(), ()),
            };
            f.name = name;
            f.full_name = full.to_string();
            f
        })
        .collect();
    let names: Vec<String> = found.iter().map(|f| f.name.clone()).collect();
    for f in &mut found {
        if names.iter().filter(|n| **n == f.name).count() > 1 {
            f.name = f.full_name.clone();
        }
    }
    found
}

#[test]
fn functions_are_called_by_short_or_full_name_and_ambiguity_is_refused() {
    let fs = named(&[
        "read-file",
        "local:demo/records@0.1.0#make-user",
        "local:demo/records@0.1.0#count",
        "other:pkg/records#count",
    ]);
    assert_eq!(fs[1].name, "records.make-user");
    assert_eq!(resolve(&fs, "read-file"), Ok(0));
    assert_eq!(resolve(&fs, "records.make-user"), Ok(1));
    assert_eq!(resolve(&fs, "local:demo/records@0.1.0#make-user"), Ok(1));
    assert_eq!(resolve(&fs, "other:pkg/records#count"), Ok(3));
    assert_eq!(
        resolve(&fs, "records.count"),
        Err(
            "function \"records.count\" is ambiguous: call it by its full name, one of \
             local:demo/records@0.1.0#count, other:pkg/records#count"
                .into()
        )
    );
    let unknown = resolve(&fs, "write-file").unwrap_err();
    assert_eq!(
        unknown,
        "the component exports no function \"write-file\"; it exports read-file, \
         records.make-user, local:demo/records@0.1.0#count, other:pkg/records#count"
    );
    assert_eq!(short_interface("wasi:cli/run@0.2.6"), "run");
    assert_eq!(short_interface("plain"), "plain");
}
