//! The in-process work of an authenticated request whose session is cached, without any
//! I/O, plus the pieces around it: the token response's JSON and a token hash.
//!
//! `cargo bench -p sessiond-server --bench hot_path` (add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick run, or `-- --test` to run each
//! benchmark once). Single-threaded: contention on the caches and the activity lock under
//! concurrent requests is not measured here.

use std::hint::black_box;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use sessiond_core::jwt::{AccessClaims, KeyRing, SigningKey, TokenAudience};
use sessiond_core::{
    AuthMethod, Device, DomainError, Email, RefreshToken, Session, SessionId, SessionPolicy,
    TokenHash, User, UserId,
};
use sessiond_server::http::dto::TokenResponse;
use sessiond_server::service::{SessionInfo, TokenGrant};
use sessiond_server::state::activity::ActivityTracker;
use sessiond_server::state::cache::{SessionCache, VerifiedTokens};

/// Other sessions in the caches, so lookups are not into a near-empty map.
const OTHER_SESSIONS: usize = 1_000;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn audience() -> TokenAudience {
    TokenAudience {
        issuer: "https://sessiond.example.com".into(),
        audience: "https://sessiond.example.com".into(),
    }
}

fn user() -> User {
    User {
        id: UserId::new(),
        email: Some(Email::parse("ann.lee@example.com").unwrap()),
        name: Some("Ann Lee".into()),
        active: true,
        email_verified: false,
        created_at: t0(),
        mobile: Some("+15555550123".into()),
        profile: Some(serde_json::json!({"tier": "gold", "locale": "en-GB"})),
    }
}

fn session(user: &User, policy: &SessionPolicy) -> Session {
    Session {
        id: SessionId::new(),
        user_id: Some(user.id),
        auth_method: AuthMethod::Password,
        created_at: t0(),
        last_active_at: t0(),
        expires_at: policy.session_expiry(t0()),
        revoked_at: None,
        revoked_reason: None,
        device: Device {
            device_id: Some("ios-7f3a9c".into()),
            user_agent: Some("Sessiond/1.0 (iPhone; iOS 18.1)".into()),
            ip: Some("203.0.113.7".into()),
            label: Some("Ann's iPhone".into()),
        },
    }
}

/// Claims shaped like the ones `Service::grant` mints.
fn claims_for(session: &Session, policy: &SessionPolicy) -> AccessClaims {
    AccessClaims {
        iss: audience().issuer,
        sub: session.user_id.map(|u| u.to_string()),
        aud: audience().audience,
        sid: session.id,
        jti: uuid::Uuid::now_v7().to_string(),
        iat: t0().timestamp(),
        exp: (t0() + policy.access_token_ttl).timestamp(),
        amr: vec![session.auth_method.as_string()],
    }
}

struct World {
    policy: SessionPolicy,
    ring: KeyRing,
    cache: SessionCache,
    activity: ActivityTracker,
    /// The access token of a cached session, and the others'.
    token: String,
    other_tokens: Vec<(String, AccessClaims)>,
    /// A request a few seconds after the last stored activity: no activity write is due.
    now: DateTime<Utc>,
}

fn world() -> World {
    let policy = SessionPolicy::default();
    let key = SigningKey::generate(t0()).unwrap();
    let ring = KeyRing::new(&[key], &audience(), t0(), policy.access_token_ttl).unwrap();
    let cache = SessionCache::new(100_000, std::time::Duration::from_secs(600), true);
    let activity = ActivityTracker::new(policy.activity_resolution);

    let mut other_tokens = Vec::with_capacity(OTHER_SESSIONS);
    for _ in 0..OTHER_SESSIONS {
        let u = Arc::new(user());
        let s = Arc::new(session(&u, &policy));
        cache.put(cache.ticket(), &s, Some(&u));
        let claims = claims_for(&s, &policy);
        other_tokens.push((ring.sign(&claims), claims));
    }
    let u = Arc::new(user());
    let s = Arc::new(session(&u, &policy));
    cache.put(cache.ticket(), &s, Some(&u));
    let token = ring.sign(&claims_for(&s, &policy));

    World {
        policy,
        ring,
        cache,
        activity,
        token,
        other_tokens,
        now: t0() + Duration::seconds(5),
    }
}

/// What `Service::authenticate` does on a session-cache hit once it has the claims: the
/// cached state, the `sub` binding, the policy (with the activity seen here) and the user,
/// then the activity record. Returns whether an activity write would be spawned.
fn check_cached(w: &World, claims: &AccessClaims) -> Result<bool, DomainError> {
    let (session, user) = w.cache.get(claims.sid).ok_or(DomainError::TokenInvalid)?;
    if claims.sub.is_some() && claims.user_id() != session.user_id {
        return Err(DomainError::TokenInvalid);
    }
    let last_active = w
        .activity
        .latest(session.id)
        .map_or(session.last_active_at, |seen| {
            seen.max(session.last_active_at)
        });
    w.policy.check(&session, w.now, last_active)?;
    if user.as_ref().is_some_and(|u| !u.active) {
        return Err(DomainError::UserInactive);
    }
    Ok(w.activity.record(session.id, w.now, session.last_active_at))
}

