//! Login by emailed one-time code.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sessiond_core::otp::{self, OtpChallenge, OtpCode, OtpVerdict};
use sessiond_core::{AuthMethod, Device, DomainError, Email, SessionId, UserId};
use sessiond_store::NewUser;

use super::grant::SessionRequest;
use super::{Service, ServiceResult, TokenGrant};
use crate::infra::mail::Mailer;
use crate::ratelimit::{Policy, Secret};

/// How codes are issued, from `[otp]`.
pub struct OtpSettings {
    pub create_users: bool,
    pub code_length: u32,
    pub ttl: Duration,
    pub resend_cooldown: Duration,
    pub mailer: Mailer,
    /// Recent mail latency in microseconds, used to make "no mail sent" take as long as
    /// sending one, so timing does not tell which addresses have accounts.
    pub typical_send_micros: AtomicU64,
}

impl OtpSettings {
    pub fn new(
        create_users: bool,
        code_length: u32,
        ttl: Duration,
        resend_cooldown: Duration,
        mailer: Mailer,
    ) -> Self {
        Self {
            create_users,
            code_length,
            ttl,
            resend_cooldown,
            mailer,
            // A first guess until a real mail has been timed.
            typical_send_micros: AtomicU64::new(20_000),
        }
    }

    fn note_send_time(&self, took: Duration) {
        let sample = took.as_micros().min(u128::from(u32::MAX)) as u64;
        let old = self.typical_send_micros.load(Ordering::Relaxed);
        // Exponential moving average, weight 1/8 on the newest sample.
        self.typical_send_micros
            .store(old - old / 8 + sample / 8, Ordering::Relaxed);
    }
}

/// What `POST /v1/auth/otp` answers.
pub struct IssuedChallenge {
    pub challenge_id: String,
    pub expires_in: u64,
}

impl Service {
    /// Issues a challenge and mails its code. Unknown addresses (with `create_users =
    /// false`) get a challenge too, but no mail, after the same delay.
    pub async fn request_otp(&self, email: &str, device: Device) -> ServiceResult<IssuedChallenge> {
        let email = Email::parse(email)?;
        let now = self.now();
        self.limits.hit(Policy::OtpSends, email.as_str()).await?;
        if let Some(last) = self.store.latest_otp_challenge_at(email.as_str()).await? {
            let cooldown = chrono::Duration::from_std(self.otp.resend_cooldown).unwrap_or_default();
            let wait = last + cooldown - now;
            if wait > chrono::Duration::zero() {
                return Err(DomainError::RateLimited {
                    policy: "otp_resend",
                    limit: 1,
                    window_secs: self.otp.resend_cooldown.as_secs(),
                    retry_after_secs: (wait.num_milliseconds() as u64).div_ceil(1000).max(1),
                }
                .into());
            }
        }
        let known = self.otp.create_users || self.store.user_by_email(&email).await?.is_some();
        let addressable = Mailer::can_address(email.as_str());
        if known && !addressable {
            tracing::warn!("one-time code not mailed: mail systems refuse the address");
        }
        let deliver = known && addressable;

        let code = OtpCode::generate(self.otp.code_length);
        let id = uuid::Uuid::now_v7().to_string();
        let ttl = chrono::Duration::from_std(self.otp.ttl).unwrap_or(otp::DEFAULT_TTL);
        let challenge = OtpChallenge {
            code_hash: code.hash(&id),
            id: id.clone(),
            email: email.as_str().to_owned(),
            created_at: now,
            expires_at: now + ttl,
            attempts: 0,
            consumed_at: None,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_otp_challenge(&challenge, &device).await?;
        tx.commit().await?;

        if deliver {
            let started = Instant::now();
            if let Err(e) = self
                .otp
                .mailer
                .send_code(email.as_str(), &code, self.otp.ttl)
                .await
            {
                tracing::error!(error = %e, challenge_id = %id, "one-time code mail failed");
                // No usable challenge may outlive a mail that never left.
                let mut tx = self.store.begin().await?;
                tx.delete_otp_challenge(&id).await?;
                tx.commit().await?;
                metrics::counter!("sessiond_otp_mail_failures_total").increment(1);
                return Err(DomainError::UpstreamUnavailable.into());
            }
            self.otp.note_send_time(started.elapsed());
        } else {
            let typical = self.otp.typical_send_micros.load(Ordering::Relaxed);
            tokio::time::sleep(Duration::from_micros(typical)).await;
        }
        metrics::counter!("sessiond_otp_challenges_total").increment(1);
        tracing::info!(challenge_id = %id, "one-time code issued");
        Ok(IssuedChallenge {
            challenge_id: id,
            expires_in: self.otp.ttl.as_secs(),
        })
    }

    /// Redeems a code: at most once, within its lifetime, within its attempts.
    pub async fn verify_otp(
        &self,
        challenge_id: &str,
        code: &str,
        device: Option<Device>,
        client_ip: Option<IpAddr>,
        upgrade: Option<SessionId>,
    ) -> ServiceResult<TokenGrant> {
        let presented = OtpCode::parse(code);
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let Some((challenge, stored_device)) = tx.lock_otp_challenge(challenge_id).await? else {
            return Err(DomainError::OtpInvalid.into());
        };
        // Wrong codes count per address and IP (and, far higher, per address), so
        // someone guessing on a challenge of their own cannot lock the owner out.
        let locked = self
            .limits
            .check_failures(Secret::OtpCode, &challenge.email, client_ip)
            .await
            .is_err();
        match otp::verify(&challenge, presented.as_ref(), now, locked) {
            OtpVerdict::Accept => {
                tx.consume_otp_challenge(challenge_id, now).await?;
                tx.commit().await?;
            }
            OtpVerdict::Reject(failure) => {
                tx.record_otp_failure(challenge_id).await?;
                tx.commit().await?;
                self.limits
                    .record_failure(Secret::OtpCode, &challenge.email, client_ip)
                    .await;
                metrics::counter!("sessiond_login_failures_total", "method" => "otp").increment(1);
                return Err(DomainError::from(failure).into());
            }
            OtpVerdict::Refuse(failure) => return Err(DomainError::from(failure).into()),
        }

        let email = Email::from_stored(challenge.email);
        let user = match self.store.user_by_email(&email).await? {
            Some(credentials) => credentials.user,
            None if self.otp.create_users => self.create_user_for_email(email).await?,
            None => return Err(DomainError::OtpInvalid.into()),
        };
        if !user.active {
            return Err(DomainError::UserInactive.into());
        }
        self.establish(SessionRequest {
            user: Some(user),
            method: AuthMethod::Otp,
            device: device.unwrap_or(stored_device),
            data: None,
            upgrade,
        })
        .await
    }

    /// A user for a verified address; if another request created it meanwhile, that one.
    async fn create_user_for_email(&self, email: Email) -> ServiceResult<sessiond_core::User> {
        let mut tx = self.store.begin().await?;
        let inserted = tx
            .insert_user(&NewUser {
                id: UserId::new(),
                email: Some(email.clone()),
                name: None,
                password_hash: None,
                created_at: self.now(),
            })
            .await;
        match inserted {
            Ok(user) => {
                tx.commit().await?;
                tracing::info!(user_id = %user.id, "user created by one-time code");
                Ok(user)
            }
            Err(sessiond_store::StoreError::Conflict(_)) => {
                drop(tx);
                Ok(self
                    .store
                    .user_by_email(&email)
                    .await?
                    .ok_or(DomainError::OtpInvalid)?
                    .user)
            }
            Err(e) => Err(e.into()),
        }
    }
}
