//! Operations endpoints: health, readiness, metrics, keys, and the API description
//! (OpenAPI document, snapshot, interactive reference).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::Value;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn get(app: &TestApp, path: &str) -> Reply {
    app.send(Method::GET, path, None, None).await
}

#[tokio::test]
async fn healthz_answers() {
    let app = spawn_app().await;
    let reply = get(&app, "/healthz").await;
    let body = reply.ok(200);
    assert_eq!(body["status"], "ok");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json"))
    );
}

#[tokio::test]
async fn readyz_reports_storage() {
    let app = spawn_app().await;
    let body = get(&app, "/readyz").await.ok(200);
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["storage"], "ok", "{body}");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let app = spawn_app().await;
    get(&app, "/healthz").await.ok(200);
    let grant = app.register(&unique_email()).await;
    let token = grant["access_token"].as_str().expect("access token");
    for _ in 0..2 {
        app.whoami(token).await.ok(200);
    }

    let reply = get(&app, "/metrics").await;
    assert_eq!(reply.status, 200);
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = &reply.text;
    for metric in [
        "sessiond_http_requests_total",
        "sessiond_sessions_created_total",
        "sessiond_sessions_active",
        "sessiond_token_checks_total{outcome=\"valid\"}",
        "sessiond_cache_lookups_total{cache=\"session\",result=\"hit\"}",
        "sessiond_cache_lookups_total{cache=\"token\",result=\"miss\"}",
        "sessiond_storage_connections{pool=\"reader\",state=\"in_use\"}",
        "sessiond_storage_connections{pool=\"writer\",state=\"idle\"}",
        "sessiond_storage_connections_max{pool=\"reader\"}",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(metric)),
            "no {metric} in:\n{text}"
        );
    }
    // Requests are labelled by route template, method and status.
    assert!(
        text.lines()
            .any(|l| l.starts_with("sessiond_http_requests_total")
                && l.contains(r#"route="/healthz""#)
                && l.contains(r#"method="GET""#)
                && l.contains(r#"status="200""#)),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("sessiond_http_requests_total")
                && l.contains(r#"route="/v1/users""#)
                && l.contains(r#"status="201""#)),
        "{text}"
    );
    // A single instance has no channel to other instances to report on.
    assert!(!text.contains("sessiond_fanout_connected"), "{text}");
    // Every sample line is `name{labels} value`.
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
    }
}

/// Every path and method of the contract.
const CONTRACT: &[(&str, &[&str])] = &[
    ("/v1/users", &["post"]),
    ("/v1/auth/password", &["post"]),
    ("/v1/auth/otp", &["post"]),
    ("/v1/auth/otp/verify", &["post"]),
    ("/v1/auth/exchange", &["post"]),
    ("/v1/sessions/anonymous", &["post"]),
    ("/v1/token/refresh", &["post"]),
    ("/v1/token/validate", &["post"]),
    ("/v1/session", &["get"]),
    ("/v1/session/data", &["get", "put"]),
    ("/v1/logout", &["post"]),
    ("/v1/sessions", &["get", "delete"]),
    ("/v1/sessions/{id}", &["delete"]),
    ("/v1/admin/sessions", &["post"]),
    ("/v1/admin/users/{id}/sessions", &["get", "delete"]),
    ("/v1/admin/sessions/{id}", &["delete"]),
    ("/v1/admin/users/{id}", &["patch"]),
    ("/v1/admin/cleanup", &["post"]),
    ("/v1/introspect", &["post"]),
    ("/.well-known/jwks.json", &["get"]),
    ("/healthz", &["get"]),
    ("/readyz", &["get"]),
    ("/metrics", &["get"]),
];

async fn openapi(app: &TestApp) -> Value {
    let reply = get(app, "/openapi.json").await;
    assert!(
        reply
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json")),
        "{:?}",
        reply.header("content-type")
    );
    reply.ok(200)
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_describes_every_contract_path() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "{version}");
    assert!(doc["info"]["title"].is_string());
    assert!(doc["info"]["version"].is_string());

    let paths = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (path, methods) in CONTRACT {
        for method in *methods {
            if paths.get(*path).and_then(|p| p.get(*method)).is_none() {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert!(missing.is_empty(), "not documented: {missing:?}");

    // Path parameters are declared.
    for path in paths.keys().filter(|p| p.contains('{')) {
        for (method, op) in paths[path].as_object().unwrap() {
            let declared = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path" && p["name"] == "id"));
            assert!(declared, "{method} {path} does not declare `id`");
        }
    }

    // Protected operations name their security scheme, and the schemes exist.
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    for (path, scheme) in [
        ("/v1/session", "bearer"),
        ("/v1/admin/cleanup", "admin_key"),
        ("/v1/introspect", "verifier_key"),
        ("/v1/revocations", "verifier_key"),
        ("/v1/revocations/stream", "verifier_key"),
    ] {
        assert!(schemes.contains_key(scheme), "no scheme {scheme}");
        let op = paths[path].as_object().unwrap().values().next().unwrap();
        let named = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|req| req.get(scheme).is_some()));
        assert!(named, "{path} does not require {scheme}");
    }

    // Every reference resolves within the document.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }

    // Errors are documented as problem documents.
    assert!(doc.pointer("/components/schemas/Problem").is_some());
}

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json")
}

/// The served OpenAPI document is the committed one: API changes show up in review.
/// `UPDATE_SNAPSHOTS=1 cargo test -p sessiond-server --test http ops::openapi` rewrites it.
#[tokio::test]
async fn openapi_matches_the_committed_snapshot() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    let served = format!("{}\n", serde_json::to_string_pretty(&doc).unwrap());
    let path = snapshot_path();
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &served).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); create it with \
             `UPDATE_SNAPSHOTS=1 cargo test -p sessiond-server --test http ops::openapi`",
            path.display()
        )
    });
    if committed != served {
        let first = committed
            .lines()
            .zip(served.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(served.lines().count()));
        let around = |text: &str| {
            text.lines()
                .skip(first.saturating_sub(3))
                .take(7)
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "the served OpenAPI document differs from {} from line {}:\n\
             --- committed\n{}\n--- served\n{}\n\
             If the API change is intended, run \
             `UPDATE_SNAPSHOTS=1 cargo test -p sessiond-server --test http ops::openapi` and commit the file.",
            path.display(),
            first + 1,
            around(&committed),
            around(&served)
        );
    }
}

