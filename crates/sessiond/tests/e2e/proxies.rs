//! Forward-auth behind the real proxies: Debian's nginx and Caddy run the configs shipped
//! in `examples/proxies/` (ports templated) in front of a tiny real upstream that records
//! every request it gets, with the real `sessiond` binary behind the check. Checked for
//! each: allowed (bearer and cookie), refused with 401 and no upstream hit, revocation
//! honoured at once, client-forged identity headers never reaching the upstream, never a
//! `Set-Cookie` from the check.
//!
//! nginx and caddy are installed with apt when missing (as root); without them the test
//! fails under CI (`CI` set) and is skipped with a message otherwise.

use std::io::{BufRead, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tempfile::TempDir;

use crate::common::*;

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn installed(binary: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {binary}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The proxy's binary, installed with apt when missing; `false` (outside CI) when it
/// cannot be had.
fn ensure(binary: &str, package: &str) -> bool {
    if installed(binary) {
        return true;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if root && installed("apt-get") {
        say(&format!(
            "proxies: {binary} is missing; installing Debian's {package}"
        ));
        let script = format!(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {package}"
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .status();
    }
    if installed(binary) {
        return true;
    }
    assert!(
        !under_ci(),
        "{binary} ({package}) is needed for the proxy tests under CI"
    );
    say(&format!(
        "proxies: skipped: {binary} is not installed and cannot be installed here"
    ));
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// What the upstream app received: each request's path and headers (names lower-cased).
#[derive(Default)]
struct Seen {
    requests: Vec<(String, Vec<(String, String)>)>,
}

/// A tiny real HTTP/1.1 app: answers `200 upstream ok` to everything, one request per
/// connection, and records what it got.
struct Upstream {
    port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let record = record.clone();
                std::thread::spawn(move || serve_one(stream, &record));
            }
        });
        Upstream { port, seen }
    }

    fn hits(&self) -> usize {
        self.seen.lock().unwrap().requests.len()
    }

    /// The headers of the last request the app got.
    fn last(&self) -> Vec<(String, String)> {
        self.seen
            .lock()
            .unwrap()
            .requests
            .last()
            .expect("a request")
            .1
            .clone()
    }
}

fn serve_one(stream: TcpStream, seen: &Mutex<Seen>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    seen.lock().unwrap().requests.push((path, headers));
    let body = "upstream ok";
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A proxy process, killed on drop.
struct Proxy {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + STARTUP;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the proxy exited ({status}): {}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "the proxy never listened: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/proxies")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` with each `(from, to)` replaced; a `from` the example no longer has fails, so
/// the test always runs the example as shipped.
fn templated(mut text: String, replacements: &[(&str, String)]) -> String {
    for (from, to) in replacements {
        assert!(text.contains(from), "the example has no {from:?}");
        text = text.replace(from, to);
    }
    text
}

fn start_nginx(sessiond: u16, upstream: u16) -> Proxy {
    let dir = tempdir();
    let port = free_port();
    let site = templated(
        example("nginx.conf"),
        &[
            ("127.0.0.1:8420", format!("127.0.0.1:{sessiond}")),
            ("127.0.0.1:3000", format!("127.0.0.1:{upstream}")),
            ("listen 8080;", format!("listen 127.0.0.1:{port};")),
        ],
    );
    let d = dir.path().display();
    std::fs::write(dir.path().join("site.conf"), site).unwrap();
    let main = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
         include {d}/site.conf;\n}}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), main).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .args(["-e", &format!("{d}/error.log")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let mut proxy = Proxy {
        child,
        port,
        log: dir.path().join("error.log"),
        _dir: dir,
    };
    proxy.wait_until_listening();
    proxy
}

fn start_caddy(sessiond: u16, upstream: u16) -> Proxy {
    let dir = tempdir();
    let port = free_port();
    let site = templated(
        example("Caddyfile"),
        &[
            ("127.0.0.1:8420", format!("127.0.0.1:{sessiond}")),
            ("127.0.0.1:3000", format!("127.0.0.1:{upstream}")),
            (":8080 {", format!("http://127.0.0.1:{port} {{")),
        ],
    );
    // Global options first: no admin endpoint, no automatic HTTPS, for a test.
    let config = format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}");
    let file = dir.path().join("Caddyfile");
    std::fs::write(&file, config).unwrap();
    let log = dir.path().join("caddy.log");
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&file)
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("caddy starts");
    let mut proxy = Proxy {
        child,
        port,
        log,
        _dir: dir,
    };
    proxy.wait_until_listening();
    proxy
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Every identity header the upstream got (a forged one would show here).
fn identity(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(n, _)| n.starts_with("x-sessiond-"))
        .cloned()
        .collect()
}

/// The checks, through a proxy at `base` in front of `upstream`.
async fn exercise(name: &str, base: &str, upstream: &Upstream, proxy: &Proxy) {
    let http = client();
    let api = Api {
        http: http.clone(),
        base: base.to_owned(),
        admin_key: String::new(),
    };
    let app = format!("{base}/app/page");
    let get = |bearer: Option<&str>, extra: &[(&str, &str)]| {
        let mut req = http.get(&app);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send()
    };

    // Refused: no credentials, a forged token; 401 and the app never sees the request,
    // even with forged identity headers.
    let before = upstream.hits();
    let refused = get(None, &[("x-sessiond-user", "someone-else")])
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "{name}: {}", proxy.logs());
    assert!(refused.headers().get("set-cookie").is_none());
    let forged = get(Some("eyJhbGciOiJub25lIn0.e30."), &[]).await.unwrap();
    assert_eq!(forged.status(), 401, "{name}");
    assert_eq!(
        upstream.hits(),
        before,
        "{name}: a refused request reached the app"
    );

    // Allowed by bearer, through the proxy's own /v1 (registration logs in).
    let grant = api
        .register(&format!("{name}-{}@example.com", uuid_like()))
        .await;
    let at = token(&grant, "access_token");
    let user = grant["user"]["id"].as_str().unwrap().to_owned();
    let sid = grant["session"]["id"].as_str().unwrap().to_owned();
    let ok = get(
        Some(&at),
        &[
            ("x-sessiond-user", "00000000-0000-0000-0000-000000000000"),
            ("x-sessiond-amr", "admin"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200, "{name}: {}", proxy.logs());
    assert!(ok.headers().get("set-cookie").is_none(), "{name}");
    assert_eq!(ok.text().await.unwrap(), "upstream ok");
    let seen = upstream.last();
    assert_eq!(
        header(&seen, "x-sessiond-user"),
        Some(user.as_str()),
        "{name}: {:?}",
        identity(&seen)
    );
    assert_eq!(header(&seen, "x-sessiond-session"), Some(sid.as_str()));
    assert_eq!(
        header(&seen, "x-sessiond-amr"),
        Some("pwd"),
        "{name}: {:?}",
        identity(&seen)
    );
    assert_eq!(header(&seen, "x-sessiond-anonymous"), Some("false"));
    assert_eq!(identity(&seen).len(), 4, "{name}: {:?}", identity(&seen));

    // An anonymous session with a forged user: the app never sees the forged id.
    let anon = api.post("/v1/sessions/anonymous", json!({})).await.ok(201);
    let ok = get(
        Some(&token(&anon, "access_token")),
        &[("x-sessiond-user", &user)],
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200, "{name}");
    let seen = upstream.last();
    assert!(
        header(&seen, "x-sessiond-user").is_none_or(str::is_empty),
        "{name}: a forged user reached the app: {:?}",
        identity(&seen)
    );
    assert_eq!(header(&seen, "x-sessiond-anonymous"), Some("true"));

    // Cookie mode: log in through the proxy in cookie mode; the cookie is the credential.
    let email = format!("{name}-cookie-{}@example.com", uuid_like());
    api.register(&email).await;
    let login = http
        .post(format!("{base}/v1/auth/password"))
        .header("sessiond-token-transport", "cookie")
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "{name}");
    let cookies: Vec<String> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 2, "{name}: {cookies:?}");
    let cookie_user = login.json::<serde_json::Value>().await.unwrap()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let jar = cookies.join("; ");
    let ok = get(None, &[("cookie", &jar)]).await.unwrap();
    assert_eq!(ok.status(), 200, "{name}");
    assert!(ok.headers().get("set-cookie").is_none(), "{name}");
    assert_eq!(
        header(&upstream.last(), "x-sessiond-user"),
        Some(cookie_user.as_str())
    );

    // Revocation is honoured at once: log out, and the very next request is refused.
    let hits = upstream.hits();
    api.send(Method::POST, "/v1/logout", Some(&at), None)
        .await
        .ok(204);
    let after = get(Some(&at), &[]).await.unwrap();
    assert_eq!(after.status(), 401, "{name}");
    let out = http
        .post(format!("{base}/v1/logout"))
        .header("cookie", &jar)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204, "{name}");
    let after = get(None, &[("cookie", &jar)]).await.unwrap();
    assert_eq!(after.status(), 401, "{name}");
    assert_eq!(
        upstream.hits(),
        hits,
        "{name}: a revoked session reached the app"
    );

    // The check's speed through the proxy (figures for the report, not a gate).
    let fresh = api
        .register(&format!("{name}-speed-{}@example.com", uuid_like()))
        .await;
    let at = token(&fresh, "access_token");
    let started = Instant::now();
    let rounds = 200;
    for _ in 0..rounds {
        let r = get(Some(&at), &[]).await.unwrap();
        assert_eq!(r.status(), 200);
    }
    say(&format!(
        "proxies: {name}: {rounds} checked requests in {:.0} ms ({:.2} ms each, sequential, debug build)",
        started.elapsed().as_secs_f64() * 1000.0,
        started.elapsed().as_secs_f64() * 1000.0 / rounds as f64
    ));
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn sessiond_server() -> (Server, TempDir) {
    let dir = tempdir();
    let server = Server::start(serve(dir.path(), None));
    (server, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_with_the_shipped_example() {
    if !ensure("nginx", "nginx") {
        return;
    }
    let (server, _dir) = sessiond_server();
    let upstream = Upstream::start();
    let proxy = start_nginx(server.addr.port(), upstream.port);
    let base = format!("http://127.0.0.1:{}", proxy.port);
    exercise("nginx", &base, &upstream, &proxy).await;
    compare_with_the_token_check(&server).await;
}

/// The forward-auth check is the token check of `GET /v1/session` with another answer:
/// their times, straight to sessiond, interleaved (a figure, and a loose bound).
async fn compare_with_the_token_check(server: &Server) {
    let api = server.api();
    let grant = api.register("speed@example.com").await;
    let at = token(&grant, "access_token");
    let rounds = 400;
    let (mut session, mut check) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let started = Instant::now();
        assert_eq!(api.get("/v1/session", &at).await.status, 200);
        session += started.elapsed();
        let started = Instant::now();
        assert_eq!(api.get("/v1/auth/check", &at).await.status, 200);
        check += started.elapsed();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(rounds);
    say(&format!(
        "proxies: straight to sessiond (debug build, sequential): GET /v1/session {:.3} ms, GET /v1/auth/check {:.3} ms per request",
        ms(session),
        ms(check)
    ));
    assert!(
        check < session * 2,
        "the check costs more than twice the token check: {check:?} vs {session:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_forward_auth_with_the_shipped_example() {
    if !ensure("caddy", "caddy") {
        return;
    }
    let (server, _dir) = sessiond_server();
    let upstream = Upstream::start();
    let proxy = start_caddy(server.addr.port(), upstream.port);
    let base = format!("http://127.0.0.1:{}", proxy.port);
    exercise("caddy", &base, &upstream, &proxy).await;
}
