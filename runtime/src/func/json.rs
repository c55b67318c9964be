//! JSON to WIT values and back, by the function's own types.
//!
//! The conventions, one per type and the same both ways (the [module docs](super) show them
//! in a table): numbers for integers and floats, strings for `char`, `string` and enum cases,
//! arrays for lists and tuples, objects keyed by field name for records, `{"case": payload}`
//! for variant cases with a payload and `"case"` for those without, `null` or the value for
//! options, `{"ok": v}` / `{"err": e}` for results, an array of names for flags, and base64
//! for `list<u8>`.

use super::types::{int_range, is_bytes, kind, unsupported, wit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use wasmtime::component::{Type, Val};

/// The spellings of the floats JSON has no number for, accepted and produced as strings.
pub const NON_FINITE: [&str; 3] = ["NaN", "Infinity", "-Infinity"];

/// The largest magnitude an `f32` argument may have: `f32::MAX` as Rust prints it, which is a
/// little more than `f32::MAX` itself and rounds to it.
pub const F32_LIMIT: f64 = 3.4028235e38;

/// A JSON argument that does not fit its parameter's WIT type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentError {
    /// Where: empty when the arguments as a whole are wrong, else the parameter's name, then `.field`, `[index]`, `.case`, `.ok`/`.err` or
    /// `.some` down to the value that is wrong, e.g. `users[2].age`.
    pub path: String,
    /// What was expected and what was found, e.g. `expected u8 (0..=255), found -1`.
    pub message: String,
}

