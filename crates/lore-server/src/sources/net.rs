//! Outgoing HTTP on a user's behalf (web and S3 sources, webhooks), kept off internal networks:
//! every address a request connects to is checked after DNS resolution, on every redirect too,
//! unless the operator allowed private addresses (`--allow-private-sources`).

use std::net::IpAddr;
use std::time::Duration;

use lore_core::error::{Code, Error};
pub use lore_core::outbound::Policy;
use reqwest::Url;

pub const USER_AGENT: &str = concat!("LoreBot/", env!("CARGO_PKG_VERSION"));

pub use lore_core::outbound::is_public;

pub(super) fn refused(what: &str) -> Error {
    Error::new(
        Code::SourceUnreachable,
        format!(
            "{what} is a private, loopback or link-local address; this server does not fetch from those \
             (its operator can allow them with --allow-private-sources)"
        ),
    )
}

/// Refuses a URL whose host is a literal private address (names are checked at resolution).
pub fn check_literal(url: &Url, policy: &Policy) -> Result<(), Error> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::new(Code::InvalidSourceConfig, format!("{url}: only http and https URLs can be fetched")));
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(Error::new(Code::InvalidSourceConfig, format!("{url} has no host"))),
    };
    if policy.permits(ip) { Ok(()) } else { Err(refused(&ip.to_string())) }
}

/// A client for fetching what users name: held to the outbound policy (addresses checked after
/// DNS and on every redirect), a total timeout per request.
pub fn client(policy: &Policy, timeout: Duration) -> Result<reqwest::Client, Error> {
    policy
        .client_builder()
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Error::internal(format!("HTTP client: {e}")))
}

/// What went wrong with a request, for a person: the guard's own refusal when it was that.
pub fn describe(url: &str, e: &reqwest::Error) -> Error {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(cause) = source {
        if let Some(lore) = cause.downcast_ref::<Error>() {
            // For a data source, a refused destination is one it cannot reach.
            let code = if lore.code == Code::OutboundNotAllowed { Code::SourceUnreachable } else { lore.code };
            return Error::new(code, format!("{url}: {}", lore.message));
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
        let (strict, open) = (Policy::default(), Policy { allow_private: true, ..Policy::default() });
        let url = Url::parse("http://169.254.169.254/latest/meta-data").expect("url");
        assert_eq!(check_literal(&url, &strict).expect_err("refused").code, Code::SourceUnreachable);
        assert!(check_literal(&url, &open).is_ok());
        let some = Policy { allowed: Policy::parse_allowed("169.254.169.254").expect("ip"), ..Policy::default() };
        assert!(check_literal(&url, &some).is_ok());
        assert!(check_literal(&Url::parse("http://[::1]:8080/").expect("url"), &some).is_err());
        assert!(check_literal(&Url::parse("https://example.com/").expect("url"), &strict).is_ok());
        assert!(check_literal(&Url::parse("file:///etc/passwd").expect("url"), &open).is_err());
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
        let http =
            client(&Policy { allow_private: true, ..Policy::default() }, Duration::from_secs(5)).expect("client");
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
        let http = client(&Policy::default(), Duration::from_secs(5)).expect("client");
        let url = format!("http://localhost:{port}/");
        let e = http.get(&url).send().await.expect_err("refused");
        let e = describe(&url, &e);
        assert_eq!(e.code, Code::SourceUnreachable);
        assert!(e.message.contains("private"), "{}", e.message);
    }
}
