//! ID-token logins (Sign in with Apple, Google, any OpenID Connect issuer): the app signs
//! the person in natively and sends the issuer's ID token; it is checked here, against
//! the issuer's published keys (JWKS), without a call to the issuer per login.
//!
//! The keys are fetched on first use (through discovery when no `jwks_url` is given),
//! again when they are older than `jwks_max_age`, and when a token names a `kid` they do
//! not hold (a rotation) — but not more often than `jwks_cooldown`, so a flood of tokens
//! with made-up `kid`s cannot make sessiond hammer the issuer. When the issuer is
//! unreachable, the keys already held keep working.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sessiond_core::DomainError;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};

/// Most of a discovery document or key set we are willing to read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Between two fetches while no key at all is held: logins wait on the issuer anyway.
const EMPTY_COOLDOWN: Duration = Duration::from_secs(1);
/// Longest `sub` kept as the identity's external id.
const MAX_SUBJECT_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderConfig {
    /// The `iss` the tokens carry; discovery is at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Further `iss` values accepted (Google's older tokens say `accounts.google.com`).
    #[serde(default)]
    pub also_issuers: Vec<String>,
    /// The issuer's JWKS; found by discovery when absent.
    pub jwks_url: Option<String>,
    /// The accepted `aud` values: the app's client ids (Apple: the bundle or services id).
    pub audiences: Vec<String>,
    #[serde(default)]
    pub nonce: NoncePolicy,
    #[serde(default)]
    pub nonce_hash: NonceHash,
    /// Tolerated clock difference for `exp`, `iat` and `nbf`.
    #[serde(with = "humantime_serde", default = "default_skew")]
    pub clock_skew: Duration,
    /// For each discovery or JWKS request.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// Least time between two key fetches.
    #[serde(with = "humantime_serde", default = "default_cooldown")]
    pub jwks_cooldown: Duration,
    /// Keys older than this are fetched again at the next login (and kept if that fails).
    #[serde(with = "humantime_serde", default = "default_max_age")]
    pub jwks_max_age: Duration,
}

/// Whether the login request must carry the nonce the app gave the issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoncePolicy {
    /// Without `nonce`, the login is refused; with it, the token's must match.
    #[default]
    Required,
    /// When the request has a `nonce`, the token's must match. For SDKs that make their
    /// own nonce and never show it to the app (Google's iOS SDK).
    Optional,
    /// Never compared.
    Ignored,
}

/// How the token's `nonce` claim relates to the nonce the request sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonceHash {
    /// The claim is the nonce itself (Google).
    #[default]
    Raw,
    /// The claim is the lower-case hex SHA-256 of the nonce (Apple: the app hands the
    /// hash to Apple and the raw nonce to its backend).
    Sha256,
}

