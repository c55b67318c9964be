//! The `[env]` manifest section: the environment variables a tool sees.
//!
//! ```toml
//! [env]
//! vars = { LANG = "C.UTF-8", MODE = "ci" }   # literal values, written here
//! pass = ["TZ"]                             # copied from the host's environment, if set
//! ```
//!
//! Without an `[env]` section a tool sees an empty environment: nothing is inherited from
//! the host. `pass` names are looked up when a task starts; a name that is not set on the
//! host is simply absent in the guest, never an error, so one manifest works on machines
//! that differ.
//!
//! A name may appear once, in `vars` or in `pass`: if it were in both, whether the literal
//! or the host's value wins would be a rule to remember, and a security reviewer reading the
//! manifest should not need one.
//!
//! # Example
//!
//! ```
//! use warden_host_api::env::manifest::RawEnvSection;
//!
//! let raw: RawEnvSection = toml::from_str(r#"
//!     vars = { LANG = "C.UTF-8" }
//!     pass = ["TZ"]
//! "#).unwrap();
//! let env = raw.resolve().unwrap();
//! assert_eq!(env.vars["LANG"], "C.UTF-8");
//! assert_eq!(env.pass, ["TZ"]);
//! ```

use crate::capability::FieldError;
use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

/// The validated `[env]` section. The default is empty: no variables at all.
///
/// ```toml
/// [env]
/// vars = { LANG = "C.UTF-8" }
/// pass = ["TZ", "RUST_LOG"]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSection {
    /// Variables with literal values from the manifest, by name.
    pub vars: BTreeMap<String, String>,
    /// Names whose values are copied from the host's environment when a task starts, in
    /// manifest order; none of them is also in [`vars`](Self::vars).
    pub pass: Vec<String>,
}

/// The `[env]` section as written, before validation.
///
/// Names and values keep their spans in the manifest source so that an error can name its
/// line.
///
/// ```toml
/// [env]
/// vars = { LANG = "C.UTF-8" }
/// pass = ["TZ"]
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvSection {
    /// `vars = { NAME = "value" }`: literal variables.
    #[serde(default)]
    pub vars: BTreeMap<Spanned<String>, Spanned<String>>,
    /// `pass = ["NAME"]`: variables copied from the host by name.
    #[serde(default)]
    pub pass: Vec<Spanned<String>>,
}

impl RawEnvSection {
    /// Checks every name and value, and that no name is given twice.
    pub fn resolve(&self) -> Result<EnvSection, EnvError> {
        let mut env = EnvSection::default();
        for (name, value) in &self.vars {
            check_var_name(name.get_ref()).map_err(|reason| EnvError::VarName {
                name: name.get_ref().clone(),
                span: name.span(),
                reason,
            })?;
            if value.get_ref().contains('\0') {
                return Err(EnvError::ValueNul {
                    name: name.get_ref().clone(),
                    span: value.span(),
                });
            }
            env.vars
                .insert(name.get_ref().clone(), value.get_ref().clone());
        }
        for (index, name) in self.pass.iter().enumerate() {
            check_var_name(name.get_ref()).map_err(|reason| EnvError::PassName {
                index,
                span: name.span(),
                reason,
            })?;
            let name_str = name.get_ref();
            let earlier = if env.vars.contains_key(name_str) {
                Some("env.vars".to_owned())
            } else {
                env.pass
                    .iter()
                    .position(|p| p == name_str)
                    .map(|i| format!("env.pass[{i}]"))
            };
            if let Some(earlier) = earlier {
                return Err(EnvError::Duplicate {
                    index,
                    span: name.span(),
                    name: name_str.clone(),
                    earlier,
                });
            }
            env.pass.push(name_str.clone());
        }
        Ok(env)
    }
}

/// Why a string cannot be an environment variable name; each variant carries the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VarNameError {
    /// The name is empty.
    #[error("variable name must not be empty")]
    Empty,
    /// The name contains `=`, which would split it into name and value.
    #[error("invalid variable name {0:?}: must not contain \"=\"")]
    Equals(String),
    /// The name contains a NUL byte, which the C environment cannot represent.
    #[error("invalid variable name {0:?}: must not contain NUL")]
    Nul(String),
}

