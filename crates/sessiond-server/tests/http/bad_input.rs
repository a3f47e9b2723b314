//! Bad input never causes a 500: a table of malformed, mistyped, oversize, unauthenticated
//! and forged requests, each answered with the exact 4xx problem the contract names.

use std::time::Duration;

use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

/// How a case authenticates.
#[derive(Clone, Debug)]
enum Auth {
    None,
    /// The fixture user's access token.
    Access,
    /// The fixture user's refresh token, as a bearer token.
    Refresh,
    /// The admin API key.
    Admin,
    /// `Authorization: Bearer <this>`.
    Bearer(String),
    /// `Authorization: <this>`, verbatim.
    Header(Vec<u8>),
}

/// One row of the table.
#[derive(Debug)]
struct Case {
    name: String,
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    auth: Auth,
    status: u16,
    code: &'static str,
    /// Fields that must be named in the problem's `errors` array.
    fields: Vec<&'static str>,
}

fn case(name: impl Into<String>, method: Method, path: impl Into<String>) -> Case {
    Case {
        name: name.into(),
        method,
        path: path.into(),
        headers: Vec::new(),
        body: None,
        auth: Auth::None,
        status: 0,
        code: "",
        fields: Vec::new(),
    }
}

impl Case {
    /// A body sent as `Content-Type: application/json`, whatever it holds.
    fn json(self, body: impl AsRef<[u8]>) -> Self {
        self.header("content-type", "application/json").raw(body)
    }

