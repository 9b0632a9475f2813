//! The event log in an embedded SQLite file: one row per commit, position = row id.
//!
//! Durability: WAL journal with `synchronous=FULL`, so an acknowledged append survives a
//! machine crash. One writer task owns the only writer connection (SQLite allows one writer
//! at a time anyway; a single connection avoids `SQLITE_BUSY` between our own writers) and
//! uses group commit: every append queued while the previous transaction was being written
//! goes into the next single transaction, so one fsync covers many appends. Each append is
//! checked on its own inside that transaction (commit-id idempotency, the expected
//! position), sees the appends before it in the batch, and runs under its own savepoint: a
//! conflict or failure of one append never fails the others. Callers are answered only after
//! the commit. Readers use a separate small pool and see committed rows only.
//!
//! Command bindings ([`super::bindings`]) live in the table `command_bindings` of the same
//! database and are checked and written inside the append's own savepoint: a binding exists
//! exactly when its commit does.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use schemas::{Commit, RequestId};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{Appended, Binding, LogError};

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader connections: enough for the command path and a projector at once.
const READERS_MAX: u32 = 4;
/// How often `follow` looks for rows written by another process (appends through this
/// handle wake it at once).
const FOLLOW_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Rows `follow` reads per query.
const FOLLOW_BATCH_LEN: usize = 256;

/// The schema; every statement is idempotent, so opening an existing file is a no-op.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS commits (
        position INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id TEXT NOT NULL,
        commit_id TEXT NOT NULL UNIQUE,
        payload BLOB NOT NULL,
        recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )",
    "CREATE INDEX IF NOT EXISTS commits_by_request ON commits (request_id, position)",
    "CREATE TABLE IF NOT EXISTS command_bindings (
        command_id TEXT PRIMARY KEY,
        request_id TEXT NOT NULL,
        digest TEXT NOT NULL
    ) WITHOUT ROWID",
];

/// Appends one writer transaction takes at most.
const APPEND_BATCH_MAX: usize = 512;
/// Appends waiting for the writer before callers wait for room.
const APPEND_QUEUE_LEN: usize = 4096;

/// One queued append and where its answer goes.
#[derive(Debug)]
struct PendingAppend {
    commit_id: uuid::Uuid,
    request_id: RequestId,
    payload: Vec<u8>,
    expected: u64,
    /// The binding to check and write with the commit, if any.
    binding: Option<Binding>,
    reply: oneshot::Sender<Result<Appended, LogError>>,
}

/// The SQLite event log. Cheap to clone: clones share the pools, the writer and the append
/// signal.
#[derive(Debug, Clone)]
pub struct SqliteLog {
    /// The queue of the writer task, which owns the only writer connection.
    appends: mpsc::Sender<PendingAppend>,
    /// Read-only queries.
    readers: SqlitePool,
    /// Signalled after every local append, to wake followers without waiting for a poll.
    appended: Arc<Notify>,
    /// The file, for `describe`.
    path: String,
}

fn unavailable(error: sqlx::Error) -> LogError {
    LogError::Unavailable(error.to_string())
}

