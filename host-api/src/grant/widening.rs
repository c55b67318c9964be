//! [`Widening`]: why a derived grant was refused.

use std::time::Duration;

use crate::limits::manifest::format_duration;

/// A derived grant would allow something its parent does not, so it was refused.
///
/// `Display` names the capability (as `fs[0]`, `http[1]`, `secrets`, `limits.memory`,
/// ... of the child), what the child asked for and what the parent holds, so that the
/// caller can narrow the request to fit:
///
/// ```text
/// http[0]: https://*.github.com/ is wider than anything the parent grants (parent: https://api.github.com/repos/ GET)
/// limits.memory: 128 MiB is more than the parent's 64 MiB
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Widening {
    /// No parent directory grant holds the child's guest path.
    #[error(
        "fs[{index}]: {child} is wider than anything the parent grants (parent: {})",
        list(parent)
    )]
    Fs {
        /// Position among the child's directory grants.
        index: usize,
        /// The child's grant: guest path and access, e.g. `/etc read`.
        child: String,
        /// The parent's grants, the same way.
        parent: Vec<String>,
    },
    /// The child asks to write where the parent may only read.
    #[error(
        "fs[{index}]: {child} is wider than the parent's {parent}, which allows only read there"
    )]
    FsAccess {
        /// Position among the child's directory grants.
        index: usize,
        /// The child's grant, e.g. `/workspace/src read-write`.
        child: String,
        /// The parent grant holding its guest path, e.g. `/workspace read`.
        parent: String,
    },
    /// The child's guest path is inside a parent grant, but its host directory is not the
    /// one the parent's grant maps that guest path to.
    #[error("fs[{index}]: {guest} maps to host {host:?}, but the parent maps it to {expected:?}")]
    FsHost {
        /// Position among the child's directory grants.
        index: usize,
        /// The child's guest path.
        guest: String,
        /// The child's host directory.
        host: String,
        /// The host directory the parent's grant gives that guest path.
        expected: String,
    },
    /// No parent `[[http]]` rule allows everything the child's rule allows.
    #[error(
        "http[{index}]: {child} is wider than anything the parent grants (parent: {})",
        list(parent)
    )]
    Http {
        /// Position among the child's rules.
        index: usize,
        /// The child's rule, as the audit log names it: `https://api.github.com/ GET`.
        child: String,
        /// The parent's rules, the same way.
        parent: Vec<String>,
    },
    /// The child's rule allows a request a larger limit than the parent rule that would
    /// decide that request.
    #[error("{0}")]
    HttpLimit(Box<HttpLimitWidening>),
    /// No parent `[[tcp]]` rule allows everything the child's rule allows.
    #[error(
        "tcp[{index}]: {child} is wider than anything the parent grants (parent: {})",
        list(parent)
    )]
    Tcp {
        /// Position among the child's rules.
        index: usize,
        /// The child's rule as written, e.g. `db.internal:5432`.
        child: String,
        /// The parent's rules, the same way.
        parent: Vec<String>,
    },
    /// The parent may not use this secret.
    #[error(
        "secrets: {name} is not granted by the parent (parent: {})",
        list(parent)
    )]
    Secret {
        /// The secret's name.
        name: String,
        /// The parent's secrets with their uses, `github:inject`, `signer:hmac+reveal`.
        parent: Vec<String>,
    },
    /// The child asks for a use of a secret (`inject`, `hmac`, `reveal`) that the parent
    /// does not allow.
    #[error("secrets: {child} is wider than the parent's {parent}, which does not allow {wider}")]
    SecretUse {
        /// The secret's name.
        name: String,
        /// The child's secret with its uses, e.g. `github:inject+reveal`.
        child: String,
        /// The parent's, e.g. `github:inject`.
        parent: String,
        /// The first use the parent does not allow.
        wider: &'static str,
    },
    /// The parent has no such variable, or has it from another place.
    #[error("env: {child} is not granted by the parent (parent: {})", list(parent))]
    Env {
        /// The child's variable: `LANG = "C.UTF-8"`, or `TZ from the host`.
        child: String,
        /// The parent's variables, the same way.
        parent: Vec<String>,
    },
    /// The child gives a literal variable another value than the parent does.
    #[error("env: {name} = {child:?} differs from the parent's {name} = {parent:?}")]
    EnvValue {
        /// The variable's name.
        name: String,
        /// The child's value.
        child: String,
        /// The parent's value.
        parent: String,
    },
    /// A limit above the parent's.
    #[error("limits.{limit}: {child} is more than the parent's {parent}")]
    Limit {
        /// `memory`, `timeout`, `fuel` or `output`.
        limit: &'static str,
        /// The child's value, e.g. `128 MiB` (`unmetered` for no fuel limit).
        child: String,
        /// The parent's value.
        parent: String,
    },
    /// The child would expire after its parent.
    #[error(
        "ttl: {} reaches past the expiry of parent grant {parent}, {} from now; ask for at most that, or leave the ttl out to expire with the parent",
        format_duration(*requested),
        format_duration(Duration::from_secs(remaining.as_secs()))
    )]
    Ttl {
        /// The lifetime asked for.
        requested: Duration,
        /// How long the parent has left.
        remaining: Duration,
        /// The parent grant's id.
        parent: String,
    },
    /// The parent has expired, and grants nothing any more.
    #[error("grant {id} expired at {expired}: an expired grant cannot be attenuated")]
    Expired {
        /// The parent grant's id.
        id: String,
        /// Its expiry, RFC 3339.
        expired: String,
    },
}

/// The details of [`Widening::HttpLimit`]: which limit of which child rule is above that
/// of which parent rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "http[{index}]: {child} allows a {limit} of {child_value}, more than the parent's {parent_value} (parent: http[{parent_index}] {parent})"
)]
pub struct HttpLimitWidening {
    /// Position among the child's rules.
    pub index: usize,
    /// The child's rule, as the audit log names it.
    pub child: String,
    /// `timeout`, `request body` or `response body`.
    pub limit: &'static str,
    /// The child's value, e.g. `20 MiB`.
    pub child_value: String,
    /// The parent's value.
    pub parent_value: String,
    /// Position of the parent's rule among the parent's rules.
    pub parent_index: usize,
    /// The parent's rule.
    pub parent: String,
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join("; ")
    }
}