fn default_skew() -> Duration {
    Duration::from_secs(60)
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_cooldown() -> Duration {
    Duration::from_secs(30)
}

fn default_max_age() -> Duration {
    Duration::from_secs(3600)
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedIdToken {
    pub subject: String,
    /// Only an address the issuer says is verified.
    pub verified_email: Option<String>,
    pub name: Option<String>,
    /// What the token is remembered by once used, and until when it could be replayed.
    pub fingerprint: String,
    pub replayable_until: DateTime<Utc>,
}

/// One configured issuer, with its cached keys.
pub struct OidcProvider {
    name: String,
    issuers: Vec<String>,
    audiences: Vec<String>,
    nonce: NoncePolicy,
    nonce_hash: NonceHash,
    skew: chrono::Duration,
    timeout: Duration,
    cooldown: Duration,
    max_age: Duration,
    discovery_url: reqwest::Url,
    /// Given in configuration, or learnt from discovery.
    jwks_url: RwLock<Option<reqwest::Url>>,
    keys: RwLock<Option<Arc<KeySet>>>,
    /// When keys were last asked for; held while asking, so one login fetches at a time.
    last_fetch: Mutex<Option<Instant>>,
}

struct KeySet {
    keys: Vec<PublishedKey>,
    fetched_at: Instant,
}

#[derive(Clone)]
struct PublishedKey {
    kid: Option<String>,
    /// When the JWK names one, the only algorithm it may verify.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

/// The claims looked at; the others are ignored.
#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<f64>,
    iat: Option<f64>,
    nbf: Option<f64>,
    nonce: Option<String>,
    email: Option<String>,
    /// A boolean, or the string `"true"` (Apple).
    email_verified: Option<serde_json::Value>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains_any(&self, accepted: &[String]) -> bool {
        match self {
            Audience::One(a) => accepted.contains(a),
            Audience::Many(all) => all.iter().any(|a| accepted.contains(a)),
        }
    }
}

fn rejected(reason: &'static str) -> DomainError {
    DomainError::IdTokenRejected(reason)
}

impl OidcProvider {
    pub fn new(name: &str, config: &OidcProviderConfig) -> Result<Self, String> {
        let issuer = reqwest::Url::parse(&config.issuer).map_err(|e| format!("issuer: {e}"))?;
        if !matches!(issuer.scheme(), "http" | "https") {
            return Err("issuer must be an http or https URL".into());
        }
        let discovery_url = reqwest::Url::parse(&format!(
            "{}/.well-known/openid-configuration",
            config.issuer.trim_end_matches('/')
        ))
        .map_err(|e| format!("issuer: {e}"))?;
        let jwks_url = config
            .jwks_url
            .as_deref()
            .map(reqwest::Url::parse)
            .transpose()
            .map_err(|e| format!("jwks_url: {e}"))?;
        if config.audiences.is_empty() || config.audiences.iter().any(String::is_empty) {
            return Err("audiences must name at least one client id, none empty".into());
        }
        let mut issuers = vec![config.issuer.clone()];
        issuers.extend(config.also_issuers.iter().cloned());
        Ok(Self {
            name: name.to_owned(),
            issuers,
            audiences: config.audiences.clone(),
            nonce: config.nonce,
            nonce_hash: config.nonce_hash,
            skew: chrono::Duration::from_std(config.clock_skew)
                .map_err(|_| "clock_skew is too large".to_owned())?,
            timeout: config.timeout,
            cooldown: config.jwks_cooldown,
            max_age: config.jwks_max_age,
            discovery_url,
            jwks_url: RwLock::new(jwks_url),
            keys: RwLock::new(None),
            last_fetch: Mutex::new(None),
        })
    }

    /// Checks `token` as of `now`: signature, `iss`, `aud`, `exp`, `iat`, `nbf`, and the
    /// nonce as configured. Refusals are `IdTokenRejected` naming the check that failed;
    /// an issuer whose keys cannot be had is `UpstreamUnavailable`.
    pub async fn verify(
        &self,
        client: &reqwest::Client,
        token: &str,
        nonce: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedIdToken, DomainError> {
        if self.nonce == NoncePolicy::Required && nonce.is_none() {
            return Err(DomainError::invalid_field(
                "nonce",
                "this provider needs the nonce the app passed to the sign-in",
            ));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| rejected("it is not a JWT"))?;
        if !is_asymmetric(header.alg) {
            return Err(rejected("its algorithm is not a public-key one"));
        }
        let key = self
            .key_for(client, header.kid.as_deref(), header.alg)
            .await?;
        let mut validation = Validation::new(header.alg);
        // The claims are checked below, against the injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    rejected("its signature does not verify")
                }
                _ => rejected("it is malformed"),
            })?
            .claims;
        self.check_claims(&claims, nonce, now)?;
        let subject = claims
            .sub
            .filter(|s| !s.is_empty() && s.chars().count() <= MAX_SUBJECT_CHARS)
            .ok_or(rejected("it has no usable `sub`"))?;
        let verified = match &claims.email_verified {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s == "true",
            _ => false,
        };
        let exp = claims.exp.unwrap_or_default();
        Ok(VerifiedIdToken {
            subject,
            verified_email: claims.email.filter(|_| verified),
            name: claims
                .name
                .filter(|n| !n.trim().is_empty())
                .map(|n| n.chars().take(256).collect()),
            fingerprint: fingerprint(token),
            replayable_until: instant(exp) + self.skew,
        })
    }

    fn check_claims(
        &self,
        claims: &Claims,
        nonce: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        if !claims
            .iss
            .as_ref()
            .is_some_and(|iss| self.issuers.contains(iss))
        {
            return Err(rejected("its issuer is not the provider's"));
        }
        if !claims
            .aud
            .as_ref()
            .is_some_and(|aud| aud.contains_any(&self.audiences))
        {
            return Err(rejected(
                "its audience is not one of the provider's client ids",
            ));
        }
        let exp = claims.exp.ok_or(rejected("it has no `exp`"))?;
        if instant(exp) + self.skew <= now {
            return Err(rejected("it has expired"));
        }
        let iat = claims.iat.ok_or(rejected("it has no `iat`"))?;
        if instant(iat) - self.skew > now {
            return Err(rejected("it was issued in the future"));
        }
        if claims.nbf.is_some_and(|nbf| instant(nbf) - self.skew > now) {
            return Err(rejected("it is not valid yet"));
        }
        let Some(sent) = nonce.filter(|_| self.nonce != NoncePolicy::Ignored) else {
            return Ok(());
        };
        let expected = match self.nonce_hash {
            NonceHash::Raw => sent.to_owned(),
            NonceHash::Sha256 => hex(&Sha256::digest(sent.as_bytes())),
        };
        if claims.nonce.as_deref() != Some(expected.as_str()) {
            return Err(rejected("its nonce is not the one sent"));
        }
        Ok(())
    }

    /// The key that verifies a token with this `kid` and algorithm, fetching the key
    /// set when it is missing, old, or lacks the `kid`.
    async fn key_for(
        &self,
        client: &reqwest::Client,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, DomainError> {
        let held = self.keys.read().await.clone();
        if let Some(set) = &held
            && set.fetched_at.elapsed() < self.max_age
            && let Some(key) = set.find(kid, alg)
        {
            return Ok(key);
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Another login may have fetched while this one waited.
        let held = self.keys.read().await.clone();
        let found = held.as_ref().and_then(|set| set.find(kid, alg));
        if let (Some(set), Some(key)) = (&held, &found)
            && set.fetched_at.elapsed() < self.max_age
        {
            return Ok(key.clone());
        }
        let cooldown = if held.is_some() {
            self.cooldown
        } else {
            self.cooldown.min(EMPTY_COOLDOWN)
        };
        if last_fetch.is_some_and(|at| at.elapsed() < cooldown) {
            return match (found, held) {
                (Some(key), _) => Ok(key),
                (None, Some(_)) => Err(rejected("its key is not among the issuer's keys")),
                (None, None) => Err(DomainError::UpstreamUnavailable),
            };
        }
        *last_fetch = Some(Instant::now());
        match self.fetch(client).await {
            Ok(set) => {
                let set = Arc::new(set);
                *self.keys.write().await = Some(Arc::clone(&set));
                tracing::info!(provider = %self.name, keys = set.keys.len(), "OIDC keys fetched");
                set.find(kid, alg)
                    .ok_or(rejected("its key is not among the issuer's keys"))
            }
            Err(reason) => {
                tracing::warn!(provider = %self.name, reason, held = held.is_some(), "OIDC keys unreachable");
                metrics::counter!("sessiond_oidc_key_fetch_failures_total", "provider" => self.name.clone()).increment(1);
                found.ok_or(DomainError::UpstreamUnavailable)
            }
        }
    }

    async fn fetch(&self, client: &reqwest::Client) -> Result<KeySet, String> {
        let url = self.jwks_url(client).await?;
        let document = get_json(client, url, self.timeout).await?;
        let keys = document
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or("the key set has no `keys`")?;
        let keys: Vec<PublishedKey> = keys.iter().filter_map(published_key).collect();
        if keys.is_empty() {
            return Err("the key set holds no signing key sessiond can use".into());
        }
        Ok(KeySet {
            keys,
            fetched_at: Instant::now(),
        })
    }

    async fn jwks_url(&self, client: &reqwest::Client) -> Result<reqwest::Url, String> {
        if let Some(url) = self.jwks_url.read().await.clone() {
            return Ok(url);
        }
        let document = get_json(client, self.discovery_url.clone(), self.timeout).await?;
        if document.get("issuer").and_then(serde_json::Value::as_str)
            != Some(self.issuers[0].as_str())
        {
            return Err("the discovery document names another issuer".into());
        }
        let url = document
            .get("jwks_uri")
            .and_then(serde_json::Value::as_str)
            .and_then(|u| reqwest::Url::parse(u).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or("the discovery document has no usable `jwks_uri`")?;
        *self.jwks_url.write().await = Some(url.clone());
        Ok(url)
    }
}

impl KeySet {
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let fits = |k: &&PublishedKey| k.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(fits)
                .find(|k| k.kid.as_deref() == Some(kid)),
            // Without a `kid`, only an unambiguous key will do.
            None => {
                let mut candidates = self.keys.iter().filter(fits);
                candidates.next().filter(|_| candidates.next().is_none())
            }
        }
        .map(|k| k.key.clone())
    }
}

/// A signing key of the set, or `None` for keys of other uses, algorithms or types.
fn published_key(value: &serde_json::Value) -> Option<PublishedKey> {
    if value.get("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let alg = match value.get("alg").and_then(serde_json::Value::as_str) {
        Some(name) => Some(
            Algorithm::from_str(name)
                .ok()
                .filter(|a| is_asymmetric(*a))?,
        ),
        None => None,
    };
    let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(PublishedKey {
        kid: jwk.common.key_id,
        alg,
        key,
    })
}

fn is_asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

async fn get_json(
    client: &reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let mut response = client
        .get(url)
        .timeout(timeout)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timeout".to_owned()
            } else {
                "connection failed".to_owned()
            }
        })?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status().as_u16()));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| "response interrupted".to_owned())?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err("response too large".into());
        }
    }
    serde_json::from_slice(&bytes).map_err(|_| "response is not JSON".to_owned())
}

