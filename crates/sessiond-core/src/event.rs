//! The audit events sessiond records, and who starts a session's end.

use crate::session::RevokeReason;

/// What happened. The names are the `type` of events in the API and in webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    UserCreated,
    /// Name, email or its verification changed.
    UserUpdated,
    UserDeactivated,
    UserReactivated,
    UserDeleted,
    SessionCreated,
    SessionEnded,
    /// Recorded only when configured (`record_refresh_events`): refreshes are many, and
    /// counted in metrics instead.
    SessionRefreshed,
    RefreshReuseDetected,
    LoginFailed,
    PasswordChanged,
    PasswordReset,
    KeysRotated,
}

impl EventType {
    pub const ALL: [EventType; 13] = [
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeactivated,
        EventType::UserReactivated,
        EventType::UserDeleted,
        EventType::SessionCreated,
        EventType::SessionEnded,
        EventType::SessionRefreshed,
        EventType::RefreshReuseDetected,
        EventType::LoginFailed,
        EventType::PasswordChanged,
        EventType::PasswordReset,
        EventType::KeysRotated,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserUpdated => "user.updated",
            EventType::UserDeactivated => "user.deactivated",
            EventType::UserReactivated => "user.reactivated",
            EventType::UserDeleted => "user.deleted",
            EventType::SessionCreated => "session.created",
            EventType::SessionEnded => "session.ended",
            EventType::SessionRefreshed => "session.refreshed",
            EventType::RefreshReuseDetected => "refresh.reuse_detected",
            EventType::LoginFailed => "login.failed",
            EventType::PasswordChanged => "password.changed",
            EventType::PasswordReset => "password.reset",
            EventType::KeysRotated => "keys.rotated",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether a filter (`*`, `session.*` or a type's name) takes this type.
    pub fn matches(&self, filter: &str) -> bool {
        match filter.strip_suffix('*') {
            Some(prefix) => self.as_str().starts_with(prefix),
            None => self.as_str() == filter,
        }
    }

    /// Whether `filter` takes at least one type: a filter naming none is a mistake.
    pub fn is_filter(filter: &str) -> bool {
        (filter == "*" || filter.ends_with(".*") || !filter.contains('*'))
            && Self::ALL.iter().any(|t| t.matches(filter))
    }
}

/// Who ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// The person, from one of their sessions.
    User,
    /// An administrator (the admin API or console).
    Admin,
    /// A rule: the session limit, idle or absolute lifetime.
    Policy,
    /// A refresh token presented again after its rotation.
    TheftDetection,
}

impl Initiator {
    pub fn as_str(&self) -> &'static str {
        match self {
            Initiator::User => "user",
            Initiator::Admin => "admin",
            Initiator::Policy => "policy",
            Initiator::TheftDetection => "theft_detection",
        }
    }
}

impl RevokeReason {
    /// Who ends a session for this reason.
    pub fn initiator(&self) -> Initiator {
        match self {
            RevokeReason::Logout
            | RevokeReason::RevokedByUser
            | RevokeReason::RevokedOthers
            | RevokeReason::PasswordChanged
            | RevokeReason::PasswordReset => Initiator::User,
            RevokeReason::Admin | RevokeReason::UserDeactivated | RevokeReason::UserDeleted => {
                Initiator::Admin
            }
            RevokeReason::EvictedByLimit
            | RevokeReason::IdleTimeout
            | RevokeReason::AbsoluteLifetime => Initiator::Policy,
            RevokeReason::RefreshTokenReused => Initiator::TheftDetection,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        let mut names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), EventType::ALL.len());
    }

    #[test]
    fn filters_take_exact_names_prefixes_and_everything() {
        assert!(EventType::SessionEnded.matches("session.ended"));
        assert!(EventType::SessionEnded.matches("session.*"));
        assert!(EventType::SessionEnded.matches("*"));
        assert!(!EventType::SessionEnded.matches("user.*"));
        assert!(!EventType::SessionEnded.matches("session.created"));
        assert!(EventType::is_filter("user.*"));
        assert!(EventType::is_filter("keys.rotated"));
        assert!(!EventType::is_filter("nope.*"));
        assert!(!EventType::is_filter("session.end"));
        assert!(!EventType::is_filter("se*"));
    }

    #[test]
    fn every_reason_has_an_initiator() {
        assert_eq!(
            RevokeReason::RefreshTokenReused.initiator(),
            Initiator::TheftDetection
        );
        assert_eq!(RevokeReason::Logout.initiator(), Initiator::User);
        assert_eq!(RevokeReason::UserDeactivated.initiator(), Initiator::Admin);
        assert_eq!(RevokeReason::EvictedByLimit.initiator(), Initiator::Policy);
        for reason in RevokeReason::ALL {
            let _ = reason.initiator();
        }
    }
}