impl SqliteLog {
    /// Opens (creating if missing) the file and its schema.
    pub async fn open(path: &Path) -> Result<SqliteLog, LogError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        for statement in SCHEMA {
            sqlx::query(*statement)
                .execute(&writer)
                .await
                .map_err(unavailable)?;
        }
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS_MAX)
            .connect_with(options.read_only(true))
            .await
            .map_err(unavailable)?;
        let appended = Arc::new(Notify::new());
        let (appends, queue) = mpsc::channel(APPEND_QUEUE_LEN);
        // The task ends when the last clone of the log is dropped.
        tokio::spawn(run_writer(writer, queue, appended.clone()));
        Ok(SqliteLog {
            appends,
            readers,
            appended,
            path: path.display().to_string(),
        })
    }

    /// See [`super::EventLog::append_bound`] (`binding` is `None` for an unbound append).
    /// Returns once the transaction holding the append is durable.
    pub(super) async fn append(
        &self,
        commit: &Commit,
        expected: u64,
        binding: Option<&Binding>,
    ) -> Result<Appended, LogError> {
        let (reply, answer) = oneshot::channel();
        let pending = PendingAppend {
            commit_id: commit.commit_id,
            request_id: commit.request_id,
            payload: commit.to_bytes(),
            expected,
            binding: binding.cloned(),
            reply,
        };
        let writer_gone = || LogError::Unavailable("the SQLite log writer stopped".into());
        self.appends
            .send(pending)
            .await
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// See [`super::EventLog::binding`].
    pub(super) async fn binding(
        &self,
        command_id: uuid::Uuid,
    ) -> Result<Option<Binding>, LogError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT request_id, digest FROM command_bindings WHERE command_id = ?")
                .bind(command_id.to_string())
                .fetch_optional(&self.readers)
                .await
                .map_err(unavailable)?;
        row.map(stored_binding).transpose()
    }

    /// See [`super::EventLog::load_raw`].
    pub(super) async fn load_raw(
        &self,
        request_id: RequestId,
    ) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let rows = sqlx::query(
            "SELECT position, payload FROM commits WHERE request_id = ? ORDER BY position",
        )
        .bind(request_id.to_string())
        .fetch_all(&self.readers)
        .await
        .map_err(unavailable)?;
        Ok(rows.iter().map(row_to_raw).collect())
    }

    /// See [`super::EventLog::head`].
    pub(super) async fn head(&self, request_id: RequestId) -> Result<u64, LogError> {
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(position) FROM commits WHERE request_id = ?")
                .bind(request_id.to_string())
                .fetch_one(&self.readers)
                .await
                .map_err(unavailable)?;
        Ok(last.map_or(0, |p| p as u64))
    }

    /// Up to `max` raw records with position >= `from`.
    pub(super) async fn read_raw_from(
        &self,
        from: u64,
        max: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let rows = sqlx::query(
            "SELECT position, payload FROM commits WHERE position >= ? ORDER BY position LIMIT ?",
        )
        .bind(i64::try_from(from).unwrap_or(i64::MAX))
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(&self.readers)
        .await
        .map_err(unavailable)?;
        Ok(rows.iter().map(row_to_raw).collect())
    }

    /// See [`super::EventLog::follow`].
    pub(super) fn follow(&self, from: u64) -> BoxStream<'static, Result<(u64, Vec<u8>), LogError>> {
        struct State {
            log: SqliteLog,
            next: u64,
            buffered: std::vec::IntoIter<(u64, Vec<u8>)>,
        }
        let state = State {
            log: self.clone(),
            next: from,
            buffered: Vec::new().into_iter(),
        };
        futures::stream::unfold(state, |mut state| async move {
            loop {
                if let Some((position, bytes)) = state.buffered.next() {
                    // A corrupt record is reported and skipped, never stalls the stream.
                    state.next = position + 1;
                    return Some((Ok((position, bytes)), state));
                }
                // Register interest before reading, so an append between the read and the
                // wait still wakes us.
                let appended = state.log.appended.clone();
                let notified = appended.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                match state.log.read_raw_from(state.next, FOLLOW_BATCH_LEN).await {
                    Ok(batch) if !batch.is_empty() => state.buffered = batch.into_iter(),
                    Ok(_) => {
                        let _ = tokio::time::timeout(FOLLOW_POLL_INTERVAL, notified).await;
                    }
                    Err(error) => {
                        tokio::time::sleep(FOLLOW_POLL_INTERVAL).await;
                        return Some((Err(error), state));
                    }
                }
            }
        })
        .boxed()
    }

    /// See [`super::EventLog::last_position`].
    pub(super) async fn last_position(&self) -> Result<u64, LogError> {
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM commits")
            .fetch_one(&self.readers)
            .await
            .map_err(unavailable)?;
        Ok(last.unwrap_or(0) as u64)
    }

    /// See [`super::EventLog::ping`].
    pub(super) async fn ping(&self) -> Result<(), LogError> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// See [`super::EventLog::describe`].
    pub(super) fn describe(&self) -> String {
        format!(
            "SQLite event log at {}: WAL journal, synchronous=FULL; acknowledged appends are \
             fsynced and survive a machine crash; single node only",
            self.path
        )
    }
}

