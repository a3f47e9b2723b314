//! Accounts: password and profile changes, the admin's user list, erasure, and codes for
//! more than logins.

use super::*;

fn named(address: &str, name: Option<&str>) -> NewUser {
    NewUser {
        name: name.map(str::to_owned),
        ..new_user(Some(address))
    }
}

/// Password hashes are replaced, an admin's changes apply field by field (a taken email
/// is a conflict), and `user_credentials` reads a user with its hash by id.
pub async fn user_changes_apply_field_by_field(store: &dyn Store) {
    let ann = add_user(store, named("ann@example.com", Some("Ann"))).await;
    add_user(store, new_user(Some("taken@example.com"))).await;
    let at = t0() + secs(5);

    let mut tx = store.begin().await.expect("begin");
    assert!(
        tx.set_password_hash(ann.id, "$argon2id$new", at)
            .await
            .expect("set hash")
    );
    assert!(
        !tx.set_password_hash(UserId::new(), "$x", at)
            .await
            .expect("unknown user")
    );
    tx.commit().await.expect("commit");
    let credentials = store
        .user_credentials(ann.id)
        .await
        .expect("credentials")
        .expect("ann");
    assert_eq!(credentials.password_hash.as_deref(), Some("$argon2id$new"));
    assert_eq!(credentials.user, ann);
    assert!(
        store
            .user_credentials(UserId::new())
            .await
            .expect("read")
            .is_none()
    );

    let mut tx = store.begin().await.expect("begin");
    let verified = tx
        .update_user(
            ann.id,
            &UserChanges {
                email_verified: Some(true),
                ..Default::default()
            },
            at,
        )
        .await
        .expect("update")
        .expect("ann");
    assert!(verified.email_verified);
    assert_eq!(
        verified.name.as_deref(),
        Some("Ann"),
        "untouched fields stay"
    );
    let renamed = tx
        .update_user(
            ann.id,
            &UserChanges {
                name: Some(None),
                email: Some(email("ann.new@example.com")),
                ..Default::default()
            },
            at,
        )
        .await
        .expect("update")
        .expect("ann");
    assert_eq!(renamed.name, None, "Some(None) clears the name");
    assert_eq!(renamed.email, Some(email("ann.new@example.com")));
    assert!(renamed.email_verified);
    assert!(
        tx.update_user(UserId::new(), &UserChanges::default(), at)
            .await
            .expect("unknown")
            .is_none()
    );
    tx.commit().await.expect("commit");
    assert_eq!(store.user_by_id(ann.id).await.expect("read"), Some(renamed));

    let mut tx = store.begin().await.expect("begin");
    assert_conflict(
        tx.update_user(
            ann.id,
            &UserChanges {
                email: Some(email("taken@example.com")),
                ..Default::default()
            },
            at,
        )
        .await,
        "an email another user has",
    );
}

