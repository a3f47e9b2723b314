//! Unit tests of the checks that need no sessiond: a verifier given its keys directly
//! (an Ed25519 pair made here), the fail-closed rules, the introspection fallback when
//! sessiond cannot be reached, and the tower layer in front of a service. The same
//! behaviour against the real binary is tested in `crates/sessiond/tests/e2e`.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair as _};

use crate::{Config, Verifier, VerifyError};

const KID: &str = "unit-test-key";

struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

fn signer() -> Signer {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    Signer {
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        decoding: DecodingKey::from_ed_der(pair.public_key().as_ref()),
    }
}

impl Signer {
    /// A token shaped like sessiond's, for session `sid`, expiring in `exp_in` seconds.
    fn token(&self, sid: &str, exp_in: i64) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(KID.to_owned());
        header.typ = Some("at+jwt".to_owned());
        let now = Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": "sessiond", "aud": "sessiond", "sub": "user-1", "sid": sid,
            "iat": now - 10, "exp": now + exp_in, "amr": ["pwd"], "jti": "jti-1",
        });
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

/// A local port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn config() -> Config {
    let base = format!("http://127.0.0.1:{}", closed_port());
    Config::new(&base, "a-verifier-key", "sessiond", "sessiond")
}

/// A verifier holding the signer's key whose feed was last heard `silent_for` ago.
fn verifier(signer: &Signer, config: Config, silent_for: Duration) -> Verifier {
    let keys = vec![(KID.to_owned(), signer.decoding.clone())];
    Verifier::offline(config, keys, silent_for)
}

#[tokio::test]
async fn a_good_token_passes_while_the_feed_is_fresh() {
    let signer = signer();
    let verifier = verifier(&signer, config(), Duration::ZERO);
    let claims = verifier.verify(&signer.token("sid-1", 60)).await.unwrap();
    assert_eq!(claims.sid, "sid-1");
    assert_eq!(claims.sub.as_deref(), Some("user-1"));
}

#[tokio::test]
async fn a_denied_session_is_refused_with_its_reason() {
    let signer = signer();
    let verifier = verifier(&signer, config(), Duration::ZERO);
    verifier.deny_session("sid-1", "logout");
    assert_eq!(
        verifier
            .verify(&signer.token("sid-1", 60))
            .await
            .unwrap_err(),
        VerifyError::SessionRevoked {
            reason: "logout".into()
        }
    );
    verifier.verify(&signer.token("sid-2", 60)).await.unwrap();
}

#[tokio::test]
async fn past_the_staleness_bound_every_check_fails_closed() {
    let signer = signer();
    let mut config = config();
    config.staleness_bound = Duration::from_secs(5);
    let verifier = verifier(&signer, config, Duration::from_secs(6));
    assert_eq!(
        verifier
            .verify(&signer.token("sid-1", 60))
            .await
            .unwrap_err(),
        VerifyError::FeedStale
    );
    // Expiry is still told apart: it needs no feed.
    assert!(matches!(
        verifier.verify(&signer.token("sid-1", -1)).await,
        Err(VerifyError::TokenExpired { .. })
    ));
}

#[tokio::test]
async fn the_introspection_fallback_fails_closed_when_sessiond_is_unreachable() {
    let signer = signer();
    let mut config = config();
    config.staleness_bound = Duration::from_secs(5);
    config.introspection_fallback = true;
    config.introspection_timeout = Duration::from_millis(500);
    let verifier = verifier(&signer, config, Duration::from_secs(6));
    let started = std::time::Instant::now();
    assert_eq!(
        verifier
            .verify(&signer.token("sid-1", 60))
            .await
            .unwrap_err(),
        VerifyError::FeedStale
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the timeout"
    );
    // A bad token is refused for what it is, without asking anyone.
    assert_eq!(
        verifier.verify("not.a.token").await.unwrap_err(),
        VerifyError::TokenInvalid
    );
}

#[cfg(feature = "tower")]
mod layer {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tower::ServiceExt as _;

    use super::*;
    use crate::Claims;
    use crate::layer::VerifyLayer;
    use tower_layer::Layer as _;

    /// Sends one request through the layer in front of a service that answers the sid of
    /// the claims it finds; the status, body and how often the inner service ran.
    async fn send(verifier: &Verifier, authorization: Option<&str>) -> (u16, String, usize) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let inner = tower::service_fn(move |request: http::Request<String>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                let claims = request.extensions().get::<Claims>().cloned();
                let sid = claims.map(|c| c.sid).unwrap_or_default();
                Ok::<_, Infallible>(http::Response::new(sid))
            }
        });
        let mut request = http::Request::builder().uri("/protected");
        if let Some(value) = authorization {
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let response = VerifyLayer::new(verifier.clone())
            .layer(inner)
            .oneshot(request.body(String::new()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.into_body(), calls.load(Ordering::SeqCst))
    }

    fn code(body: &str) -> String {
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        problem["code"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn the_layer_puts_the_claims_in_the_extensions() {
        let signer = signer();
        let verifier = verifier(&signer, config(), Duration::ZERO);
        let bearer = format!("Bearer {}", signer.token("sid-9", 60));
        assert_eq!(
            send(&verifier, Some(&bearer)).await,
            (200, "sid-9".to_owned(), 1)
        );
    }

    #[tokio::test]
    async fn the_layer_refuses_before_the_inner_service_runs() {
        let signer = signer();
        let verifier = verifier(&signer, config(), Duration::ZERO);
        verifier.deny_session("sid-revoked", "logout");
        let revoked = format!("Bearer {}", signer.token("sid-revoked", 60));
        let expired = format!("Bearer {}", signer.token("sid-1", -5));
        for (authorization, status, want) in [
            (None, 401, "TOKEN_NOT_PROVIDED"),
            (Some("Basic dXNlcjpwYXNz"), 401, "TOKEN_NOT_PROVIDED"),
            (Some("Bearer garbage"), 401, "TOKEN_INVALID"),
            (Some(expired.as_str()), 401, "TOKEN_EXPIRED"),
            (Some(revoked.as_str()), 401, "SESSION_REVOKED"),
        ] {
            let (got, body, calls) = send(&verifier, authorization).await;
            assert_eq!((got, code(&body), calls), (status, want.to_owned(), 0));
        }
    }

    #[tokio::test]
    async fn the_layer_answers_503_when_the_feed_is_stale() {
        let signer = signer();
        let mut config = config();
        config.staleness_bound = Duration::from_secs(1);
        let verifier = verifier(&signer, config, Duration::from_secs(2));
        let bearer = format!("Bearer {}", signer.token("sid-1", 60));
        let (status, body, calls) = send(&verifier, Some(&bearer)).await;
        assert_eq!(
            (status, code(&body), calls),
            (503, "REVOCATION_FEED_STALE".into(), 0)
        );
    }
}
