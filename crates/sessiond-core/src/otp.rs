//! Emailed one-time codes: generation, hashing and the rules of a challenge.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, TryRngCore};
use sha2::{Digest, Sha256};

use crate::error::DomainError;
use crate::secret::TokenHash;

/// Wrong codes a single challenge tolerates before it is dead.
pub const MAX_ATTEMPTS: u32 = 5;

/// A one-time code as mailed to a person. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl OtpCode {
    /// `digits` decimal digits, uniformly distributed, from the OS CSPRNG.
    pub fn generate(digits: u32) -> Self {
        let digits = digits.clamp(4, 10);
        let bound = 10u64.pow(digits);
        let n = rand::rngs::OsRng.unwrap_err().random_range(0..bound);
        Self(format!("{n:0width$}", width = digits as usize))
    }

    /// A code as typed by a person: surrounding whitespace and inner spaces or dashes
    /// ("123 456", "123-456") are forgiven; anything else must be digits.
    pub fn parse(raw: &str) -> Option<Self> {
        let cleaned: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        (!cleaned.is_empty() && cleaned.len() <= 10 && cleaned.bytes().all(|b| b.is_ascii_digit()))
            .then_some(Self(cleaned))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Bound to the challenge, so one code hash says nothing about another challenge.
    pub fn hash(&self, challenge_id: &str) -> TokenHash {
        let mut hasher = Sha256::new();
        hasher.update(b"sessiond/otp/v1\0");
        hasher.update(challenge_id.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.0.as_bytes());
        TokenHash::from_bytes(hasher.finalize().into())
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(***)")
    }
}

/// What redeeming a challenge's code does. A code is only ever good for its own purpose:
/// a login code cannot reset a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpPurpose {
    /// Log in (`POST /v1/auth/otp`).
    Login,
    /// Set a new password (`POST /v1/auth/password/reset`).
    PasswordReset,
    /// Prove the user's current address (`POST /v1/session/email/verify`).
    VerifyEmail,
    /// Move the user to the challenge's address (`POST /v1/session/email`).
    ChangeEmail,
}

impl OtpPurpose {
    pub const ALL: [OtpPurpose; 4] = [
        OtpPurpose::Login,
        OtpPurpose::PasswordReset,
        OtpPurpose::VerifyEmail,
        OtpPurpose::ChangeEmail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OtpPurpose::Login => "login",
            OtpPurpose::PasswordReset => "password_reset",
            OtpPurpose::VerifyEmail => "verify_email",
            OtpPurpose::ChangeEmail => "change_email",
        }
    }
}

impl std::str::FromStr for OtpPurpose {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OtpPurpose::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown challenge purpose {s:?}"))
    }
}

/// A challenge as storage knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct OtpChallenge {
    pub id: String,
    pub purpose: OtpPurpose,
    /// The address the code was mailed to.
    pub email: String,
    /// Whose account it acts on, when that was known at issue (every purpose but login).
    pub user_id: Option<crate::UserId>,
    pub code_hash: TokenHash,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub attempts: u32,
    pub consumed_at: Option<DateTime<Utc>>,
}

/// What presenting a code to a challenge means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpVerdict {
    Accept,
    /// Wrong code: count the attempt, then answer with this error.
    Reject(OtpFailure),
    /// Refused before comparing (the challenge is spent, expired or exhausted).
    Refuse(OtpFailure),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpFailure {
    Invalid,
    Expired,
    AttemptsExceeded,
}

impl From<OtpFailure> for DomainError {
    fn from(f: OtpFailure) -> Self {
        match f {
            OtpFailure::Invalid => DomainError::OtpInvalid,
            OtpFailure::Expired => DomainError::OtpExpired,
            OtpFailure::AttemptsExceeded => DomainError::OtpAttemptsExceeded,
        }
    }
}

/// Decides a presented code. `address_locked` says the address has had too many wrong
/// codes across all its recent challenges: requesting a new code does not reset that.
pub fn verify(
    challenge: &OtpChallenge,
    presented: Option<&OtpCode>,
    now: DateTime<Utc>,
    address_locked: bool,
) -> OtpVerdict {
    if challenge.consumed_at.is_some() {
        return OtpVerdict::Refuse(OtpFailure::Invalid);
    }
    if now >= challenge.expires_at {
        return OtpVerdict::Refuse(OtpFailure::Expired);
    }
    if challenge.attempts >= MAX_ATTEMPTS || address_locked {
        return OtpVerdict::Refuse(OtpFailure::AttemptsExceeded);
    }
    let matches =
        presented.is_some_and(|code| code.hash(&challenge.id).ct_eq(&challenge.code_hash));
    if matches {
        return OtpVerdict::Accept;
    }
    if challenge.attempts + 1 >= MAX_ATTEMPTS {
        OtpVerdict::Reject(OtpFailure::AttemptsExceeded)
    } else {
        OtpVerdict::Reject(OtpFailure::Invalid)
    }
}

