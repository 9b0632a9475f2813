//! Reference data, recorded: every change to the catalogue, policy profiles, calendars, the
//! directory and role grants in force becomes a `reference_data_recorded` event on the
//! reference-data stream (version, SHA-256 of the content, source, who and when), so an auditor
//! can tell which policy stamped which deadline.
//!
//! [`record`] is called at start-up and on every reload with what is in force; it writes only
//! what differs from the last recorded content of each kind, so restarts add nothing. Each
//! change carries who recorded it and why ([`Attribution`]): an operator through
//! `bianmin policy record` or `bianmin calendar load`, or the engine itself when it finds at
//! start-up a change nobody recorded. Text content is kept on the event with a unified diff
//! from the previous content of its kind, except role grants (credential hashes).

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

/// Largest content kept on a `reference_data_recorded` event (the hash is always kept).
pub const MAX_RECORDED_CONTENT_BYTES: usize = 512 * 1024;

/// Lines of unchanged context around each change of a recorded diff.
const DIFF_CONTEXT_LINES: usize = 3;

/// Who records a reference-data change, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    /// The operator (id, role `system`: the change comes through the engine's own tools) or
    /// the engine itself (`bianmin`).
    pub actor: Actor,
    /// Why, in the operator's words.
    pub reason: Option<String>,
}

impl Attribution {
    /// The engine recording what it found in force at start-up, not recorded by an operator.
    pub fn engine() -> Attribution {
        Attribution {
            actor: Actor {
                id: "bianmin".into(),
                role: schemas::Role::System,
                unit: None,
            },
            reason: Some("found in force at start-up; no operator recorded this change".into()),
        }
    }

    /// An operator of the engine's tools, with the reason they gave.
    pub fn operator(id: &str, reason: &str) -> Attribution {
        Attribution {
            actor: Actor {
                id: id.trim().to_string(),
                role: schemas::Role::System,
                unit: None,
            },
            reason: Some(reason.trim().to_string()),
        }
    }
}

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
    by: &Attribution,
    now: Timestamp,
) -> Result<Vec<ReferenceDataRecorded>, AuditError> {
    let stream = reference_data_stream_id();
    let actor = &by.actor;
    for _ in 0..CONFLICT_ATTEMPTS_MAX {
        let commits = log.load(stream).await?;
        let expected = commits.last().map_or(0, |c| c.position);
        let events: Vec<EventEnvelope> =
            commits.into_iter().flat_map(|c| c.commit.events).collect();
        let recorded: Vec<&ReferenceDataRecorded> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::ReferenceDataRecorded(r) => Some(r),
                _ => None,
            })
            .collect();
        let changes: Vec<ReferenceDataRecorded> = items
            .iter()
            .filter_map(|item| change(item, &recorded, by.reason.as_deref()))
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

/// The change `item` makes to the recorded history, if any: a new hash or version of its kind
/// and source.
fn change(
    item: &ReferenceItem,
    recorded: &[&ReferenceDataRecorded],
    reason: Option<&str>,
) -> Option<ReferenceDataRecorded> {
    let sha256 = sha256_hex(&item.content);
    let last = recorded
        .iter()
        .rev()
        .find(|r| r.kind == item.kind && r.source == item.source);
    if last.is_some_and(|r| r.sha256 == sha256 && r.version == item.version) {
        return None;
    }
    let content = kept_content(item);
    // The previous content of the kind: from the same source, else (a file replacing the
    // built-in, say) the kind's last one; calendars from several files are told apart.
    let previous = last.or_else(|| {
        recorded
            .iter()
            .rev()
            .find(|r| r.kind == item.kind && item.kind != ReferenceKind::Calendar)
    });
    let diff = match (previous.and_then(|r| r.content.as_deref()), &content) {
        (Some(old), Some(new)) => Some(unified_diff(old, new, previous, item)),
        _ => None,
    };
    Some(ReferenceDataRecorded {
        kind: item.kind,
        version: item.version.clone(),
        sha256,
        source: item.source.clone(),
        reason: reason.map(str::to_string),
        content,
        diff,
    })
}

/// The content kept on the event: UTF-8 text within the size limit, never role grants.
fn kept_content(item: &ReferenceItem) -> Option<String> {
    if item.kind == ReferenceKind::RoleGrants || item.content.len() > MAX_RECORDED_CONTENT_BYTES {
        return None;
    }
    String::from_utf8(item.content.clone()).ok()
}

/// A unified diff from `old` (the recorded `previous`) to `new` (`item`), headed by versions
/// and sources.
fn unified_diff(
    old: &str,
    new: &str,
    previous: Option<&&ReferenceDataRecorded>,
    item: &ReferenceItem,
) -> String {
    let from = previous.map_or_else(String::new, |r| format!("{} ({})", r.version, r.source));
    let to = format!("{} ({})", item.version, item.source);
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(DIFF_CONTEXT_LINES)
        .header(&from, &to)
        .to_string()
}
