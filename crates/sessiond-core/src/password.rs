//! Password hashing with argon2id at OWASP's recommended parameters.
//!
//! These functions are CPU-bound on purpose (~tens of milliseconds); callers must run
//! them off the async runtime.

use std::fmt;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::DomainError;

/// A password as typed by a person. `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// NIST SP 800-63B: at least 8 characters, and long passphrases must be accepted.
    pub const MIN_CHARS: usize = 8;
    /// Bounds the hashing work an attacker can ask for per request.
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(raw: String) -> Result<Self, DomainError> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(DomainError::invalid_field(
                "password",
                "must be at least 8 characters",
            ));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(DomainError::invalid_field(
                "password",
                "must be at most 1024 bytes",
            ));
        }
        Ok(Self(raw))
    }

    /// For a login attempt: any length is checked (and simply fails) rather than
    /// rejected early, so a wrong-length guess looks exactly like a wrong guess.
    pub fn for_login(raw: String) -> Self {
        let mut raw = raw;
        if raw.len() > Self::MAX_BYTES {
            // Keep the work bounded; a too-long password can never match anyway
            // because registration refuses them.
            raw.truncate(0);
            raw.push_str("\u{0}too-long");
        }
        Self(raw)
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Hashes and verifies passwords. Holds a hash of a random password so that a login for
/// an unknown email does the same work as one with a wrong password.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    dummy_hash: String,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordHasher {
    /// argon2id, m = 19 MiB, t = 2, p = 1 (OWASP Password Storage Cheat Sheet).
    pub fn new() -> Self {
        let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon
            .hash_password(b"sessiond-dummy-password-for-equal-timing", &salt)
            .expect("argon2 hashes a constant")
            .to_string();
        Self { argon, dummy_hash }
    }

    pub fn hash(&self, password: &Password) -> String {
        let salt = SaltString::generate(&mut OsRng);
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2 with valid parameters cannot fail")
            .to_string()
    }

    /// Verifies against `stored`, or against the dummy hash when there is no account, so
    /// both cases cost one full argon2id computation. A malformed stored hash fails.
    pub fn verify(&self, password: &Password, stored: Option<&str>) -> bool {
        let exists = stored.is_some();
        let encoded = stored.unwrap_or(&self.dummy_hash);
        let Ok(parsed) = PasswordHash::new(encoded) else {
            // Burn the same work before failing.
            let _ = self.hash(password);
            return false;
        };
        let matches = self
            .argon
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        matches && exists
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let hasher = PasswordHasher::new();
        let hash = hasher.hash(&Password::parse("correct horse".into()).unwrap());
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
    }

    #[test]
    fn verify_accepts_only_the_right_password() {
        let hasher = PasswordHasher::new();
        let pw = Password::parse("correct horse".into()).unwrap();
        let hash = hasher.hash(&pw);
        assert!(hasher.verify(&pw, Some(&hash)));
        assert!(!hasher.verify(&Password::for_login("wrong horse".into()), Some(&hash)));
        assert!(!hasher.verify(&pw, None));
        assert!(!hasher.verify(&pw, Some("not a hash")));
    }

    #[test]
    fn short_and_huge_passwords_are_rejected_at_registration() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("x".repeat(1025)).is_err());
        assert!(Password::parse("ěščřžýáí".into()).is_ok());
    }

    #[test]
    fn debug_hides_the_password() {
        let pw = Password::parse("correct horse".into()).unwrap();
        assert_eq!(format!("{pw:?}"), "Password(***)");
    }
}
