//! `[[http]]` as a [`Capability`]: resolved from the manifest, narrowed to rules within the
//! parent's (with the limits of the parent rule that would decide), carried in tokens, and
//! described.

use super::HttpState;
use super::manifest::{HttpGrant, HttpManifestError, RawHttpRule, RequestLimits, resolve_rules};
use super::{Egress, HostPattern, HttpRule};
use crate::WardenView;
use crate::capability::{Capability, ResolveCx, TaskSetup, WireError, list_args};
use crate::grant::{Capabilities, NarrowingReason, Widening, Wider};
use crate::limits::manifest::{format_duration, format_size, parse_duration};
use std::collections::BTreeSet;
use std::fmt;
use wasmtime::component::Linker;

/// Outgoing HTTP requests: a grant holds `[[http]]` rules in order, each with limits per
/// request; the first that matches a request decides. None means no requests.
#[derive(Debug, Clone, Copy)]
pub struct Http;

/// The `[[http]]` entries as a manifest declares them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredHttp {
    /// Each entry's rule and limits, in manifest order.
    pub rules: Vec<HttpGrant>,
    /// The rules of those with `approval = "required"`: a request one of them matches
    /// asks an approver, unless its method is `GET`, `HEAD` or `OPTIONS`.
    pub approval: Vec<HttpRule>,
}

/// `http=URL [METHODS]`: the rule parsed with the methods given, and whether there were
/// any (without them, the covering parent rule's methods are taken).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpNarrowing {
    rule: HttpRule,
    methods_given: bool,
}

impl HttpNarrowing {
    fn parse(value: &str) -> Result<HttpNarrowing, NarrowingReason> {
        let mut parts = value.split_whitespace();
        let (Some(url), methods, None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NarrowingReason::invalid(
                "expected URL [METHOD,...], as in \"https://api.github.com/repos/ GET,HEAD\"",
            ));
        };
        let methods: Option<Vec<String>> =
            methods.map(|m| m.split(',').map(str::to_owned).collect());
        let methods_given = methods.is_some();
        let rule = HttpRule::parse(url, methods).map_err(NarrowingReason::invalid)?;
        Ok(HttpNarrowing {
            rule,
            methods_given,
        })
    }

    /// The rule with the methods given, or else those of `parent`.
    fn rule_under(&self, parent: &HttpRule) -> HttpRule {
        if self.methods_given {
            self.rule.clone()
        } else {
            (self.rule).with_methods(parent.methods().map(<[String]>::to_vec))
        }
    }

    /// The child's rule at `index`, within one of `parent`'s; `earlier` are the child's
    /// rules before it, which decide their requests first.
    fn grant(
        &self,
        parent: &[HttpGrant],
        earlier: &[HttpGrant],
        index: usize,
    ) -> Result<HttpGrant, Widening> {
        let covering = parent
            .iter()
            .position(|p| rule_within(&self.rule_under(&p.rule), &p.rule));
        let Some(covering) = covering else {
            let parent = parent.iter().map(|p| &p.rule);
            return Err(
                Wider::within_none(format_args!("http[{index}]"), &self.rule, parent).into(),
            );
        };
        let rule = self.rule_under(&parent[covering].rule);
        let limits =
            min_limits(deciding_rules(parent, earlier, &rule, covering).map(|k| parent[k].limits))
                .unwrap_or(parent[covering].limits);
        Ok(HttpGrant { rule, limits })
    }
}

/// One rule in a grant's JSON form.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpWire {
    url: String,
    /// `null`: every method, as a manifest rule without `methods`.
    methods: Option<Vec<String>>,
    timeout: String,
    request_body: u64,
    response_body: u64,
}

impl Capability for Http {
    const KEY: &'static str = "http";
    type Section = Vec<RawHttpRule>;
    type Declared = DeclaredHttp;
    type Grant = Vec<HttpGrant>;
    /// `http=URL [METHOD,...]` strings in order; `http=` alone asks for none.
    type Narrowing = Vec<HttpNarrowing>;
    type Wire = Vec<HttpWire>;
    type Error = HttpManifestError;

    fn resolve(
        section: &Self::Section,
        _cx: &ResolveCx<'_>,
    ) -> Result<DeclaredHttp, HttpManifestError> {
        let rules = resolve_rules(section)?;
        // Each entry resolved to one of the same index, in order.
        let approval = (section.iter().zip(&rules))
            .filter(|(raw, _)| raw.approval().is_required())
            .map(|(_, grant)| grant.rule.clone())
            .collect();
        Ok(DeclaredHttp { rules, approval })
    }

    fn ceiling(declared: &DeclaredHttp) -> Self::Grant {
        declared.rules.clone()
    }

    /// Each child rule is within one parent rule: the same scheme and port; a host within
    /// the parent's ([`HostPattern::is_within`]); a path prefix that extends the parent's
    /// by whole segments; methods among the parent's (a rule without methods allows all).
    /// Its per-request limits are at most those of every parent rule that could be the
    /// first to match a request the child's rule decides, since that is the rule whose
    /// limits the parent applies.
    fn covers(parent: &Self::Grant, child: &Self::Grant) -> Result<(), Widening> {
        for (index, c) in child.iter().enumerate() {
            let Some(covering) = parent.iter().position(|p| rule_within(&c.rule, &p.rule)) else {
                let parent = parent.iter().map(|p| &p.rule);
                return Err(
                    Wider::within_none(format_args!("http[{index}]"), &c.rule, parent).into(),
                );
            };
            for k in deciding_rules(parent, &child[..index], &c.rule, covering) {
                limits_within(index, c, k, &parent[k])?;
            }
        }
        Ok(())
    }

