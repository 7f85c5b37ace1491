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

use std::net::{IpAddr, SocketAddr};
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

/// The native path, minus its API version when the base URL already ends with it: a base URL
/// copied as `https://host/v1` (as OpenAI-compatible providers document it) and the SDK's
/// `/v1/chat/completions` make `/v1/chat/completions`, not `/v1/v1/…`.
pub fn without_repeated_version<'p>(base: &url::Url, path: &'p str) -> &'p str {
    let last = base
        .path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    let is_version = last.len() > 1 && last.starts_with('v') && last.as_bytes()[1].is_ascii_digit();
    if !is_version {
        return path;
    }
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(last)) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    }
}

/// Addresses that are not globally reachable, from IANA's IPv4 and IPv6 Special-Purpose
/// Address Registries (entries marked "Globally Reachable: False", and the translation and
/// tunnelling prefixes that embed an IPv4 address, which could lead to one of these), plus
/// multicast. An organization-chosen base URL must never reach any of them.
const BLOCKED: &[&str] = &[
    // IPv4
    "0.0.0.0/8",       // "this network"
    "10.0.0.0/8",      // private
    "100.64.0.0/10",   // shared address space (carrier-grade NAT)
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link-local, cloud metadata (169.254.169.254)
    "172.16.0.0/12",   // private
    "192.0.0.0/24",    // IETF protocol assignments
    "192.0.2.0/24",    // documentation (TEST-NET-1)
    "192.88.99.0/24",  // 6to4 relay anycast (deprecated)
    "192.168.0.0/16",  // private
    "198.18.0.0/15",   // benchmarking
    "198.51.100.0/24", // documentation (TEST-NET-2)
    "203.0.113.0/24",  // documentation (TEST-NET-3)
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, and 255.255.255.255 broadcast
    // IPv6
    "::/128",         // unspecified
    "::1/128",        // loopback
    "::/96",          // IPv4-compatible (deprecated, embeds an IPv4 address)
    "::ffff:0:0/96",  // IPv4-mapped (checked as the IPv4 address too)
    "64:ff9b::/96",   // IPv4/IPv6 translation (NAT64 to any IPv4 address)
    "64:ff9b:1::/48", // local-use IPv4/IPv6 translation
    "100::/64",       // discard-only
    "100:0:0:1::/64", // dummy prefix
    "2001::/23",      // IETF protocol assignments (Teredo, ORCHIDv2, …)
    "2001:db8::/32",  // documentation
    "2002::/16",      // 6to4 (embeds an IPv4 address)
    "3fff::/20",      // documentation
    "5f00::/16",      // segment routing (SRv6) SIDs
    "fc00::/7",       // unique local
    "fe80::/10",      // link-local
    "fec0::/10",      // site-local (deprecated)
    "ff00::/8",       // multicast
];

fn blocked_nets() -> &'static [ipnet::IpNet] {
    static NETS: std::sync::OnceLock<Vec<ipnet::IpNet>> = std::sync::OnceLock::new();
    NETS.get_or_init(|| BLOCKED.iter().filter_map(|c| c.parse().ok()).collect())
}

/// Whether an address must never be the target of an organization-chosen request.
pub fn is_blocked_ip(ip: IpAddr) -> bool {
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = v6.to_ipv4_mapped()
        && is_blocked_ip(IpAddr::V4(v4))
    {
        return true;
    }
    blocked_nets().iter().any(|n| n.contains(&ip))
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
    let url = validate_target_url(raw, allow_local, "https://api.example.com/v1")?;
    if url.query().is_some() {
        return Err("Remove the query and fragment from the URL.".into());
    }
    Ok(url)
}

/// Checks a webhook URL an organization wants alerts posted to: like a base URL, but a query
/// is allowed (some services carry their token there).
pub fn validate_webhook_url(raw: &str, allow_local: bool) -> Result<Url, String> {
    if raw.trim().len() > 2048 {
        return Err("Use a URL of at most 2048 characters.".into());
    }
    validate_target_url(raw, allow_local, "https://hooks.slack.com/services/…")
}

fn validate_target_url(raw: &str, allow_local: bool, example: &str) -> Result<Url, String> {
    let raw = raw.trim();
    let url = Url::parse(raw).map_err(|_| format!("Enter a full URL such as {example}."))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_local => {}
        "http" => return Err("Use https:// (plain http is only allowed in dev mode).".into()),
        _ => return Err("Use an https:// URL.".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("Remove the user name and password from the URL.".into());
    }
    if url.fragment().is_some() {
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

/// The addresses of an organization-chosen host that may be connected to (for connections
/// that do not go through a guarded HTTP client, such as WebSockets): resolved here, checked,
/// and connected to by address, so a DNS answer cannot change between check and connect.
pub async fn resolve_checked(
    host: &str,
    port: u16,
    allow_local: bool,
) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("{host} cannot be resolved: {e}"))?
        .filter(|a| check_ip(a.ip(), allow_local).is_ok())
        .collect();
    if addrs.is_empty() {
        return Err(format!(
            "{host} resolves only to addresses that are not allowed"
        ));
    }
    Ok(addrs)
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
            // From the registries, missed by the standard library's predicates.
            "64:ff9b:1::1",
            "::7f00:1",
            "192.0.0.1",
            "192.0.0.170",
            "2001::1",
            "2001:20::1",
            "100::1",
            "5f00::1",
            "3fff::1",
            "fec0::1",
            "2002:7f00:1::",
            "ff02::1",
        ] {
            assert!(is_blocked_ip(ip.parse().unwrap()), "{ip} not blocked");
        }
        // Every table entry parses (a typo would silently open a range).
        assert_eq!(blocked_nets().len(), BLOCKED.len());
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
