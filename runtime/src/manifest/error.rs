//! Why a manifest was refused, as `FILE:LINE: FIELD: MESSAGE`: TOML spans turned into lines
//! and dotted field paths, and serde's messages into TOML's words.

use super::Digest;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Why a manifest was refused.
///
/// `Display` is one line, `FILE:LINE: FIELD: MESSAGE` (or `FILE:LINE: MESSAGE` for a TOML
/// syntax error), with the file as the user gave it, a 1-based line and a dotted field
/// path with array indices, e.g.
/// `warden.toml:14: fs[1].access: expected "read" or "read-write", found "rw"`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The manifest file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read manifest: {error}", path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        /// The path as given.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// What the TOML parser expected, lowercase.
        message: String,
    },
    /// A field is missing, unknown, of the wrong type or has a value that is not allowed.
    #[error("{}:{line}: {field}: {message}", path.display())]
    Invalid {
        /// The path as given.
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// Dotted path of the field, e.g. `fs[1].access`.
        field: String,
        /// What is wrong, lowercase, carrying the offending value.
        message: String,
    },
    /// The component's bytes do not match the manifest's `tool.digest`.
    #[error("{}:{line}: tool.digest: component digest mismatch: expected {expected}, found {actual}", path.display())]
    DigestMismatch {
        /// The path as given.
        path: PathBuf,
        /// 1-based line of `tool.digest`.
        line: usize,
        /// The digest the manifest pins.
        expected: Digest,
        /// The digest of the bytes that were offered.
        actual: Digest,
    },
}

impl ManifestError {
    /// The manifest path, as given.
    pub fn path(&self) -> &Path {
        match self {
            ManifestError::Read { path, .. }
            | ManifestError::Syntax { path, .. }
            | ManifestError::Invalid { path, .. }
            | ManifestError::DigestMismatch { path, .. } => path,
        }
    }

    /// The 1-based line the error is about, if it is about one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ManifestError::Read { .. } => None,
            ManifestError::Syntax { line, .. }
            | ManifestError::Invalid { line, .. }
            | ManifestError::DigestMismatch { line, .. } => Some(*line),
        }
    }

    /// The dotted field the error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ManifestError::Invalid { field, .. } => Some(field),
            ManifestError::DigestMismatch { .. } => Some("tool.digest"),
            ManifestError::Read { .. } | ManifestError::Syntax { .. } => None,
        }
    }
}

/// What every error needs: the source for line numbers and the path for the prefix.
pub(super) struct Context<'a> {
    pub(super) src: &'a str,
    pub(super) path: &'a Path,
}

