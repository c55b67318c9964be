//! [`Narrowing`]: what a caller asks for when deriving a child grant, written as
//! `KEY=VALUE` strings, and [`Capabilities::narrow`], which builds the child from it.

use std::fmt;

use super::caps::SecretGrant;
use super::covers::{
    deciding_rules, fs_label, guest_below, host_below, min_limits, rule_within, secret_label,
};
use super::{Capabilities, Widening};
use crate::capability::Capability;
use crate::env::Env;
use crate::env::manifest::VarNameError;
use crate::fs::manifest::{Access, FsGrant, GuestPathError, guest_paths_overlap, normalize_guest};
use crate::http::manifest::HttpGrant;
use crate::http::{HttpRule, RuleError};
use crate::limits::TaskLimits;
use crate::limits::manifest::{DurationError, SizeError};
use crate::secrets::manifest::is_secret_name;
use crate::sockets::Tcp;
use crate::sockets::manifest::ConnectError;

/// The keys a narrowing may have, in the order [`Narrowing::to_args`] writes them.
const KEYS: &str = "fs, http, tcp, secrets, env, memory, timeout, fuel, output";

/// What a caller asks for when deriving a child grant from its parent: a replacement for
/// any of the capability lists, and lower limits. Anything not mentioned is the parent's.
///
/// Written as `KEY=VALUE` strings, one capability per string (repeat the key for more), as
/// a command line takes them (`--narrow fs=/workspace/src:read --narrow secrets=`):
///
/// | string | meaning |
/// |---|---|
/// | `fs=GUEST[:read\|:read-write]` | the directory `GUEST`, a parent grant's guest path or one inside it; the host directory is the one the parent maps it to; access as given, else the parent grant's |
/// | `http=URL [METHOD,...]` | an `[[http]]` rule within one of the parent's; without methods, those of the first parent rule it is within. Per-request limits are the parent's |
/// | `tcp=HOST:PORT` | a `[[tcp]]` rule within one of the parent's |
/// | `secrets=NAME[:USE[+USE...]][,...]` | secrets the parent holds, each with the uses given (`inject`, `hmac`, `reveal`), or without any, the parent's uses but `reveal` |
/// | `env=NAME[,...]` | variables the parent sets, literal or passed, as the parent has them |
/// | `memory=SIZE`, `output=SIZE` | `32MiB`, `64 KiB`, `1000000` (bytes) |
/// | `timeout=DURATION` | `2s`, `500ms`, `1m30s` |
/// | `fuel=N` | instructions per call, `1000000` or `1_000_000` |
///
/// A list key given with an empty value (`fs=`, `http=`, `tcp=`, `secrets=`, `env=`)
/// grants none of that kind; given with values, exactly those. A guest path that itself
/// holds a `:` ends with its access, or with a bare `:` to keep the parent's
/// (`fs=/data/a:b:read`, `fs=/data/a:b:`). An environment name that holds a `,` cannot be
/// named.
///
/// Parsing checks each string on its own (paths, URLs, names, units and bounds);
/// whether the parent grants what it asks for is [`Capabilities::narrow`]'s to check.
///
/// ```
/// use warden_host_api::grant::Narrowing;
///
/// let narrowing = Narrowing::parse([
///     "fs=/workspace/src:read",
///     "http=https://api.github.com/repos/rust-lang/ GET",
///     "secrets=github",
///     "memory=32MiB",
///     "timeout=2s",
/// ])?;
/// assert_eq!(narrowing.to_args()[1], "http=https://api.github.com/repos/rust-lang/ GET");
///
/// let err = Narrowing::parse(["fs=/workspace/../etc"]).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"invalid narrowing "fs=/workspace/../etc": "/workspace/../etc" must not contain "..""#
/// );
/// # Ok::<(), warden_host_api::grant::NarrowingError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Narrowing {
    fs: Option<Vec<FsNarrowing>>,
    http: Option<Vec<HttpNarrowing>>,
    tcp: Option<<Tcp as Capability>::Narrowing>,
    secrets: Option<Vec<SecretNarrowing>>,
    env: Option<<Env as Capability>::Narrowing>,
    limits: Option<<TaskLimits as Capability>::Narrowing>,
}

/// `secrets=NAME[:USES]`: a secret, with the uses asked for, or `None` for the parent's but
/// `reveal`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SecretNarrowing {
    name: String,
    uses: Option<SecretGrant>,
}