/// `src` and `href` attribute values in an HTML page.
fn linked_urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attr in ["src=", "href="] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            let value: String = rest[1..].chars().take_while(|c| *c != quote).collect();
            urls.push(value);
        }
    }
    urls
}

fn is_external(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("//")
}

#[tokio::test]
async fn docs_serve_swagger_ui_from_the_server_itself() {
    let app = spawn_app().await;
    let client = client();
    let resp = client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .expect("docs answer");
    assert_eq!(resp.status(), 200);
    let page_url = resp.url().clone();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = resp.text().await.unwrap();
    assert!(html.to_ascii_lowercase().contains("swagger"), "{html}");

    let urls = linked_urls(&html);
    let assets: Vec<&String> = urls
        .iter()
        .filter(|u| u.ends_with(".js") || u.ends_with(".css"))
        .collect();
    assert!(
        assets.iter().any(|u| u.ends_with(".js")),
        "no script: {urls:?}"
    );
    let external: Vec<&String> = urls.iter().filter(|u| is_external(u)).collect();
    assert!(external.is_empty(), "external references: {external:?}");

    // Every script and style the page loads is served here, and none of the scripts
    // pulls in anything from elsewhere.
    for asset in assets {
        let url = page_url.join(asset).expect("relative URL");
        assert_eq!(url.host_str(), page_url.host_str(), "{url}");
        let resp = client.get(url.clone()).send().await.expect("asset answers");
        assert_eq!(resp.status(), 200, "{url}");
        let body = resp.text().await.unwrap();
        if asset.ends_with("initializer.js") {
            assert!(body.contains("/openapi.json"), "{body}");
            for needle in ["cdn.", "unpkg.com", "jsdelivr", "cdnjs"] {
                assert!(
                    !body.contains(needle),
                    "{asset} loads from {needle}: {body}"
                );
            }
        }
    }
}

#[tokio::test]
async fn jwks_publishes_one_ed25519_key() {
    let app = spawn_app().await;
    let reply = get(&app, "/.well-known/jwks.json").await;
    let jwks = reply.ok(200);
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{jwks}");
    let key = &keys[0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    let kid = key["kid"].as_str().expect("kid");
    assert!(!kid.is_empty());
    let x = URL_SAFE_NO_PAD
        .decode(key["x"].as_str().expect("x"))
        .expect("x is base64url");
    assert_eq!(x.len(), 32);
    // Only public members.
    let members: BTreeSet<&str> = key
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        members,
        BTreeSet::from(["kty", "crv", "x", "kid", "alg", "use"]),
        "{key}"
    );

    // It is the key that signs access tokens.
    let grant = app.register(&unique_email()).await;
    let header = jsonwebtoken::decode_header(&access(&grant)).unwrap();
    assert_eq!(header.kid.as_deref(), Some(kid));
}

#[tokio::test]
async fn every_answer_names_its_request_and_problems_point_at_it() {
    let app = spawn_app().await;
    let http = client();
    let ask = |path: &str, id: Option<&str>| {
        let mut request = http.get(format!("{}{path}", app.base));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };
    // No id sent: one is made (a UUID) and answered.
    let answer = ask("/healthz", None).await.unwrap();
    let made = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    // A plain client id is kept, and a problem names it as its instance.
    let answer = ask("/no/such/route", Some("checkout-7.a_b")).await.unwrap();
    assert_eq!(answer.headers()["x-request-id"], "checkout-7.a_b");
    let problem: Value = answer.json().await.unwrap();
    assert_eq!(problem["code"], "NOT_FOUND");
    assert_eq!(problem["instance"], "urn:sessiond:request:checkout-7.a_b");
    // Anything else is replaced, never echoed.
    let odd = format!("{}\"<x>", "y".repeat(10));
    let answer = ask("/no/such/route", Some(&odd)).await.unwrap();
    let replaced = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&replaced).is_ok(), "{replaced}");
    let problem: Value = answer.json().await.unwrap();
    assert_eq!(
        problem["instance"],
        format!("urn:sessiond:request:{replaced}")
    );
}
