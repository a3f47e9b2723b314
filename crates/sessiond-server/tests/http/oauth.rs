//! The standard OAuth endpoints: RFC 8414 metadata and RFC 7009 revocation.

use crate::common::*;
use reqwest::Method;
use serde_json::json;

async fn revoke(app: &TestApp, body: &str, content_type: &str) -> reqwest::Response {
    app.http
        .post(format!("{}/oauth/revoke", app.base))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

const FORM: &str = "application/x-www-form-urlencoded";

backend_suite! {
    #[tokio::test]
    async fn the_metadata_names_what_sessiond_supports() {
        let app = spawn_with(|c| c.public_url = Some("https://auth.example.com/".parse().unwrap())).await;
        let meta = app
            .send(Method::GET, "/.well-known/oauth-authorization-server", None, None)
            .await
            .ok(200);
        assert_eq!(meta["issuer"], "sessiond");
        assert_eq!(meta["jwks_uri"], "https://auth.example.com/.well-known/jwks.json");
        assert_eq!(meta["introspection_endpoint"], "https://auth.example.com/v1/introspect");
        assert_eq!(meta["revocation_endpoint"], "https://auth.example.com/oauth/revoke");
        assert_eq!(meta["revocation_feed_endpoint"], "https://auth.example.com/v1/revocations");
        assert_eq!(meta["response_types_supported"], json!([]));
        // Without public_url, the address the client used.
        let plain = spawn_app().await;
        let meta = plain
            .send(Method::GET, "/.well-known/oauth-authorization-server", None, None)
            .await
            .ok(200);
        let host = plain.base.trim_start_matches("http://");
        assert_eq!(meta["jwks_uri"], format!("http://{host}/.well-known/jwks.json"));
    }

    #[tokio::test]
    async fn revoking_an_access_token_ends_its_session() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        let token = access(&grant);
        let reply = revoke(&app, &format!("token={token}&token_type_hint=access_token"), FORM).await;
        assert_eq!(reply.status(), 200);
        let body = app.whoami(&token).await.problem(401, "SESSION_REVOKED");
        assert_eq!(body["revoked_reason"], "logout");
        app.refresh(&refresh_of(&grant)).await.problem(401, "SESSION_REVOKED");
    }

    #[tokio::test]
    async fn revoking_a_refresh_token_ends_its_session() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        let refresh = refresh_of(&grant);
        let reply = revoke(&app, &format!("token={}", urlencode(&refresh)), FORM).await;
        assert_eq!(reply.status(), 200);
        app.whoami(&access(&grant)).await.problem(401, "SESSION_REVOKED");
    }

    #[tokio::test]
    async fn unknown_tokens_are_answered_like_known_ones_and_bad_requests_are_problems() {
        let app = spawn_app().await;
        let grant = app.register(&unique_email()).await;
        for token in ["nonsense", "eyJhbGciOiJub25lIn0.e30.", &"x".repeat(4000)] {
            let reply = revoke(&app, &format!("token={token}"), FORM).await;
            assert_eq!(reply.status(), 200, "{token}");
        }
        // Revoking twice is fine too.
        for _ in 0..2 {
            assert_eq!(revoke(&app, &format!("token={}", access(&grant)), FORM).await.status(), 200);
        }
        let missing = revoke(&app, "token_type_hint=access_token", FORM).await;
        assert_eq!(missing.status(), 400);
        assert_eq!(missing.headers()["content-type"], "application/problem+json");
        let json_body = revoke(&app, r#"{"token":"x"}"#, "application/json").await;
        assert_eq!(json_body.status(), 415);
        let huge = revoke(&app, &format!("token={}", "x".repeat(5000)), FORM).await;
        assert_eq!(huge.status(), 400);
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
