//! Counting API-key requests against their limits. One node alone (the embedded default) counts
//! in memory, exactly, and writes the counters back every second; nodes that share a database
//! count there, in one atomic statement per request, so that the limit holds across all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lore_core::error::Result;
use lore_core::limits::{day_key, minute_key, month_key};
use lore_core::model::{ApiKey, Id, KeyCounters, KeyUsage, Timestamp};
use lore_core::store::Store;
use tokio::sync::watch;

pub enum Limiter {
    InProcess(Arc<Mutex<HashMap<Id, KeyCounters>>>),
    Database,
}

fn roll(c: &mut KeyCounters, now: Timestamp) {
    let (minute, day, month) = (minute_key(now), day_key(now), month_key(now));
    if c.rate_window != minute {
        c.rate_window = minute;
        c.rate_count = 0;
    }
    if c.usage_day != day {
        c.usage_day = day;
        c.usage_today = 0;
    }
    if c.usage_month != month {
        c.usage_month = month;
        c.usage_month_count = 0;
    }
}

impl Limiter {
    pub fn in_process() -> Limiter {
        Limiter::InProcess(Arc::new(Mutex::new(HashMap::new())))
    }

    /// Counts one request made with `key` at `now` from `ip`.
    pub async fn count(&self, store: &dyn Store, key: &ApiKey, now: Timestamp, ip: Option<&str>) -> Result<KeyUsage> {
        let counters = match self {
            Limiter::Database => return store.count_api_key_request(key.id, now, ip).await,
            Limiter::InProcess(counters) => counters,
        };
        let mut map = counters.lock().map_err(|_| lore_core::Error::internal("limiter lock poisoned"))?;
        let c = map.entry(key.id).or_insert_with(|| KeyCounters {
            key_id: key.id,
            // What the database last knew, for today and this month (the list view masks stale days).
            usage_day: day_key(now),
            usage_today: key.usage_count_today,
            usage_month: month_key(now),
            usage_month_count: key.usage_count_month,
            ..Default::default()
        });
        roll(c, now);
        let allowed = key.rate_limit.is_none_or(|l| c.rate_count < l)
            && key.daily_quota.is_none_or(|q| c.usage_today < q)
            && key.monthly_quota.is_none_or(|q| c.usage_month_count < q);
        if allowed {
            c.rate_count += 1;
            c.usage_today += 1;
            c.usage_month_count += 1;
            c.last_used_at = Some(now);
            c.last_used_ip = ip.map(str::to_string);
            c.dirty = true;
        }
        Ok(KeyUsage {
            allowed,
            rate_limit: key.rate_limit,
            rate_count: c.rate_count,
            daily_quota: key.daily_quota,
            usage_today: c.usage_today,
            monthly_quota: key.monthly_quota,
            usage_month: c.usage_month_count,
        })
    }

    /// Writes changed counters to the database.
    pub async fn flush(&self, store: &dyn Store) -> Result<()> {
        let Limiter::InProcess(counters) = self else { return Ok(()) };
        let dirty: Vec<KeyCounters> = {
            let Ok(mut map) = counters.lock() else { return Ok(()) };
            map.values_mut()
                .filter(|c| c.dirty)
                .map(|c| {
                    c.dirty = false;
                    c.clone()
                })
                .collect()
        };
        if dirty.is_empty() {
            return Ok(());
        }
        if let Err(e) = store.save_key_counters(&dirty).await {
            // Mark them dirty again so the next flush retries.
            if let Ok(mut map) = counters.lock() {
                for c in &dirty {
                    if let Some(entry) = map.get_mut(&c.key_id) {
                        entry.dirty = true;
                    }
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// Shows a key with the counters this node holds, which are newer than the database's.
    pub fn overlay(&self, key: &mut ApiKey, now: Timestamp) {
        let Limiter::InProcess(counters) = self else { return };
        let Ok(map) = counters.lock() else { return };
        if let Some(c) = map.get(&key.id) {
            key.usage_count_today = if c.usage_day == day_key(now) { c.usage_today } else { 0 };
            key.usage_count_month = if c.usage_month == month_key(now) { c.usage_month_count } else { 0 };
            if c.last_used_at.is_some() {
                key.last_used_at = c.last_used_at;
                key.last_used_ip = c.last_used_ip.clone();
            }
        }
    }
}

/// Flushes every second until shutdown, then once more.
pub fn spawn_flusher(
    limiter: Arc<Limiter>, store: Arc<dyn Store>, mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let stop = tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                _ = shutdown.wait_for(|s| *s) => true,
            };
            if let Err(e) = limiter.flush(store.as_ref()).await {
                tracing::warn!(error = %e, "could not save API key counters");
            }
            if stop {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use lore_core::model::{ApiKey, Scope};

    fn at(s: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    fn key(rate: Option<i64>, daily: Option<i64>, monthly: Option<i64>) -> ApiKey {
        ApiKey {
            id: lore_core::new_id(),
            user_id: lore_core::new_id(),
            created_by: None,
            knowledge_base_id: None,
            name: "k".into(),
            description: None,
            key_prefix: "lore_x".into(),
            key_suffix: "abcd".into(),
            scopes: vec![Scope::Read],
            rate_limit: rate,
            daily_quota: daily,
            monthly_quota: monthly,
            usage_count_today: 0,
            usage_count_month: 0,
            is_active: true,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            last_used_ip: None,
            security: serde_json::json!({}),
            created_at: lore_core::now(),
            updated_at: lore_core::now(),
        }
    }

    #[tokio::test]
    async fn counters_roll_over_at_utc_minute_day_and_month_boundaries() {
        let dir = tempfile::tempdir().expect("dir");
        let store = lore_store::SqliteStore::open(&dir.path().join("l.db")).await.expect("store");
        let limiter = Limiter::in_process();
        let k = key(Some(2), Some(3), Some(4));
        let count = |t: &str| {
            let (l, s, k) = (&limiter, &store, &k);
            let now = at(t);
            async move { l.count(s, k, now, Some("127.0.0.1")).await.expect("count") }
        };
        assert!(count("2026-01-31T23:58:10Z").await.allowed);
        assert!(count("2026-01-31T23:58:50Z").await.allowed);
        assert!(!count("2026-01-31T23:58:59Z").await.allowed, "two a minute");
        assert!(count("2026-01-31T23:59:00Z").await.allowed, "a new minute");
        let refused = count("2026-01-31T23:59:01Z").await;
        assert!(!refused.allowed && refused.usage_today == 3, "three a day");
        let next = count("2026-02-01T00:00:00Z").await;
        assert!(next.allowed, "a new day (and month) at midnight UTC");
        assert_eq!((next.usage_today, next.usage_month), (1, 1));
        // Eight hours ahead of UTC is still the same UTC day.
        assert!(count("2026-02-01T08:00:00+08:00").await.allowed);
        let third = count("2026-02-01T09:00:00+08:00").await;
        assert!(third.allowed && third.usage_today == 3);
        assert!(!count("2026-02-01T10:00:00+08:00").await.allowed);
        limiter.flush(&store).await.expect("saving counters of a key the database does not hold is harmless");
    }
}
