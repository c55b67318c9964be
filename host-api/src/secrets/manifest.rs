//! The `[[secrets]]` manifest section: which credentials the host holds for a tool, where
//! they come from, and what the tool may do with them.
//!
//! ```toml
//! [[secrets]]
//! name = "github"                        # how the tool and the audit log refer to it
//! source = "env:GITHUB_TOKEN"            # env:NAME | file:PATH | vault:MOUNT/PATH#FIELD
//! purpose = "read issues"                # goes into every use record
//! inject = { url = "https://api.github.com/", header = "authorization", format = "Bearer {}" }
//! hmac = false                           # the default: the tool cannot sign with it
//! reveal = false                         # the default: the tool never sees the value
//! ttl = "5m"                             # optional: fetch again when older than this
//! approval = "required"                  # optional: every use asks an approver
//! ```
//!
//! Without an entry a tool has no secrets at all. An entry binds a name to a source; the
//! value is fetched from the source just in time for each task ([`super::TaskSecrets`]),
//! never at load time, so `warden check` shows where each secret comes from without
//! reading it.
//!
//! Sources:
//! - `env:NAME`: the variable `NAME` of warden's own environment (the tool's `[env]` is a
//!   different, separate environment);
//! - `file:PATH`: a file, relative to the manifest's directory or absolute, that neither
//!   group nor others may access (mode `0600` or stricter);
//! - `vault:MOUNT/PATH#FIELD`: field `FIELD` of the KV version 2 secret `PATH` under the
//!   mount `MOUNT` (the first path segment) of HashiCorp Vault or OpenBao.
//!
//! Validation, done once at load time ([`resolve_secrets`]):
//! - `name` matches `[a-z0-9][a-z0-9_-]*` and is unique;
//! - `purpose` is not blank: a use nobody can explain should not be granted;
//! - `inject.url` is an `[[http]]` rule ([`HttpRule::parse`]); `inject.header` an HTTP
//!   token, stored lowercase, and not one that frames the request or the connection
//!   (`host`, `content-length`, `transfer-encoding`, `connection` and the other hop-by-hop
//!   names); `inject.format` holds exactly one `{}` and no control characters;
//! - `ttl`, when given, is more than zero;
//! - the entry allows at least one use: `inject`, `hmac = true` or `reveal = true`. Each use
//!   is a permission of its own: a value the host only injects is not also an HMAC oracle
//!   (which would let the tool sign anything with it, or test guesses of it).
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use warden_host_api::secrets::manifest::{resolve_secrets, RawSecret, Source};
//!
//! #[derive(serde::Deserialize)]
//! struct Doc {
//!     secrets: Vec<RawSecret>,
//! }
//!
//! let doc: Doc = toml::from_str(r#"
//!     [[secrets]]
//!     name = "github"
//!     source = "env:GITHUB_TOKEN"
//!     purpose = "read issues"
//!     inject = { url = "https://api.github.com/", header = "Authorization", format = "Bearer {}" }
//!
//!     [[secrets]]
//!     name = "signing-key"
//!     source = "vault:secret/tools/signer#key"
//!     purpose = "sign webhooks"
//!     hmac = true
//!     ttl = "5m"
//! "#).unwrap();
//! let specs = resolve_secrets(&doc.secrets, Path::new("/etc/warden")).unwrap();
//! assert_eq!(specs[0].source, Source::Env { var: "GITHUB_TOKEN".into() });
//! assert_eq!(specs[0].inject.as_ref().unwrap().header, "authorization");
//! assert_eq!(specs[1].source.to_string(), "vault:secret/tools/signer#key");
//! assert!(specs[1].hmac && !specs[1].reveal);
//! assert!(!specs[0].hmac);
//! ```

use crate::capability::FieldError;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::env::manifest::{VarNameError, check_var_name};
use crate::http::{HttpRule, RuleError};
use crate::limits::manifest::HumanDuration;