impl Context<'_> {
    /// 1-based line of a byte offset.
    pub(super) fn line(&self, offset: usize) -> usize {
        let offset = offset.min(self.src.len());
        self.src.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    pub(super) fn invalid(
        &self,
        offset: usize,
        field: impl Into<String>,
        message: impl fmt::Display,
    ) -> ManifestError {
        ManifestError::Invalid {
            path: self.path.to_owned(),
            line: self.line(offset),
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub(super) fn syntax(&self, error: &toml::de::Error) -> ManifestError {
        let span = error.span().unwrap_or(0..0);
        let mut message = tomlish(error.message());
        if message == "duplicate key"
            && let Some(key) = self.src.get(span.clone())
        {
            message = format!("duplicate key {:?}", key.trim());
        }
        ManifestError::Syntax {
            path: self.path.to_owned(),
            line: self.line(span.start),
            message,
        }
    }

    /// Turns a deserialization error into `FIELD: MESSAGE` by finding the key or value its
    /// span points at: serde errors do not say where in the document they happened.
    pub(super) fn serde(&self, error: &toml::de::Error, doc: &DeTable<'_>) -> ManifestError {
        let span = error.span().unwrap_or(0..0);
        let mut field = field_at(doc, &span).unwrap_or_default();
        let raw = error.message();
        let message = if let Some(rest) = raw.strip_prefix("missing field `") {
            // The span is that of the table missing the field: name the field itself.
            let name = rest.split('`').next().unwrap_or_default();
            field = join_key(&field, name);
            "missing required field".to_owned()
        } else if let Some(rest) = raw.strip_prefix("unknown field `") {
            // The span is the unknown key's, so `field` already ends with it.
            match rest.split_once("`, ") {
                Some((_, expected)) => format!("unknown field, {}", tomlish(expected)),
                None => "unknown field".to_owned(),
            }
        } else if raw == "invalid type: map, expected a sequence" && !field.contains(['.', '[']) {
            // `[fs]` where `[[fs]]` was meant: the most likely way to get this at the top.
            format!("expected an array of tables [[{field}]], found a table [{field}]")
        } else {
            tomlish(raw)
        };
        if field.is_empty() {
            return ManifestError::Syntax {
                path: self.path.to_owned(),
                line: self.line(span.start),
                message,
            };
        }
        ManifestError::Invalid {
            path: self.path.to_owned(),
            line: self.line(span.start),
            field,
            message,
        }
    }
}

/// Rewrites serde and parser wording into manifest wording: TOML's names for types,
/// double quotes instead of backticks, lowercase first letter, no trailing period.
fn tomlish(message: &str) -> String {
    let mut message = requote(message.trim().trim_end_matches('.'))
        .replace("invalid type: map,", "invalid type: table,")
        .replace("invalid type: sequence,", "invalid type: array,")
        .replace("expected a map", "expected a table")
        .replace("expected a sequence", "expected an array")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected i64", "expected an integer");
    // serde names the Rust type of a struct ("expected struct RawTool"): meaningless here.
    if let Some(at) = message.find("expected struct ") {
        message.truncate(at);
        message.push_str("expected a table");
    }
    // Lowercase a capitalized first word, but leave acronyms such as "TOML" alone.
    if let Some(first) = message.chars().next()
        && first.is_uppercase()
        && !message.chars().nth(1).is_some_and(char::is_uppercase)
    {
        message = first
            .to_lowercase()
            .chain(message.chars().skip(1))
            .collect();
    }
    message
}

/// serde and the TOML parser quote with backticks; manifest errors use double quotes for
/// strings and names, and nothing for numbers and booleans (`found 42`, as TOML writes it).
fn requote(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find('`') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('`') else {
            out.push('"');
            rest = after;
            continue;
        };
        let inner = &after[..close];
        if inner == "true" || inner == "false" || inner.parse::<f64>().is_ok() {
            out.push_str(inner);
        } else {
            out.push('"');
            out.push_str(inner);
            out.push('"');
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The dotted path of the innermost key or value whose span contains `span`.
fn field_at(doc: &DeTable<'_>, span: &Range<usize>) -> Option<String> {
    if span.is_empty() {
        return None;
    }
    let mut best: Option<(usize, String)> = None;
    walk_table(doc, "", span, &mut best);
    best.map(|(_, path)| path)
}

fn walk_table(
    table: &DeTable<'_>,
    prefix: &str,
    target: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    for (key, value) in table {
        let path = join_key(prefix, key.get_ref());
        consider(key.span(), &path, target, best);
        walk_value(value, &path, target, best);
    }
}

fn walk_value(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    target: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    consider(value.span(), path, target, best);
    match value.get_ref() {
        DeValue::Table(table) => walk_table(table, path, target, best),
        DeValue::Array(array) => {
            for (index, element) in array.iter().enumerate() {
                walk_value(element, &format!("{path}[{index}]"), target, best);
            }
        }
        _ => {}
    }
}

fn consider(
    span: Range<usize>,
    path: &str,
    target: &Range<usize>,
    best: &mut Option<(usize, String)>,
) {
    if span.start <= target.start && target.end <= span.end {
        let len = span.len();
        // `<=`: on a tie the later, deeper candidate wins. An `[[fs]]` element and the `fs`
        // array share the header's span, and the element is the more useful answer.
        if best.as_ref().is_none_or(|(best_len, _)| len <= *best_len) {
            *best = Some((len, path.to_owned()));
        }
    }
}

/// `prefix.key`, with the key quoted when it is not a bare TOML key.
fn join_key(prefix: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tomlish_rewrites() {
        assert_eq!(
            tomlish("invalid type: integer `5`, expected struct RawTool"),
            "invalid type: integer 5, expected a table"
        );
        assert_eq!(
            tomlish("invalid type: string \"x\", expected a sequence"),
            "invalid type: string \"x\", expected an array"
        );
        assert_eq!(
            tomlish("unknown field `x`, expected `a` or `b`"),
            "unknown field \"x\", expected \"a\" or \"b\""
        );
        assert_eq!(
            tomlish("extra `=`, expected nothing"),
            "extra \"=\", expected nothing"
        );
        assert_eq!(tomlish("Unexpected thing."), "unexpected thing");
        assert_eq!(tomlish("TOML thing"), "TOML thing");
    }
}
