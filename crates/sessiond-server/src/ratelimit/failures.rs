//! Failed-login limits that stop guessing without handing anyone a lockout.
//!
//! A limit on failures per account alone lets anyone who knows an address keep its owner
//! out (OWASP's authentication cheat sheet warns of exactly this). So failures count
//! twice:
//! - per account *and client IP*, with the strict limit: past it, that IP's attempts on
//!   that account are refused until the window ends. A guesser on one IP is stopped; the
//!   owner on another IP is not affected.
//! - per account from every IP, with a much higher ceiling: past it, attempts on the
//!   account are not refused outright but spaced out: each back-off slot (1 s, 2 s,
//!   4 s, … doubling with every further failure, at most the window) admits one
//!   attempt, and a failure also uses up the slot it happens in, so the next attempt
//!   waits for the next slot. Guessing from many IPs is throttled account-wide; the
//!   owner is slowed, never locked out.
//!
//! Both keys are the normalised address whether or not an account has it, so the answers
//! are the same for known and unknown accounts.

use std::net::IpAddr;
use std::time::Duration;

use sessiond_core::DomainError;

use super::{Policy, Rate, RateLimiter, exceeded};

/// What is being guessed: a password, or an emailed one-time code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    Password,
    OtpCode,
}

impl Secret {
    /// The strict per-(account, IP) policy and the account-wide ceiling.
    fn policies(self) -> (Policy, Policy) {
        match self {
            Secret::Password => (Policy::PasswordFailures, Policy::PasswordFailuresAccount),
            Secret::OtpCode => (Policy::OtpFailures, Policy::OtpFailuresAddress),
        }
    }
}

/// The key of one account as seen from one client IP.
fn pair(account: &str, ip: Option<IpAddr>) -> String {
    match ip {
        Some(ip) => format!("{account}|{ip}"),
        None => format!("{account}|unknown"),
    }
}

/// How long one back-off slot lasts once the account has `failures` (at least the
/// ceiling's limit) in the ceiling's window.
fn backoff_slot(failures: u64, ceiling: Rate) -> Duration {
    let past = failures.saturating_sub(u64::from(ceiling.limit)).min(63) as u32;
    Duration::from_secs(1u64 << past).min(ceiling.window)
}

/// The counter of the back-off slot for `failures`: one per failure count, so a new
/// failure opens a new, longer slot.
fn backoff_key(ceiling: Policy, account: &str, failures: u64) -> String {
    format!("{}:{account}:backoff:{failures}", ceiling.name())
}

