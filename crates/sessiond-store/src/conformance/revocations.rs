//! The revocation feed: numbering, reading, snapshots and purges.

use sessiond_core::revocation::{FeedBounds, RevocationFact};

use super::*;
use crate::LivePage;

fn session_fact(max_exp: DateTime<Utc>) -> RevocationFact {
    RevocationFact::SessionRevoked {
        session: SessionId::new(),
        reason: RevokeReason::Logout,
        max_exp,
    }
}

async fn record(store: &dyn Store, facts: &[RevocationFact], at: DateTime<Utc>) {
    let mut tx = store.begin().await.expect("begin");
    tx.record_revocations(facts, at).await.expect("record");
    tx.commit().await.expect("commit");
}

/// Facts come back numbered 1, 2, 3… in the order written, intact; a rolled-back
/// transaction leaves no hole.
pub async fn revocations_are_numbered_without_gaps(store: &dyn Store) {
    assert_eq!(
        store.revocation_bounds().await.expect("bounds"),
        FeedBounds::default()
    );
    let user = UserId::new();
    let facts = vec![
        session_fact(t0() + secs(900)),
        RevocationFact::UserRevoked {
            user,
            reason: RevokeReason::UserDeactivated,
            not_before: t0(),
            max_exp: t0() + secs(900),
        },
        RevocationFact::KeysChanged {
            max_exp: t0() + secs(900),
        },
    ];
    record(store, &facts[..2], t0()).await;
    {
        let mut tx = store.begin().await.expect("begin");
        tx.record_revocations(&[session_fact(t0())], t0())
            .await
            .expect("record");
        // Dropped: rolled back.
    }
    record(store, &facts[2..], t0() + ms(5)).await;

    let read = store.revocations_after(0, 100).await.expect("after 0");
    assert_eq!(read.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        read.iter().map(|r| r.fact.clone()).collect::<Vec<_>>(),
        facts
    );
    assert_eq!(read[0].at, t0());
    assert_eq!(read[2].at, t0() + ms(5));
    assert_eq!(
        store.revocation_bounds().await.expect("bounds"),
        FeedBounds {
            purged_through: 0,
            latest: 3
        }
    );
    let page = store.revocations_after(1, 1).await.expect("after 1");
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
    assert!(
        store
            .revocations_after(3, 10)
            .await
            .expect("after 3")
            .is_empty()
    );
    assert!(
        store
            .revocations_after(u64::MAX, 10)
            .await
            .expect("after max")
            .is_empty()
    );
}

/// A snapshot holds the facts up to the given number whose tokens outlive `now`.
pub async fn live_revocations_are_those_still_alive(store: &dyn Store) {
    let facts = [
        session_fact(t0() + secs(10)),
        session_fact(t0() + secs(100)),
        session_fact(t0() + secs(100)),
    ];
    record(store, &facts, t0()).await;
    let page = |after, through, now, limit| LivePage {
        after,
        through,
        now,
        limit,
    };
    let live = store
        .live_revocations(&page(0, 2, t0() + secs(50), 100))
        .await
        .expect("live");
    assert_eq!(live.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
    assert_eq!(live[0].fact, facts[1]);
    let live = store
        .live_revocations(&page(0, 3, t0() + secs(5), 100))
        .await
        .expect("live");
    assert_eq!(live.len(), 3);
    // A page at a time, after the last one's number; never past `through`.
    let seqs = |live: Vec<sessiond_core::revocation::Revocation>| {
        live.iter().map(|r| r.seq).collect::<Vec<_>>()
    };
    let now = t0() + secs(5);
    let first = store
        .live_revocations(&page(0, 3, now, 2))
        .await
        .expect("page");
    assert_eq!(seqs(first), [1, 2]);
    let next = store
        .live_revocations(&page(2, 3, now, 2))
        .await
        .expect("page");
    assert_eq!(seqs(next), [3]);
    let capped = store
        .live_revocations(&page(1, 2, now, 10))
        .await
        .expect("page");
    assert_eq!(seqs(capped), [2]);
    assert!(
        store
            .live_revocations(&page(3, 3, now, 10))
            .await
            .expect("page")
            .is_empty()
    );
}

/// A purge forgets dead facts and moves `purged_through` past them; numbers are never
/// reused afterwards.
pub async fn purge_revocations_moves_the_watermark(store: &dyn Store) {
    record(
        store,
        &[
            session_fact(t0() + secs(10)),
            session_fact(t0() + secs(100)),
        ],
        t0(),
    )
    .await;
    assert_eq!(
        store
            .purge_revocations(t0() + secs(5))
            .await
            .expect("purge"),
        0
    );
    assert_eq!(
        store
            .purge_revocations(t0() + secs(50))
            .await
            .expect("purge"),
        1
    );
    assert_eq!(
        store.revocation_bounds().await.expect("bounds"),
        FeedBounds {
            purged_through: 1,
            latest: 2
        }
    );
    assert_eq!(
        store
            .purge_revocations(t0() + secs(500))
            .await
            .expect("purge"),
        1
    );
    record(store, &[session_fact(t0() + secs(1000))], t0() + secs(1)).await;
    let read = store.revocations_after(0, 10).await.expect("after 0");
    assert_eq!(read.iter().map(|r| r.seq).collect::<Vec<_>>(), [3]);
    assert_eq!(
        store.revocation_bounds().await.expect("bounds"),
        FeedBounds {
            purged_through: 2,
            latest: 3
        }
    );
}

/// Many transactions recording at once: numbers are gap-free, and a reader following
/// the feed never sees a number before every smaller one is visible (commit order), so
/// a cursor can never skip a fact.
pub async fn concurrent_revocations_are_seen_in_order(store: Arc<dyn Store>) {
    const WRITERS: usize = 12;
    const EACH: usize = 5;
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..EACH {
                    let mut tx = store.begin().await.expect("begin");
                    tx.record_revocations(&[session_fact(t0() + secs(900))], t0())
                        .await
                        .expect("record");
                    tokio::task::yield_now().await;
                    tx.commit().await.expect("commit");
                }
            })
        })
        .collect();
    let total = (WRITERS * EACH) as u64;
    let mut cursor = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while cursor < total {
        assert!(std::time::Instant::now() < deadline, "stuck at {cursor}");
        for revocation in store.revocations_after(cursor, 7).await.expect("follow") {
            assert_eq!(revocation.seq, cursor + 1, "the follower skipped a fact");
            cursor = revocation.seq;
        }
        tokio::task::yield_now().await;
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    assert_eq!(
        store.revocation_bounds().await.expect("bounds").latest,
        total
    );
}
