//! The verifier benchmark's Rust program (`bench/verify.sh`; the contract is in
//! `clients/VERIFIER-CONFORMANCE.md`): on one thread, against a sessiond holding many
//! live revocations,
//!
//! 1. the heap the verifier holds once started (its snapshot), and the process RSS;
//! 2. checks per second of one token with a bare `jsonwebtoken::decode` (iss, aud, exp,
//!    and typ from the header) against `Verifier::verify`;
//! 3. the revocation latency: from before the admin DELETE to the first refusal;
//!
//! and prints one JSON line. Settings from the environment: SESSIOND_URL,
//! SESSIOND_ADMIN_KEY, SESSIOND_VERIFIER_KEY, BENCH_SECONDS (5), BENCH_REVOCATIONS (200).

mod memory;
mod sessiond;

use std::hint::black_box;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::json;
use sessiond_verify::{Config, Verifier};

use crate::sessiond::Sessiond;

#[global_allocator]
static ALLOCATOR: memory::Counting = memory::Counting;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `check` as often as fits in `length`; checks per second.
async fn rate(length: Duration, mut check: impl AsyncFnMut()) -> f64 {
    let started = Instant::now();
    let mut count: u64 = 0;
    loop {
        for _ in 0..256 {
            check().await;
        }
        count += 256;
        // Let the verifier's feed follower (on this same thread) read its heartbeats.
        tokio::task::yield_now().await;
        if started.elapsed() >= length {
            return count as f64 / started.elapsed().as_secs_f64();
        }
    }
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p).div_ceil(100).max(1) - 1]
}

async fn run() {
    let sessiond = Sessiond {
        url: env("SESSIOND_URL").trim_end_matches('/').to_owned(),
        admin_key: env("SESSIOND_ADMIN_KEY"),
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client"),
    };
    let seconds = Duration::from_secs(env_num("BENCH_SECONDS", 5));
    let revocations = env_num("BENCH_REVOCATIONS", 200) as usize;

    // 1. Memory around the start: the snapshot's revocations are what it holds.
    let heap_before = memory::heap_bytes();
    let config = Config::new(
        &sessiond.url,
        &env("SESSIOND_VERIFIER_KEY"),
        "sessiond",
        "sessiond",
    );
    let verifier = Verifier::start(config).await.expect("the verifier starts");
    let heap_bytes = memory::heap_bytes() - heap_before;
    let rss_bytes = memory::rss_bytes();
    let (denied_sessions, _) = verifier.denied_count();

    // 2. One token, checked both ways.
    let user = sessiond.user().await;
    let (_, token) = sessiond.session(&user).await;
    let (kid, x) = sessiond.signing_key().await;
    let key = DecodingKey::from_ed_components(&x).expect("an Ed25519 key");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.leeway = 0;
    validation.set_issuer(&["sessiond"]);
    validation.set_audience(&["sessiond"]);
    let bare = || {
        let header = jsonwebtoken::decode_header(&token).expect("a header");
        assert!(header.typ.as_deref() == Some("at+jwt") && header.kid.as_deref() == Some(&kid));
        jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).expect("valid")
    };
    bare();
    verifier.verify(&token).await.expect("the token verifies");
    let bare_per_s = rate(seconds, async || {
        black_box(bare());
    })
    .await;
    let verifier_per_s = rate(seconds, async || {
        black_box(verifier.verify(&token).await.expect("verifies"));
    })
    .await;

    // 3. Revocation latency, each from before the DELETE to the first refusal.
    let mut latencies = Vec::with_capacity(revocations);
    for _ in 0..revocations {
        let (sid, token) = sessiond.session(&user).await;
        verifier
            .verify(&token)
            .await
            .expect("a fresh session verifies");
        let started = Instant::now();
        sessiond.revoke(&sid).await;
        while verifier.verify(&token).await.is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "not refused 30 s after its revocation"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);

    let round = |v: f64, places: i32| (v * 10f64.powi(places)).round() / 10f64.powi(places);
    println!(
        "{}",
        json!({
            "language": "rust",
            "bare_per_s": round(bare_per_s, 0),
            "verifier_per_s": round(verifier_per_s, 0),
            "ratio": round(verifier_per_s / bare_per_s, 3),
            "heap_bytes": heap_bytes,
            "rss_bytes": rss_bytes,
            "denied_sessions": denied_sessions,
            "revocation_p50_ms": round(percentile(&latencies, 50), 2),
            "revocation_p99_ms": round(percentile(&latencies, 99), 2),
            "revocations": latencies.len(),
        })
    );
}

fn main() {
    // One thread, as the contract says: the checks and the feed follower share it.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(run());
}
