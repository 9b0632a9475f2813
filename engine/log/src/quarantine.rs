//! Poison records stop nothing: every record read from the log is checked before anyone sees
//! it, and one that fails is quarantined — skipped by every reader, recorded once with its
//! position, request and reason — instead of stopping the reader.
//!
//! A record is quarantined when it is not JSON, does not decode as a commit, holds an event
//! of another request or whose stored hash does not match its content, or — on a log that
//! knows its keyring — is signed by an unknown key, carries a signature that does not hold,
//! or is unsigned although the log's signing began before it. The checks are a pure function
//! of the record and the keyring, so every process (projector, supervisor, links, history,
//! rebuild) skips exactly the same records; `bianmin verify` still reports each of them.
//!
//! The quarantine list of a process is held in memory (first seen, reason) and exposed by
//! [`super::EventLog::quarantined`] to `/readyz` and `/metrics`; `bianmin quarantine list`
//! recomputes it from the whole log, which is the authority (no second store to disagree).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use schemas::envelope::hash_of_raw;
use schemas::{Commit, LoggedCommit, RequestId};
use serde::Serialize;
use serde_json::Value;

use crate::signing::{Keyring, SignatureCheck};

/// One quarantined record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    /// Its log position.
    pub position: u64,
    /// The request it names, when readable.
    pub request_id: Option<RequestId>,
    /// Why it was quarantined.
    pub reason: String,
    /// When this process first read it (RFC 3339).
    pub first_seen: String,
}

/// What a log checks its records against, and what it found.
#[derive(Debug)]
pub(super) struct Checks {
    /// The trusted public keys; empty: signatures are not checked (a log opened without the
    /// configuration, e.g. by a test or a one-off script).
    pub(super) keyring: Keyring,
    /// The position of the earliest signed record seen (`u64::MAX`: none yet).
    signing_began_at: AtomicU64,
    found: Mutex<BTreeMap<u64, Quarantined>>,
    /// Records this process already checked and admitted, by position, with a keyed hash of
    /// their bytes: every follower of the process (projectors, supervisor, notifier, links)
    /// reads each record, and the hash and signature checks need to run once, not per reader.
    /// A record whose bytes changed since (an edit behind the log's back) is checked again.
    admitted: Mutex<BTreeMap<u64, u64>>,
    /// The most recently admitted records decoded, by position, with the same keyed hash:
    /// the followers of the process read near the head of the log, within moments of each
    /// other, and each would otherwise decode every commit's JSON again.
    decoded: Mutex<BTreeMap<u64, (u64, Commit)>>,
    hasher: std::hash::RandomState,
}

/// Admitted records remembered per process (oldest forgotten first), about 30 MiB at most:
/// followers catching up from the start of a large log (a new replica, a reset projector)
/// run hundreds of thousands of positions apart, and each record must be checked (hashes,
/// Ed25519 signature: the most expensive step of a read) only by the first of them.
const ADMITTED_REMEMBERED: usize = 1 << 20;
/// Decoded records kept per process (oldest forgotten first): a few seconds of a busy log.
const DECODED_REMEMBERED: usize = 4_096;

impl Default for Checks {
    fn default() -> Checks {
        Checks {
            keyring: Keyring::default(),
            signing_began_at: AtomicU64::new(u64::MAX),
            found: Mutex::default(),
            admitted: Mutex::default(),
            decoded: Mutex::default(),
            hasher: std::hash::RandomState::new(),
        }
    }
}

impl Checks {
    /// Checks over `keyring`.
    pub(super) fn new(keyring: Keyring) -> Checks {
        Checks {
            keyring,
            ..Checks::default()
        }
    }

