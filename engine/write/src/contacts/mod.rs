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
//! Every intake writes here before its `receive` is recorded, so SQLite writes use group
//! commit: one transaction and one fsync for all the writes queued at once, instead of one
//! each. PostgreSQL writes are one transaction each (the server groups commits itself).
//!
//! Two backends behind one interface ([`ContactStore`]), chosen by `[stores]` (see
//! [`crate::stores`]):
//! - **SQLite** (embedded, `data_dir/contacts.db`, [`sqlite`]): keys beside the ciphertext.
//! - **PostgreSQL** (shared by every replica, [`postgres`]): data keys stored only wrapped by
//!   a key-encryption key kept in files outside the database ([`kek`]), because PostgreSQL
//!   keeps deleted rows in dead tuples, WAL and backups.
//!
//! On SQLite, erasure destroys, it does not only hide: every connection runs with `secure_delete=ON`
//! (freed cells and pages are overwritten with zeros), an erase deletes the ciphertext as well
//! as the key, and the transaction holding an erase is followed by
//! `wal_checkpoint(TRUNCATE)` before the erase is confirmed, so neither the database file nor
//! its write-ahead log keeps a copy of the key or the ciphertext once `erase` returns. On
//! PostgreSQL, see [`kek`] for how an erased key becomes unrecoverable.

use std::path::Path;
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, ChaCha20Poly1305, Key, Nonce};
use engine_core::Clock;
use schemas::ContactRef;
use schemas::intake::ResidentContact;

use crate::stores::StoresLocation;

pub mod kek;
mod postgres;
mod sqlite;

pub use postgres::KekRotation;

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
    /// A key-encryption key could not be read, created or destroyed.
    #[error(transparent)]
    Kek(#[from] kek::KekError),
    /// The stores database could not be prepared.
    #[error(transparent)]
    Stores(#[from] crate::stores::StoresError),
    /// The operation exists only on the PostgreSQL backend.
    #[error("{0} needs the PostgreSQL stores (stores.url)")]
    NeedsPostgres(&'static str),
}

impl From<sqlx::Error> for ContactError {
    fn from(error: sqlx::Error) -> Self {
        ContactError::Unavailable(error.to_string())
    }
}

/// The encrypted contact store, on SQLite or PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct ContactStore {
    backend: Backend,
    clock: Arc<dyn Clock>,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::SqliteContacts),
    Postgres(postgres::PgContacts),
}

impl std::fmt::Debug for ContactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactStore")
            .field("backend", &self.backend_name())
            .finish_non_exhaustive()
    }
}

