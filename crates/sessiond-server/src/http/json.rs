//! JSON answers serialised into one buffer of the right size.
//!
//! axum's `Json` starts from 128 bytes and grows by copying; a token check's answer is
//! about 500 bytes, so every answer paid three reallocations and copies (4% of a token
//! check's time in a profile). The hot routes answer with [`JsonBody`] instead.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::dto::WhoAmI;
use super::problem::ApiError;

/// Room for the answers of the hot routes (session, token and introspection answers)
/// without growing; larger ones grow as usual.
const INITIAL_CAPACITY: usize = 1024;

/// A JSON `200` answer.
pub struct JsonBody<T>(pub T);

impl<T: Serialize> IntoResponse for JsonBody<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(INITIAL_CAPACITY);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "could not serialise an answer");
                ApiError::internal().into_response()
            }
        }
    }
}

/// A `200` JSON answer written by hand: the same bytes as [`JsonBody`] (tested against
/// serde_json), for the answer of every token check, where serde's field-by-field
/// machinery (each key escaped, each value formatted and then escaped) was a fifth of the
/// request's instructions.
pub struct WrittenJson<T>(pub T);

pub trait WriteJson {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()>;
}

impl<T: WriteJson> IntoResponse for WrittenJson<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(INITIAL_CAPACITY);
        match self.0.write_json(&mut body) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "could not serialise an answer");
                ApiError::internal().into_response()
            }
        }
    }
}

impl WriteJson for WhoAmI {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let s = &self.session;
        out.extend_from_slice(b"{\"session\":{\"id\":");
        uuid(out, &s.id);
        out.extend_from_slice(b",\"user_id\":");
        match &s.user_id {
            Some(id) => uuid(out, id),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"auth_method\":");
        string(out, &s.auth_method)?;
        out.extend_from_slice(b",\"created_at\":");
        timestamp(out, &s.created_at)?;
        out.extend_from_slice(b",\"last_active_at\":");
        timestamp(out, &s.last_active_at)?;
        out.extend_from_slice(b",\"expires_at\":");
        timestamp(out, &s.expires_at)?;
        out.extend_from_slice(b",\"idle_expires_at\":");
        timestamp(out, &s.idle_expires_at)?;
        let d = &s.device;
        out.extend_from_slice(b",\"device\":{\"device_id\":");
        optional(out, d.device_id.as_deref())?;
        out.extend_from_slice(b",\"user_agent\":");
        optional(out, d.user_agent.as_deref())?;
        out.extend_from_slice(b",\"ip\":");
        optional(out, d.ip.as_deref())?;
        out.extend_from_slice(b",\"label\":");
        optional(out, d.label.as_deref())?;
        out.push(b'}');
        if let Some(current) = s.current {
            out.extend_from_slice(if current {
                b",\"current\":true"
            } else {
                b",\"current\":false"
            });
        }
        out.extend_from_slice(b"},\"user\":");
        let Some(u) = &self.user else {
            out.extend_from_slice(b"null}");
            return Ok(());
        };
        out.extend_from_slice(b"{\"id\":");
        uuid(out, &u.id);
        out.extend_from_slice(b",\"email\":");
        optional(out, u.email.as_deref())?;
        out.extend_from_slice(b",\"name\":");
        optional(out, u.name.as_deref())?;
        out.extend_from_slice(if u.active {
            b",\"active\":true"
        } else {
            b",\"active\":false"
        });
        out.extend_from_slice(if u.email_verified {
            b",\"email_verified\":true"
        } else {
            b",\"email_verified\":false"
        });
        out.extend_from_slice(b",\"created_at\":");
        timestamp(out, &u.created_at)?;
        if let Some(mobile) = &u.mobile {
            out.extend_from_slice(b",\"mobile\":");
            string(out, mobile)?;
        }
        if let Some(profile) = &u.profile {
            out.extend_from_slice(b",\"profile\":");
            serde_json::to_writer(&mut *out, profile)?;
        }
        out.extend_from_slice(b"}}");
        Ok(())
    }
}

