//! Rotation, the grace window for concurrent refresh, and theft detection.

use crate::common::*;
use chrono::Duration;
use serde_json::json;

backend_suite! {
    #[tokio::test]
    async fn every_refresh_rotates_the_pair() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        let first = refresh_of(&grant);
        app.clock.advance(Duration::seconds(5));
        let reply = app.refresh(&first).await;
        let next = reply.ok(200);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_ne!(refresh_of(&next), first);
        assert_ne!(access(&next), access(&grant));
        assert_eq!(session_id(&next), session_id(&grant));
        assert_eq!(next["user"]["id"], grant["user"]["id"]);
        assert_eq!(next["expires_in"], 900);
        // The rotated token's lifetime counts from now, capped by the session's end.
        let session_left = 30 * 24 * 3600 - 5;
        assert_eq!(next["refresh_expires_in"], session_left);
        app.whoami(&access(&next)).await.ok(200);
        app.refresh(&refresh_of(&next)).await.ok(200);
    }

    #[tokio::test]
    async fn two_concurrent_refreshes_of_one_token_both_succeed_with_the_same_successor() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        let token = refresh_of(&grant);
        let (a, b) = tokio::join!(app.refresh(&token), app.refresh(&token));
        let (a, b) = (a.ok(200), b.ok(200));
        assert_eq!(
            refresh_of(&a),
            refresh_of(&b),
            "both racers hold the one live token"
        );
        app.whoami(&access(&a)).await.ok(200);
        app.whoami(&access(&b)).await.ok(200);
        // The shared successor is the live token: it rotates normally.
        app.refresh(&refresh_of(&a)).await.ok(200);
    }

    #[tokio::test]
    async fn many_concurrent_refreshes_converge_on_one_token() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        let token = refresh_of(&grant);
        let replies = futures::future::join_all((0..10).map(|_| app.refresh(&token))).await;
        let successors: std::collections::HashSet<String> =
            replies.iter().map(|r| refresh_of(&r.ok(200))).collect();
        assert_eq!(successors.len(), 1);
    }

    #[tokio::test]
    async fn a_token_and_its_successor_presented_at_once_never_fail() {
        // Two tabs: one still holds the parent while the other already holds its
        // successor. On PostgreSQL this once deadlocked (503 after a second).
        let app = spawn_with(|c| c.rate_limits.enabled = false).await;
        for _ in 0..5 {
            let grant = app.register(&unique_email()).await;
            let parent = refresh_of(&grant);
            let child = refresh_of(&app.refresh(&parent).await.ok(200));
            let replies = futures::future::join_all(
                (0..20).map(|i| app.refresh(if i % 2 == 0 { &parent } else { &child })),
            )
            .await;
            let mut granted = std::collections::HashSet::new();
            for reply in &replies {
                match reply.status.as_u16() {
                    200 => {
                        granted.insert(refresh_of(&reply.json()));
                    }
                    401 => {
                        let body = reply.json();
                        match body["code"].as_str() {
                            Some("REFRESH_TOKEN_REUSED") => {}
                            // A racer that took its lock after the reuse was detected.
                            Some("SESSION_REVOKED") => {
                                assert_eq!(body["revoked_reason"], "refresh_token_reused")
                            }
                            _ => panic!("unexpected answer: {}", reply.text),
                        }
                    }
                    _ => panic!("unexpected answer: {} {}", reply.status, reply.text),
                }
            }
            let revoked = replies.iter().any(|r| r.status == 401);
            let whoami = app.whoami(&access(&grant)).await;
            if revoked {
                whoami.problem(401, "SESSION_REVOKED");
            } else {
                whoami.ok(200);
                // One live chain: the parent's racers got the child, the child's racers
                // its one successor, and that successor is the live token.
                assert!(granted.len() <= 2, "{granted:?}");
                let live: Vec<_> = granted.iter().filter(|t| **t != child).collect();
                assert_eq!(live.len(), 1, "{granted:?}");
                app.refresh(live[0]).await.ok(200);
            }
        }
    }

    #[tokio::test]
    async fn a_retry_within_the_grace_window_gets_the_same_successor() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        let parent = refresh_of(&grant);
        let first = app.refresh(&parent).await.ok(200);
        app.clock.advance(Duration::seconds(29));
        let retry = app.refresh(&parent).await.ok(200);
        assert_eq!(refresh_of(&retry), refresh_of(&first));
        let validated = app.validate(&parent).await;
        assert_eq!(validated["valid"], true);
    }

    #[tokio::test]
    async fn reuse_after_the_grace_window_revokes_the_whole_session() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        let parent = refresh_of(&grant);
        let child = app.refresh(&parent).await.ok(200);
        app.clock.advance(Duration::seconds(30));

        let reused = app
            .refresh(&parent)
            .await
            .problem(401, "REFRESH_TOKEN_REUSED");
        assert!(reused["detail"].as_str().is_some());

        // The session is dead: its newest refresh token and every access token.
        app.refresh(&refresh_of(&child))
            .await
            .problem(401, "SESSION_REVOKED");
        for token in [access(&grant), access(&child)] {
            let body = app.whoami(&token).await.problem(401, "SESSION_REVOKED");
            assert_eq!(body["revoked_reason"], "refresh_token_reused");
            assert_eq!(app.introspect(&token).await, json!({"active": false}));
            let v = app.validate(&token).await;
            assert_eq!(v["valid"], false);
            assert_eq!(v["reason"], "SESSION_REVOKED");
            assert_eq!(v["revoked_reason"], "refresh_token_reused");
        }
    }

    #[tokio::test]
    async fn grace_ends_as_soon_as_the_successor_is_used() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        let parent = refresh_of(&grant);
        let child = app.refresh(&parent).await.ok(200);
        app.refresh(&refresh_of(&child)).await.ok(200);
        app.clock.advance(Duration::seconds(1));
        app.refresh(&parent)
            .await
            .problem(401, "REFRESH_TOKEN_REUSED");
    }

    #[tokio::test]
    async fn validate_reports_without_changing_anything() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        let parent = refresh_of(&grant);
        let v = app.validate(&parent).await;
        assert_eq!(v["valid"], true);
        assert_eq!(v["token_type"], "refresh");
        assert_eq!(v["session_id"], grant["session"]["id"]);
        assert_eq!(v["user_id"], grant["user"]["id"]);

        let child = app.refresh(&parent).await.ok(200);
        app.clock.advance(Duration::seconds(31));
        // Validation sees the reuse but does not act on it.
        assert_eq!(
            app.validate(&parent).await["reason"],
            "REFRESH_TOKEN_REUSED"
        );
        app.refresh(&refresh_of(&child)).await.ok(200);

        let v = app.validate(&access(&grant)).await;
        assert_eq!(v["valid"], true);
        assert_eq!(v["token_type"], "access");
        assert!(v["expires_at"].as_str().is_some());
    }

    #[tokio::test]
    async fn refresh_tokens_expire_with_their_ttl() {
        let app = spawn_with(|c| {
            c.refresh_token_ttl = std::time::Duration::from_secs(3600);
        })
        .await;
        let grant = app.register(&unique_email()).await;
        assert_eq!(grant["refresh_expires_in"], 3600);
        app.clock.advance(Duration::seconds(3600));
        app.refresh(&refresh_of(&grant))
            .await
            .problem(401, "REFRESH_TOKEN_EXPIRED");
        assert_eq!(
            app.validate(&refresh_of(&grant)).await["reason"],
            "REFRESH_TOKEN_EXPIRED"
        );
    }

    #[tokio::test]
    async fn unknown_and_malformed_refresh_tokens_are_invalid() {
        let app = spawn_app().await;
        for token in [
            "",
            "x",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &"A".repeat(5000),
        ] {
            app.refresh(token)
                .await
                .problem(401, "REFRESH_TOKEN_INVALID");
        }
    }
}
