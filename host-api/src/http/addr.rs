//! Which resolved addresses only an explicit rule may reach.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A kind of address that a rule must name explicitly (by IP or network)
/// before a request may connect to it. Anything not listed is public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddrClass {
    /// A cloud instance-metadata endpoint (`169.254.169.254`, `fd00:ec2::254`,
    /// `100.100.100.200`, Azure's `168.63.129.16`), where credentials live.
    Metadata,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// `fc00::/7`, and the deprecated site-local `fec0::/10`.
    UniqueLocal,
    /// Carrier-grade NAT, `100.64/10`.
    SharedCgnat,
    /// `0.0.0.0/8`, `::`: connects to the local host on many systems.
    Unspecified,
    /// `255.255.255.255`.
    Broadcast,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// Reserved or set aside by the IETF and not globally reachable: `240/4`, the IETF
    /// protocol blocks `192.0.0.0/24` and `2001::/23`, the SRv6 and discard blocks, the
    /// deprecated 6to4 relay anycast.
    Reserved,
    /// Documentation: `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`,
    /// `3fff::/20`.
    Documentation,
    /// Benchmarking: `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// Translation or tunnelling that reaches addresses Warden cannot see: the local-use
    /// NAT64 prefix `64:ff9b:1::/48` and Teredo `2001::/32`.
    Tunnel,
}

impl fmt::Display for AddrClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrClass::Metadata => "cloud metadata",
            AddrClass::Loopback => "loopback",
            AddrClass::Private => "private",
            AddrClass::LinkLocal => "link-local",
            AddrClass::UniqueLocal => "unique-local",
            AddrClass::SharedCgnat => "shared (cgnat)",
            AddrClass::Unspecified => "unspecified",
            AddrClass::Broadcast => "broadcast",
            AddrClass::Multicast => "multicast",
            AddrClass::Reserved => "reserved",
            AddrClass::Documentation => "documentation",
            AddrClass::Benchmarking => "benchmarking",
            AddrClass::Tunnel => "tunnel",
        })
    }
}

impl AddrClass {
    /// The class of `addr` if it is special, `None` if it is public; see
    /// `classify` (the same check, for other capabilities such as
    /// `[[tcp]]`).
    pub fn of(addr: IpAddr) -> Option<AddrClass> {
        classify(addr)
    }
}

