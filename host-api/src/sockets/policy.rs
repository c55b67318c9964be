//! The `[[tcp]]` decisions, apart from any socket: which names a task may look up, and
//! which addresses it may connect to given what its lookups returned.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::manifest::TcpRule;
use crate::http::{AddrClass, HostPattern};

/// The `[[tcp]]` rules of one task. [`TcpPolicy::default`] has none and allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpPolicy {
    rules: Vec<TcpRule>,
}

/// A lookup or connection that a rule allowed, and which rule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    index: usize,
    rule: String,
    via: Option<String>,
}

impl Allowed {
    /// The index of the rule among the manifest's `[[tcp]]` entries.
    pub fn index(&self) -> usize {
        self.index
    }

    /// For a connection allowed by a rule that names hosts by DNS name: the name whose
    /// lookup returned the address.
    pub fn via(&self) -> Option<&str> {
        self.via.as_deref()
    }
}

impl fmt::Display for Allowed {
    /// The audit `rule` text: `tcp[0] connect = "db.example.com:5432"`, then for a
    /// connection by name `(93.184.216.34 from the lookup of db.example.com)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tcp[{}] {}", self.index, self.rule)?;
        if let Some(name) = &self.via {
            write!(f, " (an address of {name} as this task looked it up)")?;
        }
        Ok(())
    }
}

/// Why a socket call was refused, in words the user can act on: where a manifest line
/// would allow it, the message says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SocketDenied {
    /// The manifest has no `[[tcp]]` entry: no sockets, no lookups.
    #[error(
        "no [[tcp]] rules: sockets and name lookup are off; to allow a connection, add a [[tcp]] entry with connect = \"host:port\""
    )]
    NoRules,
    /// No rule names this host.
    #[error(
        "no [[tcp]] rule names {name:?}; to allow this lookup, add a [[tcp]] entry with connect = \"{name}:<port>\""
    )]
    Lookup {
        /// The name as the guest asked for it.
        name: String,
    },
    /// No rule allows this address and port.
    #[error(
        "{addr}{written} is not allowed: {reason}; to allow this connection, add a [[tcp]] entry with connect = \"{addr}\""
    )]
    Connect {
        /// The address, IPv4-mapped IPv6 read as the IPv4 address it is.
        addr: SocketAddr,
        /// ` (written as [::ffff:…]:port)` when the guest wrote it otherwise, or empty.
        written: String,
        /// The nearest miss among the rules.
        reason: String,
    },
    /// A name that a rule allows resolved to a special address, which only a rule naming
    /// the address may reach.
    #[error(
        "{addr} is a {class} address that {name} resolved to, and tcp[{index}] names only {name}; to allow this connection, add a [[tcp]] entry with connect = \"{addr}\""
    )]
    Special {
        /// The address and port.
        addr: SocketAddr,
        /// Which kind of special address it is.
        class: AddrClass,
        /// The name whose lookup returned it.
        name: String,
        /// The rule that names the name.
        index: usize,
    },
    /// UDP, which no manifest entry can grant.
    #[error("no manifest entry allows UDP: [[tcp]] grants outgoing TCP connections only")]
    Udp,
    /// An explicit bind or a listen, which no manifest entry can grant.
    #[error(
        "no manifest entry allows {0}: [[tcp]] grants outgoing connections only (connect binds a local port by itself)"
    )]
    Inbound(&'static str),
}

impl TcpPolicy {
    /// The rules of one task, in manifest order.
    pub fn new(rules: Vec<TcpRule>) -> TcpPolicy {
        TcpPolicy { rules }
    }

    /// The rules, in manifest order.
    pub fn rules(&self) -> &[TcpRule] {
        &self.rules
    }

    /// Whether there are no rules, so that sockets and name lookup are off.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `ip-name-lookup.resolve-addresses` of `name` is allowed: some rule must
    /// name it (exactly, by suffix, or, for an IP literal, by address or network).
    pub fn check_lookup(&self, name: &str) -> Result<Allowed, SocketDenied> {
        if self.is_empty() {
            return Err(SocketDenied::NoRules);
        }
        self.rules
            .iter()
            .position(|r| r.host().matches_name(name))
            .map(|index| self.allowed(index, None))
            .ok_or_else(|| SocketDenied::Lookup {
                name: name.to_owned(),
            })
    }

