//! The console's stylesheet and script, compiled into the binary (no CDN, works offline)
//! and served under a URL carrying a hash of their content, so browsers may cache them
//! for a year and still never use a stale one.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sessiond_core::TokenHash;

use super::error::ConsoleError;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

fn short_hash(text: &str) -> String {
    TokenHash::of(text.as_bytes()).as_bytes()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

static CSS_NAME: LazyLock<String> = LazyLock::new(|| format!("console-{}.css", short_hash(CSS)));
static JS_NAME: LazyLock<String> = LazyLock::new(|| format!("console-{}.js", short_hash(JS)));

pub fn css_url() -> String {
    format!("/admin/assets/{}", *CSS_NAME)
}

pub fn js_url() -> String {
    format!("/admin/assets/{}", *JS_NAME)
}

/// `GET /admin/assets/{name}`: only the current names; anything else is a 404.
pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = if name == *CSS_NAME {
        (CSS, "text/css; charset=utf-8")
    } else if name == *JS_NAME {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return ConsoleError::NotFound.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        body,
    )
        .into_response()
}
