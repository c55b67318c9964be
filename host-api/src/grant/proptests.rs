//! Property tests: random parents and random narrowings (many of which try to widen:
//! sibling and parent paths, `..`, `*.suffix` for an exact host, wider networks, other
//! ports and schemes, extra methods, larger limits, longer lifetimes). Whenever a child is
//! made, random requests check that whatever the child allows, the parent allows too,
//! through the checks the host itself makes ([`Egress`], [`TcpPolicy`]) or, for
//! directories, an oracle written apart from the code under test.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use super::*;
use crate::env::Env;
use crate::env::manifest::EnvSection;
use crate::fs::Fs;
use crate::fs::manifest::{Access, FsGrant};
use crate::http::Http;
use crate::http::manifest::{HttpGrant, RequestLimits};
use crate::http::{HostPattern, HttpRule};
use crate::limits::TaskLimits;
use crate::limits::manifest::Limits;
use crate::secrets::Secrets;
use crate::sockets::Resolved;
use crate::sockets::Tcp;
use crate::sockets::manifest::TcpRule;

const MIB: u64 = 1 << 20;

// ---- what parents and children are made of -------------------------------------------

/// Guest roots of parent grants: pairwise disjoint, `/a2` a sibling that shares a prefix.
const FS_ROOTS: &[&str] = &["/a", "/b", "/a2", "/w/x"];

/// Guest paths a narrowing asks for: inside, equal to, around and beside the roots, and
/// some that are not in normal form or try `..`.
const FS_ASKS: &[&str] = &[
    "/a", "/a/s", "/a/s/t", "/a2", "/a2/s", "/b", "/b/s", "/w", "/w/x", "/w/x/y", "/c", "/",
    "/a/../b", "/a/./s", "/a//s/", "/a/s/..", "/ab",
];

/// Hosts of `[[http]]` rules; `|/8` marks a network's prefix length, written after the
/// address as a rule writes it.
const HTTP_HOSTS: &[&str] = &[
    "api.example.com",
    "x.api.example.com",
    "*.example.com",
    "*.api.example.com",
    "example.com",
    "other.org",
    "10.0.0.5",
    "10.0.0.0|/8",
    "10.0.0.0|/24",
    "127.0.0.1",
    "[::1]",
    "[fd00::]|/8",
];

const HTTP_PREFIXES: &[&str] = &["/", "/r/", "/r/x/", "/api/"];
const METHODS: &[&str] = &["GET", "POST", "DELETE"];

const TCP_HOSTS: &[&str] = &[
    "db.internal",
    "*.internal",
    "*.x.internal",
    "10.0.0.5",
    "10.0.0.0/8",
    "10.0.0.0/24",
    "127.0.0.1",
    "[::1]",
];
const TCP_PORTS: &[u16] = &[5432, 6379];

const SECRETS: &[&str] = &["github", "signer", "aws"];
const ENV_NAMES: &[&str] = &["LANG", "MODE", "TZ", "HOME", "PATH"];

fn access(rw: bool) -> Access {
    if rw { Access::ReadWrite } else { Access::Read }
}

/// `url [METHODS]` of a rule built from the pools.
fn http_rule_text() -> impl Strategy<Value = String> {
    (
        select(&["http", "https"][..]),
        select(HTTP_HOSTS),
        select(&["", ":8080"][..]),
        select(HTTP_PREFIXES),
        proptest::option::of(subsequence(METHODS, 1..=METHODS.len())),
    )
        .prop_map(|(scheme, host, port, prefix, methods)| {
            let (host, network) = host.split_once('|').unwrap_or((host, ""));
            let url = format!("{scheme}://{host}{port}{network}{prefix}");
            match methods {
                Some(methods) => format!("{url} {}", methods.join(",")),
                None => url,
            }
        })
}

fn parse_http(text: &str) -> HttpRule {
    let (url, methods) = match text.split_once(' ') {
        Some((url, m)) => (url, Some(m.split(',').map(String::from).collect())),
        None => (text, None),
    };
    HttpRule::parse(url, methods).expect("the pools hold valid rules")
}

fn request_limits() -> impl Strategy<Value = RequestLimits> {
    (
        select(&[5u64, 30][..]),
        select(&[MIB, 10 * MIB][..]),
        select(&[MIB, 10 * MIB][..]),
    )
        .prop_map(|(timeout, request_body, response_body)| RequestLimits {
            timeout: Duration::from_secs(timeout),
            request_body,
            response_body,
        })
}

fn tcp_rule_text() -> impl Strategy<Value = String> {
    (select(TCP_HOSTS), select(TCP_PORTS)).prop_map(|(host, port)| format!("{host}:{port}"))
}

/// A manifest ceiling (or any valid set) made from the pools.
/// A secret's uses (inject, hmac, reveal), at least one: a manifest allows none without.
fn uses() -> impl Strategy<Value = (bool, bool, bool)> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(i, h, r)| {
        if i || h || r {
            (i, h, r)
        } else {
            (false, true, false)
        }
    })
}

/// `inject+hmac`, as a narrowing writes uses.
fn uses_text((inject, hmac, reveal): (bool, bool, bool)) -> String {
    [("inject", inject), ("hmac", hmac), ("reveal", reveal)]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect::<Vec<_>>()
        .join("+")
}

