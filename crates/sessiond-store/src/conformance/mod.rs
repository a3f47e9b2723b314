//! The conformance suite: what every [`Store`] backend must do, written once.
//!
//! Each public function here is one test. It takes a *fresh, migrated, empty* store and
//! panics if the backend gets something wrong. A backend runs the whole suite with
//! [`conformance_tests!`](crate::conformance_tests), which expands to one `#[tokio::test]`
//! per function:
//!
//! ```ignore
//! async fn fresh_store() -> std::sync::Arc<dyn sessiond_store::Store> {
//!     // open an empty database, run `migrate()`, return it
//! }
//!
//! sessiond_store::conformance_tests!(fresh_store());
//! ```
//!
//! The factory expression is evaluated once per test; it must produce a
//! `Box<dyn Store>` or an `Arc<dyn Store>`. The invoking crate needs `tokio` (with the
//! `macros` and `rt-multi-thread` features, as the workspace dependency has) among its
//! (dev-)dependencies, since the tests are `#[tokio::test]`s on a multi-threaded runtime.
//!
//! Every instant is a fixed, millisecond-precise timestamp, so equality assertions also
//! prove that timestamps round-trip at millisecond precision. Writes follow the protocol
//! the layers above use: a session count that decides a write is read after `lock_user`
//! in the same transaction, and a refresh token is read with `lock_refresh_token`.
//! No test holds a transaction while calling a [`Store`] method that writes, or while
//! beginning another transaction, since a backend may serialise writers.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sessiond_core::jwt::SigningKey;
use sessiond_core::otp::{OtpChallenge, OtpCode, OtpPurpose};
use sessiond_core::refresh::StoredRefreshToken;
use sessiond_core::{
    AuthMethod, Device, Email, RefreshToken, RefreshTokenId, RevokeReason, Session, SessionId,
    TokenHash, User, UserId,
};

use crate::{
    EndingBy, Identity, LiveWindow, NewRefreshToken, NewSession, NewUser, PurgeBefore, Store,
    StoreError, UserChanges, UserProfile, UserQuery,
};

/// Expands to one `#[tokio::test]` per conformance function, each on a store produced by
/// `$factory` (an async expression yielding a fresh, migrated `Box<dyn Store>` or
/// `Arc<dyn Store>`).
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::conformance_tests!(@expand $factory;
            by_ref: [
                migrate_is_idempotent,
                users_round_trip,
                duplicate_email_is_a_conflict,
                set_user_active_toggles,
                sessions_round_trip,
                session_data_round_trip,
                live_sessions_exclude_ended_and_are_ordered,
                pool_stats_are_bounded,
                ended_sessions_are_listed_latest_end_first,
                unrevoked_sessions_ending_range_over_their_column,
                users_and_live_sessions_are_counted,
                touch_never_moves_last_active_backwards,
                bind_session_upgrades_an_anonymous_session,
                revoke_sessions_only_revokes_unrevoked,
                revoke_user_sessions_respects_keep,
                refresh_tokens_round_trip,
                refresh_token_locks_with_its_session,
                duplicate_refresh_token_hash_is_a_conflict,
                delete_refresh_tokens_only_touches_that_session,
                dropped_tx_rolls_back,
                committed_tx_is_visible,
                signing_keys_round_trip_and_retire,
                purge_ended_sessions_in_batches,
                otp_challenges_round_trip,
                otp_challenge_attempts_consume_and_delete,
                otp_challenge_writes_roll_back,
                latest_otp_challenge_is_per_address,
                purge_otp_challenges_in_batches,
                identities_link_users,
                user_emails_are_found_and_changed,
                user_profiles_round_trip,
                cancelled_transactions_leave_the_store_writable,
                user_changes_apply_field_by_field,
                users_are_listed_by_id_with_filters,
                a_broad_prefix_pages_every_match_in_order,
                delete_user_erases_everything_of_the_user,
                user_erasure_takes_the_devices_out_of_its_events,
                identities_of_a_user_are_listed,
                challenges_keep_their_purpose,
                revocations_are_numbered_without_gaps,
                live_revocations_are_those_still_alive,
                purge_revocations_moves_the_watermark,
                tokens_are_spent_once,
                purge_spent_tokens_in_batches,
                events_round_trip_and_filter,
                deliveries_are_claimed_in_order_under_leases,
                endpoints_are_disabled_and_backlogs_counted,
                purge_events_in_batches,
            ];
            shared: [
                concurrent_session_limit_is_atomic,
                concurrent_refresh_rotation_has_one_winner,
                concurrent_parent_and_child_refreshes_never_fail,
                concurrent_otp_consumption_has_one_winner,
                concurrent_revocations_are_seen_in_order,
                concurrent_token_spending_has_one_winner,
                concurrent_claims_never_share_a_delivery,
            ];
        );
    };
    (@expand $factory:expr; by_ref: [$($by_ref:ident),* $(,)?]; shared: [$($shared:ident),* $(,)?];) => {
        #[test]
        fn every_conformance_function_is_registered() {
            $crate::conformance::assert_all_registered(&[
                $(stringify!($by_ref),)* $(stringify!($shared),)*
            ]);
        }
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $by_ref() {
                let store: ::std::sync::Arc<dyn $crate::Store> =
                    ::std::convert::Into::into($factory.await);
                $crate::conformance::$by_ref(&*store).await;
            }
        )*
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $shared() {
                let store: ::std::sync::Arc<dyn $crate::Store> =
                    ::std::convert::Into::into($factory.await);
                $crate::conformance::$shared(store).await;
            }
        )*
    };
}

