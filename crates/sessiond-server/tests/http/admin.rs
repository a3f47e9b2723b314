//! Trusted backends: admin-created sessions, user session management, introspection.

use crate::common::*;
use chrono::Duration;
use reqwest::Method;
use serde_json::json;

backend_suite! {
    #[tokio::test]
    async fn a_backend_creates_a_session_for_its_own_user() {
        let app = spawn_app().await;
        let user_id = uuid::Uuid::now_v7();
        let reply = app
            .admin(Method::POST, "/v1/admin/sessions", Some(json!({"user_id": user_id, "device": {"label": "kiosk"}, "data": {"role": "cashier"}})))
            .await;
        let grant = reply.ok(201);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(grant["user"]["id"], user_id.to_string());
        assert_eq!(grant["user"]["email"], serde_json::Value::Null);
        assert_eq!(grant["session"]["auth_method"], "admin");
        assert_eq!(grant["session"]["device"]["label"], "kiosk");
        assert_eq!(
            app.get("/v1/session/data", &access(&grant)).await.ok(200),
            json!({"role": "cashier"})
        );
        app.refresh(&refresh_of(&grant)).await.ok(200);

        // A second session for the same (now known) user.
        let again = app
            .admin(
                Method::POST,
                "/v1/admin/sessions",
                Some(json!({"user_id": user_id})),
            )
            .await
            .ok(201);
        assert_eq!(again["user"]["id"], user_id.to_string());
        let list = app
            .admin(
                Method::GET,
                &format!("/v1/admin/users/{user_id}/sessions"),
                None,
            )
            .await
            .ok(200);
        assert_eq!(list["sessions"].as_array().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn admin_revocations_are_immediate_and_explained() {
        let app = spawn_app().await;
        let email = unique_email();
        let a = app.register(&email).await;
        let b = app.login(&email).await.ok(200);
        let c = app.login(&email).await.ok(200);
        let user_id = a["user"]["id"].as_str().unwrap().to_owned();

        app.admin(
            Method::DELETE,
            &format!("/v1/admin/sessions/{}", session_id(&a)),
            None,
        )
        .await
        .ok(204);
        let body = app
            .whoami(&access(&a))
            .await
            .problem(401, "SESSION_REVOKED");
        assert_eq!(body["revoked_reason"], "admin");
        // Idempotent.
        app.admin(
            Method::DELETE,
            &format!("/v1/admin/sessions/{}", session_id(&a)),
            None,
        )
        .await
        .ok(204);

        let revoked = app
            .admin(
                Method::DELETE,
                &format!("/v1/admin/users/{user_id}/sessions"),
                None,
            )
            .await
            .ok(200);
        assert_eq!(revoked, json!({"revoked": 2}));
        for s in [&b, &c] {
            app.whoami(&access(s)).await.problem(401, "SESSION_REVOKED");
        }
        let list = app
            .admin(
                Method::GET,
                &format!("/v1/admin/users/{user_id}/sessions"),
                None,
            )
            .await
            .ok(200);
        assert_eq!(list, json!({"sessions": []}));
    }

    #[tokio::test]
    async fn unknown_ids_are_not_found() {
        let app = spawn_app().await;
        let id = uuid::Uuid::now_v7();
        for (method, path) in [
            (Method::GET, format!("/v1/admin/users/{id}/sessions")),
            (Method::DELETE, format!("/v1/admin/users/{id}/sessions")),
            (Method::DELETE, format!("/v1/admin/sessions/{id}")),
        ] {
            app.admin(method, &path, None)
                .await
                .problem(404, "NOT_FOUND");
        }
        app.admin(
            Method::PATCH,
            &format!("/v1/admin/users/{id}"),
            Some(json!({"active": false})),
        )
        .await
        .problem(404, "NOT_FOUND");
    }

    #[tokio::test]
    async fn deactivation_revokes_every_session_and_blocks_admin_sessions() {
        let app = spawn_app().await;
        let email = unique_email();
        let a = app.register(&email).await;
        let b = app.login(&email).await.ok(200);
        let user_id = a["user"]["id"].as_str().unwrap().to_owned();
        let user = app
            .admin(
                Method::PATCH,
                &format!("/v1/admin/users/{user_id}"),
                Some(json!({"active": false})),
            )
            .await
            .ok(200);
        assert_eq!(user["active"], false);
        assert_eq!(user["email"], email.as_str());
        for s in [&a, &b] {
            let body = app.whoami(&access(s)).await.problem(401, "SESSION_REVOKED");
            assert_eq!(body["revoked_reason"], "user_deactivated");
        }
        app.admin(
            Method::POST,
            "/v1/admin/sessions",
            Some(json!({"user_id": user_id})),
        )
        .await
        .problem(401, "USER_INACTIVE");
    }

    #[tokio::test]
    async fn introspection_follows_rfc_7662_for_json_and_form_bodies() {
        let app = spawn_app().await;
        let email = unique_email();
        let grant = app.register(&email).await;
        let info = app.introspect(&access(&grant)).await;
        assert_eq!(info["active"], true);
        assert_eq!(info["token_type"], "access_token");
        assert_eq!(info["sub"], grant["user"]["id"]);
        assert_eq!(info["sid"], grant["session"]["id"]);
        assert_eq!(info["amr"], json!(["pwd"]));
        assert_eq!(info["username"], email.as_str());
        assert_eq!(
            info["exp"].as_i64().unwrap() - info["iat"].as_i64().unwrap(),
            900
        );

        let refresh_info = app.introspect(&refresh_of(&grant)).await;
        assert_eq!(refresh_info["active"], true);
        assert_eq!(refresh_info["token_type"], "refresh_token");
        assert_eq!(refresh_info["sid"], grant["session"]["id"]);

        let form = app
            .http
            .post(format!("{}/v1/introspect", app.base))
            .bearer_auth(&app.admin_key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "token={}&token_type_hint=access_token",
                access(&grant)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 200);
        let form: serde_json::Value = form.json().await.unwrap();
        assert_eq!(form["active"], true);
        assert_eq!(form["sid"], grant["session"]["id"]);

        assert_eq!(app.introspect("garbage").await, json!({"active": false}));
        app.clock.advance(Duration::seconds(900));
        assert_eq!(
            app.introspect(&access(&grant)).await,
            json!({"active": false})
        );
    }

    #[tokio::test]
    async fn introspection_counts_as_no_activity() {
        let app = spawn_with(|c| c.idle_timeout = std::time::Duration::from_secs(600)).await;
        let grant = app.register(&unique_email()).await;
        let refresh = refresh_of(&grant);
        for _ in 0..3 {
            app.clock.advance(Duration::seconds(250));
            app.introspect(&refresh).await;
            app.validate(&refresh).await;
        }
        app.refresh(&refresh).await.problem(401, "SESSION_INACTIVE");
    }

    #[tokio::test]
    async fn cleanup_purges_ended_sessions_past_retention_only() {
        let app = spawn_with(|c| c.session_retention = std::time::Duration::from_secs(3600)).await;
        let email = unique_email();
        let ended = app.register(&email).await;
        let live = app.login(&email).await.ok(200);
        app.post_as("/v1/logout", &access(&ended), json!({}))
            .await
            .ok(204);

        // Within retention the ended session is kept (and still explains itself).
        let reply = app
            .admin(Method::POST, "/v1/admin/cleanup", None)
            .await
            .ok(200);
        assert_eq!(reply, json!({"deleted": 0}));
        let kept = app.validate(&refresh_of(&ended)).await;
        assert_eq!(kept["reason"], "SESSION_REVOKED");
        assert_eq!(kept["revoked_reason"], "logout");

        app.clock.advance(Duration::seconds(3601));
        let reply = app
            .admin(Method::POST, "/v1/admin/cleanup", None)
            .await
            .ok(200);
        assert_eq!(reply, json!({"deleted": 1}));
        assert_eq!(
            app.validate(&refresh_of(&ended)).await["reason"],
            "REFRESH_TOKEN_INVALID"
        );
        app.refresh(&refresh_of(&live)).await.ok(200);
    }

    #[tokio::test]
    async fn the_admin_key_is_required_and_compared_exactly() {
        let app = spawn_app().await;
        let wrong = format!("{}x", app.admin_key);
        // No credentials: 401 with the challenge saying how to authenticate (RFC 9110).
        let reply = app.send(Method::POST, "/v1/admin/cleanup", None, None).await;
        reply.problem(401, "TOKEN_NOT_PROVIDED");
        assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="sessiond""#));
        // Credentials that are not the key: 403.
        for key in [
            "nope",
            wrong.as_str(),
            &app.admin_key[..app.admin_key.len() - 1],
        ] {
            let reply = app.send(Method::POST, "/v1/admin/cleanup", Some(key), None).await;
            reply.problem(403, "FORBIDDEN");
        }
        // A user's access token is not an admin key.
        let grant = app.register(&unique_email()).await;
        app.send(
            Method::POST,
            "/v1/admin/cleanup",
            Some(&access(&grant)),
            None,
        )
        .await
        .problem(403, "FORBIDDEN");
    }
}
