//! The console session: a signed, expiring token in an HttpOnly, SameSite=Strict cookie.
//!
//! The token is `<id>.<issued>.<seen>.<mac>`: a random id, when it was signed in, when it
//! was last used (both Unix seconds) and an HMAC-SHA256 over the rest with a secret every
//! instance sharing the admin key derives alike ([`Service::console_secret`]), so any
//! instance behind a load balancer accepts it and no storage is written per page. Each
//! page re-signs it with a new `seen` (idle timeout); `issued` bounds it absolutely.
//!
//! Sign-out must end the session, not only drop the cookie: the id goes on a deny list
//! until the token could no longer be accepted anyway, in this process and, with
//! `redis_url`, in Redis, which every instance reads.
//!
//! The CSRF token of a session is an HMAC of its id: it needs no storage either, is
//! checked in constant time, and dies with the session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::HeaderValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::hmac;

use crate::infra::redis::Redis;

/// A console session unused this long has ended.
pub const IDLE_TIMEOUT: chrono::Duration = chrono::Duration::minutes(30);
/// A console session ends this long after sign-in, used or not.
pub const ABSOLUTE_LIFETIME: chrono::Duration = chrono::Duration::hours(8);
/// A token longer than this is not one of ours and is not parsed.
const MAX_TOKEN: usize = 256;

/// The cookie's name and whether it is `Secure` (as the token cookies: see
/// `web.insecure_cookies`).
#[derive(Debug, Clone)]
pub struct CookieSpec {
    pub name: &'static str,
    pub secure: bool,
}

impl CookieSpec {
    pub fn new(secure: bool) -> Self {
        Self {
            // `__Host-`: only a Secure cookie for this very host, with Path=/, so a
            // sibling subdomain cannot plant or shadow it.
            name: if secure {
                "__Host-sessiond_console"
            } else {
                "sessiond_console"
            },
            secure,
        }
    }

    fn line(&self, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly{secure}; SameSite=Strict",
            self.name
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// `Set-Cookie` for a session token, living as long as its idle deadline.
    pub fn set(&self, token: &str) -> HeaderValue {
        self.line(token, IDLE_TIMEOUT.num_seconds())
    }

    /// `Set-Cookie` that clears the cookie.
    pub fn clear(&self) -> HeaderValue {
        self.line("", 0)
    }
}

/// One signed-in console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// 128 random bits, hex.
    pub id: String,
    pub issued: i64,
    pub seen: i64,
}

impl ConsoleSession {
    pub fn start(now: DateTime<Utc>) -> Self {
        Self {
            id: format!("{:032x}", rand::random::<u128>()),
            issued: now.timestamp(),
            seen: now.timestamp(),
        }
    }

    /// When the token stops being accepted even if used: the absolute end.
    pub fn ends_at(&self) -> i64 {
        self.issued + ABSOLUTE_LIFETIME.num_seconds()
    }
}

/// Signs and checks console tokens and CSRF tokens, and remembers sign-outs.
pub struct ConsoleKeys {
    mac: hmac::Key,
    signed_out: Mutex<HashMap<String, i64>>,
    redis: Option<(Arc<Redis>, String)>,
}

impl ConsoleKeys {
    pub fn new(secret: &[u8; 32], redis: Option<(Arc<Redis>, String)>) -> Self {
        Self {
            mac: hmac::Key::new(hmac::HMAC_SHA256, secret),
            signed_out: Mutex::new(HashMap::new()),
            redis,
        }
    }

    fn payload(session: &ConsoleSession) -> String {
        format!("{}.{}.{}", session.id, session.issued, session.seen)
    }

