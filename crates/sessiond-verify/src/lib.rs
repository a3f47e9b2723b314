//! Verify sessiond access tokens in your own backend, at memory speed, and still refuse a
//! revoked session at once.
//!
//! A [`Verifier`] checks the JWT locally (EdDSA pinned to sessiond's JWKS, `typ`
//! `at+jwt`, `iss`, `aud`, `exp` with no leeway) and keeps a deny-set that sessiond's
//! revocation feed (`/v1/revocations/stream`) fills as sessions end. If the feed goes
//! quiet for longer than the staleness bound, every check fails closed with
//! [`VerifyError::FeedStale`] rather than accept a token that may have been revoked — or,
//! with [`Config::introspection_fallback`], asks sessiond about each token until the feed
//! is back.
//!
//! Framework integrations, each behind a feature, answer refusals as sessiond does
//! (`Refused`): `axum` (the `extract::VerifiedToken` extractor) and `tower`
//! (`layer::VerifyLayer`, which puts the [`Claims`] in the request's extensions).
//!
//! ```no_run
//! # async fn run() -> Result<(), sessiond_verify::StartError> {
//! let verifier = sessiond_verify::Verifier::start(sessiond_verify::Config::new(
//!     "http://127.0.0.1:8420",
//!     "the-verifier-key",
//!     "sessiond", // issuer
//!     "sessiond", // audience
//! ))
//! .await?;
//! match verifier.verify("eyJ…").await {
//!     Ok(claims) => println!("session {}", claims.sid),
//!     Err(e) => println!("refused: {}", e.code()),
//! }
//! # Ok(()) }
//! ```

mod denylist;
#[cfg(feature = "axum")]
pub mod extract;
mod feed;
mod introspect;
mod keys;
#[cfg(feature = "tower")]
pub mod layer;
#[cfg(any(feature = "axum", feature = "tower"))]
mod refusal;
#[cfg(test)]
mod tests;

#[cfg(any(feature = "axum", feature = "tower"))]
pub use refusal::Refused;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::denylist::DenyList;
use crate::keys::Keys;

/// Where sessiond is and what the tokens must say.
#[derive(Debug, Clone)]
pub struct Config {
    /// `http://host:port` of sessiond (any instance).
    pub base_url: String,
    /// A verifier key (`verifier_api_keys`) or the admin key.
    pub api_key: String,
    pub issuer: String,
    pub audience: String,
    /// Longest the feed may be silent (no fact, no heartbeat) before checks fail closed.
    /// sessiond sends a heartbeat every 5 s.
    pub staleness_bound: Duration,
    /// Least time between two JWKS fetches caused by unknown `kid`s.
    pub jwks_cooldown: Duration,
    /// While the feed is stale, ask sessiond (`POST /v1/introspect` with `api_key`) about
    /// each token instead of refusing it at once: the check then costs a round trip, but
    /// users keep working through a feed outage that is not an outage of sessiond. When
    /// sessiond cannot answer either, the check still fails closed with `FeedStale`.
    /// Off by default.
    pub introspection_fallback: bool,
    /// How long one fallback introspection may take before the check fails closed.
    pub introspection_timeout: Duration,
}

impl Config {
    pub fn new(base_url: &str, api_key: &str, issuer: &str, audience: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            staleness_bound: Duration::from_secs(15),
            jwks_cooldown: Duration::from_secs(10),
            introspection_fallback: false,
            introspection_timeout: Duration::from_secs(2),
        }
    }
}

/// The claims of a token that passed.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// The user; absent for anonymous sessions.
    pub sub: Option<String>,
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default)]
    pub amr: Vec<String>,
    pub jti: Option<String>,
}

/// Why a token was refused, with the same codes sessiond answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is invalid")]
    TokenInvalid,
    #[error("the token expired at {expired_at}")]
    TokenExpired { expired_at: DateTime<Utc> },
    #[error("the session was revoked ({reason})")]
    SessionRevoked { reason: String },
    /// The revocation feed has been silent past the staleness bound: nothing can be
    /// known to be unrevoked.
    #[error("the revocation feed is stale")]
    FeedStale,
}

