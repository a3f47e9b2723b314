//! The overview: activity of the last hour, reuse detections, instance and storage health.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use crate::AppState;
use crate::http::console::charts::bars;
use crate::http::console::error::ConsoleResult;
use crate::http::console::guard::Signed;
use crate::http::console::layout::{self, Section};

fn uptime(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min {} s", secs % 60)
    }
}

pub async fn show(State(state): State<AppState>, signed: Signed) -> ConsoleResult<Response> {
    let (series, totals) = state.console.activity.series(&state.metrics);
    let health = state.service.storage_health().await;
    // Counting may fail while storage is down: the overview still shows its health.
    let counts = state.service.counts().await.ok();
    let pick = |f: fn(&crate::http::console::charts::Totals) -> u64| -> Vec<u64> {
        series.iter().map(f).collect()
    };
    let redis = state.redis.as_ref().map(|r| r.status());
    let cache = state.service.cache_is_usable();
    let body = html! {
        p class="lede" {
            "This instance, minute by minute over the last hour (sampled from its own \
             metrics since it started " (uptime(state.console.started.elapsed().as_secs())) " ago)."
        }
        section aria-labelledby="now" {
            h2 id="now" { "Now" }
            dl class="cards" {
                div {
                    dt { "Live sessions" }
                    dd { @match counts { Some((_, live)) => (live), None => "?" } }
                }
                div {
                    dt { "Users" }
                    dd { @match counts { Some((users, _)) => a href="/admin/users" { (users) }, None => "?" } }
                }
            }
        }
        section aria-labelledby="activity" {
            h2 id="activity" { "Activity" }
            div class="charts" {
                (bars("chart-logins", "Logins per minute", &pick(|t| t.logins), "logins"))
                (bars("chart-refreshes", "Refreshes per minute", &pick(|t| t.refreshes), "refreshes"))
                (bars("chart-failed", "Failed logins per minute", &pick(|t| t.failed_logins), "failed"))
            }
        }
        section aria-labelledby="totals" {
            h2 id="totals" { "Since start" }
            dl class="cards" {
                div { dt { "Logins" } dd { (totals.logins) } }
                div { dt { "Refreshes" } dd { (totals.refreshes) } }
                div { dt { "Failed logins" } dd { (totals.failed_logins) } }
                div class=[(totals.reuse > 0).then_some("alarm")] {
                    dt { "Refresh-token reuse detected" }
                    dd { (totals.reuse) }
                }
            }
            p {
                "Reuse means a rotated refresh token came back: the session was ended as \
                 stolen. See "
                a href="/admin/events?type=session.ended" { "ended sessions" }
                " for which (reason " code { "refresh_token_reused" } ")."
            }
        }
        section aria-labelledby="health" {
            h2 id="health" { "Health" }
            table {
                caption class="visually-hidden" { "Instance and storage health" }
                tbody {
                    tr { th scope="row" { "Version" } td { (env!("CARGO_PKG_VERSION")) } }
                    tr { th scope="row" { "Uptime" } td { (uptime(state.console.started.elapsed().as_secs())) } }
                    tr {
                        th scope="row" { "Storage" }
                        td {
                            @if health.ok {
                                span class="badge ok" { "up" }
                            } @else {
                                span class="badge bad" { "down" }
                            }
                            " " (health.backend) ", answered in "
                            (format!("{:.1} ms", health.latency.as_secs_f64() * 1000.0))
                        }
                    }
                    tr {
                        th scope="row" { "Redis" }
                        td {
                            @match redis {
                                None => span class="muted" { "not configured (rate limits counted per instance)" },
                                Some(status) => span class=(if status == "ok" { "badge ok" } else { "badge bad" }) { (status) },
                            }
                        }
                    }
                    tr {
                        th scope="row" { "Session cache" }
                        td {
                            @if cache { span class="badge ok" { "in use" } }
                            @else { span class="badge warn" { "waiting for change notifications" } }
                        }
                    }
                }
            }
        }
    };
    Ok(signed.answer(layout::page(
        Section::Overview,
        "Overview",
        &signed.csrf,
        body,
    )))
}