    pub fn encode(&self, session: &ConsoleSession) -> String {
        let payload = Self::payload(session);
        let tag = hmac::sign(&self.mac, payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The session a token names, if its MAC holds and it has not expired (idle or
    /// absolute) at `now`. Sign-outs are checked separately ([`Self::is_signed_out`]).
    pub fn decode(&self, token: &str, now: DateTime<Utc>) -> Option<ConsoleSession> {
        if token.len() > MAX_TOKEN {
            return None;
        }
        let (payload, tag) = token.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // Constant time: ring compares the tags without an early exit.
        hmac::verify(&self.mac, payload.as_bytes(), &tag).ok()?;
        let mut parts = payload.split('.');
        let id = parts.next()?.to_owned();
        let issued: i64 = parts.next()?.parse().ok()?;
        let seen: i64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || id.len() != 32 {
            return None;
        }
        let now = now.timestamp();
        let fresh = now - seen < IDLE_TIMEOUT.num_seconds()
            && now - issued < ABSOLUTE_LIFETIME.num_seconds()
            && issued <= seen;
        fresh.then_some(ConsoleSession { id, issued, seen })
    }

    /// The CSRF token of a session: what its forms carry.
    pub fn csrf_token(&self, session: &ConsoleSession) -> String {
        let tag = hmac::sign(&self.mac, format!("csrf.{}", session.id).as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// Whether `presented` is the session's CSRF token (constant time).
    pub fn csrf_ok(&self, session: &ConsoleSession, presented: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(presented.as_bytes()) else {
            return false;
        };
        hmac::verify(&self.mac, format!("csrf.{}", session.id).as_bytes(), &tag).is_ok()
    }

    fn redis_key(prefix: &str, id: &str) -> String {
        format!("{prefix}console:signed_out:{id}")
    }

    /// Ends a session everywhere: no instance accepts its token again.
    pub async fn sign_out(&self, session: &ConsoleSession, now: DateTime<Utc>) {
        let ends = session.ends_at();
        {
            let mut list = self.signed_out.lock().expect("sign-out lock");
            let now = now.timestamp();
            list.retain(|_, until| *until > now);
            list.insert(session.id.clone(), ends);
        }
        if let Some((redis, prefix)) = &self.redis {
            let ttl_ms = ((ends - now.timestamp()).max(1)) * 1000;
            let key = Self::redis_key(prefix, &session.id);
            let set = redis
                .bounded(async {
                    let mut conn = redis.connection().await?;
                    let () = redis::cmd("SET")
                        .arg(&key)
                        .arg(1)
                        .arg("PX")
                        .arg(ttl_ms)
                        .query_async(&mut conn)
                        .await?;
                    Ok(())
                })
                .await;
            if let Err(e) = set {
                tracing::warn!(error = %e, "console sign-out not shared through Redis; other instances accept the session until it idles out");
            }
        }
    }

    pub async fn is_signed_out(&self, session: &ConsoleSession) -> bool {
        if self
            .signed_out
            .lock()
            .expect("sign-out lock")
            .contains_key(&session.id)
        {
            return true;
        }
        let Some((redis, prefix)) = &self.redis else {
            return false;
        };
        let key = Self::redis_key(prefix, &session.id);
        let found: Result<bool, _> = redis
            .bounded(async {
                let mut conn = redis.connection().await?;
                Ok(redis::cmd("EXISTS")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await?)
            })
            .await;
        // Redis down: only this instance's own sign-outs are known; the session is
        // still bounded by its idle timeout.
        found.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ConsoleKeys {
        ConsoleKeys::new(&[7; 32], None)
    }

    #[test]
    fn tokens_round_trip_and_expire() {
        let keys = keys();
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let session = ConsoleSession::start(t0);
        let token = keys.encode(&session);
        assert_eq!(keys.decode(&token, t0), Some(session.clone()));
        assert_eq!(keys.decode(&token, t0 + IDLE_TIMEOUT), None);
        let mut used = session.clone();
        used.seen = (t0 + ABSOLUTE_LIFETIME).timestamp() - 1;
        let token = keys.encode(&used);
        assert_eq!(keys.decode(&token, t0 + ABSOLUTE_LIFETIME), None);
    }

    #[test]
    fn forged_or_foreign_tokens_are_refused() {
        let keys = keys();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let session = ConsoleSession::start(now);
        let token = keys.encode(&session);
        let other = ConsoleKeys::new(&[8; 32], None);
        assert_eq!(other.decode(&token, now), None);
        let (payload, tag) = token.rsplit_once('.').unwrap();
        let later = payload.replace(&session.seen.to_string(), "1900000000");
        assert_eq!(keys.decode(&format!("{later}.{tag}"), now), None);
        for bad in ["", ".", "a.b.c.d", &"x".repeat(1000)] {
            assert_eq!(keys.decode(bad, now), None, "{bad}");
        }
        let csrf = keys.csrf_token(&session);
        assert!(keys.csrf_ok(&session, &csrf));
        assert!(!other.csrf_ok(&session, &csrf));
        assert!(!keys.csrf_ok(&ConsoleSession::start(now), &csrf));
        assert!(!keys.csrf_ok(&session, ""));
    }

    #[tokio::test]
    async fn a_signed_out_session_stays_out() {
        let keys = keys();
        let now = Utc::now();
        let session = ConsoleSession::start(now);
        assert!(!keys.is_signed_out(&session).await);
        keys.sign_out(&session, now).await;
        assert!(keys.is_signed_out(&session).await);
    }
}
