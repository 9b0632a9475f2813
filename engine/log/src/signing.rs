//! Commit signatures: the engine signs every commit it appends with an Ed25519 key, and
//! `verify` checks every signature against a keyring of trusted public keys.
//!
//! The signed bytes are [`schemas::envelope::signing_payload`] of the commit's stored JSON
//! (its id, request, command and every event hash), so a record a client published to the
//! event subjects — however well chained — fails verification unless it carries a signature
//! by a key in the keyring. Ed25519 signatures are deterministic: re-appending the same commit
//! (a retry) writes the same bytes.
//!
//! Keys: the signing key is a file holding the 32-byte secret seed as 64 hex digits
//! (`signing.key_file`; default `<data_dir>/signing.key`, created with mode 0600 the first
//! time `serve` starts without one). Its public key is always trusted. Retired or other
//! engines' public keys are listed in `signing.trusted_keys_file` (TOML: `<key id> = "<64 hex
//! digits>"`), so rotation keeps old commits verifiable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use schemas::Commit;
use schemas::envelope::{CommitSignature, signing_payload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `[signing]`: where the signing key and the trusted public keys are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningConfig {
    /// The signing key file (64 hex digits of the Ed25519 seed); default
    /// `<data_dir>/signing.key`. Every replica of one instance uses the same key.
    pub key_file: Option<PathBuf>,
    /// TOML file of further trusted public keys (`<key id> = "<hex>"`): retired keys after a
    /// rotation, or the keys of the instance's other writers.
    pub trusted_keys_file: Option<PathBuf>,
}

/// Why a key or keyring could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file's content is not a key (or keyring) of the expected form.
    #[error("{path}: {what}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// The engine's signing key.
#[derive(Clone)]
pub struct CommitSigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for CommitSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The key id of a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(public: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(public.as_bytes()))[..16].to_string()
}

impl CommitSigner {
    /// A signer over the 32-byte secret `seed`.
    pub fn from_seed(seed: [u8; 32]) -> CommitSigner {
        let key = SigningKey::from_bytes(&seed);
        let key_id = key_id(&key.verifying_key());
        CommitSigner { key, key_id }
    }

