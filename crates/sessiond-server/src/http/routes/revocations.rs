//! The revocation feed for token verifiers in app backends: a page after a cursor, a
//! snapshot to start from, and a Server-Sent Events stream that follows the feed live.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use sessiond_core::DomainError;
use sessiond_core::revocation::{Revocation, RevocationFact};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::http::extract::{ApiQuery, VerifierKey};
use crate::http::json::JsonBody;
use crate::http::problem::{ApiError, Refusal};
use crate::service::{
    FeedPage, MAX_PAGE, SNAPSHOT_PAGE, Service, ServiceError, SnapshotStart, check_cursor,
};

/// How often a stream says "nothing new, and you are up to date" when nothing happens.
/// Verifiers bound their staleness on it.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// What a fact is about.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevocationType {
    SessionRevoked,
    UserRevoked,
    KeysChanged,
}

/// One fact of the feed. `session_revoked`: refuse tokens whose `sid` is `sid`.
/// `user_revoked`: refuse tokens whose `sub` is `sub` and whose `iat` is before
/// `not_before` (whole seconds). `keys_changed`: refetch the JWKS. Each fact may be
/// forgotten once `max_exp` has passed: no token it is about lives longer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevocationEvent {
    /// This fact's place in the feed; continue after it with `?after=`.
    pub cursor: String,
    #[serde(rename = "type")]
    pub kind: RevocationType,
    /// When the fact was written.
    #[serde(serialize_with = "crate::http::rfc3339::serialize")]
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<uuid::Uuid>,
    /// Why the session or user was revoked (the contract's reason list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_optional_time"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub not_before: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::http::rfc3339::serialize")]
    pub max_exp: DateTime<Utc>,
}

fn serialize_optional_time<S: serde::Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => crate::http::rfc3339::serialize(at, serializer),
        None => serializer.serialize_none(),
    }
}

impl From<Revocation> for RevocationEvent {
    fn from(revocation: Revocation) -> Self {
        let mut event = RevocationEvent {
            cursor: revocation.seq.to_string(),
            kind: RevocationType::KeysChanged,
            at: revocation.at,
            sid: None,
            sub: None,
            reason: None,
            not_before: None,
            max_exp: revocation.fact.max_exp(),
        };
        match revocation.fact {
            RevocationFact::SessionRevoked {
                session, reason, ..
            } => {
                event.kind = RevocationType::SessionRevoked;
                event.sid = Some(session.as_uuid());
                event.reason = Some(reason.as_str());
            }
            RevocationFact::UserRevoked {
                user,
                reason,
                not_before,
                ..
            } => {
                event.kind = RevocationType::UserRevoked;
                event.sub = Some(user.as_uuid());
                event.reason = Some(reason.as_str());
                event.not_before = Some(not_before);
            }
            RevocationFact::KeysChanged { .. } => {}
        }
        event
    }
}

/// A page of facts, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevocationPage {
    pub events: Vec<RevocationEvent>,
    /// Where to continue from (`?after=`, or `Last-Event-ID` on the stream).
    pub next_cursor: String,
    /// Whether more facts follow right away.
    pub has_more: bool,
}

impl From<FeedPage> for RevocationPage {
    fn from(page: FeedPage) -> Self {
        RevocationPage {
            events: page.events.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.to_string(),
            has_more: page.has_more,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The cursor to continue after; `0` (the default) is the beginning.
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub after: Option<u64>,
    /// At most this many facts (1 to 1000, default 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// The cursor to continue after, when there is no `Last-Event-ID` header.
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub after: Option<u64>,
}

/// Facts after a cursor. A verifier polls this, or follows the stream.
#[utoipa::path(get, path = "/v1/revocations", tag = "revocations",
    params(PageQuery),
    security(("verifier_key" = [])),
    responses(
        (status = 200, body = RevocationPage),
        (status = 409, description = "`REVOCATION_CURSOR_EXPIRED`: the facts after this cursor were purged (or it was never handed out here); take a snapshot"),
    ))]
