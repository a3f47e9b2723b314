//! `tower-sessions-ref PORT redis://127.0.0.1:6379 | memory`: what a Rust developer would
//! write instead of running sessiond: axum + tower-sessions, sessions kept in Redis by
//! `tower-sessions-redis-store` (fred), or in process by tower-sessions' `MemoryStore`.
//!
//! - `GET /v1/session`: the protected route. 401 without a live session, else the
//!   whoami JSON stored in the session (about the size of sessiond's answer). One store
//!   read per request; nothing is written (tower-sessions saves only modified sessions).
//! - `POST /seed?n=1000`: creates n sessions directly in the store and answers one
//!   `id=<session id>` cookie per line, so the load generator presents n distinct live
//!   sessions.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer, SessionStore};
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};

/// Sessions live an hour: long enough for a run, short enough to leave no litter in Redis.
const LIFETIME: Duration = Duration::hours(1);

#[derive(Clone, Serialize, Deserialize)]
struct Device {
    device_id: Option<String>,
    user_agent: Option<String>,
    ip: Option<String>,
    label: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
struct SessionView {
    id: String,
    user_id: String,
    auth_method: String,
    created_at: String,
    last_active_at: String,
    expires_at: String,
    idle_expires_at: String,
    device: Device,
}

#[derive(Clone, Serialize, Deserialize)]
struct UserView {
    id: String,
    email: Option<String>,
    name: Option<String>,
    active: bool,
    created_at: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct Whoami {
    session: SessionView,
    user: UserView,
}

fn whoami_for(i: usize) -> Whoami {
    let now = "2026-11-23T00:00:00.000Z".to_owned();
    Whoami {
        session: SessionView {
            id: format!("019a0000-0000-7000-8000-{i:012}"),
            user_id: format!("019a0000-0000-7000-9000-{i:012}"),
            auth_method: "pwd".into(),
            created_at: now.clone(),
            last_active_at: now.clone(),
            expires_at: "2026-12-23T00:00:00.000Z".into(),
            idle_expires_at: "2026-11-30T00:00:00.000Z".into(),
            device: Device {
                device_id: None,
                user_agent: Some("wrk".into()),
                ip: Some("127.0.0.1".into()),
                label: None,
            },
        },
        user: UserView {
            id: format!("019a0000-0000-7000-9000-{i:012}"),
            email: Some(format!("bench-user-{i}@example.com")),
            name: Some(format!("Bench User {i}")),
            active: true,
            created_at: now,
        },
    }
}

async fn whoami(session: Session) -> Result<Json<Whoami>, StatusCode> {
    match session.get::<Whoami>("whoami").await {
        Ok(Some(me)) => Ok(Json(me)),
        Ok(None) => Err(StatusCode::UNAUTHORIZED),
        Err(_) => Err(StatusCode::SERVICE_UNAVAILABLE),
    }
}

#[derive(Deserialize)]
struct SeedParams {
    n: usize,
}

async fn seed<S: SessionStore>(
    State(store): State<S>,
    Query(params): Query<SeedParams>,
) -> Result<String, (StatusCode, String)> {
    let mut cookies = String::with_capacity(params.n * 26);
    for i in 0..params.n.min(1_000_000) {
        let mut data = HashMap::new();
        let me = serde_json::to_value(whoami_for(i)).expect("serialisable");
        data.insert("whoami".to_owned(), me);
        let mut record = Record {
            id: Id::default(),
            data,
            expiry_date: OffsetDateTime::now_utc() + LIFETIME,
        };
        store
            .create(&mut record)
            .await
            .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        cookies.push_str(&format!("id={}\n", record.id));
    }
    Ok(cookies)
}

async fn serve<S: SessionStore + Clone>(store: S, port: u16) {
    let sessions = SessionManagerLayer::new(store.clone())
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(LIFETIME));
    let app = Router::new()
        .route("/v1/session", get(whoami))
        .layer(sessions)
        .route("/seed", post(seed::<S>))
        .with_state(store);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    eprintln!("tower-sessions-ref listening on 127.0.0.1:{port}");
    axum::serve(listener, app).await.expect("serve");
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: tower-sessions-ref PORT (redis://HOST:PORT | memory)");
    let backend = args.next().unwrap_or_else(|| "memory".to_owned());
    if backend == "memory" {
        eprintln!("store: tower-sessions MemoryStore (in process)");
        serve(MemoryStore::default(), port).await;
    } else {
        let config = Config::from_url(&backend).expect("Redis URL");
        let pool = Pool::new(config, None, None, None, 4).expect("Redis pool");
        let _connection = pool.init().await.expect("connect to Redis");
        eprintln!("store: tower-sessions-redis-store (fred) at {backend}");
        serve(RedisStore::new(pool), port).await;
    }
}
