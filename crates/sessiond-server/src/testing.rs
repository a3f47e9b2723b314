//! The HTTP client the test suites talk to sessiond with: the in-process server suite
//! (`sessiond-server`'s tests) and the suites that run the real binary (`sessiond`'s) use
//! this one client, so a helper or an assertion about answers is written once. Behind the
//! `testing` feature, which only dev-dependencies turn on.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery";

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Checks a problem answer and returns its body without `instance`, which names the
    /// request (it must, and must match `X-Request-Id`) and so differs between answers
    /// that are otherwise the same.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text
        );
        let mut body = self.json();
        assert_eq!(body["code"], code, "body: {}", self.text);
        assert_eq!(body["status"], status);
        let instance = body.as_object_mut().and_then(|b| b.remove("instance"));
        let request_id = self.header("x-request-id").unwrap_or_default();
        assert_eq!(
            instance.as_ref().and_then(Value::as_str),
            Some(format!("urn:sessiond:request:{request_id}").as_str()),
            "body: {}",
            self.text
        );
        body
    }

    /// Checks the status and returns the JSON body (`null` when empty).
    #[track_caller]
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        self.body()
    }

    /// The JSON body, `null` when empty, a JSON string when not JSON.
    pub fn body(&self) -> Value {
        if self.text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&self.text).unwrap_or_else(|_| Value::String(self.text.clone()))
        }
    }
}

/// The status and body, for tests that match on both.
impl From<Reply> for (u16, Value) {
    fn from(reply: Reply) -> Self {
        (reply.status.as_u16(), reply.body())
    }
}

/// A client of one sessiond at `base` (`http://host:port`).
#[derive(Clone)]
pub struct ApiClient {
    pub base: String,
    pub http: reqwest::Client,
    /// Sent by [`ApiClient::admin`].
    pub admin_key: String,
}

impl ApiClient {
    pub fn new(base: String, admin_key: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
            admin_key,
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request).await
    }

    /// [`ApiClient::send`] with the method by name, answering status and body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        self.send(method, path, bearer, body).await.into()
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, None, Some(body)).await
    }

    /// A POST as client `ip`, named in `X-Forwarded-For` (the server must trust
    /// 127.0.0.1 as a proxy for it to count).
    pub async fn post_from(&self, ip: &str, path: &str, body: Value) -> Reply {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-forwarded-for", ip)
            .json(&body);
        read(request).await
    }

    pub async fn post_as(&self, path: &str, bearer: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(bearer), Some(body))
            .await
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Reply {
        self.send(Method::GET, path, Some(bearer), None).await
    }

    pub async fn delete(&self, path: &str, bearer: &str) -> Reply {
        self.send(Method::DELETE, path, Some(bearer), None).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(method, path, Some(&self.admin_key), body).await
    }

    /// Registers `email` with [`PASSWORD`] and returns the token response.
    pub async fn register(&self, email: &str) -> Value {
        self.post("/v1/users", json!({"email": email, "password": PASSWORD}))
            .await
            .ok(201)
    }

    /// Logs `email` in with [`PASSWORD`].
    pub async fn login(&self, email: &str) -> Reply {
        self.login_with(email, PASSWORD).await
    }

    pub async fn login_with(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/v1/auth/password",
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post("/v1/token/refresh", json!({"refresh_token": refresh_token}))
            .await
    }

    pub async fn whoami(&self, access_token: &str) -> Reply {
        self.get("/v1/session", access_token).await
    }

    pub async fn introspect(&self, token: &str) -> Value {
        self.admin(
            Method::POST,
            "/v1/introspect",
            Some(json!({"token": token})),
        )
        .await
        .ok(200)
    }

    pub async fn validate(&self, token: &str) -> Value {
        self.post("/v1/token/validate", json!({"token": token}))
            .await
            .ok(200)
    }

    pub async fn jwks(&self) -> Value {
        self.send(Method::GET, "/.well-known/jwks.json", None, None)
            .await
            .ok(200)
    }

    /// The key ids the server publishes, sorted.
    pub async fn jwks_kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.jwks().await["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect();
        kids.sort();
        kids
    }
}

async fn read(request: reqwest::RequestBuilder) -> Reply {
    let response = request
        .send()
        .await
        .expect("the request reaches the server");
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        text: response.text().await.expect("the body"),
    }
}

pub fn access(grant: &Value) -> String {
    field(grant, "access_token")
}

pub fn refresh_of(grant: &Value) -> String {
    field(grant, "refresh_token")
}

pub fn session_id(grant: &Value) -> String {
    grant["session"]["id"]
        .as_str()
        .expect("session id")
        .to_owned()
}

/// A string field of a token response.
pub fn field(grant: &Value, name: &str) -> String {
    grant[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {grant}"))
        .to_owned()
}

pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}
