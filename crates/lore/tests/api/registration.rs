//! Who may create an account: the registration policy (`invite` by default, `open`, `closed`),
//! invitations, the first account becoming the administrator exactly once, and the per-address
//! throttles on registrations and failed sign-ins.

use std::net::IpAddr;

use lore_core::model::RegistrationPolicy;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestApp, body, code, database_env, spawn_app_in, spawn_app_with};

const PASSWORD: &str = "correct horse battery";

fn policy(registration: RegistrationPolicy) -> impl FnOnce(&mut lore_server::ServerConfig) {
    move |c| {
        c.registration = registration;
        c.registrations_per_hour = 0;
    }
}

async fn sign_up(app: &TestApp, username: &str, email: &str, invitation: Option<&str>) -> (StatusCode, Value) {
    let mut request = json!({"username": username, "email": email, "password": PASSWORD});
    if let Some(token) = invitation {
        request["invitation"] = json!(token);
    }
    app.post("", "/v1/auth/register", request).await
}

async fn invite(app: &TestApp, admin: &str, request: Value) -> String {
    let (status, v) = app.post(admin, "/v1/admin/invitations", request).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["token"].as_str().expect("token").to_string()
}

/// A client whose requests come from another loopback address (Linux routes all of 127/8).
fn client_from(address: &str) -> reqwest::Client {
    lore_core::tls::ensure_provider();
    reqwest::Client::builder().local_address(address.parse::<IpAddr>().ok()).build().expect("client")
}

