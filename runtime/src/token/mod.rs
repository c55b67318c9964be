//! Portable grant tokens: a grant, and the chain of grants it was narrowed
//! from, as one signed text that any host verifies offline with the
//! issuer's public key, and that its holder narrows further without any key.
//!
//! # Format
//! A token is a [biscuit](https://www.biscuitsec.org) (Ed25519) in base64url.
//! Each block holds exactly one [`GrantRecord`]: block 0, the authority block
//! signed by the [`IssuerKey`], is the issued grant; block `n` is the `n`th
//! attenuation. A block reads:
//!
//! ```text
//! grant(depth, id, parent, expires, agent);   // parent, agent: null if none; id: null
//!                                             // past block 0 (derived, see below)
//! caps(depth, "<the grant model's JSON>");
//! check if time($now), $now < expires;
//! tool(name, component);                      // block 0 only: the tool it is for
//! ```
//!
//! The issuer names the issued grant. An attenuation names no id: its id is
//! [`derived_id`] of its block's signature, which its holder cannot choose, so a
//! holder cannot pass its grant off as another's (in the audit log, or to have
//! another revoked with it).
//!
//! The check makes a biscuit verifier that knows nothing of Warden refuse an
//! expired token too; the capabilities are opaque to biscuit.
//!
//! # Who does what
//! - **Issue** ([`issue`]): whoever holds the issuer key (`grant.key` under
//!   the state directory).
//! - **Attenuate** ([`attenuate`]): any holder of the token, with no key.
//!   Biscuit signs the new block with a fresh key pair whose secret travels
//!   in the token, so a block can be added but none changed or removed.
//! - **Verify** ([`verify`]): anyone with the issuer's public key (`warden
//!   grant key` prints it).
//!
//! # What verification checks
//! 1. The signature chain, against the issuer's public key; a token issued
//!    under another key is named as such, not as a forgery.
//! 2. Every block holds one record and nothing that could add to it (no
//!    datalog rules, no third-party blocks); attenuators may add checks,
//!    which can only refuse.
//! 3. The links: block `n` holds depth `n`, its parent is block `n-1`'s id,
//!    no id repeats, no attenuation writes its own id or a tool, and no grant
//!    outlives its parent.
//! 4. Every child's capabilities are covered by its parent's, by the
//!    `covers` check the caller passes: the grant model's own subset check.
//!    Biscuit datalog could not express "a sub-path, a narrower URL rule"
//!    without a second implementation of narrowing to keep in step.
//! 5. No grant of the chain has expired, and every check in the token holds
//!    at `now`.
//!
//! Revocation is not a property of the token: the ids of the verified chain
//! go to the runtime's revocation list ([`task_grant`]), which ends the
//! task when any of them is revoked.
//!
//! ```
//! use serde_json::{Value, json};
//! use std::time::{Duration, SystemTime};
//! use warden::token::{self, GrantRecord, IssuerKey};
//!
//! // The grant model's subset check; here: lists of strings.
//! fn covers(parent: &Value, child: &Value) -> Result<(), String> {
//!     let parent = parent.as_array().unwrap();
//!     match child.as_array().unwrap().iter().find(|c| !parent.contains(c)) {
//!         Some(c) => Err(format!("{c} is not granted to the parent")),
//!         None => Ok(()),
//!     }
//! }
//!
//! let key = IssuerKey::generate();
//! let now = SystemTime::now();
//! let root = GrantRecord {
//!     id: "g1".into(),
//!     parent: None,
//!     depth: 0,
//!     expires: now + Duration::from_secs(300),
//!     agent: Some("planner".into()),
//!     caps: json!(["read", "write"]),
//!     tool: None,
//! };
//! let issued = token::issue(&key, &root)?;
//!
//! // The holder narrows it for a sub-agent, without the key.
//! let child = GrantRecord {
//!     id: String::new(), // assigned from the block's signature
//!     parent: Some("g1".into()),
//!     depth: 1,
//!     expires: now + Duration::from_secs(60),
//!     agent: Some("coder".into()),
//!     caps: json!(["read"]),
//!     tool: None,
//! };
//! let narrowed = token::attenuate(&issued, &child)?;
//!
//! let chain = token::verify(&narrowed, key.public(), now, covers)?;
//! assert_eq!(chain.len(), 2);
//! let child_id = &chain[1].id;
//! assert_eq!(child_id.len(), 32);
//! assert_eq!(token::task_grant(&chain).chain, ["g1", child_id.as_str()]);
//! # Ok::<(), token::TokenError>(())
//! ```