/// Checks that `name` can be an environment variable name: non-empty, no `=`, no NUL.
///
/// Anything else is allowed, as POSIX allows it, even if a shell could not set it.
///
/// ```
/// use warden_host_api::env::manifest::check_var_name;
///
/// assert!(check_var_name("LANG").is_ok());
/// assert!(check_var_name("A=B").is_err());
/// ```
pub fn check_var_name(name: &str) -> Result<(), VarNameError> {
    if name.is_empty() {
        Err(VarNameError::Empty)
    } else if name.contains('=') {
        Err(VarNameError::Equals(name.to_owned()))
    } else if name.contains('\0') {
        Err(VarNameError::Nul(name.to_owned()))
    } else {
        Ok(())
    }
}

/// An `[env]` entry that failed validation.
///
/// [`field`](Self::field) and [`span`](Self::span) say where; `Display` says what, in
/// lowercase and without the field name, so the caller can prefix file, line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// A key of `env.vars` is not a valid name.
    #[error("{reason}")]
    VarName {
        /// The key as written.
        name: String,
        /// Byte range of the key in the manifest source.
        span: Range<usize>,
        /// What is wrong with it.
        reason: VarNameError,
    },
    /// A value of `env.vars` contains a NUL byte.
    #[error("value must not contain NUL")]
    ValueNul {
        /// The variable's name.
        name: String,
        /// Byte range of the value in the manifest source.
        span: Range<usize>,
    },
    /// An entry of `env.pass` is not a valid name.
    #[error("{reason}")]
    PassName {
        /// Position in `env.pass`.
        index: usize,
        /// Byte range of the entry in the manifest source.
        span: Range<usize>,
        /// What is wrong with it.
        reason: VarNameError,
    },
    /// An entry of `env.pass` is already in `env.vars` or earlier in `env.pass`.
    #[error("{name:?} is already given in {earlier}")]
    Duplicate {
        /// Position in `env.pass`.
        index: usize,
        /// Byte range of the entry in the manifest source.
        span: Range<usize>,
        /// The repeated name.
        name: String,
        /// Where it was given first: `env.vars` or `env.pass[i]`.
        earlier: String,
    },
}

impl FieldError for EnvError {
    /// The dotted manifest field the error is about, e.g. `env.pass[1]` or `env.vars.LANG`
    /// (a name that is not a bare TOML key is quoted: `env.vars."A=B"`).
    fn field(&self) -> String {
        match self {
            EnvError::VarName { name, .. } | EnvError::ValueNul { name, .. } => {
                format!("env.vars.{}", toml_key(name))
            }
            EnvError::PassName { index, .. } | EnvError::Duplicate { index, .. } => {
                format!("env.pass[{index}]")
            }
        }
    }

    /// Byte range of the offending key or value in the manifest source.
    fn span(&self) -> Range<usize> {
        match self {
            EnvError::VarName { span, .. }
            | EnvError::ValueNul { span, .. }
            | EnvError::PassName { span, .. }
            | EnvError::Duplicate { span, .. } => span.clone(),
        }
    }
}

/// A key as it would be written in a dotted TOML path: bare when it can be, quoted when not.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(src: &str) -> Result<EnvSection, EnvError> {
        toml::from_str::<RawEnvSection>(src).unwrap().resolve()
    }

    #[test]
    fn empty_by_default() {
        assert_eq!(resolve("").unwrap(), EnvSection::default());
    }

    #[test]
    fn bad_names() {
        let err = resolve(r#"vars = { "A=B" = "x" }"#).unwrap_err();
        assert_eq!(err.field(), "env.vars.\"A=B\"");
        assert_eq!(
            err.to_string(),
            "invalid variable name \"A=B\": must not contain \"=\""
        );
        let err = resolve(r#"pass = ["TZ", ""]"#).unwrap_err();
        assert_eq!(err.field(), "env.pass[1]");
        assert_eq!(err.to_string(), "variable name must not be empty");
    }

    #[test]
    fn duplicates() {
        let err = resolve("vars = { TZ = \"UTC\" }\npass = [\"TZ\"]").unwrap_err();
        assert_eq!(err.field(), "env.pass[0]");
        assert_eq!(err.to_string(), "\"TZ\" is already given in env.vars");
        let err = resolve(r#"pass = ["TZ", "HOME", "TZ"]"#).unwrap_err();
        assert_eq!(err.field(), "env.pass[2]");
        assert_eq!(err.to_string(), "\"TZ\" is already given in env.pass[0]");
    }
}
