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
use sessiond_core::otp::{OtpChallenge, OtpCode};
use sessiond_core::refresh::StoredRefreshToken;
use sessiond_core::{
    AuthMethod, Device, Email, RefreshToken, RefreshTokenId, RevokeReason, Session, SessionId,
    TokenHash, User, UserId,
};

use crate::{
    LiveWindow, NewRefreshToken, NewSession, NewUser, PurgeBefore, Store, StoreError, UserProfile,
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
            ];
            shared: [
                concurrent_session_limit_is_atomic,
                concurrent_refresh_rotation_has_one_winner,
                concurrent_parent_and_child_refreshes_never_fail,
                concurrent_otp_consumption_has_one_winner,
            ];
        );
    };
    (@expand $factory:expr; by_ref: [$($by_ref:ident),* $(,)?]; shared: [$($shared:ident),* $(,)?];) => {
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

// ---------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------

/// `migrate` may run on every start: running it again changes nothing, and the store
/// answers `ping` and keeps working.
pub async fn migrate_is_idempotent(store: &dyn Store) {
    assert!(!store.backend().is_empty(), "backend has a name");
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    store.ping().await.expect("ping");

    let user = add_user(store, new_user(Some("migrate@example.com"))).await;
    store.migrate().await.expect("migrate with data present");
    store.ping().await.expect("ping after migrate");
    assert_eq!(
        store.user_by_id(user.id).await.expect("user_by_id"),
        Some(user)
    );
}

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

/// Users read back exactly as inserted, by id and by email (with the password hash), and
/// unknown users are `None`.
pub async fn users_round_trip(store: &dyn Store) {
    let new = new_user(Some("ann.lee@example.com"));
    let user = add_user(store, new_user_clone(&new)).await;
    assert_eq!(
        user,
        User {
            id: new.id,
            email: new.email.clone(),
            name: new.name.clone(),
            active: true,
            created_at: t0(),
            mobile: None,
            profile: None,
        },
        "insert_user returns the new user, active"
    );

    assert_eq!(
        store.user_by_id(new.id).await.expect("user_by_id"),
        Some(user.clone())
    );
    let creds = store
        .user_by_email(&email("  Ann.Lee@EXAMPLE.com "))
        .await
        .expect("user_by_email")
        .expect("found by normalised email");
    assert_eq!(creds.user, user);
    assert_eq!(creds.password_hash, new.password_hash);

    // Users without email (several may exist), name or password.
    let bare_a = add_user(store, new_user(None)).await;
    let bare_b = add_user(store, new_user(None)).await;
    for bare in [&bare_a, &bare_b] {
        let found = store.user_by_id(bare.id).await.expect("user_by_id");
        assert_eq!(found.as_ref(), Some(bare));
        let found = found.expect("present");
        assert_eq!(found.email, None);
        assert_eq!(found.name, None);
    }

    // An email without a password (e.g. an OTP-only account).
    let otp_only = NewUser {
        password_hash: None,
        ..new_user(Some("otp@example.com"))
    };
    let otp_user = add_user(store, otp_only).await;
    let creds = store
        .user_by_email(&email("otp@example.com"))
        .await
        .expect("user_by_email")
        .expect("found");
    assert_eq!(creds.user, otp_user);
    assert_eq!(creds.password_hash, None);

    assert_eq!(store.user_by_id(UserId::new()).await.expect("by id"), None);
    assert!(
        store
            .user_by_email(&email("nobody@example.com"))
            .await
            .expect("by email")
            .is_none()
    );

    // lock_user reads the same user inside a transaction.
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.lock_user(user.id).await.expect("lock_user"), Some(user));
    assert_eq!(tx.lock_user(UserId::new()).await.expect("lock_user"), None);
    drop(tx);
}

fn new_user_clone(new: &NewUser) -> NewUser {
    NewUser {
        id: new.id,
        email: new.email.clone(),
        name: new.name.clone(),
        password_hash: new.password_hash.clone(),
        created_at: new.created_at,
    }
}

/// A second user with the same email is a `Conflict`, and leaves the first alone.
pub async fn duplicate_email_is_a_conflict(store: &dyn Store) {
    let first = add_user(store, new_user(Some("dup@example.com"))).await;

    let mut tx = store.begin().await.expect("begin");
    let second = tx.insert_user(&new_user(Some("DUP@example.com"))).await;
    assert_conflict(second, "duplicate email");
    drop(tx);

    let creds = store
        .user_by_email(&email("dup@example.com"))
        .await
        .expect("user_by_email")
        .expect("first user still there");
    assert_eq!(creds.user, first);

    // The store is still writable after the failed transaction.
    add_user(store, new_user(Some("other@example.com"))).await;
}

/// `set_user_active` toggles the flag and returns the updated user; unknown id → `None`.
pub async fn set_user_active_toggles(store: &dyn Store) {
    let user = add_user(store, new_user(Some("toggle@example.com"))).await;
    let inactive = User {
        active: false,
        ..user.clone()
    };

    let mut tx = store.begin().await.expect("begin");
    let updated = tx
        .set_user_active(user.id, false, t0() + secs(1))
        .await
        .expect("deactivate");
    assert_eq!(updated.as_ref(), Some(&inactive));
    assert_eq!(
        tx.set_user_active(UserId::new(), false, t0() + secs(1))
            .await
            .expect("unknown user"),
        None
    );
    tx.commit().await.expect("commit");

    assert_eq!(
        store.user_by_id(user.id).await.expect("user_by_id"),
        Some(inactive.clone())
    );
    let creds = store
        .user_by_email(&email("toggle@example.com"))
        .await
        .expect("user_by_email")
        .expect("found");
    assert!(!creds.user.active);

    let mut tx = store.begin().await.expect("begin");
    let updated = tx
        .set_user_active(user.id, true, t0() + secs(2))
        .await
        .expect("reactivate");
    assert_eq!(updated.as_ref(), Some(&user));
    tx.commit().await.expect("commit");
    assert_eq!(
        store.user_by_id(user.id).await.expect("user_by_id"),
        Some(user)
    );
}

// ---------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------

/// Anonymous and bound sessions read back exactly as inserted (timestamps to the
/// millisecond, every device field, the auth method), with the bound session's user.
pub async fn sessions_round_trip(store: &dyn Store) {
    let user = add_user(store, new_user(Some("sessions@example.com"))).await;

    let anonymous = new_session(None, t0() + ms(1), t0() + days(1) + ms(999));
    let bound = NewSession {
        auth_method: AuthMethod::Exchange("rapido".to_owned()),
        device: Device {
            device_id: Some("device-7f3a".to_owned()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101".into()),
            ip: Some("2001:db8::1".to_owned()),
            label: Some("Ann's laptop — “work” ✓".to_owned()),
        },
        ..new_session(
            Some(user.id),
            t0() + secs(1) + ms(7),
            t0() + days(30) + ms(1),
        )
    };
    let admin = NewSession {
        auth_method: AuthMethod::Admin,
        device: Device {
            ip: Some("192.0.2.10".to_owned()),
            ..Device::default()
        },
        ..new_session(Some(user.id), t0() + ms(2), t0() + days(2))
    };
    add_sessions(store, &[&anonymous, &bound, &admin]).await;

    assert_eq!(
        store
            .session_with_user(anonymous.id)
            .await
            .expect("session_with_user"),
        Some((expected_session(&anonymous), None)),
        "anonymous session has no user"
    );
    let (found, found_user) = store
        .session_with_user(bound.id)
        .await
        .expect("session_with_user")
        .expect("bound session exists");
    assert_eq!(found, expected_session(&bound));
    assert_eq!(found_user.as_ref(), Some(&user));
    assert_eq!(
        found.created_at.timestamp_millis(),
        bound.created_at.timestamp_millis()
    );
    assert_eq!(
        found.expires_at.timestamp_millis(),
        bound.expires_at.timestamp_millis()
    );
    assert_eq!(
        store
            .session_with_user(admin.id)
            .await
            .expect("session_with_user"),
        Some((expected_session(&admin), Some(user.clone())))
    );
    assert_eq!(
        store
            .session_with_user(SessionId::new())
            .await
            .expect("session_with_user"),
        None
    );

    // lock_session reads the same inside a transaction.
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.lock_session(bound.id).await.expect("lock_session"),
        Some((expected_session(&bound), Some(user)))
    );
    assert_eq!(
        tx.lock_session(anonymous.id).await.expect("lock_session"),
        Some((expected_session(&anonymous), None))
    );
    assert_eq!(
        tx.lock_session(SessionId::new())
            .await
            .expect("lock_session"),
        None
    );
    drop(tx);
}

