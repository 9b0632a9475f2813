//! Daily digests: one Merkle root per day over the events the log recorded that day, chained
//! to the previous day's root, recorded on the digest stream and published to NATS so an
//! outside party can hold the engine to its history.
//!
//! **Definition** (what [`verify_digests`] and any outside party recompute):
//! - a day is a calendar day in Asia/Shanghai (UTC+8, no daylight saving);
//! - the log is cut into consecutive segments: day D's segment runs from the record after the
//!   previous digest's `last_position` up to (not including) the first record whose first event
//!   was recorded on a later day; its `last_position` is the highest position in it;
//! - the leaves are the stored `hash` of every event in the segment, in log order, skipping the
//!   digest stream's own records (they are chained by `prev_root` instead);
//! - leaf = SHA-256(`0x00` ‖ hash as ASCII hex), node = SHA-256(`0x01` ‖ left ‖ right); an odd
//!   node is carried up unchanged; the root of no leaves is SHA-256 of nothing;
//! - `prev_root` is the previous digest's `merkle_root` ([`GENESIS_HASH`] for the first).
//!
//! A day is digested once it is closed (its end plus a grace period has passed on the clock),
//! under the commit id UUIDv5("digest:<day>"), so two engines recording the same day write one
//! record. Each digest is published to `<prefix>.audit.digest.<day>` with that id as
//! `Nats-Msg-Id`.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use chrono::{NaiveDate, TimeZone};
use engine_core::Clock;
use schemas::envelope::{GENESIS_HASH, ID_NAMESPACE, digest_stream_id};
use schemas::event::DailyDigestRecorded;
use schemas::{Commit, CommitHeader, Event, LoggedCommit, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{AuditError, engine_actor};
use engine_log::{EventLog, LogError};

/// Records read per batch while cutting segments.
const SCAN_BATCH_LEN: usize = 256;

/// The Asia/Shanghai calendar day of an instant.
pub fn day_of(at: Timestamp) -> NaiveDate {
    at.with_timezone(&schemas::local_time::offset())
        .date_naive()
}

/// The first instant after `day` (its following midnight, Asia/Shanghai), in UTC.
pub fn end_of(day: NaiveDate) -> Timestamp {
    let next = day.succ_opt().unwrap_or(day);
    let midnight = next.and_hms_opt(0, 0, 0).expect("midnight exists");
    schemas::local_time::offset()
        .from_local_datetime(&midnight)
        .single()
        .expect("a fixed offset has no gaps")
        .to_utc()
}

/// The Merkle root (hex) over event hashes, as defined in the module docs.
pub fn merkle_root<S: AsRef<str>>(hashes: &[S]) -> String {
    if hashes.is_empty() {
        return hex::encode(Sha256::digest([]));
    }
    let mut level: Vec<[u8; 32]> = hashes
        .iter()
        .map(|h| {
            let mut hasher = Sha256::new();
            hasher.update([0u8]);
            hasher.update(h.as_ref().as_bytes());
            hasher.finalize().into()
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => {
                    let mut hasher = Sha256::new();
                    hasher.update([1u8]);
                    hasher.update(left);
                    hasher.update(right);
                    hasher.finalize().into()
                }
                [odd] => *odd,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    hex::encode(level[0])
}

/// The commit id (and message id) of a day's digest.
pub fn digest_commit_id(day: NaiveDate) -> Uuid {
    Uuid::new_v5(&ID_NAMESPACE, format!("digest:{day}").as_bytes())
}

/// The day a commit counts for: that of its first event's `recorded_at`.
fn commit_day(commit: &Commit) -> Option<NaiveDate> {
    commit.events.first().map(|e| day_of(e.recorded_at))
}

/// Computes day `day`'s digest from the segment starting after `after` (the previous
/// digest's `last_position`, 0 for the first), chained to `prev_root`.
pub async fn compute_day(
    log: &EventLog,
    day: NaiveDate,
    after: u64,
    prev_root: &str,
) -> Result<DailyDigestRecorded, AuditError> {
    let digest_stream = digest_stream_id();
    let mut hashes = Vec::new();
    let mut last_position = after;
    let mut from = after + 1;
    'scan: loop {
        let batch = log.read_from(from, SCAN_BATCH_LEN).await?;
        let full = batch.len() == SCAN_BATCH_LEN;
        for LoggedCommit { position, commit } in &batch {
            if commit_day(commit).is_some_and(|d| d > day) {
                break 'scan;
            }
            last_position = *position;
            from = position + 1;
            if commit.request_id != digest_stream {
                hashes.extend(commit.events.iter().map(|e| e.hash.clone()));
            }
        }
        if !full {
            break;
        }
    }
    Ok(DailyDigestRecorded {
        day: day.format("%Y-%m-%d").to_string(),
        n_events: hashes.len() as u64,
        last_position,
        merkle_root: merkle_root(&hashes),
        prev_root: prev_root.to_string(),
    })
}

/// The digests recorded so far, in order, with the digest stream's last position.
pub async fn recorded(log: &EventLog) -> Result<(Vec<DailyDigestRecorded>, u64), AuditError> {
    let commits = log.load(digest_stream_id()).await?;
    let last = commits.last().map_or(0, |c| c.position);
    let digests = commits
        .into_iter()
        .flat_map(|c| c.commit.events)
        .filter_map(|e| match e.event {
            Event::DailyDigestRecorded(d) => Some(d),
            _ => None,
        })
        .collect();
    Ok((digests, last))
}

/// Parses a `YYYY-MM-DD` day.
pub fn parse_day(day: &str) -> Result<NaiveDate, AuditError> {
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|e| AuditError::Invalid(format!("day {day:?}: {e}")))
}

/// The first day that has a record in the log (none for an empty log).
async fn first_day(log: &EventLog) -> Result<Option<NaiveDate>, AuditError> {
    Ok(log
        .read_from(1, 1)
        .await?
        .first()
        .and_then(|c| commit_day(&c.commit)))
}

/// Settings of the digest task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DigestConfig {
    /// The instance's names (set by the composition root from `[nats]`, not configurable
    /// here); digests go to `<prefix>.audit.digest.<day>`.
    #[serde(skip)]
    pub names: schemas::Names,
    /// Seconds after a day's end before it is digested (lets in-flight appends land).
    pub grace_secs: u64,
    /// Seconds between checks for a newly closed day.
    pub poll_secs: u64,
    /// A file outside the data directory every recorded digest is also appended to, signed
    /// ([`super::anchor`]); `bianmin verify --digests` checks the log against it.
    pub anchor_file: Option<std::path::PathBuf>,
}

