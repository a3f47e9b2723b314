//! Access tokens: Ed25519-signed JWTs (RFC 9068 `at+jwt`) and the key ring that signs
//! and verifies them.
//!
//! `jsonwebtoken` is strict only where told to be, so every check is explicit here: the
//! algorithm is pinned to our keys, `kid` is looked up only in our own set (`jku`, `x5u`
//! and embedded keys are never consulted), `typ` must be `at+jwt`, `iss` and `aud` must
//! match, and expiry is checked exactly against the domain clock with no leeway.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::DomainError;
use crate::ids::{SessionId, UserId};

pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Far above any token we mint; anything longer is rejected before parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the signing key is not a valid Ed25519 PKCS#8 document")]
    InvalidKey,
    #[error("the key generator failed")]
    Generation,
    #[error("there is no active signing key")]
    NoActiveKey,
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub aud: String,
    pub sid: SessionId,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub amr: Vec<String>,
}

impl AccessClaims {
    pub fn user_id(&self) -> Option<UserId> {
        self.sub.as_deref().and_then(|s| s.parse().ok())
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Expiry is exact: valid strictly before `exp`, with no leeway.
    pub fn check_expiry(&self, now: DateTime<Utc>) -> Result<(), DomainError> {
        if now.timestamp_millis() >= self.exp.saturating_mul(1000) {
            return Err(DomainError::TokenExpired {
                expired_at: self.expires_at(),
            });
        }
        Ok(())
    }

    pub fn issued_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.iat, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// One Ed25519 signing key with its private half (PKCS#8) as persisted by the store.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub pkcs8: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn generate(now: DateTime<Utc>) -> Result<Self, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generation)?;
        Self::from_pkcs8(pkcs8.as_ref().to_vec(), now, None)
    }

    pub fn from_pkcs8(
        pkcs8: Vec<u8>,
        created_at: DateTime<Utc>,
        retired_at: Option<DateTime<Utc>>,
    ) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| KeyError::InvalidKey)?;
        let public_key = pair.public_key().as_ref().to_vec();
        Ok(Self {
            kid: thumbprint(&public_key),
            pkcs8,
            public_key,
            created_at,
            retired_at,
        })
    }

    /// The public half as a JWK, as published at `/.well-known/jwks.json`.
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&self.public_key),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }
}

/// RFC 7638 JWK thumbprint: a kid that is derived from the key itself.
fn thumbprint(public_key: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public_key)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Issuer and audience every token carries and every check demands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAudience {
    pub issuer: String,
    pub audience: String,
}

/// The keys in force: the newest active key signs; every key that can still have live
/// tokens verifies.
pub struct KeyRing {
    signing_kid: String,
    /// Parsed once: `jsonwebtoken` would re-parse the PKCS#8 document for every token,
    /// about half the cost of signing.
    signing_key: Ed25519KeyPair,
    /// The base64url JOSE header, identical for every token this ring signs.
    signing_header: String,
    verifiers: HashMap<String, DecodingKey>,
    jwks: serde_json::Value,
    validation: Validation,
}

impl KeyRing {
    /// `keys` are all stored keys; retired ones keep verifying until every token they
    /// signed has expired (`retired_at + access_token_ttl`).
    pub fn new(
        keys: &[SigningKey],
        audience: &TokenAudience,
        now: DateTime<Utc>,
        access_token_ttl: Duration,
    ) -> Result<Self, KeyError> {
        // The newest key in force: created (keys are published ahead of their
        // `created_at`) and not yet retired.
        let in_force =
            |k: &&SigningKey| k.created_at <= now && k.retired_at.is_none_or(|r| r > now);
        let signer = keys
            .iter()
            .filter(in_force)
            .max_by_key(|k| k.created_at)
            .or_else(|| {
                keys.iter()
                    .filter(|k| k.retired_at.is_none())
                    .max_by_key(|k| k.created_at)
            })
            .ok_or(KeyError::NoActiveKey)?;
        let verifying: Vec<&SigningKey> = keys
            .iter()
            .filter(|k| k.retired_at.is_none_or(|r| r + access_token_ttl > now))
            .collect();

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 0;
        // Expiry is checked against the domain clock below, exactly.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        validation.set_issuer(&[&audience.issuer]);
        validation.set_audience(&[&audience.audience]);

        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(signer.kid.clone());
        let header = serde_json::to_vec(&header).map_err(|_| KeyError::InvalidKey)?;
        Ok(Self {
            signing_kid: signer.kid.clone(),
            signing_key: Ed25519KeyPair::from_pkcs8(&signer.pkcs8)
                .map_err(|_| KeyError::InvalidKey)?,
            signing_header: URL_SAFE_NO_PAD.encode(header),
            verifiers: verifying
                .iter()
                .map(|k| (k.kid.clone(), DecodingKey::from_ed_der(&k.public_key)))
                .collect(),
            jwks: serde_json::json!({ "keys": verifying.iter().map(|k| k.jwk()).collect::<Vec<_>>() }),
            validation,
        })
    }