/// App data reads `{}` until set, then exactly what was stored (replaced, not merged);
/// unknown sessions have none and cannot be given any.
pub async fn session_data_round_trip(store: &dyn Store) {
    let plain = new_session(None, t0(), t0() + days(1));
    let with_data = NewSession {
        data: Some(serde_json::json!({ "cart": [1, 2, 3] })),
        ..new_session(None, t0(), t0() + days(1))
    };
    add_sessions(store, &[&plain, &with_data]).await;

    assert_eq!(
        store.session_data(plain.id).await.expect("session_data"),
        Some(serde_json::json!({}))
    );
    assert_eq!(
        store
            .session_data(with_data.id)
            .await
            .expect("session_data"),
        with_data.data
    );

    let replacement = serde_json::json!({
        "theme": "dark",
        "nested": { "list": [1, "ü", null, true, 2.5], "empty": {} },
    });
    let mut tx = store.begin().await.expect("begin");
    assert!(
        tx.set_session_data(plain.id, &replacement)
            .await
            .expect("set data")
    );
    assert!(
        tx.set_session_data(with_data.id, &replacement)
            .await
            .expect("set data")
    );
    assert!(
        !tx.set_session_data(SessionId::new(), &replacement)
            .await
            .expect("set data on unknown session"),
        "no such session"
    );
    tx.commit().await.expect("commit");

    assert_eq!(
        store.session_data(plain.id).await.expect("session_data"),
        Some(replacement.clone())
    );
    assert_eq!(
        store
            .session_data(with_data.id)
            .await
            .expect("session_data"),
        Some(replacement),
        "data is replaced, not merged"
    );
    assert_eq!(
        store
            .session_data(SessionId::new())
            .await
            .expect("session_data"),
        None
    );
}

/// Live sessions exclude revoked ones, ones at or past their absolute end, and ones whose
/// last activity is at or before the idle cut-off (as `SessionPolicy::end_reason` does);
/// the `Store` lists them newest first, a `Tx` oldest first, by creation time.
pub async fn live_sessions_exclude_ended_and_are_ordered(store: &dyn Store) {
    let user = add_user(store, new_user(Some("live@example.com"))).await;
    let other = add_user(store, new_user(Some("other@example.com"))).await;
    let u = Some(user.id);
    let now = t0() + days(10);
    let idle_cutoff = now - days(7);
    let window = LiveWindow { now, idle_cutoff };
    let far = now + days(20);

    // Created in an order that differs from both insertion order and id order.
    let b = new_session(u, t0() + days(5), far);
    let c = new_session(u, t0() + days(6), far);
    let a = new_session(u, t0() + days(4), far);
    let edge = new_session(u, idle_cutoff + ms(1), now + ms(1));
    let revived = new_session(u, t0() + days(1), far);
    let revoked = new_session(u, t0() + days(4), far);
    let ends_now = new_session(u, t0() + days(4), now);
    let ended = new_session(u, t0() + days(4), now - secs(1));
    let idle_at_cutoff = new_session(u, idle_cutoff, far);
    let idle = new_session(u, t0() + days(1), far);
    let others = new_session(Some(other.id), t0() + days(4), far);
    let anonymous = new_session(None, t0() + days(4), far);
    add_sessions(
        store,
        &[
            &b,
            &c,
            &revoked,
            &a,
            &ends_now,
            &ended,
            &idle_at_cutoff,
            &idle,
            &revived,
            &edge,
            &others,
            &anonymous,
        ],
    )
    .await;
    revoke(store, &[revoked.id], RevokeReason::Logout, t0() + days(5)).await;
    store
        .touch_session(revived.id, t0() + days(9))
        .await
        .expect("touch");

    let newest_first = store
        .live_sessions_for_user(user.id, window)
        .await
        .expect("live sessions");
    assert_eq!(
        ids(&newest_first),
        vec![c.id, b.id, a.id, edge.id, revived.id],
        "Store lists live sessions newest first"
    );
    assert_eq!(newest_first[0], expected_session(&c));

    let mut tx = store.begin().await.expect("begin");
    let oldest_first = tx
        .live_sessions_for_user(user.id, window)
        .await
        .expect("live sessions");
    assert_eq!(
        ids(&oldest_first),
        vec![revived.id, edge.id, a.id, b.id, c.id],
        "Tx lists live sessions oldest first"
    );
    assert_eq!(oldest_first[2], expected_session(&a));
    assert_eq!(
        oldest_first[0].last_active_at,
        t0() + days(9),
        "activity is reported"
    );
    drop(tx);

    assert_eq!(
        ids(&store
            .live_sessions_for_user(other.id, window)
            .await
            .expect("live sessions")),
        vec![others.id]
    );
    assert!(
        store
            .live_sessions_for_user(UserId::new(), window)
            .await
            .expect("live sessions")
            .is_empty()
    );
}

/// Activity only moves forward, through the `Store` and through a `Tx`.
pub async fn touch_never_moves_last_active_backwards(store: &dyn Store) {
    let user = add_user(store, new_user(Some("touch@example.com"))).await;
    let s = NewSession {
        device: Device {
            device_id: Some("d1".into()),
            ..Device::default()
        },
        ..new_session(Some(user.id), t0(), t0() + days(30))
    };
    let bystander = new_session(Some(user.id), t0(), t0() + days(30));
    add_sessions(store, &[&s, &bystander]).await;
    let mut expected = expected_session(&s);

    store
        .touch_session(s.id, t0() + secs(10))
        .await
        .expect("touch");
    expected.last_active_at = t0() + secs(10);
    assert_eq!(session(store, s.id).await, expected);

    store
        .touch_session(s.id, t0() + secs(5))
        .await
        .expect("touch earlier");
    assert_eq!(session(store, s.id).await, expected, "never backwards");
    store
        .touch_session(s.id, t0() + secs(10))
        .await
        .expect("touch same");
    assert_eq!(session(store, s.id).await, expected);
    store
        .touch_session(SessionId::new(), t0() + secs(10))
        .await
        .expect("touch unknown session is not an error");

    let mut tx = store.begin().await.expect("begin");
    tx.set_last_active(s.id, t0() + secs(20) + ms(1))
        .await
        .expect("set_last_active");
    expected.last_active_at = t0() + secs(20) + ms(1);
    let (seen, _) = tx
        .lock_session(s.id)
        .await
        .expect("lock_session")
        .expect("exists");
    assert_eq!(seen, expected, "a Tx reads its own writes");
    tx.set_last_active(s.id, t0() + secs(15))
        .await
        .expect("set_last_active earlier");
    tx.set_last_active(SessionId::new(), t0() + secs(15))
        .await
        .expect("set_last_active on unknown session is not an error");
    tx.commit().await.expect("commit");
    assert_eq!(session(store, s.id).await, expected, "never backwards");

    let mut tx = store.begin().await.expect("begin");
    tx.set_last_active(s.id, t0() + secs(19))
        .await
        .expect("set_last_active earlier");
    tx.commit().await.expect("commit");
    assert_eq!(session(store, s.id).await, expected, "never backwards");

    assert_eq!(
        session(store, bystander.id).await,
        expected_session(&bystander),
        "other sessions are untouched"
    );
}

/// Binding turns an anonymous session into a bound one with the new auth method.
pub async fn bind_session_upgrades_an_anonymous_session(store: &dyn Store) {
    let anonymous = NewSession {
        device: Device {
            device_id: Some("phone-1".into()),
            user_agent: Some("sessiond-test/1".into()),
            ip: Some("198.51.100.7".into()),
            label: None,
        },
        ..new_session(None, t0(), t0() + days(30))
    };
    add_sessions(store, &[&anonymous]).await;
    let user = add_user(store, new_user(Some("bind@example.com"))).await;
    let at = t0() + secs(60) + ms(5);

    let mut tx = store.begin().await.expect("begin");
    tx.bind_session(anonymous.id, user.id, &AuthMethod::Otp, at)
        .await
        .expect("bind_session");
    tx.commit().await.expect("commit");

    let expected = Session {
        user_id: Some(user.id),
        auth_method: AuthMethod::Otp,
        last_active_at: at,
        ..expected_session(&anonymous)
    };
    let (bound, bound_user) = store
        .session_with_user(anonymous.id)
        .await
        .expect("session_with_user")
        .expect("exists");
    assert_eq!(bound, expected);
    assert!(!bound.is_anonymous());
    assert_eq!(bound_user, Some(user.clone()));

    let live = store
        .live_sessions_for_user(
            user.id,
            LiveWindow {
                now: at,
                idle_cutoff: at - days(7),
            },
        )
        .await
        .expect("live sessions");
    assert_eq!(live, vec![expected]);
}

/// `revoke_sessions` revokes only sessions that are not revoked yet and returns exactly
/// those; the first revocation's time and reason stick.
pub async fn revoke_sessions_only_revokes_unrevoked(store: &dyn Store) {
    let user = add_user(store, new_user(Some("revoke@example.com"))).await;
    let s1 = new_session(Some(user.id), t0(), t0() + days(30));
    let s2 = new_session(Some(user.id), t0(), t0() + days(30));
    let s3 = new_session(Some(user.id), t0(), t0() + days(30));
    let untouched = new_session(Some(user.id), t0(), t0() + days(30));
    add_sessions(store, &[&s1, &s2, &s3, &untouched]).await;
    let first = t0() + secs(60) + ms(1);
    let second = t0() + secs(120) + ms(2);

    let mut tx = store.begin().await.expect("begin");
    let revoked = tx
        .revoke_sessions(&[s1.id, s2.id], RevokeReason::Logout, first)
        .await
        .expect("revoke");
    assert_eq!(sorted(revoked), sorted(vec![s1.id, s2.id]));
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    let revoked = tx
        .revoke_sessions(
            &[s2.id, s3.id, s3.id, SessionId::new()],
            RevokeReason::Admin,
            second,
        )
        .await
        .expect("revoke");
    assert_eq!(revoked, vec![s3.id], "only the unrevoked one, once");
    assert!(
        tx.revoke_sessions(&[], RevokeReason::Admin, second)
            .await
            .expect("revoke nothing")
            .is_empty()
    );
    tx.commit().await.expect("commit");

    for (s, at, reason) in [
        (&s1, first, RevokeReason::Logout),
        (&s2, first, RevokeReason::Logout),
        (&s3, second, RevokeReason::Admin),
    ] {
        let expected = Session {
            revoked_at: Some(at),
            revoked_reason: Some(reason),
            ..expected_session(s)
        };
        assert_eq!(session(store, s.id).await, expected);
    }
    assert_eq!(
        session(store, untouched.id).await,
        expected_session(&untouched)
    );
}

