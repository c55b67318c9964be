//! `file-search`: a `warden:tool` component that searches the text files under
//! a preopened directory with plain `std::fs`, the way a tool author would.

wit_bindgen::generate!({
    path: "../../wit",
    world: "warden:tool/tool",
    generate_all,
});

use serde_json::{Map, Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use warden::tool::log::{Level, log};

const DEFAULT_ROOT: &str = "/workspace";
const DEFAULT_MAX_RESULTS: u64 = 100;

const INPUT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "query": {"type": "string", "minLength": 1, "description": "Text to find (case-sensitive substring)."},
    "root": {"type": "string", "default": "/workspace", "description": "Directory to search, as the tool sees it."},
    "max_results": {"type": "integer", "minimum": 1, "default": 100}
  },
  "required": ["query"],
  "additionalProperties": false
}"#;

struct Request {
    query: String,
    root: PathBuf,
    max_results: usize,
}

fn parse(input: &str) -> Result<Request, ToolError> {
    let invalid = |msg: String| ToolError::InvalidInput(msg);
    let value: Value =
        serde_json::from_str(input).map_err(|e| invalid(format!("input: not JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(invalid(format!("input: expected an object, found {value}")));
    };
    if let Some(unknown) = obj
        .keys()
        .find(|k| !["query", "root", "max_results"].contains(&k.as_str()))
    {
        return Err(invalid(format!("{unknown}: unknown field")));
    }
    let query = match obj.get("query") {
        Some(Value::String(q)) if !q.is_empty() => q.clone(),
        Some(Value::String(_)) => return Err(invalid("query: must not be empty".into())),
        Some(other) => return Err(invalid(format!("query: expected a string, found {other}"))),
        None => return Err(invalid("query: missing".into())),
    };
    let root = match obj.get("root") {
        None => PathBuf::from(DEFAULT_ROOT),
        Some(Value::String(r)) if !r.is_empty() => PathBuf::from(r),
        Some(other) => {
            return Err(invalid(format!(
                "root: expected a non-empty string, found {other}"
            )));
        }
    };
    let max_results = match obj.get("max_results") {
        None => DEFAULT_MAX_RESULTS,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => n,
            _ => {
                return Err(invalid(format!(
                    "max_results: expected a positive integer, found {v}"
                )));
            }
        },
    };
    Ok(Request {
        query,
        root,
        // Saturate rather than fail: no walk can return more than usize::MAX.
        max_results: usize::try_from(max_results).unwrap_or(usize::MAX),
    })
}

/// What one walk found: matches in order, plus the entries it could not read,
/// so a denied or broken path shows up in the result instead of vanishing.
#[derive(Default)]
struct Search {
    matches: Vec<Value>,
    errors: Vec<Value>,
    files_scanned: u64,
    truncated: bool,
}

impl Search {
    fn error(&mut self, path: &Path, err: std::io::Error) {
        self.errors.push(json!({
            "path": path.display().to_string(),
            "error": format!("{:?}: {err}", err.kind()),
        }));
    }

    fn walk(&mut self, dir: &Path, req: &Request) {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) => return self.error(dir, err),
        };
        // Sorted so that the same tree always gives the same result.
        let mut paths = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => paths.push((entry.path(), entry.file_type())),
                Err(err) => self.error(dir, err),
            }
        }
        paths.sort_by(|a, b| a.0.cmp(&b.0));

        for (path, file_type) in paths {
            if self.truncated {
                return;
            }
            match file_type {
                // Symlinks are not followed: they could loop, and inside a
                // sandbox they usually point outside the grant anyway.
                Ok(t) if t.is_symlink() => {}
                Ok(t) if t.is_dir() => self.walk(&path, req),
                Ok(t) if t.is_file() => self.scan(&path, req),
                Ok(_) => {}
                Err(err) => self.error(&path, err),
            }
        }
    }

    fn scan(&mut self, path: &Path, req: &Request) {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) => return self.error(path, err),
        };
        // Only text files are searched; binaries are skipped, not errors.
        let Ok(text) = String::from_utf8(bytes) else {
            return;
        };
        self.files_scanned += 1;
        for (index, line) in text.lines().enumerate() {
            if !line.contains(&req.query) {
                continue;
            }
            if self.matches.len() == req.max_results {
                self.truncated = true;
                return;
            }
            self.matches.push(json!({
                "path": path.display().to_string(),
                "line": index + 1,
                "text": line,
            }));
        }
    }
}

struct FileSearch;

impl Guest for FileSearch {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "file-search".into(),
            description: "Finds lines containing a text in the text files under a directory \
                          (default /workspace). Returns path, line number and line for each match."
                .into(),
            input_schema: INPUT_SCHEMA.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let req = parse(&input)?;
        // A root that cannot be opened at all is the caller's problem, not a
        // per-entry error: say so as a tool error naming the path.
        if let Err(err) = fs::metadata(&req.root) {
            let msg = format!("root {}: {:?}: {err}", req.root.display(), err.kind());
            return Err(match err.kind() {
                std::io::ErrorKind::PermissionDenied => ToolError::Denied(msg),
                _ => ToolError::Failed(msg),
            });
        }

        let mut search = Search::default();
        search.walk(&req.root, &req);
        log(
            Level::Info,
            &format!(
                "scanned {} files under {}, {} matches, {} errors",
                search.files_scanned,
                req.root.display(),
                search.matches.len(),
                search.errors.len()
            ),
        );

        let mut out = Map::new();
        out.insert("matches".into(), Value::Array(search.matches));
        out.insert("files_scanned".into(), search.files_scanned.into());
        out.insert("truncated".into(), search.truncated.into());
        out.insert("errors".into(), Value::Array(search.errors));
        Ok(Value::Object(out).to_string())
    }
}

export!(FileSearch);
