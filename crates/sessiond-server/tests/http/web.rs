//! Web apps and proxies: cookie mode (the token cookies, CSRF, clearing), CORS, and the
//! forward-auth check `GET /v1/auth/check`, with the bad input each invites.

use reqwest::{Method, RequestBuilder};
use serde_json::json;

use crate::common::*;

const AT: &str = "__Host-sessiond_at";
const RT: &str = "__Secure-sessiond_rt";
const TRANSPORT: &str = "sessiond-token-transport";

/// The `Set-Cookie` lines of an answer, by cookie name.
fn set_cookies(reply: &Reply) -> Vec<(String, String)> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let line = v.to_str().unwrap().to_owned();
            let name = line.split('=').next().unwrap().to_owned();
            (name, line)
        })
        .collect()
}

fn cookie_value(reply: &Reply, name: &str) -> String {
    let lines = set_cookies(reply);
    let (_, line) = lines
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} cookie in {lines:?}"));
    line.split(';').next().unwrap()[name.len() + 1..].to_owned()
}

fn assert_cleared(reply: &Reply) {
    let lines = set_cookies(reply);
    for name in [AT, RT] {
        let line = &lines
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} is not cleared: {lines:?}"))
            .1;
        assert!(
            line.starts_with(&format!("{name}=;")) && line.contains("Max-Age=0"),
            "{line}"
        );
    }
}

async fn send(request: RequestBuilder) -> Reply {
    let response = request
        .send()
        .await
        .expect("the request reaches the server");
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        text: response.text().await.expect("the body"),
    }
}

fn request(app: &TestApp, method: Method, path: &str) -> RequestBuilder {
    app.http.request(method, format!("{}{path}", app.base))
}

/// A same-origin browser request (as Chromium sends it).
fn browser(app: &TestApp, method: Method, path: &str) -> RequestBuilder {
    request(app, method, path).header("sec-fetch-site", "same-origin")
}

/// Registers a user and logs in in cookie mode; answers the login reply.
async fn cookie_login(app: &TestApp) -> Reply {
    let email = unique_email();
    app.register(&email).await;
    send(
        browser(app, Method::POST, "/v1/auth/password")
            .header(TRANSPORT, "cookie")
            .json(&json!({"email": email, "password": PASSWORD})),
    )
    .await
}

fn jar(reply: &Reply) -> String {
    format!(
        "{AT}={}; {RT}={}",
        cookie_value(reply, AT),
        cookie_value(reply, RT)
    )
}

