//! Ways in: registration, password login, anonymous sessions, backend-created sessions.

use std::net::IpAddr;

use sessiond_core::password::Password;
use sessiond_core::password_policy::new_password;
use sessiond_core::{AuthMethod, Device, DomainError, Email, SessionId, UserId};
use sessiond_store::{NewUser, StoreError};

use super::grant::SessionRequest;
use super::{Service, ServiceResult, TokenGrant};
use crate::ratelimit::Secret;

/// What a client sends to register.
pub struct Registration {
    pub email: String,
    pub password: String,
    pub name: Option<String>,
    pub device: Device,
}

impl Service {
    /// Creates the user and logs them in.
    pub async fn register(
        &self,
        reg: Registration,
        upgrade: Option<SessionId>,
    ) -> ServiceResult<TokenGrant> {
        let email = Email::parse(&reg.email);
        let password = new_password(reg.password, "password", email.as_ref().ok());
        let (email, password) = collect_errors(email, password)?;
        let password_hash = self.passwords.hash(password).await?;
        let new = NewUser {
            id: UserId::new(),
            email: Some(email),
            name: reg.name,
            password_hash: Some(password_hash),
            email_verified: false,
            created_at: self.now(),
        };
        let mut tx = self.store.begin().await?;
        let user = tx.insert_user(&new).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                DomainError::Conflict("a user with this email already exists".into()).into()
            }
            other => super::ServiceError::from(other),
        })?;
        self.record_user_created(tx.as_mut(), &user, "registration")
            .await?;
        tx.commit().await?;
        tracing::info!(user_id = %user.id, "user registered");
        self.establish(SessionRequest {
            user: Some(user),
            method: AuthMethod::Password,
            device: reg.device,
            data: None,
            upgrade,
        })
        .await
    }

    /// Email and password. Whether the account exists or not, a failure costs one argon2id
    /// verification and answers the same. `client_ip` is who is asking: failures are
    /// limited per account and IP, so a guesser cannot lock the owner out.
    pub async fn login_password(
        &self,
        email: &str,
        password: String,
        device: Device,
        client_ip: Option<IpAddr>,
        upgrade: Option<SessionId>,
    ) -> ServiceResult<TokenGrant> {
        let email = Email::parse(email)?;
        // Applies to unknown addresses alike, so it reveals nothing.
        self.limits
            .check_failures(Secret::Password, email.as_str(), client_ip)
            .await?;
        let credentials = self.store.user_by_email(&email).await?;
        let stored_hash = credentials.as_ref().and_then(|c| c.password_hash.clone());
        let (matches, upgraded_hash) = self
            .passwords
            .verify_and_upgrade(Password::for_login(password), stored_hash)
            .await?;
        let known = credentials.as_ref().map(|c| c.user.id);
        let Some(credentials) = credentials.filter(|_| matches) else {
            let reason = if known.is_some() {
                "wrong_password"
            } else {
                "unknown_email"
            };
            metrics::counter!("sessiond_login_failures_total", "method" => "pwd", "reason" => reason)
                .increment(1);
            self.limits
                .record_failure(Secret::Password, email.as_str(), client_ip)
                .await;
            self.record_failed_login("pwd", reason, known, &device)
                .await;
            return Err(DomainError::InvalidCredentials.into());
        };
        if let Some(hash) = upgraded_hash {
            self.store_upgraded_hash(credentials.user.id, &hash).await;
        }
        if !credentials.user.active {
            self.record_failed_login("pwd", "user_inactive", known, &device)
                .await;
            return Err(DomainError::UserInactive.into());
        }
        if let Err(e) = self.may_log_in_with_password(&credentials.user) {
            self.record_failed_login("pwd", "email_not_verified", known, &device)
                .await;
            return Err(e);
        }
        self.establish(SessionRequest {
            user: Some(credentials.user),
            method: AuthMethod::Password,
            device,
            data: None,
            upgrade,
        })
        .await
    }

    /// A session for a device whose person is not known yet; a later login on it
    /// upgrades it in place.
    pub async fn create_anonymous(&self, device: Device) -> ServiceResult<TokenGrant> {
        self.establish(SessionRequest {
            user: None,
            method: AuthMethod::Anonymous,
            device,
            data: None,
            upgrade: None,
        })
        .await
    }

    /// A session for a user a trusted backend authenticated itself. A user id sessiond has
    /// not seen yet is created (without email or password), so backends can keep their
    /// own user records.
    pub async fn admin_create_session(
        &self,
        user_id: UserId,
        device: Device,
        data: Option<serde_json::Value>,
    ) -> ServiceResult<TokenGrant> {
        let user = match self.store.user_by_id(user_id).await? {
            Some(user) => user,
            None => self.insert_backend_user(user_id).await?,
        };
        if !user.active {
            return Err(DomainError::UserInactive.into());
        }
        self.establish(SessionRequest {
            user: Some(user),
            method: AuthMethod::Admin,
            device,
            data,
            upgrade: None,
        })
        .await
    }

    async fn insert_backend_user(&self, id: UserId) -> ServiceResult<sessiond_core::User> {
        let mut tx = self.store.begin().await?;
        let user = match tx.lock_user(id).await? {
            Some(existing) => existing,
            None => {
                let user = tx
                    .insert_user(&NewUser {
                        id,
                        email: None,
                        name: None,
                        password_hash: None,
                        email_verified: false,
                        created_at: self.now(),
                    })
                    .await?;
                self.record_user_created(tx.as_mut(), &user, "admin_session")
                    .await?;
                user
            }
        };
        tx.commit().await?;
        Ok(user)
    }

    /// The anonymous session named by a bearer token sent along with a login, if the token
    /// is valid. Anything else is ignored: the login then creates a new session.
    pub fn upgrade_candidate(&self, bearer: Option<&str>) -> Option<SessionId> {
        let claims = self.keys.current().verify(bearer?, self.now()).ok()?;
        claims.sub.is_none().then_some(claims.sid)
    }
}

/// Both checks run so the client learns about every bad field at once.
fn collect_errors<A, B>(
    a: Result<A, DomainError>,
    b: Result<B, DomainError>,
) -> Result<(A, B), DomainError> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => {
            let mut errors = Vec::new();
            for e in [a.err(), b.err()].into_iter().flatten() {
                if let DomainError::Validation(fields) = e {
                    errors.extend(fields);
                } else {
                    return Err(e);
                }
            }
            Err(DomainError::Validation(errors))
        }
    }
}
