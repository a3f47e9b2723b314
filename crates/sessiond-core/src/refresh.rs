//! Refresh-token rotation: what presenting a stored refresh token means.

use chrono::{DateTime, Duration, Utc};

use crate::ids::{RefreshTokenId, SessionId};

/// A refresh token as storage knows it (by hash, never in plaintext).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRefreshToken {
    pub id: RefreshTokenId,
    pub session_id: SessionId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Set once the token has been exchanged for its successor.
    pub rotated_at: Option<DateTime<Utc>>,
    pub successor_id: Option<RefreshTokenId>,
    /// The successor, sealed with this token (see `RefreshToken::seal_successor`).
    pub successor_sealed: Option<Vec<u8>>,
}

/// What to do with a presented refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDecision {
    /// The live token of its session: mint its successor.
    Rotate,
    /// Already rotated, but still within the grace window and its successor unused:
    /// answer with that same successor so that concurrent refreshes converge.
    ReplaySuccessor,
    /// Rotated and past grace: someone is replaying an old token. Revoke the session.
    Reuse,
    /// The live token, but past its lifetime.
    Expired,
}

/// Decides the fate of a presented token. `successor_used` says whether the successor has
/// itself been rotated, which closes the parent's grace window early.
pub fn decide(
    token: &StoredRefreshToken,
    successor_used: bool,
    now: DateTime<Utc>,
    grace: Duration,
) -> RefreshDecision {
    match token.rotated_at {
        None if now >= token.expires_at => RefreshDecision::Expired,
        None => RefreshDecision::Rotate,
        Some(rotated_at) if now < rotated_at + grace && !successor_used => {
            RefreshDecision::ReplaySuccessor
        }
        Some(_) => RefreshDecision::Reuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn token(rotated_at: Option<DateTime<Utc>>) -> StoredRefreshToken {
        StoredRefreshToken {
            id: RefreshTokenId::new(),
            session_id: SessionId::new(),
            created_at: t0(),
            expires_at: t0() + Duration::days(30),
            rotated_at,
            successor_id: rotated_at.map(|_| RefreshTokenId::new()),
            successor_sealed: rotated_at.map(|_| vec![0; 32]),
        }
    }

    const GRACE: Duration = Duration::seconds(30);

    #[test]
    fn live_token_rotates_until_it_expires() {
        let t = token(None);
        assert_eq!(decide(&t, false, t0(), GRACE), RefreshDecision::Rotate);
        assert_eq!(
            decide(&t, false, t.expires_at - Duration::milliseconds(1), GRACE),
            RefreshDecision::Rotate
        );
        assert_eq!(
            decide(&t, false, t.expires_at, GRACE),
            RefreshDecision::Expired
        );
    }

    #[test]
    fn rotated_token_replays_within_grace_only() {
        let rotated = t0() + Duration::minutes(5);
        let t = token(Some(rotated));
        assert_eq!(
            decide(
                &t,
                false,
                rotated + GRACE - Duration::milliseconds(1),
                GRACE
            ),
            RefreshDecision::ReplaySuccessor
        );
        assert_eq!(
            decide(&t, false, rotated + GRACE, GRACE),
            RefreshDecision::Reuse
        );
    }

    #[test]
    fn grace_ends_once_the_successor_is_used() {
        let rotated = t0();
        let t = token(Some(rotated));
        assert_eq!(
            decide(&t, true, rotated + Duration::seconds(1), GRACE),
            RefreshDecision::Reuse
        );
    }
}
