//! Where a webhook may be sent. URLs are refused when they resolve to private, loopback,
//! link-local or otherwise non-public addresses (SSRF), unless the tenant explicitly
//! allows private destinations. Deliveries resolve again and connect only to the addresses
//! checked, so a DNS answer that changes after the check cannot reach an internal host.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Why a destination is refused; the message is shown to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The syntactic checks of a webhook URL: http(s), a host, no credentials, at most 2,000
/// characters; plain http only where private destinations are allowed.
pub fn parse(url: &str, allow_private: bool) -> Result<url::Url, Refused> {
    if url.len() > 2_000 {
        return Err(Refused("url must be at most 2000 characters".into()));
    }
    let parsed =
        url::Url::parse(url).map_err(|error| Refused(format!("url is not a URL: {error}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => {
            return Err(Refused(
                "url must use https (plain http is accepted only where the tenant allows private destinations)".into(),
            ));
        }
        other => return Err(Refused(format!("url scheme {other} is not http(s)"))),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Refused("url needs a host".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Refused("url must not carry credentials".into()));
    }
    Ok(parsed)
}

/// Resolves the URL's host and checks every address; returns the addresses to connect to.
pub async fn resolve(url: &url::Url, allow_private: bool) -> Result<Vec<SocketAddr>, Refused> {
    let host = url
        .host()
        .ok_or_else(|| Refused("url needs a host".into()))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| Refused("url needs a port".into()))?;
    let addresses: Vec<SocketAddr> = match host {
        url::Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        url::Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        url::Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|error| Refused(format!("host {name} does not resolve: {error}")))?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(Refused(format!("host {host} has no address")));
    }
    if !allow_private
        && let Some(address) = addresses.iter().find(|address| !is_public(address.ip()))
    {
        return Err(Refused(format!(
            "url resolves to {}, a private, loopback or link-local address; an admin can allow private destinations for the tenant",
            address.ip()
        )));
    }
    Ok(addresses)
}

/// Whether an address is on the public internet (not private, loopback, link-local,
/// shared, documentation, benchmark, multicast, reserved or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = ip.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let octets = ip.octets();
                return is_public_v4(Ipv4Addr::new(
                    octets[12], octets[13], octets[14], octets[15],
                ));
            }
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (segments[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
                || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
                || segments[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible ::a.b.c.d
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap())
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::7f00:1",
            "ff02::1",
        ] {
            assert!(!public(internal), "{internal} must not be public");
        }
        for outside in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(public(outside), "{outside} is public");
        }
    }

    #[test]
    fn urls_are_checked_before_any_lookup() {
        assert!(parse("https://hooks.example.com/chorus", false).is_ok());
        assert!(parse("http://hooks.example.com/chorus", false).is_err());
        assert!(parse("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(parse("ftp://hooks.example.com/", true).is_err());
        assert!(parse("https://user:pass@hooks.example.com/", false).is_err());
        assert!(parse("not a url", true).is_err());
        assert!(parse(&format!("https://a.example/{}", "x".repeat(2_000)), false).is_err());
    }

    #[tokio::test]
    async fn resolution_refuses_internal_addresses_unless_allowed() {
        for url in [
            "https://127.0.0.1/",
            "https://[::1]:8443/",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.7/",
            "https://localhost/",
        ] {
            let parsed = parse(url, false).unwrap();
            let refused = resolve(&parsed, false).await.unwrap_err();
            assert!(
                refused.0.contains("private") || refused.0.contains("resolve"),
                "{url}: {refused}"
            );
        }
        let local = parse("http://127.0.0.1:9000/", true).unwrap();
        assert_eq!(
            resolve(&local, true).await.unwrap(),
            vec!["127.0.0.1:9000".parse().unwrap()]
        );
    }
}
