//! The revocations still worth knowing: each is forgotten once its `max_exp` has passed,
//! since no token it is about can be alive then, so memory stays bounded by the
//! revocations of one access-token lifetime.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};

use crate::Claims;

struct Entry {
    reason: String,
    max_exp: DateTime<Utc>,
    /// Users only: tokens issued before this second are dead.
    not_before: i64,
}

#[derive(Default)]
pub(crate) struct DenyList {
    sessions: RwLock<HashMap<String, Entry>>,
    users: RwLock<HashMap<String, Entry>>,
}

impl DenyList {
    pub(crate) fn deny_session(&self, sid: String, reason: String, max_exp: DateTime<Utc>) {
        let entry = Entry {
            reason,
            max_exp,
            not_before: 0,
        };
        self.sessions.write().expect("deny lock").insert(sid, entry);
    }

    pub(crate) fn deny_user(
        &self,
        sub: String,
        reason: String,
        not_before: DateTime<Utc>,
        max_exp: DateTime<Utc>,
    ) {
        let mut users = self.users.write().expect("deny lock");
        let entry = users.entry(sub).or_insert(Entry {
            reason: reason.clone(),
            max_exp,
            not_before: 0,
        });
        if not_before.timestamp() >= entry.not_before {
            *entry = Entry {
                reason,
                max_exp: max_exp.max(entry.max_exp),
                not_before: not_before.timestamp(),
            };
        }
    }

    /// The revocation reason if the token is denied.
    pub(crate) fn refusal(&self, claims: &Claims, now: DateTime<Utc>) -> Option<String> {
        if let Some(entry) = self.sessions.read().expect("deny lock").get(&claims.sid)
            && entry.max_exp > now
        {
            return Some(entry.reason.clone());
        }
        let sub = claims.sub.as_ref()?;
        let users = self.users.read().expect("deny lock");
        let entry = users.get(sub)?;
        (entry.max_exp > now && claims.iat < entry.not_before).then(|| entry.reason.clone())
    }

    /// Forgets what can no longer matter.
    pub(crate) fn evict(&self, now: DateTime<Utc>) {
        self.sessions
            .write()
            .expect("deny lock")
            .retain(|_, e| e.max_exp > now);
        self.users
            .write()
            .expect("deny lock")
            .retain(|_, e| e.max_exp > now);
    }

    pub(crate) fn clear(&self) {
        self.sessions.write().expect("deny lock").clear();
        self.users.write().expect("deny lock").clear();
    }

    pub(crate) fn len(&self) -> (usize, usize) {
        (
            self.sessions.read().expect("deny lock").len(),
            self.users.read().expect("deny lock").len(),
        )
    }
}
