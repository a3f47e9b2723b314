//! Configuration values with a shape: parsed once, when the configuration is read, so
//! a bad value is refused at start under its key (figment and `toml` name the key of a
//! value that fails to deserialize) and the rest of the server holds only good ones.
//!
//! URLs may carry passwords: their `Debug` masks them, so a configuration printed with
//! `{:?}` never shows one; [`Config::masked`](super::Config::masked) does the same for
//! the TOML that `sessiond config` prints.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use url::Url;

/// Where sessiond keeps its data: `sqlite:<path>` (or `sqlite::memory:`) or
/// `postgres://…` / `postgresql://…`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DatabaseUrl {
    /// Kept as written: SQLite paths are not URLs (spaces, relative paths), and sqlx reads
    /// them itself.
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        match self {
            DatabaseUrl::Sqlite(url) | DatabaseUrl::Postgres(url) => url,
        }
    }

    pub fn masked(&self) -> Self {
        match self {
            DatabaseUrl::Sqlite(_) => self.clone(),
            DatabaseUrl::Postgres(url) => DatabaseUrl::Postgres(mask_url_password(url)),
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.starts_with("sqlite:") {
            return Ok(DatabaseUrl::Sqlite(text.to_owned()));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let url = Url::parse(text).map_err(|e| format!("is not a PostgreSQL URL ({e})"))?;
            if url.host_str().is_none_or(str::is_empty) && !has_host_parameter(&url) {
                return Err("names no host".to_owned());
            }
            return Ok(DatabaseUrl::Postgres(text.to_owned()));
        }
        Err("must start with sqlite:, postgres:// or postgresql://".to_owned())
    }
}

/// `postgres:///db?host=/run/postgresql` is a socket connection: the host is a parameter.
fn has_host_parameter(url: &Url) -> bool {
    url.query_pairs().any(|(key, _)| key == "host")
}

/// The shared Redis: `redis://[user:password@]host[:port][/db]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> Self {
        RedisUrl(mask_url_password(&self.0))
    }
}

impl FromStr for RedisUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.starts_with("rediss://") {
            return Err(
                "rediss:// (TLS) is not supported by this build: use redis://, over a private \
                 network or a TLS tunnel"
                    .to_owned(),
            );
        }
        if !text.starts_with("redis://") {
            return Err("must start with redis://".to_owned());
        }
        redis::Client::open(text).map_err(|e| format!("is not a Redis URL ({e})"))?;
        Ok(RedisUrl(text.to_owned()))
    }
}

/// The mail relay: `smtp://user:password@host:587?tls=required` (STARTTLS),
/// `smtps://…:465` (implicit TLS) or `smtp://host:25` (a plain local relay).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SmtpUrl(String);

impl SmtpUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> Self {
        SmtpUrl(mask_url_password(&self.0))
    }
}

impl FromStr for SmtpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let url = Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
        if !matches!(url.scheme(), "smtp" | "smtps") {
            return Err("must start with smtp:// or smtps://".to_owned());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("names no host".to_owned());
        }
        Ok(SmtpUrl(text.to_owned()))
    }
}

/// Where clients reach sessiond: `https://auth.example.com` (an http or https URL with
/// a host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HttpUrl(String);

impl HttpUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HttpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let url = Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err("must be an http:// or https:// URL with a host".to_owned());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or fragment".to_owned());
        }
        Ok(HttpUrl(text.trim_end_matches('/').to_owned()))
    }
}

impl From<HttpUrl> for String {
    fn from(url: HttpUrl) -> String {
        url.0
    }
}

/// A proxy whose forwarding headers are believed: one address (`127.0.0.1`) or a block
/// (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProxyNetwork(IpNet);

impl ProxyNetwork {
    pub fn network(self) -> IpNet {
        self.0
    }
}

impl FromStr for ProxyNetwork {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        text.parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .map(ProxyNetwork)
            .map_err(|_| format!("{text:?} is not an IP address or CIDR block"))
    }
}

/// The serde glue shared by every value above: parse from a string, print as one.
macro_rules! string_value {
    ($($ty:ty),*) => {$(
        impl TryFrom<String> for $ty {
            type Error = String;

            fn try_from(text: String) -> Result<Self, String> {
                text.parse()
            }
        }
    )*};
}
string_value!(DatabaseUrl, RedisUrl, SmtpUrl, ProxyNetwork, HttpUrl);

impl From<DatabaseUrl> for String {
    fn from(url: DatabaseUrl) -> String {
        url.as_str().to_owned()
    }
}

impl From<RedisUrl> for String {
    fn from(url: RedisUrl) -> String {
        url.0
    }
}

impl From<SmtpUrl> for String {
    fn from(url: SmtpUrl) -> String {
        url.0
    }
}

impl From<ProxyNetwork> for String {
    fn from(network: ProxyNetwork) -> String {
        network.0.to_string()
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked().as_str())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked().as_str())
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked().as_str())
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_sqlite_or_postgres() {
        assert!(matches!(
            "sqlite:./my data.db".parse(),
            Ok(DatabaseUrl::Sqlite(_))
        ));
        assert!(matches!(
            "postgres://app:pw@db:5432/sessiond".parse(),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(
            "postgresql:///sessiond?host=/run/postgresql"
                .parse::<DatabaseUrl>()
                .is_ok()
        );
        for bad in ["mysql://x", "postgres://", "postgres://[::1/db", ""] {
            assert!(bad.parse::<DatabaseUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn redis_and_smtp_urls_are_checked_for_their_scheme_and_shape() {
        assert!("redis://:secret@cache:6379/2".parse::<RedisUrl>().is_ok());
        for bad in [
            "localhost:6379",
            "rediss://cache:6379",
            "redis://cache:notaport",
        ] {
            assert!(bad.parse::<RedisUrl>().is_err(), "{bad}");
        }
        assert!("smtps://u:p@mail.example:465".parse::<SmtpUrl>().is_ok());
        for bad in ["http://mail", "smtp://", "mail.example:25"] {
            assert!(bad.parse::<SmtpUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn public_urls_are_http_with_a_host() {
        let url: HttpUrl = "https://auth.example.com/".parse().unwrap();
        assert_eq!(url.as_str(), "https://auth.example.com");
        for bad in ["auth.example.com", "ftp://x", "https://x/?a=b", "http://"] {
            assert!(bad.parse::<HttpUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn proxies_are_addresses_or_blocks() {
        let one: ProxyNetwork = "127.0.0.1".parse().unwrap();
        assert_eq!(String::from(one), "127.0.0.1/32");
        let block: ProxyNetwork = "10.0.0.0/8".parse().unwrap();
        assert!(
            block
                .network()
                .contains(&"10.1.2.3".parse::<IpAddr>().unwrap())
        );
        assert!("::1".parse::<ProxyNetwork>().is_ok());
        assert!("10.0.0.0/33".parse::<ProxyNetwork>().is_err());
        assert!("proxy.internal".parse::<ProxyNetwork>().is_err());
    }

    #[test]
    fn debug_never_shows_a_password() {
        let url: DatabaseUrl = "postgres://app:hunter2@db/sessiond".parse().unwrap();
        assert_eq!(format!("{url:?}"), "postgres://app:***@db/sessiond");
        let url: RedisUrl = "redis://:hunter2@cache:6379".parse().unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
        let url: SmtpUrl = "smtp://u:hunter2@mail:587".parse().unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
        // The real value is still what is used and serialized.
        assert_eq!(String::from(url), "smtp://u:hunter2@mail:587");
    }
}