#[tokio::test]
async fn a_cookie_mode_login_answers_cookies_and_a_body_without_tokens() {
    let app = spawn_app().await;
    let reply = cookie_login(&app).await;
    let body = reply.ok(200);
    assert!(body.get("access_token").is_none(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["token_transport"], "cookie");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_expires_in"].as_i64().unwrap() > 0);
    assert!(body["user"]["id"].is_string());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let lines = set_cookies(&reply);
    let at = &lines.iter().find(|(n, _)| n == AT).unwrap().1;
    let rt = &lines.iter().find(|(n, _)| n == RT).unwrap().1;
    assert!(
        at.ends_with("; Path=/; Max-Age=900; HttpOnly; Secure; SameSite=Lax"),
        "{at}"
    );
    let refresh_age = body["refresh_expires_in"].as_i64().unwrap();
    assert!(
        rt.ends_with(&format!(
            "; Path=/v1/token/refresh; Max-Age={refresh_age}; HttpOnly; Secure; SameSite=Strict"
        )),
        "{rt}"
    );
    // The access cookie authenticates every bearer endpoint.
    let who = send(browser(&app, Method::GET, "/v1/session").header("cookie", jar(&reply))).await;
    assert_eq!(who.ok(200)["user"]["id"], body["user"]["id"]);
    // The body transport stays the default, and may be asked for by name.
    let email = unique_email();
    app.register(&email).await;
    let plain = send(
        request(&app, Method::POST, "/v1/auth/password")
            .header(TRANSPORT, "body")
            .json(&json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert!(plain.ok(200)["access_token"].is_string());
    assert!(set_cookies(&plain).is_empty());
}

#[tokio::test]
async fn every_login_kind_takes_cookie_mode() {
    let app = spawn_app().await;
    let anon =
        send(browser(&app, Method::POST, "/v1/sessions/anonymous").header(TRANSPORT, "cookie"))
            .await;
    let body = anon.ok(201);
    assert!(body["user"].is_null());
    assert!(body.get("access_token").is_none());
    // Registration on that anonymous session (its access cookie) upgrades it in place.
    let upgraded = send(
        browser(&app, Method::POST, "/v1/users")
            .header(TRANSPORT, "cookie")
            .header("cookie", jar(&anon))
            .json(&json!({"email": unique_email(), "password": PASSWORD})),
    )
    .await;
    let upgraded_body = upgraded.ok(201);
    assert_eq!(upgraded_body["session"]["id"], body["session"]["id"]);
    assert!(upgraded_body["user"]["id"].is_string());
    assert!(upgraded_body.get("access_token").is_none());
}

#[tokio::test]
async fn refresh_reads_the_refresh_cookie_and_answers_in_cookies() {
    let app = spawn_app().await;
    let login = cookie_login(&app).await;
    let old_rt = cookie_value(&login, RT);
    // The SDK sends the switch; a request that only carries the cookie gets cookies too:
    // a token read from a cookie is never answered into JavaScript's reach.
    for switch in [true, false] {
        let mut req = browser(&app, Method::POST, "/v1/token/refresh")
            .header("cookie", format!("{RT}={old_rt}"))
            .json(&json!({}));
        if switch {
            req = req.header(TRANSPORT, "cookie");
        }
        let refreshed = send(req).await;
        let body = refreshed.ok(200);
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert!(body.get("access_token").is_none(), "{body}");
        // Within the grace window the parent answers the same successor.
        assert_ne!(cookie_value(&refreshed, RT), old_rt);
        let who = send(
            browser(&app, Method::GET, "/v1/session")
                .header("cookie", format!("{AT}={}", cookie_value(&refreshed, AT))),
        )
        .await;
        who.ok(200);
    }
    // Without a body token and without the cookie: a 401 that says what is missing.
    let missing = send(browser(&app, Method::POST, "/v1/token/refresh").json(&json!({}))).await;
    let body = missing.problem(401, "REFRESH_TOKEN_INVALID");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("no refresh token"),
        "{body}"
    );
}

#[tokio::test]
async fn logout_and_ending_the_current_session_clear_both_cookies() {
    let app = spawn_app().await;
    let login = cookie_login(&app).await;
    let cookies = jar(&login);
    let out = send(browser(&app, Method::POST, "/v1/logout").header("cookie", &cookies)).await;
    out.ok(204);
    assert_cleared(&out);
    // The cookie is dead at once, and a refresh with the old refresh cookie is terminal:
    // it clears them too.
    let who = send(browser(&app, Method::GET, "/v1/session").header("cookie", &cookies)).await;
    who.problem(401, "SESSION_REVOKED");
    let refresh = send(
        browser(&app, Method::POST, "/v1/token/refresh")
            .header("cookie", &cookies)
            .json(&json!({})),
    )
    .await;
    assert_eq!(refresh.status, 401, "{}", refresh.text);
    assert_cleared(&refresh);

    // DELETE /v1/sessions/{own id} and DELETE /v1/sessions (all) clear them as well.
    let login = cookie_login(&app).await;
    let sid = login.json()["session"]["id"].as_str().unwrap().to_owned();
    let gone = send(
        browser(&app, Method::DELETE, &format!("/v1/sessions/{sid}")).header("cookie", jar(&login)),
    )
    .await;
    gone.ok(204);
    assert_cleared(&gone);
    let login = cookie_login(&app).await;
    let all =
        send(browser(&app, Method::DELETE, "/v1/sessions").header("cookie", jar(&login))).await;
    all.ok(200);
    assert_cleared(&all);
    // Logging out *other* devices keeps this one's cookies.
    let login = cookie_login(&app).await;
    let others = send(
        browser(&app, Method::DELETE, "/v1/sessions?except=current").header("cookie", jar(&login)),
    )
    .await;
    others.ok(200);
    assert!(set_cookies(&others).is_empty());
}

#[tokio::test]
async fn cookie_authenticated_unsafe_requests_pass_the_csrf_check_or_get_403() {
    let app = spawn_with(|c| c.web.allowed_origins = vec!["https://app.example.com".into()]).await;
    let login = cookie_login(&app).await;
    let cookies = jar(&login);
    let put = |extra: &[(&str, &str)]| {
        let mut req = request(&app, Method::PUT, "/v1/session/data")
            .header("cookie", &cookies)
            .header("content-type", "application/json")
            .body("{\"a\":1}");
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        send(req)
    };
    put(&[
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ])
    .await
    .problem(403, "CSRF_REJECTED");
    put(&[("sec-fetch-site", "cross-site")])
        .await
        .problem(403, "CSRF_REJECTED");
    put(&[("origin", "https://evil.example")])
        .await
        .problem(403, "CSRF_REJECTED");
    put(&[("referer", "https://evil.example/x")])
        .await
        .problem(403, "CSRF_REJECTED");
    put(&[]).await.problem(403, "CSRF_REJECTED");
    put(&[("sec-fetch-site", "same-origin")]).await.ok(200);
    put(&[("sec-fetch-site", "same-site")]).await.ok(200);
    put(&[
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://app.example.com"),
    ])
    .await
    .ok(200);
    put(&[("origin", "https://app.example.com")]).await.ok(200);
    // A form-shaped (simple) content type never passes with a cookie, even same-origin.
    let form = send(
        browser(&app, Method::POST, "/v1/logout")
            .header("cookie", &cookies)
            .header("content-type", "text/plain")
            .body("x"),
    )
    .await;
    form.problem(403, "CSRF_REJECTED");
    // Safe methods are not checked.
    send(
        request(&app, Method::GET, "/v1/session")
            .header("cookie", &cookies)
            .header("sec-fetch-site", "cross-site"),
    )
    .await
    .ok(200);
    // Bearer-authenticated requests are exempt.
    let grant = app.register(&unique_email()).await;
    send(
        request(&app, Method::POST, "/v1/logout")
            .bearer_auth(access(&grant))
            .header("sec-fetch-site", "cross-site")
            .header("origin", "https://evil.example"),
    )
    .await
    .ok(204);
}

#[tokio::test]
async fn cookie_mode_logins_are_checked_for_login_csrf() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let login = send(
        request(&app, Method::POST, "/v1/auth/password")
            .header(TRANSPORT, "cookie")
            .header("sec-fetch-site", "cross-site")
            .header("origin", "https://evil.example")
            .json(&json!({"email": email, "password": PASSWORD})),
    )
    .await;
    login.problem(403, "CSRF_REJECTED");
    assert!(set_cookies(&login).is_empty());
    let anon = send(
        request(&app, Method::POST, "/v1/sessions/anonymous")
            .header(TRANSPORT, "cookie")
            .header("origin", "https://evil.example"),
    )
    .await;
    anon.problem(403, "CSRF_REJECTED");
    let bad =
        send(browser(&app, Method::POST, "/v1/sessions/anonymous").header(TRANSPORT, "jar")).await;
    bad.problem(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn cors_answers_allowed_origins_only_with_credentials_and_a_cached_preflight() {
    let app = spawn_with(|c| c.web.allowed_origins = vec!["https://app.example.com".into()]).await;
    let preflight = |origin: &'static str| {
        send(
            request(&app, Method::OPTIONS, "/v1/auth/password")
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "content-type, sessiond-token-transport",
                ),
        )
    };
    let ok = preflight("https://app.example.com").await;
    assert!(ok.status.is_success(), "{}", ok.status);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(ok.header("access-control-max-age"), Some("600"));
    let allowed = ok
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("sessiond-token-transport"), "{allowed}");
    let vary: Vec<String> = ok
        .headers
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .collect();
    assert!(vary.iter().any(|v| v.contains("origin")), "{vary:?}");
    let evil = preflight("https://evil.example").await;
    assert_eq!(evil.header("access-control-allow-origin"), None);
    // (tower-http still says `allow-credentials: true`; without an allowed origin the
    // browser refuses the answer all the same.)
    // An actual request names the allowed origin (never `*`).
    let health =
        send(request(&app, Method::GET, "/healthz").header("origin", "https://app.example.com"))
            .await;
    assert_eq!(
        health.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let vary = health.headers.get_all("vary").iter().count();
    assert!(vary > 0);
    // Without allowed origins there is no CORS at all.
    let plain = spawn_app().await;
    let none =
        send(request(&plain, Method::GET, "/healthz").header("origin", "https://app.example.com"))
            .await;
    assert_eq!(none.header("access-control-allow-origin"), None);
}

fn identity(reply: &Reply) -> [Option<String>; 4] {
    [
        "x-sessiond-user",
        "x-sessiond-session",
        "x-sessiond-amr",
        "x-sessiond-anonymous",
    ]
    .map(|h| reply.header(h).map(str::to_owned))
}

#[tokio::test]
async fn the_forward_auth_check_answers_200_with_identity_or_401_with_empty_headers() {
    let app = spawn_app().await;
    let grant = app.register(&unique_email()).await;
    let ok = app.get("/v1/auth/check", &access(&grant)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let user = grant["user"]["id"].as_str().unwrap().to_owned();
    let sid = session_id(&grant);
    assert_eq!(
        identity(&ok),
        [
            Some(user.clone()),
            Some(sid.clone()),
            Some("pwd".into()),
            Some("false".into())
        ]
    );
    assert!(ok.headers.get("set-cookie").is_none());
    // The access cookie works too.
    let login = cookie_login(&app).await;
    let by_cookie =
        send(request(&app, Method::GET, "/v1/auth/check").header("cookie", jar(&login))).await;
    assert_eq!(by_cookie.status, 200);
    assert_eq!(identity(&by_cookie)[2].as_deref(), Some("pwd"));
    // Anonymous: the user header is there and empty.
    let anon = app.post("/v1/sessions/anonymous", json!({})).await.ok(201);
    let anon_check = app.get("/v1/auth/check", &access(&anon)).await;
    assert_eq!(anon_check.status, 200);
    assert_eq!(
        identity(&anon_check),
        [
            Some(String::new()),
            Some(session_id(&anon)),
            Some("anon".into()),
            Some("true".into())
        ]
    );
    // No token, a forged one, a revoked session: 401, the headers present and empty.
    let empty = [
        Some(String::new()),
        Some(String::new()),
        Some(String::new()),
        Some(String::new()),
    ];
    let none = send(request(&app, Method::GET, "/v1/auth/check")).await;
    none.problem(401, "TOKEN_NOT_PROVIDED");
    assert_eq!(identity(&none), empty);
    let forged = app.get("/v1/auth/check", "eyJhbGciOiJub25lIn0.e30.").await;
    forged.problem(401, "TOKEN_INVALID");
    assert_eq!(identity(&forged), empty);
    app.post_as("/v1/logout", &access(&grant), json!({})).await;
    let revoked = app.get("/v1/auth/check", &access(&grant)).await;
    revoked.problem(401, "SESSION_REVOKED");
    assert_eq!(identity(&revoked), empty);
    assert!(revoked.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn the_identity_header_names_are_configurable() {
    let app = spawn_with(|c| {
        c.web.user_header = "Remote-User".into();
        c.web.session_header = "Remote-Session".into();
    })
    .await;
    let grant = app.register(&unique_email()).await;
    let ok = app.get("/v1/auth/check", &access(&grant)).await;
    assert_eq!(ok.header("remote-user"), grant["user"]["id"].as_str());
    assert_eq!(
        ok.header("remote-session"),
        Some(session_id(&grant).as_str())
    );
    assert_eq!(ok.header("x-sessiond-user"), None);
    assert_eq!(ok.header("x-sessiond-amr"), Some("pwd"));
}

#[tokio::test]
async fn bad_cookies_get_clear_problems_and_never_a_5xx() {
    let app = spawn_app().await;
    let login = cookie_login(&app).await;
    let at = cookie_value(&login, AT);
    let rt = cookie_value(&login, RT);
    let check =
        |cookie: String| send(browser(&app, Method::GET, "/v1/session").header("cookie", cookie));
    // Forged and malformed access cookies.
    check(format!("{AT}=not-a-jwt"))
        .await
        .problem(401, "TOKEN_INVALID");
    check(format!("{AT}={}x", at))
        .await
        .problem(401, "TOKEN_INVALID");
    check(format!("{AT}=\"{at}\"")).await.ok(200);
    // Duplicates: none is used, and the problem says why.
    let twice = check(format!("{AT}={at}; {AT}={at}")).await;
    let body = twice.problem(401, "TOKEN_INVALID");
    assert!(
        body["detail"].as_str().unwrap().contains("more than once"),
        "{body}"
    );
    let twice = send(
        browser(&app, Method::GET, "/v1/session")
            .header("cookie", format!("{AT}={at}"))
            .header("cookie", format!("{AT}=other")),
    )
    .await;
    twice.problem(401, "TOKEN_INVALID");
    // Oversized cookie headers: a clear 401 (or the server's header limit), never 5xx.
    for size in [9 * 1024, 60 * 1024] {
        let big = check(format!("{AT}={}", "a".repeat(size))).await;
        assert!(
            big.status == 401 || big.status == 431,
            "{size}: {} {}",
            big.status,
            big.text
        );
        let other = check(format!("junk={}; {AT}={at}", "b".repeat(size))).await;
        assert!(other.status.as_u16() < 500, "{}", other.status);
    }
    // Duplicate refresh cookies (a stale cookie of another path beside ours): refused,
    // ours cleared, the session not touched (no reuse detection is set off).
    let dup = send(
        browser(&app, Method::POST, "/v1/token/refresh")
            .header("cookie", format!("{RT}=stale; {RT}={rt}"))
            .json(&json!({})),
    )
    .await;
    dup.problem(401, "REFRESH_TOKEN_INVALID");
    assert_cleared(&dup);
    let fine = send(
        browser(&app, Method::POST, "/v1/token/refresh")
            .header("cookie", format!("{RT}={rt}"))
            .json(&json!({})),
    )
    .await;
    fine.ok(200);
    let forged = send(
        browser(&app, Method::POST, "/v1/token/refresh")
            .header("cookie", format!("{RT}=forged"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(forged.status, 401, "{}", forged.text);
    assert_cleared(&forged);
}

#[tokio::test]
async fn a_bearer_token_wins_over_the_access_cookie() {
    let app = spawn_app().await;
    let login = cookie_login(&app).await;
    let cookie_user = login.json()["user"]["id"].clone();
    let other = app.register(&unique_email()).await;
    let both = send(
        request(&app, Method::GET, "/v1/session")
            .header("cookie", jar(&login))
            .bearer_auth(access(&other)),
    )
    .await;
    let body = both.ok(200);
    assert_eq!(body["user"]["id"], other["user"]["id"]);
    assert_ne!(body["user"]["id"], cookie_user);
    // A bad bearer token is not rescued by a good cookie.
    let bad = send(
        request(&app, Method::GET, "/v1/session")
            .header("cookie", jar(&login))
            .bearer_auth("garbage"),
    )
    .await;
    bad.problem(401, "TOKEN_INVALID");
    let check = send(
        request(&app, Method::GET, "/v1/auth/check")
            .header("cookie", jar(&login))
            .bearer_auth(access(&other)),
    )
    .await;
    assert_eq!(
        check.header("x-sessiond-user"),
        other["user"]["id"].as_str()
    );
}

#[tokio::test]
async fn insecure_cookies_drop_secure_and_the_prefixes() {
    let app = spawn_with(|c| c.web.insecure_cookies = true).await;
    let email = unique_email();
    app.register(&email).await;
    let login = send(
        browser(&app, Method::POST, "/v1/auth/password")
            .header(TRANSPORT, "cookie")
            .json(&json!({"email": email, "password": PASSWORD})),
    )
    .await;
    login.ok(200);
    let lines = set_cookies(&login);
    let names: Vec<&str> = lines.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["sessiond_at", "sessiond_rt"]);
    assert!(
        lines.iter().all(|(_, l)| !l.contains("Secure")),
        "{lines:?}"
    );
    let at = cookie_value(&login, "sessiond_at");
    send(browser(&app, Method::GET, "/v1/session").header("cookie", format!("sessiond_at={at}")))
        .await
        .ok(200);
    // The secure names are not read in this mode.
    send(browser(&app, Method::GET, "/v1/session").header("cookie", format!("{AT}={at}")))
        .await
        .problem(401, "TOKEN_NOT_PROVIDED");
}

#[tokio::test]
async fn the_optional_identity_assertion_is_a_signed_jwt_never_usable_as_a_token() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = spawn_with(|c| c.web.assertion_header = Some("X-Sessiond-Assertion".into())).await;
    let grant = app.register(&unique_email()).await;
    let ok = app.get("/v1/auth/check", &access(&grant)).await;
    assert_eq!(ok.status, 200);
    let jwt = ok
        .header("x-sessiond-assertion")
        .expect("an assertion")
        .to_owned();
    let part = |i: usize| -> serde_json::Value {
        let bytes = URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(i).unwrap())
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    let (header, claims) = (part(0), part(1));
    assert_eq!(header["typ"], "sessiond-id+jwt");
    assert_eq!(header["alg"], "EdDSA");
    assert!(
        app.jwks_kids()
            .await
            .contains(&header["kid"].as_str().unwrap().to_owned())
    );
    assert_eq!(claims["sub"], grant["user"]["id"]);
    assert_eq!(claims["sid"], grant["session"]["id"]);
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60
    );
    // The signature verifies with the published key.
    let jwks = app.jwks().await;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap();
    let public = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
    let (signed, signature) = jwt.rsplit_once('.').unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
        .verify(
            signed.as_bytes(),
            &URL_SAFE_NO_PAD.decode(signature).unwrap(),
        )
        .expect("the assertion's signature verifies");
    // Never an access token, and empty on a refusal.
    app.whoami(&jwt).await.problem(401, "TOKEN_INVALID");
    let refused = app.get("/v1/auth/check", "garbage").await;
    assert_eq!(refused.header("x-sessiond-assertion"), Some(""));
}