/// `revoke_user_sessions` revokes every unrevoked session of that user except `keep`, and
/// returns exactly those.
pub async fn revoke_user_sessions_respects_keep(store: &dyn Store) {
    let user = add_user(store, new_user(Some("everywhere@example.com"))).await;
    let other = add_user(store, new_user(Some("bystander@example.com"))).await;
    let u = Some(user.id);
    let already = new_session(u, t0(), t0() + days(30));
    let keep = new_session(u, t0(), t0() + days(30));
    let c = new_session(u, t0(), t0() + days(30));
    let d = new_session(u, t0() + secs(1), t0() + days(30));
    let others = new_session(Some(other.id), t0(), t0() + days(30));
    let anonymous = new_session(None, t0(), t0() + days(30));
    add_sessions(store, &[&already, &keep, &c, &d, &others, &anonymous]).await;
    let t1 = t0() + secs(10);
    let t2 = t0() + secs(20);
    let t3 = t0() + secs(30);
    revoke(store, &[already.id], RevokeReason::Logout, t1).await;

    let mut tx = store.begin().await.expect("begin");
    let revoked = tx
        .revoke_user_sessions(user.id, Some(keep.id), RevokeReason::RevokedOthers, t2)
        .await
        .expect("revoke others");
    assert_eq!(sorted(revoked), sorted(vec![c.id, d.id]));
    tx.commit().await.expect("commit");

    assert_eq!(session(store, keep.id).await, expected_session(&keep));
    for s in [&c, &d] {
        assert_eq!(
            session(store, s.id).await,
            Session {
                revoked_at: Some(t2),
                revoked_reason: Some(RevokeReason::RevokedOthers),
                ..expected_session(s)
            }
        );
    }

    let mut tx = store.begin().await.expect("begin");
    let revoked = tx
        .revoke_user_sessions(user.id, None, RevokeReason::UserDeactivated, t3)
        .await
        .expect("revoke all");
    assert_eq!(revoked, vec![keep.id]);
    let again = tx
        .revoke_user_sessions(user.id, None, RevokeReason::UserDeactivated, t3)
        .await
        .expect("revoke all again");
    assert!(again.is_empty(), "nothing left to revoke: {again:?}");
    tx.commit().await.expect("commit");

    assert_eq!(
        session(store, keep.id).await,
        Session {
            revoked_at: Some(t3),
            revoked_reason: Some(RevokeReason::UserDeactivated),
            ..expected_session(&keep)
        }
    );
    assert_eq!(
        session(store, already.id).await,
        Session {
            revoked_at: Some(t1),
            revoked_reason: Some(RevokeReason::Logout),
            ..expected_session(&already)
        },
        "an earlier revocation is kept"
    );
    assert_eq!(session(store, others.id).await, expected_session(&others));
    assert_eq!(
        session(store, anonymous.id).await,
        expected_session(&anonymous)
    );
}

// ---------------------------------------------------------------------------------------
// Refresh tokens
// ---------------------------------------------------------------------------------------

/// Tokens are found by hash, locked in a transaction, and rotation records when, the
/// successor and its sealed form.
pub async fn refresh_tokens_round_trip(store: &dyn Store) {
    let s = new_session(None, t0(), t0() + days(90));
    add_sessions(store, &[&s]).await;
    let (secret, first) = new_token(s.id, t0() + ms(3));
    add_tokens(store, &[&first]).await;

    assert_eq!(
        token_by_hash(store, &first.hash).await,
        Some(expected_token(&first))
    );
    assert_eq!(
        token_by_hash(store, &RefreshToken::generate().hash()).await,
        None
    );

    let rotated_at = t0() + secs(3600) + ms(9);
    let (next_secret, next) = new_token(s.id, rotated_at);
    let sealed = secret.seal_successor(&next_secret);

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.lock_refresh_token(&first.hash)
            .await
            .expect("lock_refresh_token"),
        Some(expected_token(&first))
    );
    assert_eq!(
        tx.lock_refresh_token(&RefreshToken::generate().hash())
            .await
            .expect("lock_refresh_token"),
        None
    );
    assert!(
        !tx.refresh_token_is_rotated(first.id)
            .await
            .expect("rotated?")
    );
    tx.rotate_refresh_token(first.id, &next, &sealed)
        .await
        .expect("rotate");
    assert!(
        tx.refresh_token_is_rotated(first.id)
            .await
            .expect("rotated?"),
        "a Tx reads its own writes"
    );
    assert!(
        !tx.refresh_token_is_rotated(next.id)
            .await
            .expect("rotated?")
    );
    assert!(
        !tx.refresh_token_is_rotated(RefreshTokenId::new())
            .await
            .expect("rotated? (unknown)")
    );
    tx.commit().await.expect("commit");

    let stored = token_by_hash(store, &first.hash)
        .await
        .expect("first token still stored");
    assert_eq!(
        stored,
        StoredRefreshToken {
            rotated_at: Some(rotated_at),
            successor_id: Some(next.id),
            successor_sealed: Some(sealed.to_vec()),
            ..expected_token(&first)
        }
    );
    let opened = secret
        .open_successor(stored.successor_sealed.as_deref().expect("sealed"))
        .expect("opens");
    assert_eq!(opened.hash(), next.hash, "sealed bytes round-trip exactly");
    assert_eq!(
        token_by_hash(store, &next.hash).await,
        Some(expected_token(&next))
    );
}

/// A refresh reads its token, the token's session and that session's user in one
/// locked read; rotation shows in it like in the token's own read.
pub async fn refresh_token_locks_with_its_session(store: &dyn Store) {
    let user = add_user(store, new_user(Some("refresher@example.com"))).await;
    let bound = new_session(Some(user.id), t0(), t0() + days(30));
    let anonymous = new_session(None, t0() + ms(1), t0() + days(1));
    add_sessions(store, &[&bound, &anonymous]).await;
    let (bound_secret, bound_token) = new_token(bound.id, t0() + ms(5));
    let (_, anonymous_token) = new_token(anonymous.id, t0() + ms(6));
    add_tokens(store, &[&bound_token, &anonymous_token]).await;

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.lock_refresh_token_and_session(&bound_token.hash)
            .await
            .expect("lock"),
        Some((
            expected_token(&bound_token),
            expected_session(&bound),
            Some(user.clone())
        ))
    );
    assert_eq!(
        tx.lock_refresh_token_and_session(&anonymous_token.hash)
            .await
            .expect("lock"),
        Some((
            expected_token(&anonymous_token),
            expected_session(&anonymous),
            None
        ))
    );
    assert_eq!(
        tx.lock_refresh_token_and_session(&RefreshToken::generate().hash())
            .await
            .expect("lock (unknown)"),
        None
    );
    let (next_secret, next) = new_token(bound.id, t0() + secs(60));
    let sealed = bound_secret.seal_successor(&next_secret);
    tx.rotate_refresh_token(bound_token.id, &next, &sealed)
        .await
        .expect("rotate");
    let (rotated, _, _) = tx
        .lock_refresh_token_and_session(&bound_token.hash)
        .await
        .expect("lock after rotation")
        .expect("still there");
    assert_eq!(
        rotated,
        StoredRefreshToken {
            rotated_at: Some(next.created_at),
            successor_id: Some(next.id),
            successor_sealed: Some(sealed.to_vec()),
            ..expected_token(&bound_token)
        }
    );
    tx.commit().await.expect("commit");
}

/// A second token with the same hash is a `Conflict`.
pub async fn duplicate_refresh_token_hash_is_a_conflict(store: &dyn Store) {
    let s = new_session(None, t0(), t0() + days(90));
    add_sessions(store, &[&s]).await;
    let (_, first) = new_token(s.id, t0());
    add_tokens(store, &[&first]).await;

    let mut tx = store.begin().await.expect("begin");
    let duplicate = NewRefreshToken {
        id: RefreshTokenId::new(),
        session_id: s.id,
        hash: first.hash,
        created_at: t0() + secs(1),
        expires_at: t0() + days(1),
    };
    assert_conflict(
        tx.insert_refresh_token(&duplicate).await,
        "duplicate token hash",
    );
    drop(tx);

    assert_eq!(
        token_by_hash(store, &first.hash).await,
        Some(expected_token(&first))
    );
}

