//! `{{name}}`: a Warden tool. It reads a text file in the directory that
//! `manifest.toml` grants as `/data` and returns its line, word and byte
//! counts as JSON.
//!
//! A tool is JSON in, JSON out: Warden calls `describe` to list the tool for
//! an agent, and `invoke` with the agent's JSON input. Inside, it is ordinary
//! Rust: `std::fs` reaches exactly the directories the manifest's `[[fs]]`
//! grants and nothing else, so the tool never checks paths for safety itself.
//! Replace `invoke` (and the schema that describes its input) with your own.

// Bindings for the `warden:tool/tool` world in wit/: the `Guest` trait
// implemented below, the `ToolInfo` and `ToolError` types, and the host's
// `warden::tool::log` (log lines into the audit log) and
// `warden::tool::secrets` (use a credential without seeing it).
wit_bindgen::generate!({
    path: "wit",
    world: "warden:tool/tool",
    // The world includes the WASI interfaces (wasi:http and friends):
    // generate those too, for tools that call them directly.
    generate_all,
});

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use warden::tool::log::{Level, log};

/// Where the tool sees its data: the `guest` of the `[[fs]]` grant in
/// manifest.toml. Change both together.
const DATA: &str = "/data";

/// JSON Schema (draft 2020-12) of the input, shown to agents by `describe`.
/// Keep it in step with `parse` below.
const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "path": {
      "type": "string",
      "minLength": 1,
      "description": "The text file to count, relative to /data (e.g. hello.txt) or absolute."
    }
  },
  "required": ["path"],
  "additionalProperties": false
}"#;

struct Tool;

impl Guest for Tool {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "{{name}}".into(),
            // The agent reads this to decide when to call the tool: say what
            // it does and what it returns.
            description: "Counts the lines, words and bytes of a text file under /data.".into(),
            input_schema: INPUT_SCHEMA.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let path = parse(&input)?;
        let text = std::fs::read_to_string(&path).map_err(|err| io_error(&path, err))?;
        // Log lines go to the audit log, not to the agent.
        log(Level::Info, &format!("counted {}", path.display()));
        let result = json!({
            "path": path.display().to_string(),
            "lines": text.lines().count(),
            "words": text.split_whitespace().count(),
            "bytes": text.len(),
        });
        Ok(result.to_string())
    }
}

/// Reads the input `{"path": "..."}`. Errors name the field, so that the
/// agent can correct its call.
fn parse(input: &str) -> Result<PathBuf, ToolError> {
    let invalid = |msg: String| ToolError::InvalidInput(msg);
    let value: Value =
        serde_json::from_str(input).map_err(|e| invalid(format!("input: not JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(invalid(format!("input: expected an object, found {value}")));
    };
    if let Some(unknown) = fields.keys().find(|k| *k != "path") {
        return Err(invalid(format!(
            "{unknown}: unknown field; expected only path"
        )));
    }
    match fields.get("path") {
        // A relative path is taken from /data; an absolute one as it is.
        // No safety checks needed: a path that leaves the grant (`../x`) is
        // refused by the host, and the refusal is in the audit log; one no
        // grant covers at all (`/etc/passwd`) is simply not found.
        Some(Value::String(p)) if !p.is_empty() => Ok(Path::new(DATA).join(p)),
        Some(Value::String(_)) => Err(invalid("path: must not be empty".into())),
        Some(other) => Err(invalid(format!("path: expected a string, found {other}"))),
        None => Err(invalid("path: missing".into())),
    }
}

/// Chooses the error variant the agent and the audit log see: `denied` when
/// the grant did not reach the path, `failed` for anything else.
fn io_error(path: &Path, err: std::io::Error) -> ToolError {
    let msg = format!("{}: {err}", path.display());
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => ToolError::Denied(msg),
        _ => ToolError::Failed(msg),
    }
}

export!(Tool);
