//! The connector's IP allow-list: CIDRs, IPv4 and IPv6.

use std::net::IpAddr;

use ipnet::IpNet;

/// Parses an allow-list entry; a bare address means that single host.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("`{s}` is not an IPv4 or IPv6 address or CIDR"))
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as dual-stack sockets report IPv4
/// clients) as the IPv4 address it carries; any other address as it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An empty list allows every address. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are
/// matched as the IPv4 address they carry, so a dual-stack listener cannot bypass a v4 rule.
pub fn allowed(allow_list: &[IpNet], ip: IpAddr) -> bool {
    if allow_list.is_empty() {
        return true;
    }
    let ip = canonical(ip);
    allow_list.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<IpNet> {
        items.iter().map(|s| parse_cidr(s).unwrap()).collect()
    }

    #[test]
    fn empty_list_allows_all() {
        assert!(allowed(&[], "8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn v4_and_v6_ranges() {
        let l = list(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]);
        assert!(allowed(&l, "10.1.2.3".parse().unwrap()));
        assert!(allowed(&l, "192.0.2.7".parse().unwrap()));
        assert!(!allowed(&l, "192.0.2.8".parse().unwrap()));
        assert!(allowed(&l, "2001:db8:1::5".parse().unwrap()));
        assert!(!allowed(&l, "2001:db9::1".parse().unwrap()));
        assert!(!allowed(&l, "::1".parse().unwrap()));
    }

    #[test]
    fn mapped_v4_matches_v4_rule() {
        let l = list(&["127.0.0.0/8"]);
        assert!(allowed(&l, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(!allowed(
            &list(&["10.0.0.0/8"]),
            "::ffff:127.0.0.1".parse().unwrap()
        ));
    }

    #[test]
    fn bad_entries_are_named() {
        assert!(
            parse_cidr("10.0.0.0/33")
                .unwrap_err()
                .contains("10.0.0.0/33")
        );
        assert!(parse_cidr("example.org").is_err());
        assert_eq!(
            parse_cidr(" 10.1.2.3/8 ").unwrap().to_string(),
            "10.0.0.0/8"
        );
    }
}
