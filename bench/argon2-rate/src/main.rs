//! `argon2-rate [SECONDS] [THREADS]`: how many argon2id hashes per second this machine
//! computes at the OWASP parameters sessiond uses (m = 19456 KiB, t = 2, p = 1), with one
//! hashing thread per core (default) for SECONDS (default 5). Prints one parseable line:
//! `ARGON2_RESULT threads=… hashes=… seconds=… rate=… p50_us=… p99_us=…`.

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let threads: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let params = Params::new(19_456, 2, 1, Some(32)).expect("params");
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();

    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let params = params.clone();
            std::thread::spawn(move || {
                let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                // The 19 MiB work area is reused, so this is the hash itself and nothing
                // else: an upper bound for password logins.
                let mut memory = vec![argon2::Block::default(); 19_456];
                let mut out = [0u8; 32];
                let salt = [t as u8; 16];
                let mut times = Vec::new();
                let mut i: u64 = 0;
                while Instant::now() < deadline {
                    let password = format!("correct horse battery {t} {i}");
                    let one = Instant::now();
                    argon
                        .hash_password_into_with_memory(
                            password.as_bytes(),
                            &salt,
                            &mut out,
                            &mut memory,
                        )
                        .expect("hash");
                    times.push(one.elapsed());
                    i += 1;
                }
                times
            })
        })
        .collect();
    let mut times: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker"))
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    times.sort();
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0, |d| d.as_micros())
    };
    println!(
        "ARGON2_RESULT threads={threads} hashes={} seconds={elapsed:.3} rate={:.1} p50_us={} p99_us={}",
        times.len(),
        times.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
    );
}
