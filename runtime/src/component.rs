//! What kind of component a file holds, and what it imports and exports.

use std::fmt::Write as _;
use wasmtime::Engine;
use wasmtime::component::{Component, types::ComponentItem};

/// The component kinds Warden runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Exports `describe` and `invoke` of the `warden:tool/tool` world.
    Tool,
    /// Exports `wasi:cli/run`: args in, stdin in, stdout and exit code out.
    Command,
    /// Exports plain functions, at world level or in interfaces: each is a tool called with
    /// JSON arguments (see [`crate::func`]).
    Functions,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Tool => "tool (warden:tool/tool)",
            Kind::Command => "command (wasi:cli/command)",
            Kind::Functions => "functions (each exported function is a tool)",
        })
    }
}

/// Names of a component's top-level exports, but for those its toolchain made for itself
/// ([`toolchain_internal`]).
pub fn exports(engine: &Engine, c: &Component) -> Vec<String> {
    c.component_type()
        .exports(engine)
        .filter(|(n, item)| toolchain_internal(engine, n, &item.ty).is_none())
        .map(|(n, _)| n.to_string())
        .collect()
}

/// An export the toolchain added for its own use, never for a caller: the toolchain's name
/// if `name` is one, else `None`. Such an export is neither listed nor served; calling it
/// would at best trap.
///
/// - componentize-py exports `exports` with one function, `init(app-name, symbols,
///   stub-wasi)` (and the types of its parameters), which it calls while building the component to load the Python code into
///   its snapshot.
///
/// An export is matched by its name and its functions' parameters, so that a tool's own
/// interface that happens to share a name is still served.
pub fn toolchain_internal(
    engine: &Engine,
    name: &str,
    item: &ComponentItem,
) -> Option<&'static str> {
    const COMPONENTIZE_PY_INIT: [&str; 3] = ["app-name", "symbols", "stub-wasi"];
    let ComponentItem::ComponentInstance(instance) = item else {
        return None;
    };
    if name != "exports" {
        return None;
    }
    // The instance exports its record and variant types too; only its functions tell.
    let mut funcs = instance.exports(engine).filter_map(|(n, e)| match e.ty {
        ComponentItem::ComponentFunc(f) => Some((n, f)),
        _ => None,
    });
    match (funcs.next(), funcs.next()) {
        (Some(("init", f)), None) if f.params().map(|(p, _)| p).eq(COMPONENTIZE_PY_INIT) => {
            Some("componentize-py")
        }
        _ => None,
    }
}

/// Names of a component's top-level imports.
pub fn imports(engine: &Engine, c: &Component) -> Vec<String> {
    c.component_type()
        .imports(engine)
        .map(|(n, _)| n.to_string())
        .collect()
}

/// Decides the kind from the exports, or says what the component exports
/// instead.
///
/// `describe` and `invoke` make a tool, whatever else is exported; then `wasi:cli/run` makes
/// a command, even beside other functions, as a program with a `main` is run as one; then any
/// exported function outside the `wasi:` interfaces makes a functions component.
pub fn detect(engine: &Engine, c: &Component) -> Result<Kind, String> {
    let ty = c.component_type();
    let mut describe = false;
    let mut invoke = false;
    let mut run = false;
    for (name, item) in ty.exports(engine) {
        match (name, item.ty) {
            ("describe", ComponentItem::ComponentFunc(_)) => describe = true,
            ("invoke", ComponentItem::ComponentFunc(_)) => invoke = true,
            (n, ComponentItem::ComponentInstance(_)) if n.starts_with("wasi:cli/run@0.2") => {
                run = true
            }
            _ => {}
        }
    }
    if describe && invoke {
        Ok(Kind::Tool)
    } else if run {
        Ok(Kind::Command)
    } else if !crate::func::functions(engine, c).is_empty() {
        Ok(Kind::Functions)
    } else {
        let list = exports(engine, c);
        let mut msg = String::from(
            "component is neither a warden:tool/tool (exports describe and invoke), a wasi:cli/command (exports wasi:cli/run@0.2.x), nor exports any function outside the wasi: interfaces; it exports ",
        );
        if list.is_empty() {
            msg.push_str("nothing");
        } else {
            let _ = write!(msg, "{}", list.join(", "));
        }
        Err(msg)
    }
}
