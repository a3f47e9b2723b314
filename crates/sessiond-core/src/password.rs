//! Password hashing with argon2id at OWASP's recommended parameters.
//!
//! These functions are CPU-bound on purpose (~tens of milliseconds); callers must run
//! them off the async runtime.

use std::fmt;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::DomainError;

/// A password as typed by a person. `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// NIST SP 800-63B: at least 8 characters, and long passphrases must be accepted.
    pub const MIN_CHARS: usize = 8;
    /// The longest new password (NIST asks for at least 64); counted in characters, as
    /// the API description's `maxLength` is.
    pub const MAX_CHARS: usize = 256;
    /// The longest password a login attempt hashes: bounds the work an attacker can ask
    /// for per request, and spares accounts made before [`Self::MAX_CHARS`] was lowered.
    pub const LOGIN_MAX_CHARS: usize = 1024;

    /// A new password under the policy of [`crate::password_policy`], without the
    /// account's own facts (see [`crate::password_policy::new_password`] for those).
    pub fn parse(raw: String) -> Result<Self, DomainError> {
        crate::password_policy::new_password(raw, "password", None)
    }

    /// A password as given, unchecked: only the policy module makes new ones.
    pub(crate) fn accepted(raw: String) -> Self {
        Self(raw)
    }

    /// For a login attempt: any length is checked (and simply fails) rather than
    /// rejected early, so a wrong-length guess looks exactly like a wrong guess.
    pub fn for_login(raw: String) -> Self {
        let mut raw = raw;
        if raw.chars().count() > Self::LOGIN_MAX_CHARS {
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

/// The working memory of one argon2 computation (19 MiB at our parameters). A thread that
/// hashes often keeps one and reuses it: allocating it per hash leaves each freed buffer
/// in the allocator's arenas, and resident memory grows by tens of MiB per thread.
pub struct HashingMemory(Vec<Block>);

impl HashingMemory {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// At least `blocks` blocks. argon2 writes every block before it reads it, so the
    /// previous computation's contents need no clearing.
    fn blocks(&mut self, blocks: usize) -> &mut [Block] {
        if self.0.len() < blocks {
            self.0.resize(blocks, Block::default());
        }
        &mut self.0[..blocks]
    }
}

impl Default for HashingMemory {
    fn default() -> Self {
        Self::new()
    }
}

/// argon2id's cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory per hash, KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// OWASP's first recommendation: m = 19 MiB, t = 2, p = 1.
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Hashes and verifies passwords. Holds a hash of a random password so that a login for
/// an unknown email does the same work as one with a wrong password.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
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
        Self::with_params(Argon2Params::default()).expect("valid argon2 parameters")
    }

    /// argon2id with other parameters (the `[password_hashing]` configuration).
    pub fn with_params(p: Argon2Params) -> Result<Self, String> {
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| e.to_string())?;
        let mut hasher = Self {
            params,
            dummy_hash: String::new(),
        };
        hasher.dummy_hash = hasher.hash_with(
            b"sessiond-dummy-password-for-equal-timing",
            &mut HashingMemory::new(),
        );
        Ok(hasher)
    }

    /// Whether `encoded` was made otherwise than new hashes are (another algorithm or
    /// other parameters): after a successful login it is replaced by a new hash.
    pub fn needs_rehash(&self, encoded: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(encoded) else {
            return true;
        };
        let same_params = Params::try_from(&parsed).is_ok_and(|p| {
            p.m_cost() == self.params.m_cost()
                && p.t_cost() == self.params.t_cost()
                && p.p_cost() == self.params.p_cost()
        });
        let current_version = parsed.version == Some(Version::V0x13.into());
        !(parsed.algorithm == Algorithm::Argon2id.ident() && current_version && same_params)
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of a new hash.
    pub fn hash(&self, password: &Password, memory: &mut HashingMemory) -> String {
        self.hash_with(password.as_bytes(), memory)
    }

    fn hash_with(&self, password: &[u8], memory: &mut HashingMemory) -> String {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt
            .decode_b64(&mut salt_bytes)
            .expect("a generated salt decodes");
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        argon2id(self.params.clone())
            .hash_password_into_with_memory(
                password,
                salt_bytes,
                &mut out,
                memory.blocks(self.params.block_count()),
            )
            .expect("argon2 with valid parameters cannot fail");
        PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).expect("parameters encode"),
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).expect("32 bytes is a valid output")),
        }
        .to_string()
    }

    /// Verifies against `stored`, or against the dummy hash when there is no account, so
    /// both cases cost one full argon2id computation. A malformed stored hash fails.
    pub fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
        memory: &mut HashingMemory,
    ) -> bool {
        let exists = stored.is_some();
        let encoded = stored.unwrap_or(&self.dummy_hash);
        match recompute(password.as_bytes(), encoded, memory) {
            Some(matches) => matches && exists,
            None => {
                // Burn the same work before failing.
                let _ = self.hash(password, memory);
                false
            }
        }
    }
}

