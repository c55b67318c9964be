//! The `[[tcp]]` manifest section: where a tool may open TCP connections.
//!
//! ```toml
//! [[tcp]]
//! connect = "db.internal.example.com:5432"   # a DNS name and a port
//!
//! [[tcp]]
//! connect = "*.cache.example.com:6379"       # any name strictly under the suffix
//!
//! [[tcp]]
//! connect = "127.0.0.1:5432"                 # an IP address: "[::1]:5432" for IPv6
//!
//! [[tcp]]
//! connect = "10.20.0.0/16:9042"              # a network: "[fd00::/8]:9042" for IPv6
//! ```
//!
//! Without a `[[tcp]]` entry a tool has no sockets and no name lookup at all. Each entry
//! allows outgoing connections to one port of the hosts it names; nothing else (no UDP, no
//! `bind`, no `listen`) can be granted. The port is required: a rule for "any port" of a
//! host is too easy to write by accident.
//!
//! Hosts are read the way a URL's host is (see [`HostPattern::parse_host`]): lowercase,
//! IDNA, trailing dot removed, and IPv4 numeric forms such as `2130706433` or `0x7f.1` read
//! as the address they are, so a rule cannot name one address and mean another.
//!
//! # Example
//!
//! ```
//! use warden_host_api::http::HostPattern;
//! use warden_host_api::capability::FieldError;
//! use warden_host_api::sockets::manifest::{RawTcpRule, resolve_rules};
//!
//! #[derive(serde::Deserialize)]
//! struct Doc {
//!     tcp: Vec<RawTcpRule>,
//! }
//!
//! let doc: Doc = toml::from_str(r#"
//!     [[tcp]]
//!     connect = "DB.Example.com.:5432"
//!     [[tcp]]
//!     connect = "[::1]:6379"
//! "#).unwrap();
//! let rules = resolve_rules(&doc.tcp).unwrap();
//! assert_eq!(rules[0].host(), &HostPattern::Exact("db.example.com".into()));
//! assert_eq!(rules[0].port(), 5432);
//! assert_eq!(rules[1].to_string(), r#"connect = "[::1]:6379""#);
//!
//! let doc: Doc = toml::from_str("[[tcp]]\nconnect = \"db.example.com\"").unwrap();
//! let err = resolve_rules(&doc.tcp).unwrap_err();
//! assert_eq!(err.field(), "tcp[0].connect");
//! ```

use crate::capability::FieldError;
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::http::HostPattern;

/// One validated `[[tcp]]` entry: the hosts it names and the one port it allows.
///
/// ```toml
/// [[tcp]]
/// connect = "db.example.com:5432"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpRule {
    connect: String,
    host: HostPattern,
    port: u16,
}

impl TcpRule {
    /// Parses a `connect` value: `host:port`, where the host is a DNS name, `*.suffix`, an
    /// IPv4 address or network (`10.0.0.5`, `10.0.0.0/8`), or an IPv6 address or network in
    /// brackets (`[::1]`, `[fd00::/8]`), and the port is from 1 to 65535.
    pub fn parse(connect: &str) -> Result<TcpRule, ConnectError> {
        let err = |kind| ConnectError {
            connect: connect.to_owned(),
            kind,
        };
        if connect.contains("://") {
            return Err(err(ConnectErrorKind::Scheme));
        }
        let (host, network, port) = split(connect).map_err(err)?;
        let port = match port {
            "" => return Err(err(ConnectErrorKind::NoPort)),
            p => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0 && !port.starts_with('+'))
                .ok_or_else(|| err(ConnectErrorKind::BadPort(p.to_owned())))?,
        };
        if host.is_empty() || host == "[]" {
            return Err(err(ConnectErrorKind::EmptyHost));
        }
        let host = match network {
            Some(len) => HostPattern::Cidr(parse_network(host, len).map_err(err)?),
            None => HostPattern::parse_host(host).ok_or_else(|| {
                err(if host.contains('*') {
                    ConnectErrorKind::BadWildcard(host.to_owned())
                } else {
                    ConnectErrorKind::BadHost(host.to_owned())
                })
            })?,
        };
        Ok(TcpRule {
            connect: connect.to_owned(),
            host,
            port,
        })
    }

    /// The `connect` value as written in the manifest.
    pub fn connect(&self) -> &str {
        &self.connect
    }

    /// The hosts this rule names: [`HostPattern::Exact`] or [`HostPattern::Suffix`] for
    /// names, [`HostPattern::Ip`] or [`HostPattern::Cidr`] for addresses.
    pub fn host(&self) -> &HostPattern {
        &self.host
    }

    /// The one port this rule allows.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the rule names hosts by DNS name (rather than by address), so that a
    /// connection needs a lookup of such a name first.
    pub fn names_hosts(&self) -> bool {
        matches!(self.host, HostPattern::Exact(_) | HostPattern::Suffix(_))
    }
}

