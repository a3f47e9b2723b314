//! The signing keys: which signs, which only verify, and rotation.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::query;
use super::users::Empty;
use crate::AppState;
use crate::http::console::error::{ConsoleError, ConsoleResult};
use crate::http::console::guard::{Post, Signed};
use crate::http::console::layout::{self, Section, action, when};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct KeysQuery {
    rotated: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> ConsoleResult<Response> {
    let q: KeysQuery = query(raw)?;
    let keys = state.service.signing_keys().await?;
    let now = state.service.now();
    let body = html! {
        (layout::notice(q.rotated.as_ref().map(|_| "A new key is published; it signs in two minutes, once every instance has it.")))
        p {
            "Tokens are signed with Ed25519 and verified with the keys at "
            a href="/.well-known/jwks.json" { code { "/.well-known/jwks.json" } } ". "
            "A rotated key is published before it signs; retired keys keep verifying until \
             the tokens they signed have expired."
        }
        div class="table-wrap" {
            table {
                caption { "Signing keys, newest first" }
                thead { tr { th scope="col" { "Key id" } th scope="col" { "Signs from" } th scope="col" { "Retired" } th scope="col" { "State" } } }
                tbody {
                    @for k in &keys {
                        tr {
                            td { code { (k.kid) } }
                            td { (when(k.created_at)) }
                            td { @match k.retired_at { Some(at) => (when(at)), None => span class="muted" { "—" } } }
                            td {
                                @if k.retired_at.is_some_and(|r| r <= now) { span class="badge" { "retired (verifies its tokens)" } }
                                @else if k.created_at > now { span class="badge warn" { "published, not signing yet" } }
                                @else { span class="badge ok" { "signing" } }
                            }
                        }
                    }
                }
            }
        }
        div class="actions" {
            (action("/admin/keys/rotate", &signed.csrf, "Rotate signing key", true, Some("Publish a new signing key now? It signs in two minutes.")))
        }
    };
    Ok(signed.answer(layout::page(
        Section::Keys,
        "Signing keys",
        &signed.csrf,
        body,
    )))
}

pub async fn rotate(
    State(state): State<AppState>,
    Post { signed, .. }: Post<Empty>,
) -> ConsoleResult<Response> {
    state
        .service
        .rotate_signing_key()
        .await
        .map_err(|e| ConsoleError::Unavailable(e.to_string()))?;
    Ok(signed.redirect("/admin/keys?rotated=1"))
}
