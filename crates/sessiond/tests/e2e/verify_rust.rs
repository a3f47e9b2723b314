//! The Rust verifier (`sessiond-verify`) against the real binary: local checks that
//! honour revocation through the feed, fail closed when the feed is gone, resume after a
//! restart, start from a snapshot, and refuse the JWT attack set.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::json;
use sessiond_verify::{Config, Verifier, VerifyError};

use crate::common::*;

const ADMIN_KEY: &str = "admin-key-for-the-verifier-tests-0123456789";
const VERIFIER_KEY: &str = "verifier-key-for-the-verifier-tests-012345";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &Path, port: u16) -> Server {
    let mut cmd = sessiond(dir);
    cmd.arg("--data-dir")
        .arg(dir.join("data"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("SESSIOND_ADMIN_API_KEY", ADMIN_KEY)
        .env(
            "SESSIOND_VERIFIER_API_KEYS",
            format!("[\"{VERIFIER_KEY}\"]"),
        );
    Server::start(cmd)
}

fn api_of(server: &Server) -> Api {
    let mut api = server.api();
    api.admin_key = ADMIN_KEY.to_owned();
    api
}

async fn start_verifier(port: u16, staleness: Duration) -> Verifier {
    let mut config = Config::new(
        &format!("http://127.0.0.1:{port}"),
        VERIFIER_KEY,
        "sessiond",
        "sessiond",
    );
    config.staleness_bound = staleness;
    Verifier::start(config).await.expect("verifier starts")
}

/// Waits (briefly) until `check` holds; how long it took.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

fn token_of(grant: &serde_json::Value) -> String {
    grant["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn local_checks_honour_revocations_from_the_feed() {
    let dir = tempdir();
    let port = free_port();
    let server = start(dir.path(), port);
    let api = api_of(&server);
    let email = "verified@example.com";
    let grant = api.register(email).await;
    let token = token_of(&grant);
    let verifier = start_verifier(port, Duration::from_secs(15)).await;

    let claims = verifier
        .verify(&token)
        .await
        .expect("a fresh token verifies");
    assert_eq!(claims.sid, grant["session"]["id"].as_str().unwrap());

    // Logout: refused locally within the feed's latency.
    api.post_as("/v1/logout", &token, json!({})).await.ok(204);
    let took = within(Duration::from_secs(1), async || {
        matches!(
            verifier.verify(&token).await,
            Err(VerifyError::SessionRevoked { ref reason }) if reason == "logout"
        )
    })
    .await;
    println!("logout refused by the verifier after {took:?}");

    // Deactivation: every token of the user is refused.
    let a = api.login(email).await.ok(200);
    let b = api.login(email).await.ok(200);
    verifier.verify(&token_of(&a)).await.unwrap();
    let user_id = grant["user"]["id"].as_str().unwrap();
    api.admin(
        Method::PATCH,
        &format!("/v1/admin/users/{user_id}"),
        Some(json!({"active": false})),
    )
    .await
    .ok(200);
    for t in [token_of(&a), token_of(&b)] {
        within(Duration::from_secs(1), async || {
            verifier.verify(&t).await.is_err()
        })
        .await;
        assert_eq!(
            verifier.verify(&t).await.unwrap_err(),
            VerifyError::SessionRevoked {
                reason: "user_deactivated".into()
            }
        );
    }

    // A verifier started after the revocations learns them from the snapshot.
    let late = start_verifier(port, Duration::from_secs(15)).await;
    assert!(matches!(
        late.verify(&token_of(&a)).await,
        Err(VerifyError::SessionRevoked { .. })
    ));
    assert!(late.denied_count().0 >= 3);
    server.stop();
}

#[tokio::test]
async fn the_verifier_fails_closed_when_the_feed_is_gone_and_resumes_after_a_restart() {
    let dir = tempdir();
    let port = free_port();
    let server = start(dir.path(), port);
    let api = api_of(&server);
    let email = "restarted@example.com";
    api.register(email).await;
    let staleness = Duration::from_secs(7);
    let verifier = start_verifier(port, staleness).await;
    let grant = api.login(email).await.ok(200);
    let token = token_of(&grant);
    verifier.verify(&token).await.unwrap();

    server.stop();
    // No heartbeat: within the bound (plus a heartbeat's slack) every check fails closed.
    within(staleness + Duration::from_secs(3), async || {
        verifier.verify(&token).await.err() == Some(VerifyError::FeedStale)
    })
    .await;

    let server = start(dir.path(), port);
    let api = api_of(&server);
    within(Duration::from_secs(10), async || {
        verifier.verify(&token).await.is_ok()
    })
    .await;
    // Revocations after the restart arrive as before, from the cursor it kept.
    api.post_as("/v1/logout", &token, json!({})).await.ok(204);
    within(Duration::from_secs(1), async || {
        matches!(
            verifier.verify(&token).await,
            Err(VerifyError::SessionRevoked { .. })
        )
    })
    .await;
    server.stop();
}

#[tokio::test]
async fn rotated_keys_verify_new_tokens_and_old_ones_until_they_expire() {
    let dir = tempdir();
    let port = free_port();
    let server = start(dir.path(), port);
    let api = api_of(&server);
    let old = token_of(&api.register("rotating@example.com").await);
    let verifier = start_verifier(port, Duration::from_secs(15)).await;
    verifier.verify(&old).await.unwrap();
    server.stop();

    let rotated = run({
        let mut cmd = sessiond(dir.path());
        cmd.arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["keys", "rotate", "--now"]);
        cmd
    })
    .success();
    assert!(rotated.stdout.starts_with("new signing key"));
    let server = start(dir.path(), port);
    let api = api_of(&server);
    let new = token_of(&api.login("rotating@example.com").await.ok(200));
    // A kid the verifier has not seen: it refetches the JWKS once and verifies.
    verifier.verify(&new).await.expect("the new key verifies");
    verifier
        .verify(&old)
        .await
        .expect("the old key still verifies");
    server.stop();
}

#[tokio::test]
async fn the_jwt_attack_set_is_refused() {
    let dir = tempdir();
    let port = free_port();
    let server = start(dir.path(), port);
    let api = api_of(&server);
    let good = token_of(&api.register("attacked@example.com").await);
    let verifier = start_verifier(port, Duration::from_secs(15)).await;
    verifier.verify(&good).await.unwrap();

    let parts: Vec<&str> = good.split('.').collect();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let with_header = |h: serde_json::Value| {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(h.to_string()),
            parts[1],
            parts[2]
        )
    };
    let mut forged = vec![
        // alg none, unsigned.
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#),
            parts[1]
        ),
        with_header(json!({"alg": "none", "typ": "at+jwt", "kid": header["kid"]})),
        with_header(json!({"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]})),
        with_header(json!({"alg": "EdDSA", "typ": "JWT", "kid": header["kid"]})),
        with_header(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "../../etc/passwd"})),
        with_header(json!({"alg": "EdDSA", "typ": "at+jwt"})),
        with_header(
            json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "evil", "jku": "http://127.0.0.1:1/jwks"}),
        ),
        with_header(
            json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "evil", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}),
        ),
        // Padded or standard-alphabet base64.
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        // Standard-alphabet characters where base64url has none.
        format!("{}.{}+.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], parts[1], "AAAA"),
        "not a token".to_owned(),
    ];
    // HS256 signed with the public key as the secret (the classic confusion).
    let jwks = api.jwks().await;
    let public = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let hs_header = URL_SAFE_NO_PAD
        .encode(json!({"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]}).to_string());
    let signing_input = format!("{hs_header}.{}", parts[1]);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public.as_bytes());
    let tag = ring::hmac::sign(&key, signing_input.as_bytes());
    forged.push(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    ));

    for token in &forged {
        assert_eq!(
            verifier.verify(token).await.unwrap_err(),
            VerifyError::TokenInvalid,
            "{token}"
        );
    }
    server.stop();
}
