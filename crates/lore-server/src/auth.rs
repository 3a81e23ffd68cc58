//! Who is calling: a login session (the user, all scopes) or an API key (its scopes, maybe one
//! knowledge base). Tokens and keys are random, shown once, and stored only as SHA-256 hashes.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use lore_core::error::{Code, Error, Result};
use lore_core::model::{ApiKey, Id, Scope, User};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, error};
use crate::state::AppState;

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

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub credential: Credential,
}

impl Principal {
    pub fn user_id(&self) -> Id {
        self.user.id
    }

    pub fn api_key(&self) -> Option<&ApiKey> {
        match &self.credential {
            Credential::ApiKey(key) => Some(key),
            Credential::Session { .. } => None,
        }
    }

    pub fn scopes(&self) -> Vec<Scope> {
        match self.api_key() {
            Some(key) => key.scopes.clone(),
            None => Scope::ALL.to_vec(),
        }
    }

    /// Sessions may do everything; a key needs the scope.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        match self.api_key() {
            Some(key) if !key.scopes.contains(&scope) => {
                Err(error(Code::InsufficientScope, format!("this API key lacks the '{}' scope", scope.as_str())))
            }
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

    /// The knowledge base a key is bound to, if any.
    pub fn bound_knowledge_base(&self) -> Option<Id> {
        self.api_key().and_then(|k| k.knowledge_base_id)
    }
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

pub fn client_ip(parts: &Parts) -> Option<String> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let hash = token_hash(token);
        let now = lore_core::now();
        if token.starts_with(API_KEY_PREFIX) {
            let record = state
                .store
                .find_api_key(&hash)
                .await?
                .ok_or_else(|| error(Code::InvalidApiKey, "this API key is not valid"))?;
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
            // Bookkeeping off the request path: the caller need not wait for it.
            let store = state.store.clone();
            let ip = client_ip(parts);
            let key_id = key.id;
            tokio::spawn(async move {
                if let Err(e) = store.record_api_key_use(key_id, now, ip.as_deref()).await {
                    tracing::warn!(error = %e, "could not record API key use");
                }
            });
            return Ok(Principal { user: record.user, credential: Credential::ApiKey(Box::new(key)) });
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
        Ok(Principal { user: record.user, credential: Credential::Session { token_hash: hash } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
