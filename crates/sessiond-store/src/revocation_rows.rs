//! Revocation facts as both backends store them: one row per fact, the subject (a
//! session or user id) and reason as text, so one decoder serves both.

use chrono::{DateTime, Utc};
use sessiond_core::revocation::RevocationFact;

use crate::{StoreError, StoreResult};

pub(crate) struct FactRow {
    pub kind: &'static str,
    pub subject: Option<String>,
    pub reason: Option<&'static str>,
    pub not_before: Option<DateTime<Utc>>,
    pub max_exp: DateTime<Utc>,
}

impl From<&RevocationFact> for FactRow {
    fn from(fact: &RevocationFact) -> Self {
        let kind = fact.kind();
        let max_exp = fact.max_exp();
        match fact {
            RevocationFact::SessionRevoked {
                session, reason, ..
            } => FactRow {
                kind,
                subject: Some(session.to_string()),
                reason: Some(reason.as_str()),
                not_before: None,
                max_exp,
            },
            RevocationFact::UserRevoked {
                user,
                reason,
                not_before,
                ..
            } => FactRow {
                kind,
                subject: Some(user.to_string()),
                reason: Some(reason.as_str()),
                not_before: Some(*not_before),
                max_exp,
            },
            RevocationFact::KeysChanged { .. } => FactRow {
                kind,
                subject: None,
                reason: None,
                not_before: None,
                max_exp,
            },
        }
    }
}

/// Reads a stored fact back.
pub(crate) fn fact(
    kind: &str,
    subject: Option<&str>,
    reason: Option<&str>,
    not_before: Option<DateTime<Utc>>,
    max_exp: DateTime<Utc>,
) -> StoreResult<RevocationFact> {
    let corrupt = || StoreError::Corrupt(format!("revocation fact {kind:?}"));
    let reason = || reason.and_then(|r| r.parse().ok()).ok_or_else(corrupt);
    let subject = || subject.ok_or_else(corrupt);
    Ok(match kind {
        "session_revoked" => RevocationFact::SessionRevoked {
            session: subject()?.parse().map_err(|_| corrupt())?,
            reason: reason()?,
            max_exp,
        },
        "user_revoked" => RevocationFact::UserRevoked {
            user: subject()?.parse().map_err(|_| corrupt())?,
            reason: reason()?,
            not_before: not_before.ok_or_else(corrupt)?,
            max_exp,
        },
        "keys_changed" => RevocationFact::KeysChanged { max_exp },
        _ => return Err(corrupt()),
    })
}

/// A stored number as a cursor.
pub(crate) fn seq(raw: i64) -> StoreResult<u64> {
    u64::try_from(raw).map_err(|_| StoreError::Corrupt(format!("revocation number {raw}")))
}

/// A cursor as a query parameter: one beyond the databases' integers names nothing that
/// exists, and the largest one does the same.
pub(crate) fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}
