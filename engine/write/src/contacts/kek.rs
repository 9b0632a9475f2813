//! Key-encryption keys (KEKs): the keys that wrap residents' data keys in the PostgreSQL
//! contact store.
//!
//! PostgreSQL does not destroy what it deletes: an old row version stays in the heap until
//! vacuumed (and in free space after that), in the WAL, in full-page images, in replicas and
//! in backups. So the PostgreSQL store never holds a data key in the clear: each is sealed
//! (XChaCha20-Poly1305, associated data = key id and epoch) under the KEK of a numbered
//! *epoch*, and KEKs live only in files outside the database, `kek-<epoch>.key` in
//! `stores.kek_dir`, 64 hex digits each, mode 0600 — like the signing and intake-id keys.
//!
//! Erasing deletes the wrapped key. A copy left in a dead tuple, the WAL or a backup is then
//! still sealed under the current KEK; a rotation (`bianmin privacy rotate-kek`, or on the
//! `stores.kek_rotation_days` schedule) re-wraps every live key under a new epoch and destroys
//! the old KEK file (overwritten, synced, removed), after which no copy of an erased key can
//! be unwrapped by anyone. See docs/security.md, "Erasure".

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use uuid::Uuid;

/// A key-encryption key.
pub type Kek = [u8; 32];

/// Bytes of a wrapped data key: 24-byte nonce, 32-byte key, 16-byte tag.
pub const WRAPPED_LEN: usize = 24 + 32 + 16;

/// Why a KEK could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    /// The file could not be read, written or removed.
    #[error("key-encryption key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold 64 hex digits.
    #[error("key-encryption key {0}: expected 64 hex digits")]
    Format(PathBuf),
    /// The database names an epoch whose file is not in `stores.kek_dir`.
    #[error(
        "key-encryption key of epoch {epoch} is missing ({path}); every process of the \
         instance must read the same stores.kek_dir"
    )]
    Missing {
        /// The epoch.
        epoch: i32,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file of an epoch is not the key the database was set up with.
    #[error(
        "key-encryption key of epoch {0} does not match the database's check value: \
         another instance's key, or a damaged file"
    )]
    Mismatch(i32),
}

/// The KEK files of one instance, cached in memory by epoch. Cheap to share.
#[derive(Debug)]
pub struct KekRing {
    dir: PathBuf,
    cache: Mutex<BTreeMap<i32, Arc<Kek>>>,
}

impl KekRing {
    /// The ring of the files in `dir`.
    pub fn new(dir: &Path) -> KekRing {
        KekRing {
            dir: dir.to_path_buf(),
            cache: Mutex::new(BTreeMap::new()),
        }
    }

    /// The file of `epoch`.
    pub fn path(&self, epoch: i32) -> PathBuf {
        self.dir.join(format!("kek-{epoch:06}.key"))
    }

    fn cached(&self, epoch: i32) -> Option<Arc<Kek>> {
        self.cache.lock().ok()?.get(&epoch).cloned()
    }

    fn remember(&self, epoch: i32, kek: Kek) -> Arc<Kek> {
        let kek = Arc::new(kek);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(epoch, kek.clone());
        }
        kek
    }

    /// The KEK of `epoch`, from memory or its file.
    pub fn load(&self, epoch: i32) -> Result<Arc<Kek>, KekError> {
        if let Some(kek) = self.cached(epoch) {
            return Ok(kek);
        }
        let path = self.path(epoch);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KekError::Missing { epoch, path });
            }
            Err(source) => return Err(KekError::Io { path, source }),
        };
        let kek = engine_log::signing::parse_hex32(text.trim()).ok_or(KekError::Format(path))?;
        Ok(self.remember(epoch, kek))
    }

    /// Creates the file of `epoch` with a new random KEK (mode 0600, synced); a file already
    /// there (left by a rotation that did not commit) is read instead.
    pub fn create(&self, epoch: i32) -> Result<Arc<Kek>, KekError> {
        let path = self.path(epoch);
        let kek: Kek = rand::random();
        match engine_log::signing::write_secret(&path, &hex::encode(kek)) {
            Ok(()) => {
                sync_dir(&self.dir).map_err(|source| KekError::Io {
                    path: self.dir.clone(),
                    source,
                })?;
                Ok(self.remember(epoch, kek))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.load(epoch),
            Err(source) => Err(KekError::Io { path, source }),
        }
    }

    /// The epochs with a file in the directory.
    pub fn epochs_on_disk(&self) -> Result<Vec<i32>, KekError> {
        let io = |source| KekError::Io {
            path: self.dir.clone(),
            source,
        };
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let mut epochs = Vec::new();
        for entry in entries {
            let name = entry.map_err(io)?.file_name();
            let epoch = name
                .to_str()
                .and_then(|n| n.strip_prefix("kek-"))
                .and_then(|n| n.strip_suffix(".key"))
                .and_then(|n| n.parse::<i32>().ok());
            epochs.extend(epoch);
        }
        epochs.sort_unstable();
        Ok(epochs)
    }

    /// Destroys the KEK of `epoch`: forgotten in memory, its file overwritten with random
    /// bytes, synced and removed. Returns whether there was a file.
    ///
    /// The overwrite defeats reading the old blocks back through the file system on
    /// overwrite-in-place storage; on copy-on-write or flash storage it may not reach the old
    /// blocks, which is why the KEK directory belongs on a volume that is never snapshotted
    /// (docs/security.md).
    pub fn destroy(&self, epoch: i32) -> Result<bool, KekError> {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&epoch);
        }
        let path = self.path(epoch);
        let io = |source| KekError::Io {
            path: path.clone(),
            source,
        };
        let len = match std::fs::metadata(&path) {
            Ok(meta) => meta.len() as usize,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io(e)),
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io)?;
        let noise: Vec<u8> = (0..len.max(65)).map(|_| rand::random::<u8>()).collect();
        file.write_all(&noise).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::remove_file(&path).map_err(io)?;
        sync_dir(&self.dir).map_err(io)?;
        Ok(true)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The associated data binding a wrapped key to its key id and epoch: a wrapped key copied
