//! Read models of Bianmin: request summaries, rates, worklists, rankings and the report-upward
//! ledger, kept in PostgreSQL or SQLite from the commit log, exactly once and rebuildable.
//!
//! # Layout
//! - [`db`]: one pool/transaction/row type over both databases.
//! - [`fold`]: the pure fold of a request's events into its state and summary row.
//! - [`write`]: applying commits to a projector's tables (live or shadow).
//! - [`query`]: the read side: rates, overdue, rankings, worklists, lists with cursors.
//! - [`http`]: the axum router over [`query`].
//! - [`metrics`]: Prometheus gauges (backlog, overdue, lag).
//!
//! Exactly once: [`Projections::apply`] writes read-model changes and the projector's
//! checkpoint in one transaction, after locking the checkpoint row (PostgreSQL
//! `SELECT ... FOR UPDATE`; SQLite `BEGIN IMMEDIATE`) and re-reading it, so concurrent
//! appliers of the same projector serialise and never apply a commit twice.

pub mod db;
pub mod fold;
pub mod http;
pub mod metrics;
pub mod query;
mod rebuild;
pub mod write;

use std::str::FromStr;

use chrono::{DateTime, Utc};
use schemas::LoggedCommit;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use crate::db::{Backend, Pool, Tx, Val};
pub use crate::write::{ASSESSMENT, PROJECTORS, REQUESTS};

/// Errors of the projections boundary.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The database URL is neither `postgres://` nor `sqlite:`.
    #[error("unsupported database url (expected postgres:// or sqlite:): {0}")]
    UnsupportedUrl(String),
    /// A database operation failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Running migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The projector name is not one of [`Projections::projector_names`].
    #[error("unknown projector {0:?}")]
    UnknownProjector(String),
    /// A batch was not in strictly ascending position order.
    #[error("batch positions not strictly ascending at position {0}")]
    OutOfOrder(u64),
    /// The commit source of a rebuild failed.
    #[error("commit source: {0}")]
    Source(String),
    /// A query parameter was invalid.
    #[error("bad query: {0}")]
    BadQuery(String),
    /// The query or path parameter `field` was missing its form or range.
    #[error("invalid parameter `{field}`: {reason}")]
    InvalidParam {
        /// The parameter's name.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Most commits a rebuild applies in one transaction (source batches are gathered up to it).
pub const REBUILD_BATCH: usize = 5_000;

/// Index renames of a swap (shadow name, live name) and index definitions built during it.
type ShadowIndexes = (Vec<(String, String)>, Vec<String>);

/// Lag of one projector behind the log head.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProjectorLag {
    /// Projector name.
    pub projector: String,
    /// Last applied position.
    pub position: u64,
    /// Commits not yet applied (`head - position`).
    pub events: u64,
    /// Seconds between `now` and the log time of the last applied commit, when behind; 0 when caught up.
    pub seconds: f64,
}

/// One handle over a read-model database.
#[derive(Debug, Clone)]
pub struct Projections {
    pub(crate) pool: Pool,
    /// Default weights and department tiers of the rankings ([`query::Assessment`]).
    pub(crate) assessment: std::sync::Arc<query::Assessment>,
}

