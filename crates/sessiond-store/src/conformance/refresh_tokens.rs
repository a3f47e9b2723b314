//! Refresh tokens: records, locking with their session, conflicts, deletion.

use super::*;

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
    assert!(
        !store
            .refresh_token_is_rotated(first.id)
            .await
            .expect("rotated? (outside)"),
        "nobody else sees an uncommitted rotation"
    );
    tx.commit().await.expect("commit");
    assert!(
        store
            .refresh_token_is_rotated(first.id)
            .await
            .expect("rotated? (outside)")
    );
    assert!(
        !store
            .refresh_token_is_rotated(next.id)
            .await
            .expect("rotated? (outside)")
    );
    assert!(
        !store
            .refresh_token_is_rotated(RefreshTokenId::new())
            .await
            .expect("rotated? (outside, unknown)")
    );

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
