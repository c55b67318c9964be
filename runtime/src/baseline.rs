//! The capability-drift gate: each tool's approved baseline, and the check that refuses a
//! version whose imports or grants reach beyond it until someone approves the change.
//!
//! An approval records what was approved: the component's digest and where it came from,
//! the interfaces it imports and exports, and the manifest's grants (its ceiling). It is
//! kept as a signed note by the host key, one file per tool:
//!
//! ```text
//! warden/baseline             <- what the note is
//! {"tool":"search",…}         <- the approval, one line of JSON
//!
//! — vm/warden-audit Az3g…     <- the host key's signature
//! ```
//!
//! so that a local user who can write the baselines directory but not read the host key
//! cannot approve anything: a note that does not verify is refused like a missing one.
//! Every approval is also an audit record (`tool.approve`), written before the note.
//!
//! A new version loads without approval as long as it imports nothing the baseline does
//! not and its manifest grants nothing more ([`Capabilities::covers`]): a rebuilt
//! component with the same reach is not drift worth a person's time. Exports and schemas
//! may change freely; `warden diff` shows them.

use crate::audit::checkpoint::{HostKey, VerifierKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use warden_host_api::audit::{Decision, Event, EventSink, NO_TASK, Receipt, Record, TaskMeta};
use warden_host_api::grant::Capabilities;

/// The first line of a baseline note.
const ORIGIN: &str = "warden/baseline";

/// What was approved for one tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The tool's name.
    pub tool: String,
    /// Where its component came from: a file or an OCI reference.
    pub source: String,
    /// `blake3:<hex>` of the component.
    pub component: String,
    /// The component's imports.
    pub imports: Vec<String>,
    /// The component's exports.
    pub exports: Vec<String>,
    /// The manifest's ceiling, as grant tokens write capabilities.
    pub grants: serde_json::Value,
    /// Who approved it.
    pub approved_by: String,
    /// When, RFC 3339.
    pub approved_at: String,
}

impl Approval {
    /// The approved grants.
    pub fn capabilities(&self) -> Result<Capabilities, String> {
        serde_json::from_value(self.grants.clone())
            .map_err(|e| format!("the approved grants do not parse: {e}"))
    }
}

/// How a version compares with its tool's approved baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The approved component itself.
    Same,
    /// Another component, or other grants, within what was approved.
    Within,
    /// It reaches further: each way, in words.
    Widened(Vec<String>),
}

impl Drift {
    /// `same`, `within` or `widened`, as records say it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Drift::Same => "same",
            Drift::Within => "within",
            Drift::Widened(_) => "widened",
        }
    }
}

/// How `component`, with `imports` and the grants `ceiling`, compares with `approved`.
pub fn compare(
    approved: &Approval,
    component: &str,
    imports: &[String],
    ceiling: &Capabilities,
) -> Result<Drift, String> {
    let mut widened = Vec::new();
    let new_imports: Vec<&String> = imports
        .iter()
        .filter(|i| !approved.imports.contains(i))
        .collect();
    if !new_imports.is_empty() {
        widened.push(format!(
            "imports {} that the approved version does not",
            new_imports
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Err(w) = approved.capabilities()?.covers(ceiling) {
        widened.push(format!("the manifest grants more: {w}"));
    }
    Ok(if !widened.is_empty() {
        Drift::Widened(widened)
    } else if component == approved.component && *ceiling == approved.capabilities()? {
        Drift::Same
    } else {
        Drift::Within
    })
}

/// Writes the `tool.approve` record of `approval` to `sink`: what was approved, by whom,
/// the approval it replaces (`previous`) and how the new one reaches further (`widened`).
/// The receipt says when the record is as safe as the sink promises.
pub fn record_approval(
    sink: &dyn EventSink,
    approval: &Approval,
    previous: serde_json::Value,
    widened: &[String],
) -> anyhow::Result<Receipt> {
    let meta = TaskMeta {
        attempt: None,
        host: crate::task::hostname(),
        agent: Some(approval.approved_by.clone()),
        task: NO_TASK.into(),
        parent: None,
        tool: approval.tool.clone(),
        component: approval.component.clone(),
        mcp: None,
    };
    let mut event = Event::new("tool.approve");
    event.resource = Some(approval.source.clone());
    event.args = serde_json::json!({
        "imports": approval.imports,
        "exports": approval.exports,
        "grants": approval.grants,
        "previous": previous,
        "widened": widened,
    });
    event.decision = Some(Decision::Allow);
    event.outcome = Some("ok".into());
    sink.end(&Record {
        meta: &meta,
        time: std::time::SystemTime::now(),
        event: &event,
    })
}

/// The approved baselines in one directory, checked against the key that signs them.
#[derive(Debug, Clone)]
pub struct Baselines {
    dir: PathBuf,
    key: VerifierKey,
}

/// Why a baseline could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// The file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file is not a baseline signed by the host key.
    #[error(
        "{}: not an approval signed by this host's key ({reason}): it was not written by \
         `warden baseline approve`, or was changed since; approve the tool again",
        path.display()
    )]
    Forged {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl Baselines {
    /// The baselines in `dir`, each checked against `key`.
    pub fn new(dir: &Path, key: VerifierKey) -> Baselines {
        Baselines {
            dir: dir.to_owned(),
            key,
        }
    }

    /// `$WARDEN_BASELINES`, or `baselines/` under Warden's state directory.
    pub fn default_dir() -> PathBuf {
        std::env::var_os("WARDEN_BASELINES")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::audit::state_dir().join("baselines"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the baseline of `tool` is kept: its name, if that is a plain file name, else
    /// its BLAKE3.
    pub fn path(&self, tool: &str) -> PathBuf {
        let plain = !tool.is_empty()
            && !tool.starts_with('.')
            && tool
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        let name = if plain {
            tool.to_owned()
        } else {
            blake3::hash(tool.as_bytes()).to_hex().to_string()
        };
        self.dir.join(format!("{name}.baseline"))
    }

    /// The approved baseline of `tool`, if one was approved; an error if the file is there
    /// but not signed by the key, or approves another tool.
    pub fn get(&self, tool: &str) -> Result<Option<Approval>, BaselineError> {
        let path = self.path(tool);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(BaselineError::Io { path, error }),
        };
        let forged = |reason: String| BaselineError::Forged {
            path: path.clone(),
            reason,
        };
        let body = self
            .key
            .verify_note(&text)
            .map_err(|e| forged(e.to_string()))?;
        let mut lines = body.lines();
        if lines.next() != Some(ORIGIN) {
            return Err(forged(format!("its first line is not {ORIGIN}")));
        }
        let approval: Approval = serde_json::from_str(lines.next().unwrap_or(""))
            .map_err(|e| forged(format!("not an approval: {e}")))?;
        if approval.tool != tool {
            return Err(forged(format!(
                "it approves {:?}, not {tool:?}",
                approval.tool
            )));
        }
        Ok(Some(approval))
    }

    /// Keeps `approval` as its tool's baseline, signed by `key` (which must be the one
    /// these baselines are checked against), replacing the one before.
    pub fn put(&self, key: &HostKey, approval: &Approval) -> Result<(), BaselineError> {
        use std::io::Write;
        use std::os::unix::fs::DirBuilderExt;
        let path = self.path(&approval.tool);
        let io = |error| BaselineError::Io {
            path: path.clone(),
            error,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io)?;
        let line = serde_json::to_string(approval).expect("an approval serializes");
        let note = key.sign_note(&format!("{ORIGIN}\n{line}\n"));
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io)?;
        tmp.write_all(note.as_bytes()).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }
}