/// One validated `[[secrets]]` entry: a name bound to a source, and what may be done with
/// the value. It never holds the value itself.
///
/// ```toml
/// [[secrets]]
/// name = "github"
/// source = "env:GITHUB_TOKEN"
/// purpose = "read issues"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// Position among the `[[secrets]]` entries: `secrets[index]` in errors and records.
    pub index: usize,
    /// The name the tool opens it by and records show, e.g. `github`; unique in the
    /// manifest, matching `[a-z0-9][a-z0-9_-]*`.
    pub name: String,
    /// Where the value is fetched from, for every task.
    pub source: Source,
    /// Why the tool holds it, as the manifest says; part of every `secret.use` record.
    pub purpose: String,
    /// The request header the host adds for the tool, if any.
    pub inject: Option<Inject>,
    /// Whether `warden:tool/secrets` `hmac-sha256` / `hmac-sha512` may sign with the value.
    /// `false` unless the manifest says `hmac = true`.
    pub hmac: bool,
    /// Whether `warden:tool/secrets` `reveal` may hand the value to the tool. `false`
    /// unless the manifest says `reveal = true`.
    pub reveal: bool,
    /// How long a fetched value may be used before it is fetched again; `None` keeps it
    /// for the task (a Vault lease shorter than this still applies).
    pub ttl: Option<Duration>,
}

impl SecretSpec {
    /// `secrets[0] github`: how rules in records name the entry.
    pub fn label(&self) -> String {
        format!("secrets[{}] {}", self.index, self.name)
    }
}

/// Where a secret's value comes from.
///
/// `Display` writes the manifest spelling with the file path made absolute:
/// `env:GITHUB_TOKEN`, `file:/etc/warden/token`, `vault:secret/app#password`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// `env:NAME`: a variable of warden's own environment.
    Env {
        /// The variable's name.
        var: String,
    },
    /// `file:PATH`: a file only its owner may access.
    File {
        /// The file, absolute (resolved against the manifest's directory; symlinks are not
        /// resolved, so the file can be replaced between tasks, as rotation needs).
        path: PathBuf,
    },
    /// `vault:MOUNT/PATH#FIELD`: one field of a Vault or OpenBao KV version 2 secret.
    Vault {
        /// The KV v2 mount, e.g. `secret`.
        mount: String,
        /// The secret's path under the mount, `/`-separated, e.g. `tools/signer`.
        path: String,
        /// The field of the secret's data, e.g. `key`.
        field: String,
    },
}

impl Source {
    /// The provider's name: `env`, `file` or `vault`.
    pub fn provider(&self) -> &'static str {
        match self {
            Source::Env { .. } => "env",
            Source::File { .. } => "file",
            Source::Vault { .. } => "vault",
        }
    }

    /// Parses `env:NAME`, `file:PATH` or `vault:MOUNT/PATH#FIELD`; a relative `PATH` is
    /// resolved against `base_dir`.
    pub fn parse(source: &str, base_dir: &Path) -> Result<Source, SourceError> {
        let bad = |reason: SourceReason| SourceError {
            written: source.to_owned(),
            reason,
        };
        let Some((provider, reference)) = source.split_once(':') else {
            return Err(bad(SourceReason::NoProvider));
        };
        match provider {
            "env" => match check_var_name(reference) {
                Ok(()) => Ok(Source::Env {
                    var: reference.to_owned(),
                }),
                Err(e) => Err(bad(SourceReason::EnvName(e))),
            },
            "file" => {
                if reference.is_empty() {
                    return Err(bad(SourceReason::EmptyPath));
                }
                if reference.contains('\0') {
                    return Err(bad(SourceReason::PathNul));
                }
                let joined = base_dir.join(reference);
                let path = std::path::absolute(&joined).unwrap_or(joined);
                Ok(Source::File { path })
            }
            "vault" => parse_vault(reference).map_err(bad),
            other => Err(bad(SourceReason::UnknownProvider(other.to_owned()))),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env { var } => write!(f, "env:{var}"),
            Source::File { path } => write!(f, "file:{}", path.display()),
            Source::Vault { mount, path, field } => write!(f, "vault:{mount}/{path}#{field}"),
        }
    }
}

