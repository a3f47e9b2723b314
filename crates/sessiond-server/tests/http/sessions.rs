//! The calling session and the person's other sessions.

use crate::common::*;
use reqwest::Method;
use serde_json::json;

backend_suite! {
    #[tokio::test]
    async fn whoami_answers_the_session_and_user() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        let reply = app.whoami(&access(&grant)).await;
        let me = reply.ok(200);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(me["session"]["id"], grant["session"]["id"]);
        assert_eq!(me["user"], grant["user"]);
        assert!(me["session"]["idle_expires_at"].as_str().is_some());
        assert_eq!(me["session"].get("current"), None);
    }

    #[tokio::test]
    async fn missing_token_is_token_not_provided_with_a_bearer_challenge() {
        let app = spawn_app().await;
        let reply = app.send(Method::GET, "/v1/session", None, None).await;
        reply.problem(401, "TOKEN_NOT_PROVIDED");
        assert!(
            reply
                .header("www-authenticate")
                .unwrap()
                .starts_with("Bearer")
        );
    }

    #[tokio::test]
    async fn logout_kills_the_access_token_at_once_everywhere() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        let token = access(&grant);
        assert_eq!(app.introspect(&token).await["active"], true);
        app.post_as("/v1/logout", &token, json!({})).await.ok(204);

        let body = app.whoami(&token).await.problem(401, "SESSION_REVOKED");
        assert_eq!(body["revoked_reason"], "logout");
        assert_eq!(app.introspect(&token).await, json!({"active": false}));
        assert_eq!(
            app.introspect(&refresh_of(&grant)).await,
            json!({"active": false})
        );
        let v = app.validate(&token).await;
        assert_eq!(
            (v["valid"].clone(), v["reason"].clone()),
            (json!(false), json!("SESSION_REVOKED"))
        );
        assert_eq!(v["revoked_reason"], "logout");
        app.get("/v1/session/data", &token)
            .await
            .problem(401, "SESSION_REVOKED");
        app.get("/v1/sessions", &token)
            .await
            .problem(401, "SESSION_REVOKED");
        app.refresh(&refresh_of(&grant))
            .await
            .problem(401, "SESSION_REVOKED");
        app.post_as("/v1/logout", &token, json!({}))
            .await
            .problem(401, "SESSION_REVOKED");
    }

    #[tokio::test]
    async fn session_data_round_trips_and_is_per_session() {
        let app = spawn_app().await;
        let email = unique_email();
        let a = app.register(&email).await;
        let b = app.login(&email).await.ok(200);
        assert_eq!(
            app.get("/v1/session/data", &access(&a)).await.ok(200),
            json!({})
        );
        let data = json!({"theme": "dark", "cart": {"items": [1, 2, 3]}, "n": 1.5});
        let put = app
            .send(
                Method::PUT,
                "/v1/session/data",
                Some(&access(&a)),
                Some(data.clone()),
            )
            .await;
        assert_eq!(put.ok(200), data);
        assert_eq!(app.get("/v1/session/data", &access(&a)).await.ok(200), data);
        assert_eq!(
            app.get("/v1/session/data", &access(&b)).await.ok(200),
            json!({})
        );
        // PUT replaces.
        app.send(
            Method::PUT,
            "/v1/session/data",
            Some(&access(&a)),
            Some(json!({"x": 1})),
        )
        .await
        .ok(200);
        assert_eq!(
            app.get("/v1/session/data", &access(&a)).await.ok(200),
            json!({"x": 1})
        );
        // Exactly 16 KiB is accepted.
        let filler = "a".repeat(16 * 1024 - r#"{"f":""}"#.len());
        app.send(
            Method::PUT,
            "/v1/session/data",
            Some(&access(&a)),
            Some(json!({"f": filler})),
        )
        .await
        .ok(200);
    }

    #[tokio::test]
    async fn the_session_list_marks_the_current_one_newest_first() {
        let app = spawn_app().await;
        let email = unique_email();
        let a = app.register(&email).await;
        app.clock.advance(chrono::Duration::milliseconds(10));
        let b = app
            .post("/v1/auth/password", json!({"email": email, "password": PASSWORD, "device": {"device_id": "phone-1", "label": "Phone"}}))
            .await
            .ok(200);
        let other_user = app.register(&unique_email()).await;

        let list = app.get("/v1/sessions", &access(&a)).await.ok(200);
        let sessions = list["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2, "only this user's sessions");
        assert_eq!(sessions[0]["id"], b["session"]["id"]);
        assert_eq!(sessions[0]["current"], false);
        assert_eq!(sessions[0]["device"]["label"], "Phone");
        assert_eq!(sessions[1]["id"], a["session"]["id"]);
        assert_eq!(sessions[1]["current"], true);
        assert!(
            !sessions
                .iter()
                .any(|s| s["id"] == other_user["session"]["id"])
        );
    }

    #[tokio::test]
    async fn a_user_can_end_their_own_sessions_but_not_anyone_elses() {
        let app = spawn_app().await;
        let email = unique_email();
        let a = app.register(&email).await;
        let b = app.login(&email).await.ok(200);
        let stranger = app.register(&unique_email()).await;

        let reply = app
            .delete(
                &format!("/v1/sessions/{}", session_id(&stranger)),
                &access(&a),
            )
            .await;
        reply.problem(404, "NOT_FOUND");
        app.whoami(&access(&stranger)).await.ok(200);
        let unknown = uuid::Uuid::now_v7();
        app.delete(&format!("/v1/sessions/{unknown}"), &access(&a))
            .await
            .problem(404, "NOT_FOUND");

        app.delete(&format!("/v1/sessions/{}", session_id(&b)), &access(&a))
            .await
            .ok(204);
        let body = app
            .whoami(&access(&b))
            .await
            .problem(401, "SESSION_REVOKED");
        assert_eq!(body["revoked_reason"], "revoked_by_user");
        app.whoami(&access(&a)).await.ok(200);
    }

    #[tokio::test]
    async fn log_out_other_devices_keeps_only_the_current_session() {
        let app = spawn_app().await;
        let email = unique_email();
        let a = app.register(&email).await;
        let b = app.login(&email).await.ok(200);
        let c = app.login(&email).await.ok(200);
        let stranger = app.register(&unique_email()).await;

        let reply = app
            .delete("/v1/sessions?except=current", &access(&a))
            .await
            .ok(200);
        assert_eq!(reply, json!({"revoked": 2}));
        for other in [&b, &c] {
            let body = app
                .whoami(&access(other))
                .await
                .problem(401, "SESSION_REVOKED");
            assert_eq!(body["revoked_reason"], "revoked_others");
        }
        app.whoami(&access(&a)).await.ok(200);
        app.whoami(&access(&stranger)).await.ok(200);
        let list = app.get("/v1/sessions", &access(&a)).await.ok(200);
        assert_eq!(list["sessions"].as_array().unwrap().len(), 1);

        // Without `except`, every session ends, this one included.
        assert_eq!(
            app.delete("/v1/sessions", &access(&a)).await.ok(200),
            json!({"revoked": 1})
        );
        app.whoami(&access(&a))
            .await
            .problem(401, "SESSION_REVOKED");
    }

    #[tokio::test]
    async fn an_anonymous_session_lists_and_ends_only_itself() {
        let app = spawn_app().await;
        let anon = app.post("/v1/sessions/anonymous", json!({})).await.ok(201);
        let list = app.get("/v1/sessions", &access(&anon)).await.ok(200);
        assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
        assert_eq!(list["sessions"][0]["current"], true);
        assert_eq!(
            app.delete("/v1/sessions?except=current", &access(&anon))
                .await
                .ok(200),
            json!({"revoked": 0})
        );
        app.post_as("/v1/logout", &access(&anon), json!({}))
            .await
            .ok(204);
        app.whoami(&access(&anon))
            .await
            .problem(401, "SESSION_REVOKED");
    }
}