pub async fn list_revocations(
    State(state): State<AppState>,
    _verifier: VerifierKey,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<JsonBody<RevocationPage>, ApiError> {
    if query.limit.is_some_and(|l| l == 0 || l > MAX_PAGE) {
        return Err(Refusal::BadQuery("`limit` must be between 1 and 1000".into()).into());
    }
    check_range(query.after)?;
    let page = state
        .service
        .revocations_after(query.after.unwrap_or(0), query.limit.unwrap_or(MAX_PAGE))
        .await?;
    Ok(JsonBody(page.into()))
}

/// The facts whose tokens may still be alive, and the cursor to follow the feed from:
/// where a verifier starts, or starts again after `REVOCATION_CURSOR_EXPIRED`.
#[utoipa::path(get, path = "/v1/revocations/snapshot", tag = "revocations",
    security(("verifier_key" = [])),
    responses((status = 200, body = RevocationPage)))]
pub async fn revocation_snapshot(
    State(state): State<AppState>,
    _verifier: VerifierKey,
) -> Result<Response, ApiError> {
    // The first page is read before answering, so a storage failure is still a problem
    // answer; a failure on a later page can only cut the body short (the verifier's JSON
    // parse fails and it asks again).
    let start = state.service.revocation_snapshot_start().await?;
    let first = state.service.revocation_snapshot_page(&start, 0).await?;
    let snapshot = SnapshotBody {
        service: state.service.clone(),
        start,
        after: 0,
        first: Some(first),
        opened: false,
        emitted: false,
        finished: false,
    };
    let body = Body::from_stream(futures_util::stream::unfold(snapshot, SnapshotBody::next));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A snapshot written as a [`RevocationPage`] one page of facts at a time.
struct SnapshotBody {
    service: Arc<Service>,
    start: SnapshotStart,
    /// The last fact written.
    after: u64,
    /// The first page, read before the answer started.
    first: Option<Vec<Revocation>>,
    opened: bool,
    emitted: bool,
    finished: bool,
}

impl SnapshotBody {
    async fn next(mut self) -> Option<(std::io::Result<Bytes>, Self)> {
        if self.finished {
            return None;
        }
        let facts = match self.first.take() {
            Some(facts) => facts,
            None => match self
                .service
                .revocation_snapshot_page(&self.start, self.after)
                .await
            {
                Ok(facts) => facts,
                Err(e) => {
                    tracing::warn!(error = %e, after = self.after, "revocation snapshot cut short");
                    self.finished = true;
                    return Some((Err(std::io::Error::other(e)), self));
                }
            },
        };
        let last_page = facts.len() < SNAPSHOT_PAGE as usize;
        let mut chunk = Vec::with_capacity(facts.len() * 200 + 64);
        if !self.opened {
            chunk.extend_from_slice(br#"{"events":["#);
            self.opened = true;
        }
        for fact in facts {
            self.after = fact.seq;
            if self.emitted {
                chunk.push(b',');
            }
            self.emitted = true;
            if let Err(e) = serde_json::to_writer(&mut chunk, &RevocationEvent::from(fact)) {
                self.finished = true;
                return Some((Err(e.into()), self));
            }
        }
        if last_page {
            let tail = format!(
                r#"],"next_cursor":"{}","has_more":false}}"#,
                self.start.through
            );
            chunk.extend_from_slice(tail.as_bytes());
            self.finished = true;
        }
        Some((Ok(Bytes::from(chunk)), self))
    }
}

/// The feed as Server-Sent Events: every fact after the cursor (`Last-Event-ID`, else
/// `?after=`, else the beginning), then each new one as it is written on any instance.
/// Each fact is an event named by its type with the cursor as its id and a
/// `RevocationEvent` as data; a `heartbeat` event (`{"cursor", "at"}`) follows every
/// catch-up and comes every few seconds, each one saying the verifier was up to date
/// at `at`. A stream whose cursor is purged meanwhile ends with `cursor_expired`.
#[utoipa::path(get, path = "/v1/revocations/stream", tag = "revocations",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The cursor to continue after (what EventSource sends on reconnecting)"),
    ),
    security(("verifier_key" = [])),
    responses(
        (status = 200, content_type = "text/event-stream", body = String, description = "An endless event stream"),
        (status = 409, description = "`REVOCATION_CURSOR_EXPIRED`: take a snapshot"),
    ))]
