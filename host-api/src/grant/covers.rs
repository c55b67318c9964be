//! [`Capabilities::covers`]: whether one capability set is within another, section by
//! section, checked from the rules' parts rather than assumed from how the child was made.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::caps::SecretGrant;
use super::widening::HttpLimitWidening;
use super::{Capabilities, Widening};
use crate::capability::Capability;
use crate::env::Env;
use crate::fs::manifest::{Access, FsGrant, normalize_guest};
use crate::http::manifest::{HttpGrant, RequestLimits};
use crate::http::{HostPattern, HttpRule};
use crate::limits::TaskLimits;
use crate::limits::manifest::{format_duration, format_size};
use crate::sockets::Tcp;

impl Capabilities {
    /// Checks that everything `child` allows, `self` allows too; the first thing it does
    /// not is the error, named by the child's capability.
    ///
    /// Section by section:
    /// - **fs**: each child grant's guest path is a parent grant's guest path or inside it,
    ///   its host directory is the one the parent's grant maps that guest path to, and it
    ///   writes only where the parent writes (`read` is within `read-write`).
    /// - **http**: each child rule is within one parent rule: the same scheme and port; a
    ///   host within the parent's ([`HostPattern::is_within`]); a path prefix that extends
    ///   the parent's by whole segments; methods among the parent's (a rule without
    ///   methods allows all). Its per-request limits are at most those of every parent
    ///   rule that could be the first to match a request the child's rule decides, since
    ///   that is the rule whose limits the parent applies.
    /// - **tcp**: each child rule has a parent rule with the same port and a host it is
    ///   within.
    /// - **secrets**: each child secret is the parent's, and is revealed only if the
    ///   parent may reveal it.
    /// - **env**: each literal variable is the parent's with the same value; each passed
    ///   name is passed by the parent.
    /// - **limits**: memory, timeout and output at most the parent's; fuel metered at most
    ///   as high, where no fuel limit (unmetered) is the widest.
    ///
    /// ```
    /// use warden_host_api::grant::{Capabilities, Narrowing};
    /// use warden_host_api::http::{HttpRule, manifest::{HttpGrant, RequestLimits}};
    ///
    /// let rule = |url, methods: &[&str]| HttpGrant {
    ///     rule: HttpRule::parse(url, Some(methods.iter().map(|m| m.to_string()).collect())).unwrap(),
    ///     limits: RequestLimits::default(),
    /// };
    /// let caps = |http| Capabilities::new(vec![], http, vec![], &[], Default::default(), Default::default());
    /// let parent = caps(vec![rule("https://api.github.com/repos/", &["GET"])]);
    ///
    /// assert!(parent.covers(&caps(vec![rule("https://api.github.com/repos/rust-lang/", &["GET"])])).is_ok());
    /// assert_eq!(
    ///     parent.covers(&caps(vec![rule("https://*.github.com/", &["GET"])])).unwrap_err().to_string(),
    ///     "http[0]: https://*.github.com/ GET is wider than anything the parent grants \
    ///      (parent: https://api.github.com/repos/ GET)",
    /// );
    /// ```
    pub fn covers(&self, child: &Capabilities) -> Result<(), Widening> {
        covers_fs(&self.fs, &child.fs)?;
        covers_http(&self.http, &child.http)?;
        Tcp::covers(&self.tcp, &child.tcp)?;
        covers_secrets(&self.secrets, &child.secrets)?;
        Env::covers(&self.env, &child.env)?;
        TaskLimits::covers(&self.limits, &child.limits)
    }
}

