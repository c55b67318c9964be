//! The `[[http]]` manifest section: which URLs a tool may request.
//!
//! ```toml
//! [[http]]
//! url = "https://api.github.com/repos/"  # scheme://host[:port][/path-prefix]
//! methods = ["GET"]                      # optional: every method when absent
//! timeout = "10s"                        # optional, default 30s
//! request_body = "1 MiB"                 # optional, default 10 MiB
//! response_body = "10 MiB"               # optional, default 10 MiB
//! approval = "required"                  # optional: requests other than GET, HEAD and
//!                                        # OPTIONS ask an approver (see crate::approval)
//! ```
//!
//! Without an `[[http]]` entry a tool can make no request at all. The first
//! entry that matches a request decides, and its limits apply to it; the
//! timeout covers connecting, sending and the whole response, and never
//! reaches past the task's own `limits.timeout`. How a URL is matched is
//! described in [`crate::http`].
//!
//! # Example
//!
//! ```
//! use warden_host_api::http::manifest::{RawHttpRule, resolve_rules};
//!
//! #[derive(serde::Deserialize)]
//! struct Doc { http: Vec<RawHttpRule> }
//!
//! let doc: Doc = toml::from_str(r#"
//!     [[http]]
//!     url = "https://api.github.com/repos/"
//!     methods = ["GET"]
//! "#).unwrap();
//! let rules = resolve_rules(&doc.http).unwrap();
//! assert_eq!(rules[0].rule.to_string(), "https://api.github.com/repos/ GET");
//! assert_eq!(rules[0].limits.response_body, 10 << 20);
//! ```

use super::{HttpRule, RuleError};
use crate::approval::Approval;
use crate::capability::FieldError;
use crate::limits::manifest::{HumanDuration, Size, format_duration, format_size};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

/// Default time one request may take, from connecting to the end of its
/// response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default largest request body, in bytes.
pub const DEFAULT_REQUEST_BODY: u64 = 10 << 20;
/// Default largest response body, in bytes.
pub const DEFAULT_RESPONSE_BODY: u64 = 10 << 20;

/// Limits on each request an `[[http]]` entry allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// From connecting to the last byte of the response; the task's deadline
    /// cuts it shorter when it is nearer.
    pub timeout: Duration,
    /// Largest request body the guest may send.
    pub request_body: u64,
    /// Largest response body the guest may receive.
    pub response_body: u64,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            timeout: DEFAULT_TIMEOUT,
            request_body: DEFAULT_REQUEST_BODY,
            response_body: DEFAULT_RESPONSE_BODY,
        }
    }
}

impl fmt::Display for RequestLimits {
    /// `timeout 30s, request body 10 MiB, response body 10 MiB`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timeout {}, request body {}, response body {}",
            format_duration(self.timeout),
            format_size(self.request_body),
            format_size(self.response_body)
        )
    }
}

/// One validated `[[http]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGrant {
    /// What the entry allows.
    pub rule: HttpRule,
    /// Limits on each request it allows.
    pub limits: RequestLimits,
}

/// One `[[http]]` entry as written, before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpRule {
    /// `url = "https://api.github.com/repos/"`.
    pub url: Spanned<String>,
    /// `methods = ["GET"]`: optional; every method when absent.
    #[serde(default)]
    pub methods: Option<Spanned<Vec<String>>>,
    /// `timeout = "10s"`: optional.
    #[serde(default)]
    pub timeout: Option<Spanned<HumanDuration>>,
    /// `request_body = "1 MiB"`: optional.
    #[serde(default)]
    pub request_body: Option<Spanned<Size>>,
    /// `response_body = "10 MiB"`: optional.
    #[serde(default)]
    pub response_body: Option<Spanned<Size>>,
    /// `approval = "required"`: optional, `none` unless it says so. Requests the rule
    /// matches whose method changes something ask an approver ([`crate::approval`]);
    /// refused on a rule that allows only `GET`, `HEAD` and `OPTIONS`.
    #[serde(default)]
    pub approval: Option<Spanned<Approval>>,
}

impl RawHttpRule {
    /// The entry's `approval`, `none` when it has none.
    pub fn approval(&self) -> Approval {
        self.approval
            .as_ref()
            .map(|a| *a.get_ref())
            .unwrap_or_default()
    }
}

/// An `[[http]]` entry that failed validation; `Display` says what, without
/// the field name, so the caller can prefix file, line and field.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HttpManifestError {
    field: String,
    span: Range<usize>,
    message: String,
}

impl FieldError for HttpManifestError {
    /// The dotted manifest field, e.g. `http[1].url`.
    fn field(&self) -> String {
        self.field.clone()
    }

    /// Byte range of the offending value in the manifest source.
    fn span(&self) -> Range<usize> {
        self.span.clone()
    }
}

/// Validates `[[http]]` entries, stopping at the first invalid one.
pub fn resolve_rules(raw: &[RawHttpRule]) -> Result<Vec<HttpGrant>, HttpManifestError> {
    raw.iter()
        .enumerate()
        .map(|(index, entry)| resolve_one(index, entry))
        .collect()
}

fn resolve_one(index: usize, entry: &RawHttpRule) -> Result<HttpGrant, HttpManifestError> {
    let error = |key: &str, span: Range<usize>, message: String| HttpManifestError {
        field: format!("http[{index}].{key}"),
        span,
        message,
    };
    let methods = entry.methods.as_ref().map(|m| m.get_ref().clone());
    let rule = HttpRule::parse(entry.url.get_ref(), methods).map_err(|e| match e {
        RuleError::NoMethods { .. } | RuleError::BadMethod { .. } => {
            let span = entry
                .methods
                .as_ref()
                .map_or(entry.url.span(), |m| m.span());
            error("methods", span, e.to_string())
        }
        other => error("url", entry.url.span(), other.to_string()),
    })?;
    let mut limits = RequestLimits::default();
    if let Some(t) = &entry.timeout {
        if t.get_ref().0.is_zero() {
            return Err(error(
                "timeout",
                t.span(),
                "must be greater than zero".into(),
            ));
        }
        limits.timeout = t.get_ref().0;
    }
    if let Some(s) = &entry.request_body {
        limits.request_body = s.get_ref().0;
    }
    if let Some(s) = &entry.response_body {
        limits.response_body = s.get_ref().0;
    }
    if let Some(approval) = &entry.approval
        && approval.get_ref().is_required()
        && let Some(methods) = rule.methods()
        && methods
            .iter()
            .all(|m| crate::approval::task::is_safe_method(m))
    {
        return Err(error(
            "approval",
            approval.span(),
            format!(
                "\"required\" would never apply: methods {} only read, and only requests \
                 with other methods (POST, PUT, DELETE, ...) ask; add such a method or \
                 remove approval",
                methods.join(", ")
            ),
        ));
    }
    Ok(HttpGrant { rule, limits })
}
