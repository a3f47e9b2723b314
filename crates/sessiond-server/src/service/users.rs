//! User administration with the admin key: finding users, looking one up in full,
//! changing, deactivating and erasing them.

use chrono::{DateTime, Utc};
use serde_json::json;
use sessiond_core::{DomainError, Email, EventType, RevokeReason, User, UserId};
use sessiond_store::{Identity, StoreError, UserChanges, UserQuery};

use super::{Service, ServiceError, ServiceResult};
use crate::state::cache::Invalidation;

/// The most users one page answers.
pub const MAX_USERS_PAGE: u32 = 200;

/// Which users to list (all given filters hold), from where, how many.
#[derive(Debug, Default)]
pub struct UserSearch {
    pub email: Option<String>,
    /// A prefix of the email or the name, any case.
    pub q: Option<String>,
    pub active: Option<bool>,
    pub email_verified: Option<bool>,
    pub cursor: Option<UserId>,
    pub limit: u32,
}

/// A page of users, and where the next one starts (none after the last).
pub struct UserPage {
    pub users: Vec<User>,
    pub next_cursor: Option<UserId>,
}

/// A user with what an admin looks at next: how it signs in, how many sessions it has
/// live, when it was last active.
pub struct UserDetail {
    pub user: User,
    pub identities: Vec<Identity>,
    pub has_password: bool,
    pub live_sessions: usize,
    pub last_active_at: Option<DateTime<Utc>>,
}

/// An admin's edit; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct UserEdit {
    pub name: Option<Option<String>>,
    pub email: Option<String>,
    pub active: Option<bool>,
    pub email_verified: Option<bool>,
}

impl Service {
    pub async fn list_users(&self, search: UserSearch) -> ServiceResult<UserPage> {
        let email = search.email.as_deref().map(Email::parse).transpose()?;
        let prefix = search
            .q
            .map(|q| q.trim().to_lowercase())
            .filter(|q| !q.is_empty());
        let limit = search.limit.clamp(1, MAX_USERS_PAGE);
        // One more than asked says whether another page follows.
        let mut users = self
            .store
            .list_users(&UserQuery {
                email,
                prefix,
                active: search.active,
                email_verified: search.email_verified,
                after: search.cursor,
                limit: limit + 1,
            })
            .await?;
        let next_cursor = if users.len() > limit as usize {
            users.truncate(limit as usize);
            users.last().map(|u| u.id)
        } else {
            None
        };
        Ok(UserPage { users, next_cursor })
    }

    pub async fn user_detail(&self, id: UserId) -> ServiceResult<UserDetail> {
        let credentials = self
            .store
            .user_credentials(id)
            .await?
            .ok_or(DomainError::NotFound)?;
        let identities = self.store.identities_of_user(id).await?;
        let sessions = self
            .store
            .live_sessions_for_user(id, self.live_window(self.now()))
            .await?;
        Ok(UserDetail {
            user: credentials.user,
            identities,
            has_password: credentials.password_hash.is_some(),
            live_sessions: sessions.len(),
            last_active_at: sessions.iter().map(|s| self.last_active(s)).max(),
        })
    }

    /// Applies an admin's edit. Deactivation ends every session at once; a new address
    /// is unverified unless the edit says otherwise.
    pub async fn edit_user(&self, id: UserId, edit: UserEdit) -> ServiceResult<User> {
        let email = edit.email.as_deref().map(Email::parse).transpose()?;
        let current = self.user(id).await?;
        let moved = email.is_some() && email != current.email;
        let changes = UserChanges {
            name: edit.name,
            email_verified: edit.email_verified.or(moved.then_some(false)),
            email,
        };
        let touches_profile =
            changes.name.is_some() || changes.email.is_some() || changes.email_verified.is_some();
        if touches_profile {
            let changed: Vec<&str> = [
                ("name", changes.name.is_some()),
                ("email", changes.email.is_some()),
                ("email_verified", changes.email_verified.is_some()),
            ]
            .into_iter()
            .filter_map(|(field, touched)| touched.then_some(field))
            .collect();
            let mut tx = self.store.begin().await?;
            tx.update_user(id, &changes, self.now())
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(_) => ServiceError::from(DomainError::Conflict(
                        "a user with this email already exists".into(),
                    )),
                    other => other.into(),
                })?
                .ok_or(DomainError::NotFound)?;
            let data = json!({"changed": changed, "by": "admin"});
            self.record_one(tx.as_mut(), EventType::UserUpdated, Some(id), None, data)
                .await?;
            tx.commit().await?;
            self.fanout.publish(&[Invalidation::User(id)]).await;
            tracing::info!(user_id = %id, "user edited by an admin");
        }
        match edit.active {
            Some(active) if active != current.active || !active => {
                self.set_user_active(id, active).await
            }
            _ => self.user(id).await,
        }
    }

    /// Erases the user: every session ends (`user_deleted`, in the revocation feed too, so
    /// its tokens die everywhere at once), then the user, its sessions, refresh tokens,
    /// identities and codes are deleted in the same transaction.
    pub async fn delete_user(&self, id: UserId) -> ServiceResult<()> {
        let now = self.now();
        let reason = RevokeReason::UserDeleted;
        let mut tx = self.store.begin().await?;
        if tx.lock_user(id).await?.is_none() {
            return Err(DomainError::NotFound.into());
        }
        let revoked = tx.revoke_user_sessions(id, None, reason, now).await?;
        tx.delete_user(id).await?;
        self.record_ended(tx.as_mut(), &revoked, Some(id), Some(id), reason, now)
            .await?;
        let data = json!({"sessions_ended": revoked.len()});
        self.record_one(tx.as_mut(), EventType::UserDeleted, Some(id), None, data)
            .await?;
        tx.commit().await?;
        self.fanout.publish(&[Invalidation::User(id)]).await;
        self.ended(&revoked).await;
        tracing::info!(user_id = %id, revoked = revoked.len(), "user erased");
        Ok(())
    }
}