fn capabilities() -> impl Strategy<Value = Capabilities> {
    let fs = subsequence(FS_ROOTS, 0..=FS_ROOTS.len())
        .prop_flat_map(|roots| {
            let n = roots.len();
            (Just(roots), vec(any::<bool>(), n))
        })
        .prop_map(|(roots, rw)| {
            roots
                .into_iter()
                .zip(rw)
                .map(|(guest, rw)| FsGrant {
                    host: PathBuf::from(format!("/h{guest}")),
                    guest: guest.to_owned(),
                    access: access(rw),
                })
                .collect::<Vec<_>>()
        });
    let http = vec((http_rule_text(), request_limits()), 0..4).prop_map(|rules| {
        rules
            .into_iter()
            .map(|(text, limits)| HttpGrant {
                rule: parse_http(&text),
                limits,
            })
            .collect::<Vec<_>>()
    });
    let tcp = vec(tcp_rule_text(), 0..3).prop_map(|rules| {
        rules
            .iter()
            .map(|r| TcpRule::parse(r).unwrap())
            .collect::<Vec<_>>()
    });
    let secrets = (
        subsequence(SECRETS, 0..=SECRETS.len()),
        vec(uses(), SECRETS.len()),
    )
        .prop_map(|(names, uses)| {
            names
                .into_iter()
                .zip(uses)
                .map(|(name, (inject, hmac, reveal))| SecretGrant {
                    name: name.to_owned(),
                    inject,
                    hmac,
                    reveal,
                })
                .collect::<Vec<_>>()
        });
    let env = (
        subsequence(&["LANG", "MODE"][..], 0..=2),
        subsequence(&["TZ", "HOME"][..], 0..=2),
    )
        .prop_map(|(vars, pass)| EnvSection {
            vars: vars
                .into_iter()
                .map(|name| (name.to_owned(), format!("{name}-value")))
                .collect(),
            pass: pass.into_iter().map(str::to_owned).collect(),
        });
    let limits = (
        select(&[16 * MIB, 64 * MIB][..]),
        select(&[5u64, 10][..]),
        select(&[None, Some(1000u64), Some(1_000_000)][..]),
        select(&[64 << 10, MIB][..]),
    )
        .prop_map(|(memory, timeout, fuel, output)| Limits {
            memory,
            timeout: Duration::from_secs(timeout),
            fuel,
            output,
        });
    (fs, http, tcp, secrets, env, limits).prop_map(caps)
}

/// A set with each of the six capabilities as given; any other (a test capability) holds
/// nothing.
fn caps(
    (fs, http, tcp, secrets, env, limits): (
        Vec<FsGrant>,
        Vec<HttpGrant>,
        Vec<TcpRule>,
        Vec<SecretGrant>,
        EnvSection,
        Limits,
    ),
) -> Capabilities {
    Capabilities::default()
        .with::<Fs>(fs)
        .with::<Http>(http)
        .with::<Tcp>(tcp)
        .with::<Secrets>(secrets)
        .with::<Env>(env)
        .with::<TaskLimits>(limits)
}

/// Narrowing strings from the pools alone: most of them widen a given parent somewhere.
fn narrowing_args() -> impl Strategy<Value = Vec<String>> {
    let list = |key: &'static str, entry: BoxedStrategy<String>| {
        proptest::option::of(vec(entry, 0..3)).prop_map(move |entries| match entries {
            None => vec![],
            Some(entries) if entries.is_empty() => vec![format!("{key}=")],
            Some(entries) => entries.into_iter().map(|e| format!("{key}={e}")).collect(),
        })
    };
    let fs = (select(FS_ASKS), select(&["", ":read", ":read-write"][..]))
        .prop_map(|(path, access)| format!("{path}{access}"))
        .boxed();
    let secrets = (
        select(&["github", "signer", "aws", "gcp"][..]),
        proptest::option::of(uses()),
    )
        .prop_map(|(name, uses)| match uses {
            Some(uses) => format!("{name}:{}", uses_text(uses)),
            None => name.to_owned(),
        })
        .boxed();
    (
        list("fs", fs),
        list("http", http_rule_text().boxed()),
        list("tcp", tcp_rule_text().boxed()),
        list("secrets", secrets),
        list("env", select(ENV_NAMES).prop_map(str::to_owned).boxed()),
        limit_args(None),
    )
        .prop_map(|(fs, http, tcp, secrets, env, limits)| {
            [fs, http, tcp, secrets, env, limits].concat()
        })
}

