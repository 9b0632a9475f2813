//! The embedded SQLite backend of the contact store: keys in the clear beside the
//! ciphertext, destroyed by `secure_delete` and a WAL checkpoint (see the module docs of
//! [`super`]).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use schemas::ContactRef;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

use super::{ContactError, PutOutcome, StoredContact, WriteOp, open_contact, seal_contact};

/// The embedded SQLite backend. Cheap to clone.
///
/// Writes go through one writer task with group commit: every put or erase queued while the
/// previous transaction was being written is applied in the next single transaction, so one
/// fsync covers many writes. Each caller awaits its own confirmation, sent only after that
/// transaction committed (`synchronous=FULL`): an acknowledged put is on disk. Reads use a
/// separate pool and never wait for the writer.
#[derive(Clone)]
pub(super) struct SqliteContacts {
    readers: SqlitePool,
    writes: mpsc::Sender<Write>,
}

/// One queued write and where its result goes.
struct Write {
    /// The contact reference (also the key id and the AEAD associated data).
    contact_ref: ContactRef,
    /// When the write was asked for (RFC 3339).
    now: String,
    /// What to write.
    op: WriteOp,
    /// Put: how it ended; erase: whether a key was destroyed; discard: whether anything was
    /// removed.
    reply: oneshot::Sender<Result<PutOutcome, ContactError>>,
}

/// Writes one writer transaction takes at most.
const WRITE_BATCH_MAX: usize = 512;
/// Writes waiting for the writer before callers wait for room.
const WRITE_QUEUE_LEN: usize = 4096;

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS contact_keys (
        key_id TEXT PRIMARY KEY,
        key BLOB,
        created_at TEXT NOT NULL,
        erased_at TEXT
    )",
    "CREATE TABLE IF NOT EXISTS resident_contacts (
        contact_ref TEXT PRIMARY KEY,
        key_id TEXT NOT NULL REFERENCES contact_keys(key_id),
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        created_at TEXT NOT NULL
    )",
];

impl SqliteContacts {
    /// Opens (creating if needed) the store in the SQLite file at `path`.
    pub(super) async fn open(path: &Path) -> Result<Self, ContactError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // Deleted content (an erased key, a discarded ciphertext) is overwritten with
            // zeros in the page that held it instead of left in free space.
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(5));
        // One connection: the only writer of this process.
        let writer = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Self::with_pools(writer, readers).await
    }

    /// A private in-memory store.
    pub(super) async fn in_memory() -> Result<Self, ContactError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        // One connection: every connection to `:memory:` is a separate database, so the
        // writer and the readers share it.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::with_pools(pool.clone(), pool).await
    }

    async fn with_pools(writer: SqlitePool, readers: SqlitePool) -> Result<Self, ContactError> {
        for statement in SCHEMA {
            sqlx::query(statement).execute(&writer).await?;
        }
        let (writes, queue) = mpsc::channel(WRITE_QUEUE_LEN);
        // The task ends when the last clone of the store is dropped.
        tokio::spawn(run_writer(writer, queue));
        Ok(SqliteContacts { readers, writes })
    }

    /// Queues a write and waits until the transaction holding it has committed.
    pub(super) async fn write(
        &self,
        contact_ref: &ContactRef,
        now: String,
        op: WriteOp,
    ) -> Result<PutOutcome, ContactError> {
        let (reply, confirmed) = oneshot::channel();
        let write = Write {
            contact_ref: contact_ref.clone(),
            now,
            op,
            reply,
        };
        let writer_gone = || ContactError::Unavailable("the contact writer stopped".into());
        self.writes.send(write).await.map_err(|_| writer_gone())?;
        confirmed.await.map_err(|_| writer_gone())?
    }

    /// The contact under `contact_ref`: `None` when never stored.
    pub(super) async fn get(
        &self,
        contact_ref: &ContactRef,
    ) -> Result<Option<StoredContact>, ContactError> {
        let row = sqlx::query(
            "SELECT c.nonce, c.ciphertext, k.key FROM contact_keys k
             LEFT JOIN resident_contacts c ON c.key_id = k.key_id WHERE k.key_id = ?",
        )
        .bind(contact_ref.0.to_string())
        .fetch_optional(&self.readers)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let Some(key): Option<Vec<u8>> = row.try_get("key")? else {
            return Ok(Some(StoredContact::Erased));
        };
        let (Some(nonce), Some(ciphertext)): (Option<Vec<u8>>, Option<Vec<u8>>) =
            (row.try_get("nonce")?, row.try_get("ciphertext")?)
        else {
            return Ok(None);
        };
        open_contact(contact_ref, &key, &nonce, &ciphertext).map(Some)
    }

    /// The readers' pool, for tests that plant rows.
    #[cfg(test)]
    pub(super) fn readers(&self) -> &SqlitePool {
        &self.readers
    }

    /// Checks the database answers.
    pub(super) async fn ping(&self) -> Result<(), ContactError> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    /// The raw stored ciphertext.
    pub(super) async fn raw_ciphertext(
        &self,
        contact_ref: &ContactRef,
    ) -> Result<Option<Vec<u8>>, ContactError> {
        Ok(
            sqlx::query_scalar("SELECT ciphertext FROM resident_contacts WHERE contact_ref = ?")
                .bind(contact_ref.0.to_string())
                .fetch_optional(&self.readers)
                .await?,
        )
    }

    /// The raw stored key.
    pub(super) async fn raw_key(
        &self,
        contact_ref: &ContactRef,
    ) -> Result<Option<Vec<u8>>, ContactError> {
        Ok(
            sqlx::query_scalar("SELECT key FROM contact_keys WHERE key_id = ?")
                .bind(contact_ref.0.to_string())
                .fetch_optional(&self.readers)
                .await?
                .flatten(),
        )
    }
}

