//! One module per console page (or group of pages about one thing).

pub mod config;
pub mod events;
pub mod keys;
pub mod overview;
pub mod sessions;
pub mod sign_in;
pub mod users;

use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ConsoleError;

/// Parses a page's query string; bad input is a console error page, never plain text.
pub fn query<T: DeserializeOwned + Default>(raw: Option<String>) -> Result<T, ConsoleError> {
    match raw.as_deref() {
        None | Some("") => Ok(T::default()),
        Some(raw) => serde_urlencoded::from_str(raw)
            .map_err(|e| ConsoleError::BadInput(format!("the address does not parse: {e}"))),
    }
}

/// A path id; anything that is not a UUID names nothing (404).
pub fn id(raw: &str) -> Result<Uuid, ConsoleError> {
    Uuid::parse_str(raw).map_err(|_| ConsoleError::NotFound)
}

/// An optional UUID filter: empty is absent, anything else must parse.
pub fn optional_uuid(field: &str, raw: Option<&str>) -> Result<Option<Uuid>, ConsoleError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => Uuid::parse_str(text)
            .map(Some)
            .map_err(|_| ConsoleError::BadInput(format!("{field} must be a UUID"))),
    }
}