/// Narrowing strings for `parent`: most lists are taken from what it holds and narrowed
/// further (sub-paths, longer URL prefixes, fewer methods, names it has, lower limits),
/// some hold an entry from the pools, so that about half of them fit and the rest widen
/// in every way there is.
fn narrowing_args_for(parent: &Capabilities) -> BoxedStrategy<Vec<String>> {
    /// Each of `items` or not, in order, each made into a string by `entry`.
    fn some_of<T: Clone + std::fmt::Debug + 'static, S: Strategy<Value = String> + 'static>(
        items: Vec<T>,
        entry: impl Fn(T) -> S + 'static,
    ) -> BoxedStrategy<Vec<String>> {
        let n = items.len();
        subsequence(items, 0..=n)
            .prop_flat_map(move |picked| picked.into_iter().map(&entry).collect::<Vec<_>>())
            .boxed()
    }
    let fs = some_of(
        parent.fs().iter().map(|g| g.guest.clone()).collect(),
        |root| {
            (
                select(&["", "/s", "/s/t"][..]),
                select(&["", "", ":read", ":read-write"][..]),
            )
                .prop_map(move |(sub, access)| format!("{root}{sub}{access}"))
        },
    );
    let http = some_of(parent.http().to_vec(), |g| {
        let methods = g.rule.methods().map_or_else(
            || METHODS.iter().map(|m| m.to_string()).collect(),
            <[String]>::to_vec,
        );
        let n = methods.len();
        let host = host_text(g.rule.host());
        let hosts = related_hosts(&host);
        let all_methods = METHODS.iter().map(|m| m.to_string()).collect::<Vec<_>>();
        (
            prop_oneof![2 => Just(host), 1 => select(hosts).prop_map(str::to_owned)],
            select(&["", "sub/", "sub/x/"][..]),
            // Mostly the parent's methods or fewer, sometimes any.
            proptest::option::of(prop_oneof![
                3 => subsequence(methods, 1..=n),
                1 => subsequence(all_methods, 1..=METHODS.len()),
            ]),
        )
            .prop_map(move |(host, sub, methods)| {
                let (host, network) = host.split_once('|').unwrap_or((&host, ""));
                let (scheme, port) = (g.rule.scheme(), g.rule.port());
                let prefix = path_text(g.rule.prefix());
                let url = format!("{scheme}://{host}:{port}{network}{prefix}{sub}");
                match methods {
                    Some(methods) => format!("{url} {}", methods.join(",")),
                    None => url,
                }
            })
    });
    let tcp = some_of(
        parent
            .tcp()
            .iter()
            .map(|t| t.connect().to_owned())
            .collect(),
        Just,
    );
    let secrets = some_of(
        parent
            .secrets()
            .iter()
            .map(|s| (s.name.clone(), (s.inject, s.hmac, s.reveal)))
            .collect(),
        |(name, (inject, hmac, reveal))| {
            // The parent's uses but reveal, or some of its uses, mostly; sometimes uses it
            // does not allow.
            (proptest::option::of(uses()), 0..4u8).prop_map(move |(asked, dare)| match asked {
                None => name.clone(),
                Some((i, h, r)) if dare == 0 => format!("{name}:{}", uses_text((i, h, r))),
                Some((i, h, r)) => {
                    let within = (i && inject, h && hmac, r && reveal);
                    match within {
                        (false, false, false) => name.clone(),
                        within => format!("{name}:{}", uses_text(within)),
                    }
                }
            })
        },
    );
    let env_names: Vec<String> = parent
        .env()
        .vars
        .keys()
        .chain(&parent.env().pass)
        .cloned()
        .collect();
    let env = some_of(env_names, Just);
    let random = narrowing_args().boxed();
    let derived = (
        section("fs", fs, select(FS_ASKS).prop_map(str::to_owned).boxed()),
        section("http", http, http_rule_text().boxed()),
        section("tcp", tcp, tcp_rule_text().boxed()),
        section(
            "secrets",
            secrets,
            select(SECRETS).prop_map(str::to_owned).boxed(),
        ),
        section(
            "env",
            env,
            select(ENV_NAMES).prop_map(str::to_owned).boxed(),
        ),
        limit_args(Some(*parent.limits())),
    )
        .prop_map(|(fs, http, tcp, secrets, env, limits)| {
            [fs, http, tcp, secrets, env, limits].concat()
        });
    prop_oneof![5 => derived, 1 => random].boxed()
}

/// One list key's strings: left out; a list `derived` from the parent, alone or with an
/// entry from the pools; or 0 to 2 entries from the pools.
fn section(
    key: &'static str,
    derived: BoxedStrategy<Vec<String>>,
    random: BoxedStrategy<String>,
) -> BoxedStrategy<Vec<String>> {
    let with_random = (derived.clone(), random.clone()).prop_map(|(mut list, extra)| {
        list.push(extra);
        list
    });
    let lists = prop_oneof![
        6 => derived,
        1 => with_random,
        1 => vec(random, 0..3),
    ];
    let strings = lists.prop_map(move |entries| {
        if entries.is_empty() {
            vec![format!("{key}=")]
        } else {
            entries.into_iter().map(|e| format!("{key}={e}")).collect()
        }
    });
    prop_oneof![2 => Just(vec![]), 5 => strings].boxed()
}

