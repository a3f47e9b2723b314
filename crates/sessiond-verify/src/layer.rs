//! A tower layer for any `http` service (axum, tonic, hyper): it verifies the request's
//! bearer token before the inner service sees the request, and puts the token's
//! [`Claims`](crate::Claims) in the request's extensions (axum: take `Extension<Claims>`). A refused
//! request never reaches the inner service; it is answered with sessiond's problem+json
//! (see [`Refused`]).
//!
//! ```ignore
//! let app = axum::Router::new()
//!     .route("/me", get(|Extension(claims): Extension<Claims>| async move { claims.sid }))
//!     .layer(sessiond_verify::layer::VerifyLayer::new(verifier));
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::{Refused, Verifier, refusal};

/// Wraps a service in [`VerifyService`].
#[derive(Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
}

impl VerifyLayer {
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The inner service, behind a token check.
#[derive(Clone)]
pub struct VerifyService<S> {
    inner: S,
    verifier: Verifier,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for VerifyService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String> + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The service polled ready is the one to call; a fresh clone stays behind.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            // Owned: a borrow of the request held across the await would need its body
            // to be `Sync`, which axum's is not.
            let Some(token) = refusal::bearer(request.headers()).map(str::to_owned) else {
                return Ok(Refused::not_provided().into_http());
            };
            match verifier.verify(&token).await {
                Ok(claims) => {
                    request.extensions_mut().insert(claims);
                    inner.call(request).await
                }
                Err(refused) => Ok(Refused::from(refused).into_http()),
            }
        })
    }
}
