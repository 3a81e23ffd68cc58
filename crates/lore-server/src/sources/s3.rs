//! `s3`: the objects of an S3-compatible bucket under a prefix (AWS, MinIO, Ceph, R2 ...). Requests
//! are signed with SigV4 (rusty-s3) and sent through the guarded client; an item's version is its
//! ETag.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use lore_core::error::{Code, Error};
use reqwest::Url;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde_json::Value;

use super::{Connector, Listed, Listing, MAX_ITEMS, Patterns, net};

/// How long a signed request stays valid.
/// Listing pages read at most (1,000 keys each): ten times more keys than a source may hold.
const MAX_LISTING_PAGES: usize = 1_000;

const SIGNED_FOR: Duration = Duration::from_secs(600);

pub struct S3 {
    bucket: Bucket,
    prefix: String,
    credentials: Option<Credentials>,
    patterns: Patterns,
    http: reqwest::Client,
    max_bytes: u64,
}

fn text<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a str> {
    v.and_then(|v| v.get(key)).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

impl S3 {
    pub fn open(
        config: &Value, credentials: Option<&Value>, max_bytes: u64, policy: &net::Policy,
    ) -> Result<Self, Error> {
        let bad = |m: String| Error::new(Code::InvalidSourceConfig, m);
        let name = text(Some(config), "bucket").ok_or_else(|| bad("s3 needs config.bucket".into()))?;
        let region = text(Some(config), "region").unwrap_or("us-east-1");
        // A custom endpoint (MinIO and friends) is addressed by path; AWS by virtual host.
        let (endpoint, style) = match text(Some(config), "endpoint") {
            Some(e) => (e.to_string(), UrlStyle::Path),
            None => (format!("https://s3.{region}.amazonaws.com"), UrlStyle::VirtualHost),
        };
        let style = match config.get("path_style").and_then(Value::as_bool) {
            Some(true) => UrlStyle::Path,
            Some(false) => UrlStyle::VirtualHost,
            None => style,
        };
        let endpoint = Url::parse(&endpoint).map_err(|e| bad(format!("config.endpoint {endpoint:?}: {e}")))?;
        net::check_literal(&endpoint, policy)?;
        let bucket = Bucket::new(endpoint, style, name.to_string(), region.to_string())
            .map_err(|e| bad(format!("bucket {name:?}: {e}")))?;
        let credentials = match (text(credentials, "access_key_id"), text(credentials, "secret_access_key")) {
            (Some(key), Some(secret)) => Some(match text(credentials, "session_token") {
                Some(token) => Credentials::new_with_token(key, secret, token),
                None => Credentials::new(key, secret),
            }),
            (None, None) => None, // a public bucket
            _ => return Err(bad("credentials need both access_key_id and secret_access_key".into())),
        };
        Ok(Self {
            bucket,
            prefix: text(Some(config), "prefix").unwrap_or_default().to_string(),
            credentials,
            patterns: Patterns::from_config(config)?,
            http: net::client(policy, Duration::from_secs(120))?,
            max_bytes,
        })
    }

    async fn send(&self, url: Url) -> Result<reqwest::Response, Error> {
        let shown = format!("s3://{}/", self.bucket.name());
        let response = self.http.get(url).send().await.map_err(|e| net::describe(&shown, &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        // S3 explains itself in <Code> and <Message>.
        let field = |tag: &str| {
            body.split_once(&format!("<{tag}>"))
                .and_then(|(_, rest)| rest.split_once(&format!("</{tag}>")))
                .map(|(v, _)| v.to_string())
        };
        let reason = [field("Code"), field("Message")].into_iter().flatten().collect::<Vec<_>>().join(": ");
        Err(Error::new(Code::SourceUnreachable, format!("{shown} answered {status} {reason}").trim().to_string()))
    }
}

#[async_trait]
impl Connector for S3 {
    async fn list(&self) -> Result<Listing, Error> {
        let mut listing = Listing::default();
        let mut token: Option<String> = None;
        // A bucket (or an endpoint posing as one) that pages forever, or answers a page of
        // gigabytes, meets these bounds instead of the server's memory.
        let (mut pages, mut listed_bytes) = (0usize, 0u64);
        let max_bytes = lore_core::budget::budgets().max_expanded_bytes;
        loop {
            pages += 1;
            if pages > MAX_LISTING_PAGES {
                return Err(Error::new(
                    Code::ResourceLimitExceeded,
                    format!("the bucket's listing ran past {MAX_LISTING_PAGES} pages; narrow it with prefix"),
                ));
            }
            let mut action = self.bucket.list_objects_v2(self.credentials.as_ref());
            if !self.prefix.is_empty() {
                action.with_prefix(self.prefix.as_str());
            }
            if let Some(t) = &token {
                action.with_continuation_token(t.as_str());
            }
            let response = self.send(action.sign(SIGNED_FOR)).await?;
            let body = net::read_limited("the bucket's listing", response, max_bytes.saturating_sub(listed_bytes))
                .await
                .map_err(|e| {
                    if e.code == Code::PayloadTooLarge {
                        lore_core::budget::exceeded(
                            Code::ExpandedSizeExceeded,
                            "the bucket's listing is larger than the parser budget",
                            "max-expanded-mb",
                        )
                    } else {
                        e
                    }
                })?;
            listed_bytes += body.len() as u64;
            let body = String::from_utf8_lossy(&body);
            let page = rusty_s3::actions::ListObjectsV2::parse_response(&body)
                .map_err(|e| Error::new(Code::SourceUnreachable, format!("unreadable bucket listing: {e}")))?;
            for object in page.contents {
                // "Folders" some tools create are empty keys ending in '/'.
                if object.key.ends_with('/') || !self.patterns.wants(&object.key) {
                    continue;
                }
                let version = object.etag.unwrap_or_else(|| {
                    format!("{}-{}", object.last_modified.unwrap_or_default(), object.size.unwrap_or(0))
                });
                listing.items.push(Listed::new(object.key, version.trim_matches('"').to_string()));
            }
            token = page.next_continuation_token;
            if token.is_none() || listing.items.len() >= MAX_ITEMS {
                return Ok(listing);
            }
        }
    }

    async fn fetch(&self, item: &Listed, dest: &Path) -> Result<(), Error> {
        let url = self.bucket.get_object(self.credentials.as_ref(), &item.key).sign(SIGNED_FOR);
        let response = self.send(url).await?;
        let body = net::read_limited(&item.key, response, self.max_bytes).await?;
        tokio::fs::write(dest, body).await.map_err(|e| Error::internal(format!("staging {}: {e}", item.key)))
    }
}