impl fmt::Display for TcpRule {
    /// `connect = "db.example.com:5432"`, as the manifest line reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connect = {:?}", self.connect)
    }
}

/// Splits `host:port` into the host (IPv6 in brackets; a network's address without its
/// prefix length), the prefix length of a network if there is one, and the port text.
fn split(connect: &str) -> Result<(&str, Option<&str>, &str), ConnectErrorKind> {
    let (host, rest) = if connect.starts_with('[') {
        let close = connect.find(']').ok_or(ConnectErrorKind::Unclosed)?;
        connect.split_at(close + 1)
    } else {
        match connect.rfind(':') {
            // `::1:5432`: which colon starts the port cannot be told.
            Some(colon) if connect[..colon].contains(':') => {
                return Err(ConnectErrorKind::UnbracketedIpv6);
            }
            Some(colon) => connect.split_at(colon),
            None => return Err(ConnectErrorKind::NoPort),
        }
    };
    // A network is `10.0.0.0/8`, `[fd00::/8]` or `[fd00::]/8` (as `[[http]]` writes it).
    let (host, network, rest) = if let Some((ip, len)) = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.split_once('/'))
    {
        (ip, Some(len), rest)
    } else if let Some(after) = rest.strip_prefix('/') {
        let (len, port) = after.split_at(after.find(':').unwrap_or(after.len()));
        (host, Some(len), port)
    } else if let Some((ip, len)) = host.split_once('/') {
        (ip, Some(len), rest)
    } else {
        (host, None, rest)
    };
    let port = match rest.strip_prefix(':') {
        Some(port) => port,
        None if rest.is_empty() => return Err(ConnectErrorKind::NoPort),
        None => return Err(ConnectErrorKind::AfterHost(rest.to_owned())),
    };
    Ok((host, network, port))
}

/// `host` is an IP literal, IPv6 with or without its brackets; `len` the prefix length as
/// written.
fn parse_network(host: &str, len: &str) -> Result<IpNet, ConnectErrorKind> {
    let ip_text = host.trim_start_matches('[').trim_end_matches(']');
    let (shown, bracketed) = if ip_text.contains(':') {
        (format!("[{ip_text}]/{len}"), format!("[{ip_text}]"))
    } else {
        (format!("{ip_text}/{len}"), ip_text.to_owned())
    };
    let bad = |reason: String| ConnectErrorKind::BadNetwork {
        network: shown.clone(),
        reason,
    };
    let ip: IpAddr = match HostPattern::parse_host(&bracketed) {
        Some(HostPattern::Ip(ip)) => ip,
        _ => return Err(bad(format!("{ip_text:?} is not an IP address"))),
    };
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("{len:?} is not a prefix length")));
    }
    let net: IpNet = format!("{ip}/{len}")
        .parse()
        .map_err(|_| bad("prefix length too long".to_owned()))?;
    if net.trunc() != net {
        return Err(bad(format!(
            "host bits are set; did you mean {}?",
            net.trunc()
        )));
    }
    Ok(net)
}

/// A `connect` value that is not `host:port`. `Display` carries the value at fault (the
/// whole value, or the part of it that is wrong) and says what would be valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    /// The value as written.
    pub connect: String,
    /// What is wrong with it.
    pub kind: ConnectErrorKind,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ConnectErrorKind::*;
        match &self.kind {
            // These name the part at fault already.
            BadPort(_) | BadWildcard(_) | BadHost(_) | BadNetwork { .. } => {
                write!(f, "{}", self.kind)
            }
            _ => write!(f, "{:?}: {}", self.connect, self.kind),
        }
    }
}

impl std::error::Error for ConnectError {}