/// `delete_refresh_tokens` drops every token of one session and no other.
pub async fn delete_refresh_tokens_only_touches_that_session(store: &dyn Store) {
    let s = new_session(None, t0(), t0() + days(90));
    let other = new_session(None, t0(), t0() + days(90));
    let empty = new_session(None, t0(), t0() + days(90));
    add_sessions(store, &[&s, &other, &empty]).await;
    let (_, a) = new_token(s.id, t0());
    let (_, b) = new_token(s.id, t0() + secs(1));
    let (_, kept) = new_token(other.id, t0());
    add_tokens(store, &[&a, &b, &kept]).await;

    let mut tx = store.begin().await.expect("begin");
    tx.delete_refresh_tokens(s.id).await.expect("delete");
    tx.delete_refresh_tokens(empty.id)
        .await
        .expect("delete none");
    assert_eq!(
        tx.lock_refresh_token(&a.hash).await.expect("lock"),
        None,
        "a Tx reads its own deletes"
    );
    tx.commit().await.expect("commit");

    assert_eq!(token_by_hash(store, &a.hash).await, None);
    assert_eq!(token_by_hash(store, &b.hash).await, None);
    assert_eq!(
        token_by_hash(store, &kept.hash).await,
        Some(expected_token(&kept))
    );
    assert_eq!(session(store, s.id).await, expected_session(&s));
}

// ---------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------

/// Writes are invisible outside their transaction until commit, and dropping the
/// transaction without commit undoes all of them.
pub async fn dropped_tx_rolls_back(store: &dyn Store) {
    let existing = add_user(store, new_user(Some("existing@example.com"))).await;
    let live = new_session(Some(existing.id), t0(), t0() + days(30));
    add_sessions(store, &[&live]).await;

    let user = new_user(Some("ghost@example.com"));
    let s = new_session(Some(user.id), t0(), t0() + days(30));
    let (_, token) = new_token(s.id, t0());
    let key = SigningKey::generate(t0()).expect("generate key");

    let mut tx = store.begin().await.expect("begin");
    tx.insert_user(&new_user_clone(&user))
        .await
        .expect("insert user");
    tx.insert_session(&s).await.expect("insert session");
    tx.insert_refresh_token(&token).await.expect("insert token");
    tx.insert_signing_key(&key).await.expect("insert key");
    let revoked = tx
        .revoke_sessions(&[live.id], RevokeReason::Admin, t0() + secs(1))
        .await
        .expect("revoke");
    assert_eq!(revoked, vec![live.id]);
    assert!(
        tx.set_user_active(existing.id, false, t0() + secs(1))
            .await
            .expect("deactivate")
            .is_some()
    );
    // Inside, the writes are visible...
    assert!(tx.lock_user(user.id).await.expect("lock_user").is_some());
    assert!(tx.lock_session(s.id).await.expect("lock_session").is_some());
    // ...outside, not yet.
    assert_eq!(store.user_by_id(user.id).await.expect("user_by_id"), None);
    assert_eq!(store.session_with_user(s.id).await.expect("session"), None);
    assert_eq!(token_by_hash(store, &token.hash).await, None);
    assert_eq!(session(store, live.id).await, expected_session(&live));
    drop(tx);

    assert_eq!(store.user_by_id(user.id).await.expect("user_by_id"), None);
    assert!(
        store
            .user_by_email(&email("ghost@example.com"))
            .await
            .expect("user_by_email")
            .is_none()
    );
    assert_eq!(store.session_with_user(s.id).await.expect("session"), None);
    assert_eq!(token_by_hash(store, &token.hash).await, None);
    assert!(
        store.signing_keys().await.expect("signing keys").is_empty(),
        "the key insert was rolled back"
    );
    assert_eq!(session(store, live.id).await, expected_session(&live));
    assert_eq!(
        store.user_by_id(existing.id).await.expect("user_by_id"),
        Some(existing)
    );

    // The store is usable afterwards, and the very same rows can be written again.
    let mut tx = store.begin().await.expect("begin after rollback");
    tx.insert_user(&user).await.expect("insert user again");
    tx.insert_session(&s).await.expect("insert session again");
    tx.insert_refresh_token(&token)
        .await
        .expect("insert token again");
    tx.commit().await.expect("commit");
    assert!(
        store
            .user_by_id(user.id)
            .await
            .expect("user_by_id")
            .is_some()
    );
}

/// Everything a committed transaction wrote is visible afterwards.
pub async fn committed_tx_is_visible(store: &dyn Store) {
    let new = new_user(Some("commit@example.com"));
    let s = NewSession {
        data: Some(serde_json::json!({ "k": "v" })),
        ..new_session(Some(new.id), t0(), t0() + days(30))
    };
    let (_, token) = new_token(s.id, t0());
    let key = SigningKey::generate(t0()).expect("generate key");

    let mut tx = store.begin().await.expect("begin");
    let user = tx.insert_user(&new).await.expect("insert user");
    tx.insert_session(&s).await.expect("insert session");
    tx.insert_refresh_token(&token).await.expect("insert token");
    tx.insert_signing_key(&key).await.expect("insert key");
    tx.commit().await.expect("commit");

    assert_eq!(
        store.user_by_id(user.id).await.expect("user_by_id"),
        Some(user.clone())
    );
    assert_eq!(
        store.session_with_user(s.id).await.expect("session"),
        Some((expected_session(&s), Some(user)))
    );
    assert_eq!(
        store.session_data(s.id).await.expect("data"),
        s.data.clone()
    );
    assert_eq!(
        token_by_hash(store, &token.hash).await,
        Some(expected_token(&token))
    );
    let keys = store.signing_keys().await.expect("signing keys");
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        vec![key.kid.as_str()]
    );
}

// ---------------------------------------------------------------------------------------
// Signing keys
// ---------------------------------------------------------------------------------------

