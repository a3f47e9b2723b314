//! The optional fallback while the feed is stale: sessiond itself is asked about the
//! token (`POST /v1/introspect`, RFC 7662). Only a clear answer counts; anything else —
//! sessiond unreachable, slow past the timeout, refusing the key — leaves the check
//! failing closed, exactly as without the fallback.

use serde::Deserialize;

use crate::{Claims, Shared, VerifyError};

/// The part of the RFC 7662 answer the fallback reads. sessiond answers a bare
/// `{"active": false}` for any unusable token; a reason, when a server gives one, is
/// passed on to the caller.
#[derive(Deserialize)]
struct Introspection {
    active: bool,
    sid: Option<String>,
    revoked_reason: Option<String>,
    reason: Option<String>,
}

/// The reason given for an inactive token when sessiond names none.
pub(crate) const INACTIVE: &str = "inactive";

/// Checks a token that passed the local signature and expiry checks with sessiond.
pub(crate) async fn ask(
    shared: &Shared,
    token: &str,
    claims: Claims,
) -> Result<Claims, VerifyError> {
    let url = format!("{}/v1/introspect", shared.config.base_url);
    let response = shared
        .http
        .post(url)
        .bearer_auth(&shared.config.api_key)
        .json(&serde_json::json!({ "token": token }))
        .timeout(shared.config.introspection_timeout)
        .send()
        .await;
    let answer = match response {
        Ok(r) if r.status() == reqwest::StatusCode::OK => r.json::<Introspection>().await,
        Ok(r) => {
            tracing::warn!(status = %r.status(), "sessiond refused the fallback introspection");
            return Err(VerifyError::FeedStale);
        }
        Err(e) => {
            tracing::debug!(error = %e, "fallback introspection failed");
            return Err(VerifyError::FeedStale);
        }
    };
    match answer {
        // An active answer about another session would be sessiond's bug, or not
        // sessiond: never accept it.
        Ok(found) if found.active && found.sid.as_deref() == Some(&claims.sid) => Ok(claims),
        Ok(found) if found.active => Err(VerifyError::TokenInvalid),
        Ok(found) => Err(VerifyError::SessionRevoked {
            reason: found
                .revoked_reason
                .or(found.reason)
                .unwrap_or_else(|| INACTIVE.to_owned()),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable fallback introspection answer");
            Err(VerifyError::FeedStale)
        }
    }
}