/// What is wrong with a `connect` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectErrorKind {
    /// A URL was written (`tcp://db:5432`), where only `host:port` belongs.
    #[error("expected \"host:port\" without a scheme, as in \"db.example.com:5432\"")]
    Scheme,
    /// There is no `:port`, or it is empty.
    #[error(
        "expected \"host:port\" with a port from 1 to 65535, as in \"db.example.com:5432\" (IPv6 in brackets: \"[::1]:5432\")"
    )]
    NoPort,
    /// The port is not a number from 1 to 65535.
    #[error("port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    /// An IPv6 address without brackets, whose colons cannot be told from the port's.
    #[error("an IPv6 address must be in brackets, as in \"[::1]:5432\"")]
    UnbracketedIpv6,
    /// A `[` without its `]`.
    #[error("\"[\" is not closed: an IPv6 address is written \"[::1]:5432\"")]
    Unclosed,
    /// Something other than `:port` follows a bracketed address (`[::1]x:5`).
    #[error("unexpected {0:?} after the host: expected \":port\"")]
    AfterHost(String),
    /// Nothing before the `:port`.
    #[error("the host is empty: expected \"host:port\", as in \"db.example.com:5432\"")]
    EmptyHost,
    /// A `*` anywhere but as the whole first label of a domain name.
    #[error(
        "bad wildcard {0:?}: only a leading \"*.\" followed by a domain name is allowed, as in \"*.example.com:5432\""
    )]
    BadWildcard(String),
    /// The host is neither a DNS name nor an IP address.
    #[error(
        "{0:?} is not a host: expected a DNS name (\"db.example.com\"), \"*.example.com\", an IP address (\"10.0.0.5\", \"[::1]\") or a network (\"10.0.0.0/8\", \"[fd00::/8]\")"
    )]
    BadHost(String),
    /// A network whose address or prefix length is wrong, or whose host bits are set.
    #[error("bad network {network:?}: {reason}")]
    BadNetwork {
        /// The network as written.
        network: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One `[[tcp]]` entry as written, before validation.
///
/// ```toml
/// [[tcp]]
/// connect = "db.example.com:5432"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcpRule {
    /// `connect = "host:port"`: where connections may go.
    pub connect: Spanned<String>,
}

/// Validates `[[tcp]]` entries, in manifest order; stops at the first invalid one.
pub fn resolve_rules(raw: &[RawTcpRule]) -> Result<Vec<TcpRule>, TcpError> {
    raw.iter()
        .enumerate()
        .map(|(index, entry)| {
            TcpRule::parse(entry.connect.get_ref()).map_err(|reason| TcpError::Connect {
                index,
                span: entry.connect.span(),
                reason,
            })
        })
        .collect()
}

/// A `[[tcp]]` entry that failed validation.
///
/// [`field`](Self::field) and [`span`](Self::span) say where; `Display` says what, in
/// lowercase and without the field name, so the caller can prefix file, line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TcpError {
    /// `tcp[index].connect` is not a valid `host:port`.
    #[error("{reason}")]
    Connect {
        /// Position of the entry among the `[[tcp]]` entries.
        index: usize,
        /// Byte range of the value in the manifest source.
        span: Range<usize>,
        /// What is wrong with it.
        reason: ConnectError,
    },
}

impl FieldError for TcpError {
    /// The dotted manifest field the error is about, e.g. `tcp[1].connect`.
    fn field(&self) -> String {
        match self {
            TcpError::Connect { index, .. } => format!("tcp[{index}].connect"),
        }
    }

