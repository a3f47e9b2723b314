//! The harness shared by the tests that drive the real `sessiond` binary: commands run as
//! child processes isolated from the runner's environment, servers started on port 0 and
//! found through their "sessiond listening" log line, and a small HTTP client.

#![allow(dead_code)] // each test binary uses its own part of the harness

use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_sessiond");
pub use sessiond_server::testing::{ApiClient as Api, PASSWORD};
pub const STARTUP: Duration = Duration::from_secs(20);
pub const STOP: Duration = Duration::from_secs(10);

pub fn tempdir() -> TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

/// A `sessiond` command run in `cwd`, isolated from the test runner's environment: no
/// inherited `SESSIOND_*` settings, default log filter, no backtraces in error output.
pub fn sessiond(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd).stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SESSIOND_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0");
    cmd
}

/// Runs a short-lived command (not a server) to completion; one that hangs is killed and
/// fails the test.
pub fn run(mut cmd: Command) -> CliOutput {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sessiond runs");
    let read = |mut stream: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + STARTUP;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {STARTUP:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    CliOutput {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    #[track_caller]
    pub fn success(self) -> Self {
        assert!(
            self.status.success(),
            "expected success, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn failure(self) -> Self {
        assert!(
            !self.status.success(),
            "expected failure, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A running `sessiond serve`. Dropping it kills the process, so a failing test never
/// leaves a server behind.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Everything the process wrote to stdout and stderr so far, line by line.
    output: Arc<Mutex<String>>,
    lines: Receiver<String>,
    readers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Spawns `cmd` (which should include `--bind 127.0.0.1:0`) and waits for the
    /// "sessiond listening" log line to learn the address.
    pub fn start(mut cmd: Command) -> Server {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn sessiond");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let readers = vec![
            collect(stdout, output.clone(), tx.clone()),
            collect(stderr, output.clone(), tx),
        ];
        let mut server = Server {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            output,
            lines,
            readers,
        };
        server.addr = server.wait_for_listening();
        server
    }

    pub fn wait_for_listening(&self) -> SocketAddr {
        let event = self.wait_for_event("sessiond listening");
        let addr = event["addr"].as_str().expect("the addr field");
        addr.parse().expect("a socket address")
    }

    /// Waits for the next JSON log line whose message contains `message`.
    pub fn wait_for_event(&self, message: &str) -> Value {
        let deadline = Instant::now() + STARTUP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let Ok(event) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    if event["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(message))
                    {
                        return event;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {message:?} log line in time:\n{}", self.logs())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "sessiond exited before logging {message:?}:\n{}",
                        self.logs()
                    )
                }
            }
        }
    }

    /// A client of this server (its admin key is the caller's to send).
    pub fn api(&self) -> Api {
        Api {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client"),
            base: format!("http://{}", self.addr),
            admin_key: String::new(),
        }
    }

    pub fn logs(&self) -> String {
        self.output.lock().expect("log buffer").clone()
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits for the process to exit, then for its output to be fully read.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "sessiond did not exit within {timeout:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            reader.join().expect("log reader");
        }
        status
    }

    /// SIGTERM, then a clean exit (code 0) within a few seconds. Returns the full log.
    pub fn stop(mut self) -> String {
        self.sigterm();
        let status = self.wait_exit(STOP);
        let logs = self.logs();
        assert!(status.success(), "exit status {status}:\n{logs}");
        assert_eq!(status.code(), Some(0));
        logs
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(
    stream: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
    tx: mpsc::Sender<String>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            {
                let mut out = output.lock().expect("log buffer");
                out.push_str(&line);
                out.push('\n');
            }
            let _ = tx.send(line);
        }
    })
}

/// `sessiond [--data-dir DIR] serve --bind 127.0.0.1:0`, run in `cwd`.
pub fn serve(cwd: &Path, data_dir: Option<&Path>) -> Command {
    let mut cmd = sessiond(cwd);
    if let Some(dir) = data_dir {
        cmd.arg("--data-dir").arg(dir);
    }
    cmd.args(["serve", "--bind", "127.0.0.1:0"]);
    cmd
}

/// The JSON log events of a captured output (non-JSON lines are skipped).
pub fn events(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(Value::is_object)
        .collect()
}

pub fn event<'a>(events: &'a [Value], message: &str) -> Option<&'a Value> {
    events
        .iter()
        .find(|e| e["message"].as_str().is_some_and(|m| m.contains(message)))
}

#[track_caller]
pub fn expect(answer: impl Into<(u16, Value)>, want: u16) -> Value {
    let (status, body) = answer.into();
    assert_eq!(status, want, "unexpected answer: {body}");
    body
}

/// Asserts a problem answer: its status and its `code`. Returns the problem.
#[track_caller]
pub fn expect_problem(answer: impl Into<(u16, Value)>, want: u16, code: &str) -> Value {
    let (status, body) = answer.into();
    assert_eq!(
        (status, body["code"].as_str()),
        (want, Some(code)),
        "unexpected answer: {body}"
    );
    body
}

/// Writes a line straight to stderr, past the test harness's capture, so that it shows in
/// a normal (passing) run.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

pub fn token(grant: &Value, field: &str) -> String {
    grant[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {grant}"))
        .to_owned()
}

/// Decodes one base64url segment of a JWT.
pub fn jwt_part(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).expect("a JWT segment");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

pub fn kid_of(jwt: &str) -> String {
    jwt_part(jwt, 0)["kid"].as_str().expect("kid").to_owned()
}

/// Whether the run is under CI (`CI` set, and not `0` or `false`): there, what a test needs
/// must be present, and a missing PostgreSQL, Redis or tool fails it instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim();
        !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
    })
}

/// The shared Redis of the multi-instance tests.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Whether Redis answers PING on 127.0.0.1:6379.
pub fn redis_ping() -> Result<(), String> {
    let addr: SocketAddr = "127.0.0.1:6379".parse().expect("an address");
    let mut conn =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    conn.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
    let mut answer = [0u8; 7];
    conn.read_exact(&mut answer).map_err(|e| e.to_string())?;
    if &answer == b"+PONG\r\n" {
        Ok(())
    } else {
        Err(format!(
            "answered {:?} to PING",
            String::from_utf8_lossy(&answer)
        ))
    }
}

/// A local port free right now (bound, then released), for a server that must come back
/// on the same port after a restart.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}