impl Projections {
    /// Connects to `postgres://...` or `sqlite://path?mode=rwc` (also `sqlite::memory:`) and runs
    /// the migrations of that database kind.
    pub async fn connect(database_url: &str) -> Result<Projections, ProjectionError> {
        let pool = if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            // A bounded wait for a connection: while the server is down, reads (health, lag)
            // answer with an error within seconds instead of hanging.
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(std::time::Duration::from_secs(5))
                .connect(database_url)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Pool::Pg(pool)
        } else if database_url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(database_url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(30));
            let max = if database_url.contains(":memory:") {
                1
            } else {
                4
            };
            let pool = SqlitePoolOptions::new()
                .max_connections(max)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Pool::Lite(pool)
        } else {
            return Err(ProjectionError::UnsupportedUrl(database_url.to_owned()));
        };
        Ok(Projections {
            pool,
            assessment: Default::default(),
        })
    }

    /// Which database this handle talks to.
    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// The projectors this crate maintains (`requests`, `assessment`).
    pub fn projector_names() -> &'static [&'static str] {
        PROJECTORS
    }

    fn check(projector: &str) -> Result<&'static [&'static str], ProjectionError> {
        write::tables(projector)
            .ok_or_else(|| ProjectionError::UnknownProjector(projector.to_owned()))
    }

    /// Last applied log position of `projector` (0 before anything was applied).
    pub async fn checkpoint(&self, projector: &str) -> Result<u64, ProjectionError> {
        Self::check(projector)?;
        let rows = self
            .pool
            .fetch(
                "SELECT position FROM projection_checkpoints WHERE projector = $1",
                &[projector.into()],
            )
            .await?;
        Ok(match rows.first() {
            Some(r) => r.int(0)?.unwrap_or(0).max(0) as u64,
            None => 0,
        })
    }

    /// Opens a transaction holding the checkpoint row of `projector`, returning its position.
    async fn lock_checkpoint(&self, projector: &str) -> Result<(Tx, u64), ProjectionError> {
        let mut tx = self.pool.begin().await?;
        let cp = Self::lock_checkpoint_in(&mut tx, projector).await?;
        Ok((tx, cp))
    }

    /// Locks the checkpoint row of `projector` in `tx` (creating it at 0), returning its position.
    async fn lock_checkpoint_in(tx: &mut Tx, projector: &str) -> Result<u64, ProjectionError> {
        tx.exec(
            "INSERT INTO projection_checkpoints (projector, position) VALUES ($1, 0) ON CONFLICT (projector) DO NOTHING",
            &[projector.into()],
        )
        .await?;
        let sql = match tx.backend() {
            Backend::Postgres => {
                "SELECT position FROM projection_checkpoints WHERE projector = $1 FOR UPDATE"
            }
            Backend::Sqlite => "SELECT position FROM projection_checkpoints WHERE projector = $1",
        };
        let rows = tx.fetch(sql, &[projector.into()]).await?;
        Ok(rows
            .first()
            .map(|r| r.int(0))
            .transpose()?
            .flatten()
            .unwrap_or(0)
            .max(0) as u64)
    }

    async fn set_checkpoint(
        tx: &mut Tx,
        projector: &str,
        position: u64,
        recorded_at: Option<DateTime<Utc>>,
    ) -> Result<(), ProjectionError> {
        let now = match tx.backend() {
            Backend::Postgres => "now()",
            Backend::Sqlite => "strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now')",
        };
        tx.exec(
            &format!(
                "UPDATE projection_checkpoints SET position = $2, \
                 last_recorded_at = COALESCE($3, last_recorded_at), updated_at = {now} WHERE projector = $1"
            ),
            &[projector.into(), (position as i64).into(), Val::Ts(recorded_at)],
        )
        .await?;
        Ok(())
    }

    /// Applies a batch of commits (positions ascending, all > checkpoint) to every read model
    /// of `projector` and advances its checkpoint, all in ONE transaction. Commits at or below
    /// the checkpoint (re-read after locking it) are skipped, so each is applied exactly once.
    pub async fn apply(
        &self,
        projector: &str,
        batch: &[LoggedCommit],
    ) -> Result<(), ProjectionError> {
        Self::check(projector)?;
        for pair in batch.windows(2) {
            if pair[1].position <= pair[0].position {
                return Err(ProjectionError::OutOfOrder(pair[1].position));
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        let (mut tx, cp) = self.lock_checkpoint(projector).await?;
        let fresh: Vec<&LoggedCommit> = batch.iter().filter(|c| c.position > cp).collect();
        let Some(last) = fresh.last() else {
            return Ok(());
        };
        let (position, recorded) = (last.position, last_recorded_at(last));
        write::apply_commits(&mut tx, projector, "", &fresh).await?;
        Self::set_checkpoint(&mut tx, projector, position, recorded).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lag of every projector behind the log head `head`, with seconds measured against `now`.
    pub async fn lag(
        &self,
        head: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<ProjectorLag>, ProjectionError> {
        let mut out = Vec::new();
        for p in PROJECTORS {
            let rows = self
                .pool
                .fetch(
                    "SELECT position, last_recorded_at FROM projection_checkpoints WHERE projector = $1",
                    &[(*p).into()],
                )
                .await?;
            let (position, recorded) = match rows.first() {
                Some(r) => (r.int(0)?.unwrap_or(0).max(0) as u64, r.ts(1)?),
                None => (0, None),
            };
            let events = head.saturating_sub(position);
            let seconds = match (events, recorded) {
                (0, _) | (_, None) => 0.0,
                (_, Some(t)) => ((now - t).num_milliseconds().max(0) as f64) / 1000.0,
            };
            out.push(ProjectorLag {
                projector: (*p).to_owned(),
                position,
                events,
                seconds,
            });
        }
        Ok(out)
    }
}

fn last_recorded_at(c: &LoggedCommit) -> Option<DateTime<Utc>> {
    c.commit.events.last().map(|e| e.recorded_at)
}