pub async fn stream_revocations(
    State(state): State<AppState>,
    _verifier: VerifierKey,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    check_range(query.after)?;
    let cursor = match last_event_id(&headers)? {
        Some(cursor) => cursor,
        None => query.after.unwrap_or(0),
    };
    check_cursor(cursor, state.service.revocation_bounds().await?)?;
    let follower = Follower {
        newest: state.service.feed().subscribe(),
        stopping: state.stopping.clone(),
        state,
        cursor,
        pending: VecDeque::new(),
        heartbeat: tokio::time::interval(HEARTBEAT_INTERVAL),
        read_due: true,
        ended: false,
    };
    Ok(Sse::new(futures_util::stream::unfold(
        follower,
        |mut follower| async move {
            let event = follower.next().await?;
            Some((Ok(event), follower))
        },
    )))
}

/// Cursors are numbers up to 2^63 − 1 (what both databases store).
fn check_range(after: Option<u64>) -> Result<(), ApiError> {
    match after {
        Some(after) if after > i64::MAX as u64 => {
            Err(Refusal::BadQuery("`after` is beyond any cursor".into()).into())
        }
        _ => Ok(()),
    }
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| {
            Refusal::BadQuery("`Last-Event-ID` must be a cursor the feed handed out".into()).into()
        })
}

/// One stream's place in the feed.
struct Follower {
    state: AppState,
    newest: tokio::sync::watch::Receiver<u64>,
    stopping: tokio::sync::watch::Receiver<bool>,
    cursor: u64,
    pending: VecDeque<Event>,
    heartbeat: tokio::time::Interval,
    /// Whether the feed may hold facts this stream has not read: at the start, when the
    /// feed moved, and while pages come back full.
    read_due: bool,
    ended: bool,
}

impl Follower {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.ended || *self.stopping.borrow() {
                // Shutting down: the client reconnects (to another instance) from its
                // last event id.
                return None;
            }
            if self.read_due {
                self.catch_up().await;
                continue;
            }
            tokio::select! {
                changed = self.newest.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    self.read_due = true;
                }
                stopping = self.stopping.changed() => {
                    if stopping.is_err() {
                        return None;
                    }
                }
                _ = self.heartbeat.tick() => {
                    // Only a successful read may say "up to date": a storage outage then
                    // silences the heartbeat, and verifiers fail closed on their bound.
                    if self.catch_up().await && self.pending.is_empty() {
                        self.pending.push_back(self.heartbeat_event());
                    }
                }
            }
        }
    }

    /// Queues what is new; false when the feed could not be read (the next heartbeat
    /// tries again).
    async fn catch_up(&mut self) -> bool {
        self.read_due = false;
        match self
            .state
            .service
            .revocations_after(self.cursor, MAX_PAGE)
            .await
        {
            Ok(page) => {
                let caught_up = !page.has_more;
                self.read_due = page.has_more;
                for revocation in page.events {
                    self.cursor = revocation.seq;
                    self.pending.push_back(fact_event(revocation));
                }
                if caught_up && !self.pending.is_empty() {
                    self.pending.push_back(self.heartbeat_event());
                }
                true
            }
            Err(ServiceError::Domain(DomainError::RevocationCursorExpired)) => {
                self.pending.push_back(
                    Event::default()
                        .event("cursor_expired")
                        .data(r#"{"code":"REVOCATION_CURSOR_EXPIRED"}"#),
                );
                self.ended = true;
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "revocation stream could not read the feed");
                false
            }
        }
    }

    fn heartbeat_event(&self) -> Event {
        let body = serde_json::json!({
            "cursor": self.cursor.to_string(),
            "at": self.state.service.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        Event::default().event("heartbeat").data(body.to_string())
    }
}

fn fact_event(revocation: Revocation) -> Event {
    let id = revocation.seq.to_string();
    let event = RevocationEvent::from(revocation);
    let name = match event.kind {
        RevocationType::SessionRevoked => "session_revoked",
        RevocationType::UserRevoked => "user_revoked",
        RevocationType::KeysChanged => "keys_changed",
    };
    let data = serde_json::to_string(&event).unwrap_or_else(|_| "{}".to_owned());
    Event::default().id(id).event(name).data(data)
}
