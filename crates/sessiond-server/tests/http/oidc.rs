//! ID-token logins (providers of kind `oidc`) against a stub issuer the tests start: a
//! real local HTTP server with its own keys (an RSA key, as Apple and Google use, and a
//! P-256 key for rotations), its discovery document and its JWKS, which the tests change,
//! break and count.

use std::time::Duration;

use crate::common::*;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair;
use serde_json::{Value, json};
use sessiond_server::infra::exchange::{ExchangeConfig, ProviderConfig};
use sessiond_server::infra::oidc::{NonceHash, NoncePolicy, OidcProviderConfig};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const RSA_KEY_DER: &[u8] = include_bytes!("../fixtures/oidc-test-rsa-key.der");
const CLIENT_ID: &str = "com.example.ios";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key of the stub issuer, with its public half as a JWK.
struct IssuerKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl IssuerKey {
    fn rsa(kid: &str) -> Self {
        let pair = ring::signature::RsaKeyPair::from_der(RSA_KEY_DER).expect("fixture key");
        let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
        Self {
            kid: kid.into(),
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(RSA_KEY_DER),
            jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(&public.n), "e": b64(&public.e)}),
        }
    }

    fn p256(kid: &str) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate");
        let pair =
            ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("parse");
        let point = pair.public_key().as_ref();
        Self {
            kid: kid.into(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "x": b64(&point[1..33]), "y": b64(&point[33..65])}),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }
}

/// The stub issuer: discovery at the standard path, the JWKS at `/jwks`.
struct Issuer {
    server: MockServer,
}

impl Issuer {
    async fn start() -> Self {
        Self {
            server: MockServer::start().await,
        }
    }

    fn url(&self) -> String {
        self.server.uri()
    }

    /// Serves discovery and a JWKS of `keys` (replacing whatever was served).
    async fn publish(&self, keys: &[&IssuerKey]) {
        self.server.reset().await;
        self.serve_discovery(&self.url()).await;
        let jwks = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(jwks))
            .mount(&self.server)
            .await;
    }

    async fn serve_discovery(&self, issuer: &str) {
        Mock::given(method("GET"))
            .and(path("/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "issuer": issuer,
                "jwks_uri": format!("{}/jwks", self.url()),
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            })))
            .mount(&self.server)
            .await;
    }

    /// Every request now fails, as an issuer having an outage.
    async fn go_down(&self) {
        self.server.reset().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&self.server)
            .await;
    }

    async fn jwks_fetches(&self) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/jwks")
            .count()
    }
}

fn provider(issuer: &Issuer) -> OidcProviderConfig {
    OidcProviderConfig {
        issuer: issuer.url(),
        also_issuers: vec![],
        jwks_url: None,
        audiences: vec!["com.example.web".into(), CLIENT_ID.into()],
        nonce: NoncePolicy::Required,
        nonce_hash: NonceHash::Raw,
        clock_skew: Duration::from_secs(60),
        timeout: Duration::from_secs(2),
        jwks_cooldown: Duration::ZERO,
        jwks_max_age: Duration::from_secs(3600),
    }
}

fn exchange_of(providers: Vec<(&str, OidcProviderConfig)>) -> ExchangeConfig {
    let mut config = ExchangeConfig::default();
    for (name, p) in providers {
        config
            .providers
            .insert(name.to_owned(), ProviderConfig::Oidc(p));
    }
    config
}

/// Claims as an issuer makes them, as of the app's clock.
fn claims(app: &TestApp, issuer: &Issuer, sub: &str, nonce: &str) -> Value {
    let now = app.clock_now().timestamp();
    json!({
        "iss": issuer.url(),
        "aud": CLIENT_ID,
        "sub": sub,
        "iat": now,
        "exp": now + 600,
        "nonce": nonce,
        "email": format!("{sub}@example.com"),
        "email_verified": true,
        "name": "Ada Lovelace",
    })
}

async fn sign_in(app: &TestApp, provider: &str, token: &str, nonce: Option<&str>) -> Reply {
    let mut body = json!({"provider": provider, "token": token});
    if let Some(nonce) = nonce {
        body["nonce"] = nonce.into();
    }
    app.post("/v1/auth/exchange", body).await
}

#[track_caller]
fn refused(reply: &Reply, because: &str) {
    let problem = reply.problem(401, "UPSTREAM_REJECTED");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(because),
        "detail {detail:?} should say {because:?}"
    );
}

