//! Concurrency: what must hold when many writers race, and cancelled transactions.

use super::*;

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