mod key;
mod record;

pub use key::{IssuerKey, IssuerPublicKey};
pub use record::{GrantRecord, ToolId, derived_id};

use crate::TaskGrant;
use base64::Engine as _;
use biscuit_auth::builder::{Term, fact};
use biscuit_auth::builder_ext::AuthorizerExt as _;
use biscuit_auth::error::{FailedCheck, Format, Logic, Signature, Token as BiscuitError};
use biscuit_auth::{AuthorizerBuilder, AuthorizerLimits, Biscuit, UnverifiedBiscuit};
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Why a token was refused, or could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The text is not base64url.
    #[error("grant token is not base64url text ({0}): pass the token exactly as it was printed")]
    NotBase64(String),
    /// Not a grant token: not a biscuit, or a block that does not hold
    /// exactly one grant record.
    #[error("malformed grant token: {0}")]
    Malformed(String),
    /// Issued under another issuer key than the one it is verified with.
    #[error(
        "grant token names issuer key id {token}, but was verified with key id {expected}: verify it with its issuer's \
         public key (`warden grant key` on the issuing host)"
    )]
    ForeignIssuer {
        /// The key id the token names (biscuit's root key id).
        token: String,
        /// The key id and public key it was verified with.
        expected: String,
    },
    /// The signatures do not verify: the token was altered or forged.
    #[error(
        "grant token signature does not verify against issuer key id {key}: it was altered or forged; \
         ask its issuer for a new one"
    )]
    BadSignature {
        /// The key id and public key it was verified with.
        key: String,
    },
    /// A grant of the chain has expired.
    #[error("grant {id} expired at {}: ask its issuer for a new grant", seconds(*.at))]
    Expired {
        /// The grant, the first of the chain that expired.
        id: String,
        /// When it expired.
        at: SystemTime,
    },
    /// An attenuation allows something its parent does not: the token was
    /// widened after it was issued.
    #[error("grant {id} is wider than its parent {parent}: {why}; an attenuation can only narrow")]
    Widened {
        /// The wider grant.
        id: String,
        /// Its parent.
        parent: String,
        /// What it adds: the `covers` check's message, or its expiry.
        why: String,
    },
    /// A block's record does not continue the chain before it.
    #[error("grant token chain is broken at block {block}: {why}")]
    BrokenChain {
        /// The block (0 is the issued grant).
        block: usize,
        /// What does not fit.
        why: String,
    },
    /// A check an attenuator added to the token does not hold.
    #[error("grant token refused by a check in block {block}: {check}")]
    Refused {
        /// The block holding the check.
        block: u32,
        /// The check, as datalog.
        check: String,
    },
    /// A record cannot be written into a token.
    #[error("cannot make a grant token: {0}")]
    Build(String),
    /// An issuer public key given as text is not one.
    #[error("not an issuer public key (expected ed25519/<hex>, as `warden grant key` prints): {0}")]
    PublicKey(String),
    /// The issuer key file cannot be used.
    #[error("grant key {}: {why}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// Issues `record` as a new token signed by `key`. The record is the root of
/// its chain: depth 0, no parent.
pub fn issue(key: &IssuerKey, record: &GrantRecord) -> Result<String, TokenError> {
    if record.depth != 0 || record.parent.is_some() {
        return Err(TokenError::Build(format!(
            "grant {} has depth {} and parent {:?}; an issued grant is a root: depth 0, no parent \
             (a child grant is made with attenuate)",
            record.id, record.depth, record.parent
        )));
    }
    Biscuit::builder()
        .merge(record.block()?)
        .root_key_id(key.public().id())
        .build(key.pair())
        .and_then(|token| token.to_base64())
        .map_err(|e| TokenError::Build(describe(&e)))
}

