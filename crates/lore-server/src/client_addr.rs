//! The client's address. Without `--trusted-proxy` it is the socket's peer. Behind reverse proxies
//! named there, it is taken from `Forwarded` (RFC 7239), else `X-Forwarded-For`: the right-most
//! hop that is not a trusted proxy, since every hop left of that one was written by the client
//! and proves nothing. A request from an untrusted peer keeps the peer, whatever its headers say.
//! An IPv4-mapped IPv6 address is always given as the IPv4 address it is.
//! Allowed IPs, login throttling, `last_used_ip` and the usage log all read this one address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::state::AppState;

/// The request's client address, as [`resolve`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Middleware: puts the [`ClientAddr`] of every request in its extensions, gives the request an
/// id (its `X-Request-Id` response header), and runs it as that request for the audit log.
pub async fn track(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let mut ip = None;
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let client = resolve(peer.ip(), request.headers(), &state.config.trusted_proxies);
        request.extensions_mut().insert(ClientAddr(client));
        ip = Some(client);
    }
    let id = crate::audit::new_request_id();
    let context = crate::audit::RequestContext { id: id.clone(), ip };
    let mut response = crate::audit::within(context, next.run(request)).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The client address of a request from `peer` with `headers`, given the trusted proxies.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Hops as the proxies appended them, left (the client's claim) to right (the nearest proxy).
    let hops = forwarded_for(headers).unwrap_or_else(|| x_forwarded_for(headers));
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop that is not an address ("unknown", an obfuscated name, garbage) ends the walk:
        // the trusted proxy right of it is the best known.
        let Some(ip) = hop.as_deref().and_then(parse_hop) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// The `for=` of every element of every `Forwarded` header, in order; `None` without the header.
/// An element without `for=` counts as a hop that is not an address.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<String>>> {
    let values: Vec<&str> =
        headers.get_all(axum::http::header::FORWARDED).iter().filter_map(|v| v.to_str().ok()).collect();
    if values.is_empty() {
        return None;
    }
    let hops = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim().eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"').to_string())
            })
        })
        .collect();
    Some(hops)
}

fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<String>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| Some(hop.trim().to_string()))
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse::<IpAddr>().ok()).map(|ip| ip.to_canonical());
    }
    hop.parse::<SocketAddr>().ok().map(|s| s.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn untrusted_peers_keep_their_own_address() {
        let spoofed = headers(&[("x-forwarded-for", "198.51.100.7"), ("forwarded", "for=198.51.100.8")]);
        assert_eq!(resolve(ip("203.0.113.9"), &spoofed, &[]), ip("203.0.113.9"));
        let trusted = ["10.0.0.0/8".parse().expect("net")];
        assert_eq!(resolve(ip("203.0.113.9"), &spoofed, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net"), "2001:db8:ffff::/48".parse().expect("net")];
        // The client claims 1.1.1.1; the edge proxy saw 198.51.100.7; an inner proxy 10.1.1.1.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7"), ("x-forwarded-for", "10.1.1.1")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted), ip("198.51.100.7"));
        // Forwarded wins over X-Forwarded-For, with ports, quotes and IPv6.
        let h = headers(&[
            ("forwarded", r#"for=1.1.1.1, for="[2001:db8::17]:4711";proto=https, for=10.2.2.2:80"#),
            ("x-forwarded-for", "203.0.113.1"),
        ]);
        assert_eq!(resolve(ip("::ffff:10.0.0.2"), &h, &trusted), ip("2001:db8::17"));
        // Every hop trusted: the left-most.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.8.8.8")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted), ip("10.9.9.9"));
        // A hop that is no address stops the walk at the proxy right of it.
        let h = headers(&[("forwarded", "for=198.51.100.7, for=unknown, for=10.3.3.3")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted), ip("10.3.3.3"));
        // No header: the proxy itself.
        assert_eq!(resolve(ip("10.0.0.2"), &HeaderMap::new(), &trusted), ip("10.0.0.2"));
    }
}
