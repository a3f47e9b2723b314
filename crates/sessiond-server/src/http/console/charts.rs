//! The overview's per-minute activity: sampled from this process's Prometheus counters
//! (logins, refreshes, failed logins, refresh-token reuse) once a minute into a ring of
//! the last hour, and drawn as inline SVG on the server (no script needed).
//!
//! Counters rather than events: refreshes are not stored as events by default
//! (`record_refresh_events`), and counting events by minute would scan the audit log.
//! So the charts show what this instance served since it started, not the cluster.

use std::collections::VecDeque;
use std::sync::Mutex;

use maud::{Markup, html};
use metrics_exporter_prometheus::PrometheusHandle;

/// Minutes kept.
pub const MINUTES: usize = 60;

/// The counters the overview charts, as totals since start (or per-minute deltas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub logins: u64,
    pub refreshes: u64,
    pub failed_logins: u64,
    pub reuse: u64,
}

impl Totals {
    fn minus(self, earlier: Totals) -> Totals {
        Totals {
            logins: self.logins.saturating_sub(earlier.logins),
            refreshes: self.refreshes.saturating_sub(earlier.refreshes),
            failed_logins: self.failed_logins.saturating_sub(earlier.failed_logins),
            reuse: self.reuse.saturating_sub(earlier.reuse),
        }
    }

    /// Sums the counters out of Prometheus text (every label set of each name).
    pub fn parse(text: &str) -> Totals {
        let mut totals = Totals::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            let value = value.max(0.0) as u64;
            match name {
                // Anonymous sessions are not logins.
                "sessiond_sessions_created_total" if !line.contains("method=\"anon\"") => {
                    totals.logins += value;
                }
                "sessiond_refreshes_total" => totals.refreshes += value,
                "sessiond_login_failures_total" => totals.failed_logins += value,
                "sessiond_refresh_reuse_detected_total" => totals.reuse += value,
                _ => {}
            }
        }
        totals
    }
}

/// The last hour, minute by minute.
pub struct Activity {
    inner: Mutex<Ring>,
}

struct Ring {
    /// Totals at the last sample.
    last: Totals,
    /// Per-minute deltas, oldest first.
    minutes: VecDeque<Totals>,
}

impl Activity {
    /// Starts counting from the counters as they are now.
    pub fn new(metrics: &PrometheusHandle) -> Self {
        Self {
            inner: Mutex::new(Ring {
                last: Totals::parse(&metrics.render()),
                minutes: VecDeque::with_capacity(MINUTES),
            }),
        }
    }

    /// Closes a minute (the background task calls this every 60 s).
    pub fn sample(&self, metrics: &PrometheusHandle) {
        let now = Totals::parse(&metrics.render());
        let mut ring = self.inner.lock().expect("activity lock");
        let delta = now.minus(ring.last);
        ring.last = now;
        if ring.minutes.len() == MINUTES {
            ring.minutes.pop_front();
        }
        ring.minutes.push_back(delta);
    }

    /// The closed minutes and the current, unfinished one last; at most [`MINUTES`].
    pub fn series(&self, metrics: &PrometheusHandle) -> (Vec<Totals>, Totals) {
        let now = Totals::parse(&metrics.render());
        let ring = self.inner.lock().expect("activity lock");
        let mut series: Vec<Totals> = ring.minutes.iter().copied().collect();
        series.push(now.minus(ring.last));
        let skip = series.len().saturating_sub(MINUTES);
        (series.split_off(skip), now)
    }
}

/// A bar chart of per-minute values, oldest left, with a text summary for screen readers
/// (the bars themselves are decoration to them).
pub fn bars(id: &str, title: &str, values: &[u64], class: &str) -> Markup {
    const W: usize = 600;
    const H: u64 = 80;
    let peak = values.iter().copied().max().unwrap_or(0);
    let total: u64 = values.iter().sum();
    let scale = peak.max(1);
    let slot = W / MINUTES;
    let offset = MINUTES.saturating_sub(values.len());
    let summary = format!(
        "{title}: {total} in the last {} minutes, at most {peak} in one minute.",
        values.len()
    );
    html! {
        figure class="chart" {
            figcaption id=(id) {
                span class="chart-title" { (title) }
                span class="chart-figures" { (total) " in " (values.len()) " min · peak " (peak) "/min" }
            }
            svg class=(format!("bars {class}")) viewBox=(format!("0 0 {W} {}", H + 2)) role="img"
                aria-labelledby=(id) preserveAspectRatio="none" {
                title { (summary) }
                line class="axis" x1="0" y1=(H + 1) x2=(W) y2=(H + 1) {}
                @for (i, v) in values.iter().enumerate() {
                    @let height = if *v == 0 { 0 } else { (v * H).div_ceil(scale).max(2) };
                    rect x=((offset + i) * slot + 1) y=(H - height) width=(slot - 2) height=(height) {
                        title { (v) " (" (values.len() - 1 - i) " min ago)" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_counters_across_labels_and_skips_anonymous_sessions() {
        let text = "# TYPE sessiond_sessions_created_total counter\n\
            sessiond_sessions_created_total{method=\"pwd\"} 3\n\
            sessiond_sessions_created_total{method=\"anon\"} 10\n\
            sessiond_sessions_created_total{method=\"otp\"} 2\n\
            sessiond_refreshes_total 7\n\
            sessiond_login_failures_total{method=\"pwd\",reason=\"wrong_password\"} 4\n\
            sessiond_refresh_reuse_detected_total 1\n\
            sessiond_refreshes_totally_else 99\n";
        assert_eq!(
            Totals::parse(text),
            Totals {
                logins: 5,
                refreshes: 7,
                failed_logins: 4,
                reuse: 1
            }
        );
    }

    #[test]
    fn bars_summarise_for_screen_readers() {
        let svg = bars("c", "Logins", &[0, 3, 1], "logins").into_string();
        assert!(svg.contains("Logins: 4 in the last 3 minutes, at most 3 in one minute."));
        assert_eq!(svg.matches("<rect").count(), 3);
    }
}
