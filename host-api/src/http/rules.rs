//! One `[[http]]` entry in its parsed form, and how it matches a request.

use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;
use url::{Host, Url};

/// Why an `[[http]]` rule was rejected. Each message carries the value at
/// fault so the manifest line can be found and fixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The rule is not of the form `scheme://host[:port][/path-prefix]`.
    #[error("http rule url {url:?} is malformed: {reason}")]
    Malformed {
        /// The rule as written.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The scheme is neither `http` nor `https`.
    #[error("http rule url {url:?} has scheme {scheme:?}: only http and https are allowed")]
    UnknownScheme {
        /// The rule as written.
        url: String,
        /// The scheme found.
        scheme: String,
    },
    /// The rule names a user or password (`https://user@host/`); credentials
    /// belong in `[[secrets]]`, and a rule with `@` is easy to misread.
    #[error("http rule url {url:?} contains userinfo (`@`): credentials belong in [[secrets]]")]
    Userinfo {
        /// The rule as written.
        url: String,
    },
    /// The rule has a `?query`; rules match scheme, host, port and path only.
    #[error("http rule url {url:?} contains a query (`?`): rules match a path prefix only")]
    Query {
        /// The rule as written.
        url: String,
    },
    /// The rule has a `#fragment`, which never reaches a server.
    #[error("http rule url {url:?} contains a fragment (`#`): rules match a path prefix only")]
    Fragment {
        /// The rule as written.
        url: String,
    },
    /// The rule has no host (`https:///path`).
    #[error("http rule url {url:?} has an empty host")]
    EmptyHost {
        /// The rule as written.
        url: String,
    },
    /// A `*` anywhere but as the whole first label (`*foo.com`, `a.*.com`,
    /// `*.10.0.0.1`).
    #[error(
        "http rule url {url:?} has a bad wildcard {host:?}: only a leading `*.` followed by a domain name is allowed, as in `*.example.com`"
    )]
    BadWildcard {
        /// The rule as written.
        url: String,
        /// The host part at fault.
        host: String,
    },
    /// An IP network whose prefix length is too long, or which has host
    /// bits set (`10.0.0.1/8`), which is most likely a typo.
    #[error("http rule url {url:?} has a bad network {network:?}: {reason}")]
    BadNetwork {
        /// The rule as written.
        url: String,
        /// The network as written.
        network: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A method that is not an uppercase HTTP token (`get`, `GET POST`, ``).
    #[error("http rule method {method:?} is not an uppercase HTTP method such as \"GET\"")]
    BadMethod {
        /// The method as written.
        method: String,
    },
    /// `methods = []`, which would allow nothing; leave `methods` out to
    /// allow every method, or remove the rule.
    #[error(
        "http rule {url:?} has an empty methods list: omit `methods` to allow every method, or remove the rule"
    )]
    NoMethods {
        /// The rule as written.
        url: String,
    },
}

/// Which hosts a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostPattern {
    /// Exactly this DNS name (lowercase, no trailing dot).
    Exact(String),
    /// Any name strictly under this suffix, at a label boundary: `*.example.com`
    /// is `Suffix("example.com")`, which matches `api.example.com` but neither
    /// `example.com` nor `evilexample.com`.
    Suffix(String),
    /// This IP address, in canonical form (IPv4-mapped IPv6 becomes IPv4).
    Ip(IpAddr),
    /// Any IP address in this network.
    Cidr(IpNet),
}

impl HostPattern {
    /// Whether `host` (a normalized request host) is one this pattern names.
    pub(crate) fn matches(&self, host: &RequestHost) -> bool {
        match (self, host) {
            (HostPattern::Exact(name), RequestHost::Domain(d)) => name == d,
            (HostPattern::Suffix(suffix), RequestHost::Domain(d)) => d
                .strip_suffix(suffix.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty()),
            (HostPattern::Ip(ip), RequestHost::Ip(a)) => ip == a,
            (HostPattern::Cidr(net), RequestHost::Ip(a)) => net.contains(a),
            _ => false,
        }
    }

