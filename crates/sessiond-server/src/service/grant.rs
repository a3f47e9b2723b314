//! Creating sessions and minting the tokens that go with them.

use chrono::{DateTime, Utc};
use sessiond_core::jwt::AccessClaims;
use sessiond_core::{
    AuthMethod, Device, DomainError, OnLimit, RefreshToken, RefreshTokenId, RevokeReason, Session,
    SessionId, User, UserId,
};
use sessiond_store::{NewRefreshToken, NewSession, Tx};

use serde_json::json;
use sessiond_core::EventType;

use super::events::device_json;
use super::{Service, ServiceResult, SessionInfo};

/// Everything a token response carries.
pub struct TokenGrant {
    pub access_token: String,
    pub access_expires_in: i64,
    pub refresh_token: RefreshToken,
    pub refresh_expires_in: i64,
    pub session: SessionInfo,
    pub user: Option<User>,
}

/// Who a new session is for.
pub(super) struct SessionRequest {
    pub user: Option<User>,
    pub method: AuthMethod,
    pub device: Device,
    pub data: Option<serde_json::Value>,
    /// An anonymous session presented with the login, to upgrade in place.
    pub upgrade: Option<SessionId>,
}

impl Service {
    /// Creates (or upgrades) a session and its first refresh token in one transaction,
    /// enforcing the per-user session limit inside it.
    pub(super) async fn establish(&self, req: SessionRequest) -> ServiceResult<TokenGrant> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let user_id = req.user.as_ref().map(|u| u.id);
        if let Some(uid) = user_id {
            tx.lock_user(uid).await?;
        }

        let upgradable = match req.upgrade {
            Some(sid) => self.upgradable(tx.as_mut(), sid, now).await?,
            None => None,
        };
        // Sessions whose state changes here, to announce once committed.
        let mut changed = match user_id {
            Some(uid) => {
                self.enforce_limit(tx.as_mut(), uid, upgradable.as_ref().map(|s| s.id), now)
                    .await?
            }
            None => Vec::new(),
        };
        if let Some(session) = &upgradable {
            changed.push(session.id);
        }

        let upgraded = upgradable.is_some();
        let session = match upgradable {
            Some(mut session) => {
                let uid = user_id.expect("only logins upgrade sessions");
                tx.bind_session(session.id, uid, &req.method, now).await?;
                // Tokens from before the login must not outlive it.
                tx.delete_refresh_tokens(session.id).await?;
                session.user_id = Some(uid);
                session.auth_method = req.method;
                session.last_active_at = session.last_active_at.max(now);
                session
            }
            None => {
                let new = NewSession {
                    id: SessionId::new(),
                    user_id,
                    auth_method: req.method,
                    created_at: now,
                    expires_at: self.policy.session_expiry(now),
                    device: req.device,
                    data: req.data,
                };
                tx.insert_session(&new).await?;
                Session {
                    id: new.id,
                    user_id: new.user_id,
                    auth_method: new.auth_method,
                    created_at: now,
                    last_active_at: now,
                    expires_at: new.expires_at,
                    revoked_at: None,
                    revoked_reason: None,
                    device: new.device,
                }
            }
        };

        let refresh = RefreshToken::generate();
        let refresh_expires_at = self.policy.refresh_token_expiry(now, session.expires_at);
        tx.insert_refresh_token(&NewRefreshToken {
            id: RefreshTokenId::new(),
            session_id: session.id,
            hash: refresh.hash(),
            created_at: now,
            expires_at: refresh_expires_at,
        })
        .await?;
        let created = json!({
            "method": session.auth_method.to_string(),
            "device": device_json(&session.device),
            "upgraded_from_anonymous": upgraded,
        });
        self.record_one(
            tx.as_mut(),
            EventType::SessionCreated,
            session.user_id,
            Some(session.id),
            created,
        )
        .await?;
        tx.commit().await?;
        self.ended(&changed).await;