    /// Whether a connection to `addr` is allowed, given what this task's lookups returned.
    ///
    /// Allowed when a rule with that port names the address or a network holding it, or
    /// names a host that this task looked up and got the address for, unless the address
    /// is special ([`AddrClass`]: loopback, private, metadata ...): a name alone never
    /// reaches those, as with `[[http]]`.
    pub fn check_connect(
        &self,
        addr: SocketAddr,
        resolved: &Resolved,
    ) -> Result<Allowed, SocketDenied> {
        if self.is_empty() {
            return Err(SocketDenied::NoRules);
        }
        let ip = addr.ip().to_canonical();
        let port = addr.port();
        let names = resolved.names_of(ip);
        let mut special = None;
        let mut miss: Option<String> = None;
        for (index, rule) in self.rules.iter().enumerate() {
            let via = match rule.host() {
                HostPattern::Ip(_) | HostPattern::Cidr(_) => {
                    if !rule.host().names_addr(ip) {
                        continue;
                    }
                    None
                }
                _ => match names.iter().find(|n| rule.host().matches_name(n)) {
                    Some(name) => Some(name.clone()),
                    None => continue,
                },
            };
            if rule.port() != port {
                miss.get_or_insert_with(|| {
                    format!(
                        "port {port} is not the port {} of tcp[{index}]",
                        rule.port()
                    )
                });
                continue;
            }
            match via {
                None => return Ok(self.allowed(index, None)),
                Some(name) => match AddrClass::of(addr.ip()) {
                    None => return Ok(self.allowed(index, Some(name))),
                    // A later rule may still name the address itself.
                    Some(class) => {
                        special.get_or_insert(SocketDenied::Special {
                            addr: SocketAddr::new(ip, port),
                            class,
                            name,
                            index,
                        });
                    }
                },
            }
        }
        if let Some(special) = special {
            return Err(special);
        }
        let reason = miss.unwrap_or_else(|| {
            format!("no [[tcp]] rule names {ip}, and no name this task looked up resolved to it")
        });
        Err(SocketDenied::Connect {
            addr: SocketAddr::new(ip, port),
            written: if ip == addr.ip() {
                String::new()
            } else {
                format!(" (written as {addr})")
            },
            reason,
        })
    }

    fn allowed(&self, index: usize, via: Option<String>) -> Allowed {
        Allowed {
            index,
            rule: self.rules[index].to_string(),
            via,
        }
    }
}

/// What this task's lookups returned: each address with the names that resolved to it.
///
/// Only lookups that a rule allowed are learned, and only the addresses the guest was
/// given, so that a connection by name goes to an address this task really got for it.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    names: HashMap<IpAddr, Vec<String>>,
}

impl Resolved {
    /// Learns that `name` resolved to `addr`.
    pub fn learn(&mut self, name: &str, addr: IpAddr) {
        let names = self.names.entry(addr.to_canonical()).or_default();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }

