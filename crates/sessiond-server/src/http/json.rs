//! JSON answers serialised into one buffer of the right size.
//!
//! axum's `Json` starts from 128 bytes and grows by copying; a token check's answer is
//! about 500 bytes, so every answer paid three reallocations and copies (4% of a token
//! check's time in a profile). The hot routes answer with [`JsonBody`] instead.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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

    #[tokio::test]
    async fn a_value_that_cannot_be_serialised_is_a_problem_not_a_panic() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), "tuple keys are not JSON");
        let answer = JsonBody(map).into_response();
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
