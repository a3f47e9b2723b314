//! Time-based session rules, driven by the injected clock, and session limits.

use crate::common::*;
use chrono::Duration;
use reqwest::Method;
use serde_json::json;
use sessiond_core::{OnLimit, SessionId};

backend_suite! {
    #[tokio::test]
    async fn access_tokens_expire_exactly_with_no_leeway() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        let token = access(&grant);
        app.clock.advance(Duration::seconds(899));
        app.whoami(&token).await.ok(200);
        app.clock.advance(Duration::seconds(1));
        let reply = app.whoami(&token).await;
        let body = reply.problem(401, "TOKEN_EXPIRED");
        assert!(body["expired_at"].as_str().is_some());
        assert!(
            reply
                .header("www-authenticate")
                .unwrap()
                .contains("invalid_token")
        );
        assert_eq!(app.validate(&token).await["reason"], "TOKEN_EXPIRED");
        // A refresh still works: expiry of the access token does not end the session.
        app.refresh(&refresh_of(&grant)).await.ok(200);
    }

    #[tokio::test]
    async fn idle_sessions_die_and_activity_keeps_them_alive() {
        let app = spawn_with(|c| {
            c.idle_timeout = std::time::Duration::from_secs(3600);
        })
        .await;
        let email = unique_email();
        let grant = app.register(&email).await;
        let active = app.login(&email).await.ok(200);

        // Keep one session busy (refreshing to get fresh access tokens), leave the other idle.
        let mut refresh = refresh_of(&active);
        for _ in 0..3 {
            app.clock.advance(Duration::minutes(50));
            let next = app.refresh(&refresh).await.ok(200);
            app.whoami(&access(&next)).await.ok(200);
            refresh = refresh_of(&next);
        }
        let idle = app
            .refresh(&refresh_of(&grant))
            .await
            .problem(401, "SESSION_INACTIVE");
        assert_eq!(idle["revoked_reason"], "idle_timeout");
        app.refresh(&refresh).await.ok(200);
    }

    #[tokio::test]
    async fn idle_decisions_use_activity_not_yet_written() {
        let app = spawn_with(|c| {
            c.idle_timeout = std::time::Duration::from_secs(600);
            c.activity_resolution = std::time::Duration::from_secs(60);
            c.access_token_ttl = std::time::Duration::from_secs(900);
        })
        .await;
        let grant = app.register(&unique_email()).await;
        let token = access(&grant);
        let sid: SessionId = session_id(&grant).parse().unwrap();
        let stored = |app: &TestApp| {
            let store = app.store.clone();
            async move {
                store
                    .session_with_user(sid)
                    .await
                    .unwrap()
                    .unwrap()
                    .0
                    .last_active_at
            }
        };
        let created = stored(&app).await;

        // Requests inside one resolution window write nothing.
        app.clock.advance(Duration::seconds(30));
        app.whoami(&token).await.ok(200);
        app.clock.advance(Duration::seconds(20));
        app.whoami(&token).await.ok(200);
        assert_eq!(
            stored(&app).await,
            created,
            "no write within the resolution"
        );

        // Past the resolution, one write lands (asynchronously).
        app.clock.advance(Duration::seconds(15));
        let seen_at = app.clock_now();
        app.whoami(&token).await.ok(200);
        let mut written = created;
        for _ in 0..50 {
            written = stored(&app).await;
            if written != created {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(written, seen_at);

        // 30 s later: activity seen in memory only (within the resolution, so not written).
        app.clock.advance(Duration::seconds(30));
        app.whoami(&token).await.ok(200);
        assert_eq!(stored(&app).await, seen_at);
        // 629 s after the stored activity, 599 s after the remembered one: still alive,
        // because the idle decision uses the newest activity this server has seen.
        app.clock.advance(Duration::seconds(599));
        app.whoami(&token).await.ok(200);
    }

    #[tokio::test]
    async fn sessions_end_at_their_absolute_lifetime_whatever_the_activity() {
        let app = spawn_with(|c| {
            c.absolute_lifetime = std::time::Duration::from_secs(2 * 3600);
            c.access_token_ttl = std::time::Duration::from_secs(900);
        })
        .await;
        let grant = app.register(&unique_email()).await;
        assert_eq!(
            grant["refresh_expires_in"],
            2 * 3600,
            "refresh never outlives the session"
        );
        let mut refresh = refresh_of(&grant);
        for _ in 0..7 {
            app.clock.advance(Duration::minutes(15));
            refresh = refresh_of(&app.refresh(&refresh).await.ok(200));
        }
        app.clock.advance(Duration::minutes(15));
        let body = app.refresh(&refresh).await.problem(401, "SESSION_EXPIRED");
        assert_eq!(body["revoked_reason"], "absolute_lifetime");
    }

    #[tokio::test]
    async fn access_tokens_never_outlive_the_session() {
        let app = spawn_with(|c| {
            c.absolute_lifetime = std::time::Duration::from_secs(1000);
            c.access_token_ttl = std::time::Duration::from_secs(900);
        })
        .await;
        let grant = app.register(&unique_email()).await;
        app.clock.advance(Duration::seconds(500));
        let next = app.refresh(&refresh_of(&grant)).await.ok(200);
        assert_eq!(next["expires_in"], 500);
    }

    #[tokio::test]
    async fn limit_evicts_the_oldest_session() {
        let app = spawn_with(|c| {
            c.max_sessions_per_user = 2;
            c.on_session_limit = OnLimit::EvictOldest;
        })
        .await;
        let email = unique_email();
        let first = app.register(&email).await;
        app.clock.advance(Duration::milliseconds(5));
        let second = app.login(&email).await.ok(200);
        app.clock.advance(Duration::milliseconds(5));
        let third = app.login(&email).await.ok(200);

        let body = app
            .whoami(&access(&first))
            .await
            .problem(401, "SESSION_REVOKED");
        assert_eq!(body["revoked_reason"], "evicted_by_limit");
        app.whoami(&access(&second)).await.ok(200);
        let list = app.get("/v1/sessions", &access(&third)).await.ok(200);
        let ids: Vec<&str> = list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![session_id(&third), session_id(&second)]);
    }

    #[tokio::test]
    async fn limit_with_reject_answers_409_with_the_live_sessions() {
        let app = spawn_with(|c| {
            c.max_sessions_per_user = 2;
            c.on_session_limit = OnLimit::Reject;
        })
        .await;
        let email = unique_email();
        let first = app.register(&email).await;
        let second = app
            .post(
                "/v1/auth/password",
                json!({"email": email, "password": PASSWORD, "device": {"label": "laptop"}}),
            )
            .await
            .ok(200);
        let body = app
            .login(&email)
            .await
            .problem(409, "SESSION_LIMIT_EXCEEDED");
        let sessions = body["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2);
        let ids: Vec<&str> = sessions.iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert!(ids.contains(&session_id(&first).as_str()));
        assert!(ids.contains(&session_id(&second).as_str()));
        assert!(sessions.iter().any(|s| s["device"]["label"] == "laptop"));
        assert!(
            sessions
                .iter()
                .all(|s| s["last_active_at"].as_str().is_some())
        );

        // Ending one makes room.
        app.delete(
            &format!("/v1/sessions/{}", session_id(&first)),
            &access(&second),
        )
        .await
        .ok(204);
        app.login(&email).await.ok(200);
    }

    #[tokio::test]
    async fn limit_holds_under_20_concurrent_logins() {
        for on_limit in [OnLimit::EvictOldest, OnLimit::Reject] {
            let app = spawn_with(|c| {
                c.max_sessions_per_user = 3;
                c.on_session_limit = on_limit;
                c.password_hash_queue = 64;
            })
            .await;
            let email = unique_email();
            let grant = app.register(&email).await;
            let user_id = grant["user"]["id"].as_str().unwrap().to_owned();
            let replies = futures::future::join_all((0..20).map(|_| app.login(&email))).await;
            let ok = replies.iter().filter(|r| r.status == 200).count();
            for r in &replies {
                assert!(matches!(r.status.as_u16(), 200 | 409), "{}", r.text);
            }
            let live = app
                .admin(
                    Method::GET,
                    &format!("/v1/admin/users/{user_id}/sessions"),
                    None,
                )
                .await
                .ok(200);
            let live = live["sessions"].as_array().unwrap().len();
            assert_eq!(live, 3, "{on_limit:?}: exactly the limit stays live");
            match on_limit {
                OnLimit::EvictOldest => assert_eq!(ok, 20),
                OnLimit::Reject => assert_eq!(ok, 2, "the registration took one slot"),
            }
        }
    }
}