#[tokio::test]
async fn by_default_registration_needs_an_invitation_after_the_first_account() {
    // The server's own default, not the test harness's `open`.
    let defaults = lore_server::ServerConfig::new("unused".into(), "127.0.0.1:0".parse().expect("addr"));
    assert_eq!((defaults.registration, defaults.registrations_per_hour), (RegistrationPolicy::Invite, 10));
    let app = spawn_app_with(policy(defaults.registration)).await;

    let (status, first) = sign_up(&app, "admin", "admin@example.com", None).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["user"]["is_superuser"], true, "the first account administers the installation");
    let admin = first["token"].as_str().expect("token").to_string();

    // Without an invitation, or with a made-up one: refused, before anything else is looked at.
    let (status, v) = sign_up(&app, "李雷", "lilei@example.com", None).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "registration_closed"), "{v}");
    let (status, v) = sign_up(&app, "admin", "admin@example.com", None).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "registration_closed"), "a taken name is not revealed");
    let (status, v) = sign_up(&app, "李雷", "lilei@example.com", Some("inv_made_up")).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "invitation_invalid"), "{v}");

    // The administrator invites; the token is shown once.
    let (status, v) = app.post(&admin, "/v1/admin/invitations", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let token = v["token"].as_str().expect("token").to_string();
    assert!(token.starts_with("inv_") && token.len() > 40, "{token}");
    assert!(v["email"].is_null());
    let expires: lore_core::model::Timestamp = v["expires_at"].as_str().expect("expires_at").parse().expect("time");
    let hours = (expires - lore_core::now()).num_minutes() as f64 / 60.0;
    assert!((167.0..=168.0).contains(&hours), "a week by default: {hours}");

    // It admits one account (an ordinary one), and only one.
    let (status, v) = sign_up(&app, "李雷", "lilei@example.com", Some(&token)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!((v["user"]["username"].as_str(), v["user"]["is_superuser"].as_bool()), (Some("李雷"), Some(false)));
    let lilei = v["token"].as_str().expect("token").to_string();
    let (status, v) = sign_up(&app, "韩梅梅", "hanmeimei@example.com", Some(&token)).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "invitation_invalid"), "{v}");

    // One bound to an address admits that address only (in any case).
    let bound = invite(&app, &admin, json!({"email": "HanMeiMei@Example.com", "expires_in_hours": 2})).await;
    let (status, v) = sign_up(&app, "韩梅梅", "someone.else@example.com", Some(&bound)).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "invitation_invalid"), "{v}");
    let (status, v) = sign_up(&app, "韩梅梅", "hanmeimei@example.com", Some(&bound)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    // Only administrators, with a session, manage invitations.
    let (status, v) = app.post(&lilei, "/v1/admin/invitations", json!({})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "superuser_required"), "{v}");
    let (status, v) = app.get(&lilei, "/v1/admin/invitations").await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "superuser_required"), "{v}");
    let (status, key) = app.post(&admin, "/v1/api-keys", json!({"name": "k", "scopes": ["read", "upload"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let (status, v) = app.post(key["key"].as_str().expect("key"), "/v1/admin/invitations", json!({})).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "session_required"), "{v}");
    for bad in [json!({"email": "nope"}), json!({"expires_in_hours": 0}), json!({"expires_in_hours": 100000})] {
        let (status, v) = app.post(&admin, "/v1/admin/invitations", bad.clone()).await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{bad} {v}");
    }

    // The list shows who used what, and never a token.
    let (status, list) = app.get(&admin, "/v1/admin/invitations").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let invitations = list["data"].as_array().expect("data");
    assert_eq!(invitations.len(), 2, "{list}");
    assert!(invitations.iter().all(|i| i["used_by"].is_string() && i["used_at"].is_string()), "{list}");
    assert!(!list.to_string().contains(&token) && !list.to_string().contains("token"), "{list}");

    // A revoked invitation admits nobody.
    let revoked = invite(&app, &admin, json!({"email": "wangwu@example.com"})).await;
    let (_, list) = app.get(&admin, "/v1/admin/invitations").await;
    let id = list["data"][0]["id"].as_str().expect("newest first").to_string();
    assert_eq!(list["data"][0]["email"], "wangwu@example.com");
    assert_eq!(app.delete(&admin, &format!("/v1/admin/invitations/{id}")).await.0, StatusCode::NO_CONTENT);
    let (status, v) = app.delete(&admin, &format!("/v1/admin/invitations/{id}")).await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
    let (status, v) = sign_up(&app, "王五", "wangwu@example.com", Some(&revoked)).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "invitation_invalid"), "{v}");

    // An expired invitation (written into the store while the server is down) admits nobody.
    let dir = app.stop().await;
    {
        let data = dir.path().join("data");
        let url = database_env(&data).map(|(_, url)| url);
        let store = lore_server::open_store(&data, url.as_deref(), 16).await.expect("store");
        store
            .create_invitation(lore_core::model::NewInvitation {
                token_hash: lore_server::auth::token_hash("inv_expired"),
                email: None,
                created_by: None,
                expires_at: lore_core::now() - std::time::Duration::from_secs(60),
            })
            .await
            .expect("invitation");
        store.close().await;
    }
    let app = spawn_app_in(dir, policy(RegistrationPolicy::Invite)).await;
    let (status, v) = sign_up(&app, "late", "late@example.com", Some("inv_expired")).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "invitation_invalid"), "{v}");
    let (_, users) = app.get(&admin, "/v1/admin/users").await;
    assert_eq!(users["data"].as_array().map(Vec::len), Some(3), "{users}");
    app.shutdown().await;
}

#[tokio::test]
async fn closed_registration_admits_only_the_first_account() {
    let app = spawn_app_with(policy(RegistrationPolicy::Closed)).await;
    let (status, first) = sign_up(&app, "root", "root@example.com", None).await;
    assert_eq!((status, first["user"]["is_superuser"].as_bool()), (StatusCode::CREATED, Some(true)), "{first}");
    let admin = first["token"].as_str().expect("token");
    // Even an administrator's invitation does not open a closed server.
    let token = invite(&app, admin, json!({})).await;
    for invitation in [None, Some(token.as_str())] {
        let (status, v) = sign_up(&app, "张三", "zhangsan@example.com", invitation).await;
        assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "registration_closed"), "{v}");
    }
    // The console's sign-up follows the same policy.
    let (status, v) = body(
        app.http
            .post(app.url("/console/register"))
            .json(&json!({"username": "张三", "email": "zhangsan@example.com", "password": PASSWORD}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "registration_closed"), "{v}");
    app.shutdown().await;
}

