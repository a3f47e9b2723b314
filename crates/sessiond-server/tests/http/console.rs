//! The admin console at `/admin`: no page without signing in, the sign-in's refusals and
//! limit, the cookie, CSRF, the headers on every answer, escaping, 404 pages, and that a
//! console action is the admin API's action (same revocation, same events).

use reqwest::redirect::Policy;
use reqwest::{Method, RequestBuilder};
use serde_json::json;

use crate::common::*;

const COOKIE: &str = "__Host-sessiond_console";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A browser-like client of the console: no redirects followed, cookie sent by hand.
struct Console {
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Console {
    fn new(app: &TestApp) -> Self {
        Self {
            base: app.base.clone(),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("{COOKIE}={cookie}"));
        }
        request
    }

    async fn get(&self, path: &str) -> Reply {
        send(self.request(Method::GET, path)).await
    }

    /// A same-origin form POST (as Chromium sends it).
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        send(
            self.request(Method::POST, path)
                .header("sec-fetch-site", "same-origin")
                .form(form),
        )
        .await
    }

    async fn sign_in(&mut self, key: &str) -> Reply {
        let reply = self.post("/admin/sign-in", &[("key", key)]).await;
        if reply.status == 303 {
            self.cookie = Some(cookie_value(&reply));
        }
        reply
    }

    /// The CSRF token in a page's forms.
    async fn csrf(&self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let marker = "name=\"csrf\" value=\"";
        let start = page.text.find(marker).expect("a form with a CSRF field") + marker.len();
        page.text[start..].split('"').next().unwrap().to_owned()
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

fn set_cookie(reply: &Reply) -> String {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|line| line.starts_with(COOKIE))
        .unwrap_or_else(|| panic!("no console cookie in {:?}", reply.headers))
}

fn cookie_value(reply: &Reply) -> String {
    let line = set_cookie(reply);
    line.split(';').next().unwrap()[COOKIE.len() + 1..].to_owned()
}

fn user_id(grant: &serde_json::Value) -> String {
    grant["user"]["id"].as_str().expect("user id").to_owned()
}

#[track_caller]
fn assert_sign_in_redirect(reply: &Reply) {
    assert_eq!(reply.status, 303, "{}", reply.text);
    assert_eq!(reply.header("location"), Some("/admin/sign-in"));
}

#[track_caller]
fn assert_html_page(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(reply.header("content-security-policy"), Some(CSP));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(reply.text.starts_with("<!DOCTYPE html>"), "{}", reply.text);
}

const PAGES: [&str; 6] = [
    "/admin",
    "/admin/users",
    "/admin/events",
    "/admin/keys",
    "/admin/config",
    "/admin/users?q=ann&status=active&verified=no",
];

#[tokio::test]
async fn no_console_page_or_action_without_signing_in() {
    let app = spawn_app().await;
    let grant = app.register(&unique_email()).await;
    let user = user_id(&grant);
    let console = Console::new(&app);
    for path in PAGES.iter().map(|p| p.to_string()).chain([
        format!("/admin/users/{user}"),
        format!("/admin/sessions/{}", session_id(&grant)),
    ]) {
        let reply = console.get(&path).await;
        assert_sign_in_redirect(&reply);
        assert!(!reply.text.contains(&user), "{path}");
    }
    for path in [
        format!("/admin/users/{user}/deactivate"),
        format!("/admin/sessions/{}/end", session_id(&grant)),
        "/admin/keys/rotate".to_owned(),
        "/admin/sign-out".to_owned(),
    ] {
        assert_sign_in_redirect(&console.post(&path, &[("csrf", "x")]).await);
    }
    let slash = console.get("/admin/").await;
    assert_eq!(slash.status, 308);
    assert_eq!(slash.header("location"), Some("/admin"));
    // A forged or stale cookie is no session either.
    let mut forged = Console::new(&app);
    forged.cookie = Some("0123.1.1.AAAA".to_owned());
    assert_sign_in_redirect(&forged.get("/admin").await);
    app.whoami(&access(&grant)).await.ok(200);
    let user = app
        .admin(Method::GET, &format!("/v1/admin/users/{user}"), None)
        .await
        .ok(200);
    assert_eq!(user["active"], true);
}

