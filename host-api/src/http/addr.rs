//! Which resolved addresses only an explicit rule may reach.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A kind of address that a rule must name explicitly (by IP or network)
/// before a request may connect to it. Anything not listed is public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddrClass {
    /// A cloud instance-metadata endpoint (`169.254.169.254`,
    /// `fd00:ec2::254`, `100.100.100.200`), where credentials live.
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
    /// `240/4` and the IETF protocol block `192.0.0.0/24`.
    Reserved,
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

/// The class of `addr` if it is special, `None` if it is public. IPv6 forms
/// that carry an IPv4 address (mapped `::ffff:a.b.c.d`, compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) are judged
/// by that IPv4 address, since that is where they may end up.
pub(crate) fn classify(addr: IpAddr) -> Option<AddrClass> {
    match addr {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddrClass> {
    let o = ip.octets();
    Some(match o {
        [169, 254, 169, 254] | [100, 100, 100, 200] => AddrClass::Metadata,
        [127, ..] => AddrClass::Loopback,
        [10, ..] | [192, 168, ..] => AddrClass::Private,
        [172, b, ..] if (16..32).contains(&b) => AddrClass::Private,
        [169, 254, ..] => AddrClass::LinkLocal,
        [100, b, ..] if (64..128).contains(&b) => AddrClass::SharedCgnat,
        [0, ..] => AddrClass::Unspecified,
        [255, 255, 255, 255] => AddrClass::Broadcast,
        [a, ..] if (224..240).contains(&a) => AddrClass::Multicast,
        [a, ..] if a >= 240 => AddrClass::Reserved,
        [192, 0, 0, _] => AddrClass::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddrClass> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if ip.is_unspecified() {
        return Some(AddrClass::Unspecified);
    }
    if ip.is_loopback() {
        return Some(AddrClass::Loopback);
    }
    // IPv4-compatible (deprecated, but some stacks still route it).
    if s[..6] == [0; 6] {
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
    Some(match s[0] {
        _ if s == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] => AddrClass::Metadata,
        a if a & 0xffc0 == 0xfe80 => AddrClass::LinkLocal,
        a if a & 0xffc0 == 0xfec0 => AddrClass::UniqueLocal,
        a if a & 0xfe00 == 0xfc00 => AddrClass::UniqueLocal,
        a if a & 0xff00 == 0xff00 => AddrClass::Multicast,
        _ => return None,
    })
}
