//! Single-use tokens: a fingerprint is spent once, a rolled-back spend is not a spend,
//! racing spends have one winner, and expired fingerprints are purged in batches.

use super::*;

async fn spend(store: &dyn Store, fingerprint: &str, expires_at: DateTime<Utc>) -> bool {
    let mut tx = store.begin().await.expect("begin");
    let first = tx
        .spend_token(fingerprint, expires_at)
        .await
        .expect("spend_token");
    tx.commit().await.expect("commit");
    first
}

/// The first spend of a fingerprint wins and every later one loses; a spend in a
/// transaction that is dropped leaves the token unspent.
pub async fn tokens_are_spent_once(store: &dyn Store) {
    let until = t0() + secs(3600);
    {
        let mut tx = store.begin().await.expect("begin");
        assert!(
            tx.spend_token("fp-rolled-back", until)
                .await
                .expect("spend")
        );
        // dropped without commit
    }
    assert!(
        spend(store, "fp-rolled-back", until).await,
        "a rolled-back spend is not a spend"
    );
    assert!(
        !spend(store, "fp-rolled-back", until).await,
        "the second spend loses"
    );
    assert!(
        spend(store, "fp-other", until).await,
        "fingerprints are apart"
    );
    let mut tx = store.begin().await.expect("begin");
    assert!(!tx.spend_token("fp-other", until).await.expect("spend"));
    assert!(
        !tx.spend_token("fp-other", until + secs(1))
            .await
            .expect("spend"),
        "a later expiry does not make a spent token new"
    );
    tx.commit().await.expect("commit");
}

/// Purging deletes, in batches of at most `batch_size`, exactly the fingerprints that
/// expired strictly before the cut-off; the others stay spent.
pub async fn purge_spent_tokens_in_batches(store: &dyn Store) {
    let cutoff = t0() + days(1);
    for (i, expires_at) in [t0(), t0() + secs(1), cutoff - ms(1)]
        .into_iter()
        .enumerate()
    {
        assert!(spend(store, &format!("old-{i}"), expires_at).await);
    }
    assert!(spend(store, "at-cutoff", cutoff).await);
    assert!(spend(store, "live", cutoff + secs(60)).await);

    let mut counts = Vec::new();
    for _ in 0..10 {
        let n = store.purge_spent_tokens(cutoff, 2).await.expect("purge");
        counts.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(counts, vec![2, 1, 0], "batches of at most batch_size");
    assert!(
        !spend(store, "at-cutoff", cutoff).await,
        "kept at the cut-off"
    );
    assert!(
        !spend(store, "live", cutoff + secs(60)).await,
        "kept while alive"
    );
    assert!(
        spend(store, "old-0", t0()).await,
        "a purged fingerprint is gone"
    );
}

/// Many transactions spending one fingerprint at once: exactly one wins.
pub async fn concurrent_token_spending_has_one_winner(store: Arc<dyn Store>) {
    const CONTENDERS: usize = 10;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONTENDERS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut tx = store.begin().await.expect("begin");
            let won = tx
                .spend_token("fp-race", t0() + secs(600))
                .await
                .expect("spend_token");
            tokio::task::yield_now().await;
            tx.commit().await.expect("commit");
            won
        });
    }
    let mut winners = 0;
    while let Some(result) = tasks.join_next().await {
        if result.expect("contender did not panic") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one spend wins");
}
