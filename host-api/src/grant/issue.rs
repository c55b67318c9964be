//! [`Grant`]: a capability set with an identity, an owner and a lifetime.

use std::time::{Duration, SystemTime};

use super::{Capabilities, Narrowing, Widening, time};

/// The capabilities one task holds, with an id, the grant it was derived from, the agent
/// it was issued to, and an expiry.
///
/// A grant is made in one of three ways, so that every grant in existence is either a
/// manifest's ceiling or checked to be within its parent:
/// - [`Grant::root`]: from the manifest's ceiling (possibly narrowed first with
///   [`Capabilities::narrow`]), with no parent;
/// - [`Grant::attenuate`]: a child of another grant, never wider and never outliving it;
/// - decoding its JSON form, which checks it as a manifest is checked (see the
///   [module docs](super)).
///
/// An expired grant grants nothing; [`Grant::is_expired`] says whether it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub(super) id: String,
    pub(super) parent: Option<String>,
    pub(super) agent: Option<String>,
    pub(super) issued: SystemTime,
    pub(super) expires: SystemTime,
    pub(super) depth: u32,
    pub(super) caps: Capabilities,
}

impl Grant {
    /// A grant with no parent, issued now to `agent`, expiring after `ttl`.
    ///
    /// A `ttl` reaching past 9999-12-31T23:59:59.999999999Z, the last instant the JSON
    /// form can write, is cut to it.
    ///
    /// # Panics
    ///
    /// If the operating system's random source fails, as the id needs it.
    pub fn root(caps: Capabilities, ttl: Duration, agent: Option<String>) -> Grant {
        Grant::root_at(caps, SystemTime::now(), ttl, agent)
    }

    /// [`Grant::root`], issued at `now` rather than at the current time.
    pub fn root_at(
        caps: Capabilities,
        now: SystemTime,
        ttl: Duration,
        agent: Option<String>,
    ) -> Grant {
        Grant {
            id: new_id(),
            parent: None,
            agent,
            issued: now,
            expires: expiry(now, ttl),
            depth: 0,
            caps,
        }
    }

    /// A child grant: the capabilities `narrowing` asks for, issued now to `agent` (the
    /// parent's agent when `None`), expiring after `ttl` or with the parent when `None`.
    ///
    /// Refused, naming the capability, when the child would allow anything this grant
    /// does not ([`Capabilities::narrow`]), when `ttl` would outlive this grant, and when
    /// this grant has expired.
    ///
    /// # Panics
    ///
    /// If the operating system's random source fails, as the id needs it.
    pub fn attenuate(
        &self,
        narrowing: &Narrowing,
        ttl: Option<Duration>,
        agent: Option<String>,
    ) -> Result<Grant, Widening> {
        self.attenuate_at(narrowing, SystemTime::now(), ttl, agent)
    }

    /// [`Grant::attenuate`], at `now` rather than at the current time.
    pub fn attenuate_at(
        &self,
        narrowing: &Narrowing,
        now: SystemTime,
        ttl: Option<Duration>,
        agent: Option<String>,
    ) -> Result<Grant, Widening> {
        let Some(remaining) = self.remaining(now) else {
            return Err(Widening::Expired {
                id: self.id.clone(),
                expired: time::format(self.expires)
                    .unwrap_or_else(|| format!("{:?}", self.expires)),
            });
        };
        let expires = match ttl {
            None => self.expires,
            Some(ttl) if ttl <= remaining => now + ttl,
            Some(requested) => {
                return Err(Widening::Ttl {
                    requested,
                    remaining,
                    parent: self.id.clone(),
                });
            }
        };
        let caps = self.caps.narrow(narrowing)?;
        Ok(Grant {
            id: new_id(),
            parent: Some(self.id.clone()),
            agent: agent.or_else(|| self.agent.clone()),
            issued: now,
            expires,
            // Four billion delegations do not happen; saturating keeps "deep" deep.
            depth: self.depth.saturating_add(1),
            caps,
        })
    }

    /// Whether the grant has expired at `now`: it grants nothing from its expiry on.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        now >= self.expires
    }

    /// How long the grant has left at `now`; `None` once it has expired.
    pub fn remaining(&self, now: SystemTime) -> Option<Duration> {
        self.expires
            .duration_since(now)
            .ok()
            .filter(|left| !left.is_zero())
    }

    /// Checks that this grant is within `ceiling`, the capabilities of the manifest it
    /// claims to come from. A decoded grant is well formed but may name another
    /// manifest's directories or secrets: check it against the one it will run under.
    pub fn check_within(&self, ceiling: &Capabilities) -> Result<(), Widening> {
        ceiling.covers(&self.caps)
    }

    /// The grant's id: 32 lowercase hex digits (128 random bits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The id of the grant this one was attenuated from; `None` for a root grant.
    pub fn parent(&self) -> Option<&str> {
        self.parent.as_deref()
    }

    /// The agent the grant was issued to, as the caller named it.
    pub fn agent(&self) -> Option<&str> {
        self.agent.as_deref()
    }

    /// When the grant was issued.
    pub fn issued(&self) -> SystemTime {
        self.issued
    }

    /// When the grant expires: it grants nothing from then on.
    pub fn expires(&self) -> SystemTime {
        self.expires
    }

    /// How many attenuations separate this grant from its root: 0 for a root grant.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// What the grant allows.
    pub fn caps(&self) -> &Capabilities {
        &self.caps
    }
}

/// `now + ttl`, cut to the last instant the JSON form can write.
fn expiry(now: SystemTime, ttl: Duration) -> SystemTime {
    let latest = time::latest();
    now.checked_add(ttl)
        .filter(|t| *t <= latest)
        .unwrap_or(latest)
}

/// 128 random bits as 32 lowercase hex digits: unguessable, so that an id can name a grant
/// in a revocation list without a registry handing them out.
fn new_id() -> String {
    crate::hex::random(16).expect("the operating system's random source failed")
}

/// Whether `id` is what [`new_id`] makes.
pub(super) fn is_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
