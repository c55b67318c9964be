//! Network egress: the `[[http]]` rule engine.
//!
//! A tool reaches only the endpoints its manifest names. Nothing is allowed
//! by default: a task with no `[[http]]` rules can make no request at all.
//! Each rule allows requests that match *all* of its parts:
//!
//! - **scheme**: `http` or `https`, nothing else;
//! - **host**: an exact DNS name (`api.github.com`), `*.suffix` (any name
//!   strictly under `suffix` at a label boundary: `*.example.com` matches
//!   `a.b.example.com` but not `example.com`, `evilexample.com` or
//!   `example.com.evil.net`), an IP literal or a network (`http://10.0.0.0/8`).
//!   Names are compared after WHATWG normalization: lowercase, IDNA, trailing
//!   dot removed, and IPv4 written in decimal, octal or hex (`2130706433`,
//!   `0x7f.1`) read as the address it is;
//! - **port**: exactly the one written, or 80/443 from the scheme;
//! - **path prefix**: by whole segments after `.`/`..` (also percent-encoded)
//!   are resolved, so `/repos/` allows `/repos/x` but not `/reposX` nor
//!   `/repos/../admin`;
//! - **methods**: the uppercase methods listed, or all when absent.
//!
//! A request URL with userinfo (`https://api.github.com@evil.net/`) is
//! refused outright, whatever the rules say: it is the classic way to make a
//! URL read as one host and go to another.
//!
//! The check happens twice. [`Egress::check`] looks at the request before
//! DNS; [`Egress::check_addr`] looks at each address the host resolved to,
//! because a public name can resolve to `127.0.0.1`. Loopback, private,
//! link-local, unique-local, CGNAT, broadcast, multicast, unspecified and
//! cloud-metadata addresses (and their IPv4-mapped, IPv4-compatible, NAT64
//! and 6to4 IPv6 forms) are refused unless the rule that matched names that
//! IP, or a network containing it, explicitly: `http://localhost:8080/`
//! alone does not reach `127.0.0.1`, `http://127.0.0.1:8080/` does. The
//! caller must check the very address it then connects to, so that a second
//! DNS answer cannot swap it. [`check_header`] refuses
//! header names and values that could split a request.
//!
//! A rule with `approval = "required"` ([`crate::approval`]) makes every
//! request it matches whose method changes something (anything but `GET`,
//! `HEAD` and `OPTIONS`) wait for the task's approver before DNS, so a
//! refused request reaches nobody; a refusal is `HTTP-request-denied` with a
//! deny `http.end` record.
//!
//! ```toml
//! [[http]]
//! url = "https://api.github.com/repos/"
//! methods = ["GET"]
//!
//! [[http]]
//! url = "http://127.0.0.1:8080/"   # a local test server, named explicitly
//! ```
//!
//! ```
//! use warden_host_api::http::{Egress, HttpRule};
//!
//! let egress = Egress::new(vec![
//!     HttpRule::parse("https://api.github.com/repos/", Some(vec!["GET".into()]))?,
//!     HttpRule::parse("http://127.0.0.1:8080/", None)?,
//! ]);
//!
//! let allowed = egress.check("GET", "https://API.GITHUB.COM./repos/rust-lang/rust")?;
//! assert_eq!(allowed.to_string(), "http[0] https://api.github.com/repos/ GET");
//! egress.check_addr(&allowed, "140.82.112.6".parse()?)?;
//! // A public name that resolves to loopback is not the rule's business.
//! assert!(egress.check_addr(&allowed, "127.0.0.1".parse()?).is_err());
//!
//! assert!(egress.check("GET", "https://api.github.com/repos/../admin").is_err());
//! assert!(egress.check("POST", "https://api.github.com/repos/x").is_err());
//! assert!(egress.check("GET", "https://api.github.com@evil.net/").is_err());
//!
//! // Loopback is reachable only through the rule that names it.
//! let local = egress.check("POST", "http://127.0.0.1:8080/echo")?;
//! egress.check_addr(&local, "127.0.0.1".parse()?)?;
//! assert!(egress.check("GET", "http://127.0.0.1:8081/").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod addr;
mod coding;
mod grant;
mod host;
pub mod manifest;
mod rules;
mod send;
mod state;
#[cfg(test)]
mod tests;