/// What to write.
pub(crate) enum WriteOp {
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
    /// Whether the store must be checkpointed before this write is confirmed: erasures, and
    /// replacements, whose old ciphertext (sealed under the same key) must not stay readable
    /// in the write-ahead log after a correction.
    pub(crate) fn destroys(&self) -> bool {
        matches!(
            self,
            WriteOp::Erase | WriteOp::Discard | WriteOp::Put { replace: true, .. }
        )
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

impl ContactStore {
    /// Opens the store where `location` says: `data_dir/contacts.db`, or PostgreSQL.
    pub async fn open(
        location: &StoresLocation,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ContactError> {
        match location {
            StoresLocation::Embedded { data_dir } => {
                Self::open_sqlite(&data_dir.join("contacts.db"), clock).await
            }
            StoresLocation::Postgres { url, kek_dir } => {
                Self::open_postgres(url, kek_dir, clock).await
            }
        }
    }

    /// Opens (creating if needed) the store in the SQLite file at `path`.
    pub async fn open_sqlite(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, ContactError> {
        let backend = Backend::Sqlite(sqlite::SqliteContacts::open(path).await?);
        Ok(ContactStore { backend, clock })
    }

    /// Opens the store in the PostgreSQL database at `url` (migrating it), with its
    /// key-encryption keys in `kek_dir` (the first process creates epoch 1).
    pub async fn open_postgres(
        url: &str,
        kek_dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ContactError> {
        let backend =
            Backend::Postgres(postgres::PgContacts::open(url, kek_dir, clock.now()).await?);
        Ok(ContactStore { backend, clock })
    }

    /// A private in-memory store (for tests and throwaway runs).
    pub async fn in_memory(clock: Arc<dyn Clock>) -> Result<Self, ContactError> {
        let backend = Backend::Sqlite(sqlite::SqliteContacts::in_memory().await?);
        Ok(ContactStore { backend, clock })
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    async fn write(
        &self,
        contact_ref: &ContactRef,
        op: WriteOp,
    ) -> Result<PutOutcome, ContactError> {
        match &self.backend {
            Backend::Sqlite(store) => {
                store
                    .write(contact_ref, self.clock.now().to_rfc3339(), op)
                    .await
            }
            Backend::Postgres(store) => store.write(contact_ref, self.clock.now(), op).await,
        }
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
    /// An erased reference stays erased. On SQLite, returns once the store is checkpointed: no
    /// file of it holds the replaced ciphertext any more.
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
        match &self.backend {
            Backend::Sqlite(store) => store.get(contact_ref).await,
            Backend::Postgres(store) => store.get(contact_ref).await,
        }
    }

    /// Erases the contact by destroying its key and its ciphertext; returns whether there was
    /// a key to destroy. On SQLite, returns once the erasure is durable and the store is
    /// checkpointed: no file of the store holds the key or the ciphertext any more. On
    /// PostgreSQL, the wrapped key is deleted; copies left in dead tuples, WAL or backups stay
    /// sealed under the current key-encryption key until the next [`ContactStore::rotate_kek`].
    /// Erasing again is harmless.
    pub async fn erase(&self, contact_ref: &ContactRef) -> Result<bool, ContactError> {
        Ok(self.write(contact_ref, WriteOp::Erase).await? == PutOutcome::Stored)
    }

    /// Re-wraps every live data key under a new key-encryption-key epoch and destroys the
    /// files of the older epochs (PostgreSQL only).
    pub async fn rotate_kek(&self) -> Result<KekRotation, ContactError> {
        match &self.backend {
            Backend::Sqlite(_) => Err(ContactError::NeedsPostgres("rotating the KEK")),
            Backend::Postgres(store) => store.rotate(self.clock.now()).await,
        }
    }

    /// Rotates when the current key-encryption key is at least `days` old (PostgreSQL with
    /// `days > 0`; otherwise nothing). Returns the rotation done, if any.
    pub async fn rotate_kek_if_older_than(
        &self,
        days: u32,
    ) -> Result<Option<KekRotation>, ContactError> {
        match &self.backend {
            Backend::Postgres(store) if days > 0 => {
                let now = self.clock.now();
                let created = store.current_epoch_created_at().await?;
                if now - created >= chrono::Duration::days(i64::from(days)) {
                    return store.rotate(now).await.map(Some);
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), ContactError> {
        match &self.backend {
            Backend::Sqlite(store) => store.ping().await,
            Backend::Postgres(store) => store.ping().await,
        }
    }

    /// The raw stored ciphertext, for checks that no plaintext reaches the disk.
    #[doc(hidden)]
    pub async fn raw_ciphertext(
        &self,
        contact_ref: &ContactRef,
    ) -> Result<Option<Vec<u8>>, ContactError> {
        match &self.backend {
            Backend::Sqlite(store) => store.raw_ciphertext(contact_ref).await,
            Backend::Postgres(store) => store.raw_ciphertext(contact_ref).await,
        }
    }

    /// The data key in the clear (on PostgreSQL, unwrapped), for checks that an erased key is
    /// gone from every file.
    #[doc(hidden)]
    pub async fn raw_key(&self, contact_ref: &ContactRef) -> Result<Option<Vec<u8>>, ContactError> {
        match &self.backend {
            Backend::Sqlite(store) => store.raw_key(contact_ref).await,
            Backend::Postgres(store) => store.raw_key(contact_ref).await,
        }
    }

    /// The wrapped key and its epoch as stored (PostgreSQL; `None` on SQLite or when erased).
    #[doc(hidden)]
    pub async fn raw_wrapped_key(
        &self,
        contact_ref: &ContactRef,
    ) -> Result<Option<(i32, Vec<u8>)>, ContactError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(store) => store.raw_wrapped_key(contact_ref).await,
        }
    }
}

/// Seals `plaintext` under the data key `key`, bound to the reference: (nonce, ciphertext).
fn seal_contact(
    contact_ref: &ContactRef,
    key: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), ContactError> {
    let corrupt = || ContactError::Corrupt(contact_ref.0);
    if key.len() != 32 {
        return Err(corrupt());
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: contact_ref.0.as_bytes(),
            },
        )
        .map_err(|_| corrupt())?;
    Ok((nonce.to_vec(), ciphertext))
}

/// Opens a stored contact sealed under the data key `key`.
fn open_contact(
    contact_ref: &ContactRef,
    key: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<StoredContact, ContactError> {
    let corrupt = || ContactError::Corrupt(contact_ref.0);
    if key.len() != 32 || nonce.len() != 12 {
        return Err(corrupt());
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let plaintext = cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: contact_ref.0.as_bytes(),
            },
        )
        .map_err(|_| corrupt())?;
    let contact = serde_json::from_slice(&plaintext).map_err(|_| corrupt())?;
    Ok(StoredContact::Present(contact))
}

#[cfg(test)]
mod tests;
