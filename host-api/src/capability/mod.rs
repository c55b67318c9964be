//! The one interface every capability implements, so that a capability lives in one folder.
//!
//! A capability (`[[fs]]`, `[env]`, `[[http]]`, `[[tcp]]`, `[[secrets]]`, `[limits]`) is a
//! manifest section, what a grant holds of it, how a child grant narrows it, how a token
//! carries it, and how `warden check`, the `task.start` record and `warden inspect` describe
//! it. Each implements [`Capability`] in its own module; what is common (the
//! [`Capabilities`](crate::grant::Capabilities) set, [`Grant`](crate::grant::Grant) lineage,
//! liveness) calls each capability's functions in the order of one list,
//! [`for_each_capability!`](crate::for_each_capability), by static dispatch: a new
//! capability is a new module and a line in that list, not edits across the tree.
//!
//! In the spirit of Spin's factors, but smaller: there is no runtime registry and no derive
//! macro, only this trait and the fixed list.

mod list;
pub(crate) mod setup;

pub use list::{Declared, Held, SectionError, Sections};
pub use setup::TaskSetup;

use crate::WardenView;
use crate::grant::{NarrowingReason, Widening};
use cap_std::AmbientAuthority;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use wasmtime::component::Linker;

/// One kind of capability a manifest grants and a task holds.
pub trait Capability {
    /// The manifest section's key, which is also its `--narrow` key and its field in a
    /// grant's JSON form: `tcp` for `[[tcp]]`, `tcp=` and `"tcp": [...]`.
    const KEY: &'static str;

    /// The `--narrow` keys it reads: its [`KEY`](Self::KEY) alone, unless it says more.
    const NARROWING_KEYS: &'static [&'static str] = &[Self::KEY];

    /// The section as a manifest writes it, with the spans its errors point at.
    type Section: DeserializeOwned + Default;
    /// What a manifest declares of it: the section resolved and checked, with what only
    /// the manifest knows (a secret's source, the directory a host path named at load,
    /// which entries ask an approver). The ceiling of every grant for the tool.
    type Declared: Clone + fmt::Debug;
    /// What a grant holds of it. The default holds nothing (deny by default).
    type Grant: Clone + fmt::Debug + PartialEq + Eq + Default;
    /// What `--narrow KEY=VALUE` strings ask of it, gathered in order.
    type Narrowing: Clone + fmt::Debug + PartialEq + Eq + Default;
    /// The grant's JSON form, as a grant token carries it.
    type Wire: Serialize + DeserializeOwned;
    /// Why a section does not resolve.
    type Error: FieldError;

    /// The manifest section, checked.
    fn resolve(section: &Self::Section, cx: &ResolveCx<'_>) -> Result<Self::Declared, Self::Error>;

    /// What the manifest grants: the grant a task holds without a narrower one.
    fn ceiling(declared: &Self::Declared) -> Self::Grant;

    /// Whether everything `child` allows, `parent` allows; if not, a [`Widening`] naming the
    /// child's entry and what the parent holds.
    fn covers(parent: &Self::Grant, child: &Self::Grant) -> Result<(), Widening>;

    /// Adds one `--narrow KEY=VALUE` (`key` one of [`NARROWING_KEYS`](Self::NARROWING_KEYS))
    /// to `narrowing`. The caller keeps the narrowing it had if this fails.
    fn push_narrowing(
        narrowing: &mut Self::Narrowing,
        key: &str,
        value: &str,
    ) -> Result<(), NarrowingReason>;

    /// `narrowing` as `KEY=VALUE` strings that [`push_narrowing`](Self::push_narrowing)
    /// reads back as an equal narrowing; an empty list is written `KEY=`.
    fn narrowing_args(narrowing: &Self::Narrowing) -> Vec<String>;

    /// The child grant `narrowing` asks of `parent`. It replaces the parent's; building it is
    /// not checking it: the caller checks the result with [`covers`](Self::covers).
    fn narrow(parent: &Self::Grant, narrowing: &Self::Narrowing) -> Result<Self::Grant, Widening>;

    /// The grant's JSON form, unless it holds what JSON cannot carry (a host path that is
    /// not UTF-8).
    fn to_wire(grant: &Self::Grant) -> Result<Self::Wire, WireError>;

    /// A grant from its JSON form, checked as strictly as a manifest section.
    fn from_wire(wire: Self::Wire) -> Result<Self::Grant, WireError>;

    /// Sets up what a task holding `grant` needs of it: the WASI context's settings for
    /// what wasmtime-wasi enforces itself, and the state its interposer reads.
    fn configure(grant: &Self::Grant, setup: &mut TaskSetup<'_>);

    /// Adds the interfaces it serves to `linker`, each through its interposer.
    fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()>;

    /// What the `task.start` record says a task holds of it (`grant`, under the manifest's
    /// `declared`), under [`KEY`](Self::KEY); `None` for a capability that record does
    /// not list.
    fn summary(declared: &Self::Declared, grant: &Self::Grant) -> Option<serde_json::Value>;

    /// What `warden check` prints of what the manifest declares: lines for people, each
    /// ending in a newline.
    fn describe(declared: &Self::Declared, out: &mut dyn fmt::Write) -> fmt::Result;

    /// What `warden check`'s last line says is denied of it beyond what it declares
    /// (`no other files`), if anything.
    fn denied(declared: &Self::Declared) -> Option<&'static str>;

    /// Why a component's `import` (an interface name without its version, e.g.
    /// `wasi:sockets/tcp-create-socket`) gets nothing under what the manifest declares, if
    /// this capability serves that import and the manifest allows it nothing.
    fn ungranted(declared: &Self::Declared, import: &str) -> Option<String>;
}

/// What resolving a manifest section may use besides the section.
#[derive(Clone, Copy)]
pub struct ResolveCx<'a> {
    /// The manifest's directory: relative paths in it are relative to this.
    pub base_dir: &'a Path,
    /// Resolving looks at the host (an `[[fs]]` host directory, a `file:` secret's path)
    /// by path, with the authority of the process.
    pub ambient: AmbientAuthority,
}

/// A list narrowing as `KEY=VALUE` strings, one per entry, and a list of none (the child
/// holds none of it) as `KEY=`: what [`Capability::narrowing_args`] writes for a list.
pub fn list_args<I>(key: &str, values: I) -> Vec<String>
where
    I: IntoIterator,
    I::Item: fmt::Display,
{
    let args: Vec<String> = (values.into_iter()).map(|v| format!("{key}={v}")).collect();
    if args.is_empty() {
        vec![format!("{key}=")]
    } else {
        args
    }
}

/// A manifest section's error: where it is and what is wrong, for the manifest's
/// `FILE:LINE: FIELD: MESSAGE`.
pub trait FieldError: fmt::Display {
    /// The dotted field, e.g. `tcp[1].connect`.
    fn field(&self) -> String;
    /// The byte range of the offending value in the manifest source.
    fn span(&self) -> Range<usize>;
}

/// A grant's JSON form that fails a check: which field (`tcp[0]`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct WireError {
    /// The field at fault, e.g. `tcp[0]`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl WireError {
    /// `field` is wrong because `reason`.
    pub fn new(field: impl fmt::Display, reason: impl fmt::Display) -> WireError {
        WireError {
            field: field.to_string(),
            reason: reason.to_string(),
        }
    }
}
