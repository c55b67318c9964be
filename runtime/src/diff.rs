//! What changed between two versions of a tool: the interfaces its component imports and
//! exports, each function's JSON Schema, and its manifest's grants. `warden diff` prints
//! it; the drift gate ([`crate::baseline`]) refuses what widens.

use crate::{Kind, Tool};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use warden_host_api::grant::Capabilities;

/// What one version of a tool shows the world.
#[derive(Debug, Clone, Serialize)]
pub struct Surface {
    /// Where its component came from.
    pub source: String,
    /// `blake3:<hex>` of the component.
    pub component: String,
    /// The component's kind.
    pub kind: String,
    /// Its imports.
    pub imports: Vec<String>,
    /// Its exports.
    pub exports: Vec<String>,
    /// Each function's schemas, by name: `{"input": …, "output": …}`; a `warden:tool`
    /// component's one `invoke`, as its `describe` says.
    pub schemas: BTreeMap<String, Value>,
    /// The manifest's grants, as grant tokens write them; `None` for a bare component.
    pub grants: Option<Value>,
    #[serde(skip)]
    ceiling: Option<Capabilities>,
}

impl Surface {
    /// The surface of a loaded tool's component. A `warden:tool` component is asked to
    /// `describe` itself for its schema, as a task under the tool's manifest whose records
    /// go nowhere: load it under a manifest that grants nothing to ask an unknown version.
    pub async fn of(tool: &Tool) -> Surface {
        let engine = tool.engine.clone();
        let component = tool.component();
        let mut schemas = BTreeMap::new();
        for f in tool.functions() {
            schemas.insert(
                f.name.clone(),
                serde_json::json!({ "input": f.input_schema, "output": f.output_schema }),
            );
        }
        if tool.kind() == Kind::Tool {
            // A version that cannot describe itself still has imports and grants to compare;
            // that it failed is a difference of its own.
            let sink = Arc::new(warden_host_api::audit::NullSink);
            let schema = match tool.describe(sink).await {
                Ok(info) => serde_json::json!({ "input": info.input_schema }),
                Err(e) => serde_json::json!({ "describe failed": e.to_string() }),
            };
            schemas.insert("invoke".into(), schema);
        }
        Surface {
            source: tool.provenance().source.clone(),
            component: tool.digest().to_owned(),
            kind: tool.kind().to_string(),
            imports: crate::component::imports(&engine, component),
            exports: crate::component::exports(&engine, component),
            schemas,
            grants: None,
            ceiling: None,
        }
    }

    /// The same, with `manifest`'s grants and as its source.
    pub fn with_manifest(mut self, manifest: &crate::manifest::Manifest) -> Surface {
        let ceiling = manifest.ceiling();
        self.grants = Some(serde_json::to_value(&ceiling).expect("grants serialize"));
        self.ceiling = Some(ceiling);
        self.source = format!("{} ({})", manifest.path.display(), manifest.tool.component);
        self
    }
}

/// Names added and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// In the new version only.
    pub added: Vec<String>,
    /// In the old version only.
    pub removed: Vec<String>,
}