impl SecretNarrowing {
    fn label(&self) -> String {
        match &self.uses {
            Some(grant) => secret_label(grant),
            None => self.name.clone(),
        }
    }

    /// The child's secret: as asked, or the parent's without `reveal`. A name the parent
    /// does not hold comes out with no use, for `covers` to refuse with the parent's list.
    fn grant(&self, parent: &[SecretGrant]) -> SecretGrant {
        if let Some(asked) = &self.uses {
            return asked.clone();
        }
        match parent.iter().find(|p| p.name == self.name) {
            Some(p) => SecretGrant {
                reveal: false,
                ..p.clone()
            },
            None => SecretGrant {
                name: self.name.clone(),
                inject: false,
                hmac: false,
                reveal: false,
            },
        }
    }
}

/// `fs=GUEST[:ACCESS]`: the guest path normalized; no access means the parent grant's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FsNarrowing {
    guest: String,
    access: Option<Access>,
}

/// `http=URL [METHODS]`: the rule parsed with the methods given, and whether there were
/// any (without them, the covering parent rule's methods are taken).
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpNarrowing {
    rule: HttpRule,
    methods_given: bool,
}

impl Narrowing {
    /// Parses `KEY=VALUE` strings (see the [type docs](Narrowing)); the first bad one is
    /// the error.
    pub fn parse<I>(args: I) -> Result<Narrowing, NarrowingError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut narrowing = Narrowing::default();
        for arg in args {
            narrowing.push(arg.as_ref())?;
        }
        Ok(narrowing)
    }

    /// Adds one `KEY=VALUE` string to this narrowing.
    pub fn push(&mut self, arg: &str) -> Result<(), NarrowingError> {
        self.push_inner(arg).map_err(|reason| NarrowingError {
            arg: arg.to_owned(),
            reason,
        })
    }

    /// Whether this narrowing asks for nothing, so that a child would be its parent's
    /// equal.
    pub fn is_empty(&self) -> bool {
        *self == Narrowing::default()
    }

    /// The narrowing as `KEY=VALUE` strings in a canonical form that [`Narrowing::parse`]
    /// reads back as an equal narrowing: keys in the order of the table above, each list
    /// entry on its own, sizes and durations as a manifest writes them.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let list = |args: &mut Vec<String>, key: &str, values: Option<Vec<String>>| match values {
            Some(values) if values.is_empty() => args.push(format!("{key}=")),
            Some(values) => args.extend(values.into_iter().map(|v| format!("{key}={v}"))),
            None => {}
        };
        list(
            &mut args,
            "fs",
            self.fs.as_ref().map(|fs| {
                fs.iter()
                    .map(|f| match f.access {
                        Some(access) => format!("{}:{access}", f.guest),
                        // A `:` in the path would otherwise read as an access.
                        None if f.guest.contains(':') => format!("{}:", f.guest),
                        None => f.guest.clone(),
                    })
                    .collect()
            }),
        );
        list(
            &mut args,
            "http",
            self.http.as_ref().map(|http| {
                http.iter()
                    .map(|h| match h.rule.methods() {
                        Some(methods) if h.methods_given => {
                            format!("{} {}", h.rule.url(), methods.join(","))
                        }
                        _ => h.rule.url().to_owned(),
                    })
                    .collect()
            }),
        );
        args.extend(self.tcp.iter().flat_map(Tcp::narrowing_args));
        list(
            &mut args,
            "secrets",
            self.secrets
                .as_ref()
                .map(|s| s.iter().map(SecretNarrowing::label).collect()),
        );
        args.extend(self.env.iter().flat_map(Env::narrowing_args));
        args.extend(self.limits.iter().flat_map(TaskLimits::narrowing_args));
        args
    }

    /// Checks `arg` whole before changing anything, so that a refused string leaves the
    /// narrowing as it was (an emptied list would grant less than the caller meant).
    fn push_inner(&mut self, arg: &str) -> Result<(), NarrowingReason> {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(NarrowingReason::NoKey);
        };
        match key {
            "fs" => {
                let entry = (!value.is_empty()).then(|| parse_fs(value)).transpose()?;
                let list = self.fs.as_deref().unwrap_or_default();
                if let Some(entry) = &entry
                    && let Some(earlier) = list
                        .iter()
                        .find(|f| guest_paths_overlap(&f.guest, &entry.guest))
                {
                    return Err(NarrowingReason::FsOverlap {
                        guest: entry.guest.clone(),
                        earlier: earlier.guest.clone(),
                    });
                }
                self.fs.get_or_insert_with(Vec::new).extend(entry);
            }
            "http" => {
                let entry = (!value.is_empty()).then(|| parse_http(value)).transpose()?;
                self.http.get_or_insert_with(Vec::new).extend(entry);
            }
            Tcp::KEY => push::<Tcp>(&mut self.tcp, key, value)?,
            "secrets" => {
                let mut secrets = self.secrets.clone().unwrap_or_default();
                for item in names(value) {
                    let secret = parse_secret(item)?;
                    if secrets.iter().any(|s| s.name == secret.name) {
                        return Err(NarrowingReason::Duplicate(secret.name));
                    }
                    secrets.push(secret);
                }
                self.secrets = Some(secrets);
            }
            Env::KEY => push::<Env>(&mut self.env, key, value)?,
            key if TaskLimits::NARROWING_KEYS.contains(&key) => {
                push::<TaskLimits>(&mut self.limits, key, value)?
            }
            other => return Err(NarrowingReason::UnknownKey(other.to_owned())),
        }
        Ok(())
    }
}