/// Keys come back oldest first and intact; retiring marks every active key and counts
/// them.
pub async fn signing_keys_round_trip_and_retire(store: &dyn Store) {
    assert!(store.signing_keys().await.expect("signing keys").is_empty());

    let old = SigningKey::generate(t0()).expect("generate");
    let new = SigningKey::generate(t0() + secs(3600) + ms(1)).expect("generate");
    let mut tx = store.begin().await.expect("begin");
    // Newest first, so that insertion order cannot pass for age order.
    tx.insert_signing_key(&new).await.expect("insert new");
    tx.insert_signing_key(&old).await.expect("insert old");
    tx.commit().await.expect("commit");

    let keys = store.signing_keys().await.expect("signing keys");
    assert_eq!(keys.len(), 2);
    for (found, expected) in keys.iter().zip([&old, &new]) {
        assert_eq!(found.kid, expected.kid, "oldest first");
        assert_eq!(found.pkcs8, expected.pkcs8);
        assert_eq!(found.public_key, expected.public_key);
        assert_eq!(found.created_at, expected.created_at);
        assert_eq!(found.retired_at, None);
    }

    let first_retirement = t0() + secs(7200) + ms(2);
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.retire_signing_keys(first_retirement)
            .await
            .expect("retire"),
        2
    );
    tx.commit().await.expect("commit");
    let keys = store.signing_keys().await.expect("signing keys");
    assert_eq!(
        keys.iter().map(|k| k.retired_at).collect::<Vec<_>>(),
        vec![Some(first_retirement); 2]
    );

    let newest = SigningKey::generate(first_retirement).expect("generate");
    let second_retirement = t0() + secs(10_800) + ms(3);
    let mut tx = store.begin().await.expect("begin");
    tx.insert_signing_key(&newest).await.expect("insert newest");
    assert_eq!(
        tx.retire_signing_keys(second_retirement)
            .await
            .expect("retire"),
        1,
        "only the active key is retired"
    );
    assert_eq!(
        tx.retire_signing_keys(second_retirement)
            .await
            .expect("retire"),
        0
    );
    tx.commit().await.expect("commit");

    let keys = store.signing_keys().await.expect("signing keys");
    assert_eq!(
        keys.iter()
            .map(|k| (k.kid.as_str(), k.retired_at))
            .collect::<Vec<_>>(),
        vec![
            (old.kid.as_str(), Some(first_retirement)),
            (new.kid.as_str(), Some(first_retirement)),
            (newest.kid.as_str(), Some(second_retirement)),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Cleanup
// ---------------------------------------------------------------------------------------

/// Purging deletes, in batches of at most `batch_size`, exactly the sessions that ended
/// (revoked, expired, idle) strictly before the cut-offs, with their refresh tokens.
pub async fn purge_ended_sessions_in_batches(store: &dyn Store) {
    let user = add_user(store, new_user(Some("purge@example.com"))).await;
    let u = Some(user.id);
    let ended_before = t0() + days(30);
    let idle_before = t0() + days(20);
    let far = t0() + days(100);

    // Ended before the cut-offs, each by one rule only (activity after `idle_before`)...
    let revoked_long_ago = new_session(u, t0() + days(21), far);
    let expired_long_ago = new_session(u, t0() + days(21), t0() + days(29));
    let idle_long_ago = new_session(u, t0() + days(19), far);
    let anonymous_expired = new_session(None, t0() + days(21), t0() + days(29));
    // ...and by all three at once (deleted and counted once).
    let ended_every_way = new_session(u, t0(), t0() + days(2));
    let doomed = [
        &revoked_long_ago,
        &expired_long_ago,
        &idle_long_ago,
        &anonymous_expired,
        &ended_every_way,
    ];

    // Live, or ended too recently (the cut-offs are exclusive).
    let live = new_session(u, t0() + days(21), far);
    let revoked_recently = new_session(u, t0() + days(21), far);
    let revoked_at_cutoff = new_session(u, t0() + days(21), far);
    let expires_at_cutoff = new_session(u, t0() + days(21), ended_before);
    let idle_at_cutoff = new_session(u, idle_before, far);
    let kept = [
        &live,
        &revoked_recently,
        &revoked_at_cutoff,
        &expires_at_cutoff,
        &idle_at_cutoff,
    ];

    let all: Vec<&NewSession> = doomed.iter().chain(kept.iter()).copied().collect();
    add_sessions(store, &all).await;
    revoke(
        store,
        &[revoked_long_ago.id],
        RevokeReason::Logout,
        t0() + days(29),
    )
    .await;
    revoke(
        store,
        &[ended_every_way.id],
        RevokeReason::Admin,
        t0() + days(1),
    )
    .await;
    revoke(
        store,
        &[revoked_recently.id],
        RevokeReason::Logout,
        ended_before + secs(1),
    )
    .await;
    revoke(
        store,
        &[revoked_at_cutoff.id],
        RevokeReason::Logout,
        ended_before,
    )
    .await;

    let tokens: Vec<NewRefreshToken> = all.iter().map(|s| new_token(s.id, t0()).1).collect();
    add_tokens(store, &tokens.iter().collect::<Vec<_>>()).await;

    let before = PurgeBefore {
        ended_before,
        idle_before,
        batch_size: 2,
    };
    let mut counts = Vec::new();
    for _ in 0..10 {
        let n = store.purge_ended_sessions(before).await.expect("purge");
        counts.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(counts, vec![2, 2, 1, 0], "batches of at most batch_size");

    for s in doomed {
        assert_eq!(
            store.session_with_user(s.id).await.expect("session"),
            None,
            "ended session is purged"
        );
    }
    for s in kept {
        assert!(
            store
                .session_with_user(s.id)
                .await
                .expect("session")
                .is_some(),
            "session {} is kept",
            s.id
        );
    }
    for (s, token) in all.iter().zip(&tokens) {
        let found = token_by_hash(store, &token.hash).await;
        if doomed.iter().any(|d| d.id == s.id) {
            assert_eq!(found, None, "tokens go with their session");
        } else {
            assert_eq!(found, Some(expected_token(token)));
        }
    }
    assert_eq!(
        store.user_by_id(user.id).await.expect("user_by_id"),
        Some(user),
        "users are not purged"
    );
    assert_eq!(
        store.purge_ended_sessions(before).await.expect("purge"),
        0,
        "nothing left"
    );
}

// ---------------------------------------------------------------------------------------
// One-time-code challenges
// ---------------------------------------------------------------------------------------

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
        email: address.to_owned(),
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

/// Challenges read back exactly as inserted (every field, the code hash byte for byte,
/// the device with every field), and unknown ids are `None`.
pub async fn otp_challenges_round_trip(store: &dyn Store) {
    // Bytes that a text column or a lossy encoding would mangle.
    let mut raw = [0u8; 32];
    for (i, b) in raw.iter_mut().enumerate() {
        *b = u8::try_from(i * 8).expect("small").wrapping_add(0xf0);
    }
    raw[0] = 0x00;
    raw[31] = 0xff;
    let fresh = OtpChallenge {
        code_hash: TokenHash::from_bytes(raw),
        ..new_challenge(
            "ch-round-trip",
            "otp.user@example.com",
            t0() + ms(1),
            t0() + secs(600) + ms(999),
        )
    };
    let device = Device {
        device_id: Some("device-ü-7f3a".to_owned()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101".into()),
        ip: Some("2001:db8::1".to_owned()),
        label: Some("Ann's phone — “home” ✓ 📱".to_owned()),
    };
    // One stored mid-life: attempts already counted, consumed, and no device details.
    let spent = OtpChallenge {
        attempts: 3,
        consumed_at: Some(t0() + secs(30) + ms(7)),
        ..new_challenge(
            "ch-spent",
            "otp.user@example.com",
            t0() + ms(2),
            t0() + secs(600),
        )
    };

    let mut tx = store.begin().await.expect("begin");
    tx.insert_otp_challenge(&fresh, &device)
        .await
        .expect("insert fresh");
    tx.insert_otp_challenge(&spent, &Device::default())
        .await
        .expect("insert spent");
    assert_eq!(
        tx.lock_otp_challenge(&fresh.id).await.expect("lock"),
        Some((fresh.clone(), device.clone())),
        "a Tx reads its own writes"
    );
    tx.commit().await.expect("commit");

    let (found, found_device) = challenge(store, &fresh.id)
        .await
        .expect("the challenge exists");
    assert_eq!(found, fresh);
    assert_eq!(
        found.code_hash.as_bytes(),
        &raw,
        "code hash bytes round-trip"
    );
    assert_eq!(found.attempts, 0);
    assert_eq!(found.consumed_at, None);
    assert_eq!(
        found.created_at.timestamp_millis(),
        fresh.created_at.timestamp_millis()
    );
    assert_eq!(
        found.expires_at.timestamp_millis(),
        fresh.expires_at.timestamp_millis()
    );
    assert_eq!(
        found_device, device,
        "the device round-trips, unicode and all"
    );

    assert_eq!(
        challenge(store, &spent.id).await,
        Some((spent.clone(), Device::default()))
    );
    assert_eq!(challenge(store, "ch-unknown").await, None);
    assert_eq!(challenge(store, "").await, None);
}

/// Each `record_otp_failure` counts exactly one attempt; `consume_otp_challenge` sets
/// `consumed_at` once (a later consume keeps the first time); `delete_otp_challenge`
/// removes that challenge only. None of them fails on an unknown id.
pub async fn otp_challenge_attempts_consume_and_delete(store: &dyn Store) {
    let c = new_challenge("ch-lifecycle", "life@example.com", t0(), t0() + secs(600));
    let other = new_challenge(
        "ch-other",
        "life@example.com",
        t0() + secs(1),
        t0() + secs(600),
    );
    add_challenges(store, &[&c, &other]).await;

    let mut tx = store.begin().await.expect("begin");
    for expected in 1..=3 {
        tx.record_otp_failure(&c.id).await.expect("record failure");
        let (seen, _) = tx
            .lock_otp_challenge(&c.id)
            .await
            .expect("lock")
            .expect("exists");
        assert_eq!(seen.attempts, expected, "one attempt per failure");
    }
    tx.record_otp_failure("ch-unknown")
        .await
        .expect("record failure on an unknown challenge is not an error");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    tx.record_otp_failure(&c.id).await.expect("record failure");
    tx.commit().await.expect("commit");
    assert_eq!(
        challenge(store, &c.id).await,
        Some((
            OtpChallenge {
                attempts: 4,
                ..c.clone()
            },
            Device::default()
        )),
        "failures accumulate across transactions and change nothing else"
    );

    let first = t0() + secs(42) + ms(3);
    let mut tx = store.begin().await.expect("begin");
    tx.consume_otp_challenge(&c.id, first)
        .await
        .expect("consume");
    let (seen, _) = tx
        .lock_otp_challenge(&c.id)
        .await
        .expect("lock")
        .expect("exists");
    assert_eq!(seen.consumed_at, Some(first), "a Tx reads its own writes");
    tx.consume_otp_challenge("ch-unknown", first)
        .await
        .expect("consume an unknown challenge is not an error");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    tx.consume_otp_challenge(&c.id, first + secs(10))
        .await
        .expect("consume again");
    tx.commit().await.expect("commit");
    let consumed = OtpChallenge {
        attempts: 4,
        consumed_at: Some(first),
        ..c.clone()
    };
    assert_eq!(
        challenge(store, &c.id).await,
        Some((consumed, Device::default())),
        "the first consumption sticks"
    );
    assert_eq!(
        challenge(store, &other.id).await,
        Some((other.clone(), Device::default())),
        "other challenges are untouched"
    );

    let mut tx = store.begin().await.expect("begin");
    tx.delete_otp_challenge(&c.id).await.expect("delete");
    assert_eq!(
        tx.lock_otp_challenge(&c.id).await.expect("lock"),
        None,
        "a Tx reads its own deletes"
    );
    tx.delete_otp_challenge("ch-unknown")
        .await
        .expect("delete an unknown challenge is not an error");
    tx.commit().await.expect("commit");

    assert_eq!(challenge(store, &c.id).await, None);
    assert_eq!(
        challenge(store, &other.id).await,
        Some((other, Device::default()))
    );
}

/// Dropping a transaction undoes its challenge writes: inserts, failures, consumption
/// and deletes.
pub async fn otp_challenge_writes_roll_back(store: &dyn Store) {
    let existing = new_challenge(
        "ch-existing",
        "rollback@example.com",
        t0(),
        t0() + secs(600),
    );
    add_challenges(store, &[&existing]).await;
    let ghost = new_challenge(
        "ch-ghost",
        "ghost.otp@example.com",
        t0() + secs(1),
        t0() + secs(600),
    );
    let device = Device {
        ip: Some("192.0.2.1".into()),
        ..Device::default()
    };

    let mut tx = store.begin().await.expect("begin");
    tx.insert_otp_challenge(&ghost, &device)
        .await
        .expect("insert");
    tx.record_otp_failure(&existing.id).await.expect("failure");
    tx.consume_otp_challenge(&existing.id, t0() + secs(5))
        .await
        .expect("consume");
    assert!(
        tx.lock_otp_challenge(&ghost.id)
            .await
            .expect("lock")
            .is_some()
    );
    // Outside, nothing yet.
    assert_eq!(
        store
            .latest_otp_challenge_at("ghost.otp@example.com")
            .await
            .expect("latest"),
        None
    );
    drop(tx);

    assert_eq!(challenge(store, &ghost.id).await, None);
    assert_eq!(
        store
            .latest_otp_challenge_at("ghost.otp@example.com")
            .await
            .expect("latest"),
        None
    );
    assert_eq!(
        challenge(store, &existing.id).await,
        Some((existing.clone(), Device::default())),
        "failure and consumption were rolled back"
    );

    let mut tx = store.begin().await.expect("begin");
    tx.delete_otp_challenge(&existing.id).await.expect("delete");
    drop(tx);
    assert_eq!(
        challenge(store, &existing.id).await,
        Some((existing, Device::default())),
        "the delete was rolled back"
    );

    // The very same challenge can be written afterwards.
    let mut tx = store.begin().await.expect("begin after rollback");
    tx.insert_otp_challenge(&ghost, &device)
        .await
        .expect("insert again");
    tx.commit().await.expect("commit");
    assert_eq!(challenge(store, &ghost.id).await, Some((ghost, device)));
}

/// `latest_otp_challenge_at` is the newest creation time among that address's
/// challenges, whatever the insertion order, and ignores other addresses.
pub async fn latest_otp_challenge_is_per_address(store: &dyn Store) {
    assert_eq!(
        store
            .latest_otp_challenge_at("cooldown@example.com")
            .await
            .expect("latest"),
        None,
        "no challenge yet"
    );

    let newest = t0() + secs(5) + ms(3);
    let a_middle = new_challenge(
        "a-2",
        "cooldown@example.com",
        t0() + secs(2),
        t0() + secs(600),
    );
    let a_newest = new_challenge("a-3", "cooldown@example.com", newest, t0() + secs(300));
    let a_oldest = new_challenge("a-1", "cooldown@example.com", t0(), t0() + secs(900));
    let b_later = new_challenge(
        "b-1",
        "other@example.com",
        t0() + secs(10),
        t0() + secs(600),
    );
    // Inserted out of order, so insertion order cannot pass for age order.
    add_challenges(store, &[&a_middle, &a_newest, &b_later, &a_oldest]).await;

    assert_eq!(
        store
            .latest_otp_challenge_at("cooldown@example.com")
            .await
            .expect("latest"),
        Some(newest)
    );
    assert_eq!(
        store
            .latest_otp_challenge_at("other@example.com")
            .await
            .expect("latest"),
        Some(t0() + secs(10))
    );
    assert_eq!(
        store
            .latest_otp_challenge_at("nobody@example.com")
            .await
            .expect("latest"),
        None
    );

    let mut tx = store.begin().await.expect("begin");
    tx.delete_otp_challenge(&a_newest.id).await.expect("delete");
    tx.commit().await.expect("commit");
    assert_eq!(
        store
            .latest_otp_challenge_at("cooldown@example.com")
            .await
            .expect("latest"),
        Some(t0() + secs(2)),
        "a deleted challenge no longer counts"
    );
}

/// Purging deletes, in batches of at most `batch_size`, exactly the challenges that
/// expired strictly before the cut-off, consumed or not.
pub async fn purge_otp_challenges_in_batches(store: &dyn Store) {
    let cutoff = t0() + days(1);
    let doomed = [
        new_challenge("old-1", "purge@example.com", t0(), t0() + secs(600)),
        new_challenge(
            "old-2",
            "purge@example.com",
            t0() + secs(1),
            t0() + secs(601),
        ),
        new_challenge("old-3", "other@example.com", t0(), cutoff - ms(1)),
        new_challenge("old-4", "other@example.com", t0(), t0() + secs(60)),
        OtpChallenge {
            consumed_at: Some(t0() + secs(10)),
            attempts: 2,
            ..new_challenge("old-consumed", "purge@example.com", t0(), t0() + secs(600))
        },
    ];
    let kept = [
        new_challenge("at-cutoff", "purge@example.com", t0(), cutoff),
        new_challenge(
            "live",
            "purge@example.com",
            cutoff - secs(60),
            cutoff + secs(540),
        ),
        OtpChallenge {
            consumed_at: Some(cutoff - secs(1)),
            ..new_challenge(
                "live-consumed",
                "other@example.com",
                cutoff - secs(60),
                cutoff + ms(1),
            )
        },
    ];
    let all: Vec<&OtpChallenge> = doomed.iter().chain(kept.iter()).collect();
    add_challenges(store, &all).await;

    let mut counts = Vec::new();
    for _ in 0..10 {
        let n = store.purge_otp_challenges(cutoff, 2).await.expect("purge");
        counts.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(counts, vec![2, 2, 1, 0], "batches of at most batch_size");

    for c in &doomed {
        assert_eq!(challenge(store, &c.id).await, None, "{} is purged", c.id);
    }
    for c in &kept {
        assert_eq!(
            challenge(store, &c.id).await,
            Some((c.clone(), Device::default())),
            "{} is kept",
            c.id
        );
    }
    assert_eq!(
        store
            .purge_otp_challenges(cutoff, 100)
            .await
            .expect("purge"),
        0,
        "nothing left"
    );
    assert_eq!(
        store
            .purge_otp_challenges(cutoff + days(1), 100)
            .await
            .expect("purge"),
        3,
        "a later cut-off takes the rest"
    );
}

// ---------------------------------------------------------------------------------------
// Identities and profiles
// ---------------------------------------------------------------------------------------

/// An external identity resolves to its user once linked; the same (provider,
/// external id) cannot be linked twice, but the same external id under another provider
/// can, and one user may have several identities.
pub async fn identities_link_users(store: &dyn Store) {
    let ann = add_user(store, new_user(Some("ann@example.com"))).await;
    let bob = add_user(store, new_user(None)).await;
    let at = t0() + secs(1) + ms(1);

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.identity_user("rapido", "ext-1").await.expect("identity"),
        None,
        "not linked yet"
    );
    tx.insert_identity("rapido", "ext-1", ann.id, at)
        .await
        .expect("insert identity");
    assert_eq!(
        tx.identity_user("rapido", "ext-1").await.expect("identity"),
        Some(ann.id),
        "a Tx reads its own writes"
    );
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    assert_conflict(
        tx.insert_identity("rapido", "ext-1", bob.id, at).await,
        "the same identity twice",
    );
    drop(tx);
    let mut tx = store.begin().await.expect("begin");
    assert_conflict(
        tx.insert_identity("rapido", "ext-1", ann.id, at).await,
        "the same identity twice, same user",
    );
    drop(tx);

    let mut tx = store.begin().await.expect("begin");
    tx.insert_identity("partner", "ext-1", bob.id, at)
        .await
        .expect("same external id under another provider");
    tx.insert_identity("rapido", "ext-2", ann.id, at)
        .await
        .expect("a second identity of one user");
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.identity_user("rapido", "ext-1").await.expect("identity"),
        Some(ann.id),
        "the first link is kept"
    );
    assert_eq!(
        tx.identity_user("rapido", "ext-2").await.expect("identity"),
        Some(ann.id)
    );
    assert_eq!(
        tx.identity_user("partner", "ext-1")
            .await
            .expect("identity"),
        Some(bob.id)
    );
    assert_eq!(
        tx.identity_user("partner", "ext-2")
            .await
            .expect("identity"),
        None
    );
    assert_eq!(
        tx.identity_user("unknown", "ext-1")
            .await
            .expect("identity"),
        None
    );
    drop(tx);
}

/// `user_id_by_email` finds users by normalised address; `set_user_email` gives a user
/// a (new) address, which every reader then sees, and an address already taken is a
/// `Conflict` that changes nothing.
pub async fn user_emails_are_found_and_changed(store: &dyn Store) {
    let ann = add_user(store, new_user(Some("ann@example.com"))).await;
    let bare = add_user(store, new_user(None)).await;

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.user_id_by_email(&email("  ANN@Example.com "))
            .await
            .expect("by email"),
        Some(ann.id)
    );
    assert_eq!(
        tx.user_id_by_email(&email("nobody@example.com"))
            .await
            .expect("by email"),
        None
    );
    tx.set_user_email(bare.id, &email("New.Address@Example.com"))
        .await
        .expect("set email");
    assert_eq!(
        tx.user_id_by_email(&email("new.address@example.com"))
            .await
            .expect("by email"),
        Some(bare.id),
        "a Tx reads its own writes"
    );
    tx.commit().await.expect("commit");

    let with_email = User {
        email: Some(email("new.address@example.com")),
        ..bare.clone()
    };
    assert_eq!(
        store.user_by_id(bare.id).await.expect("user_by_id"),
        Some(with_email.clone())
    );
    let creds = store
        .user_by_email(&email("new.address@example.com"))
        .await
        .expect("user_by_email")
        .expect("found by its new address");
    assert_eq!(creds.user, with_email);

    // Changing an address frees the old one.
    let mut tx = store.begin().await.expect("begin");
    tx.set_user_email(ann.id, &email("ann.lee@example.com"))
        .await
        .expect("change email");
    assert_eq!(
        tx.user_id_by_email(&email("ann@example.com"))
            .await
            .expect("by email"),
        None
    );
    tx.commit().await.expect("commit");
    assert!(
        store
            .user_by_email(&email("ann@example.com"))
            .await
            .expect("user_by_email")
            .is_none()
    );
    let ann = User {
        email: Some(email("ann.lee@example.com")),
        ..ann
    };
    let creds = store
        .user_by_email(&email("ann.lee@example.com"))
        .await
        .expect("user_by_email")
        .expect("found");
    assert_eq!(creds.user, ann);
    assert_eq!(
        creds.password_hash,
        new_user(Some("x@example.com")).password_hash,
        "the password hash is kept"
    );

    let mut tx = store.begin().await.expect("begin");
    assert_conflict(
        tx.set_user_email(bare.id, &email("ANN.LEE@example.com"))
            .await,
        "an address already taken",
    );
    drop(tx);
    assert_eq!(
        store.user_by_id(bare.id).await.expect("user_by_id"),
        Some(with_email)
    );
    assert_eq!(
        store.user_by_id(ann.id).await.expect("user_by_id"),
        Some(ann)
    );
}

/// `update_user_profile` replaces name, mobile and profile JSON (`None` clears them),
/// leaves everything else, and returns the updated user; every reader of users returns
/// mobile and profile too.
pub async fn user_profiles_round_trip(store: &dyn Store) {
    let new = new_user(Some("profile@example.com"));
    let password_hash = new.password_hash.clone();
    let user = add_user(store, new).await;
    let bystander = add_user(store, new_user(Some("bystander@example.com"))).await;
    let s = new_session(Some(user.id), t0(), t0() + days(30));
    add_sessions(store, &[&s]).await;

    let profile = UserProfile {
        name: Some("Ann Müller-Lee ✓".to_owned()),
        mobile: Some("+44 7700 900123".to_owned()),
        profile: Some(serde_json::json!({
            "tier": "gold",
            "address": { "city": "Zürich", "lines": ["1 Main St", null], "geo": { "lat": 47.37, "lon": 8.54 } },
            "verified": true,
            "score": 12_345_678_901_i64,
            "tags": [],
            "nested": { "empty": {}, "list": [1, "ü", null, false, 2.5] },
        })),
    };
    let updated = User {
        name: profile.name.clone(),
        mobile: profile.mobile.clone(),
        profile: profile.profile.clone(),
        ..user.clone()
    };

    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.update_user_profile(user.id, &profile, t0() + secs(1))
            .await
            .expect("update profile"),
        Some(updated.clone()),
        "returns the updated user"
    );
    assert_eq!(
        tx.update_user_profile(UserId::new(), &profile, t0() + secs(1))
            .await
            .expect("update unknown user"),
        None
    );
    assert_eq!(
        tx.lock_user(user.id).await.expect("lock_user"),
        Some(updated.clone())
    );
    tx.commit().await.expect("commit");

    assert_readers_see(store, &updated, password_hash.as_deref(), s.id).await;
    assert_eq!(
        store.user_by_id(bystander.id).await.expect("user_by_id"),
        Some(bystander),
        "other users are untouched"
    );

    // Other writes to the user keep the profile.
    let mut tx = store.begin().await.expect("begin");
    let deactivated = tx
        .set_user_active(user.id, false, t0() + secs(2))
        .await
        .expect("deactivate");
    assert_eq!(
        deactivated,
        Some(User {
            active: false,
            ..updated.clone()
        })
    );
    let reactivated = tx
        .set_user_active(user.id, true, t0() + secs(3))
        .await
        .expect("reactivate");
    assert_eq!(reactivated, Some(updated.clone()));
    tx.commit().await.expect("commit");

    // A different profile replaces, not merges.
    let replacement = UserProfile {
        name: None,
        mobile: Some("+1 202 555 0100".to_owned()),
        profile: Some(serde_json::json!({ "tier": "silver" })),
    };
    let replaced = User {
        name: None,
        mobile: replacement.mobile.clone(),
        profile: replacement.profile.clone(),
        ..user.clone()
    };
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.update_user_profile(user.id, &replacement, t0() + secs(4))
            .await
            .expect("replace profile"),
        Some(replaced.clone())
    );
    tx.commit().await.expect("commit");
    assert_readers_see(store, &replaced, password_hash.as_deref(), s.id).await;

    // Nothing clears everything.
    let cleared = User {
        name: None,
        mobile: None,
        profile: None,
        ..user.clone()
    };
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(
        tx.update_user_profile(user.id, &UserProfile::default(), t0() + secs(5))
            .await
            .expect("clear profile"),
        Some(cleared.clone())
    );
    tx.commit().await.expect("commit");
    assert_readers_see(store, &cleared, password_hash.as_deref(), s.id).await;
}