#[test]
fn the_shipped_apple_and_google_presets_are_valid_configurations() {
    for (file, name, hash, policy) in [
        (
            "oidc-apple.toml",
            "apple",
            NonceHash::Sha256,
            NoncePolicy::Required,
        ),
        (
            "oidc-google.toml",
            "google",
            NonceHash::Raw,
            NoncePolicy::Optional,
        ),
    ] {
        let path = format!("{}/../../examples/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let config: sessiond_server::Config =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{file} parses: {e}"));
        config.validate().unwrap();
        let ProviderConfig::Oidc(p) = &config.exchange.providers[name] else {
            panic!("{file}: {name} is an oidc provider");
        };
        assert_eq!((p.nonce_hash, p.nonce), (hash, policy), "{file}");
        assert!(
            sessiond_server::infra::exchange::Exchange::new(&config.exchange, |_| None).is_ok()
        );
        // And it prints back as it was read.
        let again: sessiond_server::Config =
            toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(again.exchange, config.exchange, "{file}");
    }
}

#[test]
fn provider_mistakes_are_named_at_start() {
    for (text, expected) in [
        (
            "[exchange.providers.x]\nkind = \"saml\"\n",
            "unknown provider kind `saml`",
        ),
        (
            "[exchange.providers.x]\nkind = \"oidc\"\nissuer = \"https://id.example\"\naudiences = []\n",
            "audiences",
        ),
        (
            "[exchange.providers.x]\nkind = \"oidc\"\nissuer = \"https://id.example\"\naudiences = [\"a\"]\nnonce = \"sometimes\"\n",
            "sometimes",
        ),
        (
            "[exchange.providers.x]\nkind = \"oidc\"\nissuer = \"https://id.example\"\naudiences = [\"a\"]\nurl = \"https://x\"\n",
            "url",
        ),
    ] {
        let error = match toml::from_str::<sessiond_server::Config>(text) {
            Err(e) => e.to_string(),
            Ok(config) => {
                sessiond_server::infra::exchange::Exchange::new(&config.exchange, |_| None)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| panic!("{text} should be refused"))
            }
        };
        assert!(
            error.contains(expected),
            "{error:?} should name {expected:?}"
        );
    }
}

