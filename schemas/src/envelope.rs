//! Envelopes: the metadata around every event and command, and the commit (one log message).
//!
//! A command that yields several events is written as one [`Commit`], so it is all-or-nothing
//! on every store. Each event commits to its predecessor in the same request through
//! `prev_hash` and its own `hash` (SHA-256 over the canonical JSON of the envelope without
//! `hash`): editing any stored event breaks the chain at that event.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::command::{Command, CommandKind};
use crate::error::DecodeError;
use crate::event::Event;
use crate::types::*;

/// The hash a request's first event names as its predecessor.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One recorded event with its metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventEnvelope {
    /// Event id (UUIDv7: time-ordered).
    pub event_id: Uuid,
    /// The request (aggregate) this event belongs to.
    pub request_id: RequestId,
    /// 1-based position of this event in its request's stream; dense.
    pub version: u64,
    /// Schema version of `data` as written.
    pub schema_version: u32,
    /// When the fact happened (the command's injected time).
    pub occurred_at: Timestamp,
    /// When the engine recorded it.
    pub recorded_at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// The command that caused it.
    pub causation_id: Uuid,
    /// The conversation it belongs to (e.g. the intake's id), across requests.
    pub correlation_id: Uuid,
    /// Hash of the previous event of this request ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 (hex) of this envelope's canonical JSON without the `hash` field.
    pub hash: String,
    /// The event itself: `type` and `data`.
    #[serde(flatten)]
    pub event: Event,
}

impl EventEnvelope {
    /// Fills `schema_version` from the event kind and `hash` from the content.
    /// Call after every other field is set.
    pub fn seal(mut self) -> EventEnvelope {
        self.schema_version = self.event.kind().current_version();
        let value = serde_json::to_value(&self).expect("envelopes always serialise");
        self.hash = hash_of_raw(&value);
        self
    }

    /// Recomputes the hash from the typed content (valid for events written by this version).
    pub fn computed_hash(&self) -> String {
        hash_of_raw(&serde_json::to_value(self).expect("envelopes always serialise"))
    }
}

/// SHA-256 (hex) over the canonical JSON of a raw stored envelope, excluding `hash`.
///
/// Canonical JSON: object keys sorted, no insignificant whitespace (serde_json's `Value`
/// keeps keys sorted). Verification runs over raw stored JSON, before upcasting, so that
/// an old event keeps the hash it was written with.
pub fn hash_of_raw(envelope: &serde_json::Value) -> String {
    let mut value = envelope.clone();
    if let Some(object) = value.as_object_mut() {
        object.remove("hash");
    }
    let bytes = serde_json::to_vec(&value).expect("values always serialise");
    hex::encode(Sha256::digest(&bytes))
}

/// One message in the log: the events a single command produced, written atomically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// The command's id; the log's idempotency key (`Nats-Msg-Id`).
    pub commit_id: Uuid,
    /// The request.
    pub request_id: RequestId,
    /// The command that produced it.
    pub command: CommandKind,
    /// The events, versions consecutive.
    pub events: Vec<EventEnvelope>,
    /// The writing engine's Ed25519 signature over [`signing_payload`] of this commit; absent
    /// on commits written before signing began (and on commits not yet appended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<CommitSignature>,
}

/// What every event of one commit shares, and where on its stream the commit goes: the one
/// way a commit is built ([`CommitHeader::seal`]), so versions, hash chain, causation and
/// timestamps are set the same way by every writer (commands, import, digests, reference
/// data, reports).
#[derive(Debug, Clone)]
pub struct CommitHeader {
    /// The commit's id (its idempotency key); also every event's `causation_id`.
    pub commit_id: Uuid,
    /// The stream (request, report, digest or reference-data stream) it is appended to.
    pub stream: RequestId,
    /// The command that produced it.
    pub command: CommandKind,
    /// Who caused it.
    pub actor: Actor,
    /// When it happened (the decision's `now`).
    pub occurred_at: Timestamp,
    /// When the engine recorded it.
    pub recorded_at: Timestamp,
    /// The correlation id its events carry.
    pub correlation_id: Uuid,
    /// Version of the stream's last event (0: an empty stream).
    pub after_version: u64,
    /// Hash of the stream's last event ([`GENESIS_HASH`] on an empty stream).
    pub after_hash: String,
}

impl CommitHeader {
    /// The unsigned commit of `events` in order: versions follow `after_version`, each event
    /// is sealed onto the hash of the one before it (the first onto `after_hash`), and
    /// `event_id(i)` names the `i`-th event.
    pub fn seal(self, events: Vec<Event>, mut event_id: impl FnMut(usize) -> Uuid) -> Commit {
        let mut prev_hash = self.after_hash;
        let mut sealed = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            let envelope = EventEnvelope {
                event_id: event_id(i),
                request_id: self.stream,
                version: self.after_version + i as u64 + 1,
                schema_version: 0,
                occurred_at: self.occurred_at,
                recorded_at: self.recorded_at,
                actor: self.actor.clone(),
                causation_id: self.commit_id,
                correlation_id: self.correlation_id,
                prev_hash,
                hash: String::new(),
                event,
            }
            .seal();
            prev_hash = envelope.hash.clone();
            sealed.push(envelope);
        }
        Commit {
            commit_id: self.commit_id,
            request_id: self.stream,
            command: self.command,
            events: sealed,
            signature: None,
        }
    }
}

