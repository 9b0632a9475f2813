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
pub mod write;

use std::future::Future;
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
        Ok(Projections { pool })
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

    /// Rebuilds `projector` from position 0 into shadow tables (`<table>_rebuild`) and swaps
    /// them in, in one transaction, without stopping reads: [`Projections::rebuild_projectors`]
    /// for one projector. Returns the position the swapped tables are at.
    pub async fn rebuild<F, Fut, E>(
        &self,
        projector: &str,
        head: u64,
        source: F,
        progress: impl Fn(u64, u64),
    ) -> Result<u64, ProjectionError>
    where
        F: FnMut(u64) -> Fut,
        Fut: Future<Output = Result<Vec<LoggedCommit>, E>>,
        E: std::fmt::Display,
    {
        let rebuilt = self
            .rebuild_projectors(&[projector], head, source, progress)
            .await?;
        Ok(rebuilt.first().map_or(0, |(_, position)| *position))
    }

    /// Rebuilds every projector of `projectors` (each once, in the order given) from position 0
    /// into shadow tables (`<table>_rebuild`) in ONE pass over the source, and swaps them all
    /// in, in one transaction, without stopping reads.
    ///
    /// `source(from)` returns the commits at positions `>= from` in ascending order (a batch;
    /// empty when there are no more). Each gathering of up to [`REBUILD_BATCH`] commits is read
    /// once and applied to every projector's shadow (on PostgreSQL in one transaction per
    /// projector, run concurrently; on SQLite in one transaction), while the next gathering is
    /// read. `head` is the log head for progress; `progress(done, head)` is called after every
    /// gathering. The live projectors may keep applying meanwhile: the swap transaction locks
    /// their checkpoints (in the order given), catches the shadows up to the furthest of them,
    /// swaps, and never moves a checkpoint backwards. Returns, per projector, the position its
    /// swapped tables are at.
    pub async fn rebuild_projectors<F, Fut, E>(
        &self,
        projectors: &[&str],
        head: u64,
        mut source: F,
        progress: impl Fn(u64, u64),
    ) -> Result<Vec<(&'static str, u64)>, ProjectionError>
    where
        F: FnMut(u64) -> Fut,
        Fut: Future<Output = Result<Vec<LoggedCommit>, E>>,
        E: std::fmt::Display,
    {
        let mut names: Vec<&'static str> = Vec::new();
        for projector in projectors {
            Self::check(projector)?;
            let name = PROJECTORS
                .iter()
                .copied()
                .find(|p| p == projector)
                .ok_or_else(|| ProjectionError::UnknownProjector((*projector).to_owned()))?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut tables: Vec<&'static str> = Vec::new();
        for name in &names {
            tables.extend_from_slice(Self::check(name)?);
        }
        self.create_shadow(&tables).await?;
        // The next gathering is read from the source while the current one is written.
        let mut pos = 0u64;
        let mut current = gather(&mut source, pos).await?;
        while let Some(last) = current.commits.last().map(|c| c.position) {
            let write = self.write_shadows(&names, &current.commits);
            let read = async {
                if current.ended {
                    Ok(Gathered::default())
                } else {
                    gather(&mut source, last).await
                }
            };
            let (written, next) = tokio::join!(write, read);
            written?;
            pos = last;
            progress(pos, head.max(pos));
            current = next?;
        }
        let (renames, late) = self.index_shadow(&tables).await?;
        // Swap: lock every live checkpoint, catch the shadows up to the furthest, rename.
        let mut tx = self.pool.begin().await?;
        let mut live = Vec::with_capacity(names.len());
        for name in &names {
            live.push(Self::lock_checkpoint_in(&mut tx, name).await?);
        }
        let furthest = live.iter().copied().max().unwrap_or(0);
        let mut last_recorded = None;
        while pos < furthest {
            let batch = source(pos + 1)
                .await
                .map_err(|e| ProjectionError::Source(e.to_string()))?;
            let fresh: Vec<&LoggedCommit> = batch.iter().filter(|c| c.position > pos).collect();
            let Some(last) = fresh.last() else { break };
            let last_pos = last.position;
            last_recorded = last_recorded_at(last);
            for name in &names {
                write::apply_commits(&mut tx, name, "_rebuild", &fresh).await?;
            }
            pos = last_pos;
        }
        let mut index_sql: Vec<String> = Vec::new();
        for t in &tables {
            if tx.backend() == Backend::Sqlite {
                for r in tx
                    .fetch(
                        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL",
                        &[(*t).into()],
                    )
                    .await?
                {
                    if let Some(sql) = r.text(0)? {
                        index_sql.push(sql);
                    }
                }
            }
            tx.exec(&format!("DROP TABLE {t}"), &[]).await?;
            tx.exec(&format!("ALTER TABLE {t}_rebuild RENAME TO {t}"), &[])
                .await?;
        }
        for sql in index_sql {
            tx.exec(&sql, &[]).await?;
        }
        for (shadow, live) in renames {
            tx.exec(&format!("ALTER INDEX {shadow} RENAME TO {live}"), &[])
                .await?;
        }
        for sql in late {
            tx.exec(&sql, &[]).await?;
        }
        let mut rebuilt = Vec::with_capacity(names.len());
        for (name, live) in names.iter().zip(live) {
            if pos > live {
                Self::set_checkpoint(&mut tx, name, pos, last_recorded).await?;
            }
            rebuilt.push((*name, pos.max(live)));
        }
        tx.commit().await?;
        progress(pos, head.max(pos));
        Ok(rebuilt)
    }

    /// Applies one gathering of a rebuild to the shadow tables of every projector of `names`:
    /// on PostgreSQL one transaction per projector, all at once; on SQLite (one writer at a
    /// time) one transaction for all of them.
    async fn write_shadows(
        &self,
        names: &[&'static str],
        commits: &[LoggedCommit],
    ) -> Result<(), ProjectionError> {
        let fresh: Vec<&LoggedCommit> = commits.iter().collect();
        match self.backend() {
            Backend::Postgres => {
                let writes = names.iter().map(|name| {
                    let fresh = &fresh;
                    async move {
                        let mut tx = self.pool.begin().await?;
                        write::apply_commits(&mut tx, name, "_rebuild", fresh).await?;
                        tx.commit().await?;
                        Ok::<(), ProjectionError>(())
                    }
                });
                futures::future::try_join_all(writes).await?;
            }
            Backend::Sqlite => {
                let mut tx = self.pool.begin().await?;
                for name in names {
                    write::apply_commits(&mut tx, name, "_rebuild", &fresh).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// PostgreSQL: builds on each shadow table the secondary indexes of its live table, under
    /// shadow names, and returns the renames (shadow name → live name, the primary key's
    /// included) the swap makes once the live table is dropped. SQLite: nothing (the swap
    /// re-creates the indexes from the live table's definitions).
    /// Definitions it cannot rewrite come back to be built during the swap.
    async fn index_shadow(&self, tables: &[&str]) -> Result<ShadowIndexes, ProjectionError> {
        let mut renames = Vec::new();
        let mut late = Vec::new();
        if self.backend() != Backend::Postgres {
            return Ok((renames, late));
        }
        let mut tx = self.pool.begin().await?;
        for t in tables {
            let sql = "SELECT i.relname::text, pg_get_indexdef(x.indexrelid), x.indisprimary \
                       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
                       WHERE x.indrelid = $1::text::regclass ORDER BY i.relname";
            let live = tx.fetch(sql, &[(*t).into()]).await?;
            let shadow = tx.fetch(sql, &[format!("{t}_rebuild").into()]).await?;
            let shadow_pk = shadow
                .iter()
                .filter(|r| r.bool(2).ok().flatten() == Some(true))
                .find_map(|r| r.text(0).ok().flatten());
            for (i, r) in live.iter().enumerate() {
                let (Some(name), Some(def)) = (r.text(0)?, r.text(1)?) else {
                    continue;
                };
                if r.bool(2)? == Some(true) {
                    if let Some(pk) = &shadow_pk {
                        renames.push((pk.clone(), name));
                    }
                    continue;
                }
                let parts = def.find(" ON ").zip(def.find(" USING "));
                let Some((head, using)) = parts
                    .and_then(|(on, using)| Some((def[..on].strip_suffix(name.as_str())?, using)))
                else {
                    // A definition this cannot rewrite: built as is during the swap.
                    late.push(def);
                    continue;
                };
                let shadow_name = format!("{t}_rebuild_ix{i}");
                tx.exec(
                    &format!("{head}{shadow_name} ON {t}_rebuild{}", &def[using..]),
                    &[],
                )
                .await?;
                renames.push((shadow_name, name));
            }
        }
        tx.commit().await?;
        Ok((renames, late))
    }

    async fn create_shadow(&self, tables: &[&str]) -> Result<(), ProjectionError> {
        let mut tx = self.pool.begin().await?;
        for t in tables {
            tx.exec(&format!("DROP TABLE IF EXISTS {t}_rebuild"), &[])
                .await?;
            match tx.backend() {
                Backend::Postgres => {
                    // Only the primary key now (upserts need it); the other indexes are built
                    // once the bulk of the rows is in (`index_shadow`), not row by row.
                    tx.exec(
                        &format!(
                            "CREATE TABLE {t}_rebuild (LIKE {t} INCLUDING ALL EXCLUDING INDEXES)"
                        ),
                        &[],
                    )
                    .await?;
                    let pk = tx
                        .fetch(
                            "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
                             WHERE conrelid = $1::text::regclass AND contype = 'p'",
                            &[(*t).into()],
                        )
                        .await?;
                    if let Some(def) = pk.first().map(|r| r.text(0)).transpose()?.flatten() {
                        tx.exec(&format!("ALTER TABLE {t}_rebuild ADD {def}"), &[])
                            .await?;
                    }
                }
                Backend::Sqlite => {
                    let rows = tx
                        .fetch(
                            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = $1",
                            &[(*t).into()],
                        )
                        .await?;
                    let sql = rows
                        .first()
                        .map(|r| r.text(0))
                        .transpose()?
                        .flatten()
                        .unwrap_or_default();
                    let Some(open) = sql.find('(') else {
                        return Err(ProjectionError::Db(sqlx::Error::Protocol(format!(
                            "no definition of {t}"
                        ))));
                    };
                    tx.exec(&format!("CREATE TABLE {t}_rebuild {}", &sql[open..]), &[])
                        .await?;
                }
            }
        }
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

/// Commits gathered from a rebuild source for one transaction.
#[derive(Default)]
struct Gathered {
    /// Ascending, all above the position gathering started from.
    commits: Vec<LoggedCommit>,
    /// The source returned nothing new: this is the last gathering.
    ended: bool,
}

/// Reads source batches from `after + 1` until [`REBUILD_BATCH`] commits are gathered or the
/// source has nothing more.
async fn gather<F, Fut, E>(source: &mut F, after: u64) -> Result<Gathered, ProjectionError>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Vec<LoggedCommit>, E>>,
    E: std::fmt::Display,
{
    let mut out = Gathered::default();
    let mut next = after;
    while out.commits.len() < REBUILD_BATCH {
        let batch = source(next + 1)
            .await
            .map_err(|e| ProjectionError::Source(e.to_string()))?;
        let before = out.commits.len();
        out.commits
            .extend(batch.into_iter().filter(|c| c.position > next));
        match out.commits.last() {
            Some(c) if out.commits.len() > before => next = c.position,
            _ => {
                out.ended = true;
                break;
            }
        }
    }
    Ok(out)
}
