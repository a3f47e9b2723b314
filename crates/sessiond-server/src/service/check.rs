//! Token checks: the authenticated-request path, `/v1/token/validate` and introspection.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use sessiond_core::jwt::{AccessClaims, claimed_kid};
use sessiond_core::refresh::{RefreshDecision, StoredRefreshToken, decide};
use sessiond_core::{DomainError, RefreshToken, RevokeReason, Session, SessionId, User, UserId};

use super::{Service, ServiceError, ServiceResult};
use crate::state::cache::Invalidation;

/// A request's verified access token with the live session and user behind it.
/// Shared with the caches, so a cache hit copies no strings.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub claims: Arc<AccessClaims>,
    pub session: Arc<Session>,
    pub user: Option<Arc<User>>,
}

/// The answer of `/v1/token/validate`.
#[derive(Debug, Clone)]
pub enum Validation {
    Valid {
        token_type: &'static str,
        session_id: SessionId,
        user_id: Option<UserId>,
        expires_at: DateTime<Utc>,
    },
    Invalid {
        reason: DomainError,
    },
}

/// The facts of an active token, for RFC 7662 introspection.
#[derive(Debug, Clone)]
pub struct Introspection {
    pub token_type: &'static str,
    pub session: Arc<Session>,
    pub user: Option<Arc<User>>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub jti: Option<String>,
}

type Checked<T> = Result<T, DomainError>;

impl Service {
    /// Verifies an access token and the state of its session and user. With `activity`,
    /// the request counts as activity on the session.
    pub async fn authenticate(&self, token: &str, activity: bool) -> ServiceResult<Authenticated> {
        let checked = self.check_access(token, activity).await;
        count_token_check(&checked);
        checked
    }

    async fn check_access(&self, token: &str, activity: bool) -> ServiceResult<Authenticated> {
        let now = self.now();
        let claims = self.verify_access(token, now).await?;
        let (mut session, mut user, cached) = self.session_state(claims.sid).await?;
        if claims.sub.is_some() && claims.user_id() != session.user_id {
            return Err(DomainError::TokenInvalid.into());
        }
        let mut verdict = self.policy.check(&session, now, self.last_active(&session));
        if cached && verdict == Err(DomainError::SessionInactive) {
            // Another instance may have seen activity this one has not: ask storage.
            self.fanout
                .cache()
                .invalidate(Invalidation::Session(session.id));
            (session, user, _) = self.session_state(claims.sid).await?;
            verdict = self.policy.check(&session, now, self.last_active(&session));
        }
        verdict?;
        Self::check_user(user.as_deref())?;
        if activity
            && self
                .activity
                .record(session.id, now, session.last_active_at)
        {
            let store = self.store.clone();
            let sid = session.id;
            // Off the request path: a lost write only makes the stored value staler, and
            // the remembered value still governs idle decisions here.
            tokio::spawn(async move {
                if let Err(e) = store.touch_session(sid, now).await {
                    tracing::warn!(session_id = %sid, error = %e, "could not record session activity");
                }
            });
        }
        Ok(Authenticated {
            claims,
            session,
            user,
        })
    }

    /// The session and its user, from the cache when it may be trusted, else from storage
    /// (then cached). The flag says whether it came from the cache.
    async fn session_state(
        &self,
        id: SessionId,
    ) -> ServiceResult<(Arc<Session>, Option<Arc<User>>, bool)> {
        let cache = self.fanout.cache();
        if let Some((session, user)) = cache.get(id) {
            return Ok((session, user, true));
        }
        let ticket = cache.ticket();
        let (session, user) = self
            .store
            .session_with_user(id)
            .await?
            .ok_or(DomainError::TokenInvalid)?;
        let (session, user) = (Arc::new(session), user.map(Arc::new));
        cache.put(ticket, &session, user.as_ref());
        Ok((session, user, false))
    }