/// `MOUNT/PATH#FIELD`: the mount is the first segment; neither it nor the path may have
/// empty, `.` or `..` segments, which Vault would read as some other secret's path.
fn parse_vault(reference: &str) -> Result<Source, SourceReason> {
    let Some((location, field)) = reference.split_once('#') else {
        return Err(SourceReason::VaultShape);
    };
    if field.is_empty() || field.contains('#') {
        return Err(SourceReason::VaultShape);
    }
    let Some((mount, path)) = location.split_once('/') else {
        return Err(SourceReason::VaultShape);
    };
    if mount.is_empty() || path.is_empty() {
        return Err(SourceReason::VaultShape);
    }
    for segment in location.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(SourceReason::VaultSegment(segment.to_owned()));
        }
    }
    if let Some(c) = reference
        .chars()
        .find(|c| c.is_control() || matches!(c, '?' | '%' | '\\'))
    {
        return Err(SourceReason::VaultChar(c));
    }
    Ok(Source::Vault {
        mount: mount.to_owned(),
        path: path.to_owned(),
        field: field.to_owned(),
    })
}

/// A `source` that is not `env:NAME`, `file:PATH` or `vault:MOUNT/PATH#FIELD`; carries it
/// as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} in {written:?}")]
pub struct SourceError {
    /// The source as written.
    pub written: String,
    /// What is wrong with it.
    pub reason: SourceReason,
}

/// What is wrong with a `source`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceReason {
    /// No `provider:` prefix.
    #[error("expected env:NAME, file:PATH or vault:MOUNT/PATH#FIELD")]
    NoProvider,
    /// A prefix other than `env`, `file` and `vault`.
    #[error("unknown provider {0:?}, expected env, file or vault")]
    UnknownProvider(String),
    /// `env:` with a name no environment can hold.
    #[error("{0}")]
    EnvName(VarNameError),
    /// `file:` with nothing after it.
    #[error("file: needs a path")]
    EmptyPath,
    /// `file:` with a NUL byte, which no path can hold.
    #[error("file path must not contain NUL")]
    PathNul,
    /// `vault:` without a mount, a path or a field.
    #[error("expected vault:MOUNT/PATH#FIELD, e.g. vault:secret/app#password")]
    VaultShape,
    /// An empty, `.` or `..` segment in the Vault path.
    #[error("vault path segment {0:?} is not allowed")]
    VaultSegment(String),
    /// A character that would change what the Vault URL means.
    #[error("character {0:?} is not allowed in a vault reference")]
    VaultChar(char),
}

/// The header the host adds to a tool's outgoing requests that match [`Inject::rule`], with
/// the secret's value in it. The tool never holds the value.
///
/// ```toml
/// inject = { url = "https://api.github.com/", header = "authorization", format = "Bearer {}" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inject {
    /// The `inject.url` rule as written.
    pub url: String,
    /// Which requests get the header: scheme, host, port and path prefix, as an `[[http]]`
    /// rule (all methods).
    pub rule: HttpRule,
    /// The header's name: an HTTP token, lowercase, e.g. `authorization`.
    pub header: String,
    /// The header's value with `{}` standing for the secret, e.g. `Bearer {}`; exactly one
    /// `{}`, no control characters.
    pub format: String,
}