fn authenticate_cached(c: &mut Criterion) {
    let w = world();
    let claims = w.ring.verify(&w.token, w.now).unwrap();
    assert_eq!(check_cached(&w, &claims), Ok(false));
    let (session, _) = w.cache.get(claims.sid).unwrap();

    let mut group = c.benchmark_group("authenticate_cached");
    group.bench_function("verify_and_check", |b| {
        b.iter(|| {
            let claims = w.ring.verify(black_box(&w.token), w.now).unwrap();
            check_cached(&w, &claims)
        })
    });
    // The parts, to see where the time goes.
    group.bench_function("part_keyring_verify", |b| {
        b.iter(|| w.ring.verify(black_box(&w.token), w.now))
    });
    group.bench_function("part_check_without_verify", |b| {
        b.iter(|| check_cached(&w, black_box(&claims)))
    });
    group.bench_function("part_session_cache_get", |b| {
        b.iter(|| w.cache.get(black_box(claims.sid)))
    });
    group.bench_function("part_policy_check", |b| {
        b.iter(|| {
            w.policy
                .check(black_box(&session), w.now, session.last_active_at)
        })
    });
    group.bench_function("part_activity_record", |b| {
        b.iter(|| {
            w.activity
                .record(black_box(session.id), w.now, session.last_active_at)
        })
    });
    group.finish();
}

/// A repeat presentation is answered from the verified-token cache instead of an Ed25519
/// check. The cache holds every token of `world()` (1,001 entries).
fn verify_vs_token_cache(c: &mut Criterion) {
    let w = world();
    let claims = w.ring.verify(&w.token, w.now).unwrap();
    let verified = VerifiedTokens::new(100_000);
    for (token, claims) in &w.other_tokens {
        verified.insert(token, Arc::new(claims.clone()));
    }
    verified.insert(&w.token, Arc::new(claims.clone()));
    let unseen = w.ring.sign(&AccessClaims {
        jti: "never-presented".into(),
        ..claims.clone()
    });

    let mut group = c.benchmark_group("verify_vs_token_cache");
    group.bench_function("keyring_verify", |b| {
        b.iter(|| w.ring.verify(black_box(&w.token), w.now))
    });
    // As the caller uses a hit: expiry checked again.
    group.bench_function("verified_tokens_hit", |b| {
        b.iter(|| {
            let hit = verified.get(black_box(w.token.as_str())).unwrap();
            hit.check_expiry(w.now).map(|()| hit)
        })
    });
    // A first presentation pays the lookup on top of the verification.
    group.bench_function("verified_tokens_miss", |b| {
        b.iter(|| verified.get(black_box(unseen.as_str())))
    });
    // The whole cached path of a repeat presentation: token cache, then session checks.
    group.bench_function("verified_tokens_hit_and_check", |b| {
        b.iter(|| {
            let hit = verified.get(black_box(w.token.as_str())).unwrap();
            hit.check_expiry(w.now)?;
            check_cached(&w, &hit)
        })
    });
    group.finish();
}

fn token_response_json(c: &mut Criterion) {
    let policy = SessionPolicy::default();
    let ring = KeyRing::new(
        &[SigningKey::generate(t0()).unwrap()],
        &audience(),
        t0(),
        policy.access_token_ttl,
    )
    .unwrap();
    let user = user();
    let session = session(&user, &policy);
    let grant = TokenGrant {
        access_token: ring.sign(&claims_for(&session, &policy)),
        access_expires_in: policy.access_token_ttl.num_seconds(),
        refresh_token: RefreshToken::generate(),
        refresh_expires_in: policy.refresh_token_ttl.num_seconds(),
        session: SessionInfo {
            idle_expires_at: policy.idle_expires_at(&session, session.last_active_at),
            current: true,
            session,
        },
        user: Some(user),
    };
    let response = TokenResponse::from(grant);
    let json = serde_json::to_vec(&response).unwrap();

    let mut group = c.benchmark_group("token_response");
    group.throughput(criterion::Throughput::Bytes(json.len() as u64));
    group.bench_function("serde_json_to_vec", |b| {
        b.iter(|| serde_json::to_vec(black_box(&response)).unwrap())
    });
    group.finish();
}

fn token_hash(c: &mut Criterion) {
    let token = RefreshToken::generate().expose();
    assert_eq!(token.len(), 43);
    c.bench_function("token_hash/sha256_of_43_chars", |b| {
        b.iter(|| TokenHash::of(black_box(token.as_bytes())))
    });
}

criterion_group!(
    benches,
    authenticate_cached,
    verify_vs_token_cache,
    token_response_json,
    token_hash
);
criterion_main!(benches);