    pub fn signing_kid(&self) -> &str {
        &self.signing_kid
    }

    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    pub fn knows(&self, kid: &str) -> bool {
        self.verifiers.contains_key(kid)
    }

    /// A compact JWS (RFC 7515): header.payload.signature, each base64url.
    pub fn sign(&self, claims: &AccessClaims) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialise");
        let mut token =
            String::with_capacity(self.signing_header.len() + payload.len() * 4 / 3 + 90);
        token.push_str(&self.signing_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = self.signing_key.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        token
    }

    /// A compact JWS of other claims than an access token's, with its own `typ` (so it is
    /// never taken for an access token: [`KeyRing::verify`] requires `at+jwt`), signed by
    /// the current key.
    pub fn sign_typed(&self, typ: &str, claims: &impl Serialize) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.signing_kid.clone());
        let header = serde_json::to_vec(&header).expect("a header serialises");
        let payload = serde_json::to_vec(claims).expect("claims serialise");
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = self.signing_key.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        token
    }

    /// Verifies signature, type, issuer, audience and expiry at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, DomainError> {
        if !is_compact_jws_shape(token) {
            return Err(DomainError::TokenInvalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| DomainError::TokenInvalid)?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(DomainError::TokenInvalid);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifiers.get(kid))
            .ok_or(DomainError::TokenInvalid)?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .map_err(|_| DomainError::TokenInvalid)?
            .claims;
        claims.check_expiry(now)?;
        Ok(claims)
    }
}