impl Inject {
    /// The header value for `value`: [`format`](Self::format) with `{}` replaced, in
    /// zeroizing memory.
    ///
    /// Fails, without saying anything about the value, if the value holds a byte that
    /// cannot be in a header value (CR, LF, NUL or another control character but tab),
    /// which would let whoever wrote the secret add headers of their own.
    pub fn header_value(
        &self,
        value: &super::SecretValue,
    ) -> Result<super::SecretValue, InjectValueError> {
        let bytes = value.expose();
        if bytes.iter().any(|b| is_forbidden_in_header(*b)) {
            return Err(InjectValueError);
        }
        let (before, after) = self
            .format
            .split_once("{}")
            .expect("resolve_secrets checked that the format holds one {}");
        let mut out =
            zeroize::Zeroizing::new(Vec::with_capacity(before.len() + bytes.len() + after.len()));
        out.extend_from_slice(before.as_bytes());
        out.extend_from_slice(bytes);
        out.extend_from_slice(after.as_bytes());
        Ok(super::SecretValue::from_zeroizing(out))
    }
}

/// A secret value that cannot go into a header: it holds a control character. Neither the
/// value, nor the character, nor where it is, is carried: the tool is told this error, and
/// anything that depends on the value would tell it something about the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the value holds a control character, which a header value cannot carry")]
pub struct InjectValueError;

fn is_forbidden_in_header(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Header names the host must not set for a tool: they frame the request or concern the
/// connection rather than the origin server (RFC 9110 7.6.1, RFC 9112), so a secret in one
/// would either break the request or be read by something other than the API it is for.
const REFUSED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// One `[[secrets]]` entry as written, before validation.
///
/// Each value keeps its span in the manifest source so that an error can name its line.
///
/// ```toml
/// [[secrets]]
/// name = "github"
/// source = "env:GITHUB_TOKEN"
/// purpose = "read issues"
/// inject = { url = "https://api.github.com/", header = "authorization", format = "Bearer {}" }
/// reveal = false
/// ttl = "5m"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    /// `name = "github"`: see [`SecretSpec::name`].
    pub name: Spanned<String>,
    /// `source = "env:GITHUB_TOKEN"`: see [`Source`].
    pub source: Spanned<String>,
    /// `purpose = "read issues"`: see [`SecretSpec::purpose`].
    pub purpose: Spanned<String>,
    /// `inject = { url = "...", header = "...", format = "..." }`: see [`Inject`].
    #[serde(default)]
    pub inject: Option<Spanned<RawInject>>,
    /// `hmac = true`: see [`SecretSpec::hmac`].
    #[serde(default)]
    pub hmac: Option<Spanned<bool>>,
    /// `reveal = true`: see [`SecretSpec::reveal`].
    #[serde(default)]
    pub reveal: Option<Spanned<bool>>,
    /// `ttl = "5m"`: see [`SecretSpec::ttl`].
    #[serde(default)]
    pub ttl: Option<Spanned<HumanDuration>>,
    /// `approval = "required"`: optional, `none` unless it says so; every use of the
    /// secret (`hmac-*`, `reveal`, each injection) asks an approver
    /// ([`crate::approval`]).
    #[serde(default)]
    pub approval: Option<Spanned<crate::approval::Approval>>,
}

impl RawSecret {
    /// The entry's `approval`, `none` when it has none.
    pub fn approval(&self) -> crate::approval::Approval {
        self.approval
            .as_ref()
            .map(|a| *a.get_ref())
            .unwrap_or_default()
    }
}

/// `inject = { ... }` as written.
///
/// ```toml
/// inject = { url = "https://api.example.com/v1/", header = "x-api-key" }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInject {
    /// `url = "https://api.github.com/"`: see [`Inject::rule`].
    pub url: Spanned<String>,
    /// `header = "authorization"`: see [`Inject::header`].
    pub header: Spanned<String>,
    /// `format = "Bearer {}"`: optional, `"{}"` (the bare value) by default.
    #[serde(default)]
    pub format: Option<Spanned<String>>,
}

