//! [`Catalog`]: the MCP tools that a set of manifests makes, each bound to the loaded tool
//! and what a call runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use warden_host_api::audit::EventSink;

use crate::manifest::Manifest;
use crate::{Kind, Runtime, Tool};

/// The MCP tools of some manifests, by name.
pub struct Catalog {
    entries: BTreeMap<String, Entry>,
}

/// One MCP tool: a `warden:tool` component, one function of a function component, or a
/// command.
pub struct Entry {
    /// The name MCP clients call it by.
    pub name: String,
    /// What `tools/list` says it does.
    pub description: String,
    /// The JSON Schema of its arguments object.
    pub input_schema: Map<String, Value>,
    /// The JSON Schema of its `structuredContent`, where Warden knows it.
    pub output_schema: Option<Map<String, Value>>,
    /// The loaded tool that runs it.
    pub tool: Arc<Tool>,
    /// What a call runs.
    pub target: Target,
    /// The manifest it came from.
    pub manifest: PathBuf,
}

/// What a call of an [`Entry`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A `warden:tool` component's `invoke`, with the arguments object as its input.
    Invoke,
    /// One exported function, by the name `warden run --call` takes.
    Function(String),
    /// A command, with `args` and `stdin` from the arguments.
    Command,
}

/// Why a set of manifests makes no catalog: which manifest, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CatalogError {
    /// The manifest or directory at fault.
    pub path: PathBuf,
    /// What is wrong, and what would fix it.
    pub message: String,
}

impl Catalog {
    /// Loads `manifests` (from [`manifest_paths`], loaded) into `runtime`. A
    /// `warden:tool` component is asked to describe itself, as a task whose records go to
    /// `sink`.
    pub async fn load(
        runtime: &Runtime,
        manifests: Vec<(PathBuf, Manifest)>,
        sink: Arc<dyn EventSink>,
    ) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog {
            entries: BTreeMap::new(),
        };
        let first = manifests
            .first()
            .map(|(p, _)| p.clone())
            .unwrap_or_default();
        for (manifest, m) in manifests {
            let error = |message: String| CatalogError {
                path: manifest.clone(),
                message,
            };
            let tool = Arc::new(runtime.load(m).map_err(|e| error(e.to_string()))?);
            for entry in entries(&tool, &manifest, sink.clone()).await? {
                if let Some(other) = catalog.entries.get(&entry.name) {
                    return Err(error(format!(
                        "tool name {:?} is taken by {}: give one of them another tool.name",
                        entry.name,
                        other.manifest.display()
                    )));
                }
                catalog.entries.insert(entry.name.clone(), entry);
            }
        }
        if catalog.entries.is_empty() {
            return Err(CatalogError {
                path: first,
                message: "no tools to serve: name a manifest, or a directory holding some".into(),
            });
        }
        Ok(catalog)
    }

    /// Every tool, by name.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// The names of every tool, for messages.
    pub fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }
}

/// The manifests that `paths` name, in a stable order: each path is a manifest, or a
/// directory whose `*.toml` files and `*/manifest.toml` files are manifests.
pub fn manifest_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CatalogError> {
    let mut found = Vec::new();
    for path in paths {
        let error = |message: String| CatalogError {
            path: path.clone(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| error(e.to_string()))?;
        if !meta.is_dir() {
            found.push(path.clone());
            continue;
        }
        let mut here = Vec::new();
        for item in std::fs::read_dir(path).map_err(|e| error(e.to_string()))? {
            let item = item.map_err(|e| error(e.to_string()))?.path();
            if item.is_dir() {
                let inner = item.join("manifest.toml");
                if inner.is_file() {
                    here.push(inner);
                }
            } else if item.extension().is_some_and(|e| e == "toml") {
                here.push(item);
            }
        }
        if here.is_empty() {
            return Err(error(
                "holds no manifest (*.toml, or */manifest.toml)".into(),
            ));
        }
        here.sort();
        found.extend(here);
    }
    Ok(found)
}

/// The MCP tools one loaded tool makes.
async fn entries(
    tool: &Arc<Tool>,
    manifest: &Path,
    sink: Arc<dyn EventSink>,
) -> Result<Vec<Entry>, CatalogError> {
    let name = tool.manifest().tool.name.clone();
    let entry = |name: String, description: String, input: Value, output, target| Entry {
        name,
        description,
        input_schema: object(input),
        output_schema: output,
        tool: tool.clone(),
        target,
        manifest: manifest.to_owned(),
    };
    Ok(match tool.kind() {
        Kind::Tool => {
            let info = tool.describe(sink).await.map_err(|e| CatalogError {
                path: manifest.to_owned(),
                message: format!("describe: {e}"),
            })?;
            vec![entry(
                name,
                info.description,
                info.input_schema,
                None,
                Target::Invoke,
            )]
        }
        Kind::Functions => tool
            .functions()
            .iter()
            .filter(|f| f.callable.is_ok())
            .map(|f| {
                // `$schema` belongs at the root of the wrapping schema, not inside it.
                let mut result = f.output_schema.clone();
                let dialect = result.as_object_mut().and_then(|o| o.remove("$schema"));
                let mut output = json!({
                    "type": "object",
                    "properties": { "result": result },
                    "required": ["result"],
                    "additionalProperties": false,
                });
                if let Some(dialect) = dialect {
                    output["$schema"] = dialect;
                }
                entry(
                    tool_name(&name, &f.name),
                    format!("{name}: {}", f.signature()),
                    f.input_schema.clone(),
                    Some(object(output)),
                    Target::Function(f.name.clone()),
                )
            })
            .collect(),
        Kind::Command => {
            let input = json!({
                "type": "object",
                "properties": {
                    "args": {
                        "type": "array",
                        "items": { "type": "string" },
                        "description": "arguments after the program name"
                    },
                    "stdin": { "type": "string", "description": "text on the command's stdin" }
                },
                "additionalProperties": false,
            });
            let description = format!(
                "{name}: a command; runs with args and stdin, returns what it writes to stdout"
            );
            vec![entry(name, description, input, None, Target::Command)]
        }
    })
}

/// `tool.function`, with every character MCP does not allow in a tool name (anything but
/// letters, digits, `_`, `-` and `.`) made `_`: a function's full name carries `:`, `/`,
/// `@` and `#`.
pub fn tool_name(tool: &str, function: &str) -> String {
    format!("{tool}.{function}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A JSON Schema as MCP wants it: an object schema with `"type": "object"`, since the
/// arguments of a call always are one. `true` (anything) becomes `{"type": "object"}`.
fn object(schema: Value) -> Map<String, Value> {
    let mut map = match schema {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    map.entry("type").or_insert_with(|| json!("object"));
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_become_valid_tool_names() {
        assert_eq!(tool_name("fs-tools", "read-file"), "fs-tools.read-file");
        assert_eq!(
            tool_name("records", "local:records/people@0.1.0#make-user"),
            "records.local_records_people_0.1.0_make-user"
        );
    }

    #[test]
    fn a_directory_without_manifests_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let err = manifest_paths(&[dir.path().to_owned()]).unwrap_err();
        assert_eq!(err.path, dir.path());
        assert!(err.message.contains("holds no manifest"), "{err}");
        let missing = dir.path().join("nope.toml");
        let err = manifest_paths(std::slice::from_ref(&missing)).unwrap_err();
        assert_eq!(err.path, missing);
    }
}
