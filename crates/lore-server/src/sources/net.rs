//! Outgoing HTTP on a user's behalf (web and S3 sources, webhooks), kept off internal networks:
//! every address a request connects to is checked after DNS resolution, on every redirect too,
//! unless the operator allowed private addresses (`--allow-private-sources`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lore_core::error::{Code, Error};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Redirects followed at most, each checked like the first request.
const MAX_REDIRECTS: usize = 5;
pub const USER_AGENT: &str = concat!("LoreBot/", env!("CARGO_PKG_VERSION"));

/// Whether an address is on the public internet: not loopback, private, link-local, shared
/// (CGNAT), documentation, benchmarking, multicast, broadcast or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address in IPv6 clothing is judged as IPv4.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64, which reaches IPv4 inside
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
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // benchmarking
        || a >= 240) // reserved
}

pub(super) fn refused(what: &str) -> Error {
    Error::new(
        Code::SourceUnreachable,
        format!(
            "{what} is a private, loopback or link-local address; this server does not fetch from those \
             (its operator can allow them with --allow-private-sources)"
        ),
    )
}

/// Resolves host names like the system does, then refuses private answers: the check and the
/// connection use the same addresses, so DNS cannot change its answer in between.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| !is_public(a.ip())) {
                return Err(Box::new(refused(&host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Refuses a URL whose host is a literal private address (names are checked at resolution).
pub fn check_literal(url: &Url, allow_private: bool) -> Result<(), Error> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::new(Code::InvalidSourceConfig, format!("{url}: only http and https URLs can be fetched")));
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(Error::new(Code::InvalidSourceConfig, format!("{url} has no host"))),
    };
    if allow_private || is_public(ip) { Ok(()) } else { Err(refused(&ip.to_string())) }
}

/// A client for fetching what users name: public addresses only (unless allowed), bounded
/// redirects each checked again, a total timeout per request.
pub fn client(allow_private: bool, timeout: Duration) -> Result<reqwest::Client, Error> {
    lore_core::tls::ensure_provider();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error(Error::new(Code::SourceUnreachable, format!("more than {MAX_REDIRECTS} redirects")))
        } else if let Err(e) = check_literal(attempt.url(), allow_private) {
            attempt.error(e)
        } else {
            attempt.follow()
        }
    });
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .redirect(policy);
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder.build().map_err(|e| Error::internal(format!("HTTP client: {e}")))
}

/// What went wrong with a request, for a person: the guard's own refusal when it was that.
pub fn describe(url: &str, e: &reqwest::Error) -> Error {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(cause) = source {
        if let Some(lore) = cause.downcast_ref::<Error>() {
            return Error::new(lore.code, format!("{url}: {}", lore.message));
        }
        source = cause.source();
    }
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        e.to_string()
    };
    Error::new(Code::SourceUnreachable, format!("{url}: {what}"))
}

/// Reads a response body, refusing one larger than `limit` bytes before it is all in memory.
pub async fn read_limited(url: &str, mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, Error> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large(url, limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(url, &e))? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large(url, limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large(url: &str, limit: u64) -> Error {
    Error::new(Code::PayloadTooLarge, format!("{url} is larger than the server's upload limit ({limit} bytes)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["1.1.1.1", "8.8.8.8", "151.101.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn literal_private_hosts_are_refused_unless_allowed() {
        let url = Url::parse("http://169.254.169.254/latest/meta-data").expect("url");
        assert_eq!(check_literal(&url, false).expect_err("refused").code, Code::SourceUnreachable);
        assert!(check_literal(&url, true).is_ok());
        assert!(check_literal(&Url::parse("http://[::1]:8080/").expect("url"), false).is_err());
        assert!(check_literal(&Url::parse("https://example.com/").expect("url"), false).is_ok());
        assert!(check_literal(&Url::parse("file:///etc/passwd").expect("url"), true).is_err());
    }

    /// Lore once shipped without TLS compiled in: every https call failed. A client must open an
    /// https connection with a TLS handshake (a ClientHello record starts with 0x16).
    #[tokio::test]
    async fn https_urls_are_spoken_with_tls() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let first_bytes = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 5];
            socket.read_exact(&mut buf).await.expect("read");
            buf
        });
        let http = client(true, Duration::from_secs(5)).expect("client");
        let request = tokio::spawn(async move { http.get(format!("https://127.0.0.1:{port}/")).send().await });
        let record = tokio::time::timeout(Duration::from_secs(10), first_bytes)
            .await
            .expect("the client never connected: is TLS compiled in?")
            .expect("join");
        assert_eq!((record[0], record[1]), (0x16, 0x03), "a TLS handshake record: {record:?}");
        request.abort();
    }

    #[tokio::test]
    async fn names_that_resolve_to_private_addresses_are_refused_at_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let http = client(false, Duration::from_secs(5)).expect("client");
        let url = format!("http://localhost:{port}/");
        let e = http.get(&url).send().await.expect_err("refused");
        let e = describe(&url, &e);
        assert_eq!(e.code, Code::SourceUnreachable);
        assert!(e.message.contains("private"), "{}", e.message);
    }
}