/// Seconds since the epoch as an instant, saturating far outside any real token.
fn instant(seconds: f64) -> DateTime<Utc> {
    let millis = (seconds * 1000.0).clamp(0.0, 253_402_300_799_000.0) as i64;
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

fn fingerprint(token: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_nonces_are_the_hex_sha256_of_the_raw_one() {
        // echo -n abc | sha256sum
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn audiences_may_be_one_or_many() {
        let accepted = vec!["app".to_owned()];
        assert!(Audience::One("app".into()).contains_any(&accepted));
        assert!(!Audience::One("other".into()).contains_any(&accepted));
        assert!(Audience::Many(vec!["x".into(), "app".into()]).contains_any(&accepted));
        assert!(!Audience::Many(vec![]).contains_any(&accepted));
    }

    #[test]
    fn only_signing_keys_of_public_key_algorithms_are_kept() {
        let rsa = serde_json::json!({
            "kty": "RSA", "kid": "r", "alg": "RS256", "use": "sig",
            "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
            "e": "AQAB"
        });
        assert!(published_key(&rsa).is_some());
        let mut encryption = rsa.clone();
        encryption["use"] = "enc".into();
        assert!(published_key(&encryption).is_none());
        let mut hmac = rsa.clone();
        hmac["alg"] = "HS256".into();
        assert!(published_key(&hmac).is_none());
        let mut unknown = rsa.clone();
        unknown["alg"] = "RSA-OAEP".into();
        assert!(published_key(&unknown).is_none());
    }

    #[test]
    fn instants_saturate() {
        assert_eq!(instant(-5.0).timestamp(), 0);
        assert_eq!(instant(1.5).timestamp_millis(), 1500);
        assert!(instant(f64::MAX) > instant(4_000_000_000.0));
    }
}