fn covers_fs(parent: &[FsGrant], child: &[FsGrant]) -> Result<(), Widening> {
    for (index, c) in child.iter().enumerate() {
        // A path that is not in normal form could hide a `..`; it is within nothing.
        let normal = normalize_guest(&c.guest).is_ok_and(|g| g == c.guest);
        let found = parent
            .iter()
            .find_map(|p| Some((p, guest_below(&c.guest, &p.guest)?)))
            .filter(|_| normal);
        let Some((p, rel)) = found else {
            return Err(Widening::Fs {
                index,
                child: fs_label(c),
                parent: parent.iter().map(fs_label).collect(),
            });
        };
        let expected = host_below(&p.host, rel);
        // Compared as strings, not as `Path`s, which would call `/a/./b` and `/a/b` equal.
        if c.host.as_os_str() != expected.as_os_str() {
            return Err(Widening::FsHost {
                index,
                guest: c.guest.clone(),
                host: c.host.display().to_string(),
                expected: expected.display().to_string(),
            });
        }
        if c.access == Access::ReadWrite && p.access == Access::Read {
            return Err(Widening::FsAccess {
                index,
                child: fs_label(c),
                parent: fs_label(p),
            });
        }
    }
    Ok(())
}

/// What of `guest` lies below the directory `parent` (both normalized guest paths): `""`
/// when they are the same, `src/lib` for `/workspace/src/lib` under `/workspace`, `None`
/// when `guest` is not inside `parent` (`/workspace2` is not inside `/workspace`).
pub(super) fn guest_below<'a>(guest: &'a str, parent: &str) -> Option<&'a str> {
    if guest == parent {
        Some("")
    } else {
        guest.strip_prefix(parent)?.strip_prefix('/')
    }
}

/// The host directory a parent grant rooted at `host` gives the guest path `rel` below its
/// own.
pub(super) fn host_below(host: &Path, rel: &str) -> PathBuf {
    if rel.is_empty() {
        host.to_path_buf()
    } else {
        host.join(rel)
    }
}

/// `/workspace read`: how a directory grant is named in a [`Widening`].
pub(super) fn fs_label(grant: &FsGrant) -> String {
    format!("{} {}", grant.guest, grant.access)
}

fn covers_http(parent: &[HttpGrant], child: &[HttpGrant]) -> Result<(), Widening> {
    for (index, c) in child.iter().enumerate() {
        let Some(covering) = parent.iter().position(|p| rule_within(&c.rule, &p.rule)) else {
            return Err(Widening::Http {
                index,
                child: c.rule.to_string(),
                parent: parent.iter().map(|p| p.rule.to_string()).collect(),
            });
        };
        for k in deciding_rules(parent, &child[..index], &c.rule, covering) {
            let p = &parent[k];
            let exceeded = [
                (
                    "timeout",
                    c.limits.timeout > p.limits.timeout,
                    format_duration(c.limits.timeout),
                    format_duration(p.limits.timeout),
                ),
                (
                    "request body",
                    c.limits.request_body > p.limits.request_body,
                    format_size(c.limits.request_body),
                    format_size(p.limits.request_body),
                ),
                (
                    "response body",
                    c.limits.response_body > p.limits.response_body,
                    format_size(c.limits.response_body),
                    format_size(p.limits.response_body),
                ),
            ];
            if let Some((limit, _, child_value, parent_value)) =
                exceeded.into_iter().find(|(_, wider, _, _)| *wider)
            {
                return Err(Widening::HttpLimit(Box::new(HttpLimitWidening {
                    index,
                    child: c.rule.to_string(),
                    limit,
                    child_value,
                    parent_value,
                    parent_index: k,
                    parent: p.rule.to_string(),
                })));
            }
        }
    }
    Ok(())
}

/// The parent rules whose limits may apply to a request that the child's `rule` decides,
/// given the child's `earlier` rules and that parent rule `covering` holds all of `rule`.
///
/// The parent applies the limits of its *first* matching rule, which for a request of
/// `rule` is `covering` or an earlier rule that overlaps `rule`. An overlap that one of
/// the child's earlier rules holds entirely never reaches `rule` (the child decides those
/// requests first), so it is left out; that keeps a set within itself.
pub(super) fn deciding_rules<'a>(
    parent: &'a [HttpGrant],
    earlier: &'a [HttpGrant],
    rule: &'a HttpRule,
    covering: usize,
) -> impl Iterator<Item = usize> + 'a {
    parent[..=covering]
        .iter()
        .enumerate()
        .filter(move |(_, p)| match Region::both(&p.rule, rule) {
            None => false,
            Some(both) => !earlier.iter().any(|e| both.is_within(&e.rule)),
        })
        .map(|(k, _)| k)
}

