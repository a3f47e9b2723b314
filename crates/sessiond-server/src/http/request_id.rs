//! A request id on every request: taken from the client's `X-Request-Id` when it is a
//! short token, generated otherwise; answered in `X-Request-Id`, recorded in the request's
//! log span and named in problem answers as `instance`, so an operator handed an error body
//! can find its log lines.
//!
//! A tower layer (not `middleware::from_fn`, which boxes a future per request) that runs
//! the rest of the stack inside a task-local scope, so an error answer built anywhere below
//! it, extractor rejections and the panic catcher included, can name its request.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-chosen id accepted; longer or odder ones are replaced.
const MAX_CLIENT_ID: usize = 64;

tokio::task_local! {
    static REQUEST_ID: HeaderValue;
}

/// The id of the request being answered, if called while answering one.
pub fn current() -> Option<String> {
    REQUEST_ID
        .try_with(|id| id.to_str().ok().map(str::to_owned))
        .ok()
        .flatten()
}

/// A client's id is kept only when it is a plain token: it is echoed in headers, log lines
/// and a URN, where anything else would need escaping or could forge log content.
fn acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_CLIENT_ID
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A UUIDv7 from the thread's random generator: `Uuid::now_v7` asks the kernel for its
/// random bits (a `getrandom` system call per request).
fn generated() -> HeaderValue {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let random: [u8; 10] = rand::random();
    let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_bytes(id.hyphenated().encode_lower(&mut text).as_bytes())
        .expect("a UUID is a valid header value")
}

#[derive(Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestId { inner }
    }
}

#[derive(Clone)]
pub struct RequestId<S> {
    inner: S,
}

impl<S> Service<Request> for RequestId<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Answered<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(value) if acceptable(value) => value.clone(),
            _ => {
                let id = generated();
                req.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
                id
            }
        };
        Answered {
            inner: REQUEST_ID.scope(id.clone(), self.inner.call(req)),
            id: Some(id),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's future, run with the request id in scope; the answer gets the
    /// id as a header.
    pub struct Answered<F> {
        #[pin]
        inner: TaskLocalFuture<HeaderValue, F>,
        id: Option<HeaderValue>,
    }
}

impl<F, E> Future for Answered<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut answer = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some(id)) = (&mut answer, this.id.take()) {
            response.headers_mut().insert(X_REQUEST_ID.clone(), id);
        }
        Poll::Ready(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_uuid_v7() {
        let a = generated();
        let id = uuid::Uuid::parse_str(a.to_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert_ne!(a, generated());
    }

    #[test]
    fn plain_short_client_ids_are_kept_and_others_replaced() {
        for kept in ["abc", "4bf92f3577b34da6a3ce929d0e0e4736", "req-1.2_3"] {
            assert!(acceptable(&HeaderValue::from_static(kept)), "{kept}");
        }
        let long = "a".repeat(MAX_CLIENT_ID + 1);
        for replaced in ["", "a b", "x\"y", "<script>", "a/b", long.as_str()] {
            assert!(
                !acceptable(&HeaderValue::from_str(replaced).unwrap()),
                "{replaced}"
            );
        }
    }
}
