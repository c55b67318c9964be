//! [`Widening`]: why a derived grant was refused.

use std::fmt;
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
    /// The child holds something of one capability that its parent does not.
    #[error("{0}")]
    Capability(Wider),
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

/// What of one capability a child would hold beyond its parent: the child's field and
/// why, as each capability's [`covers`](crate::capability::Capability::covers) words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Wider {
    /// The child's field at fault: `fs[0]`, `http[1]`, `secrets`, `limits.memory`.
    pub field: String,
    /// What the child asks for and what the parent holds.
    pub reason: String,
}

impl Wider {
    /// The child's `field` is wider than its parent's because `reason`.
    pub fn new(field: impl fmt::Display, reason: impl fmt::Display) -> Wider {
        Wider {
            field: field.to_string(),
            reason: reason.to_string(),
        }
    }

    /// The child's `field`, `child`, is within none of the parent's entries `parent`.
    pub fn within_none<I>(field: impl fmt::Display, child: impl fmt::Display, parent: I) -> Wider
    where
        I: IntoIterator,
        I::Item: fmt::Display,
    {
        let parent: Vec<String> = parent.into_iter().map(|p| p.to_string()).collect();
        Wider::new(
            field,
            format_args!(
                "{child} is wider than anything the parent grants (parent: {})",
                list(&parent)
            ),
        )
    }
}

impl From<Wider> for Widening {
    fn from(wider: Wider) -> Widening {
        Widening::Capability(wider)
    }
}

/// `a; b` for a list of a parent's entries, `none` for none.
pub(crate) fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join("; ")
    }
}
