//! A person's own account: changing or resetting the password, proving and changing the
//! email address. Every code goes through the one-time-code machinery (`otp.rs`): hashed,
//! short-lived, single-use, with attempt caps and per-address counters.

use std::net::IpAddr;

use serde_json::json;
use sessiond_core::otp::OtpPurpose;
use sessiond_core::password::Password;
use sessiond_core::password_policy::new_password;
use sessiond_core::{
    AuthMethod, Device, DomainError, Email, EventType, RevokeReason, User, UserId,
};
use sessiond_store::{StoreError, UserChanges};

use super::grant::SessionRequest;
use super::otp::{CodeRequest, IssuedChallenge};
use super::{Authenticated, Service, ServiceResult, TokenGrant};
use crate::ratelimit::Secret;
use crate::state::cache::Invalidation;

/// Account rules from the configuration.
#[derive(Debug, Clone, Default)]
pub struct AccountSettings {
    /// Password logins of users whose address is not proven answer `EMAIL_NOT_VERIFIED`.
    pub require_verified_email: bool,
}

/// A password reset as the client confirms it.
pub struct ResetConfirmation {
    pub challenge_id: String,
    pub code: String,
    pub new_password: String,
}

impl Service {
    /// Changes the caller's password after checking the current one; every other session
    /// of the user ends (`password_changed`), the caller's stays.
    pub async fn change_password(
        &self,
        auth: &Authenticated,
        current: String,
        new: String,
        client_ip: Option<IpAddr>,
    ) -> ServiceResult<()> {
        let user_id = auth
            .session
            .user_id
            .ok_or(DomainError::InvalidCredentials)?;
        let credentials = self
            .store
            .user_credentials(user_id)
            .await?
            .ok_or(DomainError::InvalidCredentials)?;
        let email = credentials.user.email.clone();
        let key = failure_key(&credentials.user);
        self.limits
            .check_failures(Secret::Password, &key, client_ip)
            .await?;
        let matches = self
            .passwords
            .verify(Password::for_login(current), credentials.password_hash)
            .await?;
        if !matches {
            self.limits
                .record_failure(Secret::Password, &key, client_ip)
                .await;
            return Err(DomainError::InvalidCredentials.into());
        }
        let new = new_password(new, "new_password", email.as_ref())?;
        let hash = self.passwords.hash(new).await?;

        let now = self.now();
        let reason = RevokeReason::PasswordChanged;
        let mut tx = self.store.begin().await?;
        if !tx.set_password_hash(user_id, &hash, now).await? {
            return Err(DomainError::NotFound.into());
        }
        let revoked = tx
            .revoke_user_sessions(user_id, Some(auth.session.id), reason, now)
            .await?;
        // By session, not by user: the caller's own tokens must stay good.
        self.record_ended(tx.as_mut(), &revoked, Some(user_id), None, reason, now)
            .await?;
        let data = json!({"other_sessions_ended": revoked.len()});
        self.record_one(
            tx.as_mut(),
            EventType::PasswordChanged,
            Some(user_id),
            Some(auth.session.id),
            data,
        )
        .await?;
        tx.commit().await?;
        self.ended(&revoked).await;
        tracing::info!(user_id = %user_id, revoked = revoked.len(), "password changed");
        Ok(())
    }

    /// Mails a reset code to the address if it has an active account. Unknown addresses
    /// get the same answer after the same delay: a challenge that no code redeems.
    pub async fn request_password_reset(
        &self,
        email: &str,
        device: Device,
    ) -> ServiceResult<IssuedChallenge> {
        let email = Email::parse(email)?;
        let user = self
            .store
            .user_by_email(&email)
            .await?
            .map(|c| c.user)
            .filter(|u| u.active);
        self.issue_code(CodeRequest {
            purpose: OtpPurpose::PasswordReset,
            email: &email,
            user: user.as_ref().map(|u| u.id),
            deliver: user.is_some(),
            device,
        })
        .await
    }

