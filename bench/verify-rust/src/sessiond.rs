//! The few sessiond calls the benchmark makes: a user, an admin session for it, its
//! revocation, and the JWKS for the bare check.

use serde_json::{Value, json};

pub struct Sessiond {
    pub url: String,
    pub admin_key: String,
    pub http: reqwest::Client,
}

impl Sessiond {
    async fn answer(request: reqwest::RequestBuilder, want: u16) -> Value {
        let response = request.send().await.expect("sessiond answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, want, "unexpected answer: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// `POST /v1/users`: a new user's id.
    pub async fn user(&self) -> String {
        let body = json!({
            "email": format!("verify-bench-{}@example.com", uuid::Uuid::new_v4().simple()),
            "password": "verify-bench-password",
        });
        let request = self.http.post(format!("{}/v1/users", self.url)).json(&body);
        let grant = Self::answer(request, 201).await;
        grant["user"]["id"].as_str().expect("a user id").to_owned()
    }

    /// `POST /v1/admin/sessions`: (session id, access token).
    pub async fn session(&self, user_id: &str) -> (String, String) {
        let request = self
            .http
            .post(format!("{}/v1/admin/sessions", self.url))
            .bearer_auth(&self.admin_key)
            .json(&json!({"user_id": user_id}));
        let grant = Self::answer(request, 201).await;
        let field = |v: &Value| v.as_str().expect("a string").to_owned();
        (
            field(&grant["session"]["id"]),
            field(&grant["access_token"]),
        )
    }

    /// `DELETE /v1/admin/sessions/{id}`.
    pub async fn revoke(&self, session_id: &str) {
        let request = self
            .http
            .delete(format!("{}/v1/admin/sessions/{session_id}", self.url))
            .bearer_auth(&self.admin_key);
        Self::answer(request, 204).await;
    }

    /// The first key of the JWKS, as `jsonwebtoken` takes it: (kid, x).
    pub async fn signing_key(&self) -> (String, String) {
        let request = self.http.get(format!("{}/.well-known/jwks.json", self.url));
        let jwks = Self::answer(request, 200).await;
        let key = &jwks["keys"][0];
        let field = |name: &str| key[name].as_str().expect("a JWK field").to_owned();
        (field("kid"), field("x"))
    }
}