/// Limit strings: each left out, or a value from the pool; with a `parent`, mostly values
/// at most the parent's.
fn limit_args(parent: Option<Limits>) -> BoxedStrategy<Vec<String>> {
    const MEMORY: &[(&str, u64)] = &[
        ("1MiB", MIB),
        ("16MiB", 16 * MIB),
        ("32MiB", 32 * MIB),
        ("64MiB", 64 * MIB),
        ("128MiB", 128 * MIB),
    ];
    const TIMEOUT: &[(&str, u64)] = &[("1s", 1), ("5s", 5), ("10s", 10), ("30s", 30)];
    const FUEL: &[(&str, u64)] = &[
        ("1000", 1000),
        ("1_000_000", 1_000_000),
        ("5000000", 5_000_000),
    ];
    const OUTPUT: &[(&str, u64)] = &[
        ("1KiB", 1 << 10),
        ("64KiB", 64 << 10),
        ("1MiB", MIB),
        ("2MiB", 2 * MIB),
    ];
    let pick = |key: &'static str, pool: &'static [(&'static str, u64)], max: Option<u64>| {
        let all: Vec<&'static str> = pool.iter().map(|(text, _)| *text).collect();
        let fitting: Vec<&'static str> = pool
            .iter()
            .filter(|(_, value)| max.is_none_or(|max| *value <= max))
            .map(|(text, _)| *text)
            .collect();
        let value = if parent.is_some() && !fitting.is_empty() {
            prop_oneof![3 => select(fitting), 1 => select(all)].boxed()
        } else {
            select(all).boxed()
        };
        proptest::option::of(value.prop_map(move |v| format!("{key}={v}")))
    };
    let fuel_max = match parent {
        Some(p) => p.fuel,
        None => None,
    };
    (
        pick("memory", MEMORY, parent.map(|p| p.memory)),
        pick("timeout", TIMEOUT, parent.map(|p| p.timeout.as_secs())),
        pick("fuel", FUEL, fuel_max),
        pick("output", OUTPUT, parent.map(|p| p.output)),
    )
        .prop_map(|(a, b, c, d)| [a, b, c, d].into_iter().flatten().collect())
        .boxed()
}

/// A capability set made from `parent` by hand rather than by `narrow`, often not within
/// it: entries dropped, reordered, moved to sub-paths (with the right host or a wrong
/// one), other access, other per-request limits, reveal flags and limits from the pools.
/// This is what a decoded token may hold, and what `covers` alone must judge.
fn child_of(parent: &Capabilities) -> BoxedStrategy<Capabilities> {
    let fs_grants = parent.fs().to_vec();
    let n = fs_grants.len();
    let fs = subsequence(fs_grants, 0..=n).prop_flat_map(|picked| {
        picked
            .into_iter()
            .map(|g| {
                let rw = prop_oneof![3 => Just(g.access == Access::ReadWrite), 1 => any::<bool>()];
                (
                    select(&["", "/s", "/s/t"][..]),
                    select(&["right", "right", "right", "wrong"][..]),
                    rw,
                )
                    .prop_map(move |(sub, host, rw)| FsGrant {
                        guest: format!("{}{sub}", g.guest),
                        host: match host {
                            "right" => PathBuf::from(format!("{}{sub}", g.host.display())),
                            _ => PathBuf::from(format!("/elsewhere{sub}")),
                        },
                        access: access(rw),
                    })
            })
            .collect::<Vec<_>>()
    });
    let http_grants = parent.http().to_vec();
    let n = http_grants.len();
    let http = subsequence(http_grants, 0..=n)
        .prop_flat_map(|picked| {
            picked
                .into_iter()
                .map(|g| {
                    let methods = prop_oneof![
                        3 => Just(g.rule.methods().map(<[String]>::to_vec)),
                        1 => proptest::option::of(
                            subsequence(METHODS, 1..=METHODS.len())
                                .prop_map(|ms| ms.iter().map(|m| m.to_string()).collect()),
                        ),
                    ];
                    let limits = prop_oneof![3 => Just(None), 1 => request_limits().prop_map(Some)];
                    (limits, any::<bool>(), methods).prop_map(move |(limits, sub, methods)| {
                        let url = g.rule.url();
                        let url = if sub && url.ends_with('/') {
                            format!("{url}sub/")
                        } else {
                            url.to_owned()
                        };
                        HttpGrant {
                            rule: HttpRule::parse(&url, methods).unwrap(),
                            limits: limits.unwrap_or(g.limits),
                        }
                    })
                })
                .collect::<Vec<_>>()
        })
        .prop_shuffle();
    let tcp_rules = parent.tcp().to_vec();
    let n = tcp_rules.len();
    let tcp = subsequence(tcp_rules, 0..=n);
    let names: Vec<String> = parent.secrets().iter().map(|s| s.name.clone()).collect();
    let n = names.len();
    let secrets = (subsequence(names, 0..=n), vec(uses(), n)).prop_map(|(names, uses)| {
        names
            .into_iter()
            .zip(uses)
            .map(|(name, (inject, hmac, reveal))| SecretGrant {
                name,
                inject,
                hmac,
                reveal,
            })
            .collect::<Vec<_>>()
    });
    let vars: Vec<(String, String)> = parent.env().vars.clone().into_iter().collect();
    let pass = parent.env().pass.clone();
    let (nv, np) = (vars.len(), pass.len());
    let extra = prop_oneof![
        3 => Just(None),
        1 => select(&["LANG", "TZ", "HOME"][..]).prop_map(Some),
    ];
    let env = (
        subsequence(vars, 0..=nv),
        subsequence(pass, 0..=np),
        any::<bool>(),
        extra,
    )
        .prop_map(|(vars, mut pass, change, extra)| {
            let mut vars: std::collections::BTreeMap<_, _> = vars.into_iter().collect();
            if change && let Some(value) = vars.values_mut().next() {
                value.push('!');
            }
            // A name passed from the host that the parent sets literally, or not at all.
            if let Some(name) = extra
                && !pass.iter().any(|p| p == name)
                && !vars.contains_key(name)
            {
                pass.push(name.to_owned());
            }
            EnvSection { vars, pass }
        });
    let limits = (
        select(&[8 * MIB, 16 * MIB, 64 * MIB, 128 * MIB][..]),
        select(&[1u64, 5, 10, 30][..]),
        select(
            &[
                None,
                Some(10u64),
                Some(1000),
                Some(1_000_000),
                Some(9_000_000),
            ][..],
        ),
        select(&[1 << 10, 64 << 10, MIB, 2 * MIB][..]),
    )
        .prop_map(|(memory, timeout, fuel, output)| Limits {
            memory,
            timeout: Duration::from_secs(timeout),
            fuel,
            output,
        });
    let parent_limits = *parent.limits();
    let limits = prop_oneof![2 => Just(parent_limits), 1 => limits];
    (fs, http, tcp, secrets, env, limits).prop_map(caps).boxed()
}

/// A parent, and a set to judge against it: mostly made from it by hand, sometimes not.
fn parent_and_child() -> impl Strategy<Value = (Capabilities, Capabilities)> {
    capabilities().prop_flat_map(|parent| {
        let child = prop_oneof![4 => child_of(&parent), 1 => capabilities().boxed()];
        (Just(parent), child)
    })
}

/// A parent, and narrowing strings for it.
fn parent_and_narrowing() -> impl Strategy<Value = (Capabilities, Vec<String>)> {
    capabilities().prop_flat_map(|parent| {
        let args = narrowing_args_for(&parent);
        (Just(parent), args)
    })
}

/// A host pattern as the pools write it: `*.example.com`, `10.0.0.0|/8`, `[::1]`.
fn host_text(host: &HostPattern) -> String {
    match host {
        HostPattern::Exact(name) => name.clone(),
        HostPattern::Suffix(suffix) => format!("*.{suffix}"),
        HostPattern::Ip(ip) => ip_text(*ip),
        HostPattern::Cidr(net) => format!("{}|/{}", ip_text(net.addr()), net.prefix_len()),
    }
}

/// An IP as a URL's host: IPv6 in brackets.
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `/` and the segments of a path prefix, each followed by `/`.
fn path_text(prefix: &[Vec<u8>]) -> String {
    prefix.iter().fold("/".to_owned(), |path, segment| {
        format!("{path}{}/", String::from_utf8_lossy(segment))
    })
}

/// Hosts close to `host` (in the form of [`host_text`]): within it, around it, beside it,
/// and the classic confusions (the apex of `*.example.com`, `evilexample.com`, a network
/// one bit wider).
fn related_hosts(host: &str) -> Vec<&'static str> {
    let related: &[&str] = match host {
        "api.example.com" => &[
            "*.api.example.com",
            "*.example.com",
            "x.api.example.com",
            "example.com",
        ],
        "x.api.example.com" => &[
            "*.x.api.example.com",
            "*.api.example.com",
            "api.example.com",
        ],
        "*.example.com" => &[
            "api.example.com",
            "example.com",
            "*.api.example.com",
            "evilexample.com",
            "*.evilexample.com",
            "*.com",
        ],
        "*.api.example.com" => &[
            "x.api.example.com",
            "api.example.com",
            "*.example.com",
            "*.x.api.example.com",
        ],
        "example.com" => &["*.example.com", "api.example.com", "evilexample.com"],
        "other.org" => &["*.other.org", "example.com.other.org", "*.org"],
        "10.0.0.5" => &["10.0.0.5|/32", "10.0.0.0|/24", "10.0.0.6", "0.0.0.0|/0"],
        "10.0.0.0|/8" => &[
            "10.0.0.5",
            "10.0.0.0|/24",
            "10.0.0.0|/7",
            "11.0.0.0|/8",
            "10.1.2.3",
        ],
        "10.0.0.0|/24" => &["10.0.0.5", "10.0.0.0|/25", "10.0.0.0|/8", "10.0.1.0|/24"],
        "127.0.0.1" => &["127.0.0.0|/8", "localhost", "127.0.0.2"],
        "[::1]" => &["[::]|/0", "localhost", "[::2]"],
        "[fd00::]|/8" => &["[fd00::5]", "[fd00::]|/16", "[fc00::]|/7"],
        _ => &["example.com"],
    };
    related.to_vec()
}

