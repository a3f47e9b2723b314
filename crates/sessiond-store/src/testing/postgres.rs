//! Test support: a fresh, empty PostgreSQL database per test.
//!
//! The server is named by an *admin* URL in `TEST_POSTGRES_URL` (a user allowed to
//! `CREATE DATABASE`; default [`DEFAULT_ADMIN_URL`]). [`fresh_database`] creates
//! `sessiond_test_<unix seconds>_<random>` and drops it (`WITH (FORCE)`) when the
//! returned guard is dropped; databases that a crashed run left behind are dropped by
//! the first call of a later run once they are an hour old.
//!
//! When PostgreSQL is not available the tests skip rather than fail, unless CI demands
//! it:
//!
//! - `TEST_POSTGRES=skip`: skip, saying so on stderr;
//! - server unreachable and `CI` unset: skip, saying so on stderr;
//! - server unreachable and `CI` set: panic, so the run fails loudly.
//!
//! Skipping means the helpers return `None`; a test returns early on it:
//!
//! ```ignore
//! let Some(db) = sessiond_store::testing::postgres::fresh_database().await else {
//!     return;
//! };
//! ```

use std::io::Write as _;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};

use super::OwnedStore;
use crate::{PostgresOptions, PostgresStore, Store};

/// The admin URL used when `TEST_POSTGRES_URL` is unset.
pub const DEFAULT_ADMIN_URL: &str = "postgres://root@127.0.0.1:5432/test";
/// Names the admin URL.
pub const URL_VAR: &str = "TEST_POSTGRES_URL";
/// `skip` turns the PostgreSQL tests off.
pub const SWITCH_VAR: &str = "TEST_POSTGRES";

const PREFIX: &str = "sessiond_test_";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Test databases older than this are leftovers of a crashed run.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// The admin URL: `TEST_POSTGRES_URL`, or [`DEFAULT_ADMIN_URL`].
pub fn admin_url() -> String {
    std::env::var(URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_owned())
}

/// A database created for one test; dropped (with any connections still open to it)
/// when this guard is dropped.
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for the database, with the admin URL's user, host and parameters.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop may run inside (or outside) a runtime, and must not need it: a thread of
        // its own with its own small runtime does the async work.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = connect_admin(&admin_url).await?;
                drop_database(&mut admin, &name).await?;
                let _ = admin.close().await;
                Ok(())
            })
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => say(&format!(
                "warning: could not drop test database {}: {e}",
                self.name
            )),
            Err(_) => say(&format!(
                "warning: dropping test database {} panicked",
                self.name
            )),
        }
    }
}

/// Creates a fresh, empty database, or returns `None` (having said why on stderr) when
/// PostgreSQL tests are to be skipped. Panics when the server is unreachable and `CI`
/// is set, or when it is reachable but the database cannot be created.
pub async fn fresh_database() -> Option<TestDatabase> {
    let admin_url = admin_url();
    let shown = redacted(&admin_url);
    let mut admin = admin_connection(&admin_url).await?;

    static SWEPT: AtomicBool = AtomicBool::new(false);
    if !SWEPT.swap(true, Ordering::SeqCst) {
        drop_stale_databases(&mut admin).await;
    }

    let name = new_name();
    if let Err(e) = admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
    {
        panic!("cannot create test database {name} at {shown}: {e}");
    }
    let _ = admin.close().await;
    Some(TestDatabase {
        url: with_database(&admin_url, &name),
        name,
        admin_url,
    })
}

/// Whether the PostgreSQL tests run here: the one probe every suite asks, answered by
/// connecting once per test process (the skip is announced on stderr; under `CI` an
/// unreachable server panics, as in [`fresh_database`]).
pub async fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    if let Some(known) = AVAILABLE.get() {
        return *known;
    }
    let found = match admin_connection(&admin_url()).await {
        Some(admin) => {
            let _ = admin.close().await;
            true
        }
        None => false,
    };
    *AVAILABLE.get_or_init(|| found)
}