    /// Signature and claims, reloading the key set once when the token names a key this
    /// instance has not seen (it may have been rotated elsewhere).
    async fn verify_access(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> ServiceResult<Arc<AccessClaims>> {
        if let Some(claims) = self.verified.get(token) {
            claims.check_expiry(now)?;
            return Ok(claims);
        }
        let claims = Arc::new(self.verify_signature(token, now).await?);
        self.verified.insert(token, claims.clone());
        Ok(claims)
    }

    async fn verify_signature(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> ServiceResult<AccessClaims> {
        match self.keys.current().verify(token, now) {
            Err(DomainError::TokenInvalid)
                if claimed_kid(token).is_some_and(|kid| self.keys.should_reload_for(&kid)) =>
            {
                if let Err(e) = self.keys.reload(self.store.as_ref(), now).await {
                    tracing::warn!(error = %e, "could not reload signing keys");
                }
                Ok(self.keys.current().verify(token, now)?)
            }
            other => Ok(other?),
        }
    }

    /// Says whether a token (access or refresh) is usable now, changing nothing.
    pub async fn validate(&self, token: &str) -> ServiceResult<Validation> {
        if looks_like_jwt(token) {
            return match self.authenticate(token, false).await {
                Ok(auth) => Ok(Validation::Valid {
                    token_type: "access",
                    session_id: auth.session.id,
                    user_id: auth.session.user_id,
                    expires_at: auth.claims.expires_at(),
                }),
                Err(ServiceError::Domain(reason)) => Ok(Validation::Invalid { reason }),
                Err(other) => Err(other),
            };
        }
        Ok(match self.check_refresh(token).await? {
            Ok((stored, session, _)) => Validation::Valid {
                token_type: "refresh",
                session_id: session.id,
                user_id: session.user_id,
                expires_at: stored.expires_at,
            },
            Err(reason) => Validation::Invalid { reason },
        })
    }

    /// RFC 7662: `None` for anything not active.
    pub async fn introspect(&self, token: &str) -> ServiceResult<Option<Introspection>> {
        if looks_like_jwt(token) {
            return match self.authenticate(token, false).await {
                Ok(auth) => Ok(Some(Introspection {
                    token_type: "access_token",
                    issued_at: auth.claims.issued_at(),
                    expires_at: auth.claims.expires_at(),
                    jti: Some(auth.claims.jti.clone()),
                    session: auth.session,
                    user: auth.user,
                })),
                Err(ServiceError::Domain(_)) => Ok(None),
                Err(other) => Err(other),
            };
        }
        Ok(self
            .check_refresh(token)
            .await?
            .ok()
            .map(|(stored, session, user)| Introspection {
                token_type: "refresh_token",
                issued_at: stored.created_at,
                expires_at: stored.expires_at,
                jti: None,
                session: Arc::new(session),
                user: user.map(Arc::new),
            }))
    }

    /// Whether presenting this refresh token now would succeed, without presenting it.
    async fn check_refresh(
        &self,
        token: &str,
    ) -> ServiceResult<Checked<(StoredRefreshToken, Session, Option<User>)>> {
        let Some(presented) = RefreshToken::parse(token) else {
            return Ok(Err(DomainError::RefreshTokenInvalid));
        };
        let now = self.now();
        let Some(stored) = self.store.refresh_token_by_hash(&presented.hash()).await? else {
            return Ok(Err(DomainError::RefreshTokenInvalid));
        };
        let Some((session, user)) = self.store.session_with_user(stored.session_id).await? else {
            return Ok(Err(DomainError::RefreshTokenInvalid));
        };
        if let Err(e) = self.policy.check(&session, now, self.last_active(&session)) {
            return Ok(Err(e));
        }
        if let Err(e) = Self::check_user(user.as_ref()) {
            return Ok(Err(e));
        }
        let successor_used = match (stored.rotated_at, stored.successor_id) {
            (Some(_), Some(id)) => self.successor_used(id).await?,
            _ => false,
        };
        Ok(
            match decide(&stored, successor_used, now, self.policy.refresh_grace) {
                RefreshDecision::Rotate | RefreshDecision::ReplaySuccessor => {
                    Ok((stored, session, user))
                }
                RefreshDecision::Reuse => Err(DomainError::RefreshTokenReused),
                RefreshDecision::Expired => Err(DomainError::RefreshTokenExpired),
            },
        )
    }

    async fn successor_used(&self, id: sessiond_core::RefreshTokenId) -> ServiceResult<bool> {
        Ok(self.store.refresh_token_is_rotated(id).await?)
    }

    /// The reason to report alongside a failed check, where a session ended.
    pub fn revoked_reason(error: &DomainError) -> Option<RevokeReason> {
        match error {
            DomainError::SessionRevoked { reason } => Some(*reason),
            DomainError::SessionExpired => Some(RevokeReason::AbsoluteLifetime),
            DomainError::SessionInactive => Some(RevokeReason::IdleTimeout),
            _ => None,
        }
    }
}

fn looks_like_jwt(token: &str) -> bool {
    token.contains('.')
}

/// `sessiond_token_checks_total` by outcome: `valid`, the refusal's code, or the storage
/// failure's. The valid case keeps its counter handle, sparing the hot path a registry
/// lookup.
fn count_token_check(checked: &ServiceResult<Authenticated>) {
    static VALID: OnceLock<metrics::Counter> = OnceLock::new();
    let outcome = match checked {
        Ok(_) => {
            VALID
                .get_or_init(
                    || metrics::counter!("sessiond_token_checks_total", "outcome" => "valid"),
                )
                .increment(1);
            return;
        }
        Err(ServiceError::Domain(refusal)) => refusal.code().as_str(),
        Err(ServiceError::Store(_)) => sessiond_core::Code::StorageUnavailable.as_str(),
    };
    metrics::counter!("sessiond_token_checks_total", "outcome" => outcome).increment(1);
}