/// `user_by_id`, `user_by_email` (with the password hash), `session_with_user` and
/// `lock_session` all return `expected`.
async fn assert_readers_see(
    store: &dyn Store,
    expected: &User,
    password_hash: Option<&str>,
    session_of_user: SessionId,
) {
    assert_eq!(
        store
            .user_by_id(expected.id)
            .await
            .expect("user_by_id")
            .as_ref(),
        Some(expected),
        "user_by_id"
    );
    let address = expected.email.as_ref().expect("the user has an email");
    let creds = store
        .user_by_email(address)
        .await
        .expect("user_by_email")
        .expect("found by email");
    assert_eq!(&creds.user, expected, "user_by_email");
    assert_eq!(creds.password_hash.as_deref(), password_hash);
    let (_, user) = store
        .session_with_user(session_of_user)
        .await
        .expect("session_with_user")
        .expect("the session exists");
    assert_eq!(user.as_ref(), Some(expected), "session_with_user");
    let mut tx = store.begin().await.expect("begin");
    let (_, user) = tx
        .lock_session(session_of_user)
        .await
        .expect("lock_session")
        .expect("the session exists");
    assert_eq!(user.as_ref(), Some(expected), "lock_session");
    drop(tx);
}

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

const CONTENDERS: usize = 20;

