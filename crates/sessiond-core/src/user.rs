use chrono::{DateTime, Utc};

use crate::email::Email;
use crate::ids::UserId;

/// A person with sessions. The password hash lives apart (see the store) so that a
/// `User` can be passed around and serialised without carrying it.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub email: Option<Email>,
    pub name: Option<String>,
    pub active: bool,
    /// The person proved they read mail at `email` (a code sent there was redeemed).
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
    /// As vouched for by an identity provider (token exchange).
    pub mobile: Option<String>,
    /// Whatever profile JSON an identity provider vouched for.
    pub profile: Option<serde_json::Value>,
}
