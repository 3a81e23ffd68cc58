//! The one outbound-request policy: every HTTP client Lore builds for a destination a user can
//! name (chat and embedding providers, webhooks, connectors) is built from a [`Policy`]. The
//! destination is checked after DNS resolution (the check and the connection use the same
//! addresses) and on every redirect; literal addresses are checked too. Private, loopback,
//! link-local and shared (CGNAT) addresses are refused unless the operator allows them
//! (`--allow-private-sources`, or `--allow-outbound CIDR,...` for a few).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Code, Error};

/// Redirects followed at most, each checked like the first request.
pub const MAX_REDIRECTS: usize = 5;

/// Sent on every outbound request. Lore's API refuses a request that carries it, so an agent or
/// a knowledge base pointed at Lore itself (directly or through a redirect) cannot make it call
/// itself without end.
pub const HOP_HEADER: &str = "x-lore-hop";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Every address may be reached (a trusted network).
    pub allow_private: bool,
    /// Non-public networks that may be reached all the same (`--allow-outbound`).
    pub allowed: Vec<ipnet::IpNet>,
}

impl Policy {
    /// Reads `--allow-outbound`'s comma-separated CIDR blocks or addresses.
    pub fn parse_allowed(list: &str) -> Result<Vec<ipnet::IpNet>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("'{s}' is not a CIDR block or an IP address"))
            })
            .collect()
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        self.allow_private || is_public(ip) || self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// Refuses a URL that is not http(s), or whose host is a literal address the policy refuses
    /// (names are checked when they are resolved).
    pub fn check_url(&self, url: &str) -> Result<(), Error> {
        let parsed = url::Url::parse(url)
            .map_err(|_| Error::new(Code::OutboundNotAllowed, format!("'{}' is not a URL", shorten(url))))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::new(Code::OutboundNotAllowed, "only http and https addresses can be reached"));
        }
        let ip = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(Error::new(Code::OutboundNotAllowed, "the address has no host")),
        };
        if self.permits(ip) { Ok(()) } else { Err(refused(&ip.to_string())) }
    }

    /// A client builder held to this policy: resolution refuses addresses the policy refuses,
    /// and each redirect (at most [`MAX_REDIRECTS`]) is checked again.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        crate::tls::ensure_provider();
        let for_redirects = self.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error(Error::new(Code::OutboundNotAllowed, format!("more than {MAX_REDIRECTS} redirects")))
            } else if let Err(e) = for_redirects.check_url(attempt.url().as_str()) {
                attempt.error(e)
            } else {
                attempt.follow()
            }
        });
        let mut hop = reqwest::header::HeaderMap::new();
        hop.insert(HOP_HEADER, reqwest::header::HeaderValue::from_static("1"));
        let builder = reqwest::Client::builder().redirect(redirects).default_headers(hop);
        if self.allow_private { builder } else { builder.dns_resolver(Arc::new(Checked(self.clone()))) }
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(100).collect()
}

/// The refusal of a destination, naming the flags that lift it.
pub fn refused(what: &str) -> Error {
    Error::new(
        Code::OutboundNotAllowed,
        format!(
            "{} is a private, loopback or link-local address; this server does not send requests there \
             (its operator can allow it with --allow-outbound or --allow-private-sources)",
            shorten(what)
        ),
    )
}

/// Resolves names like the system does, then refuses any answer the policy refuses.
struct Checked(Policy);

