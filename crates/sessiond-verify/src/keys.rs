//! sessiond's public keys, from its JWKS: fetched at start, again when the feed says
//! `keys_changed`, and when a token names a key not seen yet (at most once per cooldown,
//! so garbage tokens cannot turn into a load on sessiond).

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::{Claims, Config, StartError};

const TYP: &str = "at+jwt";

pub(crate) enum Unverified {
    UnknownKid,
    Invalid,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kid: String,
    kty: String,
    crv: String,
    x: String,
}

pub(crate) struct Keys {
    by_kid: RwLock<HashMap<String, DecodingKey>>,
    last_unknown_fetch: Mutex<Option<Instant>>,
}

impl Keys {
    pub(crate) async fn fetch(http: &reqwest::Client, config: &Config) -> Result<Self, StartError> {
        let keys = Self {
            by_kid: RwLock::new(HashMap::new()),
            last_unknown_fetch: Mutex::new(None),
        };
        keys.refresh(http, config).await?;
        Ok(keys)
    }

    #[cfg(test)]
    pub(crate) fn with(keys: Vec<(String, DecodingKey)>) -> Self {
        Self {
            by_kid: RwLock::new(keys.into_iter().collect()),
            last_unknown_fetch: Mutex::new(None),
        }
    }

    pub(crate) async fn refresh(
        &self,
        http: &reqwest::Client,
        config: &Config,
    ) -> Result<(), StartError> {
        let url = format!("{}/.well-known/jwks.json", config.base_url);
        let jwks: Jwks = crate::get_json(http, url, None).await?;
        let by_kid = jwks
            .keys
            .into_iter()
            // Only Ed25519 keys: an RSA or symmetric key in the set can never verify.
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
            .filter_map(|k| Some((k.kid, DecodingKey::from_ed_components(&k.x).ok()?)))
            .collect();
        *self.by_kid.write().expect("keys lock") = by_kid;
        Ok(())
    }

    pub(crate) async fn refresh_on_unknown_kid(&self, http: &reqwest::Client, config: &Config) {
        {
            let mut last = self.last_unknown_fetch.lock().expect("keys lock");
            if last.is_some_and(|at| at.elapsed() < config.jwks_cooldown) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(e) = self.refresh(http, config).await {
            tracing::warn!(error = %e, "could not refresh sessiond's JWKS");
        }
    }

    /// Signature and claims; expiry is checked by the caller, exactly.
    pub(crate) fn verify(&self, token: &str, config: &Config) -> Result<Claims, Unverified> {
        if !is_compact_jws(token) {
            return Err(Unverified::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Unverified::Invalid)?;
        // The algorithm is ours to choose, never the token's: EdDSA or nothing. `jku`,
        // `jwk` and `x5u` headers are never looked at.
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(TYP) {
            return Err(Unverified::Invalid);
        }
        let kid = header.kid.ok_or(Unverified::Invalid)?;
        let keys = self.by_kid.read().expect("keys lock");
        let key = keys.get(&kid).ok_or(Unverified::UnknownKid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 0;
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|_| Unverified::Invalid)
    }
}

/// Three dot-separated parts of strict base64url (no padding, no other alphabet).
fn is_compact_jws(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}