/// Appends `record` to `token` as a narrower child of its last grant, with
/// no key: what a holder does to hand a sub-agent less than it holds. The
/// record's `id` and `tool` are not written: the child's id is derived from the
/// new block's signature (read it back with [`unverified_records`]), and its
/// tool is the root's.
///
/// The record must continue the chain (parent = the last grant's id, depth
/// one more, expiry no later). Whether its capabilities are narrower is the
/// grant model's to check before, and [`verify`]'s after: a widening
/// attenuation is refused there, whoever made it. The token is not
/// verified here; the holder may not have the issuer's public key.
pub fn attenuate(token: &str, record: &GrantRecord) -> Result<String, TokenError> {
    let bytes = decode(token)?;
    let unverified = UnverifiedBiscuit::from(&bytes).map_err(|e| malformed(&e))?;
    let chain = record::read(&bytes)?;
    let last = chain
        .last()
        .ok_or_else(|| TokenError::Malformed("no blocks".into()))?;
    link(chain.len(), last, record)?;
    let block = record.block()?;
    unverified
        .append(block)
        .and_then(|token| token.to_base64())
        .map_err(|e| match e {
            BiscuitError::AppendOnSealed => {
                TokenError::Build("the token is sealed: no block can be added to it".into())
            }
            e => TokenError::Build(describe(&e)),
        })
}

/// The records of `token`, root first, **unverified**: for a holder that
/// builds an attenuation from the last one. Never a basis for letting a
/// task run; that is [`verify`].
pub fn unverified_records(token: &str) -> Result<Vec<GrantRecord>, TokenError> {
    let bytes = decode(token)?;
    UnverifiedBiscuit::from(&bytes).map_err(|e| malformed(&e))?;
    record::read(&bytes)
}

/// Verifies `token` against the issuer's public key at time `now`, and
/// returns its chain of grants, root first: the last is the grant its
/// holder may use.
///
/// `covers(parent_caps, child_caps)` is the grant model's subset check,
/// called for every link; its error says what the child adds. See the
/// [module docs](self) for every step.
pub fn verify(
    token: &str,
    issuer: &IssuerPublicKey,
    now: SystemTime,
    covers: impl Fn(&Value, &Value) -> Result<(), String>,
) -> Result<Vec<GrantRecord>, TokenError> {
    let bytes = decode(token)?;
    let unverified = UnverifiedBiscuit::from(&bytes).map_err(|e| malformed(&e))?;
    let ours = format!("{:08x} ({issuer})", issuer.id());
    // The root key id is only a hint (it is not signed), but it tells a
    // token of another issuer from an altered one.
    if let Some(id) = unverified.root_key_id()
        && id != issuer.id()
    {
        return Err(TokenError::ForeignIssuer {
            token: format!("{id:08x}"),
            expected: ours,
        });
    }
    let biscuit = unverified.verify(issuer.biscuit()).map_err(|e| match e {
        Format::Signature(_) | Format::SealedSignature => {
            TokenError::BadSignature { key: ours.clone() }
        }
        e => malformed(&BiscuitError::Format(e)),
    })?;

    let chain = record::read(&bytes)?;
    check_chain(&chain, &covers)?;
    if let Some(expired) = chain.iter().find(|r| now >= r.expires) {
        return Err(TokenError::Expired {
            id: expired.id.clone(),
            at: expired.expires,
        });
    }
    authorize(&biscuit, now)?;
    Ok(chain)
}

/// The [`TaskGrant`] of a verified chain: every id, for revocation, and the
/// last grant's expiry.
pub fn task_grant(chain: &[GrantRecord]) -> TaskGrant {
    TaskGrant {
        chain: chain.iter().map(|r| r.id.clone()).collect(),
        expires: chain.last().map(|r| r.expires),
        // The records' capabilities are the caller's to decode: this module
        // treats them as opaque.
        caps: None,
    }
}

fn check_chain(
    chain: &[GrantRecord],
    covers: &impl Fn(&Value, &Value) -> Result<(), String>,
) -> Result<(), TokenError> {
    let Some(root) = chain.first() else {
        return Err(TokenError::Malformed("no blocks".into()));
    };
    if root.depth != 0 || root.parent.is_some() {
        return Err(TokenError::BrokenChain {
            block: 0,
            why: format!(
                "the issued grant {} has depth {} and parent {:?}, not depth 0 and none",
                root.id, root.depth, root.parent
            ),
        });
    }
    let mut seen = HashSet::from([root.id.as_str()]);
    for (i, pair) in chain.windows(2).enumerate() {
        let (parent, child) = (&pair[0], &pair[1]);
        link(i + 1, parent, child)?;
        if !seen.insert(child.id.as_str()) {
            return Err(TokenError::BrokenChain {
                block: i + 1,
                why: format!("grant id {} appears twice in the chain", child.id),
            });
        }
        covers(&parent.caps, &child.caps).map_err(|why| TokenError::Widened {
            id: child.id.clone(),
            parent: parent.id.clone(),
            why,
        })?;
    }
    Ok(())
}

