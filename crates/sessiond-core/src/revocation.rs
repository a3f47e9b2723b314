//! Revocation facts: what a token verifier outside sessiond must know to refuse tokens
//! that are still unexpired but no longer good. Each fact is written in the transaction
//! that made it true, under a sequence number that orders every fact of every instance.

use chrono::{DateTime, Utc};

use crate::{RevokeReason, SessionId, UserId};

/// One fact, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationFact {
    /// Every access token of the session is dead; none outlives `max_exp`.
    SessionRevoked {
        session: SessionId,
        reason: RevokeReason,
        max_exp: DateTime<Utc>,
    },
    /// Every access token of the user issued before `not_before` (its `iat` in whole
    /// seconds is earlier) is dead; none outlives `max_exp`. The user's sessions get a
    /// `SessionRevoked` each as well, so a token issued in the same second is covered
    /// exactly.
    UserRevoked {
        user: UserId,
        reason: RevokeReason,
        not_before: DateTime<Utc>,
        max_exp: DateTime<Utc>,
    },
    /// The signing keys changed (a key added, activated or retired): verifiers refetch
    /// the JWKS. `max_exp` only says when the fact may be forgotten.
    KeysChanged { max_exp: DateTime<Utc> },
}

impl RevocationFact {
    pub fn kind(&self) -> &'static str {
        match self {
            RevocationFact::SessionRevoked { .. } => "session_revoked",
            RevocationFact::UserRevoked { .. } => "user_revoked",
            RevocationFact::KeysChanged { .. } => "keys_changed",
        }
    }

    /// When no token the fact is about can still be alive.
    pub fn max_exp(&self) -> DateTime<Utc> {
        match self {
            RevocationFact::SessionRevoked { max_exp, .. }
            | RevocationFact::UserRevoked { max_exp, .. }
            | RevocationFact::KeysChanged { max_exp } => *max_exp,
        }
    }
}

/// A fact with its place in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Gap-free and in commit order across every instance sharing the storage.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub fact: RevocationFact,
}

/// Where the feed stands: everything at or before `purged_through` is gone (a cursor
/// before it cannot be continued), and `latest` is the newest fact written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeedBounds {
    pub purged_through: u64,
    pub latest: u64,
}
