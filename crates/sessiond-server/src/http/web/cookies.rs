//! The token cookies: reading them from `Cookie` headers and writing `Set-Cookie`.
//!
//! The access token travels in `__Host-sessiond_at` (Path=/, Secure, HttpOnly,
//! SameSite=Lax, Max-Age = its lifetime), the refresh token in `__Secure-sessiond_rt`
//! (Path = the refresh endpoint, Secure, HttpOnly, SameSite=Strict). With
//! `web.insecure_cookies` (plain-HTTP development off localhost) they lose `Secure` and
//! the prefixes, which browsers only accept on secure cookies.

use axum::http::{HeaderMap, HeaderValue, header};

/// No token of ours is longer; a longer value is not one of ours and is not parsed.
pub const MAX_COOKIE_VALUE: usize = 8 * 1024;

/// The request header that asks a login or refresh for cookie transport.
pub const TRANSPORT_HEADER: &str = "sessiond-token-transport";

#[derive(Debug, Clone)]
pub struct CookieNames {
    pub access: &'static str,
    pub refresh: &'static str,
    pub secure: bool,
}

impl CookieNames {
    pub fn new(insecure: bool) -> Self {
        if insecure {
            Self {
                access: "sessiond_at",
                refresh: "sessiond_rt",
                secure: false,
            }
        } else {
            Self {
                access: "__Host-sessiond_at",
                refresh: "__Secure-sessiond_rt",
                secure: true,
            }
        }
    }
}

/// What the `Cookie` headers hold under one name.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    Absent,
    One(&'a str),
    /// The name more than once (a stale cookie of another path or a sibling domain
    /// beside ours, or a forged one): which is ours cannot be told, so none is used.
    Several,
    /// A value no token of ours has (too long or not cookie-safe text).
    Unreadable,
}

/// The value of cookie `name` in every `Cookie` header of the request.
pub fn find<'a>(headers: &'a HeaderMap, name: &str) -> Found<'a> {
    let mut found = Found::Absent;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else {
            // Not text at all: if it names our cookie, it is unreadable; else not ours.
            if contains(value.as_bytes(), name.as_bytes()) {
                return Found::Unreadable;
            }
            continue;
        };
        for pair in text.split(';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            if key.trim() != name {
                continue;
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            found = match found {
                Found::Absent => {
                    if value.is_empty() {
                        // A cleared cookie some client still sends: as if absent.
                        Found::Absent
                    } else if value.len() > MAX_COOKIE_VALUE
                        || !value.bytes().all(|b| b.is_ascii_graphic() && b != b',')
                    {
                        Found::Unreadable
                    } else {
                        Found::One(value)
                    }
                }
                Found::One(_) | Found::Several => Found::Several,
                Found::Unreadable => Found::Unreadable,
            };
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn cookie(
    names: &CookieNames,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
    same_site: &str,
) -> Option<HeaderValue> {
    let secure = if names.secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly{secure}; SameSite={same_site}",
        max_age.max(0)
    ))
    .ok()
}

/// `Set-Cookie` values for a token pair.
pub fn set_tokens(
    names: &CookieNames,
    refresh_path: &str,
    access: &str,
    access_max_age: i64,
    refresh: &str,
    refresh_max_age: i64,
) -> Vec<HeaderValue> {
    [
        cookie(names, names.access, access, "/", access_max_age, "Lax"),
        cookie(
            names,
            names.refresh,
            refresh,
            refresh_path,
            refresh_max_age,
            "Strict",
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `Set-Cookie` values that clear both cookies.
pub fn clear_tokens(names: &CookieNames, refresh_path: &str) -> Vec<HeaderValue> {
    set_tokens(names, refresh_path, "", 0, "", 0)
}

/// Whether the request carries a cookie of ours, usable or not.
pub fn carries_ours(headers: &HeaderMap, names: &CookieNames) -> bool {
    [names.access, names.refresh]
        .iter()
        .any(|name| find(headers, name) != Found::Absent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn finds_one_value_across_headers_and_flags_duplicates() {
        let names = CookieNames::new(false);
        let h = headers(&["a=1; __Host-sessiond_at=abc.def; b=2"]);
        assert_eq!(find(&h, names.access), Found::One("abc.def"));
        assert_eq!(find(&h, names.refresh), Found::Absent);
        let h = headers(&["__Host-sessiond_at=x", "__Host-sessiond_at=y"]);
        assert_eq!(find(&h, names.access), Found::Several);
        let h = headers(&["__Host-sessiond_at=x; __Host-sessiond_at=x"]);
        assert_eq!(find(&h, names.access), Found::Several);
        let long = format!("__Host-sessiond_at={}", "a".repeat(MAX_COOKIE_VALUE + 1));
        assert_eq!(find(&headers(&[&long]), names.access), Found::Unreadable);
        let h = headers(&["__Host-sessiond_at="]);
        assert_eq!(find(&h, names.access), Found::Absent);
        // A name that only ends like ours is not ours.
        let h = headers(&["x__Host-sessiond_at=1; sessiond_at=2"]);
        assert_eq!(find(&h, names.access), Found::Absent);
    }

    #[test]
    fn writes_the_contract_attributes() {
        let names = CookieNames::new(false);
        let set = set_tokens(&names, "/v1/token/refresh", "at", 900, "rt", 100);
        assert_eq!(
            set[0],
            "__Host-sessiond_at=at; Path=/; Max-Age=900; HttpOnly; Secure; SameSite=Lax"
        );
        assert_eq!(
            set[1],
            "__Secure-sessiond_rt=rt; Path=/v1/token/refresh; Max-Age=100; HttpOnly; Secure; SameSite=Strict"
        );
        let dev = CookieNames::new(true);
        let cleared = clear_tokens(&dev, "/v1/token/refresh");
        assert_eq!(
            cleared[0],
            "sessiond_at=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        );
    }
}
