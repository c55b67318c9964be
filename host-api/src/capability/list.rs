//! The fixed list of capabilities, and what is built from it: where each sits in a
//! [`Capabilities`] set, and a manifest's sections as written ([`Sections`]) and as
//! declared ([`Declared`]).

use super::{Capability, FieldError, ResolveCx};
use crate::grant::Capabilities;
use std::fmt;
use std::ops::Range;

/// Calls the macro `$then` with every capability as `key: Type,`, in the one order that
/// everything looping over them follows: a grant's JSON form, a narrowing's canonical
/// strings, `warden check`, the `task.start` record.
///
/// A new capability is a module implementing [`Capability`] and a line here.
#[macro_export]
macro_rules! for_each_capability {
    ($then:ident) => {
        $then! {
            fs: $crate::fs::Fs,
            http: $crate::http::Http,
            tcp: $crate::sockets::Tcp,
            secrets: $crate::secrets::Secrets,
            env: $crate::env::Env,
            limits: $crate::limits::TaskLimits,
        }
    };
}

/// Where a capability's grant sits in a [`Capabilities`] set; implemented for each
/// capability by the list.
pub trait Held: Capability {
    /// What `caps` holds of it.
    fn held(caps: &Capabilities) -> &Self::Grant;
    /// The same, to replace.
    fn held_mut(caps: &mut Capabilities) -> &mut Self::Grant;
}

/// A manifest section that does not resolve: the field, where it is, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SectionError {
    /// The dotted field, e.g. `tcp[1].connect`.
    pub field: String,
    /// The byte range of the offending value in the manifest source.
    pub span: Range<usize>,
    /// What is wrong, without the field.
    pub message: String,
}

impl SectionError {
    fn of(e: impl FieldError) -> SectionError {
        SectionError {
            field: e.field(),
            span: e.span(),
            message: e.to_string(),
        }
    }
}

macro_rules! sections {
    ($($key:ident: $cap:ty,)*) => {
        $(
            impl Held for $cap {
                fn held(caps: &Capabilities) -> &Self::Grant {
                    &caps.$key
                }

                fn held_mut(caps: &mut Capabilities) -> &mut Self::Grant {
                    &mut caps.$key
                }
            }
        )*

        /// Every capability's manifest section as written, each empty when the manifest
        /// leaves it out. A manifest reader deserializes them as top-level keys named by
        /// each capability's [`Capability::KEY`].
        #[derive(Default)]
        #[allow(missing_docs)]
        pub struct Sections {
            $(pub $key: <$cap as Capability>::Section,)*
        }

        impl Sections {
            /// Every section resolved, in the list's order; the first that does not
            /// resolve is the error.
            pub fn resolve(&self, cx: &ResolveCx<'_>) -> Result<Declared, SectionError> {
                Ok(Declared {
                    $($key: <$cap>::resolve(&self.$key, cx).map_err(SectionError::of)?,)*
                })
            }
        }

        /// What a manifest declares of every capability: the ceiling of every grant for
        /// its tool, with what only the manifest knows.
        #[derive(Debug, Clone)]
        #[allow(missing_docs)]
        pub struct Declared {
            $(pub $key: <$cap as Capability>::Declared,)*
        }

        impl Declared {
            /// Everything the manifest grants, as the capability set of a task that holds
            /// no narrower grant.
            pub fn ceiling(&self) -> Capabilities {
                Capabilities {
                    $($key: <$cap>::ceiling(&self.$key),)*
                }
            }

            /// What `warden check` prints of every capability.
            pub fn describe(&self, out: &mut dyn fmt::Write) -> fmt::Result {
                $(<$cap>::describe(&self.$key, out)?;)*
                Ok(())
            }

            /// What is denied beyond what is declared, capability by capability.
            pub fn denied(&self) -> Vec<&'static str> {
                let mut denied = Vec::new();
                $(denied.extend(<$cap>::denied(&self.$key));)*
                denied
            }

            /// What the `task.start` record says a task under `caps` holds, by key.
            pub fn summary(&self, caps: &Capabilities) -> serde_json::Map<String, serde_json::Value> {
                let mut summary = serde_json::Map::new();
                $(
                    if let Some(value) = <$cap>::summary(&self.$key, &caps.$key) {
                        summary.insert(<$cap>::KEY.to_owned(), value);
                    }
                )*
                summary
            }

            /// Why the component's `import` (without its version) would get nothing
            /// under this manifest, if a capability says so.
            pub fn ungranted(&self, import: &str) -> Option<String> {
                None$(.or_else(|| <$cap>::ungranted(&self.$key, import)))*
            }
        }
    };
}

crate::for_each_capability!(sections);
