use crate::common::*;
use serde_json::json;

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

backend_suite! {
    #[tokio::test]
    async fn registration_logs_in_and_normalises_the_email() {
        let app = spawn_app().await;
        let reply = app
            .post("/v1/users", json!({"email": "  Ann.Lee@Example.COM ", "password": PASSWORD, "name": "Ann", "device": {"device_id": "d-1", "label": "Ann's phone"}}))
            .await;
        let grant = reply.ok(201);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(grant["token_type"], "Bearer");
        assert_eq!(grant["expires_in"], 900);
        assert_eq!(grant["refresh_expires_in"], 30 * 24 * 3600);
        assert_eq!(grant["user"]["email"], "ann.lee@example.com");
        assert_eq!(grant["user"]["name"], "Ann");
        assert_eq!(grant["user"]["active"], true);
        assert_eq!(grant["session"]["auth_method"], "pwd");
        assert_eq!(grant["session"]["user_id"], grant["user"]["id"]);
        assert_eq!(grant["session"]["device"]["device_id"], "d-1");
        assert_eq!(grant["session"]["device"]["label"], "Ann's phone");
        assert_eq!(grant["session"]["device"]["ip"], "127.0.0.1");
        assert!(refresh_of(&grant).len() >= 43);

        // The same address in another case is the same account.
        let login = app
            .post(
                "/v1/auth/password",
                json!({"email": "ANN.LEE@example.com", "password": PASSWORD}),
            )
            .await
            .ok(200);
        assert_eq!(login["user"]["id"], grant["user"]["id"]);
        assert_ne!(session_id(&login), session_id(&grant));

        let dup = app
            .post(
                "/v1/users",
                json!({"email": "ann.lee@EXAMPLE.com", "password": PASSWORD}),
            )
            .await;
        dup.problem(409, "CONFLICT");
    }

    #[tokio::test]
    async fn access_token_claims_follow_the_contract() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        let token = access(&grant);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
        let payload = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&base64_decode(payload)).unwrap();
        assert_eq!(claims["sub"], grant["user"]["id"]);
        assert_eq!(claims["sid"], grant["session"]["id"]);
        assert_eq!(claims["iss"], "sessiond");
        assert_eq!(claims["aud"], "sessiond");
        assert_eq!(claims["amr"], json!(["pwd"]));
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            900
        );
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));

        // Anyone can verify it with the published key.
        let jwks = app
            .send(reqwest::Method::GET, "/.well-known/jwks.json", None, None)
            .await
            .ok(200);
        let jwk = &jwks["keys"][0];
        assert_eq!(jwk["kid"], header.kid.clone().unwrap().as_str());
        let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.set_audience(&["sessiond"]);
        jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation)
            .expect("verifies with the JWKS key");
    }


    #[tokio::test]
    async fn failed_logins_look_the_same_whether_or_not_the_account_exists() {
        let app = spawn_app().await;
        let email = unique_email();
        app.register(&email).await;
        let wrong_password = app
            .post(
                "/v1/auth/password",
                json!({"email": email, "password": "not the password"}),
            )
            .await;
        let unknown_email = app
            .post(
                "/v1/auth/password",
                json!({"email": unique_email(), "password": "not the password"}),
            )
            .await;
        // `problem` leaves out `instance`, which names each request.
        let a = wrong_password.problem(401, "INVALID_CREDENTIALS");
        let b = unknown_email.problem(401, "INVALID_CREDENTIALS");
        assert_eq!(a, b);
        assert_eq!(wrong_password.headers.get("www-authenticate"), None);
    }

    #[tokio::test]
    async fn anonymous_sessions_are_upgraded_in_place_by_a_login() {
        let app = spawn_app().await;
        let email = unique_email();
        app.register(&email).await;

        // An empty body is fine.
        let anon_reply = app
            .send(reqwest::Method::POST, "/v1/sessions/anonymous", None, None)
            .await;
        let anon = anon_reply.ok(201);
        assert_eq!(anon["user"], serde_json::Value::Null);
        assert_eq!(anon["session"]["user_id"], serde_json::Value::Null);
        assert_eq!(anon["session"]["auth_method"], "anon");
        let anon_access = access(&anon);
        let me = app.whoami(&anon_access).await.ok(200);
        assert_eq!(me["user"], serde_json::Value::Null);

        app.send(
            reqwest::Method::PUT,
            "/v1/session/data",
            Some(&anon_access),
            Some(json!({"cart": [1, 2]})),
        )
        .await
        .ok(200);

        let upgraded = app
            .post_as(
                "/v1/auth/password",
                &anon_access,
                json!({"email": email, "password": PASSWORD}),
            )
            .await
            .ok(200);
        assert_eq!(session_id(&upgraded), session_id(&anon), "same session id");
        assert_eq!(upgraded["session"]["auth_method"], "pwd");
        assert_eq!(upgraded["session"]["user_id"], upgraded["user"]["id"]);
        let data = app
            .get("/v1/session/data", &access(&upgraded))
            .await
            .ok(200);
        assert_eq!(data, json!({"cart": [1, 2]}), "data survives the upgrade");

        // The anonymous refresh token does not outlive the login.
        app.refresh(&refresh_of(&anon))
            .await
            .problem(401, "REFRESH_TOKEN_INVALID");
        app.refresh(&refresh_of(&upgraded)).await.ok(200);

        // A second login carrying the now-bound session's token gets a new session.
        let again = app
            .post_as(
                "/v1/auth/password",
                &access(&upgraded),
                json!({"email": email, "password": PASSWORD}),
            )
            .await
            .ok(200);
        assert_ne!(session_id(&again), session_id(&anon));
    }

    #[tokio::test]
    async fn registration_also_upgrades_an_anonymous_session() {
        let app = spawn_app().await;
        let anon = app
            .post(
                "/v1/sessions/anonymous",
                json!({"device": {"label": "tablet"}}),
            )
            .await
            .ok(201);
        assert_eq!(anon["session"]["device"]["label"], "tablet");
        let reg = app
            .post_as(
                "/v1/users",
                &access(&anon),
                json!({"email": unique_email(), "password": PASSWORD}),
            )
            .await
            .ok(201);
        assert_eq!(session_id(&reg), session_id(&anon));
        assert_eq!(reg["session"]["device"]["label"], "tablet");
    }

    #[tokio::test]
    async fn a_garbage_bearer_on_login_is_ignored() {
        let app = spawn_app().await;
        let email = unique_email();
        app.register(&email).await;
        app.post_as(
            "/v1/auth/password",
            "garbage",
            json!({"email": email, "password": PASSWORD}),
        )
        .await
        .ok(200);
    }

    #[tokio::test]
    async fn deactivated_users_cannot_log_in_or_refresh() {
        let app = spawn_app().await;
        let email = unique_email();
        let grant = app.register(&email).await;
        let user_id = grant["user"]["id"].as_str().unwrap().to_owned();
        let user = app
            .admin(
                reqwest::Method::PATCH,
                &format!("/v1/admin/users/{user_id}"),
                Some(json!({"active": false})),
            )
            .await
            .ok(200);
        assert_eq!(user["active"], false);

        app.login(&email).await.problem(401, "USER_INACTIVE");
        let wrong = app
            .post(
                "/v1/auth/password",
                json!({"email": email, "password": "wrong password"}),
            )
            .await;
        wrong.problem(401, "INVALID_CREDENTIALS");
        let body = app
            .whoami(&access(&grant))
            .await
            .problem(401, "SESSION_REVOKED");
        assert_eq!(body["revoked_reason"], "user_deactivated");
        app.refresh(&refresh_of(&grant))
            .await
            .problem(401, "SESSION_REVOKED");

        // Reactivation allows new logins; old sessions stay ended.
        app.admin(
            reqwest::Method::PATCH,
            &format!("/v1/admin/users/{user_id}"),
            Some(json!({"active": true})),
        )
        .await
        .ok(200);
        app.login(&email).await.ok(200);
        app.whoami(&access(&grant))
            .await
            .problem(401, "SESSION_REVOKED");
    }
}