    /// Byte range of the offending value in the manifest source.
    fn span(&self) -> Range<usize> {
        match self {
            TcpError::Connect { span, .. } => span.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(connect: &str) -> (HostPattern, u16) {
        let rule = TcpRule::parse(connect).unwrap_or_else(|e| panic!("{connect}: {e}"));
        (rule.host().clone(), rule.port())
    }

    fn kind(connect: &str) -> ConnectErrorKind {
        match TcpRule::parse(connect) {
            Ok(rule) => panic!("{connect:?} parsed as {rule:?}"),
            Err(e) => e.kind,
        }
    }

    #[test]
    fn names_are_normalized() {
        let exact = |s: &str| HostPattern::Exact(s.into());
        assert_eq!(host("db.example.com:5432"), (exact("db.example.com"), 5432));
        assert_eq!(host("DB.Example.COM.:1"), (exact("db.example.com"), 1));
        assert_eq!(host("localhost:65535"), (exact("localhost"), 65535));
        assert_eq!(
            host("*.example.com:6379"),
            (HostPattern::Suffix("example.com".into()), 6379)
        );
        assert_eq!(
            host("bücher.example:80"),
            (exact("xn--bcher-kva.example"), 80)
        );
    }

    #[test]
    fn addresses_in_every_spelling_are_the_address() {
        let ip = |s: &str| HostPattern::Ip(s.parse().unwrap());
        assert_eq!(host("127.0.0.1:5432"), (ip("127.0.0.1"), 5432));
        // WHATWG reads these as 127.0.0.1, and so does a guest's lookup.
        assert_eq!(host("2130706433:5432").0, ip("127.0.0.1"));
        assert_eq!(host("0x7f.1:5432").0, ip("127.0.0.1"));
        assert_eq!(host("0177.0.0.1:5432").0, ip("127.0.0.1"));
        assert_eq!(host("[::1]:5432"), (ip("::1"), 5432));
        assert_eq!(host("[::ffff:127.0.0.1]:5432").0, ip("127.0.0.1"));
        assert_eq!(host("[FD00::1]:1").0, ip("fd00::1"));
    }

    #[test]
    fn networks() {
        let net = |s: &str| HostPattern::Cidr(s.parse().unwrap());
        assert_eq!(host("10.0.0.0/8:5432"), (net("10.0.0.0/8"), 5432));
        assert_eq!(host("[fd00::/8]:5432"), (net("fd00::/8"), 5432));
        assert_eq!(host("[fd00::]/8:5432"), (net("fd00::/8"), 5432));
        assert_eq!(host("0.0.0.0/0:443").0, net("0.0.0.0/0"));
        assert_eq!(
            kind("10.0.0.1/8:5432"),
            ConnectErrorKind::BadNetwork {
                network: "10.0.0.1/8".into(),
                reason: "host bits are set; did you mean 10.0.0.0/8?".into()
            }
        );
        assert!(matches!(
            kind("10.0.0.0/33:5432"),
            ConnectErrorKind::BadNetwork { .. }
        ));
        assert!(matches!(
            kind("db.example.com/8:5432"),
            ConnectErrorKind::BadNetwork { .. }
        ));
        assert!(matches!(
            kind("10.0.0.0/:5432"),
            ConnectErrorKind::BadNetwork { .. }
        ));
    }

    #[test]
    fn ports() {
        assert_eq!(kind("db.example.com"), ConnectErrorKind::NoPort);
        assert_eq!(kind("db.example.com:"), ConnectErrorKind::NoPort);
        assert_eq!(kind("[::1]"), ConnectErrorKind::NoPort);
        assert_eq!(kind("db:0"), ConnectErrorKind::BadPort("0".into()));
        assert_eq!(kind("db:65536"), ConnectErrorKind::BadPort("65536".into()));
        assert_eq!(kind("db:+80"), ConnectErrorKind::BadPort("+80".into()));
        assert_eq!(kind("db:http"), ConnectErrorKind::BadPort("http".into()));
        assert_eq!(kind("db:*"), ConnectErrorKind::BadPort("*".into()));
    }

    #[test]
    fn malformed_hosts() {
        assert_eq!(kind("::1:5432"), ConnectErrorKind::UnbracketedIpv6);
        assert_eq!(kind("fd00::1"), ConnectErrorKind::UnbracketedIpv6);
        assert_eq!(kind("[::1:5432"), ConnectErrorKind::Unclosed);
        assert_eq!(kind("[::1]x:5"), ConnectErrorKind::AfterHost("x:5".into()));
        assert_eq!(kind(":5432"), ConnectErrorKind::EmptyHost);
        assert_eq!(kind("[]:5432"), ConnectErrorKind::EmptyHost);
        assert_eq!(kind("tcp://db:5432"), ConnectErrorKind::Scheme);
        assert_eq!(kind("*:5432"), ConnectErrorKind::BadWildcard("*".into()));
        assert_eq!(
            kind("*.10.0.0.1:5432"),
            ConnectErrorKind::BadWildcard("*.10.0.0.1".into())
        );
        assert_eq!(
            kind("a.*.com:1"),
            ConnectErrorKind::BadWildcard("a.*.com".into())
        );
        assert_eq!(
            kind("*example.com:1"),
            ConnectErrorKind::BadWildcard("*example.com".into())
        );
        assert_eq!(
            kind("user@db:1"),
            ConnectErrorKind::BadHost("user@db".into())
        );
        assert_eq!(kind("d b:1"), ConnectErrorKind::BadHost("d b".into()));
        assert_eq!(
            kind("[not-ip]:1"),
            ConnectErrorKind::BadHost("[not-ip]".into())
        );
    }

    #[test]
    fn errors_name_the_field_and_say_what_is_valid() {
        #[derive(Deserialize)]
        struct Doc {
            tcp: Vec<RawTcpRule>,
        }
        let src = "[[tcp]]\nconnect = \"db:5432\"\n[[tcp]]\nconnect = \"db\"\n";
        let doc: Doc = toml::from_str(src).unwrap();
        let err = resolve_rules(&doc.tcp).unwrap_err();
        assert_eq!(err.field(), "tcp[1].connect");
        assert_eq!(&src[err.span()], "\"db\"");
        assert_eq!(
            err.to_string(),
            "\"db\": expected \"host:port\" with a port from 1 to 65535, as in \
             \"db.example.com:5432\" (IPv6 in brackets: \"[::1]:5432\")"
        );
    }
}
