//! Audit events and webhook deliveries: recorded with their transaction, listed with
//! filters, claimed in order per subject under leases, finished, disabled, purged.

use uuid::Uuid;

use super::*;
use crate::{DeliveryClaim, DeliveryOutcome, EventQuery, NewEvent, StoredEvent};

fn new_event(
    kind: &str,
    at: DateTime<Utc>,
    user: Option<UserId>,
    session: Option<SessionId>,
    to: &[&str],
) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        kind: kind.to_owned(),
        occurred_at: at,
        user_id: user,
        session_id: session,
        data: serde_json::json!({"kind": kind, "nested": {"ü": [1, 2.5, null, "✓"]}}),
        deliver_to: to.iter().map(|s| (*s).to_owned()).collect(),
    }
}

async fn record(store: &dyn Store, events: &[NewEvent]) {
    let mut tx = store.begin().await.expect("begin");
    tx.record_events(events).await.expect("record_events");
    tx.commit().await.expect("commit");
}

async fn all_events(store: &dyn Store) -> Vec<StoredEvent> {
    store
        .events(&EventQuery {
            limit: 1000,
            ..EventQuery::default()
        })
        .await
        .expect("events")
}

fn claim_at(now: DateTime<Utc>, owner: &str) -> DeliveryClaim {
    DeliveryClaim {
        owner: owner.to_owned(),
        now,
        until: now + secs(30),
        limit: 100,
    }
}

/// Claimed deliveries as (endpoint, event kind), in the order the store gave them.
async fn claim(store: &dyn Store, now: DateTime<Utc>) -> Vec<(String, String, u32)> {
    store
        .claim_deliveries(&claim_at(now, "conformance"))
        .await
        .expect("claim")
        .into_iter()
        .map(|d| (d.endpoint, d.event.kind, d.attempts))
        .collect()
}

fn seq_of(events: &[StoredEvent], kind: &str) -> u64 {
    events.iter().find(|e| e.kind == kind).expect(kind).seq
}

/// Erasing a user takes the devices (IP addresses, user agents) out of its events and
/// leaves the rest of them, and everyone else's events, as they were.
pub async fn user_erasure_takes_the_devices_out_of_its_events(store: &dyn Store) {
    let ann = add_user(store, new_user(Some("ann.events@example.com"))).await;
    let bob = add_user(store, new_user(Some("bob.events@example.com"))).await;
    let device = serde_json::json!({"ip": "203.0.113.7", "user_agent": "Ann's phone"});
    let with_device = |kind: &str, user: UserId| NewEvent {
        data: serde_json::json!({"method": "pwd", "device": device}),
        ..new_event(kind, t0(), Some(user), None, &["hook"])
    };
    record(
        store,
        &[
            with_device("session.created", ann.id),
            new_event("session.ended", t0(), Some(ann.id), None, &[]),
            with_device("login.failed", bob.id),
        ],
    )
    .await;
    let mut tx = store.begin().await.expect("begin");
    assert!(tx.delete_user(ann.id).await.expect("delete"));
    tx.commit().await.expect("commit");

    let events = all_events(store).await;
    assert_eq!(events.len(), 3, "the events stay");
    assert_eq!(events[0].data, serde_json::json!({"method": "pwd"}));
    assert_eq!(events[0].user_id, Some(ann.id));
    assert_eq!(
        events[1].data,
        new_event("session.ended", t0(), None, None, &[]).data,
        "an event without a device is untouched"
    );
    assert_eq!(
        events[2].data,
        serde_json::json!({"method": "pwd", "device": device}),
        "another user's events keep theirs"
    );
}