impl reqwest::dns::Resolve for Checked {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| !policy.permits(a.ip())) {
                return Err(Box::new(refused(&host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

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

/// The one retry policy of outbound calls (embedding and chat providers, webhooks): up to
/// `attempts` tries, the wait between them starting at `backoff` and doubling. A `Retry-After`
/// the server sends ([`retry_after`]) lengthens the next wait to it; one longer than
/// `max_wait` is not waited for: the call gives up at once, and what called it (a job, a
/// delivery) is retried later instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Duration,
    pub max_wait: Duration,
}

/// What one try came to.
pub enum Attempt<T, E> {
    /// An answer, or a failure that another try would not change (a 4xx).
    Done(Result<T, E>),
    /// A failure another try may pass (a 429, a 5xx, a connection that failed), saying why,
    /// with the server's `Retry-After` if it sent one.
    Again { why: String, retry_after: Option<Duration> },
}

/// Every try failed: how many were made, and why the last one failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp {
    pub attempts: u32,
    pub last: String,
}

impl Retry {
    /// Runs `attempt` (given the try's number, from 1) until it is done or the policy gives up.
    pub async fn run<T, E, F, Fut>(&self, mut attempt: F) -> Result<Result<T, E>, GaveUp>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Attempt<T, E>>,
    {
        let attempts = self.attempts.max(1);
        let mut delay = self.backoff;
        let mut last = String::new();
        for n in 1..=attempts {
            match attempt(n).await {
                Attempt::Done(result) => return Ok(result),
                Attempt::Again { why, retry_after } => {
                    last = why;
                    if let Some(wait) = retry_after {
                        if wait > self.max_wait {
                            return Err(GaveUp { attempts: n, last });
                        }
                        delay = delay.max(wait);
                    }
                }
            }
            if n < attempts {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
        Err(GaveUp { attempts, last })
    }
}

/// Reads an answer's body, at most `limit` bytes: an address a tenant names must not make the
/// server hold an endless answer in memory. The error says what went wrong.
pub async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(format!("the answer is larger than {limit} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("the answer broke off: {e}"))? {
        if body.len() + chunk.len() > limit {
            return Err(format!("the answer is larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether an answer with this status may pass on another try: 429 and 5xx.
pub fn worth_retrying(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// A `Retry-After` header in seconds (the form providers send), at most an hour.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<f64>().ok()?;
    seconds.is_finite().then(|| Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_destinations_are_refused_unless_allowed() {
        let strict = Policy::default();
        for url in [
            "http://127.0.0.1:8080/v1",
            "http://[::1]/v1",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/",
            "http://100.64.0.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
        ] {
            let err = strict.check_url(url).expect_err(url);
            assert_eq!(err.code, Code::OutboundNotAllowed, "{url}");
        }
        assert_eq!(strict.check_url("file:///etc/passwd").expect_err("scheme").code, Code::OutboundNotAllowed);
        assert!(strict.check_url("https://api.openai.com/v1").is_ok());
        assert!(strict.check_url("http://93.184.216.34/").is_ok());
        let some =
            Policy { allowed: Policy::parse_allowed("127.0.0.1/32, 10.0.0.0/8").expect("cidrs"), ..Policy::default() };
        assert!(some.check_url("http://127.0.0.1:9/").is_ok());
        assert!(some.check_url("http://10.9.9.9/").is_ok());
        assert!(some.check_url("http://192.168.1.1/").is_err());
        assert!(Policy { allow_private: true, ..Policy::default() }.check_url("http://192.168.1.1/").is_ok());
        assert!(Policy::parse_allowed("not-a-net").is_err());
    }

    #[tokio::test]
    async fn retries_follow_one_policy() {
        let policy = Retry { attempts: 3, backoff: Duration::from_millis(1), max_wait: Duration::from_secs(1) };
        // A failure that passes on the third try.
        let mut tries = 0;
        let answer: Result<Result<&str, ()>, GaveUp> = policy
            .run(|n| {
                tries = n;
                async move {
                    if n < 3 {
                        Attempt::Again { why: format!("HTTP 503 ({n})"), retry_after: None }
                    } else {
                        Attempt::Done(Ok("好"))
                    }
                }
            })
            .await;
        assert_eq!((answer, tries), (Ok(Ok("好")), 3));
        // Every try fails: the last reason is kept.
        let answer: Result<Result<(), ()>, GaveUp> =
            policy.run(|n| async move { Attempt::Again { why: format!("HTTP 429 ({n})"), retry_after: None } }).await;
        assert_eq!(answer, Err(GaveUp { attempts: 3, last: "HTTP 429 (3)".into() }));
        // A rejection is not retried.
        let mut tries = 0;
        let answer: Result<Result<(), &str>, GaveUp> = policy
            .run(|n| {
                tries = n;
                async { Attempt::Done(Err("HTTP 400")) }
            })
            .await;
        assert_eq!((answer, tries), (Ok(Err("HTTP 400")), 1));
        // A Retry-After past the longest wait ends the call at once.
        let answer: Result<Result<(), ()>, GaveUp> = policy
            .run(|_| async { Attempt::Again { why: "HTTP 429".into(), retry_after: Some(Duration::from_secs(60)) } })
            .await;
        assert_eq!(answer, Err(GaveUp { attempts: 1, last: "HTTP 429".into() }));
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, reqwest::header::HeaderValue::from_static(" 2.5 "));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(2500)));
        headers.insert(reqwest::header::RETRY_AFTER, reqwest::header::HeaderValue::from_static("Wed, 21 Oct 2015"));
        assert_eq!(retry_after(&headers), None);
        assert!(worth_retrying(reqwest::StatusCode::BAD_GATEWAY) && !worth_retrying(reqwest::StatusCode::NOT_FOUND));
    }
}
