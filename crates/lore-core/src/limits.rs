//! Rate-limit and quota decisions: pure functions of an API key's counters and the clock.

use chrono::{Datelike, Duration, TimeZone, Timelike, Utc};

use crate::model::{KeyUsage, Timestamp};

/// The window keys under which a request made at `now` is counted (UTC).
pub fn minute_key(now: Timestamp) -> String {
    now.format("%Y-%m-%dT%H:%M").to_string()
}

pub fn day_key(now: Timestamp) -> String {
    now.format("%Y-%m-%d").to_string()
}

pub fn month_key(now: Timestamp) -> String {
    now.format("%Y-%m").to_string()
}

fn secs_until(now: Timestamp, next: Timestamp) -> u64 {
    (next - now).num_seconds().max(1) as u64
}

fn next_minute(now: Timestamp) -> Timestamp {
    now.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(now) + Duration::minutes(1)
}

fn next_day(now: Timestamp) -> Timestamp {
    Utc.with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0).single().unwrap_or(now) + Duration::days(1)
}

fn next_month(now: Timestamp) -> Timestamp {
    let (y, m) = if now.month() == 12 { (now.year() + 1, 1) } else { (now.year(), now.month() + 1) };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().unwrap_or(now + Duration::days(31))
}

/// The answer to one request, with what the rate-limit headers should say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { rate: Option<RateHeaders> },
    RateLimited { headers: RateHeaders },
    QuotaExceeded { period: &'static str, limit: i64, retry_after: u64 },
}

/// `X-RateLimit-Limit`, `-Remaining`, `-Reset` (seconds until the window resets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHeaders {
    pub limit: i64,
    pub remaining: i64,
    pub reset: u64,
}

pub fn decide(usage: &KeyUsage, now: Timestamp) -> Decision {
    let rate = usage.rate_limit.map(|limit| RateHeaders {
        limit,
        remaining: (limit - usage.rate_count).max(0),
        reset: secs_until(now, next_minute(now)),
    });
    if usage.allowed {
        return Decision::Allowed { rate };
    }
    if let (Some(headers), Some(limit)) = (rate, usage.rate_limit)
        && usage.rate_count >= limit
    {
        return Decision::RateLimited { headers };
    }
    if let Some(limit) = usage.daily_quota.filter(|q| usage.usage_today >= *q) {
        return Decision::QuotaExceeded { period: "daily", limit, retry_after: secs_until(now, next_day(now)) };
    }
    let limit = usage.monthly_quota.unwrap_or(0);
    Decision::QuotaExceeded { period: "monthly", limit, retry_after: secs_until(now, next_month(now)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    fn usage(allowed: bool) -> KeyUsage {
        KeyUsage {
            allowed,
            rate_limit: Some(10),
            rate_count: 10,
            daily_quota: Some(100),
            usage_today: 5,
            monthly_quota: Some(1000),
            usage_month: 5,
        }
    }

    #[test]
    fn windows_are_utc_minutes_days_and_months() {
        let t = at("2026-12-31T23:59:30.5+00:00");
        assert_eq!(
            (minute_key(t), day_key(t), month_key(t)),
            ("2026-12-31T23:59".into(), "2026-12-31".into(), "2026-12".into())
        );
        assert_eq!(secs_until(t, next_minute(t)), 29);
        assert_eq!(next_day(t), at("2027-01-01T00:00:00+00:00"));
        assert_eq!(next_month(t), at("2027-01-01T00:00:00+00:00"));
        // A non-UTC offset is the same instant.
        assert_eq!(day_key(at("2027-01-01T07:00:00+08:00")), "2026-12-31");
    }

    #[test]
    fn refusals_name_the_limit_that_was_hit() {
        let now = at("2026-11-25T10:00:15+00:00");
        assert!(matches!(
            decide(&usage(true), now),
            Decision::Allowed { rate: Some(RateHeaders { limit: 10, remaining: 0, reset: 45 }) }
        ));
        assert!(matches!(decide(&usage(false), now), Decision::RateLimited { .. }));
        let daily = KeyUsage { rate_count: 1, usage_today: 100, ..usage(false) };
        assert!(
            matches!(decide(&daily, now), Decision::QuotaExceeded { period: "daily", limit: 100, retry_after } if retry_after == 14 * 3600 - 15)
        );
        let monthly = KeyUsage { rate_count: 1, usage_month: 1000, ..usage(false) };
        assert!(matches!(decide(&monthly, now), Decision::QuotaExceeded { period: "monthly", .. }));
    }
}