    fn push_narrowing(
        narrowing: &mut Self::Narrowing,
        _key: &str,
        value: &str,
    ) -> Result<(), NarrowingReason> {
        if !value.is_empty() {
            narrowing.push(HttpNarrowing::parse(value)?);
        }
        Ok(())
    }

    fn narrowing_args(narrowing: &Self::Narrowing) -> Vec<String> {
        let values = narrowing.iter().map(|h| match h.rule.methods() {
            Some(methods) if h.methods_given => format!("{} {}", h.rule.url(), methods.join(",")),
            _ => h.rule.url().to_owned(),
        });
        list_args(Self::KEY, values)
    }

    fn narrow(parent: &Self::Grant, narrowing: &Self::Narrowing) -> Result<Self::Grant, Widening> {
        let mut http = Vec::with_capacity(narrowing.len());
        for (index, entry) in narrowing.iter().enumerate() {
            let grant = entry.grant(parent, &http, index)?;
            http.push(grant);
        }
        Ok(http)
    }

    fn to_wire(grant: &Self::Grant) -> Result<Self::Wire, WireError> {
        Ok((grant.iter())
            .map(|g| HttpWire {
                url: g.rule.url().to_owned(),
                methods: g.rule.methods().map(<[String]>::to_vec),
                timeout: format_duration(g.limits.timeout),
                request_body: g.limits.request_body,
                response_body: g.limits.response_body,
            })
            .collect())
    }

    fn from_wire(wire: Self::Wire) -> Result<Self::Grant, WireError> {
        (wire.into_iter().enumerate())
            .map(|(i, entry)| {
                let rule = HttpRule::parse(&entry.url, entry.methods)
                    .map_err(|e| WireError::new(format_args!("http[{i}]"), e))?;
                let timeout = parse_duration(&entry.timeout)
                    .map_err(|e| WireError::new(format_args!("http[{i}].timeout"), e))?;
                if timeout.is_zero() {
                    return Err(WireError::new(
                        format_args!("http[{i}].timeout"),
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

    fn configure(grant: &Self::Grant, setup: &mut TaskSetup<'_>) {
        if !grant.is_empty() {
            let secrets = setup.secrets.clone();
            setup.http = HttpState::new(grant.clone(), secrets, setup.cx.clone());
        }
    }

    fn add_to_linker<T: WardenView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        super::add_to_linker(linker)
    }

    fn summary(_declared: &DeclaredHttp, grant: &Self::Grant) -> Option<serde_json::Value> {
        Some(grant.iter().map(|g| g.rule.to_string()).collect())
    }

    fn describe(declared: &DeclaredHttp, out: &mut dyn fmt::Write) -> fmt::Result {
        if declared.rules.is_empty() {
            return writeln!(out, "http: none");
        }
        writeln!(out, "http:")?;
        for (i, grant) in declared.rules.iter().enumerate() {
            let asks = if declared.approval.contains(&grant.rule) {
                "; requests other than GET, HEAD and OPTIONS ask an approver"
            } else {
                ""
            };
            writeln!(out, "  http[{i}] {} ({}){asks}", grant.rule, grant.limits)?;
        }
        Ok(())
    }

    fn denied(declared: &DeclaredHttp) -> Option<&'static str> {
        Some(if declared.rules.is_empty() {
            "no http"
        } else {
            "no other urls"
        })
    }

    fn ungranted(declared: &DeclaredHttp, import: &str) -> Option<String> {
        (import == "wasi:http/outgoing-handler" && declared.rules.is_empty())
            .then(|| "no [[http]] rules: every request is refused; add an [[http]] entry".into())
    }
}

/// Whether the per-request limits of the child's rule `c` (at `index`) are at most those
/// of the parent's rule `p` (at `k`), which may decide some of its requests.
fn limits_within(index: usize, c: &HttpGrant, k: usize, p: &HttpGrant) -> Result<(), Widening> {
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
    match exceeded.into_iter().find(|(_, wider, _, _)| *wider) {
        Some((limit, _, child_value, parent_value)) => Err(Wider::new(
            format_args!("http[{index}]"),
            format_args!(
                "{} allows a {limit} of {child_value}, more than the parent's {parent_value} (parent: http[{k}] {})",
                c.rule, p.rule
            ),
        )
        .into()),
        None => Ok(()),
    }
}

/// The parent rules whose limits may apply to a request that the child's `rule` decides,
/// given the child's `earlier` rules and that parent rule `covering` holds all of `rule`.
///
/// The parent applies the limits of its *first* matching rule, which for a request of
/// `rule` is `covering` or an earlier rule that overlaps `rule`. An overlap that one of
/// the child's earlier rules holds entirely never reaches `rule` (the child decides those
/// requests first), so it is left out; that keeps a set within itself.
fn deciding_rules<'a>(
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
fn min_limits(limits: impl Iterator<Item = RequestLimits>) -> Option<RequestLimits> {
    limits.reduce(|a, b| RequestLimits {
        timeout: a.timeout.min(b.timeout),
        request_body: a.request_body.min(b.request_body),
        response_body: a.response_body.min(b.response_body),
    })
}

/// Whether every request `child` allows, `parent` allows.
fn rule_within(child: &HttpRule, parent: &HttpRule) -> bool {
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

impl Capabilities {
    /// The `[[http]]` rules with their per-request limits, in order; the first that
    /// matches a request decides.
    pub fn http(&self) -> &[HttpGrant] {
        &self.http
    }

    /// The `[[http]]` rule engine for these rules.
    pub fn egress(&self) -> Egress {
        Egress::new(self.http.iter().map(|g| g.rule.clone()).collect())
    }
}
