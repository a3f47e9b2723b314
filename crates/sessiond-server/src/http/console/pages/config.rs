//! The effective configuration, secrets masked.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use crate::AppState;
use crate::http::console::error::ConsoleResult;
use crate::http::console::guard::Signed;
use crate::http::console::layout::{self, Section};

pub async fn show(State(state): State<AppState>, signed: Signed) -> ConsoleResult<Response> {
    let body = html! {
        p {
            "What this instance runs with: defaults, the file, the environment and flags \
             merged. Secrets (keys, passwords in URLs, header values) are masked."
        }
        div class="table-wrap" {
            table class="config" {
                caption class="visually-hidden" { "Effective configuration" }
                thead { tr { th scope="col" { "Setting" } th scope="col" { "Value" } } }
                tbody {
                    @for (key, value) in &state.console.config {
                        tr { th scope="row" { code { (key) } } td { code { (value) } } }
                    }
                }
            }
        }
    };
    Ok(signed.answer(layout::page(
        Section::Config,
        "Configuration",
        &signed.csrf,
        body,
    )))
}