/// Validates `[[secrets]]` entries and resolves `file:` paths against `base_dir` (the
/// manifest's directory). Reads no secret: values are fetched per task.
///
/// Stops at the first invalid entry.
pub fn resolve_secrets(raw: &[RawSecret], base_dir: &Path) -> Result<Vec<SecretSpec>, SpecError> {
    let mut specs: Vec<SecretSpec> = Vec::with_capacity(raw.len());
    for (index, entry) in raw.iter().enumerate() {
        let at = |field: &'static str, span: Range<usize>, reason: SpecReason| SpecError {
            index,
            field,
            span,
            reason,
        };
        let name = entry.name.get_ref();
        if !is_secret_name(name) {
            return Err(at(
                "name",
                entry.name.span(),
                SpecReason::BadName(name.clone()),
            ));
        }
        if let Some(earlier) = specs.iter().find(|s| &s.name == name) {
            return Err(at(
                "name",
                entry.name.span(),
                SpecReason::Duplicate {
                    name: name.clone(),
                    earlier: earlier.index,
                },
            ));
        }
        let source = Source::parse(entry.source.get_ref(), base_dir)
            .map_err(|e| at("source", entry.source.span(), SpecReason::Source(e)))?;
        let purpose = entry.purpose.get_ref().trim();
        if purpose.is_empty() {
            return Err(at("purpose", entry.purpose.span(), SpecReason::NoPurpose));
        }
        let inject = match &entry.inject {
            Some(inject) => Some(resolve_inject(inject.get_ref()).map_err(
                |(field, span, reason)| SpecError {
                    index,
                    field,
                    span,
                    reason,
                },
            )?),
            None => None,
        };
        let ttl = match &entry.ttl {
            Some(ttl) if ttl.get_ref().0.is_zero() => {
                return Err(at("ttl", ttl.span(), SpecReason::ZeroTtl));
            }
            Some(ttl) => Some(ttl.get_ref().0),
            None => None,
        };
        let hmac = entry.hmac.as_ref().is_some_and(|h| *h.get_ref());
        let reveal = entry.reveal.as_ref().is_some_and(|r| *r.get_ref());
        if inject.is_none() && !hmac && !reveal {
            return Err(at(
                "name",
                entry.name.span(),
                SpecReason::NoUse(name.clone()),
            ));
        }
        specs.push(SecretSpec {
            index,
            name: name.clone(),
            source,
            purpose: purpose.to_owned(),
            inject,
            hmac,
            reveal,
            ttl,
        });
    }
    Ok(specs)
}

type InjectFault = (&'static str, Range<usize>, SpecReason);

fn resolve_inject(raw: &RawInject) -> Result<Inject, InjectFault> {
    let url = raw.url.get_ref();
    let rule = HttpRule::parse(url, None)
        .map_err(|e| ("inject.url", raw.url.span(), SpecReason::Url(e)))?;
    let header = raw.header.get_ref().to_ascii_lowercase();
    if !is_token(&header) {
        return Err((
            "inject.header",
            raw.header.span(),
            SpecReason::HeaderNotToken(raw.header.get_ref().clone()),
        ));
    }
    if REFUSED_HEADERS.contains(&header.as_str()) {
        return Err((
            "inject.header",
            raw.header.span(),
            SpecReason::HeaderRefused(header),
        ));
    }
    let format = match &raw.format {
        Some(format) => {
            let text = format.get_ref();
            let fault = |reason| ("inject.format", format.span(), reason);
            let holes = text.matches("{}").count();
            if holes != 1 {
                return Err(fault(SpecReason::FormatHoles {
                    format: text.clone(),
                    holes,
                }));
            }
            if text.bytes().any(is_forbidden_in_header) {
                return Err(fault(SpecReason::FormatControl(text.clone())));
            }
            text.clone()
        }
        None => "{}".to_owned(),
    };
    Ok(Inject {
        url: url.clone(),
        rule,
        header,
        format,
    })
}

/// `[a-z0-9][a-z0-9_-]*`: safe in records, errors, file names and a shell without quoting.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// An HTTP field name (RFC 9110 5.6.2 `token`).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A `[[secrets]]` entry that failed validation.
///
/// [`field`](Self::field) and [`span`](Self::span) say where; `Display` says what, in
/// lowercase and without the field name, so the caller can prefix file, line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SpecError {
    /// Position of the entry among the `[[secrets]]` entries.
    pub index: usize,
    /// The key at fault inside the entry, e.g. `source` or `inject.url`.
    pub field: &'static str,
    /// Byte range of the offending value in the manifest source.
    pub span: Range<usize>,
    /// What is wrong.
    pub reason: SpecReason,
}