mod accounts;
mod concurrency;
mod events;
mod keys;
mod otp;
mod refresh_tokens;
mod revocations;
mod sessions;
mod spent_tokens;
mod transactions;
mod users;

pub use users::*;

/// The aggregates' sources, read for [`assert_all_registered`].
const SOURCES: [&str; 11] = [
    include_str!("accounts.rs"),
    include_str!("concurrency.rs"),
    include_str!("events.rs"),
    include_str!("keys.rs"),
    include_str!("otp.rs"),
    include_str!("refresh_tokens.rs"),
    include_str!("revocations.rs"),
    include_str!("sessions.rs"),
    include_str!("spent_tokens.rs"),
    include_str!("transactions.rs"),
    include_str!("users.rs"),
];

/// Fails unless `registered` (what [`conformance_tests!`](crate::conformance_tests)
/// expands) names exactly the suite's public functions: a conformance function left out
/// of the macro would otherwise never run on any backend.
#[doc(hidden)]
pub fn assert_all_registered(registered: &[&str]) {
    let modules = include_str!("mod.rs")
        .lines()
        .filter(|l| l.starts_with("mod "))
        .count();
    assert_eq!(
        modules,
        SOURCES.len(),
        "every aggregate's source is in SOURCES"
    );
    let defined: std::collections::BTreeSet<&str> = SOURCES
        .iter()
        .flat_map(|source| source.lines())
        .filter_map(|line| line.strip_prefix("pub async fn "))
        .filter_map(|rest| rest.split('(').next())
        .collect();
    let registered: std::collections::BTreeSet<&str> = registered.iter().copied().collect();
    let missing: Vec<_> = defined.difference(&registered).collect();
    let unknown: Vec<_> = registered.difference(&defined).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "conformance functions not registered in conformance_tests!: {missing:?}; registered but not defined: {unknown:?}"
    );
}
pub use accounts::*;
pub use concurrency::*;
pub use events::*;
pub use keys::*;
pub use otp::*;
pub use refresh_tokens::*;
pub use revocations::*;
pub use sessions::*;
pub use spent_tokens::*;
pub use transactions::*;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// A fixed instant with a non-zero millisecond part.
fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_800_000_000_123).expect("timestamp in range")
}

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

fn email(raw: &str) -> Email {
    Email::parse(raw).expect("a valid email")
}