fn argon2id(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` with the algorithm, parameters and salt written in `encoded` and
/// compares (in constant time) with its hash; `None` when `encoded` is not a usable
/// argon2 PHC string. Hashes made with other parameters than today's still verify.
fn recompute(password: &[u8], encoded: &str, memory: &mut HashingMemory) -> Option<bool> {
    let parsed = PasswordHash::new(encoded).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).ok()?;
    let expected = parsed.hash?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = parsed.salt?.decode_b64(&mut salt_bytes).ok()?;
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(
            password,
            salt_bytes,
            &mut out,
            memory.blocks(params.block_count()),
        )
        .ok()?;
    Some(Output::new(&out).ok()? == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let hasher = PasswordHasher::new();
        let hash = hasher.hash(
            &Password::parse("correct horse".into()).unwrap(),
            &mut HashingMemory::new(),
        );
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
    }

    #[test]
    fn verify_accepts_only_the_right_password() {
        let hasher = PasswordHasher::new();
        let pw = Password::parse("correct horse".into()).unwrap();
        let mem = &mut HashingMemory::new();
        let hash = hasher.hash(&pw, mem);
        assert!(hasher.verify(&pw, Some(&hash), mem));
        assert!(!hasher.verify(&Password::for_login("wrong horse".into()), Some(&hash), mem));
        assert!(!hasher.verify(&pw, None, mem));
        assert!(!hasher.verify(&pw, Some("not a hash"), mem));
        // Memory reused after other computations still gives the same answers.
        assert!(hasher.verify(&pw, Some(&hash), mem));
    }

    #[test]
    fn hashes_from_the_argon2_crate_and_other_parameters_verify() {
        use argon2::password_hash::PasswordHasher as _;
        let pw = Password::parse("correct horse".into()).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let mem = &mut HashingMemory::new();
        for (m, t, p) in [(19 * 1024, 2, 1), (8 * 1024, 3, 2), (47 * 1024, 1, 1)] {
            let params = Params::new(m, t, p, None).unwrap();
            let theirs = argon2id(params)
                .hash_password(pw.as_bytes(), &salt)
                .unwrap()
                .to_string();
            assert!(
                PasswordHasher::new().verify(&pw, Some(&theirs), mem),
                "{theirs}"
            );
            let wrong = Password::for_login("wrong horse".into());
            assert!(!PasswordHasher::new().verify(&wrong, Some(&theirs), mem));
        }
        // And ours verifies with the crate's own verifier.
        use argon2::password_hash::PasswordVerifier as _;
        let ours = PasswordHasher::new().hash(&pw, mem);
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(pw.as_bytes(), &parsed)
                .is_ok()
        );
    }

    #[test]
    fn short_and_huge_passwords_are_rejected_at_registration() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("x".repeat(257)).is_err());
        assert!(Password::parse("éx".repeat(128)).is_ok());
        assert!(Password::parse("ěščřžýáí".into()).is_ok());
    }

    #[test]
    fn hashes_made_with_other_parameters_need_a_rehash() {
        let mem = &mut HashingMemory::new();
        let pw = Password::parse("correct horse".into()).unwrap();
        let old = PasswordHasher::with_params(Argon2Params {
            memory_kib: 8 * 1024,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let today = PasswordHasher::new();
        let old_hash = old.hash(&pw, mem);
        assert!(today.needs_rehash(&old_hash));
        assert!(today.verify(&pw, Some(&old_hash), mem));
        assert!(!today.needs_rehash(&today.hash(&pw, mem)));
        assert!(today.needs_rehash("not a hash"));
        assert!(
            PasswordHasher::with_params(Argon2Params {
                memory_kib: 1,
                iterations: 0,
                parallelism: 1
            })
            .is_err()
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let pw = Password::parse("correct horse".into()).unwrap();
        assert_eq!(format!("{pw:?}"), "Password(***)");
    }
}