/// The class of `addr` if it is special, `None` if it is public.
///
/// The table is the IANA IPv4 and IPv6 Special-Purpose Address Registries
/// (RFC 6890 and its updates): an address whose most specific entry is not
/// globally reachable is special; one whose most specific entry is (an anycast
/// service inside a reserved block, say) is public. Cloud metadata endpoints are
/// added, since they sit at ordinary-looking addresses. IPv6 forms that carry an
/// IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) are judged by that IPv4 address,
/// since that is where they end up.
pub(crate) fn classify(addr: IpAddr) -> Option<AddrClass> {
    match addr {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// One entry of a special-purpose registry: a network, and the class of its addresses,
/// or `None` where the registry says they are globally reachable.
struct Entry<T> {
    net: T,
    len: u8,
    class: Option<AddrClass>,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8, class: Option<AddrClass>) -> Entry<u32> {
    Entry {
        net: u32::from_be_bytes([a, b, c, d]),
        len,
        class,
    }
}

const fn v6(segments: [u16; 8], len: u8, class: Option<AddrClass>) -> Entry<u128> {
    let mut net = 0u128;
    let mut i = 0;
    while i < 8 {
        net = (net << 16) | segments[i] as u128;
        i += 1;
    }
    Entry { net, len, class }
}

use AddrClass::*;

const PUBLIC: Option<AddrClass> = None;

/// IANA IPv4 Special-Purpose Address Registry, every entry, in its order; then the
/// metadata endpoints.
const IPV4: &[Entry<u32>] = &[
    v4(0, 0, 0, 0, 8, Some(Unspecified)), // "This network" (RFC 791)
    v4(0, 0, 0, 0, 32, Some(Unspecified)), // "This host on this network"
    v4(10, 0, 0, 0, 8, Some(Private)),    // Private-Use (RFC 1918)
    v4(100, 64, 0, 0, 10, Some(SharedCgnat)), // Shared Address Space (RFC 6598)
    v4(127, 0, 0, 0, 8, Some(Loopback)),  // Loopback
    v4(169, 254, 0, 0, 16, Some(LinkLocal)), // Link Local (RFC 3927)
    v4(172, 16, 0, 0, 12, Some(Private)), // Private-Use
    v4(192, 0, 0, 0, 24, Some(Reserved)), // IETF Protocol Assignments
    v4(192, 0, 0, 0, 29, Some(Reserved)), // IPv4 Service Continuity Prefix
    v4(192, 0, 0, 8, 32, Some(Reserved)), // IPv4 dummy address
    v4(192, 0, 0, 9, 32, PUBLIC),         // Port Control Protocol Anycast
    v4(192, 0, 0, 10, 32, PUBLIC),        // TURN Anycast
    v4(192, 0, 0, 170, 32, Some(Reserved)), // NAT64/DNS64 Discovery
    v4(192, 0, 0, 171, 32, Some(Reserved)), // NAT64/DNS64 Discovery
    v4(192, 0, 2, 0, 24, Some(Documentation)), // TEST-NET-1
    v4(192, 31, 196, 0, 24, PUBLIC),      // AS112-v4
    v4(192, 52, 193, 0, 24, PUBLIC),      // AMT
    v4(192, 88, 99, 0, 24, Some(Reserved)), // Deprecated (6to4 Relay Anycast)
    v4(192, 168, 0, 0, 16, Some(Private)), // Private-Use
    v4(192, 175, 48, 0, 24, PUBLIC),      // Direct Delegation AS112 Service
    v4(198, 18, 0, 0, 15, Some(Benchmarking)), // Benchmarking (RFC 2544)
    v4(198, 51, 100, 0, 24, Some(Documentation)), // TEST-NET-2
    v4(203, 0, 113, 0, 24, Some(Documentation)), // TEST-NET-3
    v4(240, 0, 0, 0, 4, Some(Reserved)),  // Reserved
    v4(255, 255, 255, 255, 32, Some(Broadcast)), // Limited Broadcast
    // Not in the registry: multicast (its own registry), and where clouds keep credentials.
    v4(224, 0, 0, 0, 4, Some(Multicast)),
    v4(169, 254, 169, 254, 32, Some(Metadata)), // AWS, GCP, Azure IMDS, OpenStack
    v4(100, 100, 100, 200, 32, Some(Metadata)), // Alibaba Cloud
    v4(168, 63, 129, 16, 32, Some(Metadata)),   // Azure WireServer
];

/// IANA IPv6 Special-Purpose Address Registry, every entry, in its order; then the
/// address architecture's own blocks and the metadata endpoints. The blocks that carry
/// an IPv4 address are judged by it before this table is asked.
const IPV6: &[Entry<u128>] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, Some(Loopback)), // Loopback
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, Some(Unspecified)), // Unspecified
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, Some(Reserved)), // IPv4-mapped
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, PUBLIC),  // IPv4-IPv6 Translation
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, Some(Tunnel)), // Translation (local use)
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, Some(Reserved)), // Discard-Only
    v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64, Some(Reserved)), // Dummy IPv6 Prefix
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, Some(Reserved)), // IETF Protocol Assignments
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, Some(Tunnel)), // TEREDO
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128, PUBLIC),    // PCP Anycast
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128, PUBLIC),    // TURN Anycast
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128, PUBLIC),    // DNS-SD SRP Anycast
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, Some(Benchmarking)), // Benchmarking
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, PUBLIC),     // AMT
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, PUBLIC), // AS112-v6
    v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28, Some(Reserved)), // Deprecated (ORCHID)
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, PUBLIC),  // ORCHIDv2
    v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28, PUBLIC),  // Drone Remote ID DETs
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, Some(Documentation)), // Documentation
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, PUBLIC),     // 6to4 (the IPv4 inside decides)
    v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48, PUBLIC), // Direct Delegation AS112
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Some(Documentation)), // Documentation
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, Some(Reserved)), // Segment Routing (SRv6) SIDs
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, Some(UniqueLocal)), // Unique-Local
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, Some(LinkLocal)), // Link-Local Unicast
    // Not in the registry: the architecture's own blocks, and metadata.
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Some(UniqueLocal)), // deprecated site-local
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Some(Multicast)),
    v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128, Some(Metadata)), // AWS IMDS
];