/// The writer task: takes every queued append, writes them in one transaction, commits,
/// wakes the followers, then answers each. Ends when every sender is gone.
async fn run_writer(
    writer: SqlitePool,
    mut queue: mpsc::Receiver<PendingAppend>,
    appended: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(APPEND_BATCH_MAX);
    while queue.recv_many(&mut batch, APPEND_BATCH_MAX).await > 0 {
        let results = append_batch(&writer, &batch).await;
        if results.iter().any(|r| {
            matches!(
                r,
                Ok(Appended {
                    duplicate: false,
                    ..
                })
            )
        }) {
            appended.notify_waiters();
        }
        for (pending, result) in batch.drain(..).zip(results) {
            // A caller that stopped waiting does not stop the others.
            let _ = pending.reply.send(result);
        }
    }
}

/// Writes `batch` in one transaction; one result per append, in order (see
/// [`crate::sqlite_batch::write_batch`]). When the transaction itself cannot be begun or
/// committed, every append fails (nothing of the batch is written).
async fn append_batch(
    writer: &SqlitePool,
    batch: &[PendingAppend],
) -> Vec<Result<Appended, LogError>> {
    crate::sqlite_batch::write_batch(
        writer,
        batch,
        |tx, pending| Box::pin(append_one(tx, pending)),
        LogError::Unavailable,
    )
    .await
}

/// One append inside the batch transaction: the binding, idempotency by commit id, then the
/// expected position, then the insert (and the binding's).
async fn append_one(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    pending: &PendingAppend,
) -> Result<Appended, LogError> {
    let request_id = pending.request_id.to_string();
    let commit_id = pending.commit_id.to_string();
    if let Some(binding) = &pending.binding {
        check_binding(tx, pending, binding).await?;
    }
    let existing: Option<(i64, String)> =
        sqlx::query_as("SELECT position, request_id FROM commits WHERE commit_id = ?")
            .bind(&commit_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(unavailable)?;
    if let Some((position, stored_request)) = existing {
        // A bound append of an id an unbound commit of another request holds is refused.
        if pending.binding.is_some() && stored_request != request_id {
            return Err(id_bound(pending, &stored_request));
        }
        return Ok(Appended {
            position: position as u64,
            duplicate: true,
        });
    }

    let actual: Option<i64> =
        sqlx::query_scalar("SELECT MAX(position) FROM commits WHERE request_id = ?")
            .bind(&request_id)
            .fetch_one(&mut **tx)
            .await
            .map_err(unavailable)?;
    let actual = actual.map(|p| p as u64);
    if actual.unwrap_or(0) != pending.expected {
        return Err(LogError::Conflict {
            request_id: pending.request_id,
            expected: pending.expected,
            actual,
        });
    }

    let position: i64 = sqlx::query_scalar(
        "INSERT INTO commits (request_id, commit_id, payload) VALUES (?, ?, ?) RETURNING position",
    )
    .bind(&request_id)
    .bind(&commit_id)
    .bind(pending.payload.as_slice())
    .fetch_one(&mut **tx)
    .await
    .map_err(unavailable)?;
    let position = position as u64;
    if position <= pending.expected {
        return Err(LogError::Refused(format!(
            "position {position} does not follow {}",
            pending.expected
        )));
    }
    if let Some(binding) = &pending.binding {
        sqlx::query(
            "INSERT INTO command_bindings (command_id, request_id, digest) VALUES (?, ?, ?)",
        )
        .bind(&commit_id)
        .bind(&request_id)
        .bind(&binding.digest)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    }
    Ok(Appended {
        position,
        duplicate: false,
    })
}

/// Fails when the pending append's id is bound to another request or command.
async fn check_binding(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    pending: &PendingAppend,
    binding: &Binding,
) -> Result<(), LogError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT request_id, digest FROM command_bindings WHERE command_id = ?")
            .bind(pending.commit_id.to_string())
            .fetch_optional(&mut **tx)
            .await
            .map_err(unavailable)?;
    match row.map(stored_binding).transpose()? {
        Some(bound) if bound != *binding => Err(LogError::IdBound {
            command_id: pending.commit_id,
            bound_to: bound.request_id,
        }),
        _ => Ok(()),
    }
}