// ---- requests, and what they show ----------------------------------------------------

/// The hosts, paths and addresses a tool might try.
#[derive(Debug, Clone)]
struct Requests {
    /// A guest path and whether it is a write.
    fs: Vec<(String, bool)>,
    /// Method, URL, and the address a name resolves to.
    http: Vec<(String, String, IpAddr)>,
    /// Names looked up, with the address each returns.
    lookups: Vec<(String, IpAddr)>,
    /// Addresses connected to.
    connects: Vec<SocketAddr>,
}

const REQUEST_HOSTS: &[&str] = &[
    "api.example.com",
    "API.EXAMPLE.COM.",
    "x.api.example.com",
    "y.x.api.example.com",
    "example.com",
    "evilexample.com",
    "example.com.other.org",
    "other.org",
    "10.0.0.5",
    "10.0.0.6",
    "10.1.2.3",
    "11.0.0.1",
    "127.0.0.1",
    "2130706433",
    "[::1]",
    "[fd00::5]",
];
const REQUEST_PATHS: &[&str] = &[
    "/",
    "/r",
    "/r/",
    "/r/x",
    "/r/x/y",
    "/rx",
    "/api/v",
    "/r/../api/v",
    "/r/%2e%2e/api",
    "/r/x%2F..%2Fz",
    "/R/x",
];
const ADDRS: &[&str] = &[
    "93.184.216.34",
    "127.0.0.1",
    "10.0.0.5",
    "10.0.0.77",
    "169.254.169.254",
    "::1",
    "fd00::5",
];
const NAMES: &[&str] = &[
    "db.internal",
    "a.x.internal",
    "b.internal",
    "internal",
    "other.org",
    "10.0.0.5",
    "::1",
];
const FS_PATHS: &[&str] = &[
    "/a", "/a/s", "/a/s/t", "/a/s/t/f", "/a/f", "/a2", "/a2/s/f", "/b", "/b/s", "/w", "/w/x",
    "/w/x/y/f", "/c/f", "/ab",
];