    /// Sets a new password with a mailed reset code, ends every earlier session of the
    /// user (`password_reset`) and logs in. A new password the policy refuses leaves the
    /// code good for another try.
    pub async fn confirm_password_reset(
        &self,
        confirmation: ResetConfirmation,
        device: Option<Device>,
        client_ip: Option<IpAddr>,
    ) -> ServiceResult<TokenGrant> {
        let ResetConfirmation {
            challenge_id,
            code,
            new_password: raw,
        } = confirmation;
        let (challenge, stored_device) = self
            .check_code(
                &challenge_id,
                &code,
                OtpPurpose::PasswordReset,
                client_ip,
                false,
            )
            .await?;
        let user_id = challenge.user_id.ok_or(DomainError::OtpInvalid)?;
        let user = self
            .user(user_id)
            .await
            .map_err(|_| DomainError::OtpInvalid)?;
        if user.email.as_ref().map(Email::as_str) != Some(challenge.email.as_str()) {
            // The account moved to another address since: this code proves nothing.
            return Err(DomainError::OtpInvalid.into());
        }
        if !user.active {
            return Err(DomainError::UserInactive.into());
        }
        let new = new_password(raw, "new_password", user.email.as_ref())?;
        // Hashed before the transaction: argon2 must not hold the writer.
        let hash = self.passwords.hash(new).await?;

        let now = self.now();
        let reason = RevokeReason::PasswordReset;
        let mut tx = self.store.begin().await?;
        self.spend_code(tx.as_mut(), &challenge_id).await?;
        tx.set_password_hash(user_id, &hash, now).await?;
        // The mailbox is proven too.
        let changes = UserChanges {
            email_verified: Some(true),
            ..Default::default()
        };
        let user = tx
            .update_user(user_id, &changes, now)
            .await?
            .ok_or(DomainError::OtpInvalid)?;
        let revoked = tx.revoke_user_sessions(user_id, None, reason, now).await?;
        self.record_ended(
            tx.as_mut(),
            &revoked,
            Some(user_id),
            Some(user_id),
            reason,
            now,
        )
        .await?;
        let data = json!({"sessions_ended": revoked.len()});
        self.record_one(
            tx.as_mut(),
            EventType::PasswordReset,
            Some(user_id),
            None,
            data,
        )
        .await?;
        tx.commit().await?;
        self.fanout.publish(&[Invalidation::User(user_id)]).await;
        self.ended(&revoked).await;
        tracing::info!(user_id = %user_id, revoked = revoked.len(), "password reset");
        self.establish(SessionRequest {
            user: Some(user),
            method: AuthMethod::Password,
            device: device.unwrap_or(stored_device),
            data: None,
            upgrade: None,
        })
        .await
    }

    /// Mails a code to the caller's current address, to prove it.
    pub async fn request_email_verification(
        &self,
        auth: &Authenticated,
    ) -> ServiceResult<IssuedChallenge> {
        let user = self.account_of(auth).await?;
        let email = user.email.clone().ok_or_else(|| {
            DomainError::Conflict("the account has no email address to verify".into())
        })?;
        self.issue_code(CodeRequest {
            purpose: OtpPurpose::VerifyEmail,
            email: &email,
            user: Some(user.id),
            deliver: true,
            device: auth.session.device.clone(),
        })
        .await
    }

    /// Redeems a verification code of the caller's: the address is proven.
    pub async fn confirm_email_verification(
        &self,
        auth: &Authenticated,
        challenge_id: &str,
        code: &str,
        client_ip: Option<IpAddr>,
    ) -> ServiceResult<User> {
        let user = self.account_of(auth).await?;
        let challenge = self
            .own_challenge(&user, challenge_id, OtpPurpose::VerifyEmail)
            .await?;
        if user.email.as_ref().map(Email::as_str) != Some(challenge.as_str()) {
            return Err(DomainError::OtpInvalid.into());
        }
        self.check_code(challenge_id, code, OtpPurpose::VerifyEmail, client_ip, true)
            .await?;
        let user = self.mark_email_verified(user.id).await?;
        tracing::info!(user_id = %user.id, "email verified");
        Ok(user)
    }