impl std::fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "arguments: {}", self.message)
        } else {
            write!(f, "argument {}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ArgumentError {}

impl ArgumentError {
    fn new(path: &str, message: impl Into<String>) -> Self {
        ArgumentError {
            path: path.to_string(),
            message: message.into(),
        }
    }

    fn expected(path: &str, what: impl std::fmt::Display, found: &Value) -> Self {
        Self::new(path, format!("expected {what}, found {}", shown(found)))
    }
}

/// A JSON value for a message: compact, and cut short when long.
pub(crate) fn shown(v: &Value) -> String {
    const MAX: usize = 60;
    let text = v.to_string();
    if text.chars().count() <= MAX {
        return text;
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}…")
}

/// Converts the JSON `v` to a value of type `ty`; `path` names it in errors.
pub fn from_json(ty: &Type, v: &Value, path: &str) -> Result<Val, ArgumentError> {
    if let Some((min, max)) = int_range(ty) {
        return int(ty, v, path, min, max);
    }
    let expected = |what: &str| ArgumentError::expected(path, what, v);
    Ok(match ty {
        Type::Bool => Val::Bool(
            v.as_bool()
                .ok_or_else(|| expected("bool (true or false)"))?,
        ),
        Type::Float32 => {
            let x = float(v).ok_or_else(|| expected("f32 (a number)"))?;
            if x.is_finite() && x.abs() > F32_LIMIT {
                return Err(expected(
                    "f32 (a number from -3.4028235e38 to 3.4028235e38)",
                ));
            }
            // Rounding to the nearest f32 is the conversion the type asks for.
            #[allow(clippy::cast_possible_truncation)]
            Val::Float32(x as f32)
        }
        Type::Float64 => Val::Float64(float(v).ok_or_else(|| expected("f64 (a number)"))?),
        Type::Char => {
            let s = v.as_str().unwrap_or_default();
            let mut chars = s.chars();
            match (v.is_string(), chars.next(), chars.next()) {
                (true, Some(c), None) => Val::Char(c),
                _ => return Err(expected("char (a string of exactly one Unicode scalar)")),
            }
        }
        Type::String => Val::String(v.as_str().ok_or_else(|| expected("string"))?.to_string()),
        _ if is_bytes(ty) => {
            let s = v
                .as_str()
                .ok_or_else(|| expected("list<u8> (a base64 string)"))?;
            let bytes = BASE64
                .decode(s)
                .map_err(|e| ArgumentError::new(path, format!("expected list<u8> (a base64 string), found a string that is not base64: {e}")))?;
            Val::List(bytes.into_iter().map(Val::U8).collect())
        }
        Type::List(l) => {
            let items = v
                .as_array()
                .ok_or_else(|| expected(&format!("{} (an array)", wit(ty))))?;
            let elem = l.ty();
            let vals = items
                .iter()
                .enumerate()
                .map(|(i, item)| from_json(&elem, item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?;
            Val::List(vals)
        }
        Type::Tuple(t) => {
            let types: Vec<Type> = t.types().collect();
            let what = format!("{} (an array of {} items)", wit(ty), types.len());
            let items = v.as_array().ok_or_else(|| expected(&what))?;
            if items.len() != types.len() {
                return Err(ArgumentError::new(
                    path,
                    format!("expected {what}, found {} items", items.len()),
                ));
            }
            let vals = types
                .iter()
                .zip(items)
                .enumerate()
                .map(|(i, (t, item))| from_json(t, item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?;
            Val::Tuple(vals)
        }
        Type::Record(r) => {
            let obj = v
                .as_object()
                .ok_or_else(|| expected(&format!("{} (an object)", wit(ty))))?;
            let names: Vec<&str> = r.fields().map(|f| f.name).collect();
            if let Some(unknown) = obj.keys().find(|k| !names.contains(&k.as_str())) {
                return Err(ArgumentError::new(
                    &format!("{path}.{unknown}"),
                    format!("no such field; the record has {}", names.join(", ")),
                ));
            }
            let mut fields = Vec::with_capacity(names.len());
            for f in r.fields() {
                let at = format!("{path}.{}", f.name);
                let val = match (obj.get(f.name), &f.ty) {
                    (Some(x), t) => from_json(t, x, &at)?,
                    // An absent option is `none`, as in most JSON APIs.
                    (None, Type::Option(_)) => Val::Option(None),
                    (None, t) => {
                        return Err(ArgumentError::new(
                            &at,
                            format!("missing: expected {}", wit(t)),
                        ));
                    }
                };
                fields.push((f.name.to_string(), val));
            }
            Val::Record(fields)
        }
        Type::Variant(var) => {
            let cases: Vec<(String, Option<Type>)> =
                var.cases().map(|c| (c.name.to_string(), c.ty)).collect();
            let what = format!(
                "{} (a case name without a payload, or {{\"case\": payload}})",
                wit(ty)
            );
            let (name, payload) = one_key(v).ok_or_else(|| expected(&what))?;
            let Some((_, case_ty)) = cases.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
                return Err(ArgumentError::expected(
                    path,
                    format!("one of the cases {}", names.join(", ")),
                    v,
                ));
            };
            let at = format!("{path}.{name}");
            let payload = match (case_ty, payload) {
                (None, None) => None,
                (Some(t), Some(p)) => Some(Box::new(from_json(t, p, &at)?)),
                (None, Some(_)) => {
                    return Err(ArgumentError::expected(
                        path,
                        format!("case {name} written as \"{name}\": it has no payload"),
                        v,
                    ));
                }
                (Some(t), None) => {
                    return Err(ArgumentError::expected(
                        path,
                        format!("case {name} written as {{\"{name}\": {}}}", wit(t)),
                        v,
                    ));
                }
            };
            Val::Variant(name.to_string(), payload)
        }
        Type::Enum(e) => {
            let names: Vec<&str> = e.names().collect();
            match v.as_str() {
                Some(s) if names.contains(&s) => Val::Enum(s.to_string()),
                _ => return Err(expected(&format!("one of {}", quoted(&names)))),
            }
        }
        Type::Flags(f) => {
            let names: Vec<&str> = f.names().collect();
            let what = format!("flags (an array of distinct names from {})", quoted(&names));
            let items = v.as_array().ok_or_else(|| expected(&what))?;
            let mut set: Vec<String> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) if names.contains(&s) && !set.iter().any(|x| x == s) => {
                        set.push(s.to_string())
                    }
                    _ => {
                        return Err(ArgumentError::expected(
                            &format!("{path}[{i}]"),
                            format!("a flag not given before, one of {}", quoted(&names)),
                            item,
                        ));
                    }
                }
            }
            Val::Flags(set)
        }
        Type::Option(o) => {
            let inner = o.ty();
            match (v, &inner) {
                (Value::Null, _) => Val::Option(None),
                // `null` is taken by the outer `none`, so an inner option is wrapped.
                (_, Type::Option(_)) => {
                    let some = v
                        .as_object()
                        .filter(|o| o.len() == 1)
                        .and_then(|o| o.get("some"))
                        .ok_or_else(|| {
                            expected(&format!("{} (null or {{\"some\": value}})", wit(ty)))
                        })?;
                    let at = format!("{path}.some");
                    Val::Option(Some(Box::new(from_json(&inner, some, &at)?)))
                }
                _ => Val::Option(Some(Box::new(from_json(&inner, v, path)?))),
            }
        }
        Type::Result(r) => {
            let what = format!("{} ({{\"ok\": value}} or {{\"err\": value}})", wit(ty));
            let (name, payload) = one_key(v)
                .filter(|(_, p)| p.is_some())
                .ok_or_else(|| expected(&what))?;
            let payload = payload.unwrap_or(&Value::Null);
            let side = match name {
                "ok" => r.ok(),
                "err" => r.err(),
                _ => return Err(expected(&what)),
            };
            let at = format!("{path}.{name}");
            let val = match side {
                Some(t) => Some(Box::new(from_json(&t, payload, &at)?)),
                None if payload.is_null() => None,
                None => {
                    return Err(ArgumentError::expected(
                        &at,
                        "null (this side of the result has no value)",
                        payload,
                    ));
                }
            };
            Val::Result(if name == "ok" { Ok(val) } else { Err(val) })
        }
        other => {
            let why = unsupported(other).unwrap_or_else(|| format!("a {}", kind(other)));
            return Err(ArgumentError::new(
                path,
                format!("cannot be passed as JSON: {why}"),
            ));
        }
    })
}

/// The one key of an object and its value, or a bare string as a key without a value.
fn one_key(v: &Value) -> Option<(&str, Option<&Value>)> {
    match v {
        Value::String(s) => Some((s, None)),
        Value::Object(o) if o.len() == 1 => o.iter().next().map(|(k, v)| (k.as_str(), Some(v))),
        _ => None,
    }
}

fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    q.join(", ")
}

fn int(ty: &Type, v: &Value, path: &str, min: i128, max: i128) -> Result<Val, ArgumentError> {
    let n: Option<i128> = match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                // JSON Schema counts 3.0 as an integer, and so does this; but only where a float
                // holds every integer exactly, so that -9223372036854775809, which serde_json
                // reads as the float nearest it, is not taken for i64::MIN.
                n.as_f64()
                    .filter(|x| x.fract() == 0.0 && x.abs() <= 9_007_199_254_740_992.0)
                    // Exact: the value is whole and well inside i128.
                    .map(|x| {
                        #[allow(clippy::cast_possible_truncation)]
                        let n = x as i128;
                        n
                    })
            }),
        _ => None,
    };
    let err = || ArgumentError::expected(path, format!("{} ({min}..={max})", wit(ty)), v);
    let n = n.filter(|n| (min..=max).contains(n)).ok_or_else(err)?;
    // In range, so every conversion below succeeds.
    let conv = |_| err();
    Ok(match ty {
        Type::S8 => Val::S8(i8::try_from(n).map_err(conv)?),
        Type::U8 => Val::U8(u8::try_from(n).map_err(conv)?),
        Type::S16 => Val::S16(i16::try_from(n).map_err(conv)?),
        Type::U16 => Val::U16(u16::try_from(n).map_err(conv)?),
        Type::S32 => Val::S32(i32::try_from(n).map_err(conv)?),
        Type::U32 => Val::U32(u32::try_from(n).map_err(conv)?),
        Type::S64 => Val::S64(i64::try_from(n).map_err(conv)?),
        _ => Val::U64(u64::try_from(n).map_err(conv)?),
    })
}