backend_suite! {
    helpers {
        async fn app_with(providers: Vec<(&str, OidcProviderConfig)>) -> TestApp {
            let exchange = exchange_of(providers);
            spawn_with(move |c| c.exchange = exchange).await
        }
    }

    #[tokio::test]
    async fn an_id_token_logs_in_once_and_the_same_subject_is_the_same_user() {
        let issuer = Issuer::start().await;
        let key = IssuerKey::rsa("rsa-1");
        issuer.publish(&[&key]).await;
        let app = app_with(vec![("google", provider(&issuer))]).await;

        let token = key.sign(&claims(&app, &issuer, "g-1001", "n-1"));
        let grant = sign_in(&app, "google", &token, Some("n-1")).await.ok(200);
        assert_eq!(grant["session"]["auth_method"], "exchange:google");
        assert_eq!(grant["user"]["email"], "g-1001@example.com");
        assert_eq!(grant["user"]["name"], "Ada Lovelace");
        let claims_of_access = app.introspect(&access(&grant)).await;
        assert_eq!(claims_of_access["amr"], json!(["exchange:google"]));
        let user = app
            .admin(reqwest::Method::GET, &format!("/v1/admin/users/{}", grant["user"]["id"].as_str().unwrap()), None)
            .await
            .ok(200);
        assert_eq!(user["email_verified"], true, "{user}");
        assert_eq!(user["identities"][0]["provider"], "google", "{user}");
        assert_eq!(user["identities"][0]["external_id"], "g-1001", "{user}");

        // The same token again: refused, on this instance or any other.
        refused(&sign_in(&app, "google", &token, Some("n-1")).await, "already used");

        // A new sign-in of the same person: the same user.
        app.clock.advance(chrono::Duration::seconds(5));
        let later = key.sign(&claims(&app, &issuer, "g-1001", "n-2"));
        let again = sign_in(&app, "google", &later, Some("n-2")).await.ok(200);
        assert_eq!(again["user"]["id"], grant["user"]["id"]);
        assert_eq!(issuer.jwks_fetches().await, 1, "the keys are cached");
    }

    #[tokio::test]
    async fn every_check_of_the_token_refuses_with_its_reason() {
        let issuer = Issuer::start().await;
        let key = IssuerKey::rsa("rsa-1");
        issuer.publish(&[&key]).await;
        let app = app_with(vec![("google", provider(&issuer))]).await;
        let good = claims(&app, &issuer, "g-2", "n");
        let now = app.clock_now().timestamp();
        let with = |changes: Value| {
            let mut c = good.clone();
            for (k, v) in changes.as_object().unwrap() {
                c[k] = v.clone();
            }
            key.sign(&c)
        };

        refused(&sign_in(&app, "google", &with(json!({"aud": "com.other.app"})), Some("n")).await, "audience");
        refused(&sign_in(&app, "google", &with(json!({"aud": ["x", "y"]})), Some("n")).await, "audience");
        refused(&sign_in(&app, "google", &with(json!({"iss": "https://evil.example"})), Some("n")).await, "issuer");
        // Past the expiry by more than the tolerated skew; within it, still good.
        refused(&sign_in(&app, "google", &with(json!({"exp": now - 61, "iat": now - 700})), Some("n")).await, "expired");
        refused(&sign_in(&app, "google", &with(json!({"iat": now + 120})), Some("n")).await, "future");
        refused(&sign_in(&app, "google", &with(json!({"nbf": now + 120})), Some("n")).await, "not valid yet");
        refused(&sign_in(&app, "google", &with(json!({"sub": ""})), Some("n")).await, "sub");
        refused(&sign_in(&app, "google", &with(json!({"exp": null})), Some("n")).await, "exp");
        refused(&sign_in(&app, "google", &with(json!({})), Some("other nonce")).await, "nonce");
        refused(&sign_in(&app, "google", &with(json!({"nonce": null})), Some("n")).await, "nonce");
        // A signature that does not verify, and tokens that are no RS/ES/EdDSA JWT.
        let token = with(json!({}));
        let (rest, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        let forged = format!("{rest}.{flipped}{}", &signature[1..]);
        refused(&sign_in(&app, "google", &forged, Some("n")).await, "signature");
        let hmac = jsonwebtoken::encode(
            &Header { kid: Some("rsa-1".into()), ..Header::new(Algorithm::HS256) },
            &good,
            &EncodingKey::from_secret(b"the public modulus, say"),
        )
        .unwrap();
        refused(&sign_in(&app, "google", &hmac, Some("n")).await, "public-key");
        refused(&sign_in(&app, "google", "not.a.jwt", Some("n")).await, "not a JWT");
        // The nonce this provider requires, missing: the request is incomplete.
        let problem = sign_in(&app, "google", &with(json!({})), None)
            .await
            .problem(422, "VALIDATION_ERROR");
        assert_eq!(problem["errors"][0]["field"], "nonce", "{problem}");

        // Within the skew, and the good token itself, log in.
        sign_in(&app, "google", &with(json!({"exp": now - 30, "iat": now - 600, "nonce": "n-skew"})), Some("n-skew")).await.ok(200);
        sign_in(&app, "google", &with(json!({})), Some("n")).await.ok(200);
    }

    #[tokio::test]
    async fn apple_style_hashed_nonces_and_string_email_verified() {
        let issuer = Issuer::start().await;
        let key = IssuerKey::rsa("apple-1");
        issuer.publish(&[&key]).await;
        let apple = OidcProviderConfig {
            nonce_hash: NonceHash::Sha256,
            ..provider(&issuer)
        };
        let app = app_with(vec![("apple", apple)]).await;
        let raw = "raw-nonce-7c1f";
        // echo -n raw-nonce-7c1f | sha256sum
        let hashed = {
            use std::fmt::Write;
            let digest = ring::digest::digest(&ring::digest::SHA256, raw.as_bytes());
            digest.as_ref().iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
        };
        let mut c = claims(&app, &issuer, "001234.abcd", &hashed);
        c["email_verified"] = "true".into();
        c["name"] = Value::Null;
        let token = key.sign(&c);
        // The hash itself is not the nonce.
        refused(&sign_in(&app, "apple", &token, Some(&hashed)).await, "nonce");
        let grant = sign_in(&app, "apple", &token, Some(raw)).await.ok(200);
        assert_eq!(grant["user"]["email"], "001234.abcd@example.com");

        // An address the issuer does not call verified is not taken.
        let mut unverified = claims(&app, &issuer, "001235.ef", &hashed);
        unverified["email_verified"] = false.into();
        let grant = sign_in(&app, "apple", &key.sign(&unverified), Some(raw)).await.ok(200);
        assert_eq!(grant["user"]["email"], Value::Null, "{grant}");
    }

    #[tokio::test]
    async fn optional_and_ignored_nonces_and_no_nonce_for_other_providers() {
        let issuer = Issuer::start().await;
        let key = IssuerKey::rsa("rsa-1");
        issuer.publish(&[&key]).await;
        let optional = OidcProviderConfig { nonce: NoncePolicy::Optional, ..provider(&issuer) };
        let ignored = OidcProviderConfig { nonce: NoncePolicy::Ignored, ..provider(&issuer) };
        let app = app_with(vec![("google", optional), ("loose", ignored)]).await;

        // Google's iOS SDK makes its own nonce: without one in the request, accepted.
        let sdk_made = key.sign(&claims(&app, &issuer, "g-3", "made-by-the-sdk"));
        sign_in(&app, "google", &sdk_made, None).await.ok(200);
        // But a nonce that is sent is compared.
        let other = key.sign(&claims(&app, &issuer, "g-3", "n-a"));
        refused(&sign_in(&app, "google", &other, Some("n-b")).await, "nonce");
        let ignored_token = key.sign(&claims(&app, &issuer, "g-4", "n-a"));
        sign_in(&app, "loose", &ignored_token, Some("anything")).await.ok(200);
        // Bounds of the field itself.
        let long = "n".repeat(1025);
        let problem = sign_in(&app, "google", &other, Some(&long)).await.problem(422, "VALIDATION_ERROR");
        assert_eq!(problem["errors"][0]["field"], "nonce", "{problem}");
    }

    #[tokio::test]
    async fn an_unknown_kid_fetches_the_keys_again_and_a_rotation_is_followed() {
        let issuer = Issuer::start().await;
        let old = IssuerKey::rsa("rsa-1");
        let new = IssuerKey::p256("ec-2");
        issuer.publish(&[&old]).await;
        let app = app_with(vec![("google", provider(&issuer))]).await;
        sign_in(&app, "google", &old.sign(&claims(&app, &issuer, "g-5", "n1")), Some("n1")).await.ok(200);

        // Signed with a key not published (yet): looked for, then refused.
        let early = new.sign(&claims(&app, &issuer, "g-5", "n2"));
        refused(&sign_in(&app, "google", &early, Some("n2")).await, "key");
        assert_eq!(issuer.jwks_fetches().await, 2, "the first login's fetch, and one for the unknown kid");

        // The issuer rotates: the new key is published and tokens signed with it work.
        issuer.publish(&[&old, &new]).await;
        let rotated = new.sign(&claims(&app, &issuer, "g-5", "n3"));
        let grant = sign_in(&app, "google", &rotated, Some("n3")).await.ok(200);
        assert_eq!(issuer.jwks_fetches().await, 1, "one fetch since the rotation");
        sign_in(&app, "google", &old.sign(&claims(&app, &issuer, "g-5", "n4")), Some("n4")).await.ok(200);
        assert_eq!(issuer.jwks_fetches().await, 1, "known keys need no fetch");
        assert_eq!(grant["user"]["email"], "g-5@example.com");
    }

    #[tokio::test]
    async fn unknown_kids_fetch_the_keys_at_most_once_per_cooldown() {
        let issuer = Issuer::start().await;
        let key = IssuerKey::rsa("rsa-1");
        issuer.publish(&[&key]).await;
        let cooled = OidcProviderConfig { jwks_cooldown: Duration::from_secs(3600), ..provider(&issuer) };
        let app = app_with(vec![("google", cooled)]).await;
        sign_in(&app, "google", &key.sign(&claims(&app, &issuer, "g-6", "n")), Some("n")).await.ok(200);
        for i in 0..20 {
            let made_up = IssuerKey::p256(&format!("made-up-{i}"));
            let token = made_up.sign(&claims(&app, &issuer, "g-6", "n"));
            refused(&sign_in(&app, "google", &token, Some("n")).await, "key");
        }
        assert_eq!(issuer.jwks_fetches().await, 1, "made-up kids do not hammer the issuer");
    }

    #[tokio::test]
    async fn an_issuer_outage_keeps_the_cached_keys_working_and_answers_503_otherwise() {
        let issuer = Issuer::start().await;
        let key = IssuerKey::rsa("rsa-1");
        issuer.publish(&[&key]).await;
        // Keys are considered old at once, so every login tries the issuer first.
        let eager = OidcProviderConfig { jwks_max_age: Duration::ZERO, ..provider(&issuer) };
        let app = app_with(vec![("google", eager.clone())]).await;
        sign_in(&app, "google", &key.sign(&claims(&app, &issuer, "g-7", "n1")), Some("n1")).await.ok(200);

        issuer.go_down().await;
        sign_in(&app, "google", &key.sign(&claims(&app, &issuer, "g-7", "n2")), Some("n2")).await.ok(200);
        let fetches = issuer.jwks_fetches().await;
        assert!(fetches >= 1, "the issuer was asked during the outage ({fetches})");
        // A key it has never seen cannot be checked while the issuer is down.
        let unseen = IssuerKey::p256("ec-9").sign(&claims(&app, &issuer, "g-7", "n3"));
        sign_in(&app, "google", &unseen, Some("n3")).await.problem(503, "UPSTREAM_UNAVAILABLE");

        // A server that never had the keys answers 503 while the issuer is down, and
        // logs in once it is back.
        let fresh = app_with(vec![("google", eager)]).await;
        let token = key.sign(&claims(&fresh, &issuer, "g-8", "n4"));
        let problem = sign_in(&fresh, "google", &token, Some("n4")).await.problem(503, "UPSTREAM_UNAVAILABLE");
        assert!(problem["detail"].is_string(), "{problem}");
        issuer.publish(&[&key]).await;
        sign_in(&fresh, "google", &token, Some("n4")).await.ok(200);
    }

    #[tokio::test]
    async fn a_discovery_document_naming_another_issuer_is_not_trusted() {
        let issuer = Issuer::start().await;
        let key = IssuerKey::rsa("rsa-1");
        issuer.server.reset().await;
        issuer.serve_discovery("https://someone-else.example").await;
        let app = app_with(vec![("google", provider(&issuer))]).await;
        let token = key.sign(&claims(&app, &issuer, "g-9", "n"));
        sign_in(&app, "google", &token, Some("n")).await.problem(503, "UPSTREAM_UNAVAILABLE");

        // With the JWKS named in configuration, discovery is not needed at all.
        issuer.publish(&[&key]).await;
        let direct = OidcProviderConfig { jwks_url: Some(format!("{}/jwks", issuer.url())), ..provider(&issuer) };
        let app = app_with(vec![("google", direct)]).await;
        issuer.server.reset().await;
        issuer.serve_discovery("https://someone-else.example").await;
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": [key.jwk.clone()]})))
            .mount(&issuer.server)
            .await;
        let token = key.sign(&claims(&app, &issuer, "g-9", "n"));
        sign_in(&app, "google", &token, Some("n")).await.ok(200);
    }

    #[tokio::test]
    async fn an_address_someone_else_has_is_not_handed_over() {
        let issuer = Issuer::start().await;
        let key = IssuerKey::rsa("rsa-1");
        issuer.publish(&[&key]).await;
        let app = app_with(vec![("google", provider(&issuer))]).await;
        let owner = app.register("g-10@example.com").await;
        let grant = sign_in(&app, "google", &key.sign(&claims(&app, &issuer, "g-10", "n")), Some("n")).await.ok(200);
        assert_ne!(grant["user"]["id"], owner["user"]["id"], "a separate user");
        assert_eq!(grant["user"]["email"], Value::Null, "{grant}");
    }

    #[tokio::test]
    async fn a_deactivated_user_cannot_sign_in_with_an_id_token() {
        let issuer = Issuer::start().await;
        let key = IssuerKey::rsa("rsa-1");
        issuer.publish(&[&key]).await;
        let app = app_with(vec![("google", provider(&issuer))]).await;
        let grant = sign_in(&app, "google", &key.sign(&claims(&app, &issuer, "g-11", "n1")), Some("n1")).await.ok(200);
        let id = grant["user"]["id"].as_str().unwrap();
        app.admin(reqwest::Method::PATCH, &format!("/v1/admin/users/{id}"), Some(json!({"active": false})))
            .await
            .ok(200);
        sign_in(&app, "google", &key.sign(&claims(&app, &issuer, "g-11", "n2")), Some("n2"))
            .await
            .problem(401, "USER_INACTIVE");
    }
}
