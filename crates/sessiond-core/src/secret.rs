//! Secrets that must never be logged: refresh tokens and API keys. Their `Debug` prints
//! `***`, they have no `Display`, and storage only ever sees their [`TokenHash`].

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const SECRET_BYTES: usize = 32;
/// base64url of 32 bytes, without padding.
const ENCODED_LEN: usize = 43;

/// The SHA-256 of a high-entropy secret. A slow hash buys nothing for 256 random bits,
/// and a fast one keeps refresh and API-key checks cheap.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(secret: &[u8]) -> Self {
        Self(Sha256::digest(secret).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Comparison that takes the same time wherever the first difference is.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// An opaque refresh token: 256 bits from the OS CSPRNG, base64url-encoded.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken([u8; SECRET_BYTES]);

impl RefreshToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the OS random number generator is available");
        Self(bytes)
    }

    /// Parses the wire form; anything that is not exactly 43 strict base64url characters
    /// is not one of ours.
    pub fn parse(encoded: &str) -> Option<Self> {
        if encoded.len() != ENCODED_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        bytes.try_into().ok().map(Self)
    }

    pub fn expose(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }

    /// Seals `successor` so that only a holder of `self` (the parent) can open it again.
    /// This is how a refresh replayed within the grace window gets the very same
    /// successor back on any instance without the successor ever being stored in
    /// plaintext: the pad is derived from the parent, which storage knows only by hash,
    /// and each parent seals exactly one successor.
    pub fn seal_successor(&self, successor: &RefreshToken) -> [u8; SECRET_BYTES] {
        let pad = self.successor_pad();
        std::array::from_fn(|i| successor.0[i] ^ pad[i])
    }

    /// Opens what [`seal_successor`](Self::seal_successor) sealed with this parent.
    pub fn open_successor(&self, sealed: &[u8]) -> Option<RefreshToken> {
        let sealed: [u8; SECRET_BYTES] = sealed.try_into().ok()?;
        let pad = self.successor_pad();
        Some(RefreshToken(std::array::from_fn(|i| sealed[i] ^ pad[i])))
    }

    fn successor_pad(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"sessiond/refresh-successor-pad/v1");
        hasher.update(self.0);
        hasher.finalize().into()
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(***)")
    }
}

/// An admin API key as presented by a client. Compared only by hash.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the OS random number generator is available");
        Self(format!("sdk_{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn new(key: String) -> Self {
        Self(key)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.0.as_bytes())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_round_trip_and_are_unique() {
        let a = RefreshToken::generate();
        let b = RefreshToken::generate();
        assert_ne!(a, b);
        let wire = a.expose();
        assert_eq!(wire.len(), ENCODED_LEN);
        assert_eq!(RefreshToken::parse(&wire), Some(a));
    }

    #[test]
    fn parse_rejects_anything_but_strict_base64url() {
        let good = RefreshToken::generate().expose();
        assert!(RefreshToken::parse(&good[..42]).is_none());
        assert!(RefreshToken::parse(&format!("{good}=")).is_none());
        assert!(RefreshToken::parse(&format!("+{}", &good[1..])).is_none());
        assert!(RefreshToken::parse("").is_none());
        assert!(RefreshToken::parse("eyJhbGciOiJFZERTQSJ9.eyJ9.c2ln").is_none());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = RefreshToken::generate();
        let shown = format!("{token:?}");
        assert!(!shown.contains(&token.expose()));
        let key = ApiKey::generate();
        assert!(!format!("{key:?}").contains(key.expose()));
    }

    #[test]
    fn only_the_parent_opens_the_sealed_successor() {
        let parent = RefreshToken::generate();
        let child = RefreshToken::generate();
        let sealed = parent.seal_successor(&child);
        assert_ne!(&sealed[..], &child.0[..]);
        assert_eq!(parent.open_successor(&sealed), Some(child.clone()));
        let stranger = RefreshToken::generate();
        assert_ne!(stranger.open_successor(&sealed), Some(child));
    }

    #[test]
    fn hashes_compare_by_value() {
        let t = RefreshToken::generate();
        assert!(t.hash().ct_eq(&t.hash()));
        assert!(!t.hash().ct_eq(&RefreshToken::generate().hash()));
    }
}
