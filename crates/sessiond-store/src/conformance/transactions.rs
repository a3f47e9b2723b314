//! Transactions: rollback on drop, visibility after commit.

use super::*;

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