impl Changes {
    fn of(old: &[String], new: &[String]) -> Changes {
        Changes {
            added: new.iter().filter(|n| !old.contains(n)).cloned().collect(),
            removed: old.iter().filter(|o| !new.contains(o)).cloned().collect(),
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// The differences between two surfaces.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    /// The old version.
    pub old: Surface,
    /// The new version.
    pub new: Surface,
    /// Imports added and removed: an added one widens what the tool can reach.
    pub imports: Changes,
    /// Exports added and removed.
    pub exports: Changes,
    /// Each function whose schema changed, was added or removed: `name` and what
    /// happened, `added`, `removed` or `changed`.
    pub schemas: Vec<(String, &'static str)>,
    /// The grants' leaves (`path = value`) that are in one version only, each `+ ` or `- `.
    pub grants: Vec<String>,
    /// How the new grants reach beyond the old, if they do.
    pub grants_widen: Option<String>,
}

impl Diff {
    /// The differences from `old` to `new`.
    pub fn between(old: Surface, new: Surface) -> Diff {
        let imports = Changes::of(&old.imports, &new.imports);
        let exports = Changes::of(&old.exports, &new.exports);
        let mut schemas = Vec::new();
        for (name, schema) in &new.schemas {
            match old.schemas.get(name) {
                None => schemas.push((name.clone(), "added")),
                Some(s) if s != schema => schemas.push((name.clone(), "changed")),
                Some(_) => {}
            }
        }
        for name in old.schemas.keys() {
            if !new.schemas.contains_key(name) {
                schemas.push((name.clone(), "removed"));
            }
        }
        let (mut grants, mut grants_widen) = (Vec::new(), None);
        if let (Some(o), Some(n)) = (&old.grants, &new.grants) {
            let (mut ol, mut nl) = (Vec::new(), Vec::new());
            leaves(o, String::new(), &mut ol);
            leaves(n, String::new(), &mut nl);
            grants.extend(
                ol.iter()
                    .filter(|l| !nl.contains(l))
                    .map(|l| format!("- {l}")),
            );
            grants.extend(
                nl.iter()
                    .filter(|l| !ol.contains(l))
                    .map(|l| format!("+ {l}")),
            );
            if let (Some(oc), Some(nc)) = (&old.ceiling, &new.ceiling) {
                grants_widen = oc.covers(nc).err().map(|w| w.to_string());
            }
        }
        Diff {
            old,
            new,
            imports,
            exports,
            schemas,
            grants,
            grants_widen,
        }
    }

    /// Whether the two versions show the world the same thing.
    pub fn is_empty(&self) -> bool {
        self.imports.is_empty()
            && self.exports.is_empty()
            && self.schemas.is_empty()
            && self.grants.is_empty()
    }

    /// Whether the new version reaches further: an import or a grant the old lacks.
    pub fn widens(&self) -> bool {
        !self.imports.added.is_empty() || self.grants_widen.is_some()
    }
}

/// Every leaf of `v` as `path = value`, paths in the manifest's dotted style.
fn leaves(v: &Value, path: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                leaves(v, p, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                leaves(v, format!("{path}[{i}]"), out);
            }
        }
        v => out.push(format!("{path} = {v}")),
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "--- {} ({})", self.old.source, self.old.component)?;
        writeln!(f, "+++ {} ({})", self.new.source, self.new.component)?;
        if self.old.kind != self.new.kind {
            writeln!(f, "kind: {} -> {}", self.old.kind, self.new.kind)?;
        }
        for (what, changes) in [("imports", &self.imports), ("exports", &self.exports)] {
            if changes.is_empty() {
                writeln!(f, "{what}: unchanged")?;
                continue;
            }
            writeln!(f, "{what}:")?;
            for a in &changes.added {
                writeln!(f, "  + {a}")?;
            }
            for r in &changes.removed {
                writeln!(f, "  - {r}")?;
            }
        }
        if self.schemas.is_empty() {
            writeln!(f, "schemas: unchanged")?;
        } else {
            writeln!(f, "schemas:")?;
            for (name, what) in &self.schemas {
                writeln!(f, "  {name}: {what}")?;
                let old = self.old.schemas.get(name).map(Value::to_string);
                let new = self.new.schemas.get(name).map(Value::to_string);
                if let Some(o) = old {
                    writeln!(f, "    - {o}")?;
                }
                if let Some(n) = new {
                    writeln!(f, "    + {n}")?;
                }
            }
        }
        match (&self.old.grants, &self.new.grants) {
            (Some(_), Some(_)) if self.grants.is_empty() => writeln!(f, "grants: unchanged")?,
            (Some(_), Some(_)) => {
                writeln!(f, "grants:")?;
                for g in &self.grants {
                    writeln!(f, "  {g}")?;
                }
            }
            _ => {}
        }
        if self.widens() {
            let mut how = Vec::new();
            if !self.imports.added.is_empty() {
                how.push(format!("imports {}", self.imports.added.join(", ")));
            }
            if let Some(w) = &self.grants_widen {
                how.push(format!("grants more: {w}"));
            }
            writeln!(f, "widens: {}", how.join("; "))?;
        }
        Ok(())
    }
}