/// The class of the most specific entry holding `addr`; `None` if none does, or if the
/// most specific one is globally reachable.
fn lookup<T>(table: &[Entry<T>], addr: T, bits: u32) -> Option<AddrClass>
where
    T: Copy + PartialEq + std::ops::Shr<u32, Output = T>,
{
    table
        .iter()
        .filter(|e| {
            let shift = bits - u32::from(e.len);
            e.len == 0 || (shift < bits && addr >> shift == e.net >> shift)
        })
        .max_by_key(|e| e.len)
        .and_then(|e| e.class)
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddrClass> {
    lookup(IPV4, u32::from(ip), 32)
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddrClass> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    // IPv4-compatible (deprecated, but some stacks still route it); not `::` or `::1`.
    if s[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback() {
        return classify_v4(embedded(s[6], s[7]));
    }
    // NAT64 well-known prefix: the gateway connects to the IPv4 inside.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded(s[6], s[7]));
    }
    // 6to4: the relay connects to the IPv4 in bits 16..48.
    if s[0] == 0x2002
        && let Some(class) = classify_v4(embedded(s[1], s[2]))
    {
        return Some(class);
    }
    lookup(IPV6, u128::from(ip), 128)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry of both IANA registries, transcribed separately from the table above
    /// (network, name, globally reachable), and what Warden makes of the first and last
    /// address of each network. A public entry is checked where nothing more specific
    /// inside it is special.
    #[test]
    fn every_iana_special_purpose_entry() {
        let v4: &[(&str, &str, bool)] = &[
            ("0.0.0.0/8", "this network", false),
            ("0.0.0.0/32", "this host on this network", false),
            ("10.0.0.0/8", "private-use", false),
            ("100.64.0.0/10", "shared address space", false),
            ("127.0.0.0/8", "loopback", false),
            ("169.254.0.0/16", "link local", false),
            ("172.16.0.0/12", "private-use", false),
            ("192.0.0.0/24", "ietf protocol assignments", false),
            ("192.0.0.0/29", "ipv4 service continuity prefix", false),
            ("192.0.0.8/32", "ipv4 dummy address", false),
            ("192.0.0.9/32", "port control protocol anycast", true),
            ("192.0.0.10/32", "turn anycast", true),
            ("192.0.0.170/32", "nat64/dns64 discovery", false),
            ("192.0.0.171/32", "nat64/dns64 discovery", false),
            ("192.0.2.0/24", "documentation (test-net-1)", false),
            ("192.31.196.0/24", "as112-v4", true),
            ("192.52.193.0/24", "amt", true),
            ("192.88.99.0/24", "deprecated (6to4 relay anycast)", false),
            ("192.168.0.0/16", "private-use", false),
            ("192.175.48.0/24", "direct delegation as112 service", true),
            ("198.18.0.0/15", "benchmarking", false),
            ("198.51.100.0/24", "documentation (test-net-2)", false),
            ("203.0.113.0/24", "documentation (test-net-3)", false),
            ("240.0.0.0/4", "reserved", false),
            ("255.255.255.255/32", "limited broadcast", false),
        ];
        let v6: &[(&str, &str, bool)] = &[
            ("::1/128", "loopback address", false),
            ("::/128", "unspecified address", false),
            ("::ffff:0:0/96", "ipv4-mapped address", false),
            ("64:ff9b::/96", "ipv4-ipv6 translat.", true),
            ("64:ff9b:1::/48", "ipv4-ipv6 translat. (local use)", false),
            ("100::/64", "discard-only address block", false),
            ("100:0:0:1::/64", "dummy ipv6 prefix", false),
            ("2001::/23", "ietf protocol assignments", false),
            ("2001::/32", "teredo", false),
            ("2001:1::1/128", "port control protocol anycast", true),
            ("2001:1::2/128", "turn anycast", true),
            ("2001:1::3/128", "dns-sd srp anycast", true),
            ("2001:2::/48", "benchmarking", false),
            ("2001:3::/32", "amt", true),
            ("2001:4:112::/48", "as112-v6", true),
            ("2001:10::/28", "deprecated (previously orchid)", false),
            ("2001:20::/28", "orchidv2", true),
            ("2001:30::/28", "drone remote id protocol entity tags", true),
            ("2001:db8::/32", "documentation", false),
            ("2002::/16", "6to4", true),
            ("2620:4f:8000::/48", "direct delegation as112 service", true),
            ("3fff::/20", "documentation", false),
            ("5f00::/16", "segment routing (srv6) sids", false),
            ("fc00::/7", "unique-local", false),
            ("fe80::/10", "link-local unicast", false),
        ];
        // The table holds each entry, in the registry's order, with its reachability.
        assert_eq!(
            IPV4.len(),
            v4.len() + 4,
            "IPv4: the registry and four extras"
        );
        assert_eq!(
            IPV6.len(),
            v6.len() + 3,
            "IPv6: the registry and three extras"
        );
        for (entry, (net, name, global)) in IPV4.iter().zip(v4) {
            let net: ipnet::Ipv4Net = net.parse().unwrap();
            assert_eq!(
                (entry.net, entry.len),
                (u32::from(net.network()), net.prefix_len())
            );
            assert_eq!(entry.class.is_none(), *global, "{net} ({name})");
        }
        for (entry, (net, name, global)) in IPV6.iter().zip(v6) {
            let net: ipnet::Ipv6Net = net.parse().unwrap();
            assert_eq!(
                (entry.net, entry.len),
                (u128::from(net.network()), net.prefix_len())
            );
            assert_eq!(entry.class.is_none(), *global, "{net} ({name})");
        }
        // And classify follows it at both ends of every network. Blocks that carry an
        // IPv4 address are judged by it (the mapped block's ends are 0.0.0.0 and
        // 255.255.255.255, both special; 6to4 and NAT64 ends are 0.0.0.0 or 255.x).
        for (net, name, global) in v4.iter().chain(v6) {
            let net: ipnet::IpNet = net.parse().unwrap();
            for addr in [net.network(), net.broadcast()] {
                let class = classify(addr);
                match (*global, *name) {
                    (_, "6to4" | "ipv4-ipv6 translat.") => assert!(class.is_some(), "{addr}"),
                    (true, _) => assert_eq!(class, None, "{addr} in {net} ({name})"),
                    (false, _) => assert!(class.is_some(), "{addr} in {net} ({name})"),
                }
            }
        }
        // What the extras add, and the blocks a review found missing.
        for (addr, class) in [
            ("198.18.0.1", Some(Benchmarking)),
            ("198.19.255.255", Some(Benchmarking)),
            ("168.63.129.16", Some(Metadata)),
            ("64:ff9b:1::808:808", Some(Tunnel)),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some(Tunnel)),
            ("::ffff:0:0", Some(Unspecified)),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::808:808", None),
            ("2002:808:808::", None),
            ("2001:4860:4860::8888", None),
            ("198.20.0.0", None),
            ("198.17.255.255", None),
        ] {
            let addr: IpAddr = addr.parse().unwrap();
            assert_eq!(classify(addr), class, "{addr}");
        }
    }
}
