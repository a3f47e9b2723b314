//! Emailed one-time codes: login by code, and the machinery every other code (password
//! reset, email verification and change) is issued and redeemed with.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sessiond_core::otp::{self, OtpChallenge, OtpCode, OtpPurpose, OtpVerdict};
use sessiond_core::{AuthMethod, Device, DomainError, Email, EventType, SessionId, User, UserId};
use sessiond_store::{NewUser, UserChanges};

use super::grant::SessionRequest;
use super::{Service, ServiceResult, TokenGrant};
use crate::infra::mail::Mailer;
use crate::ratelimit::{Policy, Secret};
use crate::state::cache::Invalidation;

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

/// A code to issue.
pub(super) struct CodeRequest<'a> {
    pub purpose: OtpPurpose,
    pub email: &'a Email,
    /// The account the code acts on, when known.
    pub user: Option<UserId>,
    /// Whether the code is mailed. An address that must not learn anything (unknown, or
    /// unable to use the code) gets a challenge all the same, after the same delay.
    pub deliver: bool,
    pub device: Device,
}

impl Service {
    /// Issues a login challenge and mails its code. Unknown addresses (with
    /// `create_users = false`) get a challenge too, but no mail, after the same delay.
    pub async fn request_otp(&self, email: &str, device: Device) -> ServiceResult<IssuedChallenge> {
        let email = Email::parse(email)?;
        let known = self.otp.create_users || self.store.user_by_email(&email).await?.is_some();
        self.issue_code(CodeRequest {
            purpose: OtpPurpose::Login,
            email: &email,
            user: None,
            deliver: known,
            device,
        })
        .await
    }

