//! Request metrics: `sessiond_http_requests_total` by method, route and status, and
//! `sessiond_http_request_duration_seconds` by method and route; and
//! `Cache-Control: no-store` on every answer that set no policy of its own (one layer
//! for both: this one sits in every route, where each layer costs a box per request).
//!
//! A tower layer rather than `middleware::from_fn`, which clones the router's service and
//! boxes a future on every request; and the metric handles are kept per thread, because
//! looking a labelled metric up in the registry allocates its label list and hashes it
//! on every call. Both were a few percent of a token check's time.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use metrics::{Counter, Histogram};
use tower::{Layer, Service};

/// Adds request metrics to a service.
#[derive(Clone, Copy, Default)]
pub struct RequestMetricsLayer;

impl<S> Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics { inner }
    }
}

#[derive(Clone)]
pub struct RequestMetrics<S> {
    inner: S,
}

impl<S> Service<Request> for RequestMetrics<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Recorded<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().cloned();
        let method = method_label(req.method());
        Recorded {
            inner: self.inner.call(req),
            started: Instant::now(),
            method,
            route,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's future, recording the answer when it completes.
    pub struct Recorded<F> {
        #[pin]
        inner: F,
        started: Instant,
        method: &'static str,
        route: Option<MatchedPath>,
    }
}

impl<F, E> Future for Recorded<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &mut result {
            if !response.headers().contains_key(header::CACHE_CONTROL) {
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
            record(
                this.method,
                route,
                response.status().as_u16(),
                this.started.elapsed().as_secs_f64(),
            );
        }
        Poll::Ready(result)
    }
}

/// The handles of one (method, route, status), and the route they were made for.
struct Handles {
    route: &'static str,
    requests: Counter,
    duration: Histogram,
}

thread_local! {
    /// Keyed by the route text's address (a route's `MatchedPath` is one shared string)
    /// and checked against the text, since another router may reuse a freed address.
    static HANDLES: RefCell<HashMap<(usize, &'static str, u16), Handles>> =
        RefCell::new(HashMap::new());
}

fn record(method: &'static str, route: &str, status: u16, seconds: f64) {
    HANDLES.with_borrow_mut(|handles| {
        let key = (route.as_ptr() as usize, method, status);
        let handles = handles
            .entry(key)
            .or_insert_with(|| Handles::new(method, route, status));
        if handles.route != route {
            *handles = Handles::new(method, route, status);
        }
        handles.requests.increment(1);
        handles.duration.record(seconds);
    });
}

impl Handles {
    fn new(method: &'static str, route: &str, status: u16) -> Self {
        let route = intern(route);
        let status = intern(&status.to_string());
        Self {
            route,
            requests: metrics::counter!("sessiond_http_requests_total",
                "method" => method, "route" => route, "status" => status),
            duration: metrics::histogram!("sessiond_http_request_duration_seconds",
                "method" => method, "route" => route),
        }
    }
}

/// Methods outside the standard set share one label, so clients cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A `'static` copy of a label value, made once per distinct value: metric labels that
/// borrow static text cost no allocation. Only bounded sets come here (route templates
/// and status codes).
fn intern(value: &str) -> &'static str {
    static SEEN: RwLock<BTreeSet<&'static str>> = RwLock::new(BTreeSet::new());
    if let Some(known) = SEEN.read().expect("label lock").get(value) {
        return known;
    }
    let mut seen = SEEN.write().expect("label lock");
    if let Some(known) = seen.get(value) {
        return known;
    }
    let leaked: &'static str = Box::leak(value.to_owned().into_boxed_str());
    seen.insert(leaked);
    leaked
}