    /// A body with no content type unless one is added with [`Case::header`].
    fn raw(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = Some(body.as_ref().to_vec());
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    fn expect(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }

    fn field(mut self, field: &'static str) -> Self {
        self.fields.push(field);
        self
    }
}

/// What every case needs from the running app.
struct Fixture {
    access: String,
    refresh: String,
    user_id: String,
    session_id: String,
    admin_key: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

async fn send(
    client: &reqwest::Client,
    app: &TestApp,
    fx: &Fixture,
    c: &Case,
) -> Result<Answer, String> {
    let mut req = client.request(c.method.clone(), format!("{}{}", app.base, c.path));
    let authorization = match &c.auth {
        Auth::None => None,
        Auth::Access => Some(format!("Bearer {}", fx.access).into_bytes()),
        Auth::Refresh => Some(format!("Bearer {}", fx.refresh).into_bytes()),
        Auth::Admin => Some(format!("Bearer {}", fx.admin_key).into_bytes()),
        Auth::Bearer(token) => Some(format!("Bearer {token}").into_bytes()),
        Auth::Header(raw) => Some(raw.clone()),
    };
    if let Some(value) = authorization {
        let value = HeaderValue::from_bytes(&value).map_err(|e| format!("bad header: {e}"))?;
        req = req.header(reqwest::header::AUTHORIZATION, value);
    }
    for (name, value) in &c.headers {
        req = req.header(HeaderName::from_static(name), value.as_str());
    }
    if let Some(body) = &c.body {
        req = req.body(body.clone());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("body failed: {e}"))?
        .to_vec();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// Every way `answer` falls short of `c`'s expectations; empty when it is right.
fn check(c: &Case, answer: &Answer) -> Vec<String> {
    let mut wrong = Vec::new();
    let text = String::from_utf8_lossy(&answer.body);
    if answer.status >= 500 {
        wrong.push(format!("server error {}", answer.status));
    }
    if answer.status != c.status {
        wrong.push(format!("status {} (want {})", answer.status, c.status));
    }
    let content_type = answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    if content_type != Some("application/problem+json") {
        wrong.push(format!("content-type {content_type:?}"));
    }
    let body: Value = match serde_json::from_slice(&answer.body) {
        Ok(body) => body,
        Err(e) => {
            wrong.push(format!("body is not JSON ({e}): {text}"));
            return wrong;
        }
    };
    if body["code"] != c.code {
        wrong.push(format!("code {} (want {})", body["code"], c.code));
    }
    if body["status"] != answer.status {
        wrong.push(format!("problem status {}", body["status"]));
    }
    for member in ["type", "title", "detail"] {
        if !body[member].is_string() {
            wrong.push(format!("no string `{member}`"));
        }
    }
    for field in &c.fields {
        let named = body["errors"]
            .as_array()
            .is_some_and(|errors| errors.iter().any(|e| e["field"] == *field));
        if !named {
            wrong.push(format!("`errors` does not name {field:?}"));
        }
    }
    let challenge = answer
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok());
    let challenge_ok = match c.code {
        "TOKEN_INVALID" | "TOKEN_EXPIRED" => challenge
            .is_some_and(|h| h.starts_with("Bearer") && h.contains(r#"error="invalid_token""#)),
        // RFC 6750 §3.1: no error code when the request had no token at all.
        "TOKEN_NOT_PROVIDED" => {
            challenge.is_some_and(|h| h.starts_with("Bearer") && !h.contains("error="))
        }
        _ => true,
    };
    if !challenge_ok {
        wrong.push(format!("WWW-Authenticate {challenge:?}"));
    }
    // RFC 9110 §15.5.6: a 405 lists the methods the resource has.
    if answer.status == 405 && !answer.headers.contains_key("allow") {
        wrong.push("405 without `Allow`".into());
    }
    if !wrong.is_empty() {
        wrong.push(format!(
            "body: {}",
            text.chars().take(400).collect::<String>()
        ));
    }
    wrong
}

async fn run(app: &TestApp, fx: &Fixture, cases: &[Case]) {
    let client = client();
    let mut failures = Vec::new();
    for c in cases {
        assert!(
            c.status >= 400 && c.status < 500,
            "{}: no expectation",
            c.name
        );
        match send(&client, app, fx, c).await {
            Ok(answer) => {
                let wrong = check(c, &answer);
                if !wrong.is_empty() {
                    failures.push(format!(
                        "{} ({} {}): {}",
                        c.name,
                        c.method,
                        c.path,
                        wrong.join("; ")
                    ));
                }
            }
            Err(e) => failures.push(format!("{} ({} {}): {e}", c.name, c.method, c.path)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

async fn app_without_rate_limits() -> TestApp {
    spawn_with(|c| c.rate_limits.enabled = false).await
}

async fn fixture(app: &TestApp) -> Fixture {
    let grant = app.register(&unique_email()).await;
    Fixture {
        access: access(&grant),
        refresh: refresh_of(&grant),
        user_id: grant["user"]["id"].as_str().unwrap().to_owned(),
        session_id: session_id(&grant),
        admin_key: app.admin_key.clone(),
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

/// The server's real signing key (PKCS#8) and kid.
async fn server_key(app: &TestApp) -> (Vec<u8>, String) {
    let keys = app.store.signing_keys().await.expect("signing keys");
    let key = keys
        .iter()
        .find(|k| k.retired_at.is_none())
        .expect("an active key");
    (key.pkcs8.clone(), key.kid.clone())
}

fn jwt(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).expect("encodes")
}

fn ed_header(typ: Option<&str>, kid: Option<&str>) -> Header {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = typ.map(str::to_owned);
    header.kid = kid.map(str::to_owned);
    header
}

/// A compact JWS assembled by hand (for headers `jsonwebtoken` will not write).
fn hand_made(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let signing_input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(signature))
}

/// Access tokens that must all be refused with `TOKEN_INVALID`, by name.
async fn forged_tokens(app: &TestApp, fx: &Fixture) -> Vec<(&'static str, String)> {
    let jwks = app
        .send(Method::GET, "/.well-known/jwks.json", None, None)
        .await
        .ok(200);
    let real_kid = jwks["keys"][0]["kid"].as_str().expect("kid").to_owned();
    let (pkcs8, stored_kid) = server_key(app).await;
    assert_eq!(real_kid, stored_kid);
    let real_key = EncodingKey::from_ed_der(&pkcs8);
    let real_pair = Ed25519KeyPair::from_pkcs8(&pkcs8).expect("server key");
    let real_public = real_pair.public_key().as_ref().to_vec();

    let rng = ring::rand::SystemRandom::new();
    let other_pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
    let other_key = EncodingKey::from_ed_der(other_pkcs8.as_ref());
    let other_pair = Ed25519KeyPair::from_pkcs8(other_pkcs8.as_ref()).expect("key");

    let claims = claims_of(&fx.access);
    let with = |name: &str, value: Value| {
        let mut c = claims.clone();
        c[name] = value;
        c
    };
    let without = |name: &str| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(name);
        c
    };
    let at = Some("at+jwt");
    let kid = Some(real_kid.as_str());

    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.typ = Some("at+jwt".into());
    hs256.kid = Some(real_kid.clone());

    let mut jku = ed_header(at, Some("attacker-key"));
    jku.jku = Some("https://attacker.example/jwks.json".into());

    let parts: Vec<&str> = fx.access.split('.').collect();
    let mut bad_signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    bad_signature[0] ^= 1;

    vec![
        (
            "another key, our kid",
            jwt(&ed_header(at, kid), &claims, &other_key),
        ),
        (
            "another key, unknown kid",
            jwt(&ed_header(at, Some("not-our-kid")), &claims, &other_key),
        ),
        (
            "another key, no kid",
            jwt(&ed_header(at, None), &claims, &other_key),
        ),
        ("another key named by jku", jwt(&jku, &claims, &other_key)),
        (
            "another key embedded as jwk",
            hand_made(
                &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "embedded", "jwk": {
                    "kty": "OKP", "crv": "Ed25519", "kid": "embedded",
                    "x": b64(other_pair.public_key().as_ref()),
                }}),
                &claims,
                |m| other_pair.sign(m).as_ref().to_vec(),
            ),
        ),
        (
            "alg none, empty signature",
            format!(
                "{}.{}.",
                b64(json!({"alg": "none", "typ": "at+jwt", "kid": real_kid}).to_string()),
                b64(claims.to_string())
            ),
        ),
        (
            "alg none, some signature",
            hand_made(
                &json!({"alg": "none", "typ": "at+jwt", "kid": real_kid}),
                &claims,
                |_| b"x".to_vec(),
            ),
        ),
        (
            "HS256 keyed with our public key",
            jwt(&hs256, &claims, &EncodingKey::from_secret(&real_public)),
        ),
        (
            "HS256 keyed with a guess",
            jwt(&hs256, &claims, &EncodingKey::from_secret(b"secret")),
        ),
        (
            "our key, typ JWT",
            jwt(&ed_header(Some("JWT"), kid), &claims, &real_key),
        ),
        (
            "our key, no typ",
            jwt(&ed_header(None, kid), &claims, &real_key),
        ),
        (
            "our key, no kid",
            jwt(&ed_header(at, None), &claims, &real_key),
        ),
        (
            "our key, another issuer",
            jwt(
                &ed_header(at, kid),
                &with("iss", json!("https://evil.example")),
                &real_key,
            ),
        ),
        (
            "our key, another audience",
            jwt(
                &ed_header(at, kid),
                &with("aud", json!("some-other-api")),
                &real_key,
            ),
        ),
        (
            "our key, no exp",
            jwt(&ed_header(at, kid), &without("exp"), &real_key),
        ),
        (
            "our key, no sid",
            jwt(&ed_header(at, kid), &without("sid"), &real_key),
        ),
        (
            "our key, sid of no session",
            jwt(
                &ed_header(at, kid),
                &with("sid", json!(uuid::Uuid::now_v7().to_string())),
                &real_key,
            ),
        ),
        (
            "our key, sid not a uuid",
            jwt(&ed_header(at, kid), &with("sid", json!("nope")), &real_key),
        ),
        (
            "our key, sub of another user",
            jwt(
                &ed_header(at, kid),
                &with("sub", json!(uuid::Uuid::now_v7().to_string())),
                &real_key,
            ),
        ),
        (
            "tampered payload, original signature",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(with("sub", json!(uuid::Uuid::now_v7().to_string())).to_string()),
                parts[2]
            ),
        ),
        (
            "flipped signature bit",
            format!("{}.{}.{}", parts[0], parts[1], b64(&bad_signature)),
        ),
        ("padded signature", format!("{}=", fx.access)),
        (
            "standard base64 header",
            format!(
                "{}.{}.{}",
                base64::engine::general_purpose::STANDARD
                    .encode(URL_SAFE_NO_PAD.decode(parts[0]).unwrap()),
                parts[1],
                parts[2]
            ),
        ),
        ("truncated", fx.access[..fx.access.len() - 10].to_owned()),
        (
            "truncated to two parts",
            format!("{}.{}", parts[0], parts[1]),
        ),
        ("extra part", format!("{}.AAAA", fx.access)),
        ("empty parts", "..".to_owned()),
        ("three junk parts", "a.b.c".to_owned()),
        ("garbage", "garbage".to_owned()),
        ("non-ASCII", "eyJhbGciOiJFZERTQSJ9.é.sig".to_owned()),
        ("the refresh token", fx.refresh.clone()),
        ("the admin key", fx.admin_key.clone()),
        (
            "9 KiB",
            format!(
                "{}.{}.{}",
                "a".repeat(3072),
                "b".repeat(3072),
                "c".repeat(3072)
            ),
        ),
    ]
}

fn refresh_garbage(fx: &Fixture) -> Vec<(&'static str, String)> {
    vec![
        ("empty", String::new()),
        ("garbage", "garbage".to_owned()),
        ("an access token", fx.access.clone()),
        ("well-formed but unknown", b64([7u8; 32])),
        ("truncated", fx.refresh[..fx.refresh.len() - 1].to_owned()),
        ("one char longer", format!("{}A", fx.refresh)),
        ("padded", format!("{}=", fx.refresh)),
        (
            "standard base64",
            base64::engine::general_purpose::STANDARD
                .encode(URL_SAFE_NO_PAD.decode(&fx.refresh).unwrap()),
        ),
        ("the admin key", fx.admin_key.clone()),
        ("huge", "A".repeat(32 * 1024)),
        ("NUL", "\0".repeat(43)),
    ]
}

async fn setup() -> (TestApp, Fixture) {
    let app = app_without_rate_limits().await;
    let fx = fixture(&app).await;
    (app, fx)
}

/// None of the refused requests did anything: the session, the user and the refresh
/// token live on.
async fn assert_untouched(app: &TestApp, fx: &Fixture) {
    let me = app.whoami(&fx.access).await.ok(200);
    assert_eq!(me["user"]["active"], true);
    assert_eq!(me["session"]["id"].as_str(), Some(fx.session_id.as_str()));
    assert_eq!(
        app.get("/v1/session/data", &fx.access).await.ok(200),
        json!({})
    );
    let sessions = app.get("/v1/sessions", &fx.access).await.ok(200);
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
    let check = app.validate(&fx.refresh).await;
    assert_eq!(check["valid"], true, "{check}");
}

/// Malformed JSON: 400.
#[tokio::test]
async fn malformed_json_is_400() {
    let (app, fx) = setup().await;
    let user = &fx.user_id;
    use Method as M;
    let cases = vec![
        case("truncated JSON", M::POST, "/v1/users")
            .json(r#"{"email": "a@example.com", "password": "#)
            .expect(400, "VALIDATION_ERROR"),
        case("empty JSON body", M::POST, "/v1/users")
            .json("")
            .expect(400, "VALIDATION_ERROR"),
        case("not JSON at all", M::POST, "/v1/auth/password")
            .json("email=a@example.com&password=x")
            .expect(400, "VALIDATION_ERROR"),
        case("trailing garbage", M::POST, "/v1/token/refresh")
            .json(r#"{"refresh_token": "x"} trailing"#)
            .expect(400, "VALIDATION_ERROR"),
        case("single quotes", M::POST, "/v1/token/validate")
            .json("{'token': 'x'}")
            .expect(400, "VALIDATION_ERROR"),
        case("invalid UTF-8", M::POST, "/v1/users")
            .json(b"{\"email\": \"\xff\xfe\", \"password\": \"x\"}")
            .expect(400, "VALIDATION_ERROR"),
        case(
            "malformed JSON, anonymous",
            M::POST,
            "/v1/sessions/anonymous",
        )
        .json("{")
        .expect(400, "VALIDATION_ERROR"),
        case("malformed JSON, otp", M::POST, "/v1/auth/otp")
            .json("{")
            .expect(400, "VALIDATION_ERROR"),
        case("malformed JSON, otp verify", M::POST, "/v1/auth/otp/verify")
            .json("{")
            .expect(400, "VALIDATION_ERROR"),
        case("malformed JSON, exchange", M::POST, "/v1/auth/exchange")
            .json("{")
            .expect(400, "VALIDATION_ERROR"),
        case("malformed JSON, session data", M::PUT, "/v1/session/data")
            .auth(Auth::Access)
            .json(r#"{"a": }"#)
            .expect(400, "VALIDATION_ERROR"),
        case(
            "malformed JSON, admin session",
            M::POST,
            "/v1/admin/sessions",
        )
        .auth(Auth::Admin)
        .json("{,}")
        .expect(400, "VALIDATION_ERROR"),
        case(
            "malformed JSON, patch user",
            M::PATCH,
            format!("/v1/admin/users/{user}"),
        )
        .auth(Auth::Admin)
        .json("{active: false}")
        .expect(400, "VALIDATION_ERROR"),
        case("malformed JSON, introspect", M::POST, "/v1/introspect")
            .auth(Auth::Admin)
            .json("{")
            .expect(400, "VALIDATION_ERROR"),
        case("form without token, introspect", M::POST, "/v1/introspect")
            .auth(Auth::Admin)
            .header("content-type", "application/x-www-form-urlencoded")
            .raw("token_type_hint=access_token")
            .expect(400, "VALIDATION_ERROR"),
        case(
            "malformed JSON, password change",
            M::POST,
            "/v1/session/password",
        )
        .auth(Auth::Access)
        .json("{")
        .expect(400, "VALIDATION_ERROR"),
        case(
            "malformed JSON, password reset",
            M::POST,
            "/v1/auth/password/reset",
        )
        .json(r#"{"email": }"#)
        .expect(400, "VALIDATION_ERROR"),
        case(
            "malformed JSON, password reset confirm",
            M::POST,
            "/v1/auth/password/reset/confirm",
        )
        .json("[")
        .expect(400, "VALIDATION_ERROR"),
        case(
            "malformed JSON, email verify confirm",
            M::POST,
            "/v1/session/email/verify/confirm",
        )
        .auth(Auth::Access)
        .json("{\"code\"")
        .expect(400, "VALIDATION_ERROR"),
        case("malformed JSON, email change", M::POST, "/v1/session/email")
            .auth(Auth::Access)
            .json("{email}")
            .expect(400, "VALIDATION_ERROR"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// Wrong types: 422.
#[tokio::test]
async fn wrong_types_are_422() {
    let (app, fx) = setup().await;
    let user = &fx.user_id;
    use Method as M;
    let cases = vec![
        case("email is a number", M::POST, "/v1/users")
            .json(r#"{"email": 5, "password": "correct horse battery"}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("password is null", M::POST, "/v1/auth/password")
            .json(r#"{"email": "a@example.com", "password": null}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("device is a string", M::POST, "/v1/users")
            .json(r#"{"email": "a@example.com", "password": "correct horse battery", "device": "phone"}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("device label is a number", M::POST, "/v1/sessions/anonymous")
            .json(r#"{"device": {"label": 7}}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("refresh_token is an array", M::POST, "/v1/token/refresh")
            .json(r#"{"refresh_token": ["x"]}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("validate token is a number", M::POST, "/v1/token/validate")
            .json(r#"{"token": 5}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("user_id not a uuid", M::POST, "/v1/admin/sessions")
            .auth(Auth::Admin)
            .json(r#"{"user_id": "nope"}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("active is a string", M::PATCH, format!("/v1/admin/users/{user}"))
            .auth(Auth::Admin)
            .json(r#"{"active": "no"}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("introspect token is a number", M::POST, "/v1/introspect")
            .auth(Auth::Admin)
            .json(r#"{"token": 5}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("new_password is a number", M::POST, "/v1/session/password")
            .auth(Auth::Access)
            .json(r#"{"current_password": "correct horse battery", "new_password": 12345678}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("reset email is an object", M::POST, "/v1/auth/password/reset")
            .json(r#"{"email": {"a": 1}}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("patched email is a number", M::PATCH, format!("/v1/admin/users/{user}"))
            .auth(Auth::Admin)
            .json(r#"{"email": 5}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("email_verified is a string", M::PATCH, format!("/v1/admin/users/{user}"))
            .auth(Auth::Admin)
            .json(r#"{"email_verified": "yes"}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("exchange nonce is a number", M::POST, "/v1/auth/exchange")
            .json(r#"{"provider": "x", "token": "t", "nonce": 5}"#)
            .expect(422, "VALIDATION_ERROR"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// Missing fields: 422.
#[tokio::test]
async fn missing_fields_are_422() {
    let (app, fx) = setup().await;
    use Method as M;
    let cases = vec![
        case("registration without password", M::POST, "/v1/users")
            .json(r#"{"email": "a@example.com"}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("registration, empty object", M::POST, "/v1/users")
            .json("{}")
            .expect(422, "VALIDATION_ERROR"),
        case("login without email", M::POST, "/v1/auth/password")
            .json(r#"{"password": "correct horse battery"}"#)
            .expect(422, "VALIDATION_ERROR"),
        // (`{}` to the refresh endpoint is a cookie-mode refresh: without the refresh cookie
        // it is `401 REFRESH_TOKEN_INVALID`, see web.rs.)
        case("validate without token", M::POST, "/v1/token/validate")
            .json(r#"{"tokens": "x"}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("otp without email", M::POST, "/v1/auth/otp")
            .json("{}")
            .expect(422, "VALIDATION_ERROR"),
        case("otp verify without code", M::POST, "/v1/auth/otp/verify")
            .json(r#"{"challenge_id": "x"}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("exchange without token", M::POST, "/v1/auth/exchange")
            .json(r#"{"provider": "x"}"#)
            .expect(422, "VALIDATION_ERROR"),
        case("admin session without user", M::POST, "/v1/admin/sessions")
            .auth(Auth::Admin)
            .json("{}")
            .expect(422, "VALIDATION_ERROR"),
        case("introspect without token", M::POST, "/v1/introspect")
            .auth(Auth::Admin)
            .json("{}")
            .expect(422, "VALIDATION_ERROR"),
        case(
            "password change without the current one",
            M::POST,
            "/v1/session/password",
        )
        .auth(Auth::Access)
        .json(r#"{"new_password": "a much better passphrase"}"#)
        .expect(422, "VALIDATION_ERROR"),
        case("reset without email", M::POST, "/v1/auth/password/reset")
            .json("{}")
            .expect(422, "VALIDATION_ERROR"),
        case(
            "reset confirm without code",
            M::POST,
            "/v1/auth/password/reset/confirm",
        )
        .json(r#"{"challenge_id": "x", "new_password": "a much better passphrase"}"#)
        .expect(422, "VALIDATION_ERROR"),
        case("email change without email", M::POST, "/v1/session/email")
            .auth(Auth::Access)
            .json("{}")
            .expect(422, "VALIDATION_ERROR"),
        case(
            "email verify confirm without challenge",
            M::POST,
            "/v1/session/email/verify/confirm",
        )
        .auth(Auth::Access)
        .json(r#"{"code": "123456"}"#)
        .expect(422, "VALIDATION_ERROR"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// JSON that is not an object: 422.
#[tokio::test]
async fn json_that_is_not_an_object_is_422() {
    let (app, fx) = setup().await;
    let user = &fx.user_id;
    use Method as M;
    let cases = vec![
        case("registration is an array", M::POST, "/v1/users")
            .json(r#"["a@example.com", "correct horse battery"]"#)
            .expect(422, "VALIDATION_ERROR"),
        case("registration is a string", M::POST, "/v1/users")
            .json(r#""a@example.com""#)
            .expect(422, "VALIDATION_ERROR"),
        case("login is null", M::POST, "/v1/auth/password")
            .json("null")
            .expect(422, "VALIDATION_ERROR"),
        case("refresh is a number", M::POST, "/v1/token/refresh")
            .json("42")
            .expect(422, "VALIDATION_ERROR"),
        case("anonymous is an array", M::POST, "/v1/sessions/anonymous")
            .json("[]")
            .expect(422, "VALIDATION_ERROR"),
        // serde reads a struct from an array of its fields; the API must not.
        case(
            "registration is an array of every field",
            M::POST,
            "/v1/users",
        )
        .json(r#"["array@example.com", "correct horse battery", null, null]"#)
        .expect(422, "VALIDATION_ERROR"),
        case(
            "login is an array of every field",
            M::POST,
            "/v1/auth/password",
        )
        .json(r#"["array@example.com", "correct horse battery", null]"#)
        .expect(422, "VALIDATION_ERROR"),
        case(
            "anonymous is an array of every field",
            M::POST,
            "/v1/sessions/anonymous",
        )
        .json("[null]")
        .expect(422, "VALIDATION_ERROR"),
        case(
            "admin session is an array of every field",
            M::POST,
            "/v1/admin/sessions",
        )
        .auth(Auth::Admin)
        .json(format!(r#"["{user}", null, null]"#))
        .expect(422, "VALIDATION_ERROR"),
        case(
            "patch is an array",
            M::PATCH,
            format!("/v1/admin/users/{user}"),
        )
        .auth(Auth::Admin)
        .json("[false]")
        .expect(422, "VALIDATION_ERROR"),
        case("session data is an array", M::PUT, "/v1/session/data")
            .auth(Auth::Access)
            .json("[1, 2, 3]")
            .expect(422, "VALIDATION_ERROR")
            .field("data"),
        case("session data is a string", M::PUT, "/v1/session/data")
            .auth(Auth::Access)
            .json(r#""data""#)
            .expect(422, "VALIDATION_ERROR")
            .field("data"),
        case("session data is null", M::PUT, "/v1/session/data")
            .auth(Auth::Access)
            .json("null")
            .expect(422, "VALIDATION_ERROR")
            .field("data"),
        case(
            "admin session data is an array",
            M::POST,
            "/v1/admin/sessions",
        )
        .auth(Auth::Admin)
        .json(format!(r#"{{"user_id": "{user}", "data": [1]}}"#))
        .expect(422, "VALIDATION_ERROR")
        .field("data"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// Missing or unsupported content type: 415.
#[tokio::test]
async fn missing_or_unsupported_content_types_are_415() {
    let (app, fx) = setup().await;
    let user = &fx.user_id;
    use Method as M;
    let cases = vec![
        case("no content type", M::POST, "/v1/users")
            .raw(r#"{"email": "a@example.com", "password": "correct horse battery"}"#)
            .expect(415, "VALIDATION_ERROR"),
        case("text/plain", M::POST, "/v1/auth/password")
            .header("content-type", "text/plain")
            .raw(r#"{"email": "a@example.com", "password": "correct horse battery"}"#)
            .expect(415, "VALIDATION_ERROR"),
        case("form-encoded refresh", M::POST, "/v1/token/refresh")
            .header("content-type", "application/x-www-form-urlencoded")
            .raw("refresh_token=abc")
            .expect(415, "VALIDATION_ERROR"),
        case("no content type, validate", M::POST, "/v1/token/validate")
            .raw(r#"{"token": "x"}"#)
            .expect(415, "VALIDATION_ERROR"),
        case("text/plain, anonymous", M::POST, "/v1/sessions/anonymous")
            .header("content-type", "text/plain")
            .raw(r#"{"device": {}}"#)
            .expect(415, "VALIDATION_ERROR"),
        case("no content type, session data", M::PUT, "/v1/session/data")
            .auth(Auth::Access)
            .raw(r#"{"a": 1}"#)
            .expect(415, "VALIDATION_ERROR"),
        case("text/xml, admin session", M::POST, "/v1/admin/sessions")
            .auth(Auth::Admin)
            .header("content-type", "text/xml")
            .raw(format!(r#"{{"user_id": "{user}"}}"#))
            .expect(415, "VALIDATION_ERROR"),
        case(
            "no content type, patch user",
            M::PATCH,
            format!("/v1/admin/users/{user}"),
        )
        .auth(Auth::Admin)
        .raw(r#"{"active": false}"#)
        .expect(415, "VALIDATION_ERROR"),
        case("text/plain, introspect", M::POST, "/v1/introspect")
            .auth(Auth::Admin)
            .header("content-type", "text/plain")
            .raw("token=abc")
            .expect(415, "VALIDATION_ERROR"),
        case("no content type, introspect", M::POST, "/v1/introspect")
            .auth(Auth::Admin)
            .raw(r#"{"token": "abc"}"#)
            .expect(415, "VALIDATION_ERROR"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// Oversize: 413.
#[tokio::test]
async fn oversize_bodies_are_413() {
    let (app, fx) = setup().await;
    let user = &fx.user_id;
    let huge = format!(r#"{{"x": "{}"}}"#, "a".repeat(100 * 1024));
    let big_data = format!(r#"{{"x": "{}"}}"#, "a".repeat(17 * 1024));
    use Method as M;
    let cases = vec![
        case("100 KiB registration", M::POST, "/v1/users")
            .json(&huge)
            .expect(413, "PAYLOAD_TOO_LARGE"),
        case("100 KiB refresh", M::POST, "/v1/token/refresh")
            .json(&huge)
            .expect(413, "PAYLOAD_TOO_LARGE"),
        case("100 KiB anonymous", M::POST, "/v1/sessions/anonymous")
            .json(&huge)
            .expect(413, "PAYLOAD_TOO_LARGE"),
        case("100 KiB session data", M::PUT, "/v1/session/data")
            .auth(Auth::Access)
            .json(&huge)
            .expect(413, "PAYLOAD_TOO_LARGE"),
        case("100 KiB introspect", M::POST, "/v1/introspect")
            .auth(Auth::Admin)
            .json(&huge)
            .expect(413, "PAYLOAD_TOO_LARGE"),
        case(
            "100 KiB patch user",
            M::PATCH,
            format!("/v1/admin/users/{user}"),
        )
        .auth(Auth::Admin)
        .json(&huge)
        .expect(413, "PAYLOAD_TOO_LARGE"),
        case("17 KiB session data", M::PUT, "/v1/session/data")
            .auth(Auth::Access)
            .json(&big_data)
            .expect(413, "PAYLOAD_TOO_LARGE"),
        case("17 KiB admin session data", M::POST, "/v1/admin/sessions")
            .auth(Auth::Admin)
            .json(format!(r#"{{"user_id": "{user}", "data": {big_data}}}"#))
            .expect(413, "PAYLOAD_TOO_LARGE"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// Field validation: 422 naming the field.
#[tokio::test]
async fn field_rules_are_422_naming_the_field() {
    let (app, fx) = setup().await;
    use Method as M;
    let cases = vec![
        case("bad email", M::POST, "/v1/users")
            .json(r#"{"email": "not-an-email", "password": "correct horse battery"}"#)
            .expect(422, "VALIDATION_ERROR")
            .field("email"),
        case("email with a space", M::POST, "/v1/users")
            .json(r#"{"email": "a b@example.com", "password": "correct horse battery"}"#)
            .expect(422, "VALIDATION_ERROR")
            .field("email"),
        case("email without domain", M::POST, "/v1/users")
            .json(r#"{"email": "ann@", "password": "correct horse battery"}"#)
            .expect(422, "VALIDATION_ERROR")
            .field("email"),
        case("empty email", M::POST, "/v1/users")
            .json(r#"{"email": "   ", "password": "correct horse battery"}"#)
            .expect(422, "VALIDATION_ERROR")
            .field("email"),
        case("email too long", M::POST, "/v1/users")
            .json(format!(
                r#"{{"email": "{}@example.com", "password": "correct horse battery"}}"#,
                "a".repeat(300)
            ))
            .expect(422, "VALIDATION_ERROR")
            .field("email"),
        case("short password", M::POST, "/v1/users")
            .json(r#"{"email": "short@example.com", "password": "1234567"}"#)
            .expect(422, "VALIDATION_ERROR")
            .field("password"),
        case("empty password", M::POST, "/v1/users")
            .json(r#"{"email": "empty@example.com", "password": ""}"#)
            .expect(422, "VALIDATION_ERROR")
            .field("password"),
        case("password over 1024 characters", M::POST, "/v1/users")
            .json(format!(
                r#"{{"email": "long@example.com", "password": "{}"}}"#,
                "é".repeat(1025)
            ))
            .expect(422, "VALIDATION_ERROR")
            .field("password"),
        case("bad email and short password", M::POST, "/v1/users")
            .json(r#"{"email": "nope", "password": "short"}"#)
            .expect(422, "VALIDATION_ERROR")
            .field("email")
            .field("password"),
        case("name too long", M::POST, "/v1/users")
            .json(format!(
                r#"{{"email": "name@example.com", "password": "correct horse battery", "name": "{}"}}"#,
                "n".repeat(257)
            ))
            .expect(422, "VALIDATION_ERROR")
            .field("name"),
        case("device label too long", M::POST, "/v1/sessions/anonymous")
            .json(format!(r#"{{"device": {{"label": "{}"}}}}"#, "l".repeat(513)))
            .expect(422, "VALIDATION_ERROR")
            .field("device.label"),
        case("new password too short", M::POST, "/v1/session/password")
            .auth(Auth::Access)
            .json(r#"{"current_password": "correct horse battery", "new_password": "short"}"#)
            .expect(422, "VALIDATION_ERROR")
            .field("new_password"),
        case("new password is a common one", M::POST, "/v1/session/password")
            .auth(Auth::Access)
            .json(r#"{"current_password": "correct horse battery", "new_password": "password123"}"#)
            .expect(422, "VALIDATION_ERROR")
            .field("new_password"),
        case("reset for a bad address", M::POST, "/v1/auth/password/reset")
            .json(r#"{"email": "not an address"}"#)
            .expect(422, "VALIDATION_ERROR")
            .field("email"),
        case("email change to a bad address", M::POST, "/v1/session/email")
            .auth(Auth::Access)
            .json(r#"{"email": "@example.com"}"#)
            .expect(422, "VALIDATION_ERROR")
            .field("email"),
        case("patched email is no address", M::PATCH, format!("/v1/admin/users/{}", fx.user_id))
            .auth(Auth::Admin)
            .json(r#"{"email": "nope"}"#)
            .expect(422, "VALIDATION_ERROR")
            .field("email"),
        case("patched name too long", M::PATCH, format!("/v1/admin/users/{}", fx.user_id))
            .auth(Auth::Admin)
            .json(format!(r#"{{"name": "{}"}}"#, "n".repeat(257)))
            .expect(422, "VALIDATION_ERROR")
            .field("name"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// No or unusable Authorization: 401 TOKEN_NOT_PROVIDED.
#[tokio::test]
async fn missing_authorization_is_401_token_not_provided() {
    let (app, fx) = setup().await;
    let sid = &fx.session_id;
    use Method as M;
    let cases = vec![
        case("no Authorization", M::GET, "/v1/session").expect(401, "TOKEN_NOT_PROVIDED"),
        case("no Authorization, data", M::GET, "/v1/session/data")
            .expect(401, "TOKEN_NOT_PROVIDED"),
        case("no Authorization, put data", M::PUT, "/v1/session/data")
            .json("{}")
            .expect(401, "TOKEN_NOT_PROVIDED"),
        case("no Authorization, logout", M::POST, "/v1/logout").expect(401, "TOKEN_NOT_PROVIDED"),
        case("no Authorization, sessions", M::GET, "/v1/sessions")
            .expect(401, "TOKEN_NOT_PROVIDED"),
        case(
            "no Authorization, revoke all",
            M::DELETE,
            "/v1/sessions?except=current",
        )
        .expect(401, "TOKEN_NOT_PROVIDED"),
        case(
            "no Authorization, revoke one",
            M::DELETE,
            format!("/v1/sessions/{sid}"),
        )
        .expect(401, "TOKEN_NOT_PROVIDED"),
        case("bare Bearer", M::GET, "/v1/session")
            .auth(Auth::Header(b"Bearer".to_vec()))
            .expect(401, "TOKEN_NOT_PROVIDED"),
        case("Bearer and spaces", M::GET, "/v1/session")
            .auth(Auth::Header(b"Bearer    ".to_vec()))
            .expect(401, "TOKEN_NOT_PROVIDED"),
        case("Basic scheme", M::GET, "/v1/session")
            .auth(Auth::Header(b"Basic dXNlcjpwYXNz".to_vec()))
            .expect(401, "TOKEN_NOT_PROVIDED"),
        case("access token without scheme", M::GET, "/v1/session")
            .auth(Auth::Header(fx.access.clone().into_bytes()))
            .expect(401, "TOKEN_NOT_PROVIDED"),
        case(
            "no Authorization, password change",
            M::POST,
            "/v1/session/password",
        )
        .json(r#"{"current_password": "a", "new_password": "b"}"#)
        .expect(401, "TOKEN_NOT_PROVIDED"),
        case(
            "no Authorization, email verify",
            M::POST,
            "/v1/session/email/verify",
        )
        .expect(401, "TOKEN_NOT_PROVIDED"),
        case(
            "no Authorization, email change",
            M::POST,
            "/v1/session/email",
        )
        .json(r#"{"email": "x@example.com"}"#)
        .expect(401, "TOKEN_NOT_PROVIDED"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// Wrong tokens in the right place: 401 TOKEN_INVALID.
#[tokio::test]
async fn wrong_tokens_in_the_right_place_are_401_token_invalid() {
    let (app, fx) = setup().await;
    let sid = &fx.session_id;
    use Method as M;
    let cases = vec![
        case("non-ASCII bearer token", M::GET, "/v1/session")
            .auth(Auth::Header(b"Bearer \xe9\xe9\xe9".to_vec()))
            .expect(401, "TOKEN_INVALID"),
        case("refresh token as bearer", M::GET, "/v1/session")
            .auth(Auth::Refresh)
            .expect(401, "TOKEN_INVALID"),
        case("refresh token as bearer, logout", M::POST, "/v1/logout")
            .auth(Auth::Refresh)
            .expect(401, "TOKEN_INVALID"),
        case(
            "refresh token as bearer, revoke all",
            M::DELETE,
            "/v1/sessions",
        )
        .auth(Auth::Refresh)
        .expect(401, "TOKEN_INVALID"),
        case("garbage bearer, put data", M::PUT, "/v1/session/data")
            .auth(Auth::Bearer("garbage".into()))
            .json("{}")
            .expect(401, "TOKEN_INVALID"),
        case(
            "garbage bearer, revoke one",
            M::DELETE,
            format!("/v1/sessions/{sid}"),
        )
        .auth(Auth::Bearer("garbage".into()))
        .expect(401, "TOKEN_INVALID"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// Bad UUIDs in paths: 400.
#[tokio::test]
async fn bad_uuids_in_paths_are_400() {
    let (app, fx) = setup().await;
    let sid = &fx.session_id;
    use Method as M;
    let cases = vec![
        case(
            "session id not a uuid",
            M::DELETE,
            "/v1/sessions/not-a-uuid",
        )
        .auth(Auth::Access)
        .expect(400, "VALIDATION_ERROR"),
        case("session id a number", M::DELETE, "/v1/sessions/123")
            .auth(Auth::Access)
            .expect(400, "VALIDATION_ERROR"),
        case(
            "session id with a suffix",
            M::DELETE,
            format!("/v1/sessions/{sid}x"),
        )
        .auth(Auth::Access)
        .expect(400, "VALIDATION_ERROR"),
        case("session id NUL", M::DELETE, "/v1/sessions/%00")
            .auth(Auth::Access)
            .expect(400, "VALIDATION_ERROR"),
        case("session id invalid UTF-8", M::DELETE, "/v1/sessions/%FF%FE")
            .auth(Auth::Access)
            .expect(400, "VALIDATION_ERROR"),
        case(
            "admin session id a number",
            M::DELETE,
            "/v1/admin/sessions/123",
        )
        .auth(Auth::Admin)
        .expect(400, "VALIDATION_ERROR"),
        case("admin user id zzz", M::GET, "/v1/admin/users/zzz/sessions")
            .auth(Auth::Admin)
            .expect(400, "VALIDATION_ERROR"),
        case(
            "admin user id zzz, delete",
            M::DELETE,
            "/v1/admin/users/zzz/sessions",
        )
        .auth(Auth::Admin)
        .expect(400, "VALIDATION_ERROR"),
        case("admin user id zzz, patch", M::PATCH, "/v1/admin/users/zzz")
            .auth(Auth::Admin)
            .json(r#"{"active": false}"#)
            .expect(400, "VALIDATION_ERROR"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// Query: 400.
#[tokio::test]
async fn bad_queries_are_400() {
    let (app, fx) = setup().await;
    use Method as M;
    let cases = vec![
        case("except=bogus", M::DELETE, "/v1/sessions?except=bogus")
            .auth(Auth::Access)
            .expect(400, "VALIDATION_ERROR"),
        case("except empty", M::DELETE, "/v1/sessions?except=")
            .auth(Auth::Access)
            .expect(400, "VALIDATION_ERROR"),
        case(
            "except twice",
            M::DELETE,
            "/v1/sessions?except=current&except=current",
        )
        .auth(Auth::Access)
        .expect(400, "VALIDATION_ERROR"),
        case(
            "users limit is a word",
            M::GET,
            "/v1/admin/users?limit=many",
        )
        .auth(Auth::Admin)
        .expect(400, "VALIDATION_ERROR"),
        case(
            "users limit is negative",
            M::GET,
            "/v1/admin/users?limit=-1",
        )
        .auth(Auth::Admin)
        .expect(400, "VALIDATION_ERROR"),
        case(
            "users active is not a boolean",
            M::GET,
            "/v1/admin/users?active=maybe",
        )
        .auth(Auth::Admin)
        .expect(400, "VALIDATION_ERROR"),
        case(
            "users cursor is not a uuid",
            M::GET,
            "/v1/admin/users?cursor=page-2",
        )
        .auth(Auth::Admin)
        .expect(400, "VALIDATION_ERROR"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// Unknown fields where they matter: 422.
#[tokio::test]
async fn unknown_fields_where_they_matter_are_422() {
    let (app, fx) = setup().await;
    let user = &fx.user_id;
    use Method as M;
    let cases = vec![
        case(
            "patch with an unknown field",
            M::PATCH,
            format!("/v1/admin/users/{user}"),
        )
        .auth(Auth::Admin)
        .json(r#"{"active": false, "role": "admin"}"#)
        .expect(422, "VALIDATION_ERROR"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// Someone else's session: 404.
#[tokio::test]
async fn someone_elses_session_is_404() {
    let (app, fx) = setup().await;
    let nobody = uuid::Uuid::now_v7();
    use Method as M;
    let cases = vec![
        case(
            "revoke a session that is not mine",
            M::DELETE,
            format!("/v1/sessions/{nobody}"),
        )
        .auth(Auth::Access)
        .expect(404, "NOT_FOUND"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// Unknown routes: 404; wrong methods: 405.
#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let (app, fx) = setup().await;
    let user = &fx.user_id;
    let sid = &fx.session_id;
    use Method as M;
    let cases = vec![
        case("unknown route", M::GET, "/v1/nope").expect(404, "NOT_FOUND"),
        case("unknown route, root", M::GET, "/").expect(404, "NOT_FOUND"),
        case(
            "unknown route, deeper",
            M::GET,
            format!("/v1/sessions/{sid}/extra"),
        )
        .auth(Auth::Access)
        .expect(404, "NOT_FOUND"),
        case("unknown admin route", M::POST, "/v1/admin/nope")
            .auth(Auth::Admin)
            .json("{}")
            .expect(404, "NOT_FOUND"),
        case("GET registration", M::GET, "/v1/users").expect(405, "METHOD_NOT_ALLOWED"),
        case("PUT refresh", M::PUT, "/v1/token/refresh")
            .json("{}")
            .expect(405, "METHOD_NOT_ALLOWED"),
        case("GET logout", M::GET, "/v1/logout")
            .auth(Auth::Access)
            .expect(405, "METHOD_NOT_ALLOWED"),
        case("DELETE whoami", M::DELETE, "/v1/session")
            .auth(Auth::Access)
            .expect(405, "METHOD_NOT_ALLOWED"),
        case("POST healthz", M::POST, "/healthz").expect(405, "METHOD_NOT_ALLOWED"),
        case("PUT admin user", M::PUT, format!("/v1/admin/users/{user}"))
            .auth(Auth::Admin)
            .expect(405, "METHOD_NOT_ALLOWED"),
    ];
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// Missing or wrong admin keys on every admin route and introspection: no credentials at
/// all is 401 (RFC 9110), credentials that are not the key 403. Each request would do
/// harm to the fixture user if it got through.
#[tokio::test]
async fn admin_routes_without_the_key_are_401_and_with_a_wrong_one_403() {
    let (app, fx) = setup().await;
    let user = &fx.user_id;
    let sid = &fx.session_id;
    use Method as M;
    let mut cases = Vec::new();
    let admin_routes = [
        (
            M::POST,
            "/v1/admin/sessions".to_owned(),
            Some(format!(r#"{{"user_id": "{user}"}}"#)),
        ),
        (M::GET, format!("/v1/admin/users/{user}/sessions"), None),
        (M::DELETE, format!("/v1/admin/users/{user}/sessions"), None),
        (M::DELETE, format!("/v1/admin/sessions/{sid}"), None),
        (
            M::PATCH,
            format!("/v1/admin/users/{user}"),
            Some(r#"{"active": false}"#.to_owned()),
        ),
        (M::POST, "/v1/admin/cleanup".to_owned(), None),
        (
            M::POST,
            "/v1/introspect".to_owned(),
            Some(format!(r#"{{"token": "{}"}}"#, fx.access)),
        ),
        // A bad id or body does not reveal anything before the key is checked.
        (M::DELETE, "/v1/admin/sessions/123".to_owned(), None),
        (
            M::POST,
            "/v1/admin/sessions".to_owned(),
            Some("{".to_owned()),
        ),
    ];
    let wrong_keys = [
        ("wrong key", Auth::Bearer("wrong".into())),
        (
            "key plus a char",
            Auth::Bearer(format!("{}x", fx.admin_key)),
        ),
        (
            "key minus a char",
            Auth::Bearer(fx.admin_key[..fx.admin_key.len() - 1].to_owned()),
        ),
        (
            "key without scheme",
            Auth::Header(fx.admin_key.clone().into_bytes()),
        ),
        (
            "key as Basic",
            Auth::Header(format!("Basic {}", fx.admin_key).into_bytes()),
        ),
        ("a user's access token", Auth::Access),
        ("empty bearer", Auth::Header(b"Bearer ".to_vec())),
    ];
    for (method, path, body) in &admin_routes {
        let mut c =
            case("admin: no key", method.clone(), path.clone()).expect(401, "TOKEN_NOT_PROVIDED");
        if let Some(body) = body {
            c = c.json(body);
        }
        cases.push(c);
        for (key_name, auth) in &wrong_keys {
            let mut c = case(format!("admin: {key_name}"), method.clone(), path.clone())
                .auth(auth.clone())
                .expect(403, "FORBIDDEN");
            if let Some(body) = body {
                c = c.json(body);
            }
            cases.push(c);
        }
    }
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// Forged, malformed and misplaced access tokens: 401 TOKEN_INVALID everywhere.
#[tokio::test]
async fn forged_access_tokens_are_401_token_invalid() {
    let (app, fx) = setup().await;
    use Method as M;
    let mut cases = Vec::new();
    let forged = forged_tokens(&app, &fx).await;
    for (name, token) in &forged {
        cases.push(
            case(format!("forged: {name}"), M::GET, "/v1/session")
                .auth(Auth::Bearer(token.clone()))
                .expect(401, "TOKEN_INVALID"),
        );
        cases.push(
            case(format!("forged (logout): {name}"), M::POST, "/v1/logout")
                .auth(Auth::Bearer(token.clone()))
                .expect(401, "TOKEN_INVALID"),
        );
    }
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

/// An expired token signed by us is TOKEN_EXPIRED (with `expired_at`), not INVALID.
#[tokio::test]
async fn an_expired_access_token_is_token_expired_with_its_time() {
    let (app, fx) = setup().await;
    use Method as M;
    let mut cases = Vec::new();
    let (pkcs8, kid) = server_key(&app).await;
    let mut expired = claims_of(&fx.access);
    expired["exp"] = json!(app.clock_now().timestamp() - 1);
    let expired = jwt(
        &ed_header(Some("at+jwt"), Some(&kid)),
        &expired,
        &EncodingKey::from_ed_der(&pkcs8),
    );
    cases.push(
        case("expired", M::GET, "/v1/session")
            .auth(Auth::Bearer(expired.clone()))
            .expect(401, "TOKEN_EXPIRED"),
    );
    run(&app, &fx, &cases).await;
    let body = app.whoami(&expired).await.problem(401, "TOKEN_EXPIRED");
    assert!(body["expired_at"].is_string(), "{body}");
    assert_untouched(&app, &fx).await;
}

/// Refresh tokens that are not: 401 REFRESH_TOKEN_INVALID.
#[tokio::test]
async fn refresh_tokens_that_are_not_are_401_refresh_token_invalid() {
    let (app, fx) = setup().await;
    use Method as M;
    let mut cases = Vec::new();
    for (name, token) in refresh_garbage(&fx) {
        cases.push(
            case(format!("refresh: {name}"), M::POST, "/v1/token/refresh")
                .json(json!({ "refresh_token": token }).to_string())
                .expect(401, "REFRESH_TOKEN_INVALID"),
        );
    }
    run(&app, &fx, &cases).await;
    assert_untouched(&app, &fx).await;
}

#[tokio::test]
async fn validate_answers_200_for_any_well_formed_request() {
    let app = app_without_rate_limits().await;
    let fx = fixture(&app).await;
    let client = client();
    let mut failures = Vec::new();

    let mut table: Vec<(String, String, &str)> = Vec::new();
    for (name, token) in forged_tokens(&app, &fx).await {
        // The refresh token is a valid token of the other type, not a forgery here.
        if name == "the refresh token" {
            continue;
        }
        let expected = if token.contains('.') {
            "TOKEN_INVALID"
        } else {
            "REFRESH_TOKEN_INVALID"
        };
        table.push((format!("access: {name}"), token, expected));
    }
    for (name, token) in refresh_garbage(&fx) {
        if name == "an access token" {
            continue;
        }
        table.push((format!("refresh: {name}"), token, "REFRESH_TOKEN_INVALID"));
    }

    for (name, token, reason) in &table {
        let resp = client
            .post(format!("{}/v1/token/validate", app.base))
            .json(&json!({ "token": token }))
            .send()
            .await;
        let resp = match resp {
            Ok(resp) => resp,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status != 200 || body["valid"] != false || body["reason"] != *reason {
            failures.push(format!("{name}: {status} {text} (want reason {reason})"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} validations wrong:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );

    // Introspection says exactly `{active: false}` for each of them.
    for (name, token, _) in &table {
        let answer = app.introspect(token).await;
        assert_eq!(answer, json!({"active": false}), "{name}");
    }

    // And the real tokens still validate.
    assert_eq!(app.validate(&fx.access).await["valid"], true);
    assert_eq!(app.validate(&fx.refresh).await["valid"], true);
}

/// A small deterministic generator, so a failing input can be reproduced.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test]
async fn garbage_and_deeply_nested_bodies_get_4xx_and_the_server_survives() {
    let app = app_without_rate_limits().await;
    let fx = fixture(&app).await;
    let client = client();
    let user = &fx.user_id;

    let mut rng = XorShift(0x5e55_10d5_eed0_0001);
    let mut bodies: Vec<(String, Vec<u8>)> = Vec::new();
    for len in [1, 2, 7, 64, 1000, 16 * 1024, 60 * 1024] {
        bodies.push((format!("{len} random bytes"), rng.bytes(len)));
    }
    // Random bytes after a plausible start.
    let mut tail = b"{\"email\": \"".to_vec();
    tail.extend(rng.bytes(500));
    bodies.push(("JSON start, random tail".into(), tail));
    for depth in [129, 1_000, 10_000, 30_000] {
        bodies.push((
            format!("{depth} nested arrays"),
            format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes(),
        ));
    }
    bodies.push((
        "10000 unclosed arrays".into(),
        "[".repeat(10_000).into_bytes(),
    ));
    bodies.push((
        "10000 nested objects".into(),
        format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000)).into_bytes(),
    ));
    bodies.push((
        "nested arrays in a field".into(),
        format!(
            r#"{{"email": {}{}, "password": "x"}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        )
        .into_bytes(),
    ));
    bodies.push((
        "huge number".into(),
        format!(r#"{{"token": 1{}}}"#, "0".repeat(50_000)).into_bytes(),
    ));
    bodies.push(("lone surrogate".into(), br#"{"token": "\ud800"}"#.to_vec()));
    bodies.push(("NUL bytes".into(), vec![0u8; 4096]));
    bodies.push(("BOM then JSON".into(), b"\xef\xbb\xbf{}".to_vec()));

    let patch = format!("/v1/admin/users/{user}");
    let endpoints: Vec<(Method, &str, Auth)> = vec![
        (Method::POST, "/v1/users", Auth::None),
        (Method::POST, "/v1/auth/password", Auth::None),
        (Method::POST, "/v1/sessions/anonymous", Auth::None),
        (Method::POST, "/v1/token/refresh", Auth::None),
        (Method::POST, "/v1/token/validate", Auth::None),
        (Method::PUT, "/v1/session/data", Auth::Access),
        (Method::POST, "/v1/admin/sessions", Auth::Admin),
        (Method::PATCH, &patch, Auth::Admin),
        (Method::POST, "/v1/introspect", Auth::Admin),
    ];
    let content_types = [
        Some("application/json"),
        None,
        Some("application/x-www-form-urlencoded"),
    ];

    let mut failures = Vec::new();
    let mut sent = 0;
    for (method, path, auth) in &endpoints {
        for (name, body) in &bodies {
            for content_type in content_types {
                let mut c = case(format!("{name} as {content_type:?}"), method.clone(), *path)
                    .auth(auth.clone())
                    .raw(body);
                if let Some(ct) = content_type {
                    c = c.header("content-type", ct);
                }
                sent += 1;
                match send(&client, &app, &fx, &c).await {
                    Ok(answer) => {
                        let problem = answer
                            .headers
                            .get("content-type")
                            .is_some_and(|v| v == "application/problem+json");
                        // A JSON object whose only members are unknown (and so ignored)
                        // is a fine request for the one endpoint without required fields.
                        let ignorable = *path == "/v1/sessions/anonymous"
                            && content_type == Some("application/json")
                            && body.first() == Some(&b'{')
                            && answer.status == 201;
                        let rejected = (400..500).contains(&answer.status) && problem;
                        if !(rejected || ignorable) {
                            failures.push(format!(
                                "{} {} {}: {} {}",
                                method,
                                path,
                                c.name,
                                answer.status,
                                String::from_utf8_lossy(&answer.body)
                                    .chars()
                                    .take(200)
                                    .collect::<String>()
                            ));
                        }
                    }
                    Err(e) => failures.push(format!("{method} {path} {}: {e}", c.name)),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} garbage requests mishandled:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Still alive, still correct.
    let health = client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), 200);
    app.whoami(&fx.access).await.ok(200);
    assert_eq!(
        app.get("/v1/session/data", &fx.access).await.ok(200),
        json!({})
    );
}