/// The list pages by id with every filter combined; the search is a case-folded prefix of
/// the email or the name, with LIKE's wildcards taken literally.
pub async fn users_are_listed_by_id_with_filters(store: &dyn Store) {
    let mut made = Vec::new();
    for (address, name) in [
        ("alice@example.com", Some("Zed Alpha")),
        ("bob@example.com", Some("Alice Brown")),
        ("carol@example.org", None),
        ("dave_x@example.com", Some("Dave")),
        ("davexy@example.com", Some("Dave Too")),
    ] {
        made.push(add_user(store, named(address, name)).await);
    }
    let mut tx = store.begin().await.expect("begin");
    tx.set_user_active(made[2].id, false, t0())
        .await
        .expect("deactivate");
    tx.commit().await.expect("commit");
    let mut by_id: Vec<UserId> = made.iter().map(|u| u.id).collect();
    by_id.sort_by_key(|id| id.to_string());

    let list = async |q: UserQuery| -> Vec<UserId> {
        store
            .list_users(&q)
            .await
            .expect("list")
            .into_iter()
            .map(|u| u.id)
            .collect()
    };
    let all = UserQuery {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(list(all.clone()).await, by_id, "everyone, by id");

    // Pages of two, each after the last id of the one before, cover everyone once.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = list(UserQuery {
            after,
            limit: 2,
            ..Default::default()
        })
        .await;
        if page.is_empty() {
            break;
        }
        after = page.last().copied();
        paged.extend(page);
    }
    assert_eq!(paged, by_id);

    let prefix = |p: &str| UserQuery {
        prefix: Some(p.to_owned()),
        ..all.clone()
    };
    let mut alice = vec![made[0].id, made[1].id];
    alice.sort_by_key(|id| id.to_string());
    assert_eq!(
        list(prefix("ali")).await,
        alice,
        "the email of one, the name of the other"
    );
    assert_eq!(
        list(prefix("zed")).await,
        vec![made[0].id],
        "names are folded"
    );
    assert_eq!(
        list(prefix("dave_")).await,
        vec![made[3].id],
        "`_` is no wildcard"
    );
    assert!(list(prefix("%")).await.is_empty(), "`%` is no wildcard");
    assert!(list(prefix("nobody")).await.is_empty());

    let exact = UserQuery {
        email: Some(email("carol@example.org")),
        ..all.clone()
    };
    assert_eq!(list(exact).await, vec![made[2].id]);
    let inactive = UserQuery {
        active: Some(false),
        ..all.clone()
    };
    assert_eq!(list(inactive).await, vec![made[2].id]);
    let active_daves = UserQuery {
        active: Some(true),
        prefix: Some("dave".into()),
        ..all.clone()
    };
    assert_eq!(list(active_daves).await.len(), 2);

    let mut tx = store.begin().await.expect("begin");
    tx.update_user(
        made[3].id,
        &UserChanges {
            email_verified: Some(true),
            ..UserChanges::default()
        },
        t0(),
    )
    .await
    .expect("verify")
    .expect("a user");
    tx.commit().await.expect("commit");
    let verified = |v: bool| UserQuery {
        email_verified: Some(v),
        ..all.clone()
    };
    assert_eq!(list(verified(true)).await, vec![made[3].id]);
    assert_eq!(list(verified(false)).await.len(), made.len() - 1);
}

/// Erasure takes the user's sessions, refresh tokens, identities and codes with it, and
/// nothing of anyone else's.
pub async fn delete_user_erases_everything_of_the_user(store: &dyn Store) {
    let ann = add_user(store, new_user(Some("ann@example.com"))).await;
    let bob = add_user(store, new_user(Some("bob@example.com"))).await;
    let ann_session = new_session(Some(ann.id), t0(), t0() + days(30));
    let bob_session = new_session(Some(bob.id), t0(), t0() + days(30));
    let ann_ended = new_session(Some(ann.id), t0(), t0() + days(30));
    add_sessions(store, &[&ann_session, &bob_session, &ann_ended]).await;
    revoke(store, &[ann_ended.id], RevokeReason::Logout, t0() + secs(5)).await;
    let (ann_secret, ann_token) = new_token(ann_session.id, t0());
    let (bob_secret, bob_token) = new_token(bob_session.id, t0());
    let mut tx = store.begin().await.expect("begin");
    tx.insert_refresh_token(&ann_token).await.expect("token");
    tx.insert_refresh_token(&bob_token).await.expect("token");
    tx.insert_identity("rapido", "ann-1", ann.id, t0())
        .await
        .expect("identity");
    tx.insert_identity("rapido", "bob-1", bob.id, t0())
        .await
        .expect("identity");
    let by_address = new_challenge("c-ann-mail", "ann@example.com", t0(), t0() + days(1));
    let by_user = OtpChallenge {
        purpose: OtpPurpose::ChangeEmail,
        user_id: Some(ann.id),
        ..new_challenge("c-ann-change", "ann.next@example.com", t0(), t0() + days(1))
    };
    let bobs = new_challenge("c-bob", "bob@example.com", t0(), t0() + days(1));
    for c in [&by_address, &by_user, &bobs] {
        tx.insert_otp_challenge(c, &Device::default())
            .await
            .expect("challenge");
    }
    tx.commit().await.expect("commit");

    let mut tx = store.begin().await.expect("begin");
    assert!(tx.delete_user(ann.id).await.expect("delete"));
    assert!(!tx.delete_user(UserId::new()).await.expect("unknown user"));
    tx.commit().await.expect("commit");

    assert_eq!(store.user_by_id(ann.id).await.expect("read"), None);
    for gone in [ann_session.id, ann_ended.id] {
        assert!(
            store.session_with_user(gone).await.expect("read").is_none(),
            "live and ended sessions both go"
        );
    }
    assert!(
        store
            .refresh_token_by_hash(&ann_secret.hash())
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        store
            .identities_of_user(ann.id)
            .await
            .expect("read")
            .is_empty()
    );
    let mut tx = store.begin().await.expect("begin");
    assert!(
        tx.lock_otp_challenge("c-ann-mail")
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        tx.lock_otp_challenge("c-ann-change")
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        tx.lock_otp_challenge("c-bob")
            .await
            .expect("read")
            .is_some()
    );
    assert_eq!(
        tx.identity_user("rapido", "bob-1").await.expect("read"),
        Some(bob.id)
    );
    drop(tx);
    assert!(
        store
            .session_with_user(bob_session.id)
            .await
            .expect("read")
            .is_some()
    );
    assert!(
        store
            .refresh_token_by_hash(&bob_secret.hash())
            .await
            .expect("read")
            .is_some()
    );
    // The address is free again.
    add_user(store, new_user(Some("ann@example.com"))).await;
}