/// A JSON number, or one of the [`NON_FINITE`] spellings.
fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn float_json(x: f64) -> Value {
    match serde_json::Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => json!("NaN"),
        None if x > 0.0 => json!("Infinity"),
        None => json!("-Infinity"),
    }
}

/// Converts a value of type `ty`, as a component returned it, to JSON.
///
/// wasmtime has already checked `v` against `ty`; should the two ever disagree, the value is
/// written by its own shape rather than dropped.
pub fn to_json(ty: &Type, v: &Val) -> Value {
    match (ty, v) {
        (_, Val::Bool(b)) => json!(b),
        (_, Val::S8(n)) => json!(n),
        (_, Val::U8(n)) => json!(n),
        (_, Val::S16(n)) => json!(n),
        (_, Val::U16(n)) => json!(n),
        (_, Val::S32(n)) => json!(n),
        (_, Val::U32(n)) => json!(n),
        (_, Val::S64(n)) => json!(n),
        (_, Val::U64(n)) => json!(n),
        (_, Val::Float32(x)) => {
            // Through its shortest decimal, so that 0.1f32 reads 0.1 rather than
            // 0.10000000149011612.
            let shortest: f64 = x.to_string().parse().unwrap_or(f64::from(*x));
            float_json(if x.is_finite() {
                shortest
            } else {
                f64::from(*x)
            })
        }
        (_, Val::Float64(x)) => float_json(*x),
        (_, Val::Char(c)) => json!(c.to_string()),
        (_, Val::String(s)) => json!(s),
        (t, Val::List(items)) if is_bytes(t) => {
            let bytes: Vec<u8> = items
                .iter()
                .map(|i| match i {
                    Val::U8(b) => *b,
                    _ => 0,
                })
                .collect();
            json!(BASE64.encode(bytes))
        }
        (t, Val::List(items)) => {
            let elem = match t {
                Type::List(l) => l.ty(),
                _ => Type::Bool,
            };
            Value::Array(items.iter().map(|i| to_json(&elem, i)).collect())
        }
        (t, Val::Tuple(items)) => {
            let types: Vec<Type> = match t {
                Type::Tuple(tt) => tt.types().collect(),
                _ => Vec::new(),
            };
            let arr = items
                .iter()
                .enumerate()
                .map(|(i, item)| to_json(types.get(i).unwrap_or(&Type::Bool), item));
            Value::Array(arr.collect())
        }
        (t, Val::Record(fields)) => {
            let types: Vec<(String, Type)> = match t {
                Type::Record(r) => r.fields().map(|f| (f.name.to_string(), f.ty)).collect(),
                _ => Vec::new(),
            };
            let mut obj = Map::new();
            for (name, val) in fields {
                let ft = types.iter().find(|(n, _)| n == name).map(|(_, t)| t);
                obj.insert(name.clone(), to_json(ft.unwrap_or(&Type::Bool), val));
            }
            Value::Object(obj)
        }
        (t, Val::Variant(name, payload)) => match payload {
            None => json!(name),
            Some(p) => {
                let pt = match t {
                    Type::Variant(var) => var.cases().find(|c| c.name == name).and_then(|c| c.ty),
                    _ => None,
                };
                json!({ name.clone(): to_json(pt.as_ref().unwrap_or(&Type::Bool), p) })
            }
        },
        (_, Val::Enum(name)) => json!(name),
        (_, Val::Flags(names)) => json!(names),
        (t, Val::Option(o)) => {
            let inner = match t {
                Type::Option(ot) => ot.ty(),
                _ => Type::Bool,
            };
            match o {
                None => Value::Null,
                Some(x) if matches!(inner, Type::Option(_)) => {
                    json!({ "some": to_json(&inner, x) })
                }
                Some(x) => to_json(&inner, x),
            }
        }
        (t, Val::Result(r)) => {
            let (ok, err) = match t {
                Type::Result(rt) => (rt.ok(), rt.err()),
                _ => (None, None),
            };
            let side = |t: Option<Type>, v: &Option<Box<Val>>| match (t, v) {
                (Some(t), Some(v)) => to_json(&t, v),
                _ => Value::Null,
            };
            match r {
                Ok(v) => json!({ "ok": side(ok, v) }),
                Err(v) => json!({ "err": side(err, v) }),
            }
        }
        // Resources, futures, streams: functions passing them are never called.
        _ => Value::Null,
    }
}
