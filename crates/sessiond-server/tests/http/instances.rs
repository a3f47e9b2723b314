//! Several instances on one PostgreSQL database: each caches session state, and a change
//! made through any instance reaches every other instance's cache at once.

use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::Method;
use serde_json::json;

/// Polls `check` until it answers 401 with `code`, returning how long that took.
async fn refused_within(app: &TestApp, token: &str, code: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let reply = app.whoami(token).await;
        if reply.status == 401 {
            reply.problem(401, code);
            return started.elapsed();
        }
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(
            started.elapsed() < limit,
            "still accepted after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_revocation_through_one_instance_reaches_the_others_cache() {
    let Some(a) = spawn_on(Backend::Postgres, |_| {}).await else {
        return;
    };
    let b = spawn_sibling(&a, |_| {}).await;
    a.wait_for_cache().await;
    b.wait_for_cache().await;

    let email = unique_email();
    let grant = a.register(&email).await;
    let token = access(&grant);
    // Warm A's cache, then revoke through B.
    a.whoami(&token).await.ok(200);
    a.whoami(&token).await.ok(200);
    b.post_as("/v1/logout", &token, json!({})).await.ok(204);
    let took = refused_within(&a, &token, "SESSION_REVOKED", Duration::from_secs(1)).await;
    eprintln!("revocation reached the other instance's cache in {took:?}");

    // Deactivation (a user-level change) travels the same way.
    let other = a.login(&email).await.ok(200);
    a.whoami(&access(&other)).await.ok(200);
    let user_id = grant["user"]["id"].as_str().unwrap();
    b.admin(
        Method::PATCH,
        &format!("/v1/admin/users/{user_id}"),
        Some(json!({"active": false})),
    )
    .await
    .ok(200);
    refused_within(
        &a,
        &access(&other),
        "SESSION_REVOKED",
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test]
async fn activity_seen_by_one_instance_keeps_the_session_alive_on_another() {
    let Some(a) = spawn_on(Backend::Postgres, |c| {
        c.idle_timeout = std::time::Duration::from_secs(600);
        c.activity_resolution = std::time::Duration::from_secs(60);
    })
    .await
    else {
        return;
    };
    let b = spawn_sibling(&a, |c| {
        c.idle_timeout = std::time::Duration::from_secs(600);
        c.activity_resolution = std::time::Duration::from_secs(60);
    })
    .await;
    a.wait_for_cache().await;
    let grant = a.register(&unique_email()).await;
    let token = access(&grant);
    a.whoami(&token).await.ok(200);
    // Only B sees the person for a while (writing activity once per minute)…
    for _ in 0..9 {
        a.clock.advance(chrono::Duration::seconds(61));
        b.whoami(&token).await.ok(200);
    }
    // …so A's cached state is stale by 9 minutes; A must ask storage, not call it idle.
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.clock.advance(chrono::Duration::seconds(120));
    a.whoami(&token).await.ok(200);
}