fn requests() -> impl Strategy<Value = Requests> {
    let addr = select(ADDRS).prop_map(|a| a.parse::<IpAddr>().unwrap());
    let fs = vec(
        (select(FS_PATHS).prop_map(str::to_owned), any::<bool>()),
        12,
    );
    let http = vec(
        (
            select(&["GET", "POST", "DELETE", "PUT"][..]),
            select(&["http", "https"][..]),
            select(REQUEST_HOSTS),
            select(&["", ":8080", ":443", ":80"][..]),
            select(REQUEST_PATHS),
            addr.clone(),
        )
            .prop_map(|(method, scheme, host, port, path, addr)| {
                (
                    method.to_owned(),
                    format!("{scheme}://{host}{port}{path}"),
                    addr,
                )
            }),
        24,
    );
    let lookups = vec((select(NAMES).prop_map(str::to_owned), addr.clone()), 6);
    let connects = vec(
        (addr, select(TCP_PORTS)).prop_map(|(a, p)| SocketAddr::new(a, p)),
        8,
    );
    (fs, http, lookups, connects).prop_map(|(fs, http, lookups, connects)| Requests {
        fs,
        http,
        lookups,
        connects,
    })
}

/// The host file a guest path reaches under `caps`, if it may be reached (for writing, if
/// `write`). Written with `Path` components, apart from the code under test.
fn fs_reaches(caps: &Capabilities, path: &str, write: bool) -> Option<PathBuf> {
    caps.fs().iter().find_map(|g| {
        let rel = Path::new(path).strip_prefix(&g.guest).ok()?;
        (!write || g.access == Access::ReadWrite).then(|| g.host.join(rel))
    })
}

/// `requests`, and requests that `child` allows by construction: random requests alone
/// would mostly be denied by the child, and say nothing.
fn with_requests_of(child: &Capabilities, requests: &Requests) -> Requests {
    let mut all = requests.clone();
    for g in child.fs() {
        for write in [false, true] {
            all.fs.push((g.guest.clone(), write));
            all.fs.push((format!("{}/f", g.guest), write));
        }
    }
    let pick = |i: usize| requests.http[i % requests.http.len()].2;
    for (i, g) in child.http().iter().enumerate() {
        let rule = &g.rule;
        let hosts = match rule.host() {
            HostPattern::Exact(name) => vec![name.clone()],
            HostPattern::Suffix(suffix) => vec![format!("z.{suffix}"), format!("y.z.{suffix}")],
            HostPattern::Ip(ip) => vec![ip_text(*ip)],
            HostPattern::Cidr(net) => vec![ip_text(net.network()), ip_text(net.broadcast())],
        };
        let methods = rule.methods().map_or_else(
            || ["GET", "POST", "DELETE", "PUT"].map(String::from).to_vec(),
            <[String]>::to_vec,
        );
        for host in &hosts {
            for method in &methods {
                let url = format!(
                    "{}://{host}:{}{}leaf",
                    rule.scheme(),
                    rule.port(),
                    path_text(rule.prefix())
                );
                all.http.push((method.clone(), url, pick(i)));
            }
        }
    }
    for (i, rule) in child.tcp().iter().enumerate() {
        let addr = requests.lookups[i % requests.lookups.len()].1;
        match rule.host() {
            HostPattern::Exact(name) => all.lookups.push((name.clone(), addr)),
            HostPattern::Suffix(suffix) => all.lookups.push((format!("z.{suffix}"), addr)),
            HostPattern::Ip(ip) => all.connects.push(SocketAddr::new(*ip, rule.port())),
            HostPattern::Cidr(net) => {
                all.connects
                    .push(SocketAddr::new(net.network(), rule.port()));
                all.connects
                    .push(SocketAddr::new(net.broadcast(), rule.port()));
            }
        }
        if rule.names_hosts() {
            all.connects.push(SocketAddr::new(addr, rule.port()));
        }
    }
    all
}

/// Everything `child` allows of `requests` (and of requests made to fit the child),
/// `parent` allows too.
fn assert_within(
    parent: &Capabilities,
    child: &Capabilities,
    requests: &Requests,
) -> Result<(), TestCaseError> {
    let requests = &with_requests_of(child, requests);
    for (path, write) in &requests.fs {
        if let Some(host) = fs_reaches(child, path, *write) {
            let from_parent = fs_reaches(parent, path, *write);
            prop_assert_eq!(
                from_parent.as_ref(),
                Some(&host),
                "the child reaches {} ({}) at {:?}",
                path,
                if *write { "write" } else { "read" },
                host
            );
        }
    }

    let (child_egress, parent_egress) = (child.egress(), parent.egress());
    for (method, url, resolved) in &requests.http {
        let Ok(allowed) = child_egress.check(method, url) else {
            continue;
        };
        let parent_allowed = parent_egress.check(method, url);
        prop_assert!(
            parent_allowed.is_ok(),
            "the child allows {} {} by {}, the parent does not: {:?}",
            method,
            url,
            allowed,
            parent_allowed
        );
        let parent_allowed = parent_allowed.unwrap();
        // An IP literal is connected to as written; a name, wherever it resolves.
        let addr = match url::Url::parse(url)
            .ok()
            .and_then(|u| u.host().map(|h| h.to_owned()))
        {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => *resolved,
        };
        if child_egress.check_addr(&allowed, addr).is_ok() {
            prop_assert!(
                parent_egress.check_addr(&parent_allowed, addr).is_ok(),
                "the child allows {} {} at {}, the parent does not",
                method,
                url,
                addr
            );
        }
        let (mine, theirs) = (
            child.http()[allowed.index()].limits,
            parent.http()[parent_allowed.index()].limits,
        );
        prop_assert!(
            mine.timeout <= theirs.timeout
                && mine.request_body <= theirs.request_body
                && mine.response_body <= theirs.response_body,
            "{} {}: the child's limits {} exceed the parent's {}",
            method,
            url,
            mine,
            theirs
        );
    }

    let (child_tcp, parent_tcp) = (child.tcp_policy(), parent.tcp_policy());
    let mut resolved = Resolved::default();
    for (name, addr) in &requests.lookups {
        if child_tcp.check_lookup(name).is_ok() {
            prop_assert!(
                parent_tcp.check_lookup(name).is_ok(),
                "the child may look up {}, the parent may not",
                name
            );
            resolved.learn(name, *addr);
        }
    }
    for addr in &requests.connects {
        if child_tcp.check_connect(*addr, &resolved).is_ok() {
            prop_assert!(
                parent_tcp.check_connect(*addr, &resolved).is_ok(),
                "the child may connect to {}, the parent may not",
                addr
            );
        }
    }

    for name in SECRETS.iter().chain(&["gcp"]) {
        if let Some(mine) = child.secret(name) {
            let theirs = parent.secret(name);
            prop_assert!(theirs.is_some(), "the child may use secret {}", name);
            prop_assert!(
                !mine.reveal || theirs.unwrap().reveal,
                "the child may reveal secret {}",
                name
            );
        }
    }

    for (name, value) in &child.env().vars {
        prop_assert_eq!(parent.env().vars.get(name), Some(value), "env {}", name);
    }
    for name in &child.env().pass {
        prop_assert!(parent.env().pass.contains(name), "env pass {}", name);
    }

    let (mine, theirs) = (child.limits(), parent.limits());
    prop_assert!(mine.memory <= theirs.memory);
    prop_assert!(mine.timeout <= theirs.timeout);
    prop_assert!(mine.output <= theirs.output);
    if let Some(max) = theirs.fuel {
        prop_assert!(
            mine.fuel.is_some_and(|f| f <= max),
            "fuel {:?} > {}",
            mine.fuel,
            max
        );
    }
    Ok(())
}

