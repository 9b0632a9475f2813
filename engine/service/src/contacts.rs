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
    /// Put: always `true`; erase: whether a key was destroyed.
    reply: oneshot::Sender<Result<bool, ContactError>>,
}

enum WriteOp {
    /// Store the serialised contact, under a fresh key unless the reference has one.
    Put {
        plaintext: Vec<u8>,
        fresh_key: Vec<u8>,
    },
    /// Destroy the key.
    Erase,
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
    async fn write(&self, contact_ref: &ContactRef, op: WriteOp) -> Result<bool, ContactError> {
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

    /// Stores `contact` under `contact_ref`, replacing what was there. Idempotent; a
    /// reference whose key was erased stays erased (erasure is final). Returns once the
    /// write is durable.
    pub async fn put(
        &self,
        contact_ref: &ContactRef,
        contact: &ResidentContact,
    ) -> Result<(), ContactError> {
        let plaintext =
            serde_json::to_vec(contact).map_err(|_| ContactError::Corrupt(contact_ref.0))?;
        let fresh_key = ChaCha20Poly1305::generate_key(&mut OsRng).to_vec();
        self.write(
            contact_ref,
            WriteOp::Put {
                plaintext,
                fresh_key,
            },
        )
        .await
        .map(|_| ())
    }

    /// The contact under `contact_ref`: `None` when never stored.
    pub async fn get(
        &self,
        contact_ref: &ContactRef,
    ) -> Result<Option<StoredContact>, ContactError> {
        let row = sqlx::query(
            "SELECT c.nonce, c.ciphertext, k.key FROM resident_contacts c
             JOIN contact_keys k ON k.key_id = c.key_id WHERE c.contact_ref = ?",
        )
        .bind(contact_ref.0.to_string())
        .fetch_optional(&self.readers)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let corrupt = || ContactError::Corrupt(contact_ref.0);
        let Some(key_bytes): Option<Vec<u8>> = row.try_get("key")? else {
            return Ok(Some(StoredContact::Erased));
        };
        let nonce: Vec<u8> = row.try_get("nonce")?;
        let ciphertext: Vec<u8> = row.try_get("ciphertext")?;
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

    /// Erases the contact by destroying its key; returns whether there was a key to destroy.
    /// Returns once the erasure is durable.
    pub async fn erase(&self, contact_ref: &ContactRef) -> Result<bool, ContactError> {
        self.write(contact_ref, WriteOp::Erase).await
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
}

/// The writer task: takes every queued write, applies them in one transaction, commits, then
/// confirms each. Ends when every sender is gone.
async fn run_writer(pool: SqlitePool, mut queue: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH_MAX);
    while queue.recv_many(&mut batch, WRITE_BATCH_MAX).await > 0 {
        let results = write_batch(&pool, &batch).await;
        for (write, result) in batch.drain(..).zip(results) {
            // A caller that stopped waiting does not stop the others.
            let _ = write.reply.send(result);
        }
    }
}

/// Applies `batch` in one transaction (see [`crate::sqlite_batch::write_batch`]).
async fn write_batch(pool: &SqlitePool, batch: &[Write]) -> Vec<Result<bool, ContactError>> {
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
) -> Result<bool, ContactError> {
    let id = write.contact_ref.0.to_string();
    let (plaintext, fresh_key) = match &write.op {
        WriteOp::Erase => {
            let result = sqlx::query(
                "UPDATE contact_keys SET key = NULL, erased_at = ?
                 WHERE key_id = ? AND key IS NOT NULL",
            )
            .bind(&write.now)
            .bind(&id)
            .execute(&mut **tx)
            .await?;
            return Ok(result.rows_affected() > 0);
        }
        WriteOp::Put {
            plaintext,
            fresh_key,
        } => (plaintext, fresh_key),
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
        return Ok(true);
    };
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
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine_core::ManualClock;

    fn contact() -> ResidentContact {
        ResidentContact {
            name: Some("Wang Fang".into()),
            phone: Some("13800001111".into()),
            id_number: None,
            address_detail: Some("Building 3, Unit 2".into()),
        }
    }

    async fn store() -> ContactStore {
        let clock = Arc::new(ManualClock::new("2026-03-02T09:00:00Z".parse().unwrap()));
        ContactStore::in_memory(clock).await.unwrap()
    }

    #[tokio::test]
    async fn a_stored_contact_reads_back_and_is_not_stored_in_plaintext() {
        let store = store().await;
        let reference = ContactRef(uuid::Uuid::from_u128(7));
        store.put(&reference, &contact()).await.unwrap();
        assert_eq!(
            store.get(&reference).await.unwrap(),
            Some(StoredContact::Present(contact()))
        );
        let raw = store.raw_ciphertext(&reference).await.unwrap().unwrap();
        let needle = b"13800001111";
        assert!(!raw.windows(needle.len()).any(|w| w == needle));
    }

    #[tokio::test]
    async fn put_twice_keeps_one_record_with_the_latest_content() {
        let store = store().await;
        let reference = ContactRef(uuid::Uuid::from_u128(8));
        store.put(&reference, &contact()).await.unwrap();
        let mut changed = contact();
        changed.phone = Some("13900002222".into());
        store.put(&reference, &changed).await.unwrap();
        assert_eq!(
            store.get(&reference).await.unwrap(),
            Some(StoredContact::Present(changed))
        );
    }

    #[tokio::test]
    async fn erasure_destroys_the_key_and_is_final() {
        let store = store().await;
        let reference = ContactRef(uuid::Uuid::from_u128(9));
        store.put(&reference, &contact()).await.unwrap();
        assert!(store.erase(&reference).await.unwrap());
        assert_eq!(
            store.get(&reference).await.unwrap(),
            Some(StoredContact::Erased)
        );
        store.put(&reference, &contact()).await.unwrap();
        assert_eq!(
            store.get(&reference).await.unwrap(),
            Some(StoredContact::Erased)
        );
        assert!(!store.erase(&reference).await.unwrap());
    }

    #[tokio::test]
    async fn concurrent_puts_on_a_file_are_all_durable_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contacts.db");
        let clock = Arc::new(ManualClock::new("2026-03-02T09:00:00Z".parse().unwrap()));
        let store = ContactStore::open_sqlite(&path, clock.clone())
            .await
            .unwrap();
        let puts = (0..300u128).map(|i| {
            let store = store.clone();
            async move {
                let mut contact = contact();
                contact.phone = Some(format!("1380000{i:04}"));
                store
                    .put(&ContactRef(uuid::Uuid::from_u128(1000 + i)), &contact)
                    .await
            }
        });
        for result in futures::future::join_all(puts).await {
            result.unwrap();
        }
        drop(store);
        // A fresh handle on the same file sees every acknowledged put.
        let reopened = ContactStore::open_sqlite(&path, clock).await.unwrap();
        for i in 0..300u128 {
            let Some(StoredContact::Present(read)) = reopened
                .get(&ContactRef(uuid::Uuid::from_u128(1000 + i)))
                .await
                .unwrap()
            else {
                panic!("contact {i} missing");
            };
            assert_eq!(read.phone, Some(format!("1380000{i:04}")));
        }
    }

    #[tokio::test]
    async fn a_failing_write_does_not_fail_the_others_queued_with_it() {
        let store = store().await;
        let broken = ContactRef(uuid::Uuid::from_u128(20));
        sqlx::query("INSERT INTO contact_keys (key_id, key, created_at) VALUES (?, ?, 'x')")
            .bind(broken.0.to_string())
            .bind(vec![0u8; 5])
            .execute(&store.readers)
            .await
            .unwrap();
        let others: Vec<ContactRef> = (21..40u128)
            .map(|i| ContactRef(uuid::Uuid::from_u128(i)))
            .collect();
        let contact = contact();
        let (broken_result, other_results) = tokio::join!(
            store.put(&broken, &contact),
            futures::future::join_all(others.iter().map(|r| store.put(r, &contact)))
        );
        assert!(matches!(broken_result, Err(ContactError::Corrupt(id)) if id == broken.0));
        for (reference, result) in others.iter().zip(other_results) {
            result.unwrap();
            assert_eq!(
                store.get(reference).await.unwrap(),
                Some(StoredContact::Present(contact.clone()))
            );
        }
    }

    #[tokio::test]
    async fn an_unknown_reference_is_none() {
        let store = store().await;
        assert_eq!(
            store
                .get(&ContactRef(uuid::Uuid::from_u128(10)))
                .await
                .unwrap(),
            None
        );
    }
}