/// How long a challenge lives.
pub const DEFAULT_TTL: Duration = Duration::minutes(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn challenge(code: &OtpCode) -> OtpChallenge {
        OtpChallenge {
            id: "ch-1".into(),
            purpose: OtpPurpose::Login,
            email: "ann@example.com".into(),
            user_id: None,
            code_hash: code.hash("ch-1"),
            created_at: t0(),
            expires_at: t0() + DEFAULT_TTL,
            attempts: 0,
            consumed_at: None,
        }
    }

    #[test]
    fn codes_have_the_requested_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..200)
            .map(|_| OtpCode::generate(6).expose().to_owned())
            .collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(codes.len() > 190, "codes repeat too often: {}", codes.len());
        assert_eq!(OtpCode::generate(8).expose().len(), 8);
    }

    #[test]
    fn codes_are_roughly_uniform_over_leading_digits() {
        let mut counts = [0u32; 10];
        for _ in 0..10_000 {
            let c = OtpCode::generate(6);
            counts[(c.expose().as_bytes()[0] - b'0') as usize] += 1;
        }
        // Zero-padding keeps leading zeros: each digit ~1000 times.
        assert!(
            counts.iter().all(|&n| (800..1200).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn typed_codes_are_forgiving_about_spacing_only() {
        assert_eq!(OtpCode::parse(" 123 456 ").unwrap().expose(), "123456");
        assert_eq!(OtpCode::parse("123-456").unwrap().expose(), "123456");
        assert!(OtpCode::parse("12a456").is_none());
        assert!(OtpCode::parse("").is_none());
        assert!(OtpCode::parse(&"1".repeat(11)).is_none());
    }

    #[test]
    fn the_right_code_is_accepted_once_in_time() {
        let code = OtpCode::generate(6);
        let mut c = challenge(&code);
        assert_eq!(verify(&c, Some(&code), t0(), false), OtpVerdict::Accept);
        assert_eq!(
            verify(&c, Some(&code), t0() + DEFAULT_TTL, false),
            OtpVerdict::Refuse(OtpFailure::Expired)
        );
        c.consumed_at = Some(t0());
        assert_eq!(
            verify(&c, Some(&code), t0(), false),
            OtpVerdict::Refuse(OtpFailure::Invalid)
        );
    }

    #[test]
    fn the_fifth_wrong_code_kills_the_challenge() {
        let code = OtpCode::generate(6);
        let wrong = OtpCode::parse(if code.expose() == "000000" {
            "111111"
        } else {
            "000000"
        })
        .unwrap();
        let mut c = challenge(&code);
        for attempt in 0..4 {
            c.attempts = attempt;
            assert_eq!(
                verify(&c, Some(&wrong), t0(), false),
                OtpVerdict::Reject(OtpFailure::Invalid)
            );
        }
        c.attempts = 4;
        assert_eq!(
            verify(&c, Some(&wrong), t0(), false),
            OtpVerdict::Reject(OtpFailure::AttemptsExceeded)
        );
        c.attempts = 5;
        assert_eq!(
            verify(&c, Some(&code), t0(), false),
            OtpVerdict::Refuse(OtpFailure::AttemptsExceeded),
            "even the right code is refused once the challenge is dead"
        );
    }

    #[test]
    fn address_failures_carry_over_to_new_challenges() {
        let code = OtpCode::generate(6);
        let c = challenge(&code);
        assert_eq!(
            verify(&c, Some(&code), t0(), true),
            OtpVerdict::Refuse(OtpFailure::AttemptsExceeded)
        );
    }

    #[test]
    fn hashes_are_bound_to_the_challenge() {
        let code = OtpCode::parse("123456").unwrap();
        assert!(!code.hash("a").ct_eq(&code.hash("b")));
        assert_eq!(format!("{code:?}"), "OtpCode(***)");
    }
}