    /// Reads the key file.
    pub fn load(path: &Path) -> Result<CommitSigner, SigningError> {
        let text = std::fs::read_to_string(path).map_err(|source| SigningError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let seed = parse_hex32(text.trim()).ok_or_else(|| SigningError::Format {
            path: path.to_path_buf(),
            what: "expected the Ed25519 seed as 64 hex digits".into(),
        })?;
        Ok(CommitSigner::from_seed(seed))
    }

    /// Reads the key file, creating it with a new random key (mode 0600) when it is missing.
    pub fn load_or_create(path: &Path) -> Result<CommitSigner, SigningError> {
        if path.exists() {
            return CommitSigner::load(path);
        }
        let seed: [u8; 32] = rand::random();
        write_secret(path, &hex::encode(seed)).map_err(|source| SigningError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let signer = CommitSigner::from_seed(seed);
        tracing::warn!(path = %path.display(), key_id = %signer.key_id,
            "created a new commit signing key; back it up and share it with every replica");
        Ok(signer)
    }

    /// The key id written into every signature.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs arbitrary `bytes` (e.g. an anchored digest) with the same key.
    pub fn sign_bytes(&self, bytes: &[u8]) -> CommitSignature {
        CommitSignature {
            key_id: self.key_id.clone(),
            ed25519: hex::encode(self.key.sign(bytes).to_bytes()),
        }
    }

    /// Signs `commit` as it will be stored (any signature it carries is replaced).
    pub fn sign(&self, commit: &Commit) -> CommitSignature {
        self.sign_bytes(&commit.signing_payload())
    }
}

/// Writes a secret file (created new, mode 0600 on Unix, synced): the signing key, the
/// contact store's key-encryption key and the intake-id secret all use it.
pub fn write_secret(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(content.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// 64 hex digits as 32 bytes (`None` for anything else).
pub fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

/// What checking one stored record's signature found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Signed by a trusted key and the signature holds.
    Valid,
    /// The record carries no signature.
    Unsigned,
    /// Signed, but by a key the keyring does not hold.
    UnknownKey(String),
    /// The signature does not hold for the record's content (or is malformed).
    Invalid(String),
}

/// The public keys `verify` trusts, by key id.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: BTreeMap<String, VerifyingKey>,
}

impl Keyring {
    /// A keyring holding `keys`.
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Keyring {
        Keyring {
            keys: keys.into_iter().map(|k| (key_id(&k), k)).collect(),
        }
    }

    /// The keyring of `config`: the signing key's public key (when its file can be read) and
    /// every key of the trusted-keys file. A key listed under an id that is not its own is
    /// refused.
    pub fn load(config: &SigningConfig, data_dir: &Path) -> Result<Keyring, SigningError> {
        let mut keyring = Keyring::default();
        let key_file = signing_key_path(config, data_dir);
        if key_file.exists() {
            keyring.add(CommitSigner::load(&key_file)?.public_key());
        }
        if let Some(path) = &config.trusted_keys_file {
            let io = |source| SigningError::Io {
                path: path.clone(),
                source,
            };
            let format = |what: String| SigningError::Format {
                path: path.clone(),
                what,
            };
            let text = std::fs::read_to_string(path).map_err(io)?;
            let table: BTreeMap<String, String> =
                toml::from_str(&text).map_err(|e| format(e.to_string()))?;
            for (id, hex_key) in table {
                let bytes = parse_hex32(&hex_key)
                    .ok_or_else(|| format(format!("key {id}: expected 64 hex digits")))?;
                let key = VerifyingKey::from_bytes(&bytes)
                    .map_err(|e| format(format!("key {id}: {e}")))?;
                if key_id(&key) != id {
                    return Err(format(format!("key {id}: its id is {}", key_id(&key))));
                }
                keyring.add(key);
            }
        }
        Ok(keyring)
    }

    /// Trusts `key`.
    pub fn add(&mut self, key: VerifyingKey) {
        self.keys.insert(key_id(&key), key);
    }

    /// Whether no key is trusted (then every signature is of an unknown key).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks `signature` over `bytes`.
    pub fn check_bytes(&self, signature: &CommitSignature, bytes: &[u8]) -> SignatureCheck {
        let Some(key) = self.keys.get(&signature.key_id) else {
            return SignatureCheck::UnknownKey(signature.key_id.clone());
        };
        let Some(raw) = hex::decode(&signature.ed25519)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return SignatureCheck::Invalid("signature is not 64 bytes of hex".into());
        };
        match key.verify(bytes, &Signature::from_bytes(&raw)) {
            Ok(()) => SignatureCheck::Valid,
            Err(_) => SignatureCheck::Invalid(format!(
                "signature by key {} does not match the content",
                signature.key_id
            )),
        }
    }

    /// Checks the signature of one stored record (raw JSON, never upcast).
    pub fn check(&self, raw: &serde_json::Value) -> SignatureCheck {
        let Some(signature) = raw.get("signature") else {
            return SignatureCheck::Unsigned;
        };
        let Ok(signature) = serde_json::from_value::<CommitSignature>(signature.clone()) else {
            return SignatureCheck::Invalid("malformed signature".into());
        };
        let Some(payload) = signing_payload(raw) else {
            return SignatureCheck::Invalid("record lacks a signed field".into());
        };
        self.check_bytes(&signature, &payload)
    }
}

/// The signing key file `config` names (default `<data_dir>/signing.key`).
pub fn signing_key_path(config: &SigningConfig, data_dir: &Path) -> PathBuf {
    config
        .key_file
        .clone()
        .unwrap_or_else(|| data_dir.join("signing.key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::CommandKind;
    use uuid::Uuid;

    fn commit() -> Commit {
        Commit {
            commit_id: Uuid::from_u128(1),
            request_id: Uuid::from_u128(2),
            command: CommandKind::NoteProgress,
            events: vec![],
            signature: None,
        }
    }

    fn stored(commit: &Commit) -> serde_json::Value {
        serde_json::to_value(commit).unwrap()
    }

    #[test]
    fn a_signed_commit_verifies_and_any_change_breaks_it() {
        let signer = CommitSigner::from_seed([7; 32]);
        let mut signed = commit();
        signed.signature = Some(signer.sign(&signed));
        let keyring = Keyring::new([signer.public_key()]);
        assert_eq!(keyring.check(&stored(&signed)), SignatureCheck::Valid);

        let mut edited = stored(&signed);
        edited["command"] = serde_json::json!("rate");
        assert!(matches!(keyring.check(&edited), SignatureCheck::Invalid(_)));
        assert_eq!(keyring.check(&stored(&commit())), SignatureCheck::Unsigned);
        let stranger = CommitSigner::from_seed([8; 32]);
        let mut foreign = commit();
        foreign.signature = Some(stranger.sign(&foreign));
        assert_eq!(
            keyring.check(&stored(&foreign)),
            SignatureCheck::UnknownKey(stranger.key_id().to_string())
        );
    }

    #[test]
    fn signing_is_deterministic_so_retries_write_the_same_bytes() {
        let signer = CommitSigner::from_seed([7; 32]);
        assert_eq!(signer.sign(&commit()), signer.sign(&commit()));
    }

    #[test]
    fn key_files_are_created_once_and_trusted_keys_must_carry_their_own_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/signing.key");
        let created = CommitSigner::load_or_create(&path).unwrap();
        let again = CommitSigner::load_or_create(&path).unwrap();
        assert_eq!(created.key_id(), again.key_id());
        let retired = CommitSigner::from_seed([9; 32]);
        let trusted = dir.path().join("trusted.toml");
        let line = |id: &str| {
            format!(
                "{id} = \"{}\"\n",
                hex::encode(retired.public_key().as_bytes())
            )
        };
        std::fs::write(&trusted, line(retired.key_id())).unwrap();
        let config = SigningConfig {
            key_file: Some(path),
            trusted_keys_file: Some(trusted.clone()),
        };
        let keyring = Keyring::load(&config, dir.path()).unwrap();
        assert_eq!(keyring.keys.len(), 2);
        std::fs::write(&trusted, line("0000000000000000")).unwrap();
        assert!(Keyring::load(&config, dir.path()).is_err());
    }
}
