//! [`Narrowing`]: what a caller asks for when deriving a child grant, written as
//! `KEY=VALUE` strings, and [`Capabilities::narrow`], which builds the child from it.

use std::fmt;

use super::{Capabilities, Widening};
use crate::capability::Capability;

macro_rules! narrowing {
    ($($key:ident: $cap:ty,)*) => {
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
            $($key: Option<<$cap as Capability>::Narrowing>,)*
        }

        impl Narrowing {
            /// The narrowing as `KEY=VALUE` strings in a canonical form that
            /// [`Narrowing::parse`] reads back as an equal narrowing: keys in the order of
            /// the table above, each list entry on its own, sizes and durations as a
            /// manifest writes them.
            pub fn to_args(&self) -> Vec<String> {
                let mut args = Vec::new();
                $(args.extend(self.$key.iter().flat_map(<$cap>::narrowing_args));)*
                args
            }

            /// Hands `key=value` to the capability whose key it is; that capability's
            /// narrowing is set only once the value is taken, so that a refused string
            /// leaves the narrowing as it was (an emptied list would grant less than the
            /// caller meant).
            fn push_inner(&mut self, arg: &str) -> Result<(), NarrowingReason> {
                let Some((key, value)) = arg.split_once('=') else {
                    return Err(NarrowingReason::NoKey);
                };
                $(
                    if <$cap>::NARROWING_KEYS.contains(&key) {
                        let mut narrowing = self.$key.clone().unwrap_or_default();
                        <$cap>::push_narrowing(&mut narrowing, key, value)?;
                        self.$key = Some(narrowing);
                        return Ok(());
                    }
                )*
                Err(NarrowingReason::UnknownKey(key.to_owned()))
            }
        }

        /// The keys a narrowing may have, in the order [`Narrowing::to_args`] writes them.
        fn keys() -> String {
            [$(<$cap>::NARROWING_KEYS),*].concat().join(", ")
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
        /// use warden_host_api::fs::{Fs, manifest::{Access, FsGrant}};
        ///
        /// let parent = Capabilities::default().with::<Fs>(vec![FsGrant {
        ///     host: "/srv/ws".into(),
        ///     guest: "/workspace".into(),
        ///     access: Access::Read,
        /// }]);
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
                let child = Capabilities {
                    $($key: match &narrowing.$key {
                        None => self.$key.clone(),
                        Some(n) => <$cap>::narrow(&self.$key, n)?,
                    },)*
                };
                // Built to fit, and still checked: `covers` is the one definition of "within".
                self.covers(&child)?;
                Ok(child)
            }
        }
    };
}

crate::for_each_capability!(narrowing);

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
    #[error("expected KEY=VALUE with KEY one of {}", keys())]
    NoKey,
    /// A key that is not one of the capabilities or limits.
    #[error("unknown key {key:?}, expected one of {}", keys(), key = .0)]
    UnknownKey(String),
    /// A value its capability does not take, whatever the parent grants: a guest path
    /// with `..`, a URL that is not a rule, a name that is not a secret's, ... The text
    /// says what would be valid.
    #[error("{0}")]
    Invalid(String),
    /// A secret or variable named twice.
    #[error("{0} is named twice")]
    Duplicate(String),
    /// A limit outside the bounds a manifest may give it.
    #[error("{0}")]
    OutOfRange(String),
    /// A limit given twice.
    #[error("{0} is given twice; give each limit once")]
    Repeated(String),
}

impl NarrowingReason {
    /// A value its capability does not take, because of `reason`.
    pub fn invalid(reason: impl fmt::Display) -> NarrowingReason {
        NarrowingReason::Invalid(reason.to_string())
    }
}