    /// The names that resolved to `addr`, in the order they were looked up.
    pub fn names_of(&self, addr: IpAddr) -> &[String] {
        self.names
            .get(&addr.to_canonical())
            .map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &[&str]) -> TcpPolicy {
        TcpPolicy::new(rules.iter().map(|r| TcpRule::parse(r).unwrap()).collect())
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn nothing_without_rules() {
        let p = TcpPolicy::default();
        assert_eq!(p.check_lookup("localhost"), Err(SocketDenied::NoRules));
        assert_eq!(
            p.check_connect(addr("1.1.1.1:53"), &Resolved::default()),
            Err(SocketDenied::NoRules)
        );
    }

    #[test]
    fn lookups_only_for_names_a_rule_names() {
        let p = policy(&[
            "db.example.com:5432",
            "*.cache.example.com:6379",
            "10.0.0.0/8:1",
            "[::1]:2",
        ]);
        assert_eq!(p.check_lookup("db.example.com").unwrap().index(), 0);
        assert_eq!(p.check_lookup("DB.EXAMPLE.COM.").unwrap().index(), 0);
        assert_eq!(p.check_lookup("a.b.cache.example.com").unwrap().index(), 1);
        // An IP literal is "resolved" to itself: allowed when a rule names the address.
        assert_eq!(p.check_lookup("10.1.2.3").unwrap().index(), 2);
        assert_eq!(p.check_lookup("::1").unwrap().index(), 3);
        assert_eq!(p.check_lookup("[::1]").unwrap().index(), 3);
        for name in [
            "example.com",
            "cache.example.com",
            "db.example.com.evil.net",
            "evildb.example.com",
            "localhost",
            "127.0.0.1",
            "2130706433",
            "",
        ] {
            let denied = p.check_lookup(name).unwrap_err();
            assert_eq!(
                denied,
                SocketDenied::Lookup {
                    name: name.to_owned()
                },
                "{name}"
            );
        }
        assert_eq!(
            p.check_lookup("evil.net").unwrap_err().to_string(),
            "no [[tcp]] rule names \"evil.net\"; to allow this lookup, add a [[tcp]] entry with \
             connect = \"evil.net:<port>\""
        );
    }

    #[test]
    fn addresses_by_rule() {
        let p = policy(&["127.0.0.1:5432", "10.0.0.0/8:9042", "[::1]:6379"]);
        let none = Resolved::default();
        assert_eq!(
            p.check_connect(addr("127.0.0.1:5432"), &none)
                .unwrap()
                .index(),
            0
        );
        assert_eq!(
            p.check_connect(addr("10.9.8.7:9042"), &none)
                .unwrap()
                .to_string(),
            "tcp[1] connect = \"10.0.0.0/8:9042\""
        );
        assert_eq!(
            p.check_connect(addr("[::1]:6379"), &none).unwrap().index(),
            2
        );
        // The mapped form is the IPv4 address it carries.
        assert_eq!(
            p.check_connect(addr("[::ffff:127.0.0.1]:5432"), &none)
                .unwrap()
                .index(),
            0
        );
        assert_eq!(
            p.check_connect(addr("127.0.0.1:5433"), &none)
                .unwrap_err()
                .to_string(),
            "127.0.0.1:5433 is not allowed: port 5433 is not the port 5432 of tcp[0]; to allow \
             this connection, add a [[tcp]] entry with connect = \"127.0.0.1:5433\""
        );
        assert_eq!(
            p.check_connect(addr("127.0.0.2:5432"), &none)
                .unwrap_err()
                .to_string(),
            "127.0.0.2:5432 is not allowed: no [[tcp]] rule names 127.0.0.2, and no name this \
             task looked up resolved to it; to allow this connection, add a [[tcp]] entry with \
             connect = \"127.0.0.2:5432\""
        );
    }

    #[test]
    fn other_spellings_of_loopback_are_not_a_public_rule() {
        let p = policy(&["93.184.216.34:80"]);
        let none = Resolved::default();
        for a in [
            "[::ffff:127.0.0.1]:80",
            "[::127.0.0.1]:80",
            "[64:ff9b::7f00:1]:80",
            "[2002:7f00:1::]:80",
            "[::1]:80",
            "127.0.0.1:80",
            "0.0.0.0:80",
        ] {
            assert!(
                matches!(
                    p.check_connect(addr(a), &none),
                    Err(SocketDenied::Connect { .. })
                ),
                "{a}"
            );
        }
        let shown = p
            .check_connect(addr("[::ffff:127.0.0.1]:80"), &none)
            .unwrap_err()
            .to_string();
        assert!(
            shown.starts_with("127.0.0.1:80 (written as [::ffff:127.0.0.1]:80) is not allowed"),
            "{shown}"
        );
    }

    #[test]
    fn names_reach_what_they_resolved_to_if_public() {
        let p = policy(&["db.example.com:5432", "*.example.org:443"]);
        let mut r = Resolved::default();
        assert!(p.check_connect(addr("93.184.216.34:5432"), &r).is_err());
        r.learn("db.example.com", "93.184.216.34".parse().unwrap());
        let ok = p.check_connect(addr("93.184.216.34:5432"), &r).unwrap();
        assert_eq!(ok.via(), Some("db.example.com"));
        assert_eq!(
            ok.to_string(),
            "tcp[0] connect = \"db.example.com:5432\" (an address of db.example.com as this task \
             looked it up)"
        );
        // The name's port only.
        assert!(p.check_connect(addr("93.184.216.34:443"), &r).is_err());
        r.learn("www.example.org", "93.184.216.35".parse().unwrap());
        assert_eq!(
            p.check_connect(addr("93.184.216.35:443"), &r)
                .unwrap()
                .index(),
            1
        );
    }

    #[test]
    fn a_name_that_resolves_to_loopback_needs_the_address_named() {
        let mut r = Resolved::default();
        r.learn("localhost", "127.0.0.1".parse().unwrap());
        r.learn("db.example.com", "169.254.169.254".parse().unwrap());
        r.learn("db.example.com", "10.1.1.1".parse().unwrap());
        let p = policy(&["localhost:5432", "db.example.com:5432"]);
        let err = p.check_connect(addr("127.0.0.1:5432"), &r).unwrap_err();
        assert_eq!(
            err.to_string(),
            "127.0.0.1:5432 is a loopback address that localhost resolved to, and tcp[0] names \
             only localhost; to allow this connection, add a [[tcp]] entry with connect = \
             \"127.0.0.1:5432\""
        );
        assert!(matches!(
            p.check_connect(addr("169.254.169.254:5432"), &r),
            Err(SocketDenied::Special {
                class: AddrClass::Metadata,
                ..
            })
        ));
        assert!(matches!(
            p.check_connect(addr("10.1.1.1:5432"), &r),
            Err(SocketDenied::Special {
                class: AddrClass::Private,
                ..
            })
        ));
        // Named explicitly, it is reachable.
        let p = policy(&["localhost:5432", "127.0.0.1:5432"]);
        assert_eq!(
            p.check_connect(addr("127.0.0.1:5432"), &r).unwrap().index(),
            1
        );
    }
}
