//! Outbound HTTP, in one place: the clients the gateway and the credential "Test" button call
//! providers with, the header each provider reads its key from, and errors described without
//! the URL (which may carry a `?key=`).
//!
//! Requests to addresses an organization chose (custom OpenAI-compatible base URLs) are guarded
//! against server-side request forgery. A base URL must
//! be https with a host name or public address, no credentials and no fragment; and because a
//! name can resolve (or later re-resolve) to anything, every address is checked again where the
//! connection is made, by a DNS resolver that refuses private, loopback, link-local, shared,
//! benchmark, multicast and metadata ranges. Redirects are never followed.
//!
//! `ANTIX_DEV_MODE=true` lets an operator allow `http://` and loopback targets for local models.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderName, HeaderValue};
use url::{Host, Url};

use crate::domain::Provider;

/// How long an idle pooled connection to a provider is kept for reuse.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// The client for the operator-configured provider hosts. Redirects are never followed: a
/// provider that redirects is answered as it answered.
pub fn client(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_idle_timeout(POOL_IDLE)
        .build()
}

/// The header a provider reads its API key from, with the value marked sensitive (so HTTP
/// libraries never log it). `Err` when the secret cannot be a header value.
pub fn provider_auth(
    provider: Provider,
    secret: &str,
) -> Result<(HeaderName, HeaderValue), http::header::InvalidHeaderValue> {
    let (name, value) = match provider {
        Provider::OpenAi => (header::AUTHORIZATION, format!("Bearer {secret}")),
        Provider::Anthropic => (HeaderName::from_static("x-api-key"), secret.to_owned()),
        Provider::Gemini => (HeaderName::from_static("x-goog-api-key"), secret.to_owned()),
    };
    let mut value = HeaderValue::from_str(&value)?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// A reqwest error in words, without the URL (which may carry a `?key=`).
pub fn describe_error(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut msg = if e.is_connect() {
        "connection failed".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_body() || e.is_decode() {
        "the response body broke off".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.contains("://") && !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

/// Whether an address must never be the target of an organization-chosen request.
pub fn is_blocked_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_blocked_v4(v4);
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg[0] == 0x64 && seg[1] == 0xff9b) // NAT64 to any IPv4
                || seg[0] == 0x2002 // 6to4 wraps an IPv4
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        }
    }
}

fn is_blocked_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // includes 169.254.169.254, the cloud metadata address
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0 // 0.0.0.0/8
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space 100.64/10
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240 // reserved
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

/// Checks a base URL an organization wants to use. `allow_local` (dev mode) admits `http://`
/// and loopback.
pub fn validate_base_url(raw: &str, allow_local: bool) -> Result<Url, String> {
    let raw = raw.trim();
    let url = Url::parse(raw)
        .map_err(|_| "Enter a full URL such as https://api.example.com/v1.".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_local => {}
        "http" => return Err("Use https:// (plain http is only allowed in dev mode).".into()),
        _ => return Err("Use an https:// URL.".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("Remove the user name and password from the URL.".into());
    }
    if url.fragment().is_some() || url.query().is_some() {
        return Err("Remove the query and fragment from the URL.".into());
    }
    match url.host() {
        None => return Err("The URL has no host.".into()),
        Some(Host::Ipv4(v4)) => check_ip(IpAddr::V4(v4), allow_local)?,
        Some(Host::Ipv6(v6)) => check_ip(IpAddr::V6(v6), allow_local)?,
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if (d == "localhost" || d.ends_with(".localhost")) && !allow_local {
                return Err("Private and local addresses are not allowed.".into());
            }
        }
    }
    Ok(url)
}

fn check_ip(ip: IpAddr, allow_local: bool) -> Result<(), String> {
    if is_blocked_ip(ip) && !(allow_local && is_loopback(ip)) {
        Err("Private and local addresses are not allowed.".into())
    } else {
        Ok(())
    }
}

/// Re-checks a URL's literal IP host right before a request (the resolver never sees literals).
pub fn check_target(url: &Url, allow_local: bool) -> Result<(), String> {
    match url.host() {
        Some(Host::Ipv4(v4)) => check_ip(IpAddr::V4(v4), allow_local),
        Some(Host::Ipv6(v6)) => check_ip(IpAddr::V6(v6), allow_local),
        Some(Host::Domain(_)) => Ok(()),
        None => Err("no host".into()),
    }
}

/// Resolves names and drops every address that may not be contacted; a name with nothing left
/// fails to resolve, so the connection is never made.
struct GuardedResolver {
    allow_local: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_local = self.allow_local;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| check_ip(a.ip(), allow_local).is_ok())
                .collect();
            if addrs.is_empty() {
                return Err(
                    format!("{host} resolves only to addresses that are not allowed").into(),
                );
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An HTTP client for organization-chosen targets.
pub fn guarded_client(
    connect_timeout: Duration,
    allow_local: bool,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver { allow_local }))
        .no_proxy()
        .tcp_nodelay(true)
        .pool_idle_timeout(POOL_IDLE)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_blocked_ip(ip.parse().unwrap()), "{ip} not blocked");
        }
        for ip in ["1.1.1.1", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_blocked_ip(ip.parse().unwrap()), "{ip} blocked");
        }
    }

    #[test]
    fn base_urls() {
        assert!(validate_base_url("https://api.mistral.ai/v1", false).is_ok());
        for bad in [
            "http://api.example.com",
            "https://169.254.169.254/latest",
            "https://127.0.0.1:8080",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://0/",
            "https://2130706433/",
            "https://0x7f.0.0.1/",
            "https://0177.0.0.1/",
            "https://10.0.0.1/",
            "https://user:pw@api.example.com",
            "https://api.example.com/#frag",
            "file:///etc/passwd",
            "gopher://x",
            "https://localhost/v1",
            "not a url",
        ] {
            assert!(validate_base_url(bad, false).is_err(), "{bad} accepted");
        }
        assert!(validate_base_url("http://127.0.0.1:9999", true).is_ok());
        assert!(validate_base_url("http://10.0.0.1:9999", true).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_private_addresses() {
        let client = guarded_client(Duration::from_secs(2), false).unwrap();
        // `localhost` resolves to loopback: refused at resolution, nothing is contacted.
        let err = client.get("http://localhost:9/").send().await.unwrap_err();
        assert!(
            err.is_connect() || err.to_string().contains("not allowed"),
            "{err}"
        );
    }
}