    /// Parses a host written without a URL around it, as a `[[tcp]]` rule
    /// writes it: a DNS name, `*.suffix`, or an IP literal (IPv6 in
    /// brackets), normalized as a rule's URL host is (lowercase, IDNA,
    /// trailing dot removed, IPv4 numeric forms read as the address they
    /// are). Networks are not parsed here. `None` if it is not a host, or has
    /// a `*` anywhere but as the whole first label of a domain name.
    pub fn parse_host(host: &str) -> Option<HostPattern> {
        let (wildcard, rest) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        if rest.contains('*') {
            return None;
        }
        match (normalize_host(rest)?, wildcard) {
            (RequestHost::Domain(d), true) => Some(HostPattern::Suffix(d)),
            (RequestHost::Domain(d), false) => Some(HostPattern::Exact(d)),
            (RequestHost::Ip(_), true) => None,
            (RequestHost::Ip(ip), false) => Some(HostPattern::Ip(ip)),
        }
    }

    /// Whether this pattern names `name`, a host as a client looks it up (a
    /// DNS name or an IP literal, IPv6 with or without brackets, as
    /// wasmtime-wasi's resolver reads it), after the normalization of
    /// [`HostPattern::parse_host`].
    pub fn matches_name(&self, name: &str) -> bool {
        let host = normalize_host(name).or_else(|| {
            let v6 = name.parse::<std::net::Ipv6Addr>().ok()?;
            Some(RequestHost::Ip(canonical_ip(IpAddr::V6(v6))))
        });
        host.is_some_and(|host| self.matches(&host))
    }

    /// Whether this pattern names `addr` explicitly, by IP or network, which
    /// is what it takes to reach a loopback, private or metadata address.
    pub fn names_addr(&self, addr: IpAddr) -> bool {
        match self {
            HostPattern::Ip(ip) => *ip == addr,
            HostPattern::Cidr(net) => net.contains(&addr),
            HostPattern::Exact(_) | HostPattern::Suffix(_) => false,
        }
    }

    /// Whether every host this pattern matches, `other` matches too.
    ///
    /// Names and addresses never cover each other: a rule for a name does not
    /// reach an IP literal, and a rule for an address is not a name. Within
    /// each kind: `api.example.com` is within itself and within
    /// `*.example.com`; `*.a.example.com` within `*.example.com`; an IP within
    /// itself and any network holding it; a network within any network
    /// holding it. `example.com` is *not* within `*.example.com`, which
    /// matches only names strictly under it.
    ///
    /// ```
    /// use warden_host_api::http::HostPattern;
    ///
    /// let host = |h| HostPattern::parse_host(h).unwrap();
    /// assert!(host("api.example.com").is_within(&host("*.example.com")));
    /// assert!(host("*.a.example.com").is_within(&host("*.example.com")));
    /// assert!(!host("*.example.com").is_within(&host("api.example.com")));
    /// assert!(!host("example.com").is_within(&host("*.example.com")));
    /// ```
    pub fn is_within(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Exact(a), HostPattern::Exact(b)) => a == b,
            (HostPattern::Exact(a), HostPattern::Suffix(b)) => is_strictly_under(a, b),
            (HostPattern::Suffix(a), HostPattern::Suffix(b)) => a == b || is_strictly_under(a, b),
            (HostPattern::Ip(a), HostPattern::Ip(b)) => a == b,
            (HostPattern::Ip(a), HostPattern::Cidr(net)) => net.contains(a),
            // A network of one address is that address.
            (HostPattern::Cidr(net), HostPattern::Ip(b)) => {
                net.prefix_len() == net.max_prefix_len() && net.addr() == *b
            }
            (HostPattern::Cidr(inner), HostPattern::Cidr(outer)) => outer.contains(inner),
            _ => false,
        }
    }
}

/// Whether domain `name` is strictly under domain `suffix` at a label
/// boundary: `a.example.com` is under `example.com`, `example.com` and
/// `aexample.com` are not.
fn is_strictly_under(name: &str, suffix: &str) -> bool {
    name.strip_suffix(suffix)
        .and_then(|head| head.strip_suffix('.'))
        .is_some_and(|label| !label.is_empty())
}

/// A request's host after WHATWG normalization: lowercase, IDNA, trailing dot
/// removed, IPv4 numeric forms (`2130706433`, `0x7f.1`, `0177.0.0.1`) and
/// IPv4-mapped IPv6 reduced to one IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestHost {
    Domain(String),
    Ip(IpAddr),
}