/// Eight registrations at once on an empty server: one administrator, under either policy.
#[tokio::test]
async fn concurrent_first_registrations_make_exactly_one_administrator() {
    for registration in [RegistrationPolicy::Invite, RegistrationPolicy::Open] {
        let app = spawn_app_with(policy(registration)).await;
        let attempts = (0..8).map(|i| {
            let name = if i % 2 == 0 { format!("user{i}") } else { format!("用户{i}") };
            let app = &app;
            async move { sign_up(app, &name, &format!("user{i}@example.com"), None).await }
        });
        let results = futures_util::future::join_all(attempts).await;
        let created: Vec<&Value> =
            results.iter().filter(|(status, _)| *status == StatusCode::CREATED).map(|(_, v)| v).collect();
        let admins: Vec<&&Value> = created.iter().filter(|v| v["user"]["is_superuser"] == true).collect();
        assert_eq!(admins.len(), 1, "{registration:?}: {results:?}");
        if registration == RegistrationPolicy::Invite {
            assert_eq!(created.len(), 1, "{results:?}");
            for (status, v) in results.iter().filter(|(status, _)| *status != StatusCode::CREATED) {
                assert_eq!((*status, code(v)), (StatusCode::FORBIDDEN, "registration_closed"), "{v}");
            }
        } else {
            assert_eq!(created.len(), 8, "{results:?}");
        }
        let admin = admins[0]["token"].as_str().expect("token");
        let (_, users) = app.get(admin, "/v1/admin/users").await;
        let users = users["data"].as_array().expect("users").clone();
        assert_eq!(users.len(), created.len());
        assert_eq!(users.iter().filter(|u| u["is_superuser"] == true).count(), 1, "{users:?}");
        app.shutdown().await;
    }
}

#[tokio::test]
async fn registrations_are_throttled_per_address_before_hashing() {
    let app = spawn_app_with(|c| {
        c.registration = RegistrationPolicy::Open;
        c.registrations_per_hour = 3;
    })
    .await;
    for (i, name) in ["alice", "李雷", "bob"].into_iter().enumerate() {
        let (status, v) = sign_up(&app, name, &format!("user{i}@example.com"), None).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let resp = app
        .http
        .post(app.url("/v1/auth/register"))
        .json(&json!({"username": "韩梅梅", "email": "hmm@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("send");
    let retry: u64 = resp.headers()["retry-after"].to_str().expect("text").parse().expect("seconds");
    assert!((1..=3600).contains(&retry), "{retry}");
    let (status, v) = body(resp).await;
    assert_eq!((status, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "too_many_registrations"), "{v}");
    assert_eq!(v["error"]["type"], "rate_limited");
    // Invalid input is still refused as such; another address has its own allowance.
    let (status, v) = sign_up(&app, "x", "bad", None).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    let elsewhere = client_from("127.0.0.2");
    let (status, v) = body(
        elsewhere
            .post(app.url("/v1/auth/register"))
            .json(&json!({"username": "韩梅梅", "email": "hmm@example.com", "password": PASSWORD}))
            .send()
            .await
            .expect("send from 127.0.0.2"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    app.shutdown().await;
}

/// Someone guessing a password from one address is stopped there, without locking the owner,
/// who signs in from another, out of the account.
#[tokio::test]
async fn a_password_guesser_does_not_lock_the_owner_out() {
    let app = spawn_app_with(policy(RegistrationPolicy::Open)).await;
    app.register("李雷").await;
    let guesser = client_from("127.0.0.3");
    let login = |client: &reqwest::Client, password: &str| {
        client.post(app.url("/v1/auth/login")).json(&json!({"username": "李雷", "password": password})).send()
    };
    for _ in 0..5 {
        let (status, v) = body(login(&guesser, "guess guess").await.expect("send")).await;
        assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    }
    let resp = login(&guesser, PASSWORD).await.expect("send");
    assert!(resp.headers().contains_key("retry-after"));
    let (status, v) = body(resp).await;
    assert_eq!((status, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "too_many_login_attempts"), "{v}");
    let (status, v) = body(login(&app.http, PASSWORD).await.expect("send")).await;
    assert_eq!(status, StatusCode::OK, "the owner, elsewhere, signs in: {v}");
    app.shutdown().await;
}