impl FieldError for SpecError {
    /// The dotted manifest field the error is about, e.g. `secrets[1].inject.header`.
    fn field(&self) -> String {
        format!("secrets[{}].{}", self.index, self.field)
    }

    /// Byte range of the offending value in the manifest source.
    fn span(&self) -> Range<usize> {
        self.span.clone()
    }
}

/// What is wrong with a `[[secrets]]` entry; each variant carries the value at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecReason {
    /// `name` does not match `[a-z0-9][a-z0-9_-]*`.
    #[error(
        "invalid secret name {0:?}: use lowercase letters, digits, \"_\" and \"-\", starting with a letter or digit"
    )]
    BadName(String),
    /// `name` is already bound by an earlier entry.
    #[error("{name:?} is already bound by secrets[{earlier}]")]
    Duplicate {
        /// The repeated name.
        name: String,
        /// Index of the entry that binds it first.
        earlier: usize,
    },
    /// `source` is not a source.
    #[error("{0}")]
    Source(SourceError),
    /// `purpose` is empty or blank.
    #[error(
        "must not be empty: say what the tool uses the secret for; it is recorded with every use"
    )]
    NoPurpose,
    /// `inject.url` is not an `[[http]]` rule.
    #[error("{0}")]
    Url(RuleError),
    /// `inject.header` is not an HTTP token.
    #[error("{0:?} is not an HTTP header name")]
    HeaderNotToken(String),
    /// `inject.header` frames the request or concerns the connection.
    #[error(
        "header {0:?} frames the request or the connection and cannot carry a secret; use the header the API reads, such as \"authorization\""
    )]
    HeaderRefused(String),
    /// `inject.format` does not hold exactly one `{}`.
    #[error("format {format:?} holds {holes} \"{{}}\", expected exactly one where the secret goes")]
    FormatHoles {
        /// The format as written.
        format: String,
        /// How many `{}` it holds.
        holes: usize,
    },
    /// `inject.format` holds CR, LF, NUL or another control character.
    #[error(
        "format {0:?} holds a control character (CR, LF, NUL, ...), which a header value cannot carry"
    )]
    FormatControl(String),
    /// The entry allows no use of the secret.
    #[error(
        "secret {0:?} allows no use: add inject = {{ url = ..., header = ... }} (the host adds it to requests), hmac = true (the tool signs with it) or reveal = true (the tool reads it)"
    )]
    NoUse(String),
    /// `ttl` is zero.
    #[error("must be more than 0s, e.g. \"5m\"; leave it out to keep the value for the whole task")]
    ZeroTtl,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        secrets: Vec<RawSecret>,
    }

    fn resolve(src: &str) -> Result<Vec<SecretSpec>, SpecError> {
        let doc: Doc = toml::from_str(src).unwrap();
        resolve_secrets(&doc.secrets, Path::new("/m"))
    }

    fn one(entry: &str) -> Result<SecretSpec, SpecError> {
        let src =
            format!("[[secrets]]\nname = \"s\"\nsource = \"env:S\"\npurpose = \"p\"\n{entry}\n");
        resolve(&src).map(|mut v| v.remove(0))
    }

    #[test]
    fn sources() {
        let base = Path::new("/etc/warden");
        let cases: &[(&str, Source)] = &[
            (
                "env:TOKEN",
                Source::Env {
                    var: "TOKEN".into(),
                },
            ),
            (
                "file:token",
                Source::File {
                    path: "/etc/warden/token".into(),
                },
            ),
            (
                "file:/run/keys/a",
                Source::File {
                    path: "/run/keys/a".into(),
                },
            ),
            (
                "vault:secret/app#password",
                Source::Vault {
                    mount: "secret".into(),
                    path: "app".into(),
                    field: "password".into(),
                },
            ),
            (
                "vault:kv/team/a/b#api key",
                Source::Vault {
                    mount: "kv".into(),
                    path: "team/a/b".into(),
                    field: "api key".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(&Source::parse(text, base).unwrap(), expected, "{text}");
        }
        assert_eq!(
            Source::parse("vault:secret/app#k", base)
                .unwrap()
                .to_string(),
            "vault:secret/app#k"
        );
    }

    #[test]
    fn bad_sources() {
        let cases: &[(&str, &str)] = &[
            (
                "GITHUB_TOKEN",
                "expected env:NAME, file:PATH or vault:MOUNT/PATH#FIELD in \"GITHUB_TOKEN\"",
            ),
            (
                "aws:x",
                "unknown provider \"aws\", expected env, file or vault in \"aws:x\"",
            ),
            ("env:", "variable name must not be empty in \"env:\""),
            (
                "env:A=B",
                "invalid variable name \"A=B\": must not contain \"=\" in \"env:A=B\"",
            ),
            ("file:", "file: needs a path in \"file:\""),
            (
                "vault:secret#k",
                "expected vault:MOUNT/PATH#FIELD, e.g. vault:secret/app#password in \"vault:secret#k\"",
            ),
            (
                "vault:secret/app",
                "expected vault:MOUNT/PATH#FIELD, e.g. vault:secret/app#password in \"vault:secret/app\"",
            ),
            (
                "vault:secret/app#",
                "expected vault:MOUNT/PATH#FIELD, e.g. vault:secret/app#password in \"vault:secret/app#\"",
            ),
            (
                "vault:secret/a#b#c",
                "expected vault:MOUNT/PATH#FIELD, e.g. vault:secret/app#password in \"vault:secret/a#b#c\"",
            ),
            (
                "vault:secret/../sys/x#k",
                "vault path segment \"..\" is not allowed in \"vault:secret/../sys/x#k\"",
            ),
            (
                "vault:secret//x#k",
                "vault path segment \"\" is not allowed in \"vault:secret//x#k\"",
            ),
            (
                "vault:secret/x?list=true#k",
                "character '?' is not allowed in a vault reference in \"vault:secret/x?list=true#k\"",
            ),
            (
                "vault:secret/%2e%2e#k",
                "character '%' is not allowed in a vault reference in \"vault:secret/%2e%2e#k\"",
            ),
        ];
        for (text, message) in cases {
            let err = Source::parse(text, Path::new("/")).expect_err(text);
            assert_eq!(err.to_string(), *message, "{text}");
        }
    }

    #[test]
    fn names() {
        for good in ["a", "github", "0x", "a_b-c", "9"] {
            assert!(is_secret_name(good), "{good}");
        }
        for bad in ["", "A", "-a", "_a", "a.b", "a b", "ä", "GitHub"] {
            assert!(!is_secret_name(bad), "{bad}");
        }
        let err = resolve(
            "[[secrets]]\nname = \"a\"\nsource = \"env:A\"\npurpose = \"p\"\nhmac = true\n\
             [[secrets]]\nname = \"a\"\nsource = \"env:B\"\npurpose = \"p\"\nhmac = true\n",
        )
        .unwrap_err();
        assert_eq!(err.field(), "secrets[1].name");
        assert_eq!(err.to_string(), "\"a\" is already bound by secrets[0]");
    }

    #[test]
    fn each_use_is_a_permission_and_one_is_needed() {
        let err = one("").unwrap_err();
        assert_eq!(err.field(), "secrets[0].name");
        assert!(err.to_string().contains("allows no use"), "{err}");
        let err = one("hmac = false\nreveal = false").unwrap_err();
        assert!(err.to_string().contains("allows no use"), "{err}");
        let s = one("hmac = true").unwrap();
        assert!(s.hmac && !s.reveal && s.inject.is_none());
        let s = one("reveal = true").unwrap();
        assert!(!s.hmac && s.reveal);
        let s = one(r#"inject = { url = "https://x/", header = "x-key" }"#).unwrap();
        assert!(!s.hmac && !s.reveal && s.inject.is_some());
    }

    #[test]
    fn inject() {
        let spec = one(r#"inject = { url = "https://api.github.com/", header = "Authorization", format = "Bearer {}" }"#).unwrap();
        let inject = spec.inject.unwrap();
        assert_eq!(inject.header, "authorization");
        let value = crate::secrets::SecretValue::new(b"t0k".to_vec());
        assert_eq!(inject.header_value(&value).unwrap().expose(), b"Bearer t0k");
        // The error is the same wherever the bad byte is: it says nothing of the value.
        for bad in [&b"a\r\nx-evil: 1"[..], b"\x00abc", b"abc\x7f"] {
            let bad = crate::secrets::SecretValue::new(bad.to_vec());
            assert_eq!(
                inject.header_value(&bad).unwrap_err().to_string(),
                "the value holds a control character, which a header value cannot carry"
            );
        }

        let spec =
            one(r#"inject = { url = "https://api.example.com/", header = "x-api-key" }"#).unwrap();
        assert_eq!(spec.inject.unwrap().format, "{}");
    }

    #[test]
    fn bad_inject() {
        let cases: &[(&str, &str, &str)] = &[
            (
                r#"inject = { url = "ftp://x/", header = "a" }"#,
                "secrets[0].inject.url",
                "http rule url \"ftp://x/\" has scheme \"ftp\": only http and https are allowed",
            ),
            (
                r#"inject = { url = "https://x/", header = "a b" }"#,
                "secrets[0].inject.header",
                "\"a b\" is not an HTTP header name",
            ),
            (
                r#"inject = { url = "https://x/", header = "Host" }"#,
                "secrets[0].inject.header",
                "header \"host\" frames the request or the connection and cannot carry a secret; use the header the API reads, such as \"authorization\"",
            ),
            (
                r#"inject = { url = "https://x/", header = "transfer-encoding" }"#,
                "secrets[0].inject.header",
                "header \"transfer-encoding\" frames the request or the connection and cannot carry a secret; use the header the API reads, such as \"authorization\"",
            ),
            (
                r#"inject = { url = "https://x/", header = "a", format = "Bearer" }"#,
                "secrets[0].inject.format",
                "format \"Bearer\" holds 0 \"{}\", expected exactly one where the secret goes",
            ),
            (
                r#"inject = { url = "https://x/", header = "a", format = "{}:{}" }"#,
                "secrets[0].inject.format",
                "format \"{}:{}\" holds 2 \"{}\", expected exactly one where the secret goes",
            ),
            (
                r#"inject = { url = "https://x/", header = "a", format = "{}\r\nx-evil: 1" }"#,
                "secrets[0].inject.format",
                "format \"{}\\r\\nx-evil: 1\" holds a control character (CR, LF, NUL, ...), which a header value cannot carry",
            ),
        ];
        for (entry, field, message) in cases {
            let err = one(entry).expect_err(entry);
            assert_eq!(err.field(), *field, "{entry}");
            assert_eq!(err.to_string(), *message, "{entry}");
        }
    }

    #[test]
    fn purpose_ttl_reveal() {
        let err = resolve("[[secrets]]\nname = \"s\"\nsource = \"env:S\"\npurpose = \"  \"\n")
            .unwrap_err();
        assert_eq!(err.field(), "secrets[0].purpose");
        let err = one("ttl = \"0s\"").unwrap_err();
        assert_eq!(err.field(), "secrets[0].ttl");
        let spec = one("ttl = \"90s\"\nreveal = true").unwrap();
        assert_eq!(spec.ttl, Some(Duration::from_secs(90)));
        assert!(spec.reveal);
        assert_eq!(spec.label(), "secrets[0] s");
    }
}