/// Concurrent "count live sessions, insert if under the limit" transactions (after
/// `lock_user`, as the session rules do) never overshoot the limit.
pub async fn concurrent_session_limit_is_atomic(store: Arc<dyn Store>) {
    const LIMIT: usize = 3;
    let user = add_user(&*store, new_user(Some("race@example.com")))
        .await
        .id;
    let window = LiveWindow {
        now: t0() + secs(1),
        idle_cutoff: t0() - days(7),
    };

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONTENDERS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut tx = store.begin().await.expect("begin");
            tx.lock_user(user)
                .await
                .expect("lock_user")
                .expect("user exists");
            let live = tx
                .live_sessions_for_user(user, window)
                .await
                .expect("live sessions");
            // Give every other contender a chance to run between the check and the set.
            tokio::task::yield_now().await;
            let inserted = live.len() < LIMIT;
            if inserted {
                let s = new_session(Some(user), t0(), t0() + days(30));
                tx.insert_session(&s).await.expect("insert session");
            }
            tx.commit().await.expect("commit");
            inserted
        });
    }
    let mut inserted = 0;
    while let Some(result) = tasks.join_next().await {
        if result.expect("contender did not panic") {
            inserted += 1;
        }
    }

    assert_eq!(inserted, LIMIT, "exactly LIMIT contenders inserted");
    let live = store
        .live_sessions_for_user(user, window)
        .await
        .expect("live sessions");
    assert_eq!(live.len(), LIMIT, "the limit holds: {live:?}");
}

/// Concurrent rotations of one refresh token (lock, check, rotate) have exactly one
/// winner, whose successor is recorded.
pub async fn concurrent_refresh_rotation_has_one_winner(store: Arc<dyn Store>) {
    let s = new_session(None, t0(), t0() + days(90));
    add_sessions(&*store, &[&s]).await;
    let (secret, token) = new_token(s.id, t0());
    add_tokens(&*store, &[&token]).await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONTENDERS {
        let store = Arc::clone(&store);
        let secret = secret.clone();
        tasks.spawn(async move {
            let mut tx = store.begin().await.expect("begin");
            let current = tx
                .lock_refresh_token(&secret.hash())
                .await
                .expect("lock_refresh_token")
                .expect("token exists");
            tokio::task::yield_now().await;
            if current.rotated_at.is_some() {
                return None;
            }
            let at = t0() + secs(60) + ms(i64::try_from(i).expect("small"));
            let (next_secret, next) = new_token(current.session_id, at);
            tx.rotate_refresh_token(current.id, &next, &secret.seal_successor(&next_secret))
                .await
                .expect("rotate");
            tx.commit().await.expect("commit");
            Some((next.id, at))
        });
    }
    let mut winners = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Some(win) = result.expect("contender did not panic") {
            winners.push(win);
        }
    }

    assert_eq!(winners.len(), 1, "exactly one rotation wins: {winners:?}");
    let (successor, at) = winners[0];
    let stored = token_by_hash(&*store, &token.hash)
        .await
        .expect("token exists");
    assert_eq!(stored.rotated_at, Some(at));
    assert_eq!(stored.successor_id, Some(successor));
}

