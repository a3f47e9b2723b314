//! Browsers and proxies (`[web]`): cookie transport of the tokens, the CSRF check of
//! cookie-authenticated requests, CORS for the allowed origins and the identity headers of
//! the forward-auth check (`GET /v1/auth/check`).

pub mod answer;
pub mod cookies;
pub mod cors;
pub mod csrf;

use std::time::Duration;

use axum::http::HeaderName;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// The `[web]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Origins (`https://app.example.com`, scheme, host and port exactly) that may call
    /// sessiond from a browser with credentials (CORS) and send cookie-authenticated
    /// requests from another site (CSRF).
    pub allowed_origins: Vec<String>,
    /// How long a browser may cache a CORS preflight answer.
    #[serde(with = "humantime_serde")]
    pub cors_max_age: Duration,
    /// Plain-HTTP development on a host other than localhost: cookies without `Secure` and
    /// without the `__Host-`/`__Secure-` prefixes (`sessiond_at`, `sessiond_rt`). Never in
    /// production; a warning is logged at startup. Browsers accept the secure cookies on
    /// `http://localhost` already.
    pub insecure_cookies: bool,
    /// The path the refresh cookie is scoped to: the refresh endpoint as the browser sees
    /// it (behind a proxy that mounts sessiond under a prefix, that prefix included).
    pub refresh_cookie_path: String,
    /// Forward-auth identity headers (`GET /v1/auth/check`): always present, empty when
    /// there is no user.
    pub user_header: String,
    pub session_header: String,
    pub amr_header: String,
    pub anonymous_header: String,
    /// Forward-auth: also answer a signed identity assertion in this header (a short
    /// EdDSA JWT, `typ: sessiond-id+jwt`, verifiable with `/.well-known/jwks.json`), for
    /// upstreams that could be reached around the proxy. Off when absent.
    pub assertion_header: Option<String>,
    /// Lifetime of an identity assertion.
    #[serde(with = "humantime_serde")]
    pub assertion_ttl: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            cors_max_age: Duration::from_secs(600),
            insecure_cookies: false,
            refresh_cookie_path: "/v1/token/refresh".to_owned(),
            user_header: "X-Sessiond-User".to_owned(),
            session_header: "X-Sessiond-Session".to_owned(),
            amr_header: "X-Sessiond-Amr".to_owned(),
            anonymous_header: "X-Sessiond-Anonymous".to_owned(),
            assertion_header: None,
            assertion_ttl: Duration::from_secs(60),
        }
    }
}

/// `[web]`, checked and parsed once at startup.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Normalised (`scheme://host[:port]`, lower case, no trailing slash).
    pub allowed_origins: Vec<String>,
    pub cors_max_age: Duration,
    pub cookies: cookies::CookieNames,
    pub refresh_cookie_path: String,
    pub identity: IdentityHeaders,
}

/// The names of the forward-auth identity headers.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub user: HeaderName,
    pub session: HeaderName,
    pub amr: HeaderName,
    pub anonymous: HeaderName,
    /// With `web.assertion_header`: its name and the assertions' lifetime.
    pub assertion: Option<(HeaderName, Duration)>,
}

fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        problem: problem.into(),
    }
}

/// `https://App.example.com/` → `https://app.example.com`; `None` for anything that is
/// not an origin (a path, a query, no host, another scheme).
pub fn normalise_origin(origin: &str) -> Option<String> {
    let origin = origin.trim().trim_end_matches('/');
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if !(scheme == "http" || scheme == "https") {
        return None;
    }
    if rest.is_empty()
        || rest
            .chars()
            .any(|c| matches!(c, '/' | '?' | '#' | '@' | ' ' | '*') || c.is_control())
    {
        return None;
    }
    Some(format!("{scheme}://{}", rest.to_ascii_lowercase()))
}

impl WebSettings {
    pub fn parse(config: &WebConfig) -> Result<Self, ConfigError> {
        let mut allowed_origins = Vec::new();
        for origin in &config.allowed_origins {
            let Some(normal) = normalise_origin(origin) else {
                return Err(invalid(
                    "web.allowed_origins",
                    format!(
                        "{origin:?} is not an origin: write `https://host[:port]`, without \
                         a path or wildcards"
                    ),
                ));
            };
            allowed_origins.push(normal);
        }
        if !config.refresh_cookie_path.starts_with('/')
            || config
                .refresh_cookie_path
                .chars()
                .any(|c| c == ';' || c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                "web.refresh_cookie_path",
                "must be a path starting with `/`, without `;` or blanks",
            ));
        }
        let header = |key: &'static str, name: &str| {
            HeaderName::try_from(name)
                .map_err(|_| invalid(key, format!("{name:?} is not a header name")))
        };
        let identity = IdentityHeaders {
            user: header("web.user_header", &config.user_header)?,
            session: header("web.session_header", &config.session_header)?,
            amr: header("web.amr_header", &config.amr_header)?,
            anonymous: header("web.anonymous_header", &config.anonymous_header)?,
            assertion: match &config.assertion_header {
                Some(name) => Some((header("web.assertion_header", name)?, config.assertion_ttl)),
                None => None,
            },
        };
        if config.assertion_ttl.is_zero() || config.assertion_ttl > Duration::from_secs(3600) {
            return Err(invalid("web.assertion_ttl", "must be between 1s and 1h"));
        }
        let mut names = vec![
            &identity.user,
            &identity.session,
            &identity.amr,
            &identity.anonymous,
        ];
        names.extend(identity.assertion.as_ref().map(|(name, _)| name));
        let count = names.len();
        names.sort_by_key(|n| n.as_str());
        names.dedup();
        if names.len() != count {
            return Err(invalid(
                "web.user_header",
                "the identity headers need different names",
            ));
        }
        Ok(Self {
            allowed_origins,
            cors_max_age: config.cors_max_age,
            cookies: cookies::CookieNames::new(config.insecure_cookies),
            refresh_cookie_path: config.refresh_cookie_path.clone(),
            identity,
        })
    }

    pub fn is_allowed_origin(&self, origin: &str) -> bool {
        normalise_origin(origin).is_some_and(|o| self.allowed_origins.contains(&o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_checked() {
        assert_eq!(
            normalise_origin("HTTPS://App.Example.com/").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            normalise_origin("http://localhost:5173").as_deref(),
            Some("http://localhost:5173")
        );
        for bad in [
            "*",
            "null",
            "app.example.com",
            "https://app.example.com/path",
            "https://*.example.com",
            "ftp://x",
            "https://",
            "https://u@evil",
        ] {
            assert_eq!(normalise_origin(bad), None, "{bad}");
        }
        let config = WebConfig {
            allowed_origins: vec!["https://*.example.com".into()],
            ..WebConfig::default()
        };
        assert_eq!(
            WebSettings::parse(&config).unwrap_err().key,
            "web.allowed_origins"
        );
    }

    #[test]
    fn identity_headers_must_be_distinct_header_names() {
        let config = WebConfig {
            user_header: "not a header".into(),
            ..WebConfig::default()
        };
        assert_eq!(
            WebSettings::parse(&config).unwrap_err().key,
            "web.user_header"
        );
        let config = WebConfig {
            amr_header: "x-sessiond-user".into(),
            ..WebConfig::default()
        };
        assert!(WebSettings::parse(&config).is_err());
        WebSettings::parse(&WebConfig::default()).unwrap();
    }
}
