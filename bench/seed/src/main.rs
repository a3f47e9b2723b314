//! Seeds a running sessiond for the load benchmark, concurrently and with a deadline.
//!
//! ```text
//! seed sessions URL N ACCESS_OUT REFRESH_OUT [USERS]   # POST /v1/admin/sessions × N
//! seed users    URL N PASSWORD EMAILS_OUT TAG          # POST /v1/users × N (registration)
//! seed revoked  URL N [USERS]                          # POST then DELETE /v1/admin/sessions × N
//! ```
//!
//! The admin key comes from `SESSIOND_ADMIN_API_KEY`; `SEED_CONCURRENCY` (default 32) and
//! `SEED_DEADLINE_SECS` (default 600) bound the work. `sessions` spreads the N sessions
//! over USERS users (default N: one user per session) and writes one access token and
//! one refresh token per line, in the same order. `revoked` makes N sessions (over USERS
//! users, default 1 000) and ends each at once through the admin API: revocations whose
//! tokens are still alive, which a verifier's snapshot must hold. Any failed request fails
//! the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn usage() -> ! {
    eprintln!(
        "usage:\n  seed sessions URL N ACCESS_OUT REFRESH_OUT [USERS]\n  seed users URL N PASSWORD EMAILS_OUT TAG\n  seed revoked URL N [USERS]"
    );
    std::process::exit(2)
}

/// One POST with retries on 429/503 (sessiond's fast "overloaded" answers) and transport errors.
async fn post(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    body: &Value,
) -> Result<Value, String> {
    let mut last = String::new();
    for attempt in 0..8u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
        }
        let mut req = client.post(url).json(body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                return resp.json::<Value>().await.map_err(|e| e.to_string());
            }
            Ok(resp) if resp.status() == 429 || resp.status() == 503 => {
                last = format!("{}", resp.status());
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                return Err(format!("{status}: {text}"));
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("gave up after retries: {last}"))
}

/// One admin DELETE, retried like [`post`]; a 204 is success.
async fn delete(client: &reqwest::Client, url: &str, key: &str) -> Result<Value, String> {
    let mut last = String::new();
    for attempt in 0..8u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
        }
        match client.delete(url).bearer_auth(key).send().await {
            Ok(resp) if resp.status().is_success() => return Ok(Value::Null),
            Ok(resp) if resp.status() == 429 || resp.status() == 503 => {
                last = format!("{}", resp.status());
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                return Err(format!("{status}: {text}"));
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("gave up after retries: {last}"))
}

