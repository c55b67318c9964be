//! The JSON form of [`Capabilities`] and [`Grant`], and the checks that make a decoded one
//! as trustworthy as a parsed manifest.
//!
//! The form is the interface between processes (and, signed, between hosts), so it is
//! spelled out rather than derived from the in-memory types: every field is written, in a
//! fixed order, with the manifest's spellings (`read-write`, `"30s"`, rule URLs as
//! written) and sizes in bytes. Reading refuses unknown fields, and every value goes
//! through the same parser or check as its manifest key.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de, ser};

use super::caps::SecretGrant;
use super::issue::is_id;
use super::{Capabilities, Grant, time};
use crate::capability::Capability;
use crate::env::{Env, EnvWire};
use crate::fs::manifest::{Access, FsGrant, guest_paths_overlap, normalize_guest};
use crate::http::HttpRule;
use crate::http::manifest::{HttpGrant, RequestLimits};
use crate::limits::manifest::{format_duration, parse_duration};
use crate::limits::{LimitsWire, TaskLimits};
use crate::secrets::manifest::is_secret_name;
use crate::sockets::Tcp;

/// The version of the grant form this code writes and reads.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CapabilitiesWire {
    fs: Vec<FsWire>,
    http: Vec<HttpWire>,
    tcp: Vec<String>,
    secrets: Vec<SecretWire>,
    env: EnvWire,
    limits: LimitsWire,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FsWire {
    guest: String,
    host: String,
    access: Access,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpWire {
    url: String,
    /// `null`: every method, as a manifest rule without `methods`.
    methods: Option<Vec<String>>,
    timeout: String,
    request_body: u64,
    response_body: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretWire {
    name: String,
    inject: bool,
    hmac: bool,
    reveal: bool,
}

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

/// A decoded value that fails a check: `fs[0].guest: "/a/.." must not contain ".."`.
fn invalid<E: de::Error>(field: impl std::fmt::Display, reason: impl std::fmt::Display) -> E {
    E::custom(format_args!("{field}: {reason}"))
}

impl Serialize for Capabilities {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fs = self
            .fs
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let host = g.host.to_str().ok_or_else(|| {
                    ser::Error::custom(format_args!(
                        "fs[{i}].host {:?} is not UTF-8, which the JSON form cannot carry",
                        g.host
                    ))
                })?;
                Ok(FsWire {
                    guest: g.guest.clone(),
                    host: host.to_owned(),
                    access: g.access,
                })
            })
            .collect::<Result<_, S::Error>>()?;
        CapabilitiesWire {
            fs,
            http: self
                .http
                .iter()
                .map(|g| HttpWire {
                    url: g.rule.url().to_owned(),
                    methods: g.rule.methods().map(<[String]>::to_vec),
                    timeout: format_duration(g.limits.timeout),
                    request_body: g.limits.request_body,
                    response_body: g.limits.response_body,
                })
                .collect(),
            tcp: Tcp::to_wire(&self.tcp),
            secrets: self
                .secrets
                .iter()
                .map(|s| SecretWire {
                    name: s.name.clone(),
                    inject: s.inject,
                    hmac: s.hmac,
                    reveal: s.reveal,
                })
                .collect(),
            env: Env::to_wire(&self.env),
            limits: TaskLimits::to_wire(&self.limits),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Capabilities {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = CapabilitiesWire::deserialize(deserializer)?;
        Ok(Capabilities {
            fs: decode_fs(wire.fs)?,
            http: decode_http(wire.http)?,
            tcp: Tcp::from_wire(wire.tcp).map_err(de::Error::custom)?,
            secrets: decode_secrets(wire.secrets)?,
            env: Env::from_wire(wire.env).map_err(de::Error::custom)?,
            limits: TaskLimits::from_wire(wire.limits).map_err(de::Error::custom)?,
        })
    }
}

fn decode_fs<E: de::Error>(wire: Vec<FsWire>) -> Result<Vec<FsGrant>, E> {
    let mut grants: Vec<FsGrant> = Vec::with_capacity(wire.len());
    for (i, entry) in wire.into_iter().enumerate() {
        let guest =
            normalize_guest(&entry.guest).map_err(|e| invalid(format!("fs[{i}].guest"), e))?;
        if guest != entry.guest {
            return Err(invalid(
                format!("fs[{i}].guest"),
                format_args!(
                    "{:?} is not in normal form, expected {guest:?}",
                    entry.guest
                ),
            ));
        }
        if let Some((j, other)) = grants
            .iter()
            .enumerate()
            .find(|(_, g)| guest_paths_overlap(&g.guest, &guest))
        {
            return Err(invalid(
                format!("fs[{i}].guest"),
                format_args!("{guest:?} overlaps fs[{j}].guest {:?}", other.guest),
            ));
        }
        let host = PathBuf::from(&entry.host);
        if !is_normal_absolute(&host, &entry.host) {
            return Err(invalid(
                format!("fs[{i}].host"),
                format_args!(
                    "{:?} is not an absolute path in normal form (no \".\", \"..\", empty or trailing components)",
                    entry.host
                ),
            ));
        }
        grants.push(FsGrant {
            host,
            guest,
            access: entry.access,
        });
    }
    Ok(grants)
}

/// Whether `path` (written `text`) is absolute with only plain names after the root, and
/// written the one way its components rebuild: a canonical directory as a manifest grant
/// holds it, or a sub-directory of one by name.
fn is_normal_absolute(path: &Path, text: &str) -> bool {
    let mut components = path.components();
    components.next() == Some(Component::RootDir)
        && components.all(|c| matches!(c, Component::Normal(_)))
        && path.components().collect::<PathBuf>().as_os_str() == text
}

fn decode_http<E: de::Error>(wire: Vec<HttpWire>) -> Result<Vec<HttpGrant>, E> {
    wire.into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let rule = HttpRule::parse(&entry.url, entry.methods)
                .map_err(|e| invalid(format!("http[{i}]"), e))?;
            let timeout = parse_duration(&entry.timeout)
                .map_err(|e| invalid(format!("http[{i}].timeout"), e))?;
            if timeout.is_zero() {
                return Err(invalid(
                    format!("http[{i}].timeout"),
                    "must be greater than zero",
                ));
            }
            Ok(HttpGrant {
                rule,
                limits: RequestLimits {
                    timeout,
                    request_body: entry.request_body,
                    response_body: entry.response_body,
                },
            })
        })
        .collect()
}

fn decode_secrets<E: de::Error>(wire: Vec<SecretWire>) -> Result<Vec<SecretGrant>, E> {
    let mut secrets: Vec<SecretGrant> = Vec::with_capacity(wire.len());
    for (i, entry) in wire.into_iter().enumerate() {
        if !is_secret_name(&entry.name) {
            return Err(invalid(
                format!("secrets[{i}].name"),
                format_args!("{:?} is not a secret name", entry.name),
            ));
        }
        if let Some(j) = secrets.iter().position(|s| s.name == entry.name) {
            return Err(invalid(
                format!("secrets[{i}].name"),
                format_args!("{:?} is already given in secrets[{j}]", entry.name),
            ));
        }
        secrets.push(SecretGrant {
            name: entry.name,
            inject: entry.inject,
            hmac: entry.hmac,
            reveal: entry.reveal,
        });
    }
    Ok(secrets)
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