impl Commit {
    /// Hash of the commit's last event: the next commit's `after_hash` on its stream.
    pub fn last_hash(&self) -> Option<&str> {
        self.events.last().map(|e| e.hash.as_str())
    }
}

/// An engine's signature of one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitSignature {
    /// Which key signed: the first 16 hex digits of SHA-256 over the public key.
    pub key_id: String,
    /// The Ed25519 signature (64 bytes, hex).
    pub ed25519: String,
}

/// Domain separation tag of the signed payload (changes only with its layout).
const SIGNING_TAG: &str = "bianmin-commit-signature-v1";

/// The bytes an engine signs for a commit, computed from its stored JSON (never upcast):
/// the tag, `commit_id`, `request_id`, `command` and every event's `hash`, one per line. The
/// event hashes already cover each event's whole content, so the signature binds the commit;
/// `None` when the record lacks one of those fields.
pub fn signing_payload(raw: &serde_json::Value) -> Option<Vec<u8>> {
    let field = |name: &str| raw.get(name).and_then(serde_json::Value::as_str);
    let hashes: Option<Vec<&str>> = raw
        .get("events")?
        .as_array()?
        .iter()
        .map(|event| event.get("hash")?.as_str())
        .collect();
    Some(payload_of(
        field("commit_id")?,
        field("request_id")?,
        field("command")?,
        hashes?,
    ))
}

impl Commit {
    /// [`signing_payload`] of this commit as it will be stored, computed from the typed
    /// fields (no serialisation: the engine signs every append with it).
    pub fn signing_payload(&self) -> Vec<u8> {
        payload_of(
            &self.commit_id.to_string(),
            &self.request_id.to_string(),
            self.command.as_str(),
            self.events.iter().map(|e| e.hash.as_str()),
        )
    }
}

fn payload_of<'a>(
    commit_id: &str,
    request_id: &str,
    command: &str,
    hashes: impl IntoIterator<Item = &'a str>,
) -> Vec<u8> {
    let mut payload = format!("{SIGNING_TAG}\n{commit_id}\n{request_id}\n{command}\n");
    for hash in hashes {
        payload.push_str(hash);
        payload.push('\n');
    }
    payload.into_bytes()
}

impl Commit {
    /// Encodes for the log.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("commits always serialise")
    }

    /// Decodes from the log, upcasting older event versions.
    pub fn from_bytes(bytes: &[u8]) -> Result<Commit, DecodeError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(DecodeError::from_serde)?;
        Commit::from_raw(value)
    }

    /// Decodes from raw JSON, upcasting older event versions.
    pub fn from_raw(mut value: serde_json::Value) -> Result<Commit, DecodeError> {
        if let Some(events) = value.get_mut("events").and_then(|e| e.as_array_mut()) {
            for event in events.iter_mut() {
                crate::upcast::upcast_envelope(event)?;
            }
        }
        serde_json::from_value(value).map_err(DecodeError::from_serde)
    }

    /// Version of the last event in this commit.
    pub fn last_version(&self) -> u64 {
        self.events.last().map(|e| e.version).unwrap_or(0)
    }
}

/// A command with its metadata, as submitted over NATS (`bianmin.cmd.<action>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandEnvelope {
    /// Idempotency key: a retried command with the same id is not applied twice.
    pub command_id: Uuid,
    /// The request addressed.
    pub request_id: RequestId,
    /// Optional conversation id; defaults to the command id.
    #[serde(default)]
    pub correlation_id: Option<Uuid>,
    /// Record the command only if the request is still at this version (the HTTP `If-Match`);
    /// otherwise the answer is `version_mismatch` and nothing is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    /// The command, tagged by `action`.
    pub command: Command,
}

/// A commit with its position in the global log (the JetStream stream sequence, or the
/// SQLite row id). Positions are strictly increasing and never reused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedCommit {
    /// Global position, 1-based.
    pub position: u64,
    /// The commit.
    pub commit: Commit,
}

/// Namespace for the engine's deterministic UUIDv5 ids (the reference-data and digest stream
/// ids; the legacy request ids of intake keys).
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1d_9f0e_2c3a_4e5b_8d7c_1a2b_3c4d_5e6f);

/// The aggregate id under which reference-data changes are recorded.
pub fn reference_data_stream_id() -> RequestId {
    Uuid::new_v5(&ID_NAMESPACE, b"bianmin:reference-data")
}

/// The aggregate id under which daily digests are recorded.
pub fn digest_stream_id() -> RequestId {
    Uuid::new_v5(&ID_NAMESPACE, b"bianmin:daily-digests")
}

/// The public UUIDv5 request id intake derived from a channel and the upstream ticket id
/// before ids were keyed with the instance's secret. Anyone can compute it, so it is used only
/// to find requests that older logs hold under it (`engine_service::intake_ids`).
pub fn legacy_intake_request_id(channel: Channel, external_id: &str) -> RequestId {
    Uuid::new_v5(
        &ID_NAMESPACE,
        format!("intake:{}:{}", channel.as_str(), external_id).as_bytes(),
    )
}