impl VerifyError {
    /// sessiond's code for the refusal (`FeedStale` has its own).
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::TokenInvalid => "TOKEN_INVALID",
            VerifyError::TokenExpired { .. } => "TOKEN_EXPIRED",
            VerifyError::SessionRevoked { .. } => "SESSION_REVOKED",
            VerifyError::FeedStale => "REVOCATION_FEED_STALE",
        }
    }

    /// The HTTP status sessiond would answer.
    pub fn status(&self) -> u16 {
        match self {
            VerifyError::FeedStale => 503,
            _ => 401,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("sessiond could not be reached: {0}")]
    Unreachable(String),
    #[error("sessiond refused the request ({status}): {body}")]
    Refused { status: u16, body: String },
}

/// GETs `url` (with `api_key` as the bearer, when given) and reads the JSON answer.
async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: String,
    api_key: Option<&str>,
) -> Result<T, StartError> {
    let mut request = http.get(url).timeout(Duration::from_secs(30));
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .map_err(|e| StartError::Unreachable(e.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        let body = response.text().await.unwrap_or_default();
        return Err(StartError::Refused { status, body });
    }
    response
        .json()
        .await
        .map_err(|e| StartError::Unreachable(e.to_string()))
}

struct Shared {
    config: Config,
    http: reqwest::Client,
    keys: Keys,
    denied: DenyList,
    /// When the feed last proved this verifier up to date.
    heard: Mutex<Instant>,
}

/// A token verifier; cheap to clone, one per process is enough.
#[derive(Clone)]
pub struct Verifier {
    shared: Arc<Shared>,
    follower: Arc<tokio::task::JoinHandle<()>>,
}

impl Verifier {
    /// Fetches the JWKS and a snapshot of live revocations, then follows the feed in a
    /// background task for as long as any clone of the verifier lives.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| StartError::Unreachable(e.to_string()))?;
        let keys = Keys::fetch(&http, &config).await?;
        let shared = Arc::new(Shared {
            keys,
            denied: DenyList::default(),
            heard: Mutex::new(Instant::now()),
            http,
            config,
        });
        let cursor = feed::snapshot(&shared).await?;
        let follower = tokio::spawn(feed::follow(Arc::downgrade(&shared), cursor));
        Ok(Self {
            shared,
            follower: Arc::new(follower),
        })
    }

    /// Checks a token: signature, claims, then the deny-set.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let shared = &self.shared;
        let claims = match shared.keys.verify(token, &shared.config) {
            Err(keys::Unverified::UnknownKid) => {
                shared
                    .keys
                    .refresh_on_unknown_kid(&shared.http, &shared.config)
                    .await;
                shared
                    .keys
                    .verify(token, &shared.config)
                    .map_err(|_| VerifyError::TokenInvalid)?
            }
            Err(keys::Unverified::Invalid) => return Err(VerifyError::TokenInvalid),
            Ok(claims) => claims,
        };
        let now = Utc::now();
        if claims.exp <= now.timestamp() {
            return Err(VerifyError::TokenExpired {
                expired_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or(now),
            });
        }
        if shared.heard.lock().expect("heard lock").elapsed() > shared.config.staleness_bound {
            if shared.config.introspection_fallback {
                return introspect::ask(shared, token, claims).await;
            }
            return Err(VerifyError::FeedStale);
        }
        if let Some(reason) = shared.denied.refusal(&claims, now) {
            return Err(VerifyError::SessionRevoked { reason });
        }
        Ok(claims)
    }

    /// How many revocations the verifier holds (sessions, users).
    pub fn denied_count(&self) -> (usize, usize) {
        self.shared.denied.len()
    }
}

#[cfg(test)]
impl Verifier {
    /// A verifier that never talked to sessiond, for unit tests: `keys` as its JWKS, an
    /// empty deny-set, the feed last heard `silent_for` ago, nothing followed.
    pub(crate) fn offline(
        config: Config,
        keys: Vec<(String, jsonwebtoken::DecodingKey)>,
        silent_for: Duration,
    ) -> Self {
        let shared = Arc::new(Shared {
            keys: Keys::with(keys),
            denied: DenyList::default(),
            heard: Mutex::new(Instant::now() - silent_for),
            http: reqwest::Client::new(),
            config,
        });
        Self {
            shared,
            follower: Arc::new(tokio::spawn(async {})),
        }
    }

    pub(crate) fn deny_session(&self, sid: &str, reason: &str) {
        let until = Utc::now() + chrono::Duration::hours(1);
        self.shared
            .denied
            .deny_session(sid.into(), reason.into(), until);
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        if Arc::strong_count(&self.follower) == 1 {
            self.follower.abort();
        }
    }
}