/// Events read back exactly as recorded, in order, filtered by type, user, session and
/// cursor; a dropped transaction records nothing.
pub async fn events_round_trip_and_filter(store: &dyn Store) {
    let (ann, bob) = (UserId::new(), UserId::new());
    let s1 = SessionId::new();
    let written = vec![
        new_event("user.created", t0(), Some(ann), None, &[]),
        new_event("session.created", t0() + ms(1), Some(ann), Some(s1), &[]),
        new_event("login.failed", t0() + ms(2), None, None, &[]),
        new_event(
            "session.ended",
            t0() + secs(9) + ms(999),
            Some(ann),
            Some(s1),
            &[],
        ),
        new_event("user.created", t0() + secs(10), Some(bob), None, &[]),
    ];
    record(store, &written).await;
    {
        let mut tx = store.begin().await.expect("begin");
        let lost = new_event("user.deleted", t0(), Some(ann), None, &["a"]);
        tx.record_events(&[lost]).await.expect("record");
        // dropped without commit
    }
    let all = all_events(store).await;
    assert_eq!(all.len(), written.len(), "the dropped event is not there");
    for (stored, new) in all.iter().zip(&written) {
        assert_eq!(
            (
                stored.id,
                &stored.kind,
                stored.occurred_at,
                stored.user_id,
                stored.session_id,
                &stored.data
            ),
            (
                new.id,
                &new.kind,
                new.occurred_at,
                new.user_id,
                new.session_id,
                &new.data
            )
        );
    }
    assert!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "ordered by seq"
    );

    let query = |q: EventQuery| async move {
        store
            .events(&EventQuery { limit: 100, ..q })
            .await
            .expect("events")
            .into_iter()
            .map(|e| e.kind)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        query(EventQuery {
            kind: Some("user.created".into()),
            ..EventQuery::default()
        })
        .await,
        ["user.created", "user.created"]
    );
    assert_eq!(
        query(EventQuery {
            user_id: Some(ann),
            ..EventQuery::default()
        })
        .await,
        ["user.created", "session.created", "session.ended"]
    );
    assert_eq!(
        query(EventQuery {
            session_id: Some(s1),
            ..EventQuery::default()
        })
        .await,
        ["session.created", "session.ended"]
    );
    assert_eq!(
        query(EventQuery {
            after: all[2].seq,
            ..EventQuery::default()
        })
        .await,
        ["session.ended", "user.created"]
    );
    let page = store
        .events(&EventQuery {
            limit: 2,
            ..EventQuery::default()
        })
        .await
        .expect("events");
    assert_eq!(page.len(), 2, "limit");
    assert!(
        query(EventQuery {
            after: u64::MAX,
            ..EventQuery::default()
        })
        .await
        .is_empty(),
        "a cursor past the end"
    );
}

/// A delivery waits behind an earlier pending one of the same endpoint and subject; a
/// leased one is not claimed again until its lease ends; finishing releases it.
pub async fn deliveries_are_claimed_in_order_under_leases(store: &dyn Store) {
    let user = UserId::new();
    let (s1, s2) = (SessionId::new(), SessionId::new());
    record(
        store,
        &[
            new_event("s1.first", t0(), Some(user), Some(s1), &["a", "b"]),
            new_event("s1.second", t0() + ms(1), Some(user), Some(s1), &["a"]),
            new_event("s2.only", t0() + ms(2), Some(user), Some(s2), &["a"]),
            new_event("nobody", t0() + ms(3), None, None, &[]),
        ],
    )
    .await;
    let events = all_events(store).await;
    let now = t0() + secs(1);

    let mut first = claim(store, now).await;
    first.sort();
    assert_eq!(
        first,
        [
            ("a".to_owned(), "s1.first".to_owned(), 0),
            ("a".to_owned(), "s2.only".to_owned(), 0),
            ("b".to_owned(), "s1.first".to_owned(), 0),
        ],
        "s1.second waits behind s1.first at a"
    );
    assert!(claim(store, now).await.is_empty(), "all leased");

    let s1_first = seq_of(&events, "s1.first");
    store
        .finish_delivery("a", s1_first, &DeliveryOutcome::Delivered { at: now })
        .await
        .expect("finish");
    assert_eq!(
        claim(store, now).await,
        [("a".to_owned(), "s1.second".to_owned(), 0)],
        "next in order once the first is delivered"
    );

    // A retry is due at its time, with its attempt counted.
    let s2_only = seq_of(&events, "s2.only");
    let next_at = now + secs(60);
    store
        .finish_delivery(
            "a",
            s2_only,
            &DeliveryOutcome::Retry {
                next_at,
                error: "status 500".into(),
            },
        )
        .await
        .expect("finish");
    assert!(
        claim(store, now + secs(10)).await.is_empty(),
        "the retry is not due yet, the others are still leased"
    );
    // By then the leases of s1.second at a and s1.first at b (30 s) ran out as well, as
    // when the instance holding them crashed: they are claimed again.
    let mut again = claim(store, next_at).await;
    again.sort();
    assert_eq!(
        again,
        [
            ("a".to_owned(), "s1.second".to_owned(), 0),
            ("a".to_owned(), "s2.only".to_owned(), 1),
            ("b".to_owned(), "s1.first".to_owned(), 0),
        ]
    );

    // Failed and delivered ones are never claimed again.
    let later = next_at + secs(3600);
    store
        .finish_delivery(
            "a",
            s2_only,
            &DeliveryOutcome::Failed {
                at: later,
                error: "gave up".into(),
            },
        )
        .await
        .expect("finish");
    store
        .finish_delivery("b", s1_first, &DeliveryOutcome::Delivered { at: later })
        .await
        .expect("finish");
    store
        .finish_delivery(
            "a",
            seq_of(&events, "s1.second"),
            &DeliveryOutcome::Delivered { at: later },
        )
        .await
        .expect("finish");
    assert!(
        claim(store, later + secs(3600)).await.is_empty(),
        "nothing left"
    );
    assert!(store.webhook_backlog().await.expect("backlog").is_empty());
}

