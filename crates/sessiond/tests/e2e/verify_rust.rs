//! What the Rust verifier (`sessiond-verify`) does beyond the shared conformance scenario
//! (`verifier_conformance.rs`, which runs it through its axum extractor and tower layer):
//! the introspection fallback. With the revocation stream cut — and only the stream, by a
//! TCP relay between the verifier and the real binary — a verifier past its staleness
//! bound asks sessiond about each token; without sessiond it still fails closed.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sessiond_verify::{Config, Verifier, VerifyError};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

const ADMIN_KEY: &str = "admin-key-for-the-verifier-tests-0123456789";
const VERIFIER_KEY: &str = "verifier-key-for-the-verifier-tests-012345";
/// Just over sessiond's 5 s heartbeat.
const STALENESS: Duration = Duration::from_secs(6);

fn start(dir: &Path, port: u16) -> Server {
    let mut cmd = sessiond(dir);
    cmd.arg("--data-dir")
        .arg(dir.join("data"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("SESSIOND_ADMIN_API_KEY", ADMIN_KEY)
        .env("SESSIOND_LOG_FORMAT", "json")
        .env(
            "SESSIOND_VERIFIER_API_KEYS",
            format!("[\"{VERIFIER_KEY}\"]"),
        );
    Server::start(cmd)
}

async fn start_verifier(port: u16, introspection_fallback: bool) -> Verifier {
    let mut config = Config::new(
        &format!("http://127.0.0.1:{port}"),
        VERIFIER_KEY,
        "sessiond",
        "sessiond",
    );
    config.staleness_bound = STALENESS;
    config.introspection_fallback = introspection_fallback;
    Verifier::start(config).await.expect("verifier starts")
}

/// Waits until `check` holds, failing past `limit`.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

fn token_of(grant: &serde_json::Value) -> String {
    grant["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_feed_cut_the_fallback_asks_sessiond_and_without_sessiond_fails_closed() {
    let dir = tempdir();
    let port = free_port();
    let server = start(dir.path(), port);
    let mut api = server.api();
    api.admin_key = ADMIN_KEY.to_owned();
    let relay = FeedCutter::start(port).await;

    let email = "introspected@example.com";
    api.register(email).await;
    let kept = api.login(email).await.ok(200);
    let ended = token_of(&api.login(email).await.ok(200));
    let with_fallback = start_verifier(relay.port, true).await;
    let without = start_verifier(relay.port, false).await;
    for verifier in [&with_fallback, &without] {
        verifier.verify(&token_of(&kept)).await.unwrap();
        verifier.verify(&ended).await.unwrap();
    }

    relay.cut();
    api.post_as("/v1/logout", &ended, json!({})).await.ok(204);
    // Neither hears of the logout. Past the bound, the plain verifier fails closed...
    let took = within(STALENESS + Duration::from_secs(4), async || {
        without.verify(&token_of(&kept)).await.err() == Some(VerifyError::FeedStale)
    })
    .await;
    println!("stale {took:?} after the stream was cut");
    // ...and the one with the fallback asks sessiond: the live session passes, the ended
    // one is refused (sessiond's introspection names no reason).
    let claims = with_fallback
        .verify(&token_of(&kept))
        .await
        .expect("sessiond vouches for the live session");
    assert_eq!(claims.sid, kept["session"]["id"].as_str().unwrap());
    assert_eq!(
        with_fallback.verify(&ended).await.err(),
        Some(VerifyError::SessionRevoked {
            reason: "inactive".into()
        })
    );
    assert_eq!(
        without.verify(&ended).await.err(),
        Some(VerifyError::FeedStale),
        "the plain verifier still knows nothing"
    );

    // sessiond itself gone: the fallback cannot vouch for anything.
    server.stop();
    assert_eq!(
        with_fallback.verify(&token_of(&kept)).await.err(),
        Some(VerifyError::FeedStale)
    );
}

/// A TCP relay to sessiond that can cut the revocation stream while everything else
/// (JWKS, snapshot, introspection) still gets through: once cut, a connection that has
/// carried `GET /v1/revocations/stream` is closed, and so is every new one that does.
struct FeedCutter {
    port: u16,
    cut: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

const STREAM_PATH: &[u8] = b"/v1/revocations/stream";

impl FeedCutter {
    async fn start(upstream: u16) -> FeedCutter {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("its address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let shared = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, shared.clone()));
            }
        });
        FeedCutter { port, cut, task }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }
}

impl Drop for FeedCutter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, upstream: u16, cut: Arc<AtomicBool>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let (from_client, to_client) = client.into_split();
    let (from_server, to_server) = server.into_split();
    let is_stream = Arc::new(AtomicBool::new(false));
    // Whichever direction ends first ends both: dropping the halves closes the sockets.
    tokio::select! {
        () = pipe(from_client, to_server, &cut, &is_stream, true) => {}
        () = pipe(from_server, to_client, &cut, &is_stream, false) => {}
    }
}

/// Copies one direction until either side closes or the stream is cut; `watch` marks
/// the connection as the stream's when its requests name the stream path.
async fn pipe(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    cut: &AtomicBool,
    is_stream: &AtomicBool,
    watch: bool,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    let severed = || cut.load(Ordering::SeqCst) && is_stream.load(Ordering::SeqCst);
    loop {
        // A bounded wait, so that a quiet stream connection notices the cut.
        let read = tokio::time::timeout(Duration::from_millis(100), from.read(&mut buffer)).await;
        let n = match read {
            Err(_) if severed() => return,
            Err(_) => continue,
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(n)) => n,
        };
        if watch
            && buffer[..n]
                .windows(STREAM_PATH.len())
                .any(|w| w == STREAM_PATH)
        {
            is_stream.store(true, Ordering::SeqCst);
        }
        if severed() || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
