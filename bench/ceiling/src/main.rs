//! `ceiling PORT [BODY_BYTES]`: the fastest thing an axum server on this machine can do for
//! `GET /v1/session`: answer a static JSON body of the same size as sessiond's whoami
//! answer, with no authentication, no storage and no work. Every sessiond number in the
//! benchmark is compared with this one.

use axum::Router;
use axum::http::header;
use axum::routing::get;

/// A whoami-shaped body, padded (inside a JSON string) to `size` bytes.
fn body(size: usize) -> String {
    let head = concat!(
        r#"{"session":{"id":"019a0000-0000-7000-8000-000000000000","user_id":"019a0000-0000-7000-8000-000000000001","#,
        r#""auth_method":"admin","created_at":"2026-11-23T00:00:00.000Z","last_active_at":"2026-11-23T00:00:00.000Z","#,
        r#""expires_at":"2026-12-23T00:00:00.000Z","idle_expires_at":"2026-11-30T00:00:00.000Z","#,
        r#""device":{"device_id":null,"user_agent":null,"ip":"127.0.0.1","label":null}},"#,
        r#""user":{"id":"019a0000-0000-7000-8000-000000000001","email":null,"name":null,"active":true,"#,
        r#""created_at":"2026-11-23T00:00:00.000Z","pad":""#
    );
    let tail = r#""}}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(pad))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: ceiling PORT [BODY_BYTES]");
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(520);
    let body: &'static str = Box::leak(body(size).into_boxed_str());

    let app = Router::new().route(
        "/v1/session",
        get(move || async move {
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    eprintln!(
        "ceiling listening on 127.0.0.1:{port}, body {} bytes",
        body.len()
    );
    axum::serve(listener, app).await.expect("serve");
}