        metrics::counter!("sessiond_sessions_created_total", "method" => metric_method(&session.auth_method))
            .increment(1);
        tracing::info!(session_id = %session.id, user_id = session.user_id.map(tracing::field::display), method = %session.auth_method, "session established");
        Ok(self.grant(session, req.user, refresh, refresh_expires_at, now))
    }

    /// The anonymous session a login may upgrade: live and still anonymous.
    async fn upgradable(
        &self,
        tx: &mut dyn Tx,
        sid: SessionId,
        now: DateTime<Utc>,
    ) -> ServiceResult<Option<Session>> {
        let Some((session, _)) = tx.lock_session(sid).await? else {
            return Ok(None);
        };
        let live = self
            .policy
            .check(&session, now, self.last_active(&session))
            .is_ok();
        Ok((live && session.is_anonymous()).then_some(session))
    }

    /// Makes room for one more session of `user`, or refuses, per the configured policy.
    /// Returns the sessions it evicted (to announce after commit).
    async fn enforce_limit(
        &self,
        tx: &mut dyn Tx,
        user: UserId,
        joining: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> ServiceResult<Vec<SessionId>> {
        let Some(limit) = self.policy.session_limit() else {
            return Ok(Vec::new());
        };
        let mut live = tx
            .live_sessions_for_user(user, self.live_window(now))
            .await?;
        live.retain(|s| Some(s.id) != joining);
        let max = limit.max as usize;
        if live.len() < max {
            return Ok(Vec::new());
        }
        match limit.on_limit {
            OnLimit::Reject => {
                let sessions = live
                    .into_iter()
                    .rev()
                    .map(|s| self.info(s, None).session.summary())
                    .collect();
                Err(DomainError::SessionLimitExceeded { sessions }.into())
            }
            OnLimit::EvictOldest => {
                let excess = live.len() + 1 - max;
                let victims: Vec<SessionId> = live.iter().take(excess).map(|s| s.id).collect();
                let reason = RevokeReason::EvictedByLimit;
                let evicted = tx.revoke_sessions(&victims, reason, now).await?;
                self.record_ended(tx, &evicted, Some(user), None, reason, now)
                    .await?;
                tracing::info!(user_id = %user, evicted = evicted.len(), "session limit reached: evicted the oldest sessions");
                Ok(evicted)
            }
        }
    }

    /// Mints an access token for the session and packs the grant.
    pub(super) fn grant(
        &self,
        session: Session,
        user: Option<User>,
        refresh: RefreshToken,
        refresh_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> TokenGrant {
        let (access_token, access_expires_in) = self.mint_access(&session, now);
        TokenGrant {
            access_token,
            access_expires_in,
            refresh_token: refresh,
            refresh_expires_in: (refresh_expires_at - now).num_seconds().max(0),
            session: self.info(session.clone(), Some(session.id)),
            user,
        }
    }

    fn mint_access(&self, session: &Session, now: DateTime<Utc>) -> (String, i64) {
        let iat = now.timestamp();
        // Never valid past the session's absolute end.
        let exp = (now + self.policy.access_token_ttl)
            .min(session.expires_at)
            .timestamp();
        let claims = AccessClaims {
            iss: self.audience.issuer.clone(),
            sub: session.user_id.map(|u| u.to_string()),
            aud: self.audience.audience.clone(),
            sid: session.id,
            jti: uuid::Uuid::now_v7().to_string(),
            iat,
            exp,
            amr: vec![session.auth_method.as_string()],
        };
        (self.keys.current().sign(&claims), (exp - iat).max(0))
    }
}

fn metric_method(method: &AuthMethod) -> &'static str {
    match method {
        AuthMethod::Password => "pwd",
        AuthMethod::Otp => "otp",
        AuthMethod::Exchange(_) => "exchange",
        AuthMethod::Anonymous => "anon",
        AuthMethod::Admin => "admin",
    }
}
