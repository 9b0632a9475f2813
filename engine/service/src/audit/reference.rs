//! Reference data, recorded: every change to the catalogue, policy profiles, calendars, the
//! directory and role grants in force becomes a `reference_data_recorded` event on the
//! reference-data stream (version, SHA-256 of the content, source, who and when), so an auditor
//! can tell which policy stamped which deadline.
//!
//! [`record`] is called at start-up and on every reload with what is in force; it writes only
//! what differs from the last recorded content of each kind, so restarts add nothing.

use schemas::envelope::{GENESIS_HASH, ID_NAMESPACE, reference_data_stream_id};
use schemas::event::{ReferenceDataRecorded, ReferenceKind};
use schemas::{Actor, CommitHeader, Event, EventEnvelope, Timestamp};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::AuditError;
use engine_log::{EventLog, LogError};

/// Attempts when another engine records reference data at the same moment.
const CONFLICT_ATTEMPTS_MAX: u32 = 5;

/// One piece of reference data in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceItem {
    /// What it is.
    pub kind: ReferenceKind,
    /// Its declared version (e.g. `community-station@2026.1`).
    pub version: String,
    /// The content as loaded (hashed, never stored).
    pub content: Vec<u8>,
    /// Where it came from (`builtin` or a path).
    pub source: String,
}

/// One recorded change, with who and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceRecord {
    /// The change.
    pub recorded: ReferenceDataRecorded,
    /// Who recorded it.
    pub actor: Actor,
    /// When it came into force.
    pub recorded_at: Timestamp,
    /// Its event id.
    pub event_id: Uuid,
}

/// SHA-256 (hex) of a content.
pub fn sha256_hex(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// Every recorded change, in order.
pub async fn history(log: &EventLog) -> Result<Vec<ReferenceRecord>, AuditError> {
    let commits = log.load(reference_data_stream_id()).await?;
    Ok(commits
        .into_iter()
        .flat_map(|c| c.commit.events)
        .filter_map(|e| match e.event {
            Event::ReferenceDataRecorded(recorded) => Some(ReferenceRecord {
                recorded,
                actor: e.actor,
                recorded_at: e.recorded_at,
                event_id: e.event_id,
            }),
            _ => None,
        })
        .collect())
}

/// The record of `kind` in force at `at` (the last one recorded at or before it).
pub fn in_force(
    records: &[ReferenceRecord],
    kind: ReferenceKind,
    at: Timestamp,
) -> Option<&ReferenceRecord> {
    records
        .iter()
        .rfind(|r| r.recorded.kind == kind && r.recorded_at <= at)
}

/// Records the items whose content differs from the last recorded content of their kind (and
/// source: two calendars from different files are tracked apart), as one commit. Returns what
/// was recorded (empty when nothing changed).
pub async fn record(
    log: &EventLog,
    items: &[ReferenceItem],
    actor: &Actor,
    now: Timestamp,
) -> Result<Vec<ReferenceDataRecorded>, AuditError> {
    let stream = reference_data_stream_id();
    for _ in 0..CONFLICT_ATTEMPTS_MAX {
        let commits = log.load(stream).await?;
        let expected = commits.last().map_or(0, |c| c.position);
        let events: Vec<EventEnvelope> =
            commits.into_iter().flat_map(|c| c.commit.events).collect();
        let changes: Vec<ReferenceDataRecorded> = items
            .iter()
            .map(|item| ReferenceDataRecorded {
                kind: item.kind,
                version: item.version.clone(),
                sha256: sha256_hex(&item.content),
                source: item.source.clone(),
            })
            .filter(|change| {
                let last = events.iter().rev().find_map(|e| match &e.event {
                    Event::ReferenceDataRecorded(r)
                        if r.kind == change.kind && r.source == change.source =>
                    {
                        Some(r)
                    }
                    _ => None,
                });
                last.is_none_or(|r| r.sha256 != change.sha256 || r.version != change.version)
            })
            .collect();
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        // Deterministic ids: the same change on the same stream head is the same commit.
        let key = changes
            .iter()
            .map(|c| format!("{:?}:{}:{}", c.kind, c.source, c.sha256))
            .collect::<Vec<_>>();
        let commit_id = Uuid::new_v5(
            &ID_NAMESPACE,
            format!("reference:{expected}:{}", key.join("|")).as_bytes(),
        );
        let commit = CommitHeader {
            commit_id,
            stream,
            command: schemas::CommandKind::RecordReferenceData,
            actor: actor.clone(),
            occurred_at: now,
            recorded_at: now,
            correlation_id: commit_id,
            after_version: events.last().map_or(0, |e| e.version),
            after_hash: events
                .last()
                .map_or_else(|| GENESIS_HASH.to_string(), |e| e.hash.clone()),
        }
        .seal(
            changes
                .iter()
                .cloned()
                .map(Event::ReferenceDataRecorded)
                .collect(),
            |i| Uuid::new_v5(&commit_id, format!("{i}").as_bytes()),
        );
        match log.append(&commit, expected).await {
            Ok(_) => {
                for change in &changes {
                    tracing::info!(kind = ?change.kind, version = %change.version, sha256 = %change.sha256, "reference data recorded");
                }
                return Ok(changes);
            }
            Err(LogError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AuditError::Log(LogError::Unavailable(
        "reference-data stream kept changing while recording".into(),
    )))
}