/// Adds `key=value` to a capability's narrowing, which is set only once the value is
/// taken: a refused one must not leave `tcp=` (no rules) where nothing was asked.
fn push<C: Capability>(
    slot: &mut Option<C::Narrowing>,
    key: &str,
    value: &str,
) -> Result<(), NarrowingReason> {
    let mut narrowing = slot.clone().unwrap_or_default();
    C::push_narrowing(&mut narrowing, key, value)?;
    *slot = Some(narrowing);
    Ok(())
}

impl fmt::Display for Narrowing {
    /// The strings of [`Narrowing::to_args`], each quoted as Rust would debug-print it,
    /// separated by spaces; `(nothing)` for an empty narrowing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args = self.to_args();
        if args.is_empty() {
            return f.write_str("(nothing)");
        }
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{arg:?}")?;
        }
        Ok(())
    }
}

/// `""` is no names at all; otherwise comma-separated names, each non-empty (an empty one
/// is left for the name check to refuse).
pub(crate) fn names(value: &str) -> impl Iterator<Item = &str> {
    (!value.is_empty())
        .then(|| value.split(','))
        .into_iter()
        .flatten()
}

fn parse_fs(value: &str) -> Result<FsNarrowing, NarrowingReason> {
    let (guest, access) = match value.rsplit_once(':') {
        // `fs=/data/a:b:` is how a path with a `:` and no access is written.
        Some((guest, "")) => (guest, None),
        Some((guest, access)) => (
            guest,
            Some(
                access
                    .parse::<Access>()
                    .map_err(|_| NarrowingReason::Access(access.to_owned()))?,
            ),
        ),
        None => (value, None),
    };
    let guest = normalize_guest(guest).map_err(NarrowingReason::Guest)?;
    Ok(FsNarrowing { guest, access })
}

fn parse_http(value: &str) -> Result<HttpNarrowing, NarrowingReason> {
    let mut parts = value.split_whitespace();
    let (Some(url), methods, None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NarrowingReason::HttpShape);
    };
    let methods: Option<Vec<String>> = methods.map(|m| m.split(',').map(str::to_owned).collect());
    let methods_given = methods.is_some();
    let rule = HttpRule::parse(url, methods).map_err(NarrowingReason::Http)?;
    Ok(HttpNarrowing {
        rule,
        methods_given,
    })
}

fn parse_secret(item: &str) -> Result<SecretNarrowing, NarrowingReason> {
    let (name, uses) = match item.split_once(':') {
        Some((name, uses)) => (name, Some(uses)),
        None => (item, None),
    };
    if !is_secret_name(name) {
        return Err(NarrowingReason::SecretName(name.to_owned()));
    }
    let uses = uses
        .map(|uses| {
            let mut grant = SecretGrant {
                name: name.to_owned(),
                inject: false,
                hmac: false,
                reveal: false,
            };
            for flag in uses.split('+') {
                let slot = match flag {
                    "inject" => &mut grant.inject,
                    "hmac" => &mut grant.hmac,
                    "reveal" => &mut grant.reveal,
                    _ => {
                        return Err(NarrowingReason::SecretFlag {
                            name: name.to_owned(),
                            flag: flag.to_owned(),
                        });
                    }
                };
                *slot = true;
            }
            Ok(grant)
        })
        .transpose()?;
    Ok(SecretNarrowing {
        name: name.to_owned(),
        uses,
    })
}