/// onto another row, or relabelled with another epoch, does not unwrap.
fn aad(key_id: Uuid, epoch: i32) -> Vec<u8> {
    format!("bianmin-contact-key:{key_id}:{epoch}").into_bytes()
}

/// Seals `data_key` under `kek`.
pub fn wrap(kek: &Kek, key_id: Uuid, epoch: i32, data_key: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(kek.into());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let aad = aad(key_id, epoch);
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: data_key,
                aad: &aad,
            },
        )
        // Encryption fails only for messages longer than the cipher's limit (~256 GiB).
        .unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    out
}

/// Opens a wrapped key: `None` when `kek` is not the key it was sealed under, or the bytes,
/// key id or epoch were changed.
pub fn unwrap(kek: &Kek, key_id: Uuid, epoch: i32, wrapped: &[u8]) -> Option<[u8; 32]> {
    if wrapped.len() != WRAPPED_LEN {
        return None;
    }
    let (nonce, sealed) = wrapped.split_at(24);
    let cipher = XChaCha20Poly1305::new(kek.into());
    let aad = aad(key_id, epoch);
    let key = cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .ok()?;
    key.try_into().ok()
}

/// A known value sealed under `kek`, stored with the epoch so a process can tell a wrong KEK
/// file before wrapping anything with it.
pub fn check_value(kek: &Kek, epoch: i32) -> Vec<u8> {
    wrap(kek, Uuid::nil(), epoch, &[0u8; 32])
}

/// Whether `kek` is the key `check` was made with.
pub fn matches_check(kek: &Kek, epoch: i32, check: &[u8]) -> bool {
    unwrap(kek, Uuid::nil(), epoch, check) == Some([0u8; 32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_opens_only_with_its_kek_id_and_epoch() {
        let kek: Kek = [7; 32];
        let id = Uuid::from_u128(1);
        let wrapped = wrap(&kek, id, 3, &[9; 32]);
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        assert_eq!(unwrap(&kek, id, 3, &wrapped), Some([9; 32]));
        assert_eq!(unwrap(&[8; 32], id, 3, &wrapped), None);
        assert_eq!(unwrap(&kek, Uuid::from_u128(2), 3, &wrapped), None);
        assert_eq!(unwrap(&kek, id, 4, &wrapped), None);
        assert!(matches_check(&kek, 1, &check_value(&kek, 1)));
        assert!(!matches_check(&[8; 32], 1, &check_value(&kek, 1)));
    }

    #[test]
    fn a_destroyed_kek_file_is_gone_and_a_created_one_is_reread() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KekRing::new(dir.path());
        let first = ring.create(1).unwrap();
        assert_eq!(KekRing::new(dir.path()).create(1).unwrap(), first);
        assert_eq!(ring.epochs_on_disk().unwrap(), vec![1]);
        assert!(ring.destroy(1).unwrap());
        assert!(!ring.path(1).exists());
        assert!(matches!(
            ring.load(1),
            Err(KekError::Missing { epoch: 1, .. })
        ));
        assert!(!ring.destroy(1).unwrap());
    }
}
