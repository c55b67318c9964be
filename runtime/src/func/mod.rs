//! Components that export plain functions: every exported function is a tool.
//!
//! A component needs no Warden SDK to run: the functions it exports at world level, or inside
//! an exported interface, are called with JSON arguments converted to WIT values by the
//! function's own types, and their result comes back as JSON. Interfaces of the `wasi:`
//! packages that a component re-exports (such as `wasi:cli/run`) are not tools.
//!
//! # Names
//!
//! | exported as | `name` (short) | `full_name` |
//! | --- | --- | --- |
//! | world-level `read-file` | `read-file` | `read-file` |
//! | `make-user` in interface `local:demo/records@0.1.0` | `records.make-user` | `local:demo/records@0.1.0#make-user` |
//!
//! A function can be called by either name. When two exported interfaces share a short
//! name (`a:x/records` and `b:y/records` both exporting `get`), their functions' `name` is
//! their full name, and the short one is refused with a message listing the full ones. The short
//! name of a kebab-case function holds only letters, digits, `-` and `.`, which MCP allows in
//! a tool name; the full name does not.
//!
//! # JSON
//!
//! The arguments are one JSON object keyed by parameter name; parameters of an `option` type
//! may be left out (`none`), every other one is required, and unknown keys are errors. Values
//! are written the same way in arguments and results:
//!
//! | WIT | JSON | example |
//! | --- | --- | --- |
//! | `bool` | boolean | `true` |
//! | `s8` … `u64` | integer, range-checked (`3.0` counts) | `42` |
//! | `f32`, `f64` | number, or `"NaN"`, `"Infinity"`, `"-Infinity"` | `0.5` |
//! | `char` | string of exactly one Unicode scalar | `"é"` |
//! | `string` | string | `"hi"` |
//! | `list<u8>` | base64 string (standard alphabet, padded) | `"AAEC"` |
//! | `list<T>` | array | `[1, 2]` |
//! | `tuple<A, B>` | array of exactly that length | `[1, "a"]` |
//! | `record` | object keyed by field name; `option` fields may be absent | `{"name": "ada", "age": 36}` |
//! | `variant` | `{"case": payload}`; a case without payload is its name | `{"circle": 1.5}`, `"point"` |
//! | `enum` | the case name | `"red"` |
//! | `option<T>` | `null`, or the value; `option<option<T>>` wraps `some` | `null`, `5`, `{"some": null}` |
//! | `result<T, E>` | `{"ok": v}` or `{"err": e}`, `null` for a side without a type | `{"ok": null}` |
//! | `flags` | array of the names set, each once | `["read", "exec"]` |
//!
//! Resources, futures, streams (and maps and fixed-length lists) have no JSON form: a
//! function that passes one is listed with [`FunctionInfo::callable`] saying why, and calling
//! it is an error.
//!
//! # Results
//!
//! A function without a result returns `null`; one with a result returns that value. When
//! the result type is `result<T, E>`, `ok` returns `T`'s JSON (or `null`), and `err` ends the
//! task with [`Outcome::ToolError`](crate::Outcome::ToolError) of kind `failed`, whose message
//! is the error's JSON (`"\"no such file\""` for a `string` error).

pub mod json;
pub mod schema;
#[cfg(test)]
mod tests;
pub mod types;

pub use json::{ArgumentError, from_json, to_json};

use serde_json::Value;
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Type, Val};

/// One exported function, as a tool.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    /// The name to call it by: `read-file` at world level, `records.make-user` in interface
    /// `local:demo/records@0.1.0`; the full name when that short name is ambiguous.
    pub name: String,
    /// The name that is never ambiguous: `read-file`, or
    /// `local:demo/records@0.1.0#make-user`.
    pub full_name: String,
    /// The parameters' names and types, in order.
    pub params: Vec<(String, Type)>,
    /// The result types: none, or one.
    pub results: Vec<Type>,
    /// JSON Schema (draft 2020-12) of the arguments object.
    pub input_schema: Value,
    /// JSON Schema (draft 2020-12) of what a call returns.
    pub output_schema: Value,
    /// `Err` with the reason when Warden cannot call it, e.g. because a parameter is a
    /// resource handle.
    pub callable: Result<(), String>,
}

