//! The page shell: head, skip link, navigation, sign-out. Every page is one of these,
//! with no inline script or style (the CSP forbids both).

use axum::response::Html;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::assets;

/// The sections in the navigation, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Users,
    Events,
    Keys,
    Config,
}

const NAV: [(Section, &str, &str); 5] = [
    (Section::Overview, "/admin", "Overview"),
    (Section::Users, "/admin/users", "Users"),
    (Section::Events, "/admin/events", "Events"),
    (Section::Keys, "/admin/keys", "Signing keys"),
    (Section::Config, "/admin/config", "Configuration"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="no-referrer";
            title { (title) " · sessiond console" }
            link rel="stylesheet" href=(assets::css_url());
            link rel="icon" href="data:,";
            script src=(assets::js_url()) defer {}
        }
    }
}

/// A page without navigation: sign-in, and errors (which may be seen signed out).
pub fn bare(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body class="bare" {
                    main id="main" { (body) }
                }
            }
        }
        .into_string(),
    )
}

/// A console page for a signed-in operator; `csrf` goes into the sign-out form.
pub fn page(section: Section, title: &str, csrf: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    a class="skip" href="#main" { "Skip to content" }
                    header class="top" {
                        a class="brand" href="/admin" { "sessiond" span { " console" } }
                        nav aria-label="Console sections" {
                            ul {
                                @for (s, href, label) in NAV {
                                    li {
                                        @if s == section {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form method="post" action="/admin/sign-out" class="sign-out" {
                            (csrf_field(csrf))
                            button type="submit" { "Sign out" }
                        }
                    }
                    main id="main" tabindex="-1" {
                        h1 { (title) }
                        (body)
                    }
                }
            }
        }
        .into_string(),
    )
}

/// The hidden CSRF field every console form carries.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A one-button POST form (an action on the page), with its CSRF field.
pub fn action(url: &str, csrf: &str, label: &str, danger: bool, confirm: Option<&str>) -> Markup {
    html! {
        form method="post" action=(url) class="inline" data-confirm=[confirm] {
            (csrf_field(csrf))
            button type="submit" class=[danger.then_some("danger")] { (label) }
        }
    }
}

/// A notice shown after an action (from a fixed list: nothing from the URL is echoed).
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p class="notice" role="status" { (text) }
        }
    }
}

/// A date as the console shows it: UTC, to the second.
pub fn when(at: chrono::DateTime<chrono::Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S").to_string()) " UTC" }
    }
}

/// `—` for a missing value.
pub fn or_dash(value: Option<&str>) -> Markup {
    match value {
        Some(v) if !v.is_empty() => html! { (v) },
        _ => html! { span class="muted" { (PreEscaped("&mdash;")) } },
    }
}
