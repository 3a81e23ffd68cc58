//! Who is calling: a login session (the user, all scopes) or an API key (its scopes, maybe one
//! knowledge base), and in which workspace. Tokens and keys are random, shown once, and stored
//! only as SHA-256 hashes.
//!
//! A session acts in the person's own workspace unless the request names another with
//! `X-Lore-Workspace` (one they are a member of; any other answers 404, as another tenant's object
//! does). A key acts in the workspace it was made in, with its creator's role there, looked up on
//! every request: a member removed or demoted loses the access at once, with their keys.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use lore_core::error::{Code, Error, Result};
use lore_core::model::{ApiKey, Id, Role, Scope, User};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, error};
use crate::state::AppState;
use crate::usage::{KeyRequest, RequestRecord};
use lore_core::limits::{self, Decision};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const API_KEY_PREFIX: &str = "lore_";
pub const SESSION_PREFIX: &str = "lss_";

/// 32 random bytes, URL-safe base64 (43 characters).
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn hash_password(password: &str) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&bytes).map_err(|e| Error::internal(format!("salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash)
        .map(|parsed| argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

#[derive(Debug, Clone)]
pub enum Credential {
    Session { token_hash: String },
    ApiKey(Box<ApiKey>),
}

/// The header that picks the workspace a session's request acts in.
pub const WORKSPACE_HEADER: &str = "x-lore-workspace";

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The person acting (for a key made before workspaces, the account that owns it).
    pub user: User,
    /// The workspace the request acts in: everything it reads or writes belongs to it.
    pub workspace: Id,
    /// The person's role there (`owner` of their own workspace).
    pub role: Role,
    pub credential: Credential,
}

impl Principal {
    /// The owner of every object the request touches: the workspace's id.
    pub fn owner_id(&self) -> Id {
        self.workspace
    }

    /// The person acting.
    pub fn actor_id(&self) -> Id {
        self.user.id
    }

    pub fn require_role(&self, least: Role) -> Result<(), ApiError> {
        Ok(self.role.at_least(least)?)
    }

    pub fn api_key(&self) -> Option<&ApiKey> {
        match &self.credential {
            Credential::ApiKey(key) => Some(key),
            Credential::Session { .. } => None,
        }
    }

    /// What the caller may do: a key's scopes, a session's every scope, within the role.
    pub fn scopes(&self) -> Vec<Scope> {
        let held = match self.api_key() {
            Some(key) => key.scopes.clone(),
            None => Scope::ALL.to_vec(),
        };
        held.into_iter().filter(|s| self.role.allows(*s)).collect()
    }

    /// Sessions may do everything their role allows; a key needs the scope as well.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        match self.api_key() {
            Some(key) if !key.scopes.contains(&scope) => {
                Err(error(Code::InsufficientScope, format!("this API key lacks the '{}' scope", scope.as_str())))
            }
            _ if !self.role.allows(scope) => Err(error(
                Code::InsufficientRole,
                format!("the '{}' role does not include '{}'", self.role.as_str(), scope.as_str()),
            )),
            _ => Ok(()),
        }
    }

    pub fn require_session(&self) -> Result<(), ApiError> {
        match self.credential {
            Credential::Session { .. } => Ok(()),
            Credential::ApiKey(_) => {
                Err(error(Code::SessionRequired, "this action needs a login session, not an API key"))
            }
        }
    }

    /// A key bound to one knowledge base may not touch another of the same owner.
    pub fn require_knowledge_base(&self, knowledge_base_id: Id) -> Result<(), ApiError> {
        match self.api_key().and_then(|k| k.knowledge_base_id) {
            Some(allowed) if allowed != knowledge_base_id => {
                Err(error(Code::KnowledgeBaseNotAllowed, "this API key is restricted to another knowledge base"))
            }
            _ => Ok(()),
        }
    }

    pub fn require_superuser(&self) -> Result<(), ApiError> {
        self.require_session()?;
        if !self.user.is_superuser {
            return Err(error(Code::SuperuserRequired, "only an administrator may do this"));
        }
        Ok(())
    }

    /// The knowledge base a key is bound to, if any.
    pub fn bound_knowledge_base(&self) -> Option<Id> {
        self.api_key().and_then(|k| k.knowledge_base_id)
    }
}

/// The key's `security` settings: `allowed_ips` (addresses or CIDR blocks) and
/// `allowed_origins` (checked when the request carries an `Origin`, as browsers send).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySecurity {
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

impl KeySecurity {
    pub fn parse(value: &serde_json::Value) -> Result<KeySecurity> {
        let security: KeySecurity = serde_json::from_value(value.clone()).map_err(|e| {
            Error::validation(format!("security must be {{\"allowed_ips\": [...], \"allowed_origins\": [...]}}: {e}"))
        })?;
        for entry in &security.allowed_ips {
            parse_net(entry)
                .ok_or_else(|| Error::validation(format!("'{entry}' is not an IP address or CIDR block")))?;
        }
        Ok(security)
    }
}

fn parse_net(entry: &str) -> Option<ipnet::IpNet> {
    entry.parse::<ipnet::IpNet>().ok().or_else(|| entry.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

fn check_security(key: &ApiKey, parts: &Parts) -> Result<(), ApiError> {
    if key.security.as_object().is_none_or(|m| m.is_empty()) {
        return Ok(());
    }
    let security = KeySecurity::parse(&key.security)?;
    if !security.allowed_ips.is_empty() {
        let allowed = client_addr(parts)
            .is_some_and(|ip| security.allowed_ips.iter().filter_map(|e| parse_net(e)).any(|net| net.contains(&ip)));
        if !allowed {
            return Err(error(Code::IpNotAllowed, "this API key may not be used from this address"));
        }
    }
    if let Some(origin) = parts.headers.get(axum::http::header::ORIGIN).and_then(|v| v.to_str().ok())
        && !security.allowed_origins.is_empty()
        && !security.allowed_origins.iter().any(|o| o == origin || o == "*")
    {
        return Err(error(Code::OriginNotAllowed, "this API key may not be used from this origin"));
    }
    Ok(())
}

/// The part of a client address that identifies a client: an IPv4 address whole (an IPv4-mapped
/// IPv6 address as IPv4), an IPv6 address by its /64 prefix, the smallest block a site or a
/// single line is given, so that rotating through the addresses of one's own /64 changes nothing.
pub fn address_group(ip: Option<&str>) -> String {
    match ip.and_then(|ip| ip.parse::<IpAddr>().ok()) {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Some(IpAddr::V4(v4)) => v4.to_string(),
        None => ip.unwrap_or("?").to_string(),
    }
}

/// Events per key in a sliding window, in memory (each node keeps its own).
struct Window {
    events: Mutex<HashMap<String, VecDeque<Instant>>>,
    span: Duration,
}

impl Window {
    fn new(span: Duration) -> Self {
        Window { events: Mutex::new(HashMap::new()), span }
    }

    /// Seconds until `key` is under `limit` again, if it has reached it.
    fn wait(map: &mut HashMap<String, VecDeque<Instant>>, span: Duration, key: &str, limit: usize) -> Option<u64> {
        let now = Instant::now();
        let times = map.get_mut(key)?;
        while times.front().is_some_and(|t| now.duration_since(*t) > span) {
            times.pop_front();
        }
        if times.len() < limit {
            return None;
        }
        // The wait ends when enough of the oldest events have aged out of the window.
        let oldest = times.get(times.len() - limit).copied().unwrap_or(now);
        Some(span.saturating_sub(now.duration_since(oldest)).as_secs().max(1))
    }

    fn record(map: &mut HashMap<String, VecDeque<Instant>>, key: String) {
        if map.len() > 100_000 {
            map.clear(); // a flood of distinct keys: forget rather than grow without bound
        }
        map.entry(key).or_default().push_back(Instant::now());
    }
}

/// Failed logins in a 15-minute window, counted three ways:
///
/// - per account *and* client address (IPv6: /64): 5. Guessing one account's password from one
///   place stops there, and only that place is held back: the owner, signing in from elsewhere,
///   is not locked out by someone else's guesses.
/// - per client address, whatever the account: 20 (spraying one password over many accounts).
/// - per account, from everywhere: 100, a ceiling that only a distributed attack reaches; it
///   slows such an attack to 100 guesses per quarter hour instead of letting it run free, at the
///   price of a pause for the owner while it lasts.
///
/// Each answers `429 too_many_login_attempts` with the seconds to wait. A successful sign-in
/// clears the count of its account and address.
pub struct LoginThrottle {
    window: Window,
    per_account_address: usize,
    per_address: usize,
    per_account: usize,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new(Duration::from_secs(15 * 60), 5, 20, 100)
    }
}

impl LoginThrottle {
    pub fn new(window: Duration, per_account_address: usize, per_address: usize, per_account: usize) -> Self {
        LoginThrottle { window: Window::new(window), per_account_address, per_address, per_account }
    }

    fn keys(&self, account: &str, ip: Option<&str>) -> [(String, usize); 3] {
        let account = account.to_lowercase();
        let address = address_group(ip);
        [
            (format!("account+address:{account}|{address}"), self.per_account_address),
            (format!("address:{address}"), self.per_address),
            (format!("account:{account}"), self.per_account),
        ]
    }

    /// Seconds to wait, if this account or address has failed too often lately.
    pub fn check(&self, account: &str, ip: Option<&str>) -> Option<u64> {
        let mut map = self.window.events.lock().ok()?;
        self.keys(account, ip)
            .into_iter()
            .filter_map(|(key, limit)| Window::wait(&mut map, self.window.span, &key, limit))
            .max()
    }

    pub fn record_failure(&self, account: &str, ip: Option<&str>) {
        let Ok(mut map) = self.window.events.lock() else { return };
        for (key, _) in self.keys(account, ip) {
            Window::record(&mut map, key);
        }
    }

    /// The right password from this address: its own count for the account starts over. (The
    /// account's overall count does not: an attack elsewhere goes on being counted.)
    pub fn record_success(&self, account: &str, ip: Option<&str>) {
        if let Ok(mut map) = self.window.events.lock() {
            let [(key, _), ..] = self.keys(account, ip);
            map.remove(&key);
        }
    }
}

/// Registrations per client address (IPv6: per /64) per hour, counted before the password is
/// hashed (each hash costs 19 MiB and tens of milliseconds): past the limit, `429
/// too_many_registrations` with the seconds to wait. A limit of 0 counts nothing.
pub struct RegistrationThrottle {
    window: Window,
    limit: usize,
}

impl RegistrationThrottle {
    pub fn new(per_hour: u32) -> Self {
        RegistrationThrottle::with_window(Duration::from_secs(3600), per_hour as usize)
    }

    pub fn with_window(window: Duration, limit: usize) -> Self {
        RegistrationThrottle { window: Window::new(window), limit }
    }

    /// Counts an attempt from `ip`, or says how many seconds to wait when its allowance is spent.
    pub fn admit(&self, ip: Option<&str>) -> Result<(), u64> {
        if self.limit == 0 {
            return Ok(());
        }
        let Ok(mut map) = self.window.events.lock() else { return Ok(()) };
        let key = address_group(ip);
        if let Some(wait) = Window::wait(&mut map, self.window.span, &key, self.limit) {
            return Err(wait);
        }
        Window::record(&mut map, key);
        Ok(())
    }
}

/// The web console's session cookie: HttpOnly, so the console's script never holds the token.
pub const SESSION_COOKIE: &str = "lore_session";
/// The header a cookie-authenticated request that changes something must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token of a console session. It is derived from the session token, which only the
/// HttpOnly cookie carries, so a page of another origin can neither read nor compute it.
pub fn csrf_token(session_token: &str) -> String {
    let digest = Sha256::digest(format!("lore-csrf:{session_token}").as_bytes());
    hex::encode(&digest[..16])
}

/// The session token in the request's `Cookie` header, if any.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// The request's token: the Authorization header's, or else the console's session cookie, which
/// carries only sessions and, on anything but a read, must come with the session's CSRF token.
fn request_token(parts: &Parts) -> Result<&str, ApiError> {
    if parts.headers.contains_key(AUTHORIZATION) {
        return bearer(parts);
    }
    let Some(token) = session_cookie(&parts.headers) else {
        return bearer(parts);
    };
    if !token.starts_with(SESSION_PREFIX) {
        return Err(error(Code::InvalidToken, "the session cookie does not hold a session; sign in again"));
    }
    if !parts.method.is_safe() {
        let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let expected = csrf_token(token);
        let matches = sent.len() == expected.len()
            && sent.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if !matches {
            return Err(error(
                Code::CsrfFailed,
                "this request changes data and came with the session cookie but without its X-CSRF-Token header",
            ));
        }
    }
    Ok(token)
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| error(Code::MissingToken, "send a token: Authorization: Bearer <session token or API key>"))?;
    let value = header.to_str().map_err(|_| error(Code::InvalidToken, "the Authorization header is not valid text"))?;
    let (scheme, token) =
        value.split_once(' ').ok_or_else(|| error(Code::InvalidToken, "expected 'Authorization: Bearer <token>'"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(error(Code::InvalidToken, "expected 'Authorization: Bearer <token>'"));
    }
    Ok(token.trim())
}

/// The client's address ([`crate::client_addr`]: the peer, or behind trusted proxies the client
/// they name).
pub fn client_addr(parts: &Parts) -> Option<IpAddr> {
    match parts.extensions.get::<crate::client_addr::ClientAddr>() {
        Some(crate::client_addr::ClientAddr(ip)) => Some(*ip),
        None => parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_canonical()),
    }
}

pub fn client_ip(parts: &Parts) -> Option<String> {
    client_addr(parts).map(|ip| ip.to_string())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Authenticated (and counted against the key's limits) once, by the authorisation table.
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let token = request_token(parts)?;
        let hash = token_hash(token);
        let now = lore_core::now();
        if token.starts_with(API_KEY_PREFIX) {
            let record = match state.key_cache.get(&hash) {
                Some(record) => record,
                None => {
                    let record = state
                        .store
                        .find_api_key(&hash)
                        .await?
                        .ok_or_else(|| error(Code::InvalidApiKey, "this API key is not valid"))?;
                    state.key_cache.put(hash.clone(), record.clone());
                    record
                }
            };
            let key = record.key;
            if key.revoked_at.is_some() || !key.is_active {
                return Err(error(Code::ApiKeyRevoked, "this API key has been revoked"));
            }
            if key.expires_at.is_some_and(|at| at <= now) {
                return Err(error(Code::ApiKeyExpired, "this API key has expired"));
            }
            if !record.user.is_active {
                return Err(error(Code::UserInactive, "the account that owns this API key is deactivated"));
            }
            if let Err(refused) = check_security(&key, parts) {
                // Logged in the key's usage log with its reason, as an operator looks there first.
                if let Some(slot) = parts.extensions.get::<RequestRecord>() {
                    slot.set(KeyRequest { key_id: key.id, user_id: record.user.id, rate: None });
                }
                return Err(refused);
            }
            // Count the request against the key's limits: one atomic step in the database.
            let ip = client_ip(parts);
            let usage = state.limiter.count(state.store.as_ref(), &key, now, ip.as_deref()).await?;
            let decision = limits::decide(&usage, now);
            let rate = match decision {
                Decision::Allowed { rate } => rate,
                Decision::RateLimited { headers } => Some(headers),
                Decision::QuotaExceeded { .. } => None,
            };
            if let Some(slot) = parts.extensions.get::<RequestRecord>() {
                slot.set(KeyRequest { key_id: key.id, user_id: record.user.id, rate });
            }
            match decision {
                Decision::Allowed { .. } => {}
                Decision::RateLimited { headers } => {
                    crate::metrics::rate_limit_rejection("rate_limited");
                    return Err(error(
                        Code::RateLimited,
                        format!("this API key allows {} requests per minute; try again later", headers.limit),
                    )
                    .retry_after(headers.reset));
                }
                Decision::QuotaExceeded { period, limit, retry_after } => {
                    crate::metrics::rate_limit_rejection("quota_exceeded");
                    return Err(error(
                        Code::QuotaExceeded,
                        format!("this API key has used its {period} quota of {limit} requests"),
                    )
                    .retry_after(retry_after));
                }
            }
            let workspace = record.user.id;
            check_workspace_header(parts, workspace)?;
            let (user, role) = key_actor(state, &key, record.user).await?;
            return Ok(Principal { user, workspace, role, credential: Credential::ApiKey(Box::new(key)) });
        }
        let record = state
            .store
            .find_session(&hash)
            .await?
            .ok_or_else(|| error(Code::InvalidToken, "this session token is not valid; log in again"))?;
        if record.expires_at <= now {
            return Err(error(Code::SessionExpired, "this session has expired; log in again"));
        }
        if !record.user.is_active {
            return Err(error(Code::UserInactive, "this account is deactivated"));
        }
        let (workspace, role) = match requested_workspace(parts)? {
            Some(workspace) if workspace != record.user.id => {
                let membership = state.store.membership(workspace, record.user.id).await?;
                let membership = membership.ok_or_else(|| error(Code::NotFound, "no such workspace"))?;
                (workspace, membership.role)
            }
            _ => (record.user.id, Role::Owner),
        };
        Ok(Principal { user: record.user, workspace, role, credential: Credential::Session { token_hash: hash } })
    }
}

/// The workspace named by `X-Lore-Workspace`, or on a read by the `workspace` parameter (what a
/// link the browser follows by itself can carry: a download, an image), if any.
fn requested_workspace(parts: &Parts) -> Result<Option<Id>, ApiError> {
    let named = match parts.headers.get(WORKSPACE_HEADER) {
        Some(value) => value.to_str().ok(),
        None if parts.method.is_safe() => {
            let query = parts.uri.query().unwrap_or_default();
            match query.split('&').find_map(|pair| pair.strip_prefix("workspace=")) {
                Some(value) => Some(value),
                None => return Ok(None),
            }
        }
        None => return Ok(None),
    };
    let id = named.and_then(|v| v.trim().parse::<Id>().ok());
    id.map(Some).ok_or_else(|| error(Code::ValidationFailed, "X-Lore-Workspace (or workspace=) must be a workspace id"))
}

/// A key acts in its own workspace: naming another is refused.
fn check_workspace_header(parts: &Parts, workspace: Id) -> Result<(), ApiError> {
    match requested_workspace(parts)? {
        Some(named) if named != workspace => Err(error(
            Code::WorkspaceMismatch,
            "this API key acts in its own workspace only; leave out X-Lore-Workspace",
        )),
        _ => Ok(()),
    }
}

/// Who acts through a key, and with what role. In a person's own workspace (or for a key made
/// before workspaces) that is its owner; in a team's, its creator with their current role, and
/// nobody once they have left.
async fn key_actor(state: &AppState, key: &ApiKey, account: User) -> Result<(User, Role), ApiError> {
    let creator = match key.created_by {
        Some(creator) if creator != account.id => creator,
        _ => return Ok((account, Role::Owner)),
    };
    let left = || error(Code::ApiKeyRevoked, "the member who made this API key has left its workspace");
    let membership = state.store.membership(account.id, creator).await?.ok_or_else(left)?;
    let person = state.store.get_user(creator).await?.filter(|u| u.is_active).ok_or_else(left)?;
    Ok((person, membership.role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_throttle_counts_per_account_and_address() {
        let t = LoginThrottle::new(Duration::from_secs(60), 3, 5, 8);
        for _ in 0..3 {
            assert!(t.check("Alice", Some("1.2.3.4")).is_none());
            t.record_failure("Alice", Some("1.2.3.4"));
        }
        assert!(t.check("alice", Some("1.2.3.4")).is_some(), "per account and address");
        assert!(t.check("alice", Some("9.9.9.9")).is_none(), "the owner elsewhere is not locked out");
        assert!(t.check("bob", Some("1.2.3.4")).is_none());
        t.record_failure("bob", Some("1.2.3.4"));
        t.record_failure("carol", Some("1.2.3.4"));
        assert!(t.check("dave", Some("1.2.3.4")).is_some(), "per address, whatever the account");
        // Many addresses against one account reach its overall ceiling.
        for i in 0..5 {
            t.record_failure("alice", Some(&format!("10.0.0.{i}")));
        }
        assert!(t.check("alice", Some("9.9.9.9")).is_some(), "the account's ceiling");
        assert!(t.check("erin", Some("9.9.9.9")).is_none());
        // Success from an address clears that address's count for the account only.
        let t = LoginThrottle::new(Duration::from_secs(60), 2, 50, 50);
        t.record_failure("李雷", Some("5.5.5.5"));
        t.record_failure("李雷", Some("5.5.5.5"));
        assert!(t.check("李雷", Some("5.5.5.5")).is_some());
        t.record_success("李雷", Some("5.5.5.5"));
        assert!(t.check("李雷", Some("5.5.5.5")).is_none());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        assert_eq!(address_group(Some("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(address_group(Some("2001:db8:1:2:ffff:ffff:ffff:ffff")), "2001:db8:1:2::/64");
        assert_ne!(address_group(Some("2001:db8:1:3::1")), "2001:db8:1:2::/64");
        assert_eq!(address_group(Some("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(address_group(Some("192.0.2.7")), "192.0.2.7");
        assert_eq!(address_group(None), "?");

        let t = LoginThrottle::new(Duration::from_secs(60), 3, 100, 100);
        for i in 1..=3 {
            t.record_failure("alice", Some(&format!("2001:db8:1:2::{i:x}")));
        }
        assert!(t.check("alice", Some("2001:db8:1:2:dead:beef::9")).is_some(), "another address of the same /64");
        assert!(t.check("alice", Some("2001:db8:1:3::1")).is_none(), "another /64");

        let r = RegistrationThrottle::with_window(Duration::from_secs(60), 2);
        assert!(r.admit(Some("2001:db8::1")).is_ok());
        assert!(r.admit(Some("2001:db8::2")).is_ok());
        let wait = r.admit(Some("2001:db8:0:0:1::3")).expect_err("the /64's allowance is spent");
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(r.admit(Some("2001:db8:0:1::1")).is_ok());
        assert!(r.admit(Some("198.51.100.1")).is_ok());
        let unlimited = RegistrationThrottle::new(0);
        for _ in 0..100 {
            assert!(unlimited.admit(Some("198.51.100.1")).is_ok());
        }
    }

    #[test]
    fn passwords_round_trip_and_tokens_are_random() {
        let hash = hash_password("密码 correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("密码 correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
        let (a, b) = (random_token().expect("a"), random_token().expect("b"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash("abc").len(), 64);
    }
}