// ---- the properties ------------------------------------------------------------------

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking keeps what fails small; no file of past failures in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// Whatever `narrow` makes is within its parent, by `covers` and by every request.
    #[test]
    fn a_narrowed_child_never_allows_what_its_parent_does_not(
        (parent, args) in parent_and_narrowing(),
        requests in requests(),
    ) {
        let Ok(narrowing) = Narrowing::parse(&args) else { return Ok(()) };
        if let Ok(child) = parent.narrow(&narrowing) {
            prop_assert_eq!(parent.covers(&child), Ok(()));
            assert_within(&parent, &child, &requests)?;
        }
    }

    /// `covers` itself is sound: any set it accepts, however it was made, is within.
    #[test]
    fn covers_accepts_only_what_is_within(
        (parent, child) in parent_and_child(),
        requests in requests(),
    ) {
        if parent.covers(&child).is_ok() {
            assert_within(&parent, &child, &requests)?;
        }
    }

    /// A set is within itself, and an empty narrowing is the parent.
    #[test]
    fn a_set_is_within_itself(caps in capabilities()) {
        prop_assert_eq!(caps.covers(&caps), Ok(()));
        prop_assert_eq!(caps.narrow(&Narrowing::default()), Ok(caps));
    }

    /// A narrowing's canonical strings read back as the same narrowing.
    #[test]
    fn narrowing_strings_print_back(args in narrowing_args()) {
        if let Ok(narrowing) = Narrowing::parse(&args) {
            prop_assert_eq!(Narrowing::parse(narrowing.to_args()), Ok(narrowing));
        }
    }

    /// The JSON form round-trips any set.
    #[test]
    fn capabilities_round_trip_through_json(caps in capabilities()) {
        let json = serde_json::to_string(&caps).unwrap();
        prop_assert_eq!(serde_json::from_str::<Capabilities>(&json).unwrap(), caps);
    }

    /// Three attenuations in a row, each with its own narrowing, lifetime and moment:
    /// every grant made is within its parent and the root, expires no later than its
    /// parent, is refused a lifetime longer than its parent has left, and survives its JSON
    /// form as a grant within the root's ceiling.
    #[test]
    fn chains_of_attenuation_only_narrow(
        (ceiling, steps) in chain_steps(),
        requests in requests(),
    ) {
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let root = Grant::root_at(ceiling.clone(), start, Duration::from_secs(600), Some("root".into()));
        let mut chain = vec![root];
        let mut now = start;
        for (args, ttl, wait) in steps {
            let Ok(narrowing) = Narrowing::parse(&args) else { continue };
            now += Duration::from_secs(wait);
            let parent = chain.last().unwrap();
            let ttl = ttl.map(Duration::from_secs);
            match parent.attenuate_at(&narrowing, now, ttl, None) {
                Ok(child) => {
                    prop_assert!(!parent.is_expired(now));
                    prop_assert!(ttl.is_none_or(|t| now + t <= parent.expires()));
                    prop_assert!(child.expires() <= parent.expires());
                    prop_assert_eq!(child.parent(), Some(parent.id()));
                    prop_assert_eq!(child.depth(), parent.depth() + 1);
                    assert_within(parent.caps(), child.caps(), &requests)?;
                    assert_within(&ceiling, child.caps(), &requests)?;
                    let json = serde_json::to_string(&child).unwrap();
                    let decoded: Grant = serde_json::from_str(&json).unwrap();
                    prop_assert_eq!(decoded.check_within(&ceiling), Ok(()));
                    prop_assert_eq!(&decoded, &child);
                    chain.push(child);
                }
                Err(Widening::Expired { .. }) => prop_assert!(parent.is_expired(now)),
                Err(Widening::Ttl { requested, remaining, .. }) => {
                    prop_assert!(requested > remaining);
                    prop_assert_eq!(Some(remaining), parent.remaining(now));
                }
                Err(_) => {
                    // Refused for a capability: then `narrow` refuses it too.
                    prop_assert!(parent.caps().narrow(&narrowing).is_err());
                }
            }
        }
    }
}