fn new_user(address: Option<&str>) -> NewUser {
    NewUser {
        id: UserId::new(),
        email: address.map(email),
        name: address.map(|_| "Ann Lee".to_owned()),
        password_hash: address
            .map(|_| "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned()),
        email_verified: false,
        created_at: t0(),
    }
}

async fn add_user(store: &dyn Store, new: NewUser) -> User {
    let mut tx = store.begin().await.expect("begin");
    let user = tx.insert_user(&new).await.expect("insert user");
    tx.commit().await.expect("commit");
    user
}

/// A session of `user` (anonymous if `None`), created at `created_at`, ending at
/// `expires_at`, with no device information and no data.
fn new_session(
    user: Option<UserId>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> NewSession {
    NewSession {
        id: SessionId::new(),
        user_id: user,
        auth_method: if user.is_some() {
            AuthMethod::Password
        } else {
            AuthMethod::Anonymous
        },
        created_at,
        expires_at,
        device: Device::default(),
        data: None,
    }
}

/// The session storage must return right after inserting `new`.
fn expected_session(new: &NewSession) -> Session {
    Session {
        id: new.id,
        user_id: new.user_id,
        auth_method: new.auth_method.clone(),
        created_at: new.created_at,
        last_active_at: new.created_at,
        expires_at: new.expires_at,
        revoked_at: None,
        revoked_reason: None,
        device: new.device.clone(),
    }
}

async fn add_sessions(store: &dyn Store, sessions: &[&NewSession]) {
    let mut tx = store.begin().await.expect("begin");
    for session in sessions {
        tx.insert_session(session).await.expect("insert session");
    }
    tx.commit().await.expect("commit");
}

async fn session(store: &dyn Store, id: SessionId) -> Session {
    store
        .session_with_user(id)
        .await
        .expect("session_with_user")
        .expect("the session exists")
        .0
}

async fn revoke(store: &dyn Store, ids: &[SessionId], reason: RevokeReason, at: DateTime<Utc>) {
    let mut tx = store.begin().await.expect("begin");
    let revoked = tx
        .revoke_sessions(ids, reason, at)
        .await
        .expect("revoke sessions");
    assert_eq!(sorted(revoked), sorted(ids.to_vec()));
    tx.commit().await.expect("commit");
}

fn new_token(session: SessionId, created_at: DateTime<Utc>) -> (RefreshToken, NewRefreshToken) {
    let secret = RefreshToken::generate();
    let token = NewRefreshToken {
        id: RefreshTokenId::new(),
        session_id: session,
        hash: secret.hash(),
        created_at,
        expires_at: created_at + days(30),
    };
    (secret, token)
}

/// The token storage must return right after inserting `new`.
fn expected_token(new: &NewRefreshToken) -> StoredRefreshToken {
    StoredRefreshToken {
        id: new.id,
        session_id: new.session_id,
        created_at: new.created_at,
        expires_at: new.expires_at,
        rotated_at: None,
        successor_id: None,
        successor_sealed: None,
    }
}

async fn add_tokens(store: &dyn Store, tokens: &[&NewRefreshToken]) {
    let mut tx = store.begin().await.expect("begin");
    for token in tokens {
        tx.insert_refresh_token(token)
            .await
            .expect("insert refresh token");
    }
    tx.commit().await.expect("commit");
}

async fn token_by_hash(store: &dyn Store, hash: &TokenHash) -> Option<StoredRefreshToken> {
    store
        .refresh_token_by_hash(hash)
        .await
        .expect("refresh_token_by_hash")
}

fn sorted(mut ids: Vec<SessionId>) -> Vec<SessionId> {
    ids.sort();
    ids
}

fn ids(sessions: &[Session]) -> Vec<SessionId> {
    sessions.iter().map(|s| s.id).collect()
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what}: expected StoreError::Conflict, got {other:?}"),
    }
}

fn new_user_clone(new: &NewUser) -> NewUser {
    NewUser {
        id: new.id,
        email: new.email.clone(),
        name: new.name.clone(),
        password_hash: new.password_hash.clone(),
        email_verified: new.email_verified,
        created_at: new.created_at,
    }
}

/// A fresh challenge for `address`: no attempts, not consumed, with a code hash bound to
/// its id.
fn new_challenge(
    id: &str,
    address: &str,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> OtpChallenge {
    OtpChallenge {
        id: id.to_owned(),
        purpose: OtpPurpose::Login,
        email: address.to_owned(),
        user_id: None,
        code_hash: OtpCode::parse("123456").expect("a code").hash(id),
        created_at,
        expires_at,
        attempts: 0,
        consumed_at: None,
    }
}

async fn add_challenges(store: &dyn Store, challenges: &[&OtpChallenge]) {
    let mut tx = store.begin().await.expect("begin");
    for challenge in challenges {
        tx.insert_otp_challenge(challenge, &Device::default())
            .await
            .expect("insert challenge");
    }
    tx.commit().await.expect("commit");
}

/// The challenge with this id and its device, read (and released) in a transaction of
/// its own.
async fn challenge(store: &dyn Store, id: &str) -> Option<(OtpChallenge, Device)> {
    let mut tx = store.begin().await.expect("begin");
    let found = tx.lock_otp_challenge(id).await.expect("lock_otp_challenge");
    drop(tx);
    found
}