/// The id of `pending` is held by an unbound commit of `stored_request`.
fn id_bound(pending: &PendingAppend, stored_request: &str) -> LogError {
    match stored_request.parse() {
        Ok(bound_to) => LogError::IdBound {
            command_id: pending.commit_id,
            bound_to,
        },
        Err(_) => LogError::Refused(format!(
            "stored request id `{stored_request}` is not a UUID"
        )),
    }
}

/// A `command_bindings` row as a binding.
fn stored_binding((request_id, digest): (String, String)) -> Result<Binding, LogError> {
    let request_id = request_id.parse().map_err(|_| {
        LogError::Refused(format!(
            "stored binding names request `{request_id}`, not a UUID"
        ))
    })?;
    Ok(Binding { request_id, digest })
}

fn row_to_raw(row: &sqlx::sqlite::SqliteRow) -> (u64, Vec<u8>) {
    let position: i64 = row.get(0);
    let payload: Vec<u8> = row.get(1);
    (position as u64, payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::event::ProgressNoted;
    use schemas::{Actor, CommandKind, Event, EventEnvelope, Role};
    use uuid::Uuid;

    fn commit(request: u128, commit: u128) -> Commit {
        let request_id = Uuid::from_u128(request);
        let commit_id = Uuid::from_u128(commit);
        let at = "2025-03-03T08:00:00Z".parse().unwrap();
        let envelope = EventEnvelope {
            event_id: Uuid::from_u128(commit + 1_000_000),
            request_id,
            version: 1,
            schema_version: 0,
            occurred_at: at,
            recorded_at: at,
            actor: Actor {
                id: "w-1".into(),
                role: Role::StationWorker,
                unit: None,
            },
            causation_id: commit_id,
            correlation_id: commit_id,
            prev_hash: schemas::envelope::GENESIS_HASH.to_string(),
            hash: String::new(),
            event: Event::ProgressNoted(ProgressNoted {
                note: "note".into(),
            }),
        }
        .seal();
        Commit {
            commit_id,
            request_id,
            command: CommandKind::NoteProgress,
            events: vec![envelope],
            signature: None,
        }
    }

    #[tokio::test]
    async fn a_burst_of_appends_is_checked_one_by_one_and_all_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let log = SqliteLog::open(&path).await.unwrap();
        // 200 new requests, plus two racers on request 1 and a retried commit of request 2,
        // all queued at once so they share writer transactions.
        let mut commits: Vec<(Commit, u64)> = (1..=200).map(|r| (commit(r, r), 0)).collect();
        commits.push((commit(1, 5_001), 0));
        commits.push((commit(2, 2), 0));
        let results = futures::future::join_all(
            commits
                .iter()
                .map(|(c, expected)| log.append(c, *expected, None)),
        )
        .await;

        let first = results[0].as_ref().unwrap();
        assert!(!first.duplicate);
        assert!(matches!(
            &results[200],
            Err(LogError::Conflict { expected: 0, actual: Some(p), .. }) if *p == first.position
        ));
        let original = results[1].as_ref().unwrap();
        let retried = results[201].as_ref().unwrap();
        assert!(retried.duplicate);
        assert_eq!(retried.position, original.position);
        let mut positions: Vec<u64> = results[..200]
            .iter()
            .map(|r| r.as_ref().unwrap().position)
            .collect();
        positions.sort_unstable();
        positions.dedup();
        assert_eq!(positions.len(), 200);

        drop(log);
        let reopened = SqliteLog::open(&path).await.unwrap();
        assert_eq!(reopened.read_raw_from(1, 1_000).await.unwrap().len(), 200);
        let loaded = reopened.load_raw(Uuid::from_u128(1)).await.unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].0, first.position);
    }
}
