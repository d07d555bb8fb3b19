//! Which addresses a webhook may be sent to (SSRF): only global unicast ones. Every address
//! a destination resolves to is checked before connecting (the client's resolver, see
//! `client.rs`), and an IP-literal URL host — which skips the resolver — is checked here
//! too. `KOPPEL_WEBHOOK_ALLOW_LOOPBACK` lets loopback through, for local use and tests
//! only; nothing else is ever allowed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused; `as_str` names it in the refusal ("a link-local address").
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
pub enum Class {
    Global,
    Loopback,
    /// RFC 1918.
    Private,
    /// 169.254/16 and fe80::/10, except the metadata addresses.
    LinkLocal,
    /// Cloud instance metadata: 169.254.169.254, fd00:ec2::254.
    Metadata,
    /// Carrier-grade NAT, 100.64/10.
    #[strum(serialize = "shared (CGNAT)")]
    SharedCgnat,
    Multicast,
    Unspecified,
    Broadcast,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32.
    Documentation,
    /// 198.18/15.
    #[strum(serialize = "benchmarking")]
    Benchmark,
    /// fc00::/7.
    UniqueLocal,
    /// 0/8, 192.0.0/24, 240/4 and the like: not routable on the internet.
    Reserved,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

pub fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let [a, b, c, _] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Class::Metadata
    } else if ip.is_unspecified() {
        Class::Unspecified
    } else if ip.is_loopback() {
        Class::Loopback
    } else if ip.is_private() {
        Class::Private
    } else if ip.is_link_local() {
        Class::LinkLocal
    } else if a == 100 && (b & 0xc0) == 64 {
        Class::SharedCgnat
    } else if ip.is_multicast() {
        Class::Multicast
    } else if ip.is_broadcast() {
        Class::Broadcast
    } else if ip.is_documentation() {
        Class::Documentation
    } else if a == 198 && (b & 0xfe) == 18 {
        Class::Benchmark
    } else if a == 0 || a >= 240 || (a == 192 && b == 0 && c == 0) {
        Class::Reserved
    } else {
        Class::Global
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let seg = ip.segments();
    // IPv4 inside IPv6: mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::/96
    // and 6to4 2002::/16 reach the embedded IPv4 address, so they are judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if seg[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback() {
        return classify_v4(Ipv4Addr::from(((seg[6] as u32) << 16) | seg[7] as u32));
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(Ipv4Addr::from(((seg[6] as u32) << 16) | seg[7] as u32));
    }
    if seg[0] == 0x2002 {
        return classify_v4(Ipv4Addr::from(((seg[1] as u32) << 16) | seg[2] as u32));
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Class::Metadata
    } else if ip.is_unspecified() {
        Class::Unspecified
    } else if ip.is_loopback() {
        Class::Loopback
    } else if ip.is_multicast() {
        Class::Multicast
    } else if ip.is_unique_local() {
        Class::UniqueLocal
    } else if ip.is_unicast_link_local() {
        Class::LinkLocal
    } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        Class::Documentation
    } else if seg[0] & 0xe000 != 0x2000 {
        // Only 2000::/3 is global unicast today.
        Class::Reserved
    } else {
        Class::Global
    }
}

/// `Ok` if a webhook may go to `ip`; else the class that refuses it.
pub fn check(ip: IpAddr, allow_loopback: bool) -> Result<(), Class> {
    match classify(ip) {
        Class::Global => Ok(()),
        Class::Loopback if allow_loopback => Ok(()),
        c => Err(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Class {
        classify(s.parse().unwrap())
    }

    #[test]
    fn every_class_is_recognised() {
        let cases = [
            ("93.184.215.14", Class::Global),
            ("2a00:1450:4001:80b::200e", Class::Global),
            ("127.0.0.1", Class::Loopback),
            ("127.255.0.9", Class::Loopback),
            ("::1", Class::Loopback),
            ("10.0.0.1", Class::Private),
            ("172.16.5.4", Class::Private),
            ("172.31.255.255", Class::Private),
            ("192.168.1.1", Class::Private),
            ("169.254.1.1", Class::LinkLocal),
            ("fe80::1", Class::LinkLocal),
            ("169.254.169.254", Class::Metadata),
            ("fd00:ec2::254", Class::Metadata),
            ("100.64.0.1", Class::SharedCgnat),
            ("100.127.255.254", Class::SharedCgnat),
            ("224.0.0.1", Class::Multicast),
            ("ff02::1", Class::Multicast),
            ("0.0.0.0", Class::Unspecified),
            ("::", Class::Unspecified),
            ("255.255.255.255", Class::Broadcast),
            ("192.0.2.10", Class::Documentation),
            ("198.51.100.1", Class::Documentation),
            ("203.0.113.7", Class::Documentation),
            ("2001:db8::1", Class::Documentation),
            ("198.18.0.1", Class::Benchmark),
            ("198.19.255.1", Class::Benchmark),
            ("fc00::1", Class::UniqueLocal),
            ("fd00::1", Class::UniqueLocal),
            ("0.1.2.3", Class::Reserved),
            ("240.0.0.1", Class::Reserved),
            ("192.0.0.8", Class::Reserved),
        ];
        for (ip, want) in cases {
            assert_eq!(class(ip), want, "{ip}");
        }
        let names: Vec<&str> = [
            Class::LinkLocal,
            Class::SharedCgnat,
            Class::Benchmark,
            Class::UniqueLocal,
            Class::Private,
        ]
        .map(Class::as_str)
        .into();
        assert_eq!(
            names,
            [
                "link-local",
                "shared (CGNAT)",
                "benchmarking",
                "unique-local",
                "private"
            ]
        );
        // Neighbours of the ranges stay global.
        for ip in ["172.32.0.1", "100.128.0.1", "198.20.0.1", "11.0.0.1"] {
            assert_eq!(class(ip), Class::Global, "{ip}");
        }
    }

    #[test]
    fn ipv4_inside_ipv6_is_judged_by_the_ipv4_address() {
        assert_eq!(class("::ffff:127.0.0.1"), Class::Loopback);
        assert_eq!(class("::ffff:10.1.2.3"), Class::Private);
        assert_eq!(class("::ffff:169.254.169.254"), Class::Metadata);
        assert_eq!(class("::10.1.2.3"), Class::Private);
        assert_eq!(class("64:ff9b::a9fe:a9fe"), Class::Metadata);
        assert_eq!(class("2002:c0a8:0101::1"), Class::Private);
        assert_eq!(class("::ffff:93.184.215.14"), Class::Global);
    }

    #[test]
    fn the_loopback_switch_allows_loopback_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(check(ip("127.0.0.1"), false), Err(Class::Loopback));
        assert_eq!(check(ip("127.0.0.1"), true), Ok(()));
        assert_eq!(check(ip("::1"), true), Ok(()));
        assert_eq!(check(ip("::ffff:127.0.0.1"), true), Ok(()));
        assert_eq!(check(ip("10.0.0.1"), true), Err(Class::Private));
        assert_eq!(check(ip("169.254.169.254"), true), Err(Class::Metadata));
        assert_eq!(check(ip("fd00::1"), true), Err(Class::UniqueLocal));
        assert_eq!(check(ip("93.184.215.14"), false), Ok(()));
    }
}