/// A UUID needs no escaping.
fn uuid(out: &mut Vec<u8>, id: &uuid::Uuid) {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.push(b'"');
    out.extend_from_slice(id.hyphenated().encode_lower(&mut text).as_bytes());
    out.push(b'"');
}

fn string(out: &mut Vec<u8>, text: &str) -> serde_json::Result<()> {
    serde_json::to_writer(out, text)
}

fn optional(out: &mut Vec<u8>, text: Option<&str>) -> serde_json::Result<()> {
    match text {
        Some(text) => string(out, text),
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

/// As [`super::rfc3339::serialize`]: the common case needs no escaping.
fn timestamp(out: &mut Vec<u8>, at: &chrono::DateTime<chrono::Utc>) -> serde_json::Result<()> {
    let mut buf = [0u8; 32];
    match super::rfc3339::format(at, &mut buf) {
        Some(text) => {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
            Ok(())
        }
        None => serde_json::to_writer(
            out,
            &at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        ),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[tokio::test]
    async fn answers_the_same_bytes_and_type_as_axum_json() {
        let value = serde_json::json!({ "a": "x".repeat(2000), "b": [1, 2, 3], "c": null });
        let ours = JsonBody(&value).into_response();
        let axums = axum::Json(&value).into_response();
        assert_eq!(ours.status(), StatusCode::OK);
        assert_eq!(
            ours.headers().get(header::CONTENT_TYPE),
            axums.headers().get(header::CONTENT_TYPE)
        );
        let ours = axum::body::to_bytes(ours.into_body(), usize::MAX)
            .await
            .unwrap();
        let axums = axum::body::to_bytes(axums.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(ours, axums);
    }

    fn whoami(odd: bool, user: bool, current: Option<bool>) -> WhoAmI {
        use chrono::TimeZone;
        let at = |s: i64, n: u32| chrono::Utc.timestamp_opt(s, n).unwrap();
        let text = |t: &str| {
            if odd {
                Some(format!("{t} \"q\" \\ \n\u{1} é 😀 </>"))
            } else {
                None
            }
        };
        WhoAmI {
            session: crate::http::dto::SessionView {
                id: uuid::Uuid::now_v7(),
                user_id: user.then(uuid::Uuid::now_v7),
                auth_method: if odd {
                    "exchange:we\"ird".to_owned()
                } else {
                    "pwd".to_owned()
                },
                created_at: at(1_800_000_000, 0),
                last_active_at: at(1_800_000_001, 123_000_000),
                expires_at: at(1_800_000_002, 123_456_000),
                idle_expires_at: if odd {
                    at(260_000_000_000, 1)
                } else {
                    at(1_800_000_003, 123_456_789)
                },
                device: crate::http::dto::DeviceView {
                    device_id: text("d"),
                    user_agent: text("ua"),
                    ip: Some("127.0.0.1".to_owned()),
                    label: text("l"),
                },
                current,
            },
            user: user.then(|| crate::http::dto::UserView {
                id: uuid::Uuid::now_v7(),
                email: text("e"),
                name: text("n"),
                active: !odd,
                email_verified: odd,
                created_at: at(-62_000_000_000, 5),
                mobile: text("m"),
                profile: odd.then(|| serde_json::json!({"z": [1, 2.5, null], "a": {"b": "c\"d"}})),
            }),
        }
    }

    #[tokio::test]
    async fn written_whoami_is_the_bytes_serde_writes() {
        for odd in [false, true] {
            for user in [false, true] {
                for current in [None, Some(true), Some(false)] {
                    let value = whoami(odd, user, current);
                    let mut ours = Vec::new();
                    value.write_json(&mut ours).unwrap();
                    let theirs = serde_json::to_vec(&value).unwrap();
                    assert_eq!(
                        String::from_utf8(ours).unwrap(),
                        String::from_utf8(theirs).unwrap()
                    );
                }
            }
        }
        let answer = WrittenJson(whoami(false, true, None)).into_response();
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(
            answer.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
    }

    #[tokio::test]
    async fn a_value_that_cannot_be_serialised_is_a_problem_not_a_panic() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), "tuple keys are not JSON");
        let answer = JsonBody(map).into_response();
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
