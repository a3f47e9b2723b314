//! Users: records, emails, activation, identities and profiles; and the schema.

use super::*;

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
            email_verified: false,
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
