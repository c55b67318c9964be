//! Why a policy did not load, and where in the Rego source.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a policy could not be loaded or compiled.
///
/// `Display` is one line that starts with the file (as given) and, where there is one, the
/// 1-based line and column: `policy.rego:4:3: use of undefined variable "x" is unsafe`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read policy {}: {error}", path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The Rego does not compile: a syntax error, an unsafe variable, a call to a function
    /// that does not exist, a Rego v0 rule without `if`.
    #[error("{}: {message}", Location { file, line: *line, column: *column })]
    Compile {
        /// The file name the policy was loaded as.
        file: String,
        /// 1-based line, when the compiler named one.
        line: Option<u32>,
        /// 1-based column, when the compiler named one.
        column: Option<u32>,
        /// What the compiler said, lowercase, on one line.
        message: String,
    },
    /// The module's package is not `warden`.
    #[error(
        "{file}:{line}: expected package warden, found package {found}: a Warden policy starts with \"package warden\""
    )]
    Package {
        /// The file name the policy was loaded as.
        file: String,
        /// 1-based line of the `package` declaration.
        line: u32,
        /// The package as written, e.g. `authz`.
        found: String,
    },
    /// The module defines neither `deny` nor `allow`, so it could never refuse anything.
    #[error(
        "{file}: defines neither deny nor allow, so it would allow every call: add a rule such as \"deny contains msg if {{ ... }}\""
    )]
    NoDecision {
        /// The file name the policy was loaded as.
        file: String,
    },
}

impl PolicyError {
    /// The 1-based line in the policy source the error is about, if it is about one.
    pub fn line(&self) -> Option<u32> {
        match self {
            PolicyError::Compile { line, .. } => *line,
            PolicyError::Package { line, .. } => Some(*line),
            PolicyError::Read { .. } | PolicyError::NoDecision { .. } => None,
        }
    }

    /// A compile error from regorus's multi-line report.
    pub(crate) fn compile(file: &str, error: &anyhow::Error) -> PolicyError {
        let report = Report::parse(&format!("{error:#}"));
        PolicyError::Compile {
            file: report.file.unwrap_or_else(|| file.to_owned()),
            line: report.line,
            column: report.column,
            message: report.message,
        }
    }
}

/// `file:line:column`, with as much as is known.
pub(crate) struct Location<'a> {
    pub file: &'a str,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// One regorus error, taken apart.
///
/// regorus reports a located error rustc-style, over five lines:
///
/// ```text
///
/// --> policy.rego:4:3
///   |
/// 4 |   x == 1
///   |   ^
/// error: use of undefined variable `x` is unsafe
/// ```
///
/// Warden's errors are one line (manifest errors embed them, and the audit log's `rule`
/// holds them), so this keeps the location and the message and drops the picture.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Report {
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

impl Report {
    pub fn parse(text: &str) -> Report {
        let Some(at) = text.find("--> ") else {
            return Report {
                file: None,
                line: None,
                column: None,
                message: one_line(text),
            };
        };
        let mut lines = text[at + 4..].lines();
        let location = lines.next().unwrap_or_default();
        // A file name may contain ':', the line and column never do.
        let mut parts = location.rsplitn(3, ':');
        let column = parts.next().and_then(|c| c.trim().parse().ok());
        let line = parts.next().and_then(|l| l.trim().parse().ok());
        let file = parts.next().map(str::to_owned);
        // Skip the gutter, the source line and the caret line.
        let rest: Vec<&str> = lines.skip(3).collect();
        let message = rest.join("\n");
        let message = message.strip_prefix("error: ").unwrap_or(&message);
        match (file, line) {
            (Some(file), Some(line)) => Report {
                file: Some(file),
                line: Some(line),
                column,
                message: one_line(message),
            },
            // Not the shape described above: keep everything rather than guess.
            _ => Report {
                file: None,
                line: None,
                column: None,
                message: one_line(text),
            },
        }
    }
}

/// Collapses whitespace runs, newlines included, to one space, and lowercases a
/// capitalised first word (not an acronym), as every Warden error reads.
fn one_line(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(first), second)
            if first.is_uppercase() && !second.is_some_and(char::is_uppercase) =>
        {
            first.to_lowercase().chain(text.chars().skip(1)).collect()
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_located_report() {
        let text = "\n--> dir:with:colons/p.rego:4:3\n  |\n4 |   x == 1\n  |   ^\nerror: use of undefined variable `x` is unsafe";
        assert_eq!(
            Report::parse(text),
            Report {
                file: Some("dir:with:colons/p.rego".into()),
                line: Some(4),
                column: Some(3),
                message: "use of undefined variable `x` is unsafe".into(),
            }
        );
    }

    #[test]
    fn keeps_an_unlocated_report_whole() {
        let report = Report::parse("Not a valid\n rule path");
        assert_eq!(report.line, None);
        assert_eq!(report.message, "not a valid rule path");
        assert_eq!(Report::parse("TOML is fine").message, "TOML is fine");
    }

    #[test]
    fn displays_what_is_known() {
        let e = PolicyError::Compile {
            file: "p.rego".into(),
            line: Some(2),
            column: None,
            message: "m".into(),
        };
        assert_eq!(e.to_string(), "p.rego:2: m");
        assert_eq!(e.line(), Some(2));
        let e = PolicyError::Compile {
            file: "p.rego".into(),
            line: None,
            column: None,
            message: "m".into(),
        };
        assert_eq!(e.to_string(), "p.rego: m");
    }
}
