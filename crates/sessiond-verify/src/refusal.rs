//! The answer to a refused request, shared by the axum extractor and the tower layer so
//! both speak exactly as sessiond does: problem+json with sessiond's `code` (and
//! `revoked_reason` for a revoked session), and `WWW-Authenticate: Bearer`.

use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::VerifyError;

/// A refused request: no bearer token at all, or a token the verifier refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(Option<VerifyError>);

impl Refused {
    /// No `Authorization: Bearer` token was sent.
    pub fn not_provided() -> Self {
        Self(None)
    }

    /// The verifier's refusal; `None` when no token was sent.
    pub fn error(&self) -> Option<&VerifyError> {
        self.0.as_ref()
    }

    /// sessiond's code: `TOKEN_NOT_PROVIDED` or the verifier's.
    pub fn code(&self) -> &'static str {
        self.0
            .as_ref()
            .map_or("TOKEN_NOT_PROVIDED", VerifyError::code)
    }

    pub fn status(&self) -> StatusCode {
        let status = self.0.as_ref().map_or(401, VerifyError::status);
        StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED)
    }

    /// The problem+json body.
    pub fn body(&self) -> String {
        let code = self.code();
        let title = match &self.0 {
            Some(e) => e.to_string(),
            None => "no bearer token".to_owned(),
        };
        let mut body = serde_json::json!({
            "type": format!("urn:sessiond:problem:{}", code.to_ascii_lowercase()),
            "title": title,
            "status": self.status().as_u16(),
            "code": code,
        });
        match &self.0 {
            Some(VerifyError::SessionRevoked { reason }) => {
                body["revoked_reason"] = reason.as_str().into();
            }
            Some(VerifyError::TokenExpired { expired_at }) => {
                body["expired_at"] = expired_at.to_rfc3339().into();
            }
            _ => {}
        }
        body.to_string()
    }

    /// The whole answer, in any body type that can be made from a string (axum's `Body`,
    /// `http_body_util::Full<Bytes>`, `String`).
    pub fn into_http<B: From<String>>(self) -> http::Response<B> {
        let mut response = http::Response::new(B::from(self.body()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        // RFC 6750: every 401 names the scheme; a 503 is not about the credentials.
        if self.status() == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<VerifyError> for Refused {
    fn from(error: VerifyError) -> Self {
        Self(Some(error))
    }
}

/// The request's bearer token: `Authorization: Bearer <token>` (the scheme in any case,
/// RFC 9110); `None` when absent, empty or another scheme.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, authorization.parse().unwrap());
        headers
    }

    #[test]
    fn the_bearer_token_is_read_from_the_authorization_header() {
        assert_eq!(bearer(&headers("Bearer abc.def.ghi")), Some("abc.def.ghi"));
        assert_eq!(bearer(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&headers("Basic dXNlcjpwYXNz")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&headers("Bearer")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    fn answer(refused: Refused) -> (u16, Option<String>, Option<String>, serde_json::Value) {
        let response: http::Response<String> = refused.into_http();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
        };
        (
            response.status().as_u16(),
            header(header::CONTENT_TYPE),
            header(header::WWW_AUTHENTICATE),
            serde_json::from_str(response.body()).unwrap(),
        )
    }

    #[test]
    fn a_missing_token_is_token_not_provided() {
        let (status, content_type, challenge, body) = answer(Refused::not_provided());
        assert_eq!(status, 401);
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        assert_eq!(challenge.as_deref(), Some("Bearer"));
        assert_eq!(body["code"], "TOKEN_NOT_PROVIDED");
        assert_eq!(body["status"], 401);
    }

    #[test]
    fn a_revoked_session_names_its_reason() {
        let refused = Refused::from(VerifyError::SessionRevoked {
            reason: "logout".into(),
        });
        let (status, _, challenge, body) = answer(refused);
        assert_eq!(status, 401);
        assert_eq!(challenge.as_deref(), Some("Bearer"));
        assert_eq!(body["code"], "SESSION_REVOKED");
        assert_eq!(body["revoked_reason"], "logout");
    }

    #[test]
    fn a_stale_feed_is_a_503_without_a_challenge() {
        let (status, content_type, challenge, body) = answer(VerifyError::FeedStale.into());
        assert_eq!(status, 503);
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        assert_eq!(challenge, None);
        assert_eq!(body["code"], "REVOCATION_FEED_STALE");
        assert!(body.get("revoked_reason").is_none());
    }
}
