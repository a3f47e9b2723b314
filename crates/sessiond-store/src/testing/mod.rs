//! Test support for this crate's and other crates' tests, behind the `testing` feature
//! (their dev-dependencies turn it on), so release builds leave it out.

pub mod postgres;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sessiond_core::jwt::SigningKey;
use sessiond_core::refresh::StoredRefreshToken;
use sessiond_core::{Email, Session, SessionId, TokenHash, User, UserId};

use sessiond_core::otp::OtpPurpose;

use crate::{
    Identity, LiveWindow, PurgeBefore, Store, StoreResult, Tx, UserCredentials, UserQuery,
};

/// A store that owns what must outlive it (its temporary folder, its test database) and
/// passes every call through. Field order is drop order: the store closes first.
pub struct OwnedStore<S, G> {
    store: S,
    guard: G,
}

impl<S, G> OwnedStore<S, G> {
    pub fn new(store: S, guard: G) -> Self {
        Self { store, guard }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn guard(&self) -> &G {
        &self.guard
    }
}

#[async_trait]
impl<S: Store, G: Send + Sync + 'static> Store for OwnedStore<S, G> {
    fn backend(&self) -> &'static str {
        self.store.backend()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.store.ping().await
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.store.migrate().await
    }

    async fn begin(&self) -> StoreResult<Box<dyn Tx>> {
        self.store.begin().await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.store.user_by_id(id).await
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserCredentials>> {
        self.store.user_by_email(email).await
    }

    async fn user_credentials(&self, id: UserId) -> StoreResult<Option<UserCredentials>> {
        self.store.user_credentials(id).await
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        self.store.list_users(query).await
    }

    async fn identities_of_user(&self, id: UserId) -> StoreResult<Vec<Identity>> {
        self.store.identities_of_user(id).await
    }

    async fn session_with_user(
        &self,
        id: SessionId,
    ) -> StoreResult<Option<(Session, Option<User>)>> {
        self.store.session_with_user(id).await
    }

    async fn ended_sessions_for_user(&self, user: UserId, limit: u32) -> StoreResult<Vec<Session>> {
        self.store.ended_sessions_for_user(user, limit).await
    }

    async fn live_sessions_for_user(
        &self,
        user: UserId,
        window: LiveWindow,
    ) -> StoreResult<Vec<Session>> {
        self.store.live_sessions_for_user(user, window).await
    }

    async fn session_data(&self, id: SessionId) -> StoreResult<Option<serde_json::Value>> {
        self.store.session_data(id).await
    }

    async fn touch_session(&self, id: SessionId, at: DateTime<Utc>) -> StoreResult<()> {
        self.store.touch_session(id, at).await
    }

    async fn refresh_token_by_hash(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<StoredRefreshToken>> {
        self.store.refresh_token_by_hash(hash).await
    }

    async fn refresh_token_is_rotated(
        &self,
        id: sessiond_core::RefreshTokenId,
    ) -> StoreResult<bool> {
        self.store.refresh_token_is_rotated(id).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        self.store.signing_keys().await
    }

    async fn revocations_after(
        &self,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<sessiond_core::revocation::Revocation>> {
        self.store.revocations_after(after, limit).await
    }

    async fn revocation_bounds(&self) -> StoreResult<sessiond_core::revocation::FeedBounds> {
        self.store.revocation_bounds().await
    }

    async fn live_revocations(
        &self,
        page: &crate::LivePage,
    ) -> StoreResult<Vec<sessiond_core::revocation::Revocation>> {
        self.store.live_revocations(page).await
    }

    async fn purge_revocations(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.store.purge_revocations(before).await
    }

    async fn purge_ended_sessions(&self, before: PurgeBefore) -> StoreResult<u64> {
        self.store.purge_ended_sessions(before).await
    }

    async fn latest_otp_challenge_at(
        &self,
        email: &str,
        purpose: OtpPurpose,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        self.store.latest_otp_challenge_at(email, purpose).await
    }

    async fn purge_otp_challenges(
        &self,
        before: DateTime<Utc>,
        batch_size: u32,
    ) -> StoreResult<u64> {
        self.store.purge_otp_challenges(before, batch_size).await
    }

    async fn purge_spent_tokens(&self, before: DateTime<Utc>, batch_size: u32) -> StoreResult<u64> {
        self.store.purge_spent_tokens(before, batch_size).await
    }

    async fn events(&self, query: &crate::EventQuery) -> StoreResult<Vec<crate::StoredEvent>> {
        self.store.events(query).await
    }

    async fn purge_events(&self, before: DateTime<Utc>, batch_size: u32) -> StoreResult<u64> {
        self.store.purge_events(before, batch_size).await
    }

    async fn claim_deliveries(
        &self,
        claim: &crate::DeliveryClaim,
    ) -> StoreResult<Vec<crate::Delivery>> {
        self.store.claim_deliveries(claim).await
    }

    async fn finish_delivery(
        &self,
        endpoint: &str,
        event_seq: u64,
        outcome: &crate::DeliveryOutcome,
    ) -> StoreResult<()> {
        self.store
            .finish_delivery(endpoint, event_seq, outcome)
            .await
    }

    async fn disable_endpoint(
        &self,
        endpoint: &str,
        url: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.store.disable_endpoint(endpoint, url, at).await
    }

    async fn disabled_endpoints(&self) -> StoreResult<Vec<(String, String)>> {
        self.store.disabled_endpoints().await
    }

    async fn webhook_backlog(&self) -> StoreResult<Vec<crate::WebhookBacklog>> {
        self.store.webhook_backlog().await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        self.store.count_users().await
    }

    async fn count_live_sessions(&self, window: LiveWindow) -> StoreResult<u64> {
        self.store.count_live_sessions(window).await
    }

    fn pool_stats(&self) -> Vec<crate::PoolStats> {
        self.store.pool_stats()
    }

    async fn unrevoked_sessions_ending(
        &self,
        by: crate::EndingBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Session>> {
        self.store
            .unrevoked_sessions_ending(by, from, to, limit)
            .await
    }
}
