//! Following sessiond's revocation feed: a snapshot to start from, then the event
//! stream, reconnecting from the last cursor; a cursor sessiond can no longer continue
//! means a fresh snapshot.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{Shared, StartError};

#[derive(Deserialize)]
struct Page {
    events: Vec<Fact>,
    next_cursor: String,
}

#[derive(Deserialize)]
struct Fact {
    #[serde(rename = "type")]
    kind: String,
    sid: Option<String>,
    sub: Option<String>,
    reason: Option<String>,
    not_before: Option<DateTime<Utc>>,
    max_exp: DateTime<Utc>,
}

/// Replaces the deny-set with the live revocations; the cursor to follow from.
pub(crate) async fn snapshot(shared: &Shared) -> Result<u64, StartError> {
    let url = format!("{}/v1/revocations/snapshot", shared.config.base_url);
    let page: Page = crate::get_json(&shared.http, url, Some(&shared.config.api_key)).await?;
    shared.denied.clear();
    for fact in page.events {
        apply(shared, fact).await;
    }
    heard(shared);
    page.next_cursor
        .parse()
        .map_err(|_| StartError::Unreachable("a malformed cursor".into()))
}

async fn apply(shared: &Shared, fact: Fact) {
    let reason = fact.reason.unwrap_or_default();
    match fact.kind.as_str() {
        "session_revoked" => {
            if let Some(sid) = fact.sid {
                shared.denied.deny_session(sid, reason, fact.max_exp);
            }
        }
        "user_revoked" => {
            if let (Some(sub), Some(not_before)) = (fact.sub, fact.not_before) {
                shared
                    .denied
                    .deny_user(sub, reason, not_before, fact.max_exp);
            }
        }
        "keys_changed" => {
            if let Err(e) = shared.keys.refresh(&shared.http, &shared.config).await {
                tracing::warn!(error = %e, "could not refresh sessiond's JWKS after keys_changed");
            }
        }
        _ => {}
    }
}

fn heard(shared: &Shared) {
    *shared.heard.lock().expect("heard lock") = Instant::now();
}

/// Runs until the verifier is dropped.
pub(crate) async fn follow(shared: Weak<Shared>, mut cursor: u64) {
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        match stream_once(&strong, &mut cursor).await {
            Outcome::Expired => match snapshot(&strong).await {
                Ok(fresh) => cursor = fresh,
                Err(e) => tracing::warn!(error = %e, "revocation snapshot failed"),
            },
            Outcome::Lost(why) => {
                tracing::debug!(why, "revocation stream lost; reconnecting");
            }
        }
        drop(strong);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

enum Outcome {
    Expired,
    Lost(String),
}

async fn stream_once(shared: &Arc<Shared>, cursor: &mut u64) -> Outcome {
    let url = format!("{}/v1/revocations/stream", shared.config.base_url);
    let response = match shared
        .http
        .get(url)
        .bearer_auth(&shared.config.api_key)
        .header("Last-Event-ID", cursor.to_string())
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Outcome::Lost(e.to_string()),
    };
    match response.status().as_u16() {
        200 => {}
        409 => return Outcome::Expired,
        other => return Outcome::Lost(format!("status {other}")),
    }
    let mut response = response;
    let mut buffer = String::new();
    // A stream that says nothing for twice the heartbeat interval is dead, whatever the
    // socket says.
    let silence = Duration::from_secs(10).max(shared.config.staleness_bound / 2);
    loop {
        let chunk = match tokio::time::timeout(silence, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => return Outcome::Lost("the stream ended".into()),
            Ok(Err(e)) => return Outcome::Lost(e.to_string()),
            Err(_) => return Outcome::Lost("the stream went silent".into()),
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut name, mut id, mut data) = (String::new(), None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse::<u64>().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            match name.as_str() {
                "heartbeat" => {
                    shared.denied.evict(Utc::now());
                    heard(shared);
                }
                "cursor_expired" => return Outcome::Expired,
                "" => {}
                _ => {
                    if let Ok(fact) = serde_json::from_str::<Fact>(&data) {
                        apply(shared, fact).await;
                    }
                    if let Some(id) = id {
                        *cursor = id;
                    }
                    // A fact proves the stream alive as well as a heartbeat does.
                    heard(shared);
                }
            }
        }
    }
}
