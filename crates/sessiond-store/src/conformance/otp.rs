//! One-time-code challenges: records, attempts, rollback, per-address lookups, cleanup.

use super::*;

// ---------------------------------------------------------------------------------------
// One-time-code challenges
// ---------------------------------------------------------------------------------------

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
            .latest_otp_challenge_at("ghost.otp@example.com", OtpPurpose::Login)
            .await
            .expect("latest"),
        None
    );
    drop(tx);

    assert_eq!(challenge(store, &ghost.id).await, None);
    assert_eq!(
        store
            .latest_otp_challenge_at("ghost.otp@example.com", OtpPurpose::Login)
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
            .latest_otp_challenge_at("cooldown@example.com", OtpPurpose::Login)
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
            .latest_otp_challenge_at("cooldown@example.com", OtpPurpose::Login)
            .await
            .expect("latest"),
        Some(newest)
    );
    assert_eq!(
        store
            .latest_otp_challenge_at("other@example.com", OtpPurpose::Login)
            .await
            .expect("latest"),
        Some(t0() + secs(10))
    );
    assert_eq!(
        store
            .latest_otp_challenge_at("nobody@example.com", OtpPurpose::Login)
            .await
            .expect("latest"),
        None
    );

    let mut tx = store.begin().await.expect("begin");
    tx.delete_otp_challenge(&a_newest.id).await.expect("delete");
    tx.commit().await.expect("commit");
    assert_eq!(
        store
            .latest_otp_challenge_at("cooldown@example.com", OtpPurpose::Login)
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