/// A connection to the admin database, or `None` (having said why) when the PostgreSQL
/// tests are to be skipped.
async fn admin_connection(admin_url: &str) -> Option<PgConnection> {
    let shown = redacted(admin_url);
    if std::env::var(SWITCH_VAR).is_ok_and(|v| v.trim().eq_ignore_ascii_case("skip")) {
        say(&format!(
            "skipped: PostgreSQL tests are off ({SWITCH_VAR}=skip); would use {shown}"
        ));
        return None;
    }

    // Once one test found the server unreachable, the others need not wait for it too.
    static UNREACHABLE: OnceLock<String> = OnceLock::new();
    let reason = match UNREACHABLE.get() {
        Some(reason) => Err(reason.clone()),
        None => connect_admin(admin_url).await,
    };
    match reason {
        Ok(admin) => Some(admin),
        Err(reason) => {
            let _ = UNREACHABLE.set(reason.clone());
            if in_ci() {
                panic!(
                    "PostgreSQL not reachable at {shown}: {reason}\n\
                     CI is set, so the PostgreSQL tests fail rather than skip \
                     (set {URL_VAR} to the server, or {SWITCH_VAR}=skip to skip them)"
                );
            }
            say(&format!(
                "skipped: PostgreSQL not reachable at {shown} ({reason}); \
                 set {URL_VAR} to run the PostgreSQL tests"
            ));
            None
        }
    }
}

/// A [`PostgresStore`] on a fresh database, migrated, with `options`; `None` when the
/// PostgreSQL tests are skipped (see [`fresh_database`]).
pub async fn fresh_store(options: PostgresOptions) -> Option<TestStore> {
    let database = fresh_database().await?;
    let store = PostgresStore::connect(database.url(), options)
        .await
        .unwrap_or_else(|e| panic!("connect to test database {}: {e}", database.name()));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate test database {}: {e}", database.name()));
    Some(OwnedStore::new(store, database))
}

/// A [`PostgresStore`] that owns its test database: the store closes first, then the
/// database is dropped.
pub type TestStore = OwnedStore<PostgresStore, TestDatabase>;

impl TestStore {
    pub fn database(&self) -> &TestDatabase {
        self.guard()
    }
}

async fn connect_admin(url: &str) -> Result<PgConnection, String> {
    let options = PgConnectOptions::from_str(url).map_err(|e| format!("bad URL: {e}"))?;
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
    }
}

async fn drop_database(admin: &mut PgConnection, name: &str) -> Result<(), String> {
    admin
        .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Best effort: drops `sessiond_test_*` databases whose name says they are older than
/// [`STALE_AFTER`], so a crashed run does not leave them forever. Younger ones may
/// belong to a run in progress and are left alone.
async fn drop_stale_databases(admin: &mut PgConnection) {
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
    )
    .bind(PREFIX)
    .fetch_all(&mut *admin)
    .await
    else {
        return;
    };
    let cutoff = unix_seconds().saturating_sub(STALE_AFTER.as_secs());
    for name in names {
        let created = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|created| created < cutoff) {
            let _ = drop_database(admin, &name).await;
        }
    }
}

fn new_name() -> String {
    // The random tail of a v7 UUID (its head is the clock, which the name has already).
    let random = uuid::Uuid::now_v7().simple().to_string();
    format!("{PREFIX}{}_{}", unix_seconds(), &random[16..])
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim();
        !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
    })
}

/// The URL with its database replaced by `name`, keeping user, host and parameters.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{name}", &base[..path]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    let Some(authority) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let end = url[authority..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority + i);
    match url[authority..end].rfind('@') {
        Some(at) => {
            let userinfo = &url[authority..authority + at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    format!("{}{user}:***{}", &url[..authority], &url[authority + at..])
                }
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// Writes a line straight to stderr: the test harness captures `eprintln!`, but a
/// skipped test should be visible in a normal run.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://root@127.0.0.1:5432/test", "x"),
            "postgres://root@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@db/test?sslmode=disable", "x"),
            "postgresql://u:p@db/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@db:5433", "x"),
            "postgres://u@db:5433/x"
        );
        assert_eq!(
            with_database("postgres:///test?host=/run/postgresql", "x"),
            "postgres:///x?host=/run/postgresql"
        );
    }

    #[test]
    fn redacted_hides_the_password_only() {
        assert_eq!(
            redacted("postgres://u:secret@db:5432/test"),
            "postgres://u:***@db:5432/test"
        );
        assert_eq!(
            redacted("postgres://root@127.0.0.1:5432/test"),
            "postgres://root@127.0.0.1:5432/test"
        );
        assert_eq!(redacted("postgres:///test"), "postgres:///test");
    }
}
