//! Operations endpoints: health, readiness, metrics, keys, and the API's own description.

mod common;

use common::*;
use reqwest::Method;
use serde_json::Value;

const CONTRACT_PATHS: [&str; 23] = [
    "/v1/users",
    "/v1/auth/password",
    "/v1/auth/otp",
    "/v1/auth/otp/verify",
    "/v1/auth/exchange",
    "/v1/sessions/anonymous",
    "/v1/token/refresh",
    "/v1/token/validate",
    "/v1/session",
    "/v1/session/data",
    "/v1/logout",
    "/v1/sessions",
    "/v1/sessions/{id}",
    "/v1/admin/sessions",
    "/v1/admin/users/{id}/sessions",
    "/v1/admin/sessions/{id}",
    "/v1/admin/users/{id}",
    "/v1/admin/cleanup",
    "/v1/introspect",
    "/.well-known/jwks.json",
    "/healthz",
    "/readyz",
    "/metrics",
];

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(
        app.send(Method::GET, "/healthz", None, None).await.ok(200)["status"],
        "ok"
    );
    let ready = app.send(Method::GET, "/readyz", None, None).await.ok(200);
    assert_eq!(ready["storage"], "ok");
}

#[tokio::test]
async fn metrics_count_requests_and_sessions() {
    let app = spawn_app().await;
    app.register(&unique_email()).await;
    let reply = app.send(Method::GET, "/metrics", None, None).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    for metric in [
        "sessiond_http_requests_total",
        "sessiond_http_request_duration_seconds",
        "sessiond_sessions_created_total",
    ] {
        assert!(
            reply.text.contains(metric),
            "{metric} missing from:\n{}",
            reply.text
        );
    }
    assert!(reply.text.contains(r#"route="/v1/users""#));
}

#[tokio::test]
async fn jwks_publishes_the_ed25519_signing_key() {
    let app = spawn_app().await;
    let reply = app
        .send(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    let jwks = reply.ok(200);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(
        (key["alg"].as_str(), key["use"].as_str()),
        (Some("EdDSA"), Some("sig"))
    );
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(key.get("d").is_none(), "never the private half");
    assert!(reply.header("cache-control").unwrap().contains("max-age"));
}

async fn openapi(app: &TestApp) -> Value {
    app.send(Method::GET, "/openapi.json", None, None)
        .await
        .ok(200)
}

#[tokio::test]
async fn the_openapi_document_describes_every_contract_path() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in CONTRACT_PATHS {
        assert!(
            paths.contains_key(path),
            "{path} missing from /openapi.json"
        );
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("bearer") && schemes.contains_key("admin_key"));
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

/// The API's description is committed: a change to the API shows up as a diff here.
/// `UPDATE_SNAPSHOTS=1 cargo test -p sessiond-server --test ops` rewrites it.
#[tokio::test]
async fn the_openapi_document_matches_its_snapshot() {
    let app = spawn_app().await;
    let doc = serde_json::to_string_pretty(&openapi(&app).await).unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json");
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(path, &doc).unwrap();
        return;
    }
    let committed =
        std::fs::read_to_string(path).expect("snapshot exists (UPDATE_SNAPSHOTS=1 writes it)");
    assert!(
        committed == doc,
        "/openapi.json changed; review and run UPDATE_SNAPSHOTS=1 cargo test -p sessiond-server --test ops"
    );
}

#[tokio::test]
async fn docs_are_served_by_the_binary_without_a_cdn() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "after following the redirect to /docs/");
    let html = resp.text().await.unwrap();
    assert!(html.to_lowercase().contains("swagger"));
    for tag in ["src=\"http", "href=\"http", "src='http", "href='http"] {
        assert!(
            !html.contains(tag),
            "the page loads something from elsewhere: {tag}"
        );
    }
    let init = app
        .client
        .get(format!("{}/docs/swagger-initializer.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    assert!(init.text().await.unwrap().contains("/openapi.json"));
}
