//! Abuse limits: fixed-window counters per policy and key (client IP, session, account).
//!
//! Counters live behind [`CounterStore`]: in-process by default, and a shared store when
//! several instances must agree. A fixed window is what a shared store (Redis `INCR` +
//! `EXPIRE`) does atomically in one round trip, so both backends enforce exactly the
//! same rule; and unlike a token bucket it can be read without being charged, which the
//! per-account failure back-off needs.

mod failures;
mod fallback;
mod memory;
mod redis;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sessiond_core::{Clock, DomainError};

pub use failures::Secret;
pub use fallback::FallbackCounters;
pub use memory::MemoryCounters;
pub use redis::RedisCounters;

/// "50 per 15 minutes", written `50/15m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u32,
    pub window: Duration,
}

impl Rate {
    pub const fn new(limit: u32, window_secs: u64) -> Self {
        Self {
            limit,
            window: Duration::from_secs(window_secs),
        }
    }
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (limit, window) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a rate like `50/15m`"))?;
        let limit: u32 = limit
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: the count must be a whole number"))?;
        let window = humantime::parse_duration(window.trim())
            .map_err(|e| format!("{s:?}: the window is not a duration ({e})"))?;
        if limit == 0 || window.as_secs() == 0 {
            return Err(format!("{s:?}: count and window (≥ 1s) must be positive"));
        }
        Ok(Self { limit, window })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.limit,
            humantime::format_duration(self.window)
        )
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The limits an operator can tune (`[rate_limits]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Anonymous session creation, per client IP.
    pub anonymous: Rate,
    /// Registrations, logins, OTP sends and verifications, exchanges, per client IP.
    pub login: Rate,
    /// Refreshes, per session.
    pub refresh: Rate,
    /// Token validations, per client IP.
    pub validate: Rate,
    /// Failed password logins per account from one client IP; past it, that IP's
    /// logins for the account are refused until the window ends (see `failures.rs`).
    pub password_failures: Rate,
    /// Failed password logins per account from all IPs; past it, the account's logins
    /// are spaced out with an exponential back-off rather than refused.
    pub password_failures_account: Rate,
    /// One-time codes mailed per address.
    pub otp_sends: Rate,
    /// Wrong one-time codes per address from one client IP, across its challenges.
    pub otp_failures: Rate,
    /// Wrong one-time codes per address from all IPs; past it, back-off as for passwords.
    pub otp_failures_address: Rate,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            anonymous: Rate::new(10, 3600),
            login: Rate::new(50, 15 * 60),
            refresh: Rate::new(20, 3600),
            validate: Rate::new(1000, 3600),
            password_failures: Rate::new(10, 15 * 60),
            password_failures_account: Rate::new(100, 15 * 60),
            otp_sends: Rate::new(5, 3600),
            otp_failures: Rate::new(10, 3600),
            otp_failures_address: Rate::new(30, 3600),
        }
    }
}

/// A window's count after a change, and when the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    pub count: u64,
    pub resets_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
#[error("rate-limit counters unavailable: {0}")]
pub struct CounterError(pub String);

/// Fixed-window counters keyed by an opaque string.
#[async_trait]
pub trait CounterStore: Send + Sync + 'static {
    /// Adds one to the counter of `key` in the window containing `now`.
    async fn increment(
        &self,
        key: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<WindowCount, CounterError>;
    /// Reads the counter without changing it.
    async fn peek(
        &self,
        key: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<WindowCount, CounterError>;
}

/// The named limits and the counters behind them.
#[derive(Clone)]
pub struct RateLimiter {
    config: RateLimitConfig,
    counters: Arc<dyn CounterStore>,
    clock: Arc<dyn Clock>,
}

/// Which limit a check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Anonymous,
    Login,
    Refresh,
    Validate,
    PasswordFailures,
    PasswordFailuresAccount,
    OtpSends,
    OtpFailures,
    OtpFailuresAddress,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Anonymous => "anonymous",
            Policy::Login => "login",
            Policy::Refresh => "refresh",
            Policy::Validate => "validate",
            Policy::PasswordFailures => "password_failures",
            Policy::PasswordFailuresAccount => "password_failures_account",
            Policy::OtpSends => "otp_sends",
            Policy::OtpFailures => "otp_failures",
            Policy::OtpFailuresAddress => "otp_failures_address",
        }
    }
}

impl RateLimiter {
    pub fn new(
        config: RateLimitConfig,
        counters: Arc<dyn CounterStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            config,
            counters,
            clock,
        }
    }

    fn rate(&self, policy: Policy) -> Rate {
        let c = &self.config;
        match policy {
            Policy::Anonymous => c.anonymous,
            Policy::Login => c.login,
            Policy::Refresh => c.refresh,
            Policy::Validate => c.validate,
            Policy::PasswordFailures => c.password_failures,
            Policy::PasswordFailuresAccount => c.password_failures_account,
            Policy::OtpSends => c.otp_sends,
            Policy::OtpFailures => c.otp_failures,
            Policy::OtpFailuresAddress => c.otp_failures_address,
        }
    }

    fn key(policy: Policy, subject: &str) -> String {
        format!("{}:{subject}", policy.name())
    }

    /// Counts one request against the limit; refuses it once the window is full.
    pub async fn hit(&self, policy: Policy, subject: &str) -> Result<(), DomainError> {
        self.decide(policy, subject, true).await
    }

    /// Refuses when the window is already full, without counting this request.
    pub async fn check(&self, policy: Policy, subject: &str) -> Result<(), DomainError> {
        self.decide(policy, subject, false).await
    }

    /// `charge`: count this request (then refuse past the limit) or only look (then
    /// refuse at the limit, since the next request would be past it).
    async fn decide(&self, policy: Policy, subject: &str, charge: bool) -> Result<(), DomainError> {
        if !self.config.enabled {
            return Ok(());
        }
        let rate = self.rate(policy);
        let now = self.clock.now();
        let key = Self::key(policy, subject);
        let counted = if charge {
            self.counters.increment(&key, rate.window, now).await
        } else {
            self.counters.peek(&key, rate.window, now).await
        };
        match counted {
            Ok(w) if w.count + u64::from(!charge) > u64::from(rate.limit) => {
                Err(exceeded(policy, rate, w, now))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                // Limits protect the service; they must not take it down with them.
                tracing::warn!(error = %e, policy = policy.name(), "rate limit not enforced");
                Ok(())
            }
        }
    }

    /// The counter of `key` without changing it; `None` (and a warning) when the
    /// counters cannot be read, since limits must not take the service down.
    async fn peek_or_warn(
        &self,
        policy: Policy,
        key: &str,
        window: Duration,
    ) -> Option<WindowCount> {
        match self.counters.peek(key, window, self.clock.now()).await {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, policy = policy.name(), "rate limit not enforced");
                None
            }
        }
    }

    /// Counts a failure (or any event) without refusing anything now; the count after
    /// it, when the counters could be reached.
    pub async fn record(&self, policy: Policy, subject: &str) -> Option<WindowCount> {
        if !self.config.enabled {
            return None;
        }
        let rate = self.rate(policy);
        match self
            .counters
            .increment(&Self::key(policy, subject), rate.window, self.clock.now())
            .await
        {
            Ok(count) => Some(count),
            Err(e) => {
                tracing::warn!(error = %e, policy = policy.name(), "rate limit event not recorded");
                None
            }
        }
    }
}

fn exceeded(policy: Policy, rate: Rate, window: WindowCount, now: DateTime<Utc>) -> DomainError {
    metrics::counter!("sessiond_rate_limit_refusals_total", "policy" => policy.name()).increment(1);
    let left_ms = (window.resets_at - now).num_milliseconds().max(0) as u64;
    DomainError::RateLimited {
        policy: policy.name(),
        limit: rate.limit,
        window_secs: rate.window.as_secs(),
        retry_after_secs: left_ms.div_ceil(1000).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_core::ManualClock;

    #[test]
    fn rates_parse_and_print() {
        let r: Rate = "50/15m".parse().unwrap();
        assert_eq!(r, Rate::new(50, 900));
        assert_eq!(r.to_string(), "50/15m");
        for bad in ["50", "x/1m", "0/1m", "5/0s", "5/banana"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    fn limiter(clock: &ManualClock) -> RateLimiter {
        let config = RateLimitConfig {
            login: Rate::new(3, 60),
            ..RateLimitConfig::default()
        };
        RateLimiter::new(
            config,
            Arc::new(MemoryCounters::default()),
            Arc::new(clock.clone()),
        )
    }

    #[tokio::test]
    async fn a_full_window_refuses_until_it_ends() {
        let clock = ManualClock::new(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let limiter = limiter(&clock);
        for _ in 0..3 {
            limiter.hit(Policy::Login, "1.2.3.4").await.unwrap();
        }
        let Err(DomainError::RateLimited {
            retry_after_secs,
            limit,
            window_secs,
            ..
        }) = limiter.hit(Policy::Login, "1.2.3.4").await
        else {
            panic!("fourth hit must be refused");
        };
        assert_eq!((limit, window_secs, retry_after_secs), (3, 60, 60));
        // Other keys and policies are independent.
        limiter.hit(Policy::Login, "5.6.7.8").await.unwrap();
        limiter.hit(Policy::Validate, "1.2.3.4").await.unwrap();
        clock.advance(chrono::Duration::seconds(60));
        limiter.hit(Policy::Login, "1.2.3.4").await.unwrap();
    }

    #[tokio::test]
    async fn check_reads_without_charging() {
        let clock = ManualClock::new(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let limiter = limiter(&clock);
        for _ in 0..10 {
            limiter.check(Policy::Login, "k").await.unwrap();
        }
        for _ in 0..3 {
            limiter.record(Policy::Login, "k").await;
        }
        assert!(limiter.check(Policy::Login, "k").await.is_err());
    }

    #[tokio::test]
    async fn disabled_limits_refuse_nothing() {
        let clock = ManualClock::starting_now();
        let config = RateLimitConfig {
            enabled: false,
            login: Rate::new(1, 60),
            ..RateLimitConfig::default()
        };
        let limiter =
            RateLimiter::new(config, Arc::new(MemoryCounters::default()), Arc::new(clock));
        for _ in 0..5 {
            limiter.hit(Policy::Login, "k").await.unwrap();
        }
    }
}