pub use addr::AddrClass;
pub use grant::{DeclaredHttp, Http, HttpNarrowing, HttpWire};
pub(crate) use host::add_to_linker;
pub use rules::{HostPattern, HttpRule, RuleError};
pub use send::{Hooks, HttpTask};
pub use state::HttpState;

use rules::{RequestHost, is_token, path_segments};
use std::fmt;
use std::net::IpAddr;
use url::Url;

/// The `[[http]]` rules of one task. [`Egress::default`] has none and
/// allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Egress {
    rules: Vec<HttpRule>,
}

/// A request that [`Egress::check`] let through, and the rule that did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    index: usize,
    rule: String,
    url: String,
    host: String,
    port: u16,
}

impl Allowed {
    /// The index of the matching rule in the manifest's `[[http]]` list.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The request URL as it was checked: normalized, without fragment.
    /// Send this, not the guest's text, so that no other parser can read
    /// the guest's URL differently from the check.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The host that was checked: a lowercase DNS name without trailing dot,
    /// an IPv4 address, or an IPv6 address in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port that was checked, defaulted from the scheme.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for Allowed {
    /// The audit `rule` text: `http[0] https://api.github.com/repos/ GET`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http[{}] {}", self.index, self.rule)
    }
}

/// Why a request, address or header was refused, in words the user can act
/// on: where a manifest line would allow it, the message says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressDenied {
    /// The request URL does not parse.
    #[error("request url {url:?} is malformed: {reason}")]
    BadUrl {
        /// The URL as the guest sent it, any userinfo replaced by `***`.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// A scheme other than `http` or `https`.
    #[error("request url scheme {scheme:?} is not allowed: only http and https are")]
    Scheme {
        /// The scheme found.
        scheme: String,
    },
    /// The request URL carries a user or password, which is refused whatever
    /// the rules say (`https://api.github.com@evil.net/` goes to `evil.net`).
    #[error(
        "request url to {url} carries userinfo (`user@`): refused, as it disguises the real host; credentials belong in [[secrets]]"
    )]
    Userinfo {
        /// The URL with its userinfo removed, so no credential is repeated.
        url: String,
    },
    /// The method is not an HTTP token.
    #[error("request method {method:?} is not a valid http method")]
    BadMethod {
        /// The method as the guest sent it.
        method: String,
    },
    /// A path segment that hides a `.` or `..` behind an encoded slash
    /// (`a%2F..%2Fadmin`), which a server may decode and resolve.
    #[error("request path {path:?} hides a dot segment behind an encoded slash")]
    PathTraversal {
        /// The path as parsed.
        path: String,
    },
    /// No rule allows this request.
    #[error(
        "{method} {url} is not allowed: {reason}; to allow this request, add an [[http]] entry with {allow}"
    )]
    NotAllowed {
        /// The method as the guest sent it.
        method: String,
        /// The normalized request URL.
        url: String,
        /// The nearest miss among the rules, or that there are none.
        reason: String,
        /// The manifest keys that would allow exactly this request.
        allow: String,
    },
    /// The name resolved to an address that only a rule naming it may reach.
    #[error(
        "{addr} is a {class} address and {rule} does not name it; to allow this request, add an [[http]] entry whose url names {addr} or a network containing it"
    )]
    Address {
        /// The address the name resolved to.
        addr: IpAddr,
        /// Which kind of special address it is.
        class: AddrClass,
        /// The rule that matched the request, as in the audit log.
        rule: String,
    },
    /// The rule names an IP or network, and the address is not in it.
    #[error("{addr} is not the address or network that {rule} names")]
    AddressOutsideRule {
        /// The address the connection would go to.
        addr: IpAddr,
        /// The rule that matched the request, as in the audit log.
        rule: String,
    },
    /// An [`Allowed`] from another [`Egress`] (a host bug, never the guest's).
    #[error("no http rule at index {index}")]
    UnknownRule {
        /// The index the [`Allowed`] named.
        index: usize,
    },
    /// The guest set a header that the host sets itself for a secret on
    /// this URL: the tool must not choose what goes where a credential goes.
    #[error(
        "the request sets header `{header}`, which the host sets on this url for secret {secret:?} ({label}.inject); remove it from the request: the tool never holds the secret"
    )]
    SecretHeader {
        /// The header, lowercase.
        header: String,
        /// The secret's name.
        secret: String,
        /// `secrets[i] name`, as in the manifest.
        label: String,
    },
    /// An approval gate covers the request (or a secret injected into it),
    /// and the approver refused it or gave no answer in time.
    #[error("{rule}")]
    NotApproved {
        /// The rule that allowed the request and the approver's answer, as
        /// the `approval` record states them.
        rule: String,
    },
    /// A policy refused the request, or the use of a secret the host would add to it.
    #[error("{0}")]
    Policy(crate::policy::Denied),
    /// The response to a request that carried a secret is in a content or transfer coding
    /// that Warden does not decode, so the secret could not be redacted from its body.
    #[error(
        "the response to a request that carries {secrets} came with `{header}: {value}`, which warden does not decode: on a request that carries a secret, warden asks for `accept-encoding: {accept}`, decodes one of those itself so that the secret can be redacted, and refuses any other coding"
    )]
    Coding {
        /// `content-encoding` or `transfer-encoding`.
        header: String,
        /// Its value, as the server sent it.
        value: String,
        /// The secrets the request carried, e.g. `secret "github"`.
        secrets: String,
        /// What Warden asked for.
        accept: &'static str,
    },
    /// A header name or value that could split the request or smuggle another.
    #[error("request header {name:?} is not allowed: {reason}")]
    Header {
        /// The header name, lossily decoded.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl Egress {
    /// The egress rules of one task, in manifest order; the first that
    /// matches a request decides.
    pub fn new(rules: Vec<HttpRule>) -> Egress {
        Egress { rules }
    }

    /// The rules, in manifest order.
    pub fn rules(&self) -> &[HttpRule] {
        &self.rules
    }

    /// Checks a request before DNS: which rule allows `method` to `url`,
    /// or why none does.
    pub fn check(&self, method: &str, url: &str) -> Result<Allowed, EgressDenied> {
        if !is_token(method) {
            return Err(EgressDenied::BadMethod {
                method: method.to_owned(),
            });
        }
        // The WHATWG parser drops tabs and newlines, trims spaces and reads
        // `\` as `/`; a client that does not would send something other than
        // what was checked.
        if url
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
        {
            return Err(EgressDenied::BadUrl {
                url: without_userinfo(url).escape_debug().to_string(),
                reason: "it contains a space, backslash or control character".to_owned(),
            });
        }
        let parsed = Url::parse(url).map_err(|e| EgressDenied::BadUrl {
            url: without_userinfo(url),
            reason: e.to_string(),
        })?;
        let scheme = parsed.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(EgressDenied::Scheme {
                scheme: scheme.to_owned(),
            });
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            let mut shown = parsed.clone();
            let _ = shown.set_username("");
            let _ = shown.set_password(None);
            return Err(EgressDenied::Userinfo {
                url: shown.to_string(),
            });
        }
        let host = parsed
            .host()
            .and_then(RequestHost::from_url)
            .ok_or_else(|| EgressDenied::BadUrl {
                url: without_userinfo(url),
                reason: "empty host".to_owned(),
            })?;
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| EgressDenied::BadUrl {
                url: without_userinfo(url),
                reason: "no port".to_owned(),
            })?;
        let segments = path_segments(&parsed);
        if segments.iter().any(|s| hides_dot_segment(s)) {
            return Err(EgressDenied::PathTraversal {
                path: parsed.path().to_owned(),
            });
        }

        // The nearest miss makes the most useful message: a rule that got
        // as far as the method says more than one for another host. Only
        // its rank is kept while looking; the words are written on a deny.
        let mut nearest: Option<(u8, usize)> = None;
        for (index, rule) in self.rules.iter().enumerate() {
            let rank = if rule.scheme() != scheme || !rule.host().matches(&host) {
                0
            } else if rule.port() != port {
                1
            } else if !rule.matches_path(&segments) {
                2
            } else if !rule.allows_method(method) {
                3
            } else {
                let mut checked = parsed.clone();
                checked.set_fragment(None);
                // One spelling per host, so the Host header and SNI agree
                // with the rule that was checked.
                if let RequestHost::Domain(d) = &host {
                    let _ = checked.set_host(Some(d));
                }
                return Ok(Allowed {
                    index,
                    rule: rule.to_string(),
                    url: checked.into(),
                    host: host.to_string(),
                    port,
                });
            };
            if nearest.is_none_or(|(best, _)| rank > best) {
                nearest = Some((rank, index));
            }
        }
        let reason = match nearest {
            Some((0, _)) => format!("no rule names {scheme}://{host}"),
            Some((1, index)) => format!(
                "port {port} is not the port {} of http[{index}]",
                self.rules[index].port()
            ),
            Some((2, index)) => format!(
                "path {} is outside the prefix of http[{index}]",
                parsed.path()
            ),
            Some((_, index)) => {
                format!("method {method} is not among the methods of http[{index}]")
            }
            None => "the manifest has no [[http]] rules".to_owned(),
        };
        let default_port = if scheme == "https" { 443 } else { 80 };
        let port = if port == default_port {
            String::new()
        } else {
            format!(":{port}")
        };
        let mut shown = parsed.clone();
        shown.set_query(None);
        shown.set_fragment(None);
        Err(EgressDenied::NotAllowed {
            method: method.to_owned(),
            url: shown.to_string(),
            reason,
            allow: format!(
                "url = \"{scheme}://{host}{port}{}\" and methods = [\"{method}\"]",
                parsed.path()
            ),
        })
    }

    /// Checks an address the request's host resolved to, for the request
    /// that [`Egress::check`] allowed as `allowed`.
    ///
    /// Special addresses ([`AddrClass`]) are refused unless the rule names
    /// that IP or a network containing it; a rule that names an IP or a
    /// network allows no other address.
    pub fn check_addr(&self, allowed: &Allowed, addr: IpAddr) -> Result<(), EgressDenied> {
        let rule = self
            .rules
            .get(allowed.index)
            .ok_or(EgressDenied::UnknownRule {
                index: allowed.index,
            })?;
        let canonical = rules::canonical_ip(addr);
        let names_ip = matches!(rule.host(), HostPattern::Ip(_) | HostPattern::Cidr(_));
        if names_ip {
            return if rule.host().names_addr(canonical) {
                Ok(())
            } else {
                Err(EgressDenied::AddressOutsideRule {
                    addr,
                    rule: allowed.to_string(),
                })
            };
        }
        match addr::classify(addr) {
            None => Ok(()),
            Some(class) => Err(EgressDenied::Address {
                addr,
                class,
                rule: allowed.to_string(),
            }),
        }
    }
}