impl RateLimiter {
    /// Refuses an attempt to present `secret` for `account` from `ip` when that IP has
    /// failed too often on it, or spaces attempts out once the account-wide ceiling is
    /// passed. A refused attempt is not a failure and is not counted as one.
    pub async fn check_failures(
        &self,
        secret: Secret,
        account: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), DomainError> {
        if !self.config.enabled {
            return Ok(());
        }
        let (strict, ceiling) = secret.policies();
        self.check(strict, &pair(account, ip)).await?;
        let ceiling_rate = self.rate(ceiling);
        let now = self.clock.now();
        let Some(failures) = self
            .peek_or_warn(ceiling, &Self::key(ceiling, account), ceiling_rate.window)
            .await
        else {
            return Ok(());
        };
        if failures.count < u64::from(ceiling_rate.limit) {
            return Ok(());
        }
        // Past the ceiling: the first attempt of a slot goes on to the check of the
        // secret; the rest of the slot waits.
        let slot = backoff_slot(failures.count, ceiling_rate);
        let key = backoff_key(ceiling, account, failures.count);
        match self.counters.increment(&key, slot, now).await {
            Ok(attempts) if attempts.count > 1 => {
                Err(exceeded(ceiling, ceiling_rate, attempts, now))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, policy = ceiling.name(), "back-off not enforced");
                Ok(())
            }
        }
    }

    /// Counts a failed attempt against both the (account, IP) pair and the account.
    /// Past the ceiling, the failure also uses up the back-off slot it opens, so the
    /// next attempt waits for the slot after it.
    pub async fn record_failure(&self, secret: Secret, account: &str, ip: Option<IpAddr>) {
        let (strict, ceiling) = secret.policies();
        self.record(strict, &pair(account, ip)).await;
        let Some(failures) = self.record(ceiling, account).await else {
            return;
        };
        let ceiling_rate = self.rate(ceiling);
        if failures.count >= u64::from(ceiling_rate.limit) {
            let slot = backoff_slot(failures.count, ceiling_rate);
            let key = backoff_key(ceiling, account, failures.count);
            if let Err(e) = self.counters.increment(&key, slot, self.clock.now()).await {
                tracing::warn!(error = %e, policy = ceiling.name(), "back-off not recorded");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::DateTime;
    use sessiond_core::ManualClock;

    use super::*;
    use crate::ratelimit::{MemoryCounters, RateLimitConfig};

    fn limiter(clock: &ManualClock) -> RateLimiter {
        let config = RateLimitConfig {
            password_failures: Rate::new(3, 900),
            password_failures_account: Rate::new(6, 900),
            ..RateLimitConfig::default()
        };
        RateLimiter::new(
            config,
            Arc::new(MemoryCounters::default()),
            Arc::new(clock.clone()),
        )
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    const ACCOUNT: &str = "ann@example.com";

    #[test]
    fn slots_double_up_to_the_window() {
        let ceiling = Rate::new(100, 900);
        let secs: Vec<u64> = (100..112)
            .map(|failures| backoff_slot(failures, ceiling).as_secs())
            .collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]);
        assert_eq!(backoff_slot(u64::MAX, ceiling).as_secs(), 900);
    }

    #[tokio::test]
    async fn one_ip_that_fails_is_refused_and_another_is_not() {
        let clock = ManualClock::new(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let limiter = limiter(&clock);
        for _ in 0..3 {
            limiter
                .check_failures(Secret::Password, ACCOUNT, ip(1))
                .await
                .unwrap();
            limiter
                .record_failure(Secret::Password, ACCOUNT, ip(1))
                .await;
        }
        let refused = limiter
            .check_failures(Secret::Password, ACCOUNT, ip(1))
            .await;
        assert!(
            matches!(
                refused,
                Err(DomainError::RateLimited {
                    policy: "password_failures",
                    ..
                })
            ),
            "{refused:?}"
        );
        limiter
            .check_failures(Secret::Password, ACCOUNT, ip(2))
            .await
            .unwrap();
        // One-time codes count apart from passwords.
        limiter
            .check_failures(Secret::OtpCode, ACCOUNT, ip(1))
            .await
            .unwrap();
    }

    /// The wait a refused attempt is told, or `None` if it may go on.
    async fn wait_for(limiter: &RateLimiter, from: Option<IpAddr>) -> Option<u64> {
        match limiter
            .check_failures(Secret::Password, ACCOUNT, from)
            .await
        {
            Ok(()) => None,
            Err(DomainError::RateLimited {
                policy: "password_failures_account",
                retry_after_secs,
                ..
            }) => Some(retry_after_secs),
            Err(other) => panic!("unexpected refusal: {other:?}"),
        }
    }

    #[tokio::test]
    async fn past_the_ceiling_attempts_are_spaced_out_not_refused() {
        let clock = ManualClock::new(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let limiter = limiter(&clock);
        // Six failures from six IPs reach the ceiling; the sixth uses up its 1 s slot.
        for last in 1..=6 {
            assert_eq!(wait_for(&limiter, ip(last)).await, None);
            limiter
                .record_failure(Secret::Password, ACCOUNT, ip(last))
                .await;
        }
        let owner = ip(100);
        assert_eq!(wait_for(&limiter, owner).await, Some(1));
        clock.advance(chrono::Duration::seconds(1));
        // A new slot admits one attempt, whoever makes it.
        assert_eq!(wait_for(&limiter, ip(7)).await, None);
        assert_eq!(wait_for(&limiter, owner).await, Some(1));
        // A failure opens a slot twice as long and uses it up.
        clock.advance(chrono::Duration::seconds(1));
        limiter
            .record_failure(Secret::Password, ACCOUNT, ip(7))
            .await;
        assert_eq!(wait_for(&limiter, owner).await, Some(2));
        clock.advance(chrono::Duration::seconds(2));
        assert_eq!(wait_for(&limiter, owner).await, None);
        // The ceiling's window ends, and with it the back-off.
        clock.advance(chrono::Duration::minutes(15));
        for _ in 0..3 {
            assert_eq!(wait_for(&limiter, owner).await, None);
        }
    }
}