impl FunctionInfo {
    /// Describes the function `func` of type `ty`, exported from `interface` (`None` at
    /// world level). `name` starts as the short name; [`functions`] replaces ambiguous ones.
    fn new(
        interface: Option<&str>,
        func: &str,
        ty: &wasmtime::component::types::ComponentFunc,
    ) -> Self {
        let params: Vec<(String, Type)> = ty.params().map(|(n, t)| (n.to_string(), t)).collect();
        let results: Vec<Type> = ty.results().collect();
        let unsupported = params
            .iter()
            .find_map(|(n, t)| types::unsupported(t).map(|why| format!("parameter {n}: {why}")))
            .or_else(|| {
                results
                    .iter()
                    .find_map(|t| types::unsupported(t).map(|why| format!("result: {why}")))
            });
        let callable = match unsupported {
            Some(why) => Err(why),
            None if ty.async_() => {
                Err("it is an async function, which needs component-model async support".into())
            }
            None => Ok(()),
        };
        let (name, full_name) = match interface {
            None => (func.to_string(), func.to_string()),
            Some(i) => (
                format!("{}.{func}", short_interface(i)),
                format!("{i}#{func}"),
            ),
        };
        FunctionInfo {
            name,
            full_name,
            input_schema: schema::input(&params),
            output_schema: schema::output(&results),
            params,
            results,
            callable,
        }
    }

    /// The exported interface holding the function (`None` at world level) and the
    /// function's own name in it.
    pub fn export_path(&self) -> (Option<&str>, &str) {
        match self.full_name.split_once('#') {
            Some((interface, func)) => (Some(interface), func),
            None => (None, &self.full_name),
        }
    }

    /// The signature as WIT writes it: `func(path: string) -> result<string, string>`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(n, t)| format!("{n}: {}", types::wit(t)))
            .collect();
        let mut sig = format!("func({})", params.join(", "));
        match self.results.as_slice() {
            [] => {}
            [one] => sig.push_str(&format!(" -> {}", types::wit(one))),
            many => {
                let r: Vec<String> = many.iter().map(types::wit).collect();
                sig.push_str(&format!(" -> ({})", r.join(", ")));
            }
        }
        sig
    }

    /// Converts a JSON object of arguments, keyed by parameter name, to the values to call
    /// the function with, in parameter order.
    pub fn arguments(&self, input: &Value) -> Result<Vec<Val>, ArgumentError> {
        let takes = || {
            let list: Vec<String> = self
                .params
                .iter()
                .map(|(n, t)| format!("{n}: {}", types::wit(t)))
                .collect();
            if list.is_empty() {
                format!("{} takes no arguments", self.name)
            } else {
                format!("{} takes {}", self.name, list.join(", "))
            }
        };
        let Some(obj) = input.as_object() else {
            return Err(ArgumentError {
                path: String::new(),
                message: format!(
                    "expected a JSON object keyed by parameter name, found {}; {}",
                    json::shown(input),
                    takes()
                ),
            });
        };
        if let Some(unknown) = obj
            .keys()
            .find(|k| !self.params.iter().any(|(n, _)| n == *k))
        {
            return Err(ArgumentError {
                path: unknown.clone(),
                message: format!("no such parameter; {}", takes()),
            });
        }
        self.params
            .iter()
            .map(|(name, ty)| match (obj.get(name), ty) {
                (Some(v), t) => from_json(t, v, name),
                (None, Type::Option(_)) => Ok(Val::Option(None)),
                (None, t) => Err(ArgumentError {
                    path: name.clone(),
                    message: format!("missing: expected {}", types::wit(t)),
                }),
            })
            .collect()
    }

    /// What a call returned, as JSON: `Ok` with the value, or `Err` with the error's JSON
    /// when the result type is `result<T, E>` and the function returned `err`.
    pub fn returned(&self, results: &[Val]) -> Result<Value, Value> {
        match (self.results.as_slice(), results) {
            ([], _) => Ok(Value::Null),
            ([Type::Result(r)], [Val::Result(v)]) => {
                let side = |t: Option<Type>, v: &Option<Box<Val>>| match (t, v) {
                    (Some(t), Some(v)) => to_json(&t, v),
                    _ => Value::Null,
                };
                match v {
                    Ok(ok) => Ok(side(r.ok(), ok)),
                    Err(err) => Err(side(r.err(), err)),
                }
            }
            ([ty], [v]) => Ok(to_json(ty, v)),
            (types, vals) => Ok(Value::Array(
                types.iter().zip(vals).map(|(t, v)| to_json(t, v)).collect(),
            )),
        }
    }
}