/// A decoded segment that hides a `.` or `..` from the WHATWG parser but
/// not from every server: behind an encoded slash (`a%2F..%2Fadmin`), an
/// encoded backslash, or a path parameter (`..;`, which Tomcat and others
/// resolve as `..`).
fn hides_dot_segment(segment: &[u8]) -> bool {
    segment
        .split(|b| *b == b'/' || *b == b'\\')
        .map(|part| part.split(|b| *b == b';').next().unwrap_or(part))
        .any(|part| part == b"." || part == b"..")
}

/// `url` with anything between `://` and an `@` in its authority replaced,
/// so that a malformed URL is never echoed with its password.
fn without_userinfo(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

/// Checks one request header: its name must be an HTTP token, and neither
/// name nor value may hold CR, LF or NUL, which would end the header early
/// and let the guest write a header or request of its own.
pub fn check_header(name: &str, value: &[u8]) -> Result<(), EgressDenied> {
    let denied = |reason| EgressDenied::Header {
        name: name.to_owned(),
        reason,
    };
    if name.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(denied("the name contains CR, LF or NUL"));
    }
    if !is_token(name) {
        return Err(denied("the name is not an HTTP token"));
    }
    if value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(denied("the value contains CR, LF or NUL"));
    }
    Ok(())
}