/// A narrowing string that is not valid on its own, whatever the parent grants.
///
/// `Display`: `invalid narrowing "fs=/workspace:rw": expected "read" or "read-write"
/// after the last ":", found "rw"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid narrowing {arg:?}: {reason}")]
pub struct NarrowingError {
    /// The string as given.
    pub arg: String,
    /// What is wrong with it.
    pub reason: NarrowingReason,
}

/// What is wrong with a narrowing string; each variant carries the part at fault or says
/// what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NarrowingReason {
    /// No `=`.
    #[error("expected KEY=VALUE with KEY one of {KEYS}")]
    NoKey,
    /// A key that is not one of the capabilities or limits.
    #[error("unknown key {0:?}, expected one of {KEYS}")]
    UnknownKey(String),
    /// `fs=`: the guest path is not absolute, has `..`, is `/` or holds NUL.
    #[error("{0}")]
    Guest(GuestPathError),
    /// `fs=`: what follows the last `:` is not an access.
    #[error(
        "expected \"read\" or \"read-write\" after the last \":\", found {0:?} (a path with a \":\" is written PATH:read, PATH:read-write or PATH:)"
    )]
    Access(String),
    /// `fs=`: a guest path equal to, inside or around one given earlier.
    #[error("{guest:?} overlaps the earlier fs={earlier}: give each directory once")]
    FsOverlap {
        /// The guest path, normalized.
        guest: String,
        /// The earlier one it overlaps.
        earlier: String,
    },
    /// `http=` is not `URL [METHODS]`.
    #[error("expected URL [METHOD,...], as in \"https://api.github.com/repos/ GET,HEAD\"")]
    HttpShape,
    /// `http=`: the URL or a method is not valid in an `[[http]]` rule.
    #[error("{0}")]
    Http(RuleError),
    /// `tcp=` is not a `[[tcp]]` `connect` value.
    #[error("{0}")]
    Tcp(ConnectError),
    /// `secrets=`: not a secret name.
    #[error(
        "invalid secret name {0:?}: use lowercase letters, digits, \"_\" and \"-\", starting with a letter or digit"
    )]
    SecretName(String),
    /// `secrets=`: something other than `inject`, `hmac` or `reveal` after a name's `:`.
    #[error(
        "expected {name} or {name}:USES with USES from inject, hmac, reveal joined by +, found {flag:?}"
    )]
    SecretFlag {
        /// The secret's name.
        name: String,
        /// What followed the `:`.
        flag: String,
    },
    /// `env=`: not a variable name.
    #[error("{0}")]
    EnvName(VarNameError),
    /// A secret or variable named twice.
    #[error("{0} is named twice")]
    Duplicate(String),
    /// `memory=` or `output=` is not a size.
    #[error("{0}")]
    Size(SizeError),
    /// `timeout=` is not a duration.
    #[error("{0}")]
    Duration(DurationError),
    /// `fuel=` is not a positive whole number.
    #[error("expected a positive whole number of instructions such as 1000000, found {0:?}")]
    Fuel(String),
    /// A limit outside the bounds a manifest may give it.
    #[error("{0}")]
    OutOfRange(String),
    /// A limit given twice.
    #[error("{0} is given twice; give each limit once")]
    Repeated(String),
}

