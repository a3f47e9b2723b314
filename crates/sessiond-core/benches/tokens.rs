//! Micro-benchmarks of the domain's per-request work: minting and checking tokens and the
//! session rules. No I/O, a fixed clock.
//!
//! `cargo bench -p sessiond-core` (add `-- --warm-up-time 1 --measurement-time 3` for a
//! quick run, or `-- --test` to run each benchmark once).

use std::hint::black_box;

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use sessiond_core::jwt::{AccessClaims, KeyRing, SigningKey, TokenAudience};
use sessiond_core::otp::OtpCode;
use sessiond_core::refresh::{StoredRefreshToken, decide};
use sessiond_core::{
    AuthMethod, Device, RefreshToken, RefreshTokenId, Session, SessionId, SessionPolicy, UserId,
};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn audience() -> TokenAudience {
    TokenAudience {
        issuer: "https://sessiond.example.com".into(),
        audience: "https://sessiond.example.com".into(),
    }
}

/// Claims shaped like the ones `Service::grant` mints for a password login.
fn claims(policy: &SessionPolicy) -> AccessClaims {
    AccessClaims {
        iss: audience().issuer,
        sub: Some(UserId::new().to_string()),
        aud: audience().audience,
        sid: SessionId::new(),
        jti: uuid::Uuid::now_v7().to_string(),
        iat: t0().timestamp(),
        exp: (t0() + policy.access_token_ttl).timestamp(),
        amr: vec![AuthMethod::Password.as_string()],
    }
}

fn key_ring(policy: &SessionPolicy) -> KeyRing {
    let key = SigningKey::generate(t0()).unwrap();
    KeyRing::new(&[key], &audience(), t0(), policy.access_token_ttl).unwrap()
}

fn access_tokens(c: &mut Criterion) {
    let policy = SessionPolicy::default();
    let ring = key_ring(&policy);
    let claims = claims(&policy);
    let token = ring.sign(&claims);
    let now = t0() + Duration::minutes(1);
    assert_eq!(ring.verify(&token, now).as_ref(), Ok(&claims));

    let mut group = c.benchmark_group("access_token");
    group.bench_function("sign", |b| b.iter(|| ring.sign(black_box(&claims))));
    group.bench_function("verify", |b| {
        b.iter(|| ring.verify(black_box(&token), black_box(now)))
    });
    group.finish();
}

fn refresh_tokens(c: &mut Criterion) {
    let parent = RefreshToken::generate();
    let successor = RefreshToken::generate();
    let sealed = parent.seal_successor(&successor);

    let mut group = c.benchmark_group("refresh_token");
    group.bench_function("generate_and_hash", |b| {
        b.iter(|| {
            let token = RefreshToken::generate();
            (token.hash(), token)
        })
    });
    group.bench_function("seal_successor", |b| {
        b.iter(|| black_box(&parent).seal_successor(black_box(&successor)))
    });
    group.bench_function("open_successor", |b| {
        b.iter(|| black_box(&parent).open_successor(black_box(&sealed)))
    });
    group.finish();
}

fn session_rules(c: &mut Criterion) {
    let policy = SessionPolicy::default();
    let session = Session {
        id: SessionId::new(),
        user_id: Some(UserId::new()),
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
    };
    let now = t0() + Duration::hours(1);
    let seen = t0() + Duration::minutes(30);
    assert_eq!(policy.check(&session, now, seen), Ok(()));

    let live = StoredRefreshToken {
        id: RefreshTokenId::new(),
        session_id: session.id,
        created_at: t0(),
        expires_at: policy.refresh_token_expiry(t0(), session.expires_at),
        rotated_at: None,
        successor_id: None,
        successor_sealed: None,
    };
    let rotated = StoredRefreshToken {
        rotated_at: Some(now - Duration::seconds(5)),
        successor_id: Some(RefreshTokenId::new()),
        successor_sealed: Some(vec![0; 32]),
        ..live.clone()
    };

    let mut group = c.benchmark_group("session_rules");
    group.bench_function("policy_check_live_session", |b| {
        b.iter(|| policy.check(black_box(&session), black_box(now), black_box(seen)))
    });
    group.bench_function("refresh_decide_rotate", |b| {
        b.iter(|| {
            decide(
                black_box(&live),
                black_box(false),
                black_box(now),
                policy.refresh_grace,
            )
        })
    });
    group.bench_function("refresh_decide_replay_successor", |b| {
        b.iter(|| {
            decide(
                black_box(&rotated),
                black_box(false),
                black_box(now),
                policy.refresh_grace,
            )
        })
    });
    group.finish();
}

fn otp_codes(c: &mut Criterion) {
    let challenge_id = uuid::Uuid::now_v7().to_string();
    let mut group = c.benchmark_group("otp");
    group.bench_function("generate_and_hash_6_digits", |b| {
        b.iter(|| OtpCode::generate(black_box(6)).hash(black_box(&challenge_id)))
    });
    group.finish();
}

criterion_group!(
    benches,
    access_tokens,
    refresh_tokens,
    session_rules,
    otp_codes
);
criterion_main!(benches);