/// One step of a chain: narrowing strings, a ttl in seconds (or none), and a wait.
type Step = (Vec<String>, Option<u64>, u64);

/// A ceiling, and three steps of narrowing strings (for the ceiling: a child's own
/// capabilities are not known until it is made, and strings for the ceiling often fit it
/// too), a lifetime (or none) and a wait before the step.
fn chain_steps() -> impl Strategy<Value = (Capabilities, Vec<Step>)> {
    capabilities().prop_flat_map(|ceiling| {
        let step = (
            narrowing_args_for(&ceiling),
            proptest::option::of(select(&[10u64, 60, 300, 1000][..])),
            0u64..400,
        );
        (Just(ceiling), vec(step, 3))
    })
}

/// The properties above say nothing if every narrowing were refused (or none tried to
/// widen): check that the generators make both outcomes often, and refusals of every
/// kind.
#[test]
fn the_generators_make_children_and_refusals_of_every_kind() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = parent_and_narrowing();
    let (mut made, mut refused, mut unparsed) = (0, 0, 0);
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let (parent, args) = strategy.new_tree(&mut runner).unwrap().current();
        match Narrowing::parse(&args) {
            Err(_) => unparsed += 1,
            Ok(narrowing) => match parent.narrow(&narrowing) {
                Ok(_) => made += 1,
                Err(e) => {
                    refused += 1;
                    kinds.insert(kind_of(&e));
                }
            },
        }
    }
    eprintln!("narrow: made {made}, refused {refused}, unparsed {unparsed}");
    assert!(
        made >= 500,
        "only {made} children made (refused {refused}, unparsed {unparsed})"
    );
    assert!(refused >= 500, "only {refused} refused (made {made})");
    for kind in [
        "Fs",
        "FsAccess",
        "Http",
        "Tcp",
        "Secret",
        "SecretUse",
        "Env",
        "Limit",
    ] {
        assert!(
            kinds.contains(kind),
            "no {kind} refusal from narrow among {kinds:?}"
        );
    }

    let strategy = parent_and_child();
    let (mut within, mut wider) = (0, 0);
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let (parent, child) = strategy.new_tree(&mut runner).unwrap().current();
        match parent.covers(&child) {
            Ok(()) => within += 1,
            Err(e) => {
                wider += 1;
                kinds.insert(kind_of(&e));
            }
        }
    }
    eprintln!("covers: within {within}, wider {wider}: {kinds:?}");
    assert!(within >= 300, "only {within} within (wider {wider})");
    assert!(wider >= 500, "only {wider} wider (within {within})");
    for kind in [
        "Fs",
        "FsAccess",
        "FsHost",
        "Http",
        "HttpLimit",
        "Secret",
        "SecretUse",
        "EnvValue",
        "Limit",
    ] {
        assert!(
            kinds.contains(kind),
            "no {kind} refusal from covers among {kinds:?}"
        );
    }
}

/// The kind of refusal: the variant's name (`Ttl`), or for a capability's, its key and
/// which of its checks refused (`HttpLimit` for a limit of an `[[http]]` rule).
fn kind_of(e: &Widening) -> String {
    let Widening::Capability(wider) = e else {
        let debug = format!("{e:?}");
        return debug[..debug.find([' ', '(']).unwrap_or(debug.len())].to_owned();
    };
    let key = wider.field.split(['[', '.']).next().unwrap_or_default();
    let reason = wider.reason.as_str();
    let check = [
        ("maps to host", "Host"),
        ("allows only read there", "Access"),
        ("allows a ", "Limit"),
        ("which does not allow", "Use"),
        ("differs from", "Value"),
    ]
    .into_iter()
    .find_map(|(phrase, check)| reason.contains(phrase).then_some(check))
    .unwrap_or_default();
    let key = match key {
        "fs" => "Fs",
        "http" => "Http",
        "tcp" => "Tcp",
        "secrets" => "Secret",
        "env" => "Env",
        "limits" => "Limit",
        other => other,
    };
    format!("{key}{check}")
}

/// Lifetimes: a child never outlives its parent, at any moment and for any ttl.
#[test]
fn a_child_never_outlives_its_parent() {
    let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let root = Grant::root_at(
        Capabilities::default(),
        start,
        Duration::from_secs(100),
        None,
    );
    for offset in [0u64, 1, 50, 99, 100, 101] {
        for ttl in [
            None,
            Some(0u64),
            Some(1),
            Some(49),
            Some(50),
            Some(51),
            Some(100),
            Some(u64::MAX),
        ] {
            let now: SystemTime = start + Duration::from_secs(offset);
            let ttl = ttl.map(Duration::from_secs);
            match root.attenuate_at(&Narrowing::default(), now, ttl, None) {
                Ok(child) => {
                    assert!(offset < 100, "{offset}");
                    assert!(child.expires() <= root.expires());
                }
                Err(Widening::Expired { .. }) => assert!(offset >= 100),
                Err(Widening::Ttl { .. }) => {
                    assert!(ttl.unwrap() > Duration::from_secs(100 - offset))
                }
                Err(other) => panic!("{other}"),
            }
        }
    }
}