/// The writer task: takes every queued write, applies them in one transaction, commits, then
/// confirms each. Ends when every sender is gone.
async fn run_writer(pool: SqlitePool, mut queue: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH_MAX);
    while queue.recv_many(&mut batch, WRITE_BATCH_MAX).await > 0 {
        let mut results = write_batch(&pool, &batch).await;
        if batch.iter().any(|w| w.op.destroys())
            && let Err(error) = checkpoint(&pool).await
        {
            // The erasure (or replacement) is committed but old pages may still be in the
            // WAL: the caller hears of it and writes again (idempotent, checkpoints again).
            for (write, result) in batch.iter().zip(results.iter_mut()) {
                if write.op.destroys() && result.is_ok() {
                    *result = Err(ContactError::Unavailable(format!(
                        "committed, but the store could not be checkpointed: {error}"
                    )));
                }
            }
        }
        for (write, result) in batch.drain(..).zip(results) {
            // A caller that stopped waiting does not stop the others.
            let _ = write.reply.send(result);
        }
    }
}

/// Copies every page of the WAL into the database file and truncates the WAL to zero bytes, so
/// the page images written before an erasure (holding the key) are gone from the WAL. Waits
/// for readers of older snapshots (busy timeout), retrying a few times.
async fn checkpoint(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    for _ in 0..20 {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(pool)
            .await?;
        if busy == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(sqlx::Error::Protocol(
        "wal_checkpoint(TRUNCATE) stayed busy".into(),
    ))
}

/// Applies `batch` in one transaction (see [`engine_log::sqlite_batch::write_batch`]).
async fn write_batch(pool: &SqlitePool, batch: &[Write]) -> Vec<Result<PutOutcome, ContactError>> {
    engine_log::sqlite_batch::write_batch(
        pool,
        batch,
        |tx, write| Box::pin(apply(tx, write)),
        ContactError::Unavailable,
    )
    .await
}

/// One write inside the batch transaction.
async fn apply(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    write: &Write,
) -> Result<PutOutcome, ContactError> {
    let id = write.contact_ref.0.to_string();
    let (plaintext, fresh_key, replace) = match &write.op {
        WriteOp::Erase => {
            sqlx::query("DELETE FROM resident_contacts WHERE contact_ref = ?")
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            let result = sqlx::query(
                "UPDATE contact_keys SET key = NULL, erased_at = ?
                 WHERE key_id = ? AND key IS NOT NULL",
            )
            .bind(&write.now)
            .bind(&id)
            .execute(&mut **tx)
            .await?;
            return Ok(if result.rows_affected() > 0 {
                PutOutcome::Stored
            } else {
                PutOutcome::Kept
            });
        }
        WriteOp::Discard => {
            sqlx::query("DELETE FROM resident_contacts WHERE contact_ref = ?")
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            // An erased reference keeps its tombstone.
            sqlx::query("DELETE FROM contact_keys WHERE key_id = ? AND key IS NOT NULL")
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            return Ok(PutOutcome::Stored);
        }
        WriteOp::Put {
            plaintext,
            fresh_key,
            replace,
        } => (plaintext, fresh_key, *replace),
    };
    // The key id is the reference itself, so concurrent first puts (from this or another
    // process) agree on one key: whichever insert wins, both read the winner's key back.
    sqlx::query(
        "INSERT INTO contact_keys (key_id, key, created_at) VALUES (?, ?, ?)
         ON CONFLICT(key_id) DO NOTHING",
    )
    .bind(&id)
    .bind(fresh_key.as_slice())
    .bind(&write.now)
    .execute(&mut **tx)
    .await?;
    let key: Option<Vec<u8>> = sqlx::query_scalar("SELECT key FROM contact_keys WHERE key_id = ?")
        .bind(&id)
        .fetch_one(&mut **tx)
        .await?;
    let Some(key_bytes) = key else {
        // Erased: erasure is final, nothing is stored.
        return Ok(PutOutcome::Erased);
    };
    if !replace {
        let stored: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM resident_contacts WHERE contact_ref = ?")
                .bind(&id)
                .fetch_optional(&mut **tx)
                .await?;
        if stored.is_some() {
            return Ok(PutOutcome::Kept);
        }
    }
    let (nonce, ciphertext) = seal_contact(&write.contact_ref, &key_bytes, plaintext)?;
    sqlx::query(
        "INSERT INTO resident_contacts (contact_ref, key_id, nonce, ciphertext, created_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(contact_ref) DO UPDATE SET nonce = excluded.nonce,
             ciphertext = excluded.ciphertext",
    )
    .bind(&id)
    .bind(&id)
    .bind(nonce.as_slice())
    .bind(ciphertext)
    .bind(&write.now)
    .execute(&mut **tx)
    .await?;
    Ok(PutOutcome::Stored)
}