/// The smallest of each of `limits`; `None` for none.
pub(super) fn min_limits(limits: impl Iterator<Item = RequestLimits>) -> Option<RequestLimits> {
    limits.reduce(|a, b| RequestLimits {
        timeout: a.timeout.min(b.timeout),
        request_body: a.request_body.min(b.request_body),
        response_body: a.response_body.min(b.response_body),
    })
}

/// Whether every request `child` allows, `parent` allows.
pub(super) fn rule_within(child: &HttpRule, parent: &HttpRule) -> bool {
    Region::of(child).is_within(parent)
}

/// The requests an `[[http]]` rule allows, or two rules both allow: one scheme and port,
/// the hosts of one pattern, paths under one prefix, and a set of methods (`None`: all).
///
/// Host patterns nest or are disjoint, and so do path prefixes, so the requests two rules
/// both allow are again such a region.
struct Region<'a> {
    scheme: &'a str,
    port: u16,
    host: &'a HostPattern,
    prefix: &'a [Vec<u8>],
    methods: Option<BTreeSet<&'a str>>,
}

impl<'a> Region<'a> {
    fn of(rule: &'a HttpRule) -> Region<'a> {
        Region {
            scheme: rule.scheme(),
            port: rule.port(),
            host: rule.host(),
            prefix: rule.prefix(),
            methods: methods(rule),
        }
    }

    /// The requests both `a` and `b` allow, if there are any.
    fn both(a: &'a HttpRule, b: &'a HttpRule) -> Option<Region<'a>> {
        if a.scheme() != b.scheme() || a.port() != b.port() {
            return None;
        }
        let host = if a.host().is_within(b.host()) {
            a.host()
        } else if b.host().is_within(a.host()) {
            b.host()
        } else {
            return None;
        };
        let prefix = if a.prefix().starts_with(b.prefix()) {
            a.prefix()
        } else if b.prefix().starts_with(a.prefix()) {
            b.prefix()
        } else {
            return None;
        };
        let methods = match (methods(a), methods(b)) {
            (None, None) => None,
            (Some(m), None) | (None, Some(m)) => Some(m),
            (Some(m), Some(n)) => {
                let common: BTreeSet<&str> = m.intersection(&n).copied().collect();
                if common.is_empty() {
                    return None;
                }
                Some(common)
            }
        };
        Some(Region {
            scheme: a.scheme(),
            port: a.port(),
            host,
            prefix,
            methods,
        })
    }

    fn is_within(&self, rule: &HttpRule) -> bool {
        self.scheme == rule.scheme()
            && self.port == rule.port()
            && self.host.is_within(rule.host())
            && self.prefix.starts_with(rule.prefix())
            && match (&self.methods, methods(rule)) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some(mine), Some(theirs)) => mine.is_subset(&theirs),
            }
    }
}

fn methods(rule: &HttpRule) -> Option<BTreeSet<&str>> {
    rule.methods()
        .map(|ms| ms.iter().map(String::as_str).collect())
}

fn covers_secrets(parent: &[SecretGrant], child: &[SecretGrant]) -> Result<(), Widening> {
    for c in child {
        let Some(p) = parent.iter().find(|p| p.name == c.name) else {
            return Err(Widening::Secret {
                name: c.name.clone(),
                parent: parent.iter().map(secret_label).collect(),
            });
        };
        if let Some(wider) = c.uses().find(|u| !p.uses().any(|held| held == *u)) {
            return Err(Widening::SecretUse {
                name: c.name.clone(),
                child: secret_label(c),
                parent: secret_label(p),
                wider,
            });
        }
    }
    Ok(())
}

/// `github:inject+hmac`, as a narrowing writes it: the name and every use it allows.
pub(super) fn secret_label(secret: &SecretGrant) -> String {
    let uses: Vec<&str> = secret.uses().collect();
    format!("{}:{}", secret.name, uses.join("+"))
}