/// Whether `child`, in block `block`, continues the chain after `parent`.
fn link(block: usize, parent: &GrantRecord, child: &GrantRecord) -> Result<(), TokenError> {
    let broken = |why: String| TokenError::BrokenChain { block, why };
    if usize::try_from(child.depth).ok() != Some(block) {
        return Err(broken(format!(
            "grant {} has depth {}; block {block} holds depth {block}",
            child.id, child.depth
        )));
    }
    if child.parent.as_deref() != Some(parent.id.as_str()) {
        return Err(broken(format!(
            "grant {} names parent {}, but block {} holds grant {}",
            child.id,
            child.parent.as_deref().unwrap_or("(none)"),
            block - 1,
            parent.id
        )));
    }
    // Compared as the token keeps them, in whole seconds.
    if record::unix_secs(child.expires)? > record::unix_secs(parent.expires)? {
        return Err(TokenError::Widened {
            id: child.id.clone(),
            parent: parent.id.clone(),
            why: format!(
                "it expires at {}, after its parent ({})",
                seconds(child.expires),
                seconds(parent.expires)
            ),
        });
    }
    Ok(())
}

/// Runs the token's checks (each block's expiry, and any an attenuator
/// added) with `time(now)` as the only fact the verifier supplies.
fn authorize(biscuit: &Biscuit, now: SystemTime) -> Result<(), TokenError> {
    let limits = AuthorizerLimits {
        // The default (1 ms) trips on a loaded machine; the bound is against
        // an attenuator's degenerate checks, not a budget for ours.
        max_time: Duration::from_millis(100),
        ..AuthorizerLimits::default()
    };
    let time = fact("time", &[Term::Date(record::unix_secs(now)?)]);
    let result = AuthorizerBuilder::new()
        .fact(time)
        .map(|b| b.allow_all().set_limits(limits))
        .and_then(|b| b.build(biscuit))
        .and_then(|mut a| a.authorize());
    match result {
        Ok(_) => Ok(()),
        Err(BiscuitError::FailedLogic(Logic::Unauthorized { checks, .. }))
        | Err(BiscuitError::FailedLogic(Logic::NoMatchingPolicy { checks })) => {
            let (block, check) = match checks.first() {
                Some(FailedCheck::Block(c)) => (c.block_id, c.rule.clone()),
                Some(FailedCheck::Authorizer(c)) => (0, c.rule.clone()),
                None => (0, "no policy allowed the token".into()),
            };
            Err(TokenError::Refused { block, check })
        }
        Err(e) => Err(TokenError::Malformed(format!(
            "its checks cannot be evaluated: {}",
            describe(&e)
        ))),
    }
}

/// The token's bytes. Accepts base64url with or without padding (biscuit
/// writes padding; other tools may not), around whitespace.
fn decode(token: &str) -> Result<Vec<u8>, TokenError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const URL_SAFE_ANY: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::Malformed("the token is empty".into()));
    }
    URL_SAFE_ANY
        .decode(token)
        .map_err(|e| TokenError::NotBase64(e.to_string()))
}

fn malformed(e: &BiscuitError) -> TokenError {
    TokenError::Malformed(format!("not a biscuit token: {}", describe(e)))
}

/// Biscuit's message, with the detail its `Display` leaves out.
fn describe(e: &BiscuitError) -> String {
    match e {
        BiscuitError::Format(
            Format::DeserializationError(m) | Format::BlockDeserializationError(m),
        ) => m.clone(),
        BiscuitError::Format(f @ Format::Signature(Signature::InvalidSignature(m))) => {
            format!("{f}: {m}")
        }
        BiscuitError::Format(f) => f.to_string(),
        e => e.to_string(),
    }
}

/// RFC 3339 to the second: token times have no finer grain.
fn seconds(t: SystemTime) -> String {
    let full = crate::audit::rfc3339(t);
    match full.split_once('.') {
        Some((secs, _)) => format!("{secs}Z"),
        None => full,
    }
}

#[cfg(test)]
mod tests;