impl RequestHost {
    pub(crate) fn from_url(host: Host<&str>) -> Option<RequestHost> {
        match host {
            Host::Domain(d) => {
                // `API.GITHUB.COM.` and `api.github.com` are one host to DNS.
                let d = d.strip_suffix('.').unwrap_or(d);
                if d.is_empty() || d.ends_with('.') {
                    return None;
                }
                Some(RequestHost::Domain(d.to_ascii_lowercase()))
            }
            Host::Ipv4(v4) => Some(RequestHost::Ip(IpAddr::V4(v4))),
            Host::Ipv6(v6) => Some(RequestHost::Ip(canonical_ip(IpAddr::V6(v6)))),
        }
    }
}

impl fmt::Display for RequestHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestHost::Domain(d) => f.write_str(d),
            RequestHost::Ip(IpAddr::V4(v4)) => write!(f, "{v4}"),
            RequestHost::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
        }
    }
}

/// A host on its own (not inside a URL), normalized as a URL's host is.
fn normalize_host(host: &str) -> Option<RequestHost> {
    match Host::parse(host).ok()? {
        Host::Domain(d) => RequestHost::from_url(Host::Domain(&d)),
        Host::Ipv4(v4) => RequestHost::from_url(Host::Ipv4(v4)),
        Host::Ipv6(v6) => RequestHost::from_url(Host::Ipv6(v6)),
    }
}

/// IPv4-mapped IPv6 (`::ffff:127.0.0.1`) reduced to IPv4, so that a rule and
/// an address written either way compare equal.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `[[http]]` entry: which requests it allows.
///
/// Deny by default: a task with no rules can make no request, and a rule
/// allows only what all of its parts match: scheme, host, port (defaulted
/// from the scheme: 80 or 443), path prefix (by whole segments) and method
/// (all methods when `methods` is absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRule {
    url: String,
    scheme: &'static str,
    host: HostPattern,
    port: u16,
    /// Percent-decoded segments of the path prefix; empty allows every path.
    prefix: Vec<Vec<u8>>,
    methods: Option<Vec<String>>,
}