    /// The record as a commit, or `None` when it is quarantined (and recorded).
    pub(super) fn admit(&self, position: u64, bytes: &[u8]) -> Option<LoggedCommit> {
        use std::hash::BuildHasher as _;
        let fingerprint = self.hasher.hash_one(bytes);
        if let Some((seen, commit)) = lock(&self.decoded).get(&position)
            && *seen == fingerprint
        {
            let commit = Commit::clone(commit);
            return Some(LoggedCommit { position, commit });
        }
        if lock(&self.admitted).get(&position) == Some(&fingerprint)
            && let Ok(commit) = Commit::from_bytes(bytes)
        {
            self.remember_decoded(position, fingerprint, &commit);
            return Some(LoggedCommit { position, commit });
        }
        match self.check(position, bytes) {
            Ok(commit) => {
                let mut admitted = lock(&self.admitted);
                admitted.insert(position, fingerprint);
                if admitted.len() > ADMITTED_REMEMBERED {
                    admitted.pop_first();
                }
                drop(admitted);
                self.remember_decoded(position, fingerprint, &commit);
                Some(LoggedCommit { position, commit })
            }
            Err((request_id, reason)) => {
                self.record(position, request_id, reason);
                None
            }
        }
    }

    fn remember_decoded(&self, position: u64, fingerprint: u64, commit: &Commit) {
        let mut decoded = lock(&self.decoded);
        decoded.insert(position, (fingerprint, commit.clone()));
        if decoded.len() > DECODED_REMEMBERED {
            decoded.pop_first();
        }
    }

    /// Why the record at `position` is not admitted, if it is not (pure but for the
    /// signing-began position).
    pub(super) fn check(
        &self,
        position: u64,
        bytes: &[u8],
    ) -> Result<Commit, (Option<RequestId>, String)> {
        let raw: Value = serde_json::from_slice(bytes)
            .map_err(|e| (None, format!("record is not JSON: {e}")))?;
        let request_id = raw
            .get("request_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        let fail = |reason: String| (request_id, reason);
        if let Some(events) = raw.get("events").and_then(Value::as_array) {
            for event in events {
                let stored = event.get("hash").and_then(Value::as_str).unwrap_or("");
                if stored != hash_of_raw(event) {
                    let version = event.get("version").and_then(Value::as_u64).unwrap_or(0);
                    return Err(fail(format!(
                        "event version {version}: stored hash does not match its content"
                    )));
                }
            }
        }
        if !self.keyring.is_empty() {
            self.check_signature(position, &raw).map_err(&fail)?;
        }
        let commit = Commit::from_raw(raw).map_err(|e| fail(format!("not a commit: {e}")))?;
        if commit.events.is_empty() {
            return Err(fail("commit holds no event".into()));
        }
        if commit
            .events
            .iter()
            .any(|e| e.request_id != commit.request_id)
        {
            return Err(fail("an event names another request".into()));
        }
        Ok(commit)
    }

    fn check_signature(&self, position: u64, raw: &Value) -> Result<(), String> {
        match self.keyring.check(raw) {
            SignatureCheck::Valid => {
                self.signing_began(position);
                Ok(())
            }
            SignatureCheck::Unsigned => match self.signing_began_at() {
                Some(began) if position >= began => Err(format!(
                    "unsigned record after signing began at position {began}"
                )),
                _ => Ok(()),
            },
            SignatureCheck::UnknownKey(key) => Err(format!("signed by unknown key {key}")),
            SignatureCheck::Invalid(what) => Err(format!("bad signature: {what}")),
        }
    }

    /// Notes a signed record at `position`: signing began there or earlier.
    pub(super) fn signing_began(&self, position: u64) {
        self.signing_began_at.fetch_min(position, Ordering::Relaxed);
    }

    /// The position of the earliest signed record known.
    pub(super) fn signing_began_at(&self) -> Option<u64> {
        let began = self.signing_began_at.load(Ordering::Relaxed);
        (began != u64::MAX).then_some(began)
    }

    fn record(&self, position: u64, request_id: Option<RequestId>, reason: String) {
        let mut found = self
            .found
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if found.contains_key(&position) {
            return;
        }
        tracing::error!(position, request = ?request_id, %reason,
            "log record quarantined: skipped by every reader; see `bianmin quarantine list`");
        let first_seen = engine_core::Clock::now(&crate::clock::SystemClock).to_rfc3339();
        found.insert(
            position,
            Quarantined {
                position,
                request_id,
                reason,
                first_seen,
            },
        );
    }

    /// Every record quarantined by this process so far, in log order.
    pub(super) fn found(&self) -> Vec<Quarantined> {
        let found = self
            .found
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        found.values().cloned().collect()
    }
}

/// The guarded value, even after a panic elsewhere (the maps hold no invariant a panic breaks).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::CommitSigner;
    use schemas::CommandKind;
    use uuid::Uuid;