impl Default for DigestConfig {
    fn default() -> DigestConfig {
        DigestConfig {
            names: schemas::Names::default(),
            grace_secs: 300,
            poll_secs: 60,
            anchor_file: None,
        }
    }
}

/// Records (and publishes) the digest of every closed day not yet recorded, in day order.
/// Returns the digests recorded by this call.
pub async fn record_closed_days(
    log: &EventLog,
    nats: Option<&async_nats::Client>,
    cfg: &DigestConfig,
    now: Timestamp,
) -> Result<Vec<DailyDigestRecorded>, AuditError> {
    let mut written = Vec::new();
    loop {
        let (digests, stream_last) = recorded(log).await?;
        let (day, after, prev_root) = match digests.last() {
            Some(last) => {
                let day = parse_day(&last.day)?;
                (
                    day.succ_opt().unwrap_or(day),
                    last.last_position,
                    last.merkle_root.clone(),
                )
            }
            None => match first_day(log).await? {
                Some(day) => (day, 0, GENESIS_HASH.to_string()),
                None => return Ok(written),
            },
        };
        let closes_at = end_of(day) + chrono::Duration::seconds(cfg.grace_secs as i64);
        if now < closes_at {
            return Ok(written);
        }
        let digest = compute_day(log, day, after, &prev_root).await?;
        let commit_id = digest_commit_id(day);
        let (after_version, after_hash) = (digests.len() as u64, last_hash(log).await?);
        let event_id = Uuid::new_v5(&ID_NAMESPACE, format!("digest-event:{day}").as_bytes());
        let commit = CommitHeader {
            commit_id,
            stream: digest_stream_id(),
            command: schemas::CommandKind::RecordDigest,
            actor: engine_actor("digest"),
            occurred_at: now,
            recorded_at: now,
            correlation_id: commit_id,
            after_version,
            after_hash,
        }
        .seal(vec![Event::DailyDigestRecorded(digest.clone())], |_| {
            event_id
        });
        match log.append(&commit, stream_last).await {
            Ok(appended) => {
                if !appended.duplicate {
                    tracing::info!(day = %digest.day, root = %digest.merkle_root, events = digest.n_events, "daily digest recorded");
                }
                if let Some(path) = &cfg.anchor_file {
                    super::anchor::append(path, &digest, log)?;
                }
                if let Some(client) = nats {
                    publish(client, cfg, &digest).await?;
                }
                written.push(digest);
            }
            // Another engine recorded a digest first: reload and go on from there.
            Err(LogError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The hash of the digest stream's last event (the next one's `prev_hash`).
async fn last_hash(log: &EventLog) -> Result<String, AuditError> {
    let commits = log.load(digest_stream_id()).await?;
    Ok(commits
        .last()
        .and_then(|c| c.commit.events.last())
        .map_or_else(|| GENESIS_HASH.to_string(), |e| e.hash.clone()))
}

/// The subject a day's digest is published to.
pub fn subject(cfg: &DigestConfig, day: &str) -> String {
    cfg.names.digest_subject(day)
}

/// Publishes one digest (JSON) with its stable message id.
pub async fn publish(
    client: &async_nats::Client,
    cfg: &DigestConfig,
    digest: &DailyDigestRecorded,
) -> Result<(), AuditError> {
    let day = parse_day(&digest.day)?;
    let mut headers = HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        digest_commit_id(day).to_string().as_str(),
    );
    let payload = serde_json::to_vec(digest).expect("digests always serialise");
    client
        .publish_with_headers(subject(cfg, &digest.day), headers, payload.into())
        .await
        .map_err(|e| AuditError::Nats(e.to_string()))?;
    client
        .flush()
        .await
        .map_err(|e| AuditError::Nats(e.to_string()))
}

/// One recomputed digest compared with the recorded one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DigestCheck {
    /// As recorded.
    pub recorded: DailyDigestRecorded,
    /// As recomputed from the log now.
    pub recomputed: DailyDigestRecorded,
}

impl DigestCheck {
    /// Whether the recorded digest still matches the log.
    pub fn ok(&self) -> bool {
        self.recorded == self.recomputed
    }
}

/// Recomputes every recorded digest from the log (each over the recorded segment boundary,
/// chained to the previous recorded root) and compares.
pub async fn verify_digests(log: &EventLog) -> Result<Vec<DigestCheck>, AuditError> {
    let (digests, _) = recorded(log).await?;
    let mut checks = Vec::with_capacity(digests.len());
    let mut after = 0;
    let mut prev_root = GENESIS_HASH.to_string();
    for digest in digests {
        let recomputed =
            recompute_segment(log, &digest.day, after, digest.last_position, &prev_root).await?;
        after = digest.last_position;
        prev_root = digest.merkle_root.clone();
        checks.push(DigestCheck {
            recorded: digest,
            recomputed,
        });
    }
    Ok(checks)
}

/// The digest of the records in (`after`, `last`] labelled `day`.
async fn recompute_segment(
    log: &EventLog,
    day: &str,
    after: u64,
    last: u64,
    prev_root: &str,
) -> Result<DailyDigestRecorded, AuditError> {
    let digest_stream = digest_stream_id();
    let mut hashes = Vec::new();
    let mut from = after + 1;
    while from <= last {
        let want = usize::try_from(last - from + 1)
            .unwrap_or(usize::MAX)
            .min(SCAN_BATCH_LEN);
        let batch = log.read_from(from, want).await?;
        let Some(end) = batch.last().map(|c| c.position) else {
            break;
        };
        for logged in batch.iter().filter(|c| c.position <= last) {
            if logged.commit.request_id != digest_stream {
                hashes.extend(logged.commit.events.iter().map(|e| e.hash.clone()));
            }
        }
        from = end + 1;
    }
    Ok(DailyDigestRecorded {
        day: day.to_string(),
        n_events: hashes.len() as u64,
        last_position: last,
        merkle_root: merkle_root(&hashes),
        prev_root: prev_root.to_string(),
    })
}

/// Runs until `shutdown`: on start re-publishes the latest recorded digest (same message id, so
/// a receiver that already has it ignores it), then records every closed day as it closes.
pub async fn run(
    log: EventLog,
    nats: Option<async_nats::Client>,
    clock: Arc<dyn Clock>,
    cfg: DigestConfig,
    shutdown: CancellationToken,
) -> Result<(), AuditError> {
    if let (Some(client), Ok((digests, _))) = (nats.as_ref(), recorded(&log).await)
        && let Some(latest) = digests.last()
        && let Err(error) = publish(client, &cfg, latest).await
    {
        tracing::warn!(%error, "re-publishing the latest digest failed");
    }
    let poll = Duration::from_secs(cfg.poll_secs.max(1));
    loop {
        if let Err(error) = record_closed_days(&log, nats.as_ref(), &cfg, clock.now()).await {
            tracing::warn!(%error, "daily digest step failed; retrying");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_counted_in_shanghai() {
        let late_utc: Timestamp = "2026-03-01T16:30:00Z".parse().unwrap();
        assert_eq!(day_of(late_utc).to_string(), "2026-03-02");
        let day = parse_day("2026-03-02").unwrap();
        assert_eq!(
            end_of(day),
            "2026-03-02T16:00:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn merkle_root_commits_to_every_leaf_and_its_order() {
        let a = ["aa", "bb", "cc"];
        let root = merkle_root(&a);
        assert_eq!(root.len(), 64);
        assert_ne!(root, merkle_root(&["aa", "cc", "bb"]));
        assert_ne!(root, merkle_root(&["aa", "bb"]));
        assert_ne!(root, merkle_root(&["aa", "bb", "cd"]));
        // Hand-computed for two leaves.
        let leaf = |s: &str| -> Vec<u8> {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(s.as_bytes());
            h.finalize().to_vec()
        };
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(leaf("aa"));
        h.update(leaf("bb"));
        assert_eq!(merkle_root(&["aa", "bb"]), hex::encode(h.finalize()));
        assert_eq!(merkle_root::<&str>(&[]), hex::encode(Sha256::digest([])));
    }
}
