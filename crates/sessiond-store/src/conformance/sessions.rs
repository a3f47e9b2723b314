//! Sessions: records, app data, liveness, activity, binding, revocation, cleanup.

use super::*;

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
    assert_eq!(
        store
            .count_live_sessions(window)
            .await
            .expect("count live sessions"),
        7,
        "the user's five, the other user's and the anonymous one"
    );
}

/// A sweep for sessions that ended by themselves finds the unrevoked ones whose absolute
/// end (or last activity) is in `[from, to)`, in that column's order, up to the limit.
pub async fn unrevoked_sessions_ending_range_over_their_column(store: &dyn Store) {
    let user = add_user(store, new_user(Some("ending@example.com"))).await;
    let u = Some(user.id);
    let end = |d: i64| t0() + days(d);
    // Created (and so last active) at t0 + n days; absolute ends at t0 + 10 + n days.
    let s1 = new_session(u, end(1), end(11));
    let s2 = new_session(None, end(2), end(12));
    let s3 = new_session(u, end(3), end(13));
    let revoked = new_session(u, end(2) + ms(1), end(12) + ms(1));
    add_sessions(store, &[&s3, &s1, &revoked, &s2]).await;
    revoke(store, &[revoked.id], RevokeReason::Logout, end(4)).await;
    store.touch_session(s1.id, end(5)).await.expect("touch");

    let by_end = store
        .unrevoked_sessions_ending(EndingBy::AbsoluteLifetime, end(11), end(13), 10)
        .await
        .expect("by absolute end");
    assert_eq!(
        ids(&by_end),
        vec![s1.id, s2.id],
        "from included, to excluded"
    );
    assert_eq!(by_end[1], expected_session(&s2));
    let first = store
        .unrevoked_sessions_ending(EndingBy::AbsoluteLifetime, end(0), end(20), 1)
        .await
        .expect("limited");
    assert_eq!(ids(&first), vec![s1.id]);

    let by_activity = store
        .unrevoked_sessions_ending(EndingBy::Idleness, end(0), end(10), 10)
        .await
        .expect("by last activity");
    assert_eq!(
        ids(&by_activity),
        vec![s2.id, s3.id, s1.id],
        "ordered by last activity (s1 was touched last), the revoked one left out"
    );
    assert!(
        store
            .unrevoked_sessions_ending(EndingBy::Idleness, end(6), end(10), 10)
            .await
            .expect("empty range")
            .is_empty()
    );
}

/// A user's ended sessions come latest end first, only theirs, only ended ones.
pub async fn ended_sessions_are_listed_latest_end_first(store: &dyn Store) {
    let user = add_user(store, new_user(Some("ended@example.com"))).await;
    let other = add_user(store, new_user(Some("ended.other@example.com"))).await;
    let u = Some(user.id);
    let far = t0() + days(30);
    let first = new_session(u, t0(), far);
    let second = new_session(u, t0() + secs(1), far);
    let live = new_session(u, t0() + secs(2), far);
    let others = new_session(Some(other.id), t0(), far);
    add_sessions(store, &[&first, &second, &live, &others]).await;
    // Ended in the other order than created.
    revoke(store, &[second.id], RevokeReason::Logout, t0() + days(1)).await;
    revoke(store, &[first.id], RevokeReason::Admin, t0() + days(2)).await;
    revoke(store, &[others.id], RevokeReason::Admin, t0() + days(3)).await;

    let ended = store
        .ended_sessions_for_user(user.id, 10)
        .await
        .expect("ended sessions");
    assert_eq!(ids(&ended), vec![first.id, second.id]);
    assert_eq!(ended[0].revoked_reason, Some(RevokeReason::Admin));
    assert_eq!(ended[0].revoked_at, Some(t0() + days(2)));
    let latest = store
        .ended_sessions_for_user(user.id, 1)
        .await
        .expect("limited");
    assert_eq!(ids(&latest), vec![first.id]);
    assert!(
        store
            .ended_sessions_for_user(UserId::new(), 10)
            .await
            .expect("unknown user")
            .is_empty()
    );
}

/// The pools report what they hold: at most their maximum, none at work while idle.
pub async fn pool_stats_are_bounded(store: &dyn Store) {
    store.ping().await.expect("ping");
    let pools = store.pool_stats();
    assert!(!pools.is_empty(), "every store has a pool");
    for pool in &pools {
        assert!(pool.max >= 1, "{pool:?}");
        assert!(pool.open <= pool.max, "{pool:?}");
        assert!(pool.in_use <= pool.open, "{pool:?}");
    }
    let tx = store.begin().await.expect("begin");
    let during = store.pool_stats();
    assert!(
        during.iter().any(|p| p.in_use >= 1),
        "an open transaction holds a connection: {during:?}"
    );
    drop(tx);
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

pub async fn users_and_live_sessions_are_counted(store: &dyn Store) {
    let now = t0() + days(10);
    let window = LiveWindow {
        now,
        idle_cutoff: now - days(7),
    };
    assert_eq!(store.count_users().await.expect("count users"), 0);
    assert_eq!(store.count_live_sessions(window).await.expect("count"), 0);
    let user = add_user(store, new_user(Some("counted@example.com"))).await;
    let inactive = add_user(store, new_user(Some("inactive@example.com"))).await;
    let mut tx = store.begin().await.expect("begin");
    tx.set_user_active(inactive.id, false, t0())
        .await
        .expect("deactivate");
    tx.commit().await.expect("commit");
    let far = now + days(20);
    let live = new_session(Some(user.id), t0() + days(5), far);
    let anonymous = new_session(None, t0() + days(6), far);
    let revoked = new_session(Some(user.id), t0() + days(5), far);
    let expired = new_session(Some(user.id), t0() + days(5), now);
    let idle = new_session(Some(user.id), t0() + days(1), far);
    add_sessions(store, &[&live, &anonymous, &revoked, &expired, &idle]).await;
    revoke(store, &[revoked.id], RevokeReason::Admin, t0() + days(6)).await;
    // Deactivated users count too: they are stored.
    assert_eq!(store.count_users().await.expect("count users"), 2);
    assert_eq!(
        store.count_live_sessions(window).await.expect("count"),
        2,
        "live: bound and anonymous; not revoked, expired or idle"
    );
}