impl HttpRule {
    /// Parses one `[[http]]` entry: `url` is
    /// `scheme://host[:port][/path-prefix]` and `methods`, when given, the
    /// uppercase methods it allows.
    ///
    /// The host is an exact DNS name, `*.suffix`, an IP literal
    /// (`http://127.0.0.1:8080/`, `http://[::1]/`) or a network
    /// (`http://10.0.0.0/8`, `http://[fd00::]/8/api/`). A network is
    /// written as an IP literal whose first path segment is a prefix length,
    /// so a rule for an IP host cannot start its path with a number.
    pub fn parse(url: &str, methods: Option<Vec<String>>) -> Result<HttpRule, RuleError> {
        let malformed = |reason: &str| RuleError::Malformed {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(malformed("expected scheme://host[:port][/path-prefix]"));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => "http",
            "https" => "https",
            _ => {
                return Err(RuleError::UnknownScheme {
                    url: url.to_owned(),
                    scheme: scheme.to_owned(),
                });
            }
        };
        if rest.contains('?') {
            return Err(RuleError::Query {
                url: url.to_owned(),
            });
        }
        if rest.contains('#') {
            return Err(RuleError::Fragment {
                url: url.to_owned(),
            });
        }
        // The WHATWG parser reads `\` as `/` in http URLs; a rule should not
        // depend on that.
        if rest.contains('\\') {
            return Err(malformed("contains a backslash"));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(RuleError::Userinfo {
                url: url.to_owned(),
            });
        }
        if authority.is_empty() {
            return Err(RuleError::EmptyHost {
                url: url.to_owned(),
            });
        }
        let bad_wildcard = || RuleError::BadWildcard {
            url: url.to_owned(),
            host: authority.to_owned(),
        };
        let (wildcard, authority) = match authority.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, authority),
        };
        if authority.contains('*') {
            return Err(bad_wildcard());
        }
        if authority.is_empty() || authority.starts_with(':') || authority.starts_with('.') {
            return Err(if wildcard {
                bad_wildcard()
            } else {
                RuleError::EmptyHost {
                    url: url.to_owned(),
                }
            });
        }
        let parsed = Url::parse(&format!("{scheme}://{authority}{path}"))
            .map_err(|e| malformed(&e.to_string()))?;
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| malformed("no port"))?;
        let host = parsed
            .host()
            .and_then(RequestHost::from_url)
            .ok_or_else(|| RuleError::EmptyHost {
                url: url.to_owned(),
            })?;
        let mut segments = path_segments(&parsed);
        let host = match host {
            RequestHost::Domain(d) if wildcard => HostPattern::Suffix(d),
            RequestHost::Domain(d) => HostPattern::Exact(d),
            RequestHost::Ip(_) if wildcard => return Err(bad_wildcard()),
            RequestHost::Ip(ip) => match segments.first() {
                Some(len) if !len.is_empty() && len.iter().all(u8::is_ascii_digit) => {
                    let len = String::from_utf8_lossy(len).into_owned();
                    let network = format!("{ip}/{len}");
                    let bad = |reason: &str| RuleError::BadNetwork {
                        url: url.to_owned(),
                        network: network.clone(),
                        reason: reason.to_owned(),
                    };
                    let net: IpNet = network.parse().map_err(|_| bad("prefix length too long"))?;
                    if net.trunc() != net {
                        return Err(bad(&format!(
                            "host bits are set; did you mean {}?",
                            net.trunc()
                        )));
                    }
                    segments.remove(0);
                    HostPattern::Cidr(net)
                }
                _ => HostPattern::Ip(ip),
            },
        };
        // `/repos/` and `/repos` are the same prefix: whole segments.
        if segments.last().is_some_and(Vec::is_empty) {
            segments.pop();
        }
        if let Some(methods) = &methods {
            if methods.is_empty() {
                return Err(RuleError::NoMethods {
                    url: url.to_owned(),
                });
            }
            if let Some(bad) = methods
                .iter()
                .find(|m| !is_token(m) || m.bytes().any(|b| b.is_ascii_lowercase()))
            {
                return Err(RuleError::BadMethod {
                    method: bad.clone(),
                });
            }
        }
        Ok(HttpRule {
            url: url.to_owned(),
            scheme,
            host,
            port,
            prefix: segments,
            methods,
        })
    }

    /// The rule's url as written in the manifest.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        self.scheme
    }

    /// The hosts this rule matches.
    pub fn host(&self) -> &HostPattern {
        &self.host
    }

    /// The one port this rule matches.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The methods this rule allows; `None` allows every method.
    pub fn methods(&self) -> Option<&[String]> {
        self.methods.as_deref()
    }

    /// The percent-decoded segments of the path prefix; empty allows every
    /// path.
    pub(crate) fn prefix(&self) -> &[Vec<u8>] {
        &self.prefix
    }

    /// This rule with `methods` in place of its own; `methods` must be valid
    /// (taken from another parsed rule), as nothing checks them here.
    pub(crate) fn with_methods(&self, methods: Option<Vec<String>>) -> HttpRule {
        HttpRule {
            methods,
            ..self.clone()
        }
    }

    pub(crate) fn matches_path(&self, segments: &[Vec<u8>]) -> bool {
        segments.starts_with(&self.prefix)
    }

    pub(crate) fn allows_method(&self, method: &str) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|ms| ms.iter().any(|m| m == method))
    }
}

impl fmt::Display for HttpRule {
    /// The rule as the audit log names it: its url, then its methods if
    /// it restricts them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)?;
        if let Some(methods) = &self.methods {
            write!(f, " {}", methods.join(","))?;
        }
        Ok(())
    }
}

/// The percent-decoded segments of a parsed URL's path (after the WHATWG
/// parser has already resolved `.`, `..`, `%2e` and `%2e%2e`).
pub(crate) fn path_segments(url: &Url) -> Vec<Vec<u8>> {
    match url.path_segments() {
        Some(segments) => segments.map(percent_decode).collect(),
        None => Vec::new(),
    }
}

pub(crate) fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// An RFC 9110 token: what a method or header name may consist of.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
