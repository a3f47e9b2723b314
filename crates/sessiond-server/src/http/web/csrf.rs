//! The CSRF check of cookie-authenticated unsafe requests and of cookie-mode logins
//! (login CSRF). Bearer-authenticated requests are not subject to it: a page of another
//! site cannot make a browser send an `Authorization` header.
//!
//! In order: a "simple" content type (one a plain HTML form can send) is refused on these
//! JSON endpoints; then Fetch Metadata: `Sec-Fetch-Site` `same-origin`, `same-site` or
//! `none` passes, anything else passes only from an allowed origin; without it (older
//! browsers), `Origin`, else `Referer`, must be an allowed origin or this host; a request
//! with none of the three is refused (every browser that keeps cookies sends one).

use axum::http::{HeaderMap, header};

use super::{WebSettings, normalise_origin};

/// Why a request was refused (the problem's `detail`).
#[derive(Debug, PartialEq, Eq)]
pub struct Rejected(pub &'static str);

const SIMPLE_TYPES: [&str; 3] = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
];

fn text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `Origin`/`Referer` check: the origin is allowed, or is this very host.
fn origin_passes(origin: &str, headers: &HeaderMap, web: &WebSettings) -> bool {
    let Some(origin) = normalise_origin(origin) else {
        return false;
    };
    if web.allowed_origins.contains(&origin) {
        return true;
    }
    let host = origin.split_once("://").map_or("", |(_, host)| host);
    text(headers, header::HOST).is_some_and(|h| h.eq_ignore_ascii_case(host))
}

pub fn check(headers: &HeaderMap, web: &WebSettings) -> Result<(), Rejected> {
    if let Some(content_type) = text(headers, header::CONTENT_TYPE) {
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if SIMPLE_TYPES.contains(&mime.as_str()) {
            return Err(Rejected(
                "a cookie-authenticated request must not have a form or text content type",
            ));
        }
    }
    let origin = text(headers, header::ORIGIN);
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"same-site" | b"none" => Ok(()),
            _ if origin.is_some_and(|o| web.is_allowed_origin(o)) => Ok(()),
            _ => Err(Rejected(
                "a cross-site cookie-authenticated request from an origin not in `web.allowed_origins`",
            )),
        };
    }
    if let Some(origin) = origin {
        return if origin_passes(origin, headers, web) {
            Ok(())
        } else {
            Err(Rejected(
                "the `Origin` is neither this host nor in `web.allowed_origins`",
            ))
        };
    }
    if let Some(referer) = text(headers, header::REFERER) {
        let origin = referer
            .split_once("://")
            .map(|(scheme, rest)| {
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                format!("{scheme}://{host}")
            })
            .unwrap_or_default();
        return if origin_passes(&origin, headers, web) {
            Ok(())
        } else {
            Err(Rejected(
                "the `Referer` is neither this host nor in `web.allowed_origins`",
            ))
        };
    }
    Err(Rejected(
        "a cookie-authenticated request needs `Sec-Fetch-Site`, `Origin` or `Referer`",
    ))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::http::web::{WebConfig, WebSettings};

    fn web() -> WebSettings {
        WebSettings::parse(&WebConfig {
            allowed_origins: vec!["https://app.example.com".into()],
            ..WebConfig::default()
        })
        .unwrap()
    }

    fn req(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("auth.example.com"));
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn fetch_metadata_first_then_origin_then_referer() {
        let web = web();
        let ok = |pairs: &[(&'static str, &str)]| check(&req(pairs), &web).is_ok();
        assert!(ok(&[("sec-fetch-site", "same-origin")]));
        assert!(ok(&[("sec-fetch-site", "same-site")]));
        assert!(!ok(&[("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example")
        ]));
        assert!(ok(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://app.example.com")
        ]));
        // Fetch Metadata wins over a same-host Origin.
        assert!(!ok(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://auth.example.com")
        ]));
        assert!(ok(&[("origin", "https://auth.example.com")]));
        assert!(ok(&[("origin", "https://app.example.com")]));
        assert!(!ok(&[("origin", "null")]));
        assert!(!ok(&[("origin", "https://evil.example")]));
        assert!(ok(&[("referer", "https://app.example.com/page?x=1")]));
        assert!(!ok(&[("referer", "https://evil.example/auth.example.com")]));
        assert!(!ok(&[]));
        assert!(!ok(&[
            ("sec-fetch-site", "same-origin"),
            ("content-type", "text/plain;charset=UTF-8")
        ]));
        assert!(ok(&[
            ("sec-fetch-site", "same-origin"),
            ("content-type", "application/json")
        ]));
    }
}