    /// Mails a code to `new_email`; redeeming it moves the caller's account there.
    pub async fn request_email_change(
        &self,
        auth: &Authenticated,
        new_email: &str,
    ) -> ServiceResult<IssuedChallenge> {
        let user = self.account_of(auth).await?;
        let email = Email::parse(new_email)?;
        if user.email.as_ref() == Some(&email) {
            return Err(
                DomainError::invalid_field("email", "is already the account's address").into(),
            );
        }
        if self.store.user_by_email(&email).await?.is_some() {
            return Err(
                DomainError::Conflict("a user with this email already exists".into()).into(),
            );
        }
        self.issue_code(CodeRequest {
            purpose: OtpPurpose::ChangeEmail,
            email: &email,
            user: Some(user.id),
            deliver: true,
            device: auth.session.device.clone(),
        })
        .await
    }

    /// Redeems a change code of the caller's: the account takes the new (now proven)
    /// address, and the old one is told, so a takeover does not pass unnoticed.
    pub async fn confirm_email_change(
        &self,
        auth: &Authenticated,
        challenge_id: &str,
        code: &str,
        client_ip: Option<IpAddr>,
    ) -> ServiceResult<User> {
        let user = self.account_of(auth).await?;
        self.own_challenge(&user, challenge_id, OtpPurpose::ChangeEmail)
            .await?;
        let (challenge, _) = self
            .check_code(
                challenge_id,
                code,
                OtpPurpose::ChangeEmail,
                client_ip,
                false,
            )
            .await?;
        let new = Email::from_stored(challenge.email);
        let now = self.now();
        let mut tx = self.store.begin().await?;
        self.spend_code(tx.as_mut(), challenge_id).await?;
        let changes = UserChanges {
            email: Some(new),
            email_verified: Some(true),
            ..Default::default()
        };
        let updated = tx
            .update_user(user.id, &changes, now)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    DomainError::Conflict("a user with this email already exists".into()).into()
                }
                other => super::ServiceError::from(other),
            })?
            .ok_or(DomainError::NotFound)?;
        let changed = json!({"changed": ["email", "email_verified"], "by": "user"});
        self.record_one(
            tx.as_mut(),
            EventType::UserUpdated,
            Some(user.id),
            None,
            changed,
        )
        .await?;
        tx.commit().await?;
        self.fanout.publish(&[Invalidation::User(user.id)]).await;
        tracing::info!(user_id = %user.id, "email changed");
        if let Some(old) = &user.email
            && let Err(e) = self.otp.mailer.send_email_changed(old.as_str()).await
        {
            // The change stands; the notice is best effort.
            tracing::error!(error = %e, user_id = %user.id, "email-changed notice failed");
        }
        Ok(updated)
    }

    /// The caller's user, fresh from storage; anonymous sessions have no account.
    async fn account_of(&self, auth: &Authenticated) -> ServiceResult<User> {
        let id = auth.session.user_id.ok_or(DomainError::Forbidden)?;
        self.user(id).await
    }

    /// The address of a challenge for `purpose` that acts on `user`; any other challenge
    /// is `OTP_INVALID`, as if it did not exist.
    async fn own_challenge(
        &self,
        user: &User,
        challenge_id: &str,
        purpose: OtpPurpose,
    ) -> ServiceResult<String> {
        let mut tx = self.store.begin().await?;
        let found = tx.lock_otp_challenge(challenge_id).await?;
        drop(tx);
        match found {
            Some((c, _)) if c.purpose == purpose && c.user_id == Some(user.id) => Ok(c.email),
            _ => Err(DomainError::OtpInvalid.into()),
        }
    }

    /// Whether a password login of `user` may go on.
    pub(super) fn may_log_in_with_password(&self, user: &User) -> ServiceResult<()> {
        if self.accounts.require_verified_email && !user.email_verified {
            return Err(DomainError::EmailNotVerified.into());
        }
        Ok(())
    }

    /// Replaces a hash made with older parameters, after a login proved the password.
    pub(super) async fn store_upgraded_hash(&self, user: UserId, hash: &str) {
        let result = async {
            let mut tx = self.store.begin().await?;
            tx.set_password_hash(user, hash, self.now()).await?;
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => tracing::info!(user_id = %user, "password re-hashed with today's parameters"),
            // The old hash still verifies; the next login tries again.
            Err(e) => tracing::warn!(error = %e, user_id = %user, "password re-hash not stored"),
        }
    }
}

/// What wrong current passwords count against: the account's address, or its id.
fn failure_key(user: &User) -> String {
    match &user.email {
        Some(email) => email.as_str().to_owned(),
        None => user.id.to_string(),
    }
}
