//! `warden grant issue|attenuate` and `warden run --grant`: grant tokens
//! made from, and checked against, the grant model.
//!
//! A token's blocks carry the grant model's JSON as opaque capabilities;
//! here they are decoded (which re-validates them as strictly as a
//! manifest) and every link is checked with [`Capabilities::covers`].

use crate::{Failure, usage};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use warden::TaskGrant;
use warden::manifest::{Digest, Manifest};
use warden::token::{self, GrantRecord, IssuerKey, IssuerPublicKey, ToolId};
use warden_host_api::grant::{Capabilities, Grant, Narrowing};
use warden_host_api::limits::manifest::parse_duration;

fn caps(v: &Value) -> Result<Capabilities, String> {
    serde_json::from_value(v.clone()).map_err(|e| format!("capabilities do not decode: {e}"))
}

fn ttl(text: &str) -> Result<Duration, Failure> {
    parse_duration(text).map_err(|e| usage(format!("--ttl {text:?}: {e}")))
}

fn record(grant: &Grant, depth: u32) -> Result<GrantRecord, Failure> {
    Ok(GrantRecord {
        id: grant.id().to_owned(),
        parent: grant.parent().map(str::to_owned),
        depth,
        expires: grant.expires(),
        agent: grant.agent().map(str::to_owned),
        caps: serde_json::to_value(grant.caps()).map_err(usage)?,
        tool: None,
    })
}

/// The tool of `m` as a token names it: its name and its component's digest.
fn tool_id(m: &Manifest) -> Result<ToolId, Failure> {
    let bytes = m.tool.component.bytes(None).map_err(|e| {
        usage(format!(
            "{}: tool.component: {e}; a grant token names the component it is for",
            m.path.display(),
        ))
    })?;
    let digest = Digest::of(&bytes);
    m.verify_digest_is(digest).map_err(usage)?;
    Ok(ToolId {
        name: m.tool.name.clone(),
        component: digest.to_string(),
    })
}

/// A root grant for the tool of `m`, narrowed, as a signed token.
pub(crate) fn issue(
    m: &Manifest,
    ttl_text: &str,
    narrow: &[String],
    agent: Option<String>,
    grant_key: Option<PathBuf>,
) -> Result<(String, String), Failure> {
    let narrowing = Narrowing::parse(narrow).map_err(usage)?;
    let caps = m.ceiling().narrow(&narrowing).map_err(usage)?;
    let grant = Grant::root(caps, ttl(ttl_text)?, agent);
    let path = match grant_key {
        Some(path) => path,
        None => crate::host::default_key_file(warden::audit::default_grant_key_path())?,
    };
    let key = IssuerKey::load_or_create(&path).map_err(usage)?;
    let mut root = record(&grant, 0)?;
    let tool = tool_id(m)?;
    let about = format!(
        "{} for tool {} ({})",
        about(&grant, grant.id()),
        tool.name,
        tool.component
    );
    root.tool = Some(tool);
    let token = token::issue(&key, &root).map_err(usage)?;
    Ok((token, about))
}

/// One line for the terminal: which grant, until when.
fn about(grant: &Grant, id: &str) -> String {
    format!(
        "grant {} (depth {}{}), expires {}",
        id,
        grant.depth(),
        grant
            .parent()
            .map(|p| format!(", child of {p}"))
            .unwrap_or_default(),
        warden::audit::rfc3339(grant.expires())
    )
}

/// A narrower child of `token`, made by its holder without the key.
pub(crate) fn attenuate(
    token: &str,
    ttl_text: Option<&str>,
    narrow: &[String],
    agent: Option<String>,
) -> Result<(String, String), Failure> {
    let records = token::unverified_records(token).map_err(usage)?;
    let last = records
        .last()
        .ok_or_else(|| usage("the token holds no grant"))?;
    // The parent as the grant model knows it, so that `attenuate` applies
    // every rule (subset, expiry no later than the parent's).
    let now = SystemTime::now();
    let parent: Grant = serde_json::from_value(serde_json::json!({
        "v": 1,
        "id": last.id,
        "parent": last.parent,
        "agent": last.agent,
        "issued": warden::audit::rfc3339(now.min(last.expires)),
        "expires": warden::audit::rfc3339(last.expires),
        "depth": last.depth,
        "caps": last.caps,
    }))
    .map_err(|e| usage(format!("the token's last grant does not decode: {e}")))?;
    let narrowing = Narrowing::parse(narrow).map_err(usage)?;
    let ttl = ttl_text.map(ttl).transpose()?;
    let child = parent
        .attenuate(&narrowing, ttl, agent.or_else(|| last.agent.clone()))
        .map_err(usage)?;
    let child_token = token::attenuate(token, &record(&child, last.depth + 1)?).map_err(usage)?;
    // The child's id is the one its block's signature gives it, not the model's.
    let id = token::unverified_records(&child_token)
        .map_err(usage)?
        .pop()
        .map(|r| r.id)
        .unwrap_or_default();
    Ok((child_token, about(&child, &id)))
}

/// Checks `token` for a run of `tool`: signed by `issuer` (this host's issuer
/// key when `None`), issued for this tool and component, unexpired, every
/// attenuation within its parent, and the root within the manifest.
pub(crate) fn verify(
    token: &str,
    issuer: Option<&str>,
    tool: &warden::Tool,
) -> Result<TaskGrant, Failure> {
    let m = tool.manifest();
    let issuer = match issuer {
        Some(text) => IssuerPublicKey::parse(text).map_err(usage)?,
        None => {
            let path = crate::host::default_key_file(warden::audit::default_grant_key_path())?;
            let key = IssuerKey::load_or_create(&path).map_err(usage)?;
            *key.public()
        }
    };
    let covers = |parent: &Value, child: &Value| -> Result<(), String> {
        caps(parent)?
            .covers(&caps(child)?)
            .map_err(|w| w.to_string())
    };
    let records = token::verify(token, &issuer, SystemTime::now(), covers)
        .map_err(|e| usage(format!("grant token refused: {e}")))?;
    let (Some(root), Some(leaf)) = (records.first(), records.last()) else {
        return Err(usage("grant token refused: it holds no grant"));
    };
    match &root.tool {
        Some(t) if t.name == m.tool.name && t.component == tool.digest() => {}
        Some(t) => {
            return Err(usage(format!(
                "grant token refused: it was issued for tool {} ({}), not {} ({}); ask its \
                 issuer for a grant for this tool",
                t.name,
                t.component,
                m.tool.name,
                tool.digest()
            )));
        }
        None => {
            return Err(usage(
                "grant token refused: it names no tool; tokens are issued for one tool and \
                 component (warden grant issue MANIFEST)",
            ));
        }
    }
    m.ceiling()
        .covers(&caps(&root.caps).map_err(usage)?)
        .map_err(|w| {
            usage(format!(
                "grant token refused: it grants more than {} allows: {w}",
                m.path.display()
            ))
        })?;
    let mut grant = token::task_grant(&records);
    grant.caps = Some(caps(&leaf.caps).map_err(usage)?);
    Ok(grant)
}