    fn record(signer: Option<&CommitSigner>) -> Vec<u8> {
        let mut commit = Commit {
            commit_id: Uuid::from_u128(1),
            request_id: Uuid::from_u128(2),
            command: CommandKind::NoteProgress,
            events: vec![],
            signature: None,
        };
        commit.signature = signer.map(|s| s.sign(&commit));
        commit.to_bytes()
    }

    #[test]
    fn garbage_and_empty_commits_are_quarantined_once_with_a_reason() {
        let checks = Checks::default();
        assert!(checks.admit(3, b"garbage-not-json").is_none());
        assert!(checks.admit(3, b"garbage-not-json").is_none());
        assert!(checks.admit(4, br#"{"not":"a commit"}"#).is_none());
        assert!(checks.admit(5, &record(None)).is_none());
        let found = checks.found();
        assert_eq!(
            found.iter().map(|q| q.position).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert!(found[0].reason.contains("not JSON"), "{found:?}");
        assert_eq!(found[2].request_id, Some(Uuid::from_u128(2)));
    }

    /// A commit of one sealed `progress_noted` event.
    fn noted(note: &str) -> Commit {
        let at = "2026-03-03T08:00:00Z".parse().unwrap();
        let envelope = schemas::EventEnvelope {
            event_id: Uuid::from_u128(3),
            request_id: Uuid::from_u128(2),
            version: 1,
            schema_version: 0,
            occurred_at: at,
            recorded_at: at,
            actor: schemas::Actor {
                id: "w-1".into(),
                role: schemas::Role::StationWorker,
                unit: None,
            },
            causation_id: Uuid::from_u128(1),
            correlation_id: Uuid::from_u128(1),
            prev_hash: schemas::envelope::GENESIS_HASH.to_string(),
            hash: String::new(),
            event: schemas::Event::ProgressNoted(schemas::event::ProgressNoted {
                note: note.into(),
            }),
        }
        .seal();
        Commit {
            commit_id: Uuid::from_u128(1),
            request_id: Uuid::from_u128(2),
            command: CommandKind::NoteProgress,
            events: vec![envelope],
            signature: None,
        }
    }

    #[test]
    fn a_record_admitted_once_is_checked_again_when_its_bytes_change() {
        let checks = Checks::default();
        let bytes = noted("original").to_bytes();
        assert!(checks.admit(9, &bytes).is_some());
        assert!(
            checks.admit(9, &bytes).is_some(),
            "the remembered record is admitted"
        );
        // The same position edited behind the log's back, its hash left stale.
        let mut edited: Value = serde_json::from_slice(&bytes).unwrap();
        edited["events"][0]["data"]["note"] = serde_json::json!("edited");
        let edited = serde_json::to_vec(&edited).unwrap();
        assert!(checks.admit(9, &edited).is_none());
        assert!(
            checks.found()[0].reason.contains("stored hash"),
            "{:?}",
            checks.found()
        );
    }

    #[test]
    fn unsigned_records_pass_only_before_signing_began() {
        let signer = CommitSigner::from_seed([1; 32]);
        let checks = Checks::new(Keyring::new([signer.public_key()]));
        let signed = record(Some(&signer));
        let unsigned = record(None);
        assert!(
            checks
                .check(1, &unsigned)
                .is_err_and(|(_, r)| r.contains("no event"))
        );
        assert!(
            checks
                .check(5, &signed)
                .is_err_and(|(_, r)| r.contains("no event"))
        );
        assert_eq!(checks.signing_began_at(), Some(5));
        let (_, reason) = checks.check(6, &unsigned).unwrap_err();
        assert!(reason.contains("unsigned record after signing began at position 5"));
        let stranger = CommitSigner::from_seed([2; 32]);
        let (_, reason) = checks.check(7, &record(Some(&stranger))).unwrap_err();
        assert!(reason.contains("unknown key"), "{reason}");
    }
}