#[tokio::test]
async fn sign_in_sets_a_strict_host_only_cookie_and_sign_out_ends_the_session() {
    let app = spawn_app().await;
    let mut console = Console::new(&app);
    let page = console.get("/admin/sign-in").await;
    assert_html_page(&page, 200);
    assert!(page.text.contains("type=\"password\""));
    let reply = console.sign_in(&app.admin_key).await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), Some("/admin"));
    let line = set_cookie(&reply);
    for attribute in [
        "Path=/",
        "Max-Age=1800",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
    ] {
        assert!(line.contains(attribute), "{attribute} missing: {line}");
    }
    assert!(!line.contains("Domain"), "{line}");
    // The key is not in the cookie, nor anywhere in the page.
    assert!(!line.contains(&app.admin_key));
    let overview = console.get("/admin").await;
    assert_html_page(&overview, 200);
    assert!(!overview.text.contains(&app.admin_key));
    assert!(overview.text.contains("Logins per minute"));
    // Each page re-signs the cookie (the idle deadline moves).
    assert!(set_cookie(&overview).contains("Max-Age=1800"));
    // Signed in, the sign-in page sends to the overview.
    assert_eq!(console.get("/admin/sign-in").await.status, 303);

    // Idle for 30 minutes: signed out.
    app.clock.advance(chrono::Duration::minutes(31));
    assert_sign_in_redirect(&console.get("/admin").await);

    console.sign_in(&app.admin_key).await;
    let csrf = console.csrf("/admin").await;
    let old = console.cookie.clone();
    let out = console.post("/admin/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/admin/sign-in?signed_out=1"));
    assert!(set_cookie(&out).contains("Max-Age=0"));
    // The token itself is dead, not only the browser's copy.
    console.cookie = old;
    assert_sign_in_redirect(&console.get("/admin").await);
    let signed_out = console.get("/admin/sign-in?signed_out=1").await;
    assert!(signed_out.text.contains("You are signed out."));
}

#[tokio::test]
async fn a_wrong_key_is_refused_logged_and_rate_limited() {
    let app = spawn_app().await;
    let mut console = Console::new(&app);
    for bad in ["", "nope", &"k".repeat(2000), "<script>alert(1)</script>"] {
        let reply = console.sign_in(bad).await;
        assert_html_page(&reply, 401);
        assert!(reply.text.contains("That is not the admin key."));
        assert!(!reply.text.contains("<script>alert"), "{}", reply.text);
        assert!(reply.headers.get("set-cookie").is_none());
    }
    // A form from another site is refused before the key is looked at.
    let cross = send(
        console
            .request(Method::POST, "/admin/sign-in")
            .header("sec-fetch-site", "cross-site")
            .form(&[("key", app.admin_key.as_str())]),
    )
    .await;
    assert_html_page(&cross, 403);
    // `password_failures` (10 per 15 minutes) counts console failures per client IP.
    for _ in 4..10 {
        assert_eq!(console.sign_in("wrong").await.status, 401);
    }
    let limited = console.sign_in(&app.admin_key).await;
    assert_html_page(&limited, 429);
    assert!(limited.header("retry-after").is_some());
    app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(console.sign_in(&app.admin_key).await.status, 303);
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_or_from_another_site_are_refused() {
    let app = spawn_app().await;
    let grant = app.register(&unique_email()).await;
    let user = user_id(&grant);
    let mut console = Console::new(&app);
    console.sign_in(&app.admin_key).await;
    let path = format!("/admin/users/{user}/deactivate");
    let csrf = console.csrf(&format!("/admin/users/{user}")).await;

    let mut other = Console::new(&app);
    other.sign_in(&app.admin_key).await;
    let foreign = other.csrf("/admin").await;
    for form in [
        vec![],
        vec![("csrf", "")],
        vec![("csrf", "AAAA")],
        vec![("csrf", foreign.as_str())],
    ] {
        let reply = console.post(&path, &form).await;
        assert_html_page(&reply, 403);
        assert!(reply.text.contains("CSRF"), "{}", reply.text);
    }
    for (header, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
    ] {
        let reply = send(
            console
                .request(Method::POST, &path)
                .header(header, value)
                .form(&[("csrf", csrf.as_str())]),
        )
        .await;
        assert_html_page(&reply, 403);
    }
    // Not a form: refused too.
    let json_body = send(
        console
            .request(Method::POST, &path)
            .header("sec-fetch-site", "same-origin")
            .json(&json!({"csrf": csrf})),
    )
    .await;
    assert_html_page(&json_body, 422);
    app.whoami(&access(&grant)).await.ok(200);

    let done = console.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 303);
    assert_eq!(
        done.header("location"),
        Some(format!("/admin/users/{user}?done=deactivated").as_str())
    );
    app.whoami(&access(&grant))
        .await
        .problem(401, "SESSION_REVOKED");
}