/// Runs `job(i)` for i in 0..n on `concurrency` tasks; answers the results in index order.
async fn run_all<F, Fut>(n: usize, job: F) -> Vec<Result<Value, String>>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Value, String>> + Send,
{
    let concurrency = env_num("SEED_CONCURRENCY", 32).max(1) as usize;
    let next = Arc::new(AtomicUsize::new(0));
    let job = Arc::new(job);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let job = job.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                done.push((i, job(i).await));
            }
            done
        }));
    }
    let mut results: Vec<Option<Result<Value, String>>> = (0..n).map(|_| None).collect();
    for task in tasks {
        for (i, r) in task.await.expect("seed task") {
            results[i] = Some(r);
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every index"))
        .collect()
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, String> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no {name} in answer"))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let deadline = Duration::from_secs(env_num("SEED_DEADLINE_SECS", 600));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build()
        .expect("HTTP client");
    let started = Instant::now();
    let work = async {
        match args.first().map(String::as_str) {
            Some("sessions") if args.len() >= 5 => {
                let url = format!("{}/v1/admin/sessions", args[1].trim_end_matches('/'));
                let n: usize = args[2].parse().unwrap_or_else(|_| usage());
                let users: usize = args.get(5).and_then(|u| u.parse().ok()).unwrap_or(n).max(1);
                let key = std::env::var("SESSIOND_ADMIN_API_KEY")
                    .unwrap_or_else(|_| panic!("SESSIOND_ADMIN_API_KEY is not set"));
                let user_ids: Arc<Vec<Uuid>> =
                    Arc::new((0..users).map(|_| Uuid::new_v4()).collect());
                let results = run_all(n, move |i| {
                    let client = client.clone();
                    let url = url.clone();
                    let key = key.clone();
                    let user = user_ids[i % user_ids.len()];
                    async move {
                        let body = json!({"user_id": user.to_string(), "device": {"label": "bench", "user_agent": "seed"}});
                        post(&client, &url, Some(&key), &body).await
                    }
                })
                .await;
                let mut access = String::new();
                let mut refresh = String::new();
                for r in &results {
                    let grant = r.as_ref().map_err(Clone::clone)?;
                    access.push_str(field(grant, "access_token")?);
                    access.push('\n');
                    refresh.push_str(field(grant, "refresh_token")?);
                    refresh.push('\n');
                }
                std::fs::write(&args[3], access).map_err(|e| e.to_string())?;
                std::fs::write(&args[4], refresh).map_err(|e| e.to_string())?;
                Ok::<usize, String>(n)
            }
            Some("users") if args.len() >= 6 => {
                let url = format!("{}/v1/users", args[1].trim_end_matches('/'));
                let n: usize = args[2].parse().unwrap_or_else(|_| usage());
                let password = args[3].clone();
                let tag = args[5].clone();
                let emails: Arc<Vec<String>> = Arc::new(
                    (0..n)
                        .map(|i| format!("bench-{tag}-{i}@example.com"))
                        .collect(),
                );
                let list = emails.clone();
                let results = run_all(n, move |i| {
                    let client = client.clone();
                    let url = url.clone();
                    let body = json!({"email": list[i], "password": password});
                    async move { post(&client, &url, None, &body).await }
                })
                .await;
                for r in &results {
                    r.as_ref().map_err(Clone::clone)?;
                }
                let mut out = emails.join("\n");
                out.push('\n');
                std::fs::write(&args[4], out).map_err(|e| e.to_string())?;
                Ok(n)
            }
            Some("revoked") if args.len() >= 3 => {
                let base = format!("{}/v1/admin/sessions", args[1].trim_end_matches('/'));
                let n: usize = args[2].parse().unwrap_or_else(|_| usage());
                let users: usize = args
                    .get(3)
                    .and_then(|u| u.parse().ok())
                    .unwrap_or(1000)
                    .max(1);
                let key = std::env::var("SESSIOND_ADMIN_API_KEY")
                    .unwrap_or_else(|_| panic!("SESSIOND_ADMIN_API_KEY is not set"));
                let user_ids: Arc<Vec<Uuid>> =
                    Arc::new((0..users).map(|_| Uuid::new_v4()).collect());
                let results = run_all(n, move |i| {
                    let (client, base, key) = (client.clone(), base.clone(), key.clone());
                    let user = user_ids[i % user_ids.len()];
                    async move {
                        let body = json!({"user_id": user.to_string(), "device": {"label": "bench", "user_agent": "seed"}});
                        let grant = post(&client, &base, Some(&key), &body).await?;
                        let id = grant
                            .get("session")
                            .and_then(|s| s.get("id"))
                            .and_then(Value::as_str)
                            .ok_or("no session id in answer")?;
                        delete(&client, &format!("{base}/{id}"), &key).await
                    }
                })
                .await;
                for r in &results {
                    r.as_ref().map_err(Clone::clone)?;
                }
                Ok(n)
            }
            _ => usage(),
        }
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(Ok(n)) => {
            let secs = started.elapsed().as_secs_f64();
            eprintln!("seeded {n} in {secs:.1} s ({:.0}/s)", n as f64 / secs);
        }
        Ok(Err(e)) => {
            eprintln!("seed failed: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("seed did not finish within {} s", deadline.as_secs());
            std::process::exit(1);
        }
    }
}
