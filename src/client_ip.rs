//! The client's address, for login throttling. The TCP peer is the client unless it is one of
//! the operator's reverse proxies (`ANTIX_TRUSTED_PROXIES`); then the forwarding headers are
//! read from the right, skipping trusted hops, and the first address not ours is the client.
//! Anything left of it was written by the client itself and proves nothing. Without trusted
//! proxies the headers are ignored entirely: anyone can send them.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// The client's address as far as it can be trusted.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return canonical(peer);
    }
    // Hops in order, nearest last: `Forwarded` when present (RFC 7239), else X-Forwarded-For.
    let mut hops: Vec<IpAddr> = forwarded_for(headers);
    if hops.is_empty() {
        hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(parse_addr)
            .collect();
    }
    let mut client = canonical(peer);
    for hop in hops.into_iter().rev() {
        client = canonical(hop);
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// `for=` of every `Forwarded` element, in order.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_addr(v))
                    .flatten()
            })
        })
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:5678`, `"[2001:db8::1]:443"`, `2001:db8::1`.
fn parse_addr(text: &str) -> Option<IpAddr> {
    let t = text.trim().trim_matches('"');
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = t.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    t.rsplit_once(':')?
        .0
        .parse::<std::net::Ipv4Addr>()
        .ok()
        .map(IpAddr::V4)
}

/// An IPv4 address mapped into IPv6 is the IPv4 address (a dual-stack listener reports them so).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_count_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let xff = h(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7")]);
        // Straight from the internet: the header is the client's own claim.
        assert_eq!(
            client_address(ip("198.51.100.1"), &xff, &trusted),
            ip("198.51.100.1")
        );
        // Through our proxy: the nearest address the proxy saw; the rest is the client's word.
        assert_eq!(
            client_address(ip("10.1.2.3"), &xff, &trusted),
            ip("203.0.113.7")
        );
        // Several of our proxies in a row are skipped.
        let chain = h(&[("x-forwarded-for", "203.0.113.7, 10.9.9.9")]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &chain, &trusted),
            ip("203.0.113.7")
        );
        // `Forwarded` wins over X-Forwarded-For; ports and brackets are read.
        let fwd = h(&[
            (
                "forwarded",
                r#"for=6.6.6.6, for="[2001:db8::7]:4711";proto=https"#,
            ),
            ("x-forwarded-for", "192.0.2.1"),
        ]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &fwd, &trusted),
            ip("2001:db8::7")
        );
        // No trusted proxies configured: headers never count.
        assert_eq!(client_address(ip("10.1.2.3"), &xff, &[]), ip("10.1.2.3"));
        // Junk in the header is skipped, not believed.
        let junk = h(&[("x-forwarded-for", "not-an-ip, 203.0.113.9:1234")]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &junk, &trusted),
            ip("203.0.113.9")
        );
        // A mapped IPv4 peer is the IPv4 address.
        assert_eq!(
            client_address(ip("::ffff:198.51.100.1"), &xff, &trusted),
            ip("198.51.100.1")
        );
    }
}
