//! `approval = "required"`: the manifest key that gates a grant, and the gates
//! of one manifest.
//!
//! ```toml
//! [[fs]]
//! host = "./out"
//! guest = "/out"
//! access = "read-write"
//! approval = "required"      # every change under /out asks; reads do not
//!
//! [[http]]
//! url = "https://api.example.com/tickets/"
//! methods = ["GET", "POST"]
//! approval = "required"      # POST asks; GET does not
//!
//! [[secrets]]
//! name = "signer"
//! source = "env:SIGNING_KEY"
//! purpose = "sign release notes"
//! approval = "required"      # every use asks
//! ```
//!
//! `approval` is `"none"` unless it says `"required"`. Each section checks
//! that a gate could ever apply: on an `access = "read"` grant or on an
//! `[[http]]` rule that allows only `GET`, `HEAD` and `OPTIONS` it would never
//! ask, and is refused as a mistake.

use crate::http::HttpRule;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Whether calls a grant allows must be approved one by one: written
/// `approval = "none"` (the default) or `approval = "required"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Approval {
    /// Calls proceed as the grant allows.
    #[default]
    None,
    /// Each call that changes something (or each use, for a secret) waits
    /// for an approver's yes.
    Required,
}

impl Approval {
    /// The manifest spelling: `"none"` or `"required"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::None => "none",
            Approval::Required => "required",
        }
    }

    /// Whether this is [`Approval::Required`].
    pub fn is_required(self) -> bool {
        self == Approval::Required
    }
}

impl fmt::Display for Approval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `approval` was neither `"none"` nor `"required"`; carries the value as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected \"none\" or \"required\", found {0:?}")]
pub struct ApprovalError(pub String);

impl FromStr for Approval {
    type Err = ApprovalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Approval::None),
            "required" => Ok(Approval::Required),
            other => Err(ApprovalError(other.to_owned())),
        }
    }
}

impl Serialize for Approval {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Approval {
    // By hand so that the error reads like every other manifest error.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The approval gates of one manifest: where calls wait for an approver.
///
/// [`Gates::default`] gates nothing. Gates are matched against what a call
/// touches, not against the grant that allowed it, so they hold for any
/// grant narrowed from the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gates {
    /// Guest paths of `[[fs]]` grants with `approval = "required"`, e.g.
    /// `/out`: a change at or below one asks.
    pub fs: Vec<String>,
    /// `[[http]]` rules with `approval = "required"`: a request one of them
    /// matches asks, unless its method is `GET`, `HEAD` or `OPTIONS`.
    pub http: Vec<HttpRule>,
    /// Names of `[[secrets]]` with `approval = "required"`: every use asks.
    pub secrets: Vec<String>,
}

impl Gates {
    /// Whether nothing is gated.
    pub fn is_empty(&self) -> bool {
        self.fs.is_empty() && self.http.is_empty() && self.secrets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_parses_and_displays() {
        assert_eq!("none".parse::<Approval>().unwrap(), Approval::None);
        assert_eq!("required".parse::<Approval>().unwrap(), Approval::Required);
        assert_eq!(Approval::Required.to_string(), "required");
        assert_eq!(
            "yes".parse::<Approval>().unwrap_err().to_string(),
            "expected \"none\" or \"required\", found \"yes\""
        );
        assert!(Approval::default() == Approval::None);
    }
}