    /// Issues a challenge for `request.purpose` and mails its code: at most as often as
    /// the per-address limits and the resend cooldown allow, whether it is mailed or not.
    pub(super) async fn issue_code(
        &self,
        request: CodeRequest<'_>,
    ) -> ServiceResult<IssuedChallenge> {
        let CodeRequest {
            purpose,
            email,
            user,
            deliver,
            device,
        } = request;
        let now = self.now();
        self.limits.hit(Policy::OtpSends, email.as_str()).await?;
        if let Some(last) = self
            .store
            .latest_otp_challenge_at(email.as_str(), purpose)
            .await?
        {
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
        let addressable = Mailer::can_address(email.as_str());
        if deliver && !addressable {
            tracing::warn!("one-time code not mailed: mail systems refuse the address");
        }
        let deliver = deliver && addressable;

        let code = OtpCode::generate(self.otp.code_length);
        let id = uuid::Uuid::now_v7().to_string();
        let ttl = chrono::Duration::from_std(self.otp.ttl).unwrap_or(otp::DEFAULT_TTL);
        let challenge = OtpChallenge {
            code_hash: code.hash(&id),
            id: id.clone(),
            purpose,
            email: email.as_str().to_owned(),
            user_id: user,
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
                .send_code(email.as_str(), &code, self.otp.ttl, purpose)
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
        metrics::counter!("sessiond_otp_challenges_total", "purpose" => purpose.as_str())
            .increment(1);
        tracing::info!(challenge_id = %id, purpose = purpose.as_str(), "one-time code issued");
        Ok(IssuedChallenge {
            challenge_id: id,
            expires_in: self.otp.ttl.as_secs(),
        })
    }

    /// Checks a presented code against a challenge for `purpose`: at most once, within
    /// its lifetime, within its attempts. A wrong code counts against the challenge and
    /// the address; a right one spends the challenge when `spend` (otherwise the caller
    /// spends it later, in the transaction that acts on it, with [`Self::spend_code`]).
    pub(super) async fn check_code(
        &self,
        challenge_id: &str,
        code: &str,
        purpose: OtpPurpose,
        client_ip: Option<IpAddr>,
        spend: bool,
    ) -> ServiceResult<(OtpChallenge, Device)> {
        let presented = OtpCode::parse(code);
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let Some((challenge, device)) = tx.lock_otp_challenge(challenge_id).await? else {
            return Err(DomainError::OtpInvalid.into());
        };
        if challenge.purpose != purpose {
            // A code is good for its own purpose only; to the caller it does not exist.
            return Err(DomainError::OtpInvalid.into());
        }
        // Wrong codes count per address and IP (and, far higher, per address), so
        // someone guessing on a challenge of their own cannot lock the owner out.
        let locked = self
            .limits
            .check_failures(Secret::OtpCode, &challenge.email, client_ip)
            .await
            .is_err();
        match otp::verify(&challenge, presented.as_ref(), now, locked) {
            OtpVerdict::Accept => {
                if spend {
                    tx.consume_otp_challenge(challenge_id, now).await?;
                    tx.commit().await?;
                }
                Ok((challenge, device))
            }
            OtpVerdict::Reject(failure) => {
                tx.record_otp_failure(challenge_id).await?;
                let reason = DomainError::from(failure).code().as_str();
                let event = self.outbox().event(
                    EventType::LoginFailed,
                    now,
                    challenge.user_id,
                    None,
                    json!({"method": "otp", "purpose": challenge.purpose.as_str(), "reason": reason}),
                );
                self.record(tx.as_mut(), &[event]).await?;
                tx.commit().await?;
                self.limits
                    .record_failure(Secret::OtpCode, &challenge.email, client_ip)
                    .await;
                metrics::counter!("sessiond_login_failures_total", "method" => "otp", "reason" => reason).increment(1);
                Err(DomainError::from(failure).into())
            }
            OtpVerdict::Refuse(failure) => Err(DomainError::from(failure).into()),
        }
    }

    /// Spends a challenge [`Self::check_code`] accepted without spending, inside the
    /// transaction that acts on it; refused if another request spent it meanwhile.
    pub(super) async fn spend_code(
        &self,
        tx: &mut dyn sessiond_store::Tx,
        challenge_id: &str,
    ) -> ServiceResult<()> {
        let now = self.now();
        let still_good = tx
            .lock_otp_challenge(challenge_id)
            .await?
            .is_some_and(|(c, _)| c.consumed_at.is_none() && now < c.expires_at);
        if !still_good {
            return Err(DomainError::OtpInvalid.into());
        }
        tx.consume_otp_challenge(challenge_id, now).await?;
        Ok(())
    }

    /// Redeems a login code. The address is then proven: its user is marked verified.
    pub async fn verify_otp(
        &self,
        challenge_id: &str,
        code: &str,
        device: Option<Device>,
        client_ip: Option<IpAddr>,
        upgrade: Option<SessionId>,
    ) -> ServiceResult<TokenGrant> {
        let (challenge, stored_device) = self
            .check_code(challenge_id, code, OtpPurpose::Login, client_ip, true)
            .await?;
        let email = Email::from_stored(challenge.email);
        let user = match self.store.user_by_email(&email).await? {
            Some(credentials) => credentials.user,
            None if self.otp.create_users => self.create_user_for_email(email).await?,
            None => return Err(DomainError::OtpInvalid.into()),
        };
        if !user.active {
            return Err(DomainError::UserInactive.into());
        }
        let user = if user.email_verified {
            user
        } else {
            self.mark_email_verified(user.id).await?
        };
        self.establish(SessionRequest {
            user: Some(user),
            method: AuthMethod::Otp,
            device: device.unwrap_or(stored_device),
            data: None,
            upgrade,
        })
        .await
    }

    /// Records that the user's current address is proven.
    pub(super) async fn mark_email_verified(&self, id: UserId) -> ServiceResult<User> {
        let mut tx = self.store.begin().await?;
        let changes = UserChanges {
            email_verified: Some(true),
            ..Default::default()
        };
        let user = tx
            .update_user(id, &changes, self.now())
            .await?
            .ok_or(DomainError::NotFound)?;
        let changed = json!({"changed": ["email_verified"]});
        self.record_one(tx.as_mut(), EventType::UserUpdated, Some(id), None, changed)
            .await?;
        tx.commit().await?;
        self.fanout.publish(&[Invalidation::User(id)]).await;
        Ok(user)
    }

    /// A user for a verified address; if another request created it meanwhile, that one.
    async fn create_user_for_email(&self, email: Email) -> ServiceResult<User> {
        let mut tx = self.store.begin().await?;
        let inserted = tx
            .insert_user(&NewUser {
                id: UserId::new(),
                email: Some(email.clone()),
                name: None,
                password_hash: None,
                email_verified: true,
                created_at: self.now(),
            })
            .await;
        match inserted {
            Ok(user) => {
                self.record_user_created(tx.as_mut(), &user, "otp").await?;
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
