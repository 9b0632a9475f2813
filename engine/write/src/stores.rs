//! Where the engine's own stores live: the contact store, the privacy ledger and the
//! notification delivery table.
//!
//! Two places, chosen by `[stores] url`:
//! - **embedded** (the default without JetStream): SQLite files in `data_dir`
//!   (`contacts.db`, `privacy.db`; deliveries in the projections database);
//! - **PostgreSQL** (`stores.url = "postgres://…"`, or by default when the log is on JetStream
//!   and `database_url` is PostgreSQL): every replica of `serve` reads and writes the same
//!   tables, so nothing in `data_dir` is needed for correctness and replicas are stateless.
//!   Contact data keys are stored only wrapped by a key-encryption key read from files in
//!   `stores.kek_dir` (see [`crate::contacts::kek`]).
//!
//! `stores.url = "sqlite"` keeps the embedded files even on JetStream (a single-process
//! deployment, or one whose contacts are still in `contacts.db`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `[stores]`: where the contact store, the privacy ledger and the delivery table live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoresConfig {
    /// `postgres://…`: those stores in that database; `sqlite`: files in `data_dir`; unset:
    /// `database_url` when the log runs on JetStream and `database_url` is PostgreSQL, else
    /// the files in `data_dir`.
    pub url: Option<String>,
    /// Directory of the key-encryption-key files (`kek-<epoch>.key`, 64 hex digits each) that
    /// wrap contact data keys in PostgreSQL; default `<data_dir>/kek`. In production a secret
    /// volume shared by every process of the instance, writable by the one that rotates.
    pub kek_dir: Option<PathBuf>,
    /// Rotate the key-encryption key automatically once the current one is this many days
    /// old (0: only by `bianmin privacy rotate-kek`). Rotation is what makes erased keys left
    /// in PostgreSQL's dead tuples, WAL and backups undecryptable.
    pub kek_rotation_days: u32,
}

/// The resolved location of the stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoresLocation {
    /// SQLite files in the data directory.
    Embedded {
        /// The data directory.
        data_dir: PathBuf,
    },
    /// One PostgreSQL database shared by every process.
    Postgres {
        /// Its URL.
        url: String,
        /// The key-encryption-key directory.
        kek_dir: PathBuf,
    },
}

impl StoresConfig {
    /// Checks `url` names a backend.
    pub fn validate(&self) -> Result<(), String> {
        match self.url.as_deref() {
            None | Some("sqlite") => Ok(()),
            Some(url) if is_postgres(url) => Ok(()),
            Some(_) => Err("stores.url must be `sqlite` or a postgres:// URL".into()),
        }
    }
}

/// Whether `url` names a PostgreSQL database (either scheme spelling).
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl StoresLocation {
    /// The data directory of the embedded stores, if that is where they are.
    pub fn data_dir(&self) -> Option<&Path> {
        match self {
            StoresLocation::Embedded { data_dir } => Some(data_dir),
            StoresLocation::Postgres { .. } => None,
        }
    }
}

/// Why the PostgreSQL stores could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum StoresError {
    /// The database could not be reached.
    #[error("cannot connect to the stores database: {0}")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("cannot migrate the stores database: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// The migrations' own bookkeeping table: the projections run their own migration set on the
/// same database, and two sets must not share one `_sqlx_migrations` table.
const MIGRATIONS_TABLE: &str = "_bianmin_stores_migrations";

/// Connects to the stores database and applies its migrations (idempotent; concurrent
/// processes wait for each other on the migrator's advisory lock).
pub async fn connect_postgres(url: &str) -> Result<sqlx::PgPool, StoresError> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(StoresError::Connect)?;
    let mut migrator = sqlx::migrate!("./migrations/stores");
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator.run(&pool).await.map_err(StoresError::Migrate)?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_stores_url_is_refused() {
        let config = StoresConfig {
            url: Some("mysql://x".into()),
            ..StoresConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
