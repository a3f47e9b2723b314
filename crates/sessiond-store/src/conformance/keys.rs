//! Signing keys: records, retirement.

use super::*;

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

    // A scheduled retirement is brought forward by an earlier one (an emergency
    // rotation), never pushed back by a later one.
    let earlier = second_retirement - secs(60);
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(tx.retire_signing_keys(earlier).await.expect("retire"), 1);
    tx.commit().await.expect("commit");
    let keys = store.signing_keys().await.expect("signing keys");
    assert_eq!(keys[2].retired_at, Some(earlier));
    assert_eq!(
        keys[0].retired_at,
        Some(first_retirement),
        "earlier ones stand"
    );
}