impl Capabilities {
    /// The child capability set that `narrowing` asks for, checked with
    /// [`Capabilities::covers`] against `self`.
    ///
    /// Each list the narrowing gives replaces the parent's; what it leaves out is the
    /// parent's. An `fs` entry takes its host directory from the parent grant holding its
    /// guest path (and that grant's access unless it names one); an `http` entry takes
    /// the methods of the first parent rule it is within unless it names them, and per
    /// request the smallest limits of the parent rules that could decide its requests; an
    /// `env` name takes the parent's value, or is passed from the host if the parent
    /// passes it.
    ///
    /// The error names the first capability the parent does not grant: nothing that would
    /// widen the parent is ever returned.
    ///
    /// ```
    /// use warden_host_api::grant::{Capabilities, Narrowing};
    /// use warden_host_api::fs::manifest::{Access, FsGrant};
    ///
    /// let parent = Capabilities::new(
    ///     vec![FsGrant { host: "/srv/ws".into(), guest: "/workspace".into(), access: Access::Read }],
    ///     vec![], vec![], &[], Default::default(), Default::default(),
    /// );
    /// let child = parent.narrow(&Narrowing::parse(["fs=/workspace/src"])?)?;
    /// assert_eq!(child.fs()[0].host, std::path::Path::new("/srv/ws/src"));
    ///
    /// let wider = Narrowing::parse(["fs=/workspace/src:read-write"])?;
    /// assert_eq!(
    ///     parent.narrow(&wider).unwrap_err().to_string(),
    ///     "fs[0]: /workspace/src read-write is wider than the parent's /workspace read, \
    ///      which allows only read there",
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn narrow(&self, narrowing: &Narrowing) -> Result<Capabilities, Widening> {
        let fs = match &narrowing.fs {
            None => self.fs.clone(),
            Some(entries) => entries
                .iter()
                .enumerate()
                .map(|(index, entry)| self.narrow_fs(index, entry))
                .collect::<Result<_, _>>()?,
        };
        let http = match &narrowing.http {
            None => self.http.clone(),
            Some(entries) => {
                let mut http = Vec::with_capacity(entries.len());
                for (index, entry) in entries.iter().enumerate() {
                    let grant = self.narrow_http(&http, index, entry)?;
                    http.push(grant);
                }
                http
            }
        };
        let env = match &narrowing.env {
            None => self.env.clone(),
            Some(names) => Env::narrow(&self.env, names)?,
        };
        let child = Capabilities {
            fs,
            http,
            tcp: match &narrowing.tcp {
                None => self.tcp.clone(),
                Some(n) => Tcp::narrow(&self.tcp, n)?,
            },
            secrets: match &narrowing.secrets {
                None => self.secrets.clone(),
                Some(asked) => asked.iter().map(|s| s.grant(&self.secrets)).collect(),
            },
            env,
            limits: match &narrowing.limits {
                None => self.limits,
                Some(n) => TaskLimits::narrow(&self.limits, n)?,
            },
        };
        // Built to fit, and still checked: `covers` is the one definition of "within".
        self.covers(&child)?;
        Ok(child)
    }

    fn narrow_fs(&self, index: usize, entry: &FsNarrowing) -> Result<FsGrant, Widening> {
        let found = self
            .fs
            .iter()
            .find_map(|p| Some((p, guest_below(&entry.guest, &p.guest)?)));
        let Some((parent, rel)) = found else {
            return Err(Widening::Fs {
                index,
                child: match entry.access {
                    Some(access) => format!("{} {access}", entry.guest),
                    None => entry.guest.clone(),
                },
                parent: self.fs.iter().map(fs_label).collect(),
            });
        };
        Ok(FsGrant {
            host: host_below(&parent.host, rel),
            guest: entry.guest.clone(),
            access: entry.access.unwrap_or(parent.access),
        })
    }

    /// `earlier` are the child's rules before this one, which decide their requests first.
    fn narrow_http(
        &self,
        earlier: &[HttpGrant],
        index: usize,
        entry: &HttpNarrowing,
    ) -> Result<HttpGrant, Widening> {
        let covering = self.http.iter().position(|p| {
            let rule = if entry.methods_given {
                entry.rule.clone()
            } else {
                entry
                    .rule
                    .with_methods(p.rule.methods().map(<[String]>::to_vec))
            };
            rule_within(&rule, &p.rule)
        });
        let Some(covering) = covering else {
            return Err(Widening::Http {
                index,
                child: entry.rule.to_string(),
                parent: self.http.iter().map(|p| p.rule.to_string()).collect(),
            });
        };
        let rule = if entry.methods_given {
            entry.rule.clone()
        } else {
            let methods = self.http[covering].rule.methods().map(<[String]>::to_vec);
            entry.rule.with_methods(methods)
        };
        let limits = min_limits(
            deciding_rules(&self.http, earlier, &rule, covering).map(|k| self.http[k].limits),
        )
        .unwrap_or(self.http[covering].limits);
        Ok(HttpGrant { rule, limits })
    }
}