/// How one presentation of a refresh token ended, in [`present_refresh_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presented {
    /// Rotated the live token, or replayed its successor within the grace window.
    Granted,
    /// A rotated token past its grace: the session is revoked.
    Reused,
    /// The session was already revoked when the presentation got its lock.
    Revoked,
}

/// A refresh as the service runs it (lock the token with its session, decide, then
/// rotate, replay the successor or revoke), in one transaction. Every store call must
/// succeed: a deadlock or serialisation failure here is a 5xx for a client.
async fn present_refresh_token(
    store: &dyn Store,
    secret: &RefreshToken,
    now: DateTime<Utc>,
) -> Presented {
    use sessiond_core::refresh::{RefreshDecision, decide};
    let mut tx = store.begin().await.expect("begin");
    let (token, session, _) = tx
        .lock_refresh_token_and_session(&secret.hash())
        .await
        .expect("lock_refresh_token_and_session")
        .expect("the token exists");
    if session.revoked_at.is_some() {
        return Presented::Revoked;
    }
    let successor_used = match token.successor_id {
        Some(id) => tx
            .refresh_token_is_rotated(id)
            .await
            .expect("refresh_token_is_rotated"),
        None => false,
    };
    let outcome = match decide(&token, successor_used, now, secs(30)) {
        RefreshDecision::Rotate => {
            let (next_secret, next) = new_token(session.id, now);
            tx.rotate_refresh_token(token.id, &next, &secret.seal_successor(&next_secret))
                .await
                .expect("rotate");
            Presented::Granted
        }
        RefreshDecision::ReplaySuccessor => {
            let successor = token
                .successor_sealed
                .as_deref()
                .and_then(|sealed| secret.open_successor(sealed))
                .expect("the successor opens with its parent");
            tx.lock_refresh_token(&successor.hash())
                .await
                .expect("lock the successor")
                .expect("the successor exists");
            Presented::Granted
        }
        RefreshDecision::Reuse => {
            tx.revoke_sessions(&[session.id], RevokeReason::RefreshTokenReused, now)
                .await
                .expect("revoke");
            Presented::Reused
        }
        RefreshDecision::Expired => panic!("no token in this test expires"),
    };
    tx.commit().await.expect("commit");
    outcome
}

/// The two-tabs race: one tab presents a token while another already presents its
/// successor, many times at once. Every presentation completes (no deadlock between the
/// parent's replay and the child's rotation, whatever the lock order), and the end state
/// is consistent: either one live chain (the child rotated exactly once, its successor
/// live) or the whole session revoked for reuse.
pub async fn concurrent_parent_and_child_refreshes_never_fail(store: Arc<dyn Store>) {
    const EACH: usize = 10;
    for round in 0..3 {
        let s = new_session(None, t0(), t0() + days(90));
        add_sessions(&*store, &[&s]).await;
        let (parent, parent_token) = new_token(s.id, t0());
        add_tokens(&*store, &[&parent_token]).await;
        let rotated_at = t0() + secs(1);
        assert_eq!(
            present_refresh_token(&*store, &parent, rotated_at).await,
            Presented::Granted
        );
        let child = parent
            .open_successor(
                token_by_hash(&*store, &parent_token.hash)
                    .await
                    .and_then(|t| t.successor_sealed)
                    .as_deref()
                    .expect("sealed successor"),
            )
            .expect("the successor opens");

        let now = rotated_at + secs(2);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..2 * EACH {
            let store = Arc::clone(&store);
            let secret = if i % 2 == 0 {
                parent.clone()
            } else {
                child.clone()
            };
            tasks.spawn(async move { present_refresh_token(&*store, &secret, now).await });
        }
        let mut outcomes = Vec::new();
        while let Some(result) = tasks.join_next().await {
            outcomes.push(result.expect("presentation completes without a store error"));
        }

        let ended = session(&*store, s.id).await;
        let child_stored = token_by_hash(&*store, &child.hash())
            .await
            .expect("the child exists");
        if ended.revoked_at.is_some() {
            assert_eq!(
                ended.revoked_reason,
                Some(RevokeReason::RefreshTokenReused),
                "round {round}"
            );
            assert!(
                outcomes.contains(&Presented::Reused),
                "round {round}: {outcomes:?}"
            );
        } else {
            assert!(
                outcomes.iter().all(|o| *o == Presented::Granted),
                "round {round}: {outcomes:?}"
            );
            let grandchild = child_stored
                .successor_id
                .expect("round {round}: the child rotated once");
            let grandchild_secret = child
                .open_successor(child_stored.successor_sealed.as_deref().expect("sealed"))
                .expect("the grandchild opens");
            let grandchild_stored = token_by_hash(&*store, &grandchild_secret.hash())
                .await
                .expect("the grandchild exists");
            assert_eq!(grandchild_stored.id, grandchild);
            assert_eq!(
                grandchild_stored.rotated_at, None,
                "round {round}: one live chain"
            );
        }
    }
}

/// Concurrent verifications of one challenge (lock, check, consume) have exactly one
/// winner, whose consumption time is recorded.
pub async fn concurrent_otp_consumption_has_one_winner(store: Arc<dyn Store>) {
    const OTP_CONTENDERS: usize = 10;
    let c = new_challenge("ch-race", "race.otp@example.com", t0(), t0() + secs(600));
    add_challenges(&*store, &[&c]).await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..OTP_CONTENDERS {
        let store = Arc::clone(&store);
        let id = c.id.clone();
        tasks.spawn(async move {
            let mut tx = store.begin().await.expect("begin");
            let (current, _) = tx
                .lock_otp_challenge(&id)
                .await
                .expect("lock_otp_challenge")
                .expect("challenge exists");
            tokio::task::yield_now().await;
            if current.consumed_at.is_some() {
                return None;
            }
            let at = t0() + secs(60) + ms(i64::try_from(i).expect("small"));
            tx.consume_otp_challenge(&id, at).await.expect("consume");
            tx.commit().await.expect("commit");
            Some(at)
        });
    }
    let mut winners = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Some(at) = result.expect("contender did not panic") {
            winners.push(at);
        }
    }

    assert_eq!(
        winners.len(),
        1,
        "exactly one consumption wins: {winners:?}"
    );
    let (stored, _) = challenge(&*store, &c.id).await.expect("challenge exists");
    assert_eq!(stored.consumed_at, Some(winners[0]));
    assert_eq!(stored.attempts, 0);
}

/// A request can be cancelled at any await point (its client went away), including in the
/// middle of opening a transaction. Whatever point that was, the store must stay writable:
/// no connection may go back to the pool still inside a transaction.
pub async fn cancelled_transactions_leave_the_store_writable(store: &dyn Store) {
    let mut cancelled = 0;
    for round in 0..300usize {
        // Poll the transaction a few times, letting the backend's own threads and
        // sockets make progress in between, then drop it: cancellation lands before,
        // during and after BEGIN, the insert and the commit.
        let polls = 1 + round % 12;
        let mut attempt = Box::pin(async {
            let mut tx = store.begin().await?;
            tx.insert_user(&new_user(None)).await?;
            tx.commit().await
        });
        // Every third round another transaction holds the store while the attempt starts,
        // so the attempt also waits (and is cancelled while waiting) on a backend whose
        // uncontended transactions never wait at all (SQLite's single writer).
        let mut blocker = if round % 3 == 0 {
            Some(store.begin().await.expect("a blocking transaction"))
        } else {
            None
        };
        let mut finished = false;
        for poll in 0..polls {
            let step =
                std::future::poll_fn(|cx| std::task::Poll::Ready(attempt.as_mut().poll(cx))).await;
            if step.is_ready() {
                finished = true;
                break;
            }
            if poll == polls / 2 {
                blocker.take();
            }
            for _ in 0..(round % 5) {
                tokio::task::yield_now().await;
            }
        }
        if !finished {
            cancelled += 1;
        }
        drop(attempt);
        drop(blocker);
    }
    assert!(
        cancelled > 0,
        "nothing was cancelled; the test proves nothing"
    );
    for _ in 0..3 {
        let user = new_user(Some("after.cancellations@example.com"));
        let id = user.id;
        let mut tx = tokio::time::timeout(std::time::Duration::from_secs(10), store.begin())
            .await
            .expect("begin does not hang")
            .expect("the store is still writable after cancelled transactions");
        tx.insert_user(&user).await.expect("insert");
        tx.commit().await.expect("commit");
        assert!(store.user_by_id(id).await.expect("read").is_some());
        let mut tx = store.begin().await.expect("begin");
        tx.set_user_active(id, false, t0()).await.expect("update");
        drop(tx);
        let mut cleanup = store
            .begin()
            .await
            .expect("begin after a dropped transaction");
        cleanup
            .set_user_active(id, true, t0())
            .await
            .expect("update");
        cleanup.commit().await.expect("commit");
        // Each round uses the same address: remove it for the next one.
        let mut tx = store.begin().await.expect("begin");
        tx.set_user_email(id, &email("moved.away@example.com"))
            .await
            .ok();
        tx.commit().await.expect("commit");
        let mut tx = store.begin().await.expect("begin");
        tx.set_user_email(id, &email(&format!("{}@example.com", id)))
            .await
            .expect("free the address");
        tx.commit().await.expect("commit");
    }
}