#[tokio::test]
async fn ending_a_session_in_the_console_is_the_admin_apis_revocation() {
    let app = spawn_app().await;
    let email = unique_email();
    let grant = app.register(&email).await;
    let other = app.login(&email).await.ok(200);
    let user = user_id(&grant);
    let session = session_id(&grant);
    let mut console = Console::new(&app);
    console.sign_in(&app.admin_key).await;

    let found = console
        .get(&format!("/admin/users?q={}", &email[..6]))
        .await;
    assert_html_page(&found, 200);
    assert!(found.text.contains(&email), "{}", found.text);
    let exact = console.get(&format!("/admin/users?q={email}")).await;
    assert!(exact.text.contains(&format!("/admin/users/{user}")));

    let page = console.get(&format!("/admin/users/{user}")).await;
    assert_html_page(&page, 200);
    assert!(
        page.text
            .contains(&format!("/admin/sessions/{session}/end"))
    );
    let csrf = console.csrf(&format!("/admin/users/{user}")).await;
    let ended = console
        .post(
            &format!("/admin/sessions/{session}/end"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(ended.status, 303, "{}", ended.text);
    assert_eq!(
        ended.header("location"),
        Some(format!("/admin/users/{user}?done=ended").as_str())
    );
    let refused = app
        .whoami(&access(&grant))
        .await
        .problem(401, "SESSION_REVOKED");
    assert_eq!(refused["revoked_reason"], "admin", "{refused}");
    app.whoami(&access(&other)).await.ok(200);

    // The user's page now says why: the ended session, its reason and initiator.
    let page = console.get(&format!("/admin/users/{user}")).await;
    let ended_section = page
        .text
        .split("id=\"ended\"")
        .nth(1)
        .unwrap_or_else(|| panic!("an ended-sessions section: {}", page.text));
    assert!(
        ended_section.contains(&format!("/admin/sessions/{session}\"")),
        "{ended_section}"
    );
    assert!(
        ended_section.contains("<code>admin</code>"),
        "{ended_section}"
    );
    assert!(
        !ended_section.contains(&format!("/admin/sessions/{}\"", session_id(&other))),
        "the live session is not among the ended"
    );

    let events = app
        .admin(
            Method::GET,
            &format!("/v1/admin/events?type=session.ended&session_id={session}"),
            None,
        )
        .await
        .ok(200);
    assert_eq!(events["events"][0]["data"]["reason"], "admin");
    assert_eq!(events["events"][0]["data"]["initiator"], "admin");

    let timeline = console.get(&format!("/admin/sessions/{session}")).await;
    assert_html_page(&timeline, 200);
    assert!(timeline.text.contains("session.ended"));
    assert!(
        timeline.text.contains("<code>admin</code>"),
        "{}",
        timeline.text
    );

    // Erasing takes the typed word.
    let erase = format!("/admin/users/{user}/erase");
    let csrf = console.csrf(&erase).await;
    for bad in ["yes", "", "<script>alert(1)</script>", &"e".repeat(10_000)] {
        let wrong = console
            .post(&erase, &[("csrf", &csrf), ("confirm", bad)])
            .await;
        assert_html_page(&wrong, 422);
        assert!(!wrong.text.contains("<script>alert"));
    }
    app.whoami(&access(&other)).await.ok(200);
    let erased = console
        .post(&erase, &[("csrf", &csrf), ("confirm", "erase")])
        .await;
    assert_eq!(erased.status, 303);
    assert_eq!(erased.header("location"), Some("/admin/users?erased=1"));
    // The user is gone, and with it every token's subject.
    assert_eq!(app.whoami(&access(&other)).await.status, 401);
    assert_html_page(&console.get(&format!("/admin/users/{user}")).await, 404);
}

#[tokio::test]
async fn every_page_has_the_security_headers_and_bad_input_is_an_html_page() {
    let app = spawn_app().await;
    let grant = app.register(&unique_email()).await;
    let mut console = Console::new(&app);
    console.sign_in(&app.admin_key).await;
    for path in PAGES.iter().map(|p| p.to_string()).chain([
        format!("/admin/users/{}", user_id(&grant)),
        format!("/admin/users/{}/erase", user_id(&grant)),
        format!("/admin/sessions/{}", session_id(&grant)),
        format!("/admin/events?session_id={}", session_id(&grant)),
    ]) {
        assert_html_page(&console.get(&path).await, 200);
    }
    let missing = uuid::Uuid::now_v7();
    for path in [
        format!("/admin/users/{missing}"),
        format!("/admin/sessions/{missing}"),
        format!("/admin/users/{missing}/erase"),
        "/admin/users/not-an-id".to_owned(),
        "/admin/sessions/%3Cscript%3E".to_owned(),
        "/admin/nothing-here".to_owned(),
        "/admin/assets/console-0000.css".to_owned(),
    ] {
        let reply = console.get(&path).await;
        assert_html_page(&reply, 404);
        assert!(!reply.text.contains("<script>"), "{}", reply.text);
    }
    let csrf = console.csrf("/admin").await;
    let reply = console
        .post(
            &format!("/admin/users/{missing}/deactivate"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_html_page(&reply, 404);
    for path in [
        format!("/admin/users?q={}", "a".repeat(300)),
        "/admin/users?status=maybe".to_owned(),
        "/admin/users?cursor=nope".to_owned(),
        "/admin/events?type=%3Cscript%3E".to_owned(),
        "/admin/events?user_id=%3Cscript%3E".to_owned(),
        "/admin/events?after=-1".to_owned(),
    ] {
        let reply = console.get(&path).await;
        assert_html_page(&reply, 422);
        assert!(!reply.text.contains("<script>"), "{}", reply.text);
    }
    // Larger than the body limit: a 413 page, not a plain-text one.
    let huge = "x".repeat(200 * 1024);
    let reply = console.post("/admin/sign-in", &[("key", &huge)]).await;
    assert_html_page(&reply, 413);
    // The assets are cached for long under their hashed names.
    let page = console.get("/admin").await;
    let css = page
        .text
        .split("href=\"")
        .find_map(|s| s.split('"').next().filter(|h| h.ends_with(".css")))
        .unwrap();
    let asset = console.get(css).await;
    assert_eq!(asset.status, 200);
    assert_eq!(
        asset.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert!(asset.header("cache-control").unwrap().contains("immutable"));
    // Not part of the JSON API's description.
    let document = app
        .send(Method::GET, "/openapi.json", None, None)
        .await
        .ok(200);
    assert!(
        document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .all(|p| !p.starts_with("/admin"))
    );
}

#[tokio::test]
async fn script_payloads_in_names_and_searches_are_shown_as_text() {
    let app = spawn_app().await;
    let payload = "<img src=x onerror=alert(1)><script>alert(2)</script>";
    let email = unique_email();
    let grant = app
        .post(
            "/v1/users",
            json!({"email": email, "password": PASSWORD, "name": payload, "device": {"label": payload}}),
        )
        .await
        .ok(201);
    let user = user_id(&grant);
    let mut console = Console::new(&app);
    console.sign_in(&app.admin_key).await;
    for path in [
        format!("/admin/users?q={}", &email[..6]),
        format!("/admin/users/{user}"),
        format!("/admin/sessions/{}", session_id(&grant)),
        "/admin/users?q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E".to_owned(),
    ] {
        let page = console.get(&path).await;
        assert_html_page(&page, 200);
        assert!(!page.text.contains("<img src=x"), "{path}: {}", page.text);
        assert!(!page.text.contains("<script>alert"), "{path}");
        assert!(
            page.text.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{path}: {}",
            page.text
        );
    }
}

#[tokio::test]
async fn every_instance_accepts_a_console_session_and_a_sign_out_ends_it_everywhere() {
    // Without Redis, instances share the signing secret (from the admin key) but not
    // sign-outs: then only the first half is checked.
    let shared = crate::redis::redis_available().await;
    let prefix = crate::redis::unique_prefix();
    let configure = |c: &mut sessiond_server::Config| {
        if shared {
            c.redis_url = Some("redis://127.0.0.1:6379".parse().unwrap());
        }
        c.redis_prefix = prefix.clone();
    };
    let a = spawn_with(configure).await;
    let b = spawn_sibling(&a, configure).await;
    let mut on_a = Console::new(&a);
    on_a.sign_in(&a.admin_key).await;
    let mut on_b = Console::new(&b);
    on_b.cookie = on_a.cookie.clone();
    assert_html_page(&on_b.get("/admin/users").await, 200);
    let csrf = on_b.csrf("/admin").await;
    // A CSRF token of the session is good on every instance.
    let out = on_a.post("/admin/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_sign_in_redirect(&on_a.get("/admin").await);
    if shared {
        assert_sign_in_redirect(&on_b.get("/admin").await);
        crate::redis::delete_keys(&prefix).await;
    }
}

#[tokio::test]
async fn the_events_page_opens_on_the_latest_events() {
    let app = spawn_app().await;
    let grant = app.register(&unique_email()).await;
    // 1 user.created + 1 session.created, then 60 more sessions: more than a page.
    let mut last = grant.clone();
    for _ in 0..60 {
        last = app
            .admin(
                Method::POST,
                "/v1/admin/sessions",
                Some(json!({"user_id": user_id(&grant)})),
            )
            .await
            .ok(201);
    }
    let mut console = Console::new(&app);
    console.sign_in(&app.admin_key).await;
    let page = console.get("/admin/events").await;
    assert_html_page(&page, 200);
    assert!(page.text.contains("The latest events"));
    assert!(
        page.text.contains(&session_id(&last)),
        "the newest event is on the first page"
    );
    assert_eq!(page.text.matches("<tr><td>").count(), 50);
    assert!(!page.text.contains(">Newer<"));
    let oldest = console.get("/admin/events?after=0").await;
    assert!(oldest.text.contains("user.created"));
    assert!(oldest.text.contains(">Newer<"));
    assert!(oldest.text.contains(">Latest<"));
    // With a filter: the latest matching ones.
    let filtered = console
        .get(&format!(
            "/admin/events?type=user.created&user_id={}",
            user_id(&grant)
        ))
        .await;
    assert_eq!(
        filtered.text.matches("<tr><td>").count(),
        1,
        "{}",
        filtered.text
    );
    let sessions = console.get("/admin/events?type=session.created").await;
    assert_eq!(sessions.text.matches("<tr><td>").count(), 50);
    assert!(sessions.text.contains(&session_id(&last)));
}
