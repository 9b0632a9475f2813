//! Request ids of intakes: a keyed hash of channel and ticket, so a retry finds its request
//! while nobody without the instance's secret can compute another system's request id.
//!
//! The id is HMAC-SHA256 under the intake-id secret of `intake:<channel>:<external_id>`, its
//! first 16 bytes formatted as a UUID version 8. The secret is a file of 64 hex digits
//! (`intake_ids.key_file`; default `<data_dir>/intake-id.key`), created with mode 0600 on
//! first use like the signing key. Every process of one instance (`serve`, `supervise`,
//! `project`, `import`) must read the same file: another secret gives other ids, and a retried
//! ticket would become a second request.
//!
//! Logs written before the keyed ids hold requests under the public UUIDv5 of the ticket
//! ([`schemas::envelope::legacy_intake_request_id`]). [`log_holds_legacy_ids`] tells from the first
//! request received in a log whether it predates the change; only then does
//! [`IntakeIds::resolve`] look a ticket up under its old id when its keyed id holds nothing,
//! so a ticket received before the change and sent again after it finds its request.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use schemas::{Channel, Event, RequestId};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use engine_log::signing::SigningError;
use engine_log::{EventLog, LogError, SCAN_BATCH_LEN};

/// `[intake_ids]`: where the secret of intake request ids is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeIdConfig {
    /// The secret file (64 hex digits); default `<data_dir>/intake-id.key`. Every process of
    /// one instance uses the same file.
    pub key_file: Option<PathBuf>,
}

impl IntakeIdConfig {
    /// The secret file for an instance whose data directory is `data_dir`.
    pub fn key_path(&self, data_dir: &Path) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| data_dir.join("intake-id.key"))
    }
}

/// Derives intake request ids under the instance's secret. Cheap to clone.
#[derive(Clone)]
pub struct IntakeIds {
    secret: Arc<[u8; 32]>,
    legacy: bool,
}

impl std::fmt::Debug for IntakeIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntakeIds")
            .field("legacy", &self.legacy)
            .finish_non_exhaustive()
    }
}

impl IntakeIds {
    /// Ids under `secret`, without legacy lookups.
    pub fn from_secret(secret: [u8; 32]) -> IntakeIds {
        IntakeIds {
            secret: Arc::new(secret),
            legacy: false,
        }
    }

    /// Reads the secret file, creating it with a new random secret (mode 0600) when missing.
    pub fn load_or_create(path: &Path) -> Result<IntakeIds, SigningError> {
        let io = |source| SigningError::Io {
            path: path.to_path_buf(),
            source,
        };
        if !path.exists() {
            let secret: [u8; 32] = rand::random();
            engine_log::signing::write_secret(path, &hex::encode(secret)).map_err(io)?;
            tracing::warn!(path = %path.display(),
                "created a new intake-id secret; back it up and share it with every process of this instance");
            return Ok(IntakeIds::from_secret(secret));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let secret =
            engine_log::signing::parse_hex32(text.trim()).ok_or_else(|| SigningError::Format {
                path: path.to_path_buf(),
                what: "expected the intake-id secret as 64 hex digits".into(),
            })?;
        Ok(IntakeIds::from_secret(secret))
    }

    /// The same ids, looking tickets up under their legacy id too when `legacy` (see
    /// [`log_holds_legacy_ids`]).
    pub fn with_legacy(mut self, legacy: bool) -> IntakeIds {
        self.legacy = legacy;
        self
    }

    /// Whether tickets are also looked up under their legacy id.
    pub fn legacy(&self) -> bool {
        self.legacy
    }

    /// The keyed request id of `channel` and `external_id`.
    pub fn request_id(&self, channel: Channel, external_id: &str) -> RequestId {
        // HMAC-SHA256 takes keys of any length: `new_from_slice` cannot fail here.
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_slice())
            .expect("HMAC takes keys of any length");
        mac.update(format!("intake:{}:{}", channel.as_str(), external_id).as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    }

    /// The id under which `channel` and `external_id` are recorded: the keyed id, or, in a
    /// log that predates keyed ids, the legacy id when only that one holds a request.
    pub async fn resolve(
        &self,
        log: &EventLog,
        channel: Channel,
        external_id: &str,
    ) -> Result<RequestId, LogError> {
        let keyed = self.request_id(channel, external_id);
        if !self.legacy || !log.load(keyed).await?.is_empty() {
            return Ok(keyed);
        }
        let legacy = schemas::envelope::legacy_intake_request_id(channel, external_id);
        match log.load(legacy).await?.is_empty() {
            true => Ok(keyed),
            false => Ok(legacy),
        }
    }
}

/// Whether `log` holds requests received under legacy (public UUIDv5) ids: the first
/// `request_received` event in the log decides, as every legacy request was received before
/// the first keyed one. An empty log, or one whose requests all came later, holds none.
pub async fn log_holds_legacy_ids(log: &EventLog) -> Result<bool, LogError> {
    let mut from = 1;
    loop {
        let batch = log.read_from(from, SCAN_BATCH_LEN).await?;
        for logged in &batch {
            for envelope in &logged.commit.events {
                if let Event::RequestReceived(received) = &envelope.event {
                    let legacy = schemas::envelope::legacy_intake_request_id(
                        received.channel,
                        &received.external_id,
                    );
                    return Ok(envelope.request_id == legacy);
                }
            }
        }
        match batch.last() {
            Some(last) if batch.len() == SCAN_BATCH_LEN => from = last.position + 1,
            _ => return Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keyed_id_is_a_v8_uuid_that_depends_on_the_secret_and_the_ticket() {
        let ids = IntakeIds::from_secret([7; 32]);
        let id = ids.request_id(Channel::Hotline, "T-1");
        assert_eq!(id.get_version(), Some(uuid::Version::Custom));
        assert_eq!(id, ids.request_id(Channel::Hotline, "T-1"));
        assert_ne!(id, ids.request_id(Channel::Hotline, "T-2"));
        assert_ne!(id, ids.request_id(Channel::Online, "T-1"));
        assert_ne!(
            id,
            IntakeIds::from_secret([8; 32]).request_id(Channel::Hotline, "T-1")
        );
        assert_ne!(
            id,
            schemas::envelope::legacy_intake_request_id(Channel::Hotline, "T-1")
        );
    }

    #[test]
    fn the_secret_file_is_created_once_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keys").join("intake-id.key");
        let first = IntakeIds::load_or_create(&path).expect("created");
        let again = IntakeIds::load_or_create(&path).expect("read");
        assert_eq!(
            first.request_id(Channel::Hotline, "T-1"),
            again.request_id(Channel::Hotline, "T-1")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not hex\n").expect("overwrite");
        assert!(matches!(
            IntakeIds::load_or_create(&path),
            Err(SigningError::Format { .. })
        ));
    }
}
