//! The JSON form of [`Capabilities`] and [`Grant`], and the checks that make a decoded one
//! as trustworthy as a parsed manifest.
//!
//! The form is the interface between processes (and, signed, between hosts), so it is
//! spelled out rather than derived from the in-memory types: every field is written, in a
//! fixed order, with the manifest's spellings (`read-write`, `"30s"`, rule URLs as
//! written) and sizes in bytes. Reading refuses unknown fields, and every value goes
//! through the same parser or check as its manifest key.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de, ser};

use super::issue::is_id;
use super::{Capabilities, Grant, time};
use crate::capability::Capability;

/// The version of the grant form this code writes and reads.
const VERSION: u32 = 1;

macro_rules! wire {
    ($($key:ident: $cap:ty,)*) => {
        #[derive(Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct CapabilitiesWire {
            $($key: <$cap as Capability>::Wire,)*
        }

        impl Serialize for Capabilities {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                CapabilitiesWire {
                    $($key: <$cap>::to_wire(&self.$key).map_err(ser::Error::custom)?,)*
                }
                .serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for Capabilities {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let wire = CapabilitiesWire::deserialize(deserializer)?;
                Ok(Capabilities {
                    $($key: <$cap>::from_wire(wire.$key).map_err(de::Error::custom)?,)*
                })
            }
        }
    };
}

crate::for_each_capability!(wire);

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantWire {
    v: u32,
    id: String,
    parent: Option<String>,
    agent: Option<String>,
    issued: String,
    expires: String,
    depth: u32,
    caps: Capabilities,
}

/// A decoded value that fails a check: `depth: 0 for a grant with a parent, ...`.
fn invalid<E: de::Error>(field: impl std::fmt::Display, reason: impl std::fmt::Display) -> E {
    E::custom(format_args!("{field}: {reason}"))
}

impl Serialize for Grant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let when = |field: &str, t| {
            time::format(t).ok_or_else(|| {
                ser::Error::custom(format_args!(
                    "{field} {t:?} is outside 1970 to 9999, which the JSON form cannot carry"
                ))
            })
        };
        GrantWire {
            v: VERSION,
            id: self.id.clone(),
            parent: self.parent.clone(),
            agent: self.agent.clone(),
            issued: when("issued", self.issued)?,
            expires: when("expires", self.expires)?,
            depth: self.depth,
            caps: self.caps.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Grant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = GrantWire::deserialize(deserializer)?;
        if wire.v != VERSION {
            return Err(invalid(
                "v",
                format_args!(
                    "version {} is not one this warden reads, expected {VERSION}",
                    wire.v
                ),
            ));
        }
        if !is_id(&wire.id) {
            return Err(invalid(
                "id",
                format_args!("{:?} is not a grant id (32 lowercase hex digits)", wire.id),
            ));
        }
        match (&wire.parent, wire.depth) {
            (Some(parent), _) if !is_id(parent) => {
                return Err(invalid(
                    "parent",
                    format_args!("{parent:?} is not a grant id (32 lowercase hex digits)"),
                ));
            }
            (None, 0) => {}
            (Some(_), 1..) => {}
            (None, depth) => {
                return Err(invalid(
                    "depth",
                    format_args!("{depth} for a grant without a parent, expected 0"),
                ));
            }
            (Some(_), 0) => {
                return Err(invalid(
                    "depth",
                    "0 for a grant with a parent, expected 1 or more",
                ));
            }
        }
        let when = |field: &str, text: &str| {
            time::parse(text).ok_or_else(|| {
                invalid::<D::Error>(
                    field,
                    format_args!(
                        "{text:?} is not an RFC 3339 UTC time such as \"2026-11-25T19:47:18.000000005Z\""
                    ),
                )
            })
        };
        let issued = when("issued", &wire.issued)?;
        let expires = when("expires", &wire.expires)?;
        if expires < issued {
            return Err(invalid(
                "expires",
                format_args!("{} is before issued {}", wire.expires, wire.issued),
            ));
        }
        Ok(Grant {
            id: wire.id,
            parent: wire.parent,
            agent: wire.agent,
            issued,
            expires,
            depth: wire.depth,
            caps: wire.caps,
        })
    }
}