/// Disabling an endpoint ends its pending deliveries and is remembered by URL; the
/// backlog counts pending deliveries per endpoint with the oldest event's time.
pub async fn endpoints_are_disabled_and_backlogs_counted(store: &dyn Store) {
    let user = UserId::new();
    record(
        store,
        &[
            new_event("one", t0(), Some(user), None, &["gone", "kept"]),
            new_event("two", t0() + secs(5), Some(user), None, &["gone", "kept"]),
            new_event("three", t0() + secs(9), None, None, &["kept"]),
        ],
    )
    .await;
    let mut backlog = store.webhook_backlog().await.expect("backlog");
    backlog.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
    assert_eq!(
        backlog
            .iter()
            .map(|b| (b.endpoint.as_str(), b.pending, b.oldest))
            .collect::<Vec<_>>(),
        [("gone", 2, Some(t0())), ("kept", 3, Some(t0()))]
    );
    let ended = store
        .disable_endpoint("gone", "https://gone.example/hook", t0() + secs(10))
        .await
        .expect("disable");
    assert_eq!(ended, 2);
    assert_eq!(
        store.disabled_endpoints().await.expect("disabled"),
        [("gone".to_owned(), "https://gone.example/hook".to_owned())]
    );
    let claimed = claim(store, t0() + secs(20)).await;
    assert!(
        claimed.iter().all(|(endpoint, _, _)| endpoint == "kept"),
        "{claimed:?}"
    );
    assert_eq!(
        claimed.len(),
        2,
        "one per key: `one` (then `two` waits) and `three`"
    );
    // Disabling twice is harmless.
    store
        .disable_endpoint("gone", "https://gone.example/hook", t0() + secs(11))
        .await
        .expect("disable again");
}

/// Purging deletes, in batches, exactly the events that happened before the cut-off,
/// and their deliveries with them.
pub async fn purge_events_in_batches(store: &dyn Store) {
    let cutoff = t0() + days(30);
    record(
        store,
        &[
            new_event("old-1", t0(), None, None, &["a"]),
            new_event("old-2", t0() + secs(1), None, None, &["a"]),
            new_event("old-3", cutoff - ms(1), None, None, &[]),
            new_event("at-cutoff", cutoff, None, None, &["a"]),
            new_event("new", cutoff + secs(1), None, None, &[]),
        ],
    )
    .await;
    let mut counts = Vec::new();
    for _ in 0..10 {
        let n = store.purge_events(cutoff, 2).await.expect("purge");
        counts.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(counts, vec![2, 1, 0], "batches of at most batch_size");
    let left: Vec<String> = all_events(store)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(left, ["at-cutoff", "new"]);
    let backlog = store.webhook_backlog().await.expect("backlog");
    assert_eq!(backlog.len(), 1);
    assert_eq!(
        backlog[0].pending, 1,
        "the purged events' deliveries went with them"
    );
}

/// Instances claiming at once never lease the same delivery.
pub async fn concurrent_claims_never_share_a_delivery(store: Arc<dyn Store>) {
    let events: Vec<NewEvent> = (0..60)
        .map(|i| new_event(&format!("e{i}"), t0() + ms(i), None, None, &["a", "b"]))
        .collect();
    record(&*store, &events).await;
    let mut tasks = tokio::task::JoinSet::new();
    for owner in 0..6 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claim = DeliveryClaim {
                    limit: 7,
                    ..claim_at(t0() + secs(1), &format!("owner-{owner}"))
                };
                let got = store.claim_deliveries(&claim).await.expect("claim");
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|d| (d.endpoint, d.event.seq)));
                tokio::task::yield_now().await;
            }
            mine
        });
    }
    let mut all = Vec::new();
    while let Some(mine) = tasks.join_next().await {
        all.extend(mine.expect("claimer did not panic"));
    }
    let unique: std::collections::BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(unique.len(), all.len(), "no delivery was leased twice");
    assert_eq!(all.len(), 120, "every delivery was leased once");
}
