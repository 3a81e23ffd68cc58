//! Telling users what happened: an in-app notification, and a webhook to the user's
//! `webhook_url` with the JSON body signed by HMAC-SHA256 under `webhook_secret`
//! (`X-Lore-Signature: sha256=<hex>`), retried with backoff; every attempt is logged in the
//! notification's `data.delivery`. The user's `sync_notifications` / `error_notifications`
//! switches decide which events are sent at all.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use lore_core::model::Id;
use lore_core::outbound::{self, Attempt, Retry};
use lore_core::source::Notification;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::state::AppState;

const ATTEMPTS: u32 = 4;
/// A receiver asking for a longer pause than this is not waited for.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);
const TIMEOUT: Duration = Duration::from_secs(10);

/// What kind of event, for the user's switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A sync changed the knowledge base.
    SyncCompleted,
    /// A sync failed, or some of its items did.
    SyncFailed,
    /// A document could not be processed.
    DocumentFailed,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::SyncCompleted => "sync_completed",
            Kind::SyncFailed => "sync_failed",
            Kind::DocumentFailed => "document_failed",
        }
    }

    fn is_error(self) -> bool {
        !matches!(self, Kind::SyncCompleted)
    }
}

/// `sha256=<hex>` of the body under the secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"").expect("HMAC takes any key"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Records and sends a notification, if the user's switches allow it. Never fails the caller:
/// a notification that cannot be stored is logged.
pub async fn notify(state: &AppState, user_id: Id, kind: Kind, title: String, body: Option<String>, data: Value) {
    let config = match state.store.get_user_config(user_id).await {
        Ok(c) => c.unwrap_or_else(lore_core::model::UserConfig::initial),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the user's notification settings");
            return;
        }
    };
    let wanted = if kind.is_error() { config.error_notifications } else { config.sync_notifications };
    if !wanted {
        return;
    }
    let notification = Notification {
        id: lore_core::new_id(),
        user_id,
        kind: kind.as_str().to_string(),
        title,
        body,
        data,
        read_at: None,
        created_at: lore_core::now(),
    };
    if let Err(e) = state.store.insert_notification(&notification).await {
        tracing::warn!(error = %e, "cannot store a notification");
        return;
    }
    let Some(url) = config.webhook_url.filter(|u| !u.trim().is_empty()) else { return };
    let secret = match config.webhook_secret.as_deref().map(|s| state.master_key.open(s)).transpose() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the webhook secret");
            return;
        }
    };
    let state = state.clone();
    tokio::spawn(async move { deliver(&state, notification, &url, secret.as_deref()).await });
}

async fn deliver(state: &AppState, notification: Notification, url: &str, secret: Option<&str>) {
    let body = json!({
        "id": notification.id,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "created_at": notification.created_at,
    })
    .to_string();
    // A user names the address: the same guard as data sources keeps it off internal networks.
    let http = match crate::sources::net::client(&state.config.outbound(), TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "no HTTP client for webhooks");
            return;
        }
    };
    // Every attempt is logged in the notification's `data.delivery` as it happens.
    let data = std::sync::Mutex::new(notification.data.clone());
    let retry = Retry { attempts: ATTEMPTS, backoff: state.config.webhook_backoff, max_wait: MAX_RETRY_WAIT };
    let (http, body, data, id, event) = (&http, &body, &data, notification.id, notification.kind.as_str());
    let sent = retry
        .run(|attempt| async move {
            let mut request = http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-Lore-Event", event)
                .header("X-Lore-Delivery", id.to_string())
                .body(body.clone());
            if let Some(secret) = secret {
                request = request.header("X-Lore-Signature", signature(secret, body.as_bytes()));
            }
            let mut entry = json!({"attempt": attempt, "at": lore_core::now()});
            let (ok, retry_after) = match request.send().await {
                Ok(r) => {
                    entry["status"] = json!(r.status().as_u16());
                    (r.status().is_success(), outbound::retry_after(r.headers()))
                }
                Err(e) => {
                    entry["error"] = json!(if e.is_timeout() { "timed out" } else { "connection failed" });
                    (false, None)
                }
            };
            let why = entry.to_string();
            let data = {
                let mut data = data.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match data["delivery"].as_array_mut() {
                    Some(log) => log.push(entry),
                    None => data["delivery"] = json!([entry]),
                }
                data.clone()
            };
            if let Err(e) = state.store.set_notification_data(id, &data).await {
                tracing::warn!(error = %e, "cannot log a webhook delivery");
            }
            // Any answer but a success is tried again: the receiver may be restarting.
            match ok {
                true => Attempt::Done(Ok::<(), ()>(())),
                false => Attempt::Again { why, retry_after },
            }
        })
        .await;
    if sent.is_err() {
        tracing::warn!(notification = %id, "webhook delivery failed after {ATTEMPTS} attempts");
    }
}

/// `GET /v1/notifications`: the caller's, most recent first.
pub async fn list(state: &AppState, principal: &Principal) -> ApiResult<Vec<Notification>> {
    principal.require(lore_core::model::Scope::Read)?;
    Ok(state.store.list_notifications(principal.owner_id(), 200).await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn signs_like_the_rfc_4231_vectors() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