/// Three non-empty runs of strict base64url characters separated by dots.
fn is_compact_jws_shape(token: &str) -> bool {
    token.len() <= MAX_TOKEN_LEN
        && token.split('.').count() == 3
        && token.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The kid a token claims to be signed with, for deciding whether to reload keys.
pub fn claimed_kid(token: &str) -> Option<String> {
    if !is_compact_jws_shape(token) {
        return None;
    }
    jsonwebtoken::decode_header(token).ok()?.kid
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::EncodingKey;

    fn audience() -> TokenAudience {
        TokenAudience {
            issuer: "https://sessiond.test".into(),
            audience: "https://sessiond.test".into(),
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn claims(iat: DateTime<Utc>, ttl: Duration) -> AccessClaims {
        AccessClaims {
            iss: audience().issuer,
            sub: Some(UserId::new().to_string()),
            aud: audience().audience,
            sid: SessionId::new(),
            jti: "jti-1".into(),
            iat: iat.timestamp(),
            exp: (iat + ttl).timestamp(),
            amr: vec!["pwd".into()],
        }
    }

    fn ring_with(keys: &[SigningKey]) -> KeyRing {
        KeyRing::new(keys, &audience(), t0(), Duration::minutes(15)).unwrap()
    }

    #[test]
    fn signs_and_verifies_with_exact_expiry() {
        let key = SigningKey::generate(t0()).unwrap();
        let ring = ring_with(&[key]);
        let c = claims(t0(), Duration::minutes(15));
        let token = ring.sign(&c);
        assert_eq!(ring.verify(&token, t0()), Ok(c.clone()));
        let last_ms = c.expires_at() - Duration::milliseconds(1);
        assert!(ring.verify(&token, last_ms).is_ok());
        assert_eq!(
            ring.verify(&token, c.expires_at()),
            Err(DomainError::TokenExpired {
                expired_at: c.expires_at()
            })
        );
    }

    #[test]
    fn header_names_the_key_and_type() {
        let ring = ring_with(&[SigningKey::generate(t0()).unwrap()]);
        let token = ring.sign(&claims(t0(), Duration::minutes(15)));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(ring.signing_kid()));
        assert_eq!(header.alg, Algorithm::EdDSA);
    }

    #[test]
    fn rejects_a_token_signed_by_another_key() {
        let ours = ring_with(&[SigningKey::generate(t0()).unwrap()]);
        let theirs = ring_with(&[SigningKey::generate(t0()).unwrap()]);
        let token = theirs.sign(&claims(t0(), Duration::minutes(15)));
        assert_eq!(ours.verify(&token, t0()), Err(DomainError::TokenInvalid));
    }

    #[test]
    fn rejects_a_forged_kid_pointing_at_our_key() {
        let ours_key = SigningKey::generate(t0()).unwrap();
        let ours = ring_with(std::slice::from_ref(&ours_key));
        let attacker_key = SigningKey::generate(t0()).unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        header.kid = Some(ours_key.kid.clone());
        let forged = jsonwebtoken::encode(
            &header,
            &claims(t0(), Duration::minutes(15)),
            &EncodingKey::from_ed_der(&attacker_key.pkcs8),
        )
        .unwrap();
        assert_eq!(ours.verify(&forged, t0()), Err(DomainError::TokenInvalid));
    }

    #[test]
    fn rejects_alg_none_wrong_typ_and_bad_encoding() {
        let ring = ring_with(&[SigningKey::generate(t0()).unwrap()]);
        let good = ring.sign(&claims(t0(), Duration::minutes(15)));
        let parts: Vec<&str> = good.split('.').collect();
        let b64 = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let none_header =
            b64(&serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": ring.signing_kid()}));
        let jwt_typ =
            b64(&serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": ring.signing_kid()}));
        let hs256 =
            b64(&serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": ring.signing_kid()}));
        for bad in [
            format!("{none_header}.{}.", parts[1]),
            format!("{none_header}.{}.{}", parts[1], parts[2]),
            format!("{jwt_typ}.{}.{}", parts[1], parts[2]),
            format!("{hs256}.{}.{}", parts[1], parts[2]),
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                &parts[2][..parts[2].len() - 4]
            ),
            good.replace('.', ".."),
            good[..good.len() / 2].to_owned(),
            "garbage".into(),
            String::new(),
            "a.b.c".into(),
        ] {
            assert_eq!(
                ring.verify(&bad, t0()),
                Err(DomainError::TokenInvalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_wrong_issuer_or_audience() {
        let key = SigningKey::generate(t0()).unwrap();
        let ring = ring_with(std::slice::from_ref(&key));
        let mut c = claims(t0(), Duration::minutes(15));
        c.aud = "someone-else".into();
        assert_eq!(
            ring.verify(&ring.sign(&c), t0()),
            Err(DomainError::TokenInvalid)
        );
        let mut c = claims(t0(), Duration::minutes(15));
        c.iss = "someone-else".into();
        assert_eq!(
            ring.verify(&ring.sign(&c), t0()),
            Err(DomainError::TokenInvalid)
        );
    }

    #[test]
    fn retired_keys_verify_until_their_tokens_expire_then_leave_the_jwks() {
        let old = SigningKey::generate(t0()).unwrap();
        let old_ring = ring_with(std::slice::from_ref(&old));
        let token = old_ring.sign(&claims(t0(), Duration::minutes(15)));

        let retired = SigningKey {
            retired_at: Some(t0()),
            ..old.clone()
        };
        let new = SigningKey::generate(t0() + Duration::seconds(1)).unwrap();
        let keys = [retired, new.clone()];
        let ttl = Duration::minutes(15);
        let ring = KeyRing::new(&keys, &audience(), t0() + Duration::minutes(1), ttl).unwrap();
        assert_eq!(ring.signing_kid(), new.kid);
        assert!(ring.verify(&token, t0() + Duration::minutes(1)).is_ok());
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 2);

        let later = KeyRing::new(&keys, &audience(), t0() + ttl, ttl).unwrap();
        assert!(!later.knows(&old.kid));
        assert_eq!(later.jwks()["keys"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn kid_is_the_jwk_thumbprint() {
        // RFC 8037 appendix A.3 gives this thumbprint for its example key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        assert_eq!(
            thumbprint(&x),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
