//! The contact store: residents' personal data, encrypted, outside the event log.
//!
//! Events carry only a [`ContactRef`]. The contact itself (name, phone, ID number, address)
//! is stored here as JSON sealed with ChaCha20-Poly1305 under a random key of its own. Keys
//! live in their own table (`contact_keys`), so erasing a resident's data is deleting the
//! key (crypto-shredding): the ciphertext left behind can no longer be read by anyone, and
//! the event log, which is append-only, never needed to hold the data in the first place.
//!
//! Contact data never goes into events, logs or metrics: errors here name the reference,
//! never the content.
//!
//! Every intake writes here before its `receive` is recorded, so writes use group commit
//! (see [`ContactStore`]): one transaction and one fsync for all the writes queued at once,
//! instead of one each.
//!
//! Erasure destroys, it does not only hide: every connection runs with `secure_delete=ON`
//! (freed cells and pages are overwritten with zeros), an erase deletes the ciphertext as well
//! as the key, and the transaction holding an erase is followed by
//! `wal_checkpoint(TRUNCATE)` before the erase is confirmed, so neither the database file nor
//! its write-ahead log keeps a copy of the key or the ciphertext once `erase` returns.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, ChaCha20Poly1305, Key, Nonce};
use engine_core::Clock;
use schemas::ContactRef;
use schemas::intake::ResidentContact;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

/// What the store holds for a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredContact {
    /// The decrypted contact.
    Present(ResidentContact),
    /// The key was erased: the data is gone for good.
    Erased,
}

/// Why the contact store failed. Never carries contact data.
#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    /// The database could not be reached or refused the statement.
    #[error("contact store unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be decrypted or decoded (tampering or corruption).
    #[error("contact record {0} is corrupt")]
    Corrupt(uuid::Uuid),
}

impl From<sqlx::Error> for ContactError {
    fn from(error: sqlx::Error) -> Self {
        ContactError::Unavailable(error.to_string())
    }
}

/// The encrypted contact store (embedded SQLite). Cheap to clone.
///
/// Writes go through one writer task with group commit: every put or erase queued while the
/// previous transaction was being written is applied in the next single transaction, so one
/// fsync covers many writes. Each caller awaits its own confirmation, sent only after that
/// transaction committed (`synchronous=FULL`): an acknowledged put is on disk. Reads use a
/// separate pool and never wait for the writer.
#[derive(Clone)]
pub struct ContactStore {
    readers: SqlitePool,
    writes: mpsc::Sender<Write>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ContactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactStore").finish_non_exhaustive()
    }
}

/// Writes one writer transaction takes at most.
const WRITE_BATCH_MAX: usize = 512;
/// Writes waiting for the writer before callers wait for room.
const WRITE_QUEUE_LEN: usize = 4096;

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

enum WriteOp {
    /// Store the serialised contact, under a fresh key unless the reference has one.
    Put {
        plaintext: Vec<u8>,
        fresh_key: Vec<u8>,
        /// Whether a contact already stored under the reference is replaced (a correction)
        /// or kept (an intake: a second intake never changes a stored contact).
        replace: bool,
    },
    /// Destroy the key and the ciphertext, keeping a tombstone (erasure is final).
    Erase,
    /// Remove a contact stored for a request that was then not recorded, leaving no
    /// tombstone: the reference may be used again.
    Discard,
}

impl WriteOp {
    /// Whether the store must be checkpointed before this write is confirmed.
    fn destroys(&self) -> bool {
        matches!(self, WriteOp::Erase | WriteOp::Discard)
    }
}

/// How a put ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The contact is now stored (new, or replacing the previous one).
    Stored,
    /// A contact was already stored under the reference and was kept.
    Kept,
    /// The reference was erased: nothing is stored, ever again.
    Erased,
}

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

impl ContactStore {
    /// Opens (creating if needed) the store in the SQLite file at `path`.
    pub async fn open_sqlite(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, ContactError> {
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
        Self::with_pools(writer, readers, clock).await
    }

    /// A private in-memory store (for tests and throwaway runs).
    pub async fn in_memory(clock: Arc<dyn Clock>) -> Result<Self, ContactError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        // One connection: every connection to `:memory:` is a separate database, so the
        // writer and the readers share it.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::with_pools(pool.clone(), pool, clock).await
    }