/// `records` of `local:demo/records@0.1.0`: the interface name without package or version.
fn short_interface(interface: &str) -> &str {
    let no_version = interface.split('@').next().unwrap_or(interface);
    no_version.rsplit('/').next().unwrap_or(no_version)
}

/// The functions a component exports at world level and in its exported interfaces, but not
/// in `wasi:` interfaces, in export order.
pub fn functions(engine: &Engine, component: &Component) -> Vec<FunctionInfo> {
    let ty = component.component_type();
    let mut found = Vec::new();
    for (name, item) in ty.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(f) => found.push(FunctionInfo::new(None, name, &f)),
            ComponentItem::ComponentInstance(_)
                if crate::component::toolchain_internal(engine, name, &item.ty).is_some() => {}
            ComponentItem::ComponentInstance(i) if !name.starts_with("wasi:") => {
                for (func, item) in i.exports(engine) {
                    if let ComponentItem::ComponentFunc(f) = item.ty {
                        found.push(FunctionInfo::new(Some(name), func, &f));
                    }
                }
            }
            _ => {}
        }
    }
    // A short name that two functions share names neither of them.
    let shared: Vec<String> = found
        .iter()
        .filter(|f| found.iter().filter(|g| g.name == f.name).count() > 1)
        .map(|f| f.name.clone())
        .collect();
    for f in &mut found {
        if shared.contains(&f.name) {
            f.name = f.full_name.clone();
        }
    }
    found
}

/// The index in `functions` of the function called `name`, by its name or full name; or
/// what to call instead.
pub fn resolve(functions: &[FunctionInfo], name: &str) -> Result<usize, String> {
    if let Some(i) = functions
        .iter()
        .position(|f| f.name == name || f.full_name == name)
    {
        return Ok(i);
    }
    // A short name that was made ambiguous: say which full names it could mean.
    let meant: Vec<&str> = functions
        .iter()
        .filter(|f| f.name == f.full_name && short_of(f).as_deref() == Some(name))
        .map(|f| f.full_name.as_str())
        .collect();
    if !meant.is_empty() {
        return Err(format!(
            "function {name:?} is ambiguous: call it by its full name, one of {}",
            meant.join(", ")
        ));
    }
    let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
    Err(format!(
        "the component exports no function {name:?}; it exports {}",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    ))
}

/// The short name of an interface function, whether or not it is ambiguous.
fn short_of(f: &FunctionInfo) -> Option<String> {
    match f.export_path() {
        (Some(interface), func) => Some(format!("{}.{func}", short_interface(interface))),
        (None, _) => None,
    }
}

/// Where each of `functions` sits among the component's exports, for looking it up in an
/// instance without comparing strings on every call.
pub(crate) fn export_indexes(
    component: &Component,
    functions: &[FunctionInfo],
) -> Result<Vec<ComponentExportIndex>, String> {
    functions
        .iter()
        .map(|f| {
            let (interface, func) = f.export_path();
            let parent = match interface {
                Some(i) => Some(
                    component
                        .get_export_index(None, i)
                        .ok_or_else(|| format!("export {i} not found"))?,
                ),
                None => None,
            };
            component
                .get_export_index(parent.as_ref(), func)
                .ok_or_else(|| format!("export {} not found", f.full_name))
        })
        .collect()
}