/// Identities read back per user, oldest first.
pub async fn identities_of_a_user_are_listed(store: &dyn Store) {
    let ann = add_user(store, new_user(Some("ann@example.com"))).await;
    let mut tx = store.begin().await.expect("begin");
    tx.insert_identity("google", "g-1", ann.id, t0() + secs(2))
        .await
        .expect("identity");
    tx.insert_identity("apple", "a-1", ann.id, t0() + secs(1))
        .await
        .expect("identity");
    tx.commit().await.expect("commit");
    assert_eq!(
        store.identities_of_user(ann.id).await.expect("read"),
        vec![
            Identity {
                provider: "apple".into(),
                external_id: "a-1".into(),
                created_at: t0() + secs(1),
            },
            Identity {
                provider: "google".into(),
                external_id: "g-1".into(),
                created_at: t0() + secs(2),
            },
        ]
    );
}

/// A challenge keeps its purpose and user, and the resend cooldown's "latest" is per
/// address and purpose.
pub async fn challenges_keep_their_purpose(store: &dyn Store) {
    let ann = add_user(store, new_user(Some("ann@example.com"))).await;
    let reset = OtpChallenge {
        purpose: OtpPurpose::PasswordReset,
        user_id: Some(ann.id),
        ..new_challenge("c-reset", "ann@example.com", t0() + secs(3), t0() + days(1))
    };
    let login = new_challenge("c-login", "ann@example.com", t0() + secs(1), t0() + days(1));
    let mut tx = store.begin().await.expect("begin");
    tx.insert_otp_challenge(&reset, &Device::default())
        .await
        .expect("insert");
    tx.insert_otp_challenge(&login, &Device::default())
        .await
        .expect("insert");
    let (read, _) = tx
        .lock_otp_challenge("c-reset")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(read, reset);
    tx.commit().await.expect("commit");
    let latest = async |purpose| {
        store
            .latest_otp_challenge_at("ann@example.com", purpose)
            .await
            .expect("latest")
    };
    assert_eq!(latest(OtpPurpose::Login).await, Some(t0() + secs(1)));
    assert_eq!(
        latest(OtpPurpose::PasswordReset).await,
        Some(t0() + secs(3))
    );
    assert_eq!(latest(OtpPurpose::VerifyEmail).await, None);
}

/// A prefix that thousands of users share pages exactly as a rare one does: every match
/// once, in id order, and nothing else (backends may search such a prefix another way).
pub async fn a_broad_prefix_pages_every_match_in_order(store: &dyn Store) {
    let mut tx = store.begin().await.expect("begin");
    let mut expected = Vec::new();
    for i in 0..2100 {
        let new = NewUser {
            name: Some(format!("Broad {i}")),
            ..new_user(Some(&format!("u{i:05}@example.com")))
        };
        expected.push(tx.insert_user(&new).await.expect("insert").id);
    }
    for (i, address) in ["broadway@example.com", "zed@example.com"]
        .iter()
        .enumerate()
    {
        let new = NewUser {
            name: Some(format!("Other {i}")),
            ..new_user(Some(address))
        };
        let user = tx.insert_user(&new).await.expect("insert");
        if address.starts_with("broad") {
            expected.push(user.id);
        }
    }
    tx.commit().await.expect("commit");
    expected.sort_by_key(|id| id.to_string());

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_users(&UserQuery {
                prefix: Some("broad".into()),
                after,
                limit: 500,
                ..Default::default()
            })
            .await
            .expect("list");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|u| u.id);
        seen.extend(page.into_iter().map(|u| u.id));
    }
    assert_eq!(seen.len(), expected.len(), "every match, once");
    assert!(seen == expected, "in id order, nothing else");
}