    async fn with_pools(
        writer: SqlitePool,
        readers: SqlitePool,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ContactError> {
        for statement in SCHEMA {
            sqlx::query(statement).execute(&writer).await?;
        }
        let (writes, queue) = mpsc::channel(WRITE_QUEUE_LEN);
        // The task ends when the last clone of the store is dropped.
        tokio::spawn(run_writer(writer, queue));
        Ok(ContactStore {
            readers,
            writes,
            clock,
        })
    }

    /// Queues a write and waits until the transaction holding it has committed.
    async fn write(
        &self,
        contact_ref: &ContactRef,
        op: WriteOp,
    ) -> Result<PutOutcome, ContactError> {
        let (reply, confirmed) = oneshot::channel();
        let write = Write {
            contact_ref: contact_ref.clone(),
            now: self.clock.now().to_rfc3339(),
            op,
            reply,
        };
        let writer_gone = || ContactError::Unavailable("the contact writer stopped".into());
        self.writes.send(write).await.map_err(|_| writer_gone())?;
        confirmed.await.map_err(|_| writer_gone())?
    }

    /// Stores `contact` under `contact_ref` unless a contact is stored there already, which is
    /// kept: intake calls this, and a retried or duplicate intake never changes the contact a
    /// request was received with. A reference whose key was erased stays erased (erasure is
    /// final). Returns once the write is durable.
    pub async fn put(
        &self,
        contact_ref: &ContactRef,
        contact: &ResidentContact,
    ) -> Result<PutOutcome, ContactError> {
        self.put_op(contact_ref, contact, false).await
    }

    /// Stores `contact` under `contact_ref`, replacing what was there: an explicit correction.
    /// An erased reference stays erased.
    pub async fn replace(
        &self,
        contact_ref: &ContactRef,
        contact: &ResidentContact,
    ) -> Result<PutOutcome, ContactError> {
        self.put_op(contact_ref, contact, true).await
    }

    async fn put_op(
        &self,
        contact_ref: &ContactRef,
        contact: &ResidentContact,
        replace: bool,
    ) -> Result<PutOutcome, ContactError> {
        let plaintext =
            serde_json::to_vec(contact).map_err(|_| ContactError::Corrupt(contact_ref.0))?;
        let fresh_key = ChaCha20Poly1305::generate_key(&mut OsRng).to_vec();
        self.write(
            contact_ref,
            WriteOp::Put {
                plaintext,
                fresh_key,
                replace,
            },
        )
        .await
    }

    /// Removes the contact under `contact_ref` without a tombstone, for a put whose request
    /// was then not recorded. Returns once nothing of it is left on disk.
    pub async fn discard(&self, contact_ref: &ContactRef) -> Result<(), ContactError> {
        self.write(contact_ref, WriteOp::Discard).await.map(|_| ())
    }

    /// The contact under `contact_ref`: `None` when never stored.
    pub async fn get(
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
        let corrupt = || ContactError::Corrupt(contact_ref.0);
        let Some(key_bytes): Option<Vec<u8>> = row.try_get("key")? else {
            return Ok(Some(StoredContact::Erased));
        };
        let (Some(nonce), Some(ciphertext)): (Option<Vec<u8>>, Option<Vec<u8>>) =
            (row.try_get("nonce")?, row.try_get("ciphertext")?)
        else {
            return Ok(None);
        };
        if key_bytes.len() != 32 || nonce.len() != 12 {
            return Err(corrupt());
        }
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key_bytes));
        let plaintext = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: contact_ref.0.as_bytes(),
                },
            )
            .map_err(|_| corrupt())?;
        let contact = serde_json::from_slice(&plaintext).map_err(|_| corrupt())?;
        Ok(Some(StoredContact::Present(contact)))
    }

    /// Erases the contact by destroying its key and its ciphertext; returns whether there was
    /// a key to destroy. Returns once the erasure is durable and the store is checkpointed:
    /// no file of the store (database, `-wal`, `-shm`) holds the key or the ciphertext any
    /// more. Erasing again is harmless and checkpoints again.
    pub async fn erase(&self, contact_ref: &ContactRef) -> Result<bool, ContactError> {
        Ok(self.write(contact_ref, WriteOp::Erase).await? == PutOutcome::Stored)
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), ContactError> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    /// The raw stored ciphertext, for checks that no plaintext reaches the disk.
    #[doc(hidden)]
    pub async fn raw_ciphertext(
        &self,
        contact_ref: &ContactRef,
    ) -> Result<Option<Vec<u8>>, ContactError> {
        let row = sqlx::query("SELECT ciphertext FROM resident_contacts WHERE contact_ref = ?")
            .bind(contact_ref.0.to_string())
            .fetch_optional(&self.readers)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("ciphertext")?),
            None => None,
        })
    }

    /// The raw stored key, for checks that an erased key is gone from every file.
    #[doc(hidden)]
    pub async fn raw_key(&self, contact_ref: &ContactRef) -> Result<Option<Vec<u8>>, ContactError> {
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
            // The erasure is committed but old pages may still be in the WAL: the caller
            // hears of it and erases again (idempotent, checkpoints again).
            for (write, result) in batch.iter().zip(results.iter_mut()) {
                if write.op.destroys() && result.is_ok() {
                    *result = Err(ContactError::Unavailable(format!(
                        "erased, but the store could not be checkpointed: {error}"
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

/// Applies `batch` in one transaction (see [`crate::sqlite_batch::write_batch`]).
async fn write_batch(pool: &SqlitePool, batch: &[Write]) -> Vec<Result<PutOutcome, ContactError>> {
    crate::sqlite_batch::write_batch(
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
    let corrupt = || ContactError::Corrupt(write.contact_ref.0);
    if key_bytes.len() != 32 {
        return Err(corrupt());
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key_bytes));
    let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: write.contact_ref.0.as_bytes(),
            },
        )
        .map_err(|_| corrupt())?;
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

#[cfg(test)]
mod tests;
