//! JSON Schemas (draft 2020-12) derived from WIT types, following the conventions of
//! [`json`](super::json) exactly: a document the schema accepts is one the converter takes,
//! and the converter's output is one the schema accepts.

use super::json::{F32_LIMIT, NON_FINITE};
use super::types::{int_range, is_bytes, unsupported, wit};
use serde_json::{Map, Value, json};
use wasmtime::component::Type;

/// The draft every schema here is written in.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Standard base64 with padding, as the converter decodes it.
pub const BASE64_PATTERN: &str = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$";

/// The schema of a function's arguments: an object keyed by parameter name, where every
/// parameter but the `option` ones is required and no other key is allowed.
pub fn input(params: &[(String, Type)]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, ty) in params {
        properties.insert(name.clone(), of(ty));
        if !matches!(ty, Type::Option(_)) {
            required.push(json!(name));
        }
    }
    json!({
        "$schema": DIALECT,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The schema of what a call returns: `null` for no result, the result's own schema for one,
/// and for `result<T, E>` the schema of `T` alone, since an `err` ends the task as a tool
/// error instead of being returned.
pub fn output(results: &[Type]) -> Value {
    let mut schema = match results {
        [] => json!({ "type": "null" }),
        [Type::Result(r)] => r.ok().map_or_else(|| json!({ "type": "null" }), |t| of(&t)),
        [one] => of(one),
        many => json!({
            "type": "array",
            "prefixItems": many.iter().map(of).collect::<Vec<_>>(),
            "items": false,
            "minItems": many.len(),
        }),
    };
    if let Value::Object(o) = &mut schema {
        o.insert("$schema".into(), json!(DIALECT));
    }
    schema
}

/// The schema of one value of type `ty`.
pub fn of(ty: &Type) -> Value {
    if let Some((min, max)) = int_range(ty) {
        // i128 has no JSON number; every bound fits in an i64 or a u64.
        let bound = |n: i128| {
            u64::try_from(n)
                .map(Value::from)
                .or_else(|_| i64::try_from(n).map(Value::from))
                .unwrap_or(Value::Null)
        };
        return json!({ "type": "integer", "minimum": bound(min), "maximum": bound(max) });
    }
    if let Some(why) = unsupported(ty) {
        // Nothing validates: no JSON stands for this type.
        return json!({ "not": {}, "description": format!("{}: {why}", wit(ty)) });
    }
    let object_of = |key: &str, value: Value| {
        json!({
            "type": "object",
            "properties": { key: value },
            "required": [key],
            "additionalProperties": false,
        })
    };
    match ty {
        Type::Bool => json!({ "type": "boolean" }),
        Type::Float32 => json!({ "anyOf": [
            { "type": "number", "minimum": -F32_LIMIT, "maximum": F32_LIMIT },
            { "enum": NON_FINITE },
        ]}),
        Type::Float64 => json!({ "anyOf": [{ "type": "number" }, { "enum": NON_FINITE }] }),
        Type::Char => json!({ "type": "string", "minLength": 1, "maxLength": 1 }),
        Type::String => json!({ "type": "string" }),
        _ if is_bytes(ty) => json!({
            "type": "string",
            "contentEncoding": "base64",
            "pattern": BASE64_PATTERN,
        }),
        Type::List(l) => json!({ "type": "array", "items": of(&l.ty()) }),
        Type::Tuple(t) => {
            let items: Vec<Value> = t.types().map(|t| of(&t)).collect();
            json!({
                "type": "array",
                "prefixItems": items,
                "items": false,
                "minItems": items.len(),
            })
        }
        Type::Record(r) => {
            let mut properties = Map::new();
            let mut required = Vec::new();
            for f in r.fields() {
                properties.insert(f.name.to_string(), of(&f.ty));
                if !matches!(f.ty, Type::Option(_)) {
                    required.push(json!(f.name));
                }
            }
            json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            })
        }
        Type::Variant(v) => {
            let bare: Vec<&str> = v
                .cases()
                .filter(|c| c.ty.is_none())
                .map(|c| c.name)
                .collect();
            let mut one_of = Vec::new();
            if !bare.is_empty() {
                one_of.push(json!({ "type": "string", "enum": bare }));
            }
            for c in v.cases() {
                if let Some(t) = &c.ty {
                    one_of.push(object_of(c.name, of(t)));
                }
            }
            json!({ "oneOf": one_of })
        }
        Type::Enum(e) => json!({ "type": "string", "enum": e.names().collect::<Vec<_>>() }),
        Type::Flags(f) => json!({
            "type": "array",
            "items": { "type": "string", "enum": f.names().collect::<Vec<_>>() },
            "uniqueItems": true,
        }),
        Type::Option(o) => {
            let inner = o.ty();
            let some = if matches!(inner, Type::Option(_)) {
                object_of("some", of(&inner))
            } else {
                of(&inner)
            };
            json!({ "oneOf": [{ "type": "null" }, some] })
        }
        Type::Result(r) => {
            let side = |t: Option<Type>| t.map_or_else(|| json!({ "type": "null" }), |t| of(&t));
            json!({ "oneOf": [object_of("ok", side(r.ok())), object_of("err", side(r.err()))] })
        }
        // Covered by `unsupported` above.
        _ => json!({ "not": {} }),
    }
}
