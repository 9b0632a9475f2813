//! Tamper evidence: recomputes every request's hash chain over the raw stored bytes.
//!
//! Each stored commit is parsed as plain JSON (never upcast: an old event keeps the hash it was
//! written with). For every event the checker recomputes [`hash_of_raw`] and compares it with the
//! stored `hash`, checks that `prev_hash` names the previous event's hash ([`GENESIS_HASH`] for
//! the first), that versions run densely from 1, and that every record and event belongs to the
//! request. The first broken link is reported with its log position.
//!
//! Signatures: from the log's first signed record on, every record must carry a signature by
//! a key of the log's keyring ([`engine_log::signing`]); a record without one (a client that may
//! publish to the event subjects forging a chained commit), with an unknown key or with a
//! signature that does not hold is a broken link. Unsigned records before signing began are
//! counted as such, never as signed.

use std::collections::HashSet;

use indicatif::ProgressBar;
use schemas::RequestId;
use schemas::envelope::{GENESIS_HASH, hash_of_raw};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::AuditError;
use engine_log::EventLog;
use engine_log::signing::{Keyring, SignatureCheck};

/// Commits read per batch while enumerating the log.
const SCAN_BATCH_LEN: usize = 256;

/// The first place a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    /// The request whose chain breaks (nil when a record names no readable request).
    pub request_id: RequestId,
    /// The version the event should have had, when the break is inside an event.
    pub version: Option<u64>,
    /// The log position of the record holding the break.
    pub position: u64,
    /// The event's id as stored, when readable.
    pub event_id: Option<Uuid>,
    /// What is wrong.
    pub what: String,
}

/// The result of checking one request's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// The request.
    pub request_id: RequestId,
    /// Records (commits) read.
    pub commits: usize,
    /// Events whose link held.
    pub events_verified: u64,
    /// The hash of the last verified event (the chain head), when any.
    pub head: Option<String>,
    /// The first broken link; `None` when the whole chain holds.
    pub broken: Option<BrokenLink>,
    /// Records whose signature by a trusted key holds.
    pub signed: usize,
    /// Unsigned records written before signing began (see [`LogReport::signing_began_at`]).
    pub unsigned_before_signing: usize,
}

/// What signature checks a chain check makes: the trusted keys, and the position of the
/// log's first signed record — every record from there on must be signed by a trusted key;
/// unsigned records before it are counted, never taken for signed.
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    /// The trusted public keys.
    pub keyring: &'a Keyring,
    /// The log's first signed record, if any.
    pub signing_began_at: Option<u64>,
}

impl ChainReport {
    /// Whether the chain holds from genesis to head.
    pub fn ok(&self) -> bool {
        self.broken.is_none()
    }
}

/// The result of checking every chain in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct LogReport {
    /// Requests (streams) checked.
    pub requests: usize,
    /// Records read.
    pub commits: usize,
    /// Events whose link held.
    pub events_verified: u64,
    /// Every broken chain's first broken link, in log order of the request's first record.
    pub broken: Vec<BrokenLink>,
    /// The log's head position when the check started. Positions are dense (no deletes), so
    /// a check that read fewer records than this did not see the whole log (e.g. it read a
    /// lagging replica) and does not pass.
    pub log_head: u64,
    /// Records whose signature by a trusted key holds.
    pub signed: usize,
    /// Unsigned records before [`LogReport::signing_began_at`] (written before the engine
    /// signed commits); they are chained, but nothing proves which writer wrote them.
    pub unsigned_before_signing: usize,
    /// The position of the log's first signed record; from there on every record must carry
    /// a trusted signature.
    pub signing_began_at: Option<u64>,
}

impl LogReport {
    /// Whether every chain holds and every record up to the head was read.
    pub fn ok(&self) -> bool {
        self.broken.is_empty() && self.complete()
    }

    /// Whether the check read as many records as the log held at its start.
    pub fn complete(&self) -> bool {
        self.commits as u64 >= self.log_head
    }
}

/// Checks the chain of one request from the raw records `load_raw` returned (pure), without
/// signature checks.
pub fn verify_raw(request_id: RequestId, records: &[(u64, Vec<u8>)]) -> ChainReport {
    verify_raw_trusting(request_id, records, None)
}

/// Checks the chain of one request and, with `trust`, every record's signature (pure).
pub fn verify_raw_trusting(
    request_id: RequestId,
    records: &[(u64, Vec<u8>)],
    trust: Option<Trust<'_>>,
) -> ChainReport {
    let mut report = ChainReport {
        request_id,
        commits: records.len(),
        events_verified: 0,
        head: None,
        broken: None,
        signed: 0,
        unsigned_before_signing: 0,
    };
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut next_version = 1u64;
    let mut last_position = 0u64;
    for (position, bytes) in records {
        let position = *position;
        let brk = |version: Option<u64>, event_id: Option<Uuid>, what: String| BrokenLink {
            request_id,
            version,
            position,
            event_id,
            what,
        };
        if position <= last_position {
            report.broken = Some(brk(
                Some(next_version),
                None,
                format!("position {position} does not follow position {last_position}"),
            ));
            return report;
        }
        last_position = position;
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(value) => value,
            Err(e) => {
                report.broken = Some(brk(
                    Some(next_version),
                    None,
                    format!("record is not JSON: {e}"),
                ));
                return report;
            }
        };
        if let Some(what) = commit_mismatch(&value, request_id) {
            report.broken = Some(brk(Some(next_version), None, what));
            return report;
        }
        let events = value
            .get("events")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for event in events {
            let event_id = event
                .get("event_id")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok());
            if let Some(what) = event_mismatch(event, request_id, next_version, &prev_hash) {
                report.broken = Some(brk(Some(next_version), event_id, what));
                return report;
            }
            prev_hash = event
                .get("hash")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            next_version += 1;
            report.events_verified += 1;
        }
        if let Some(trust) = trust {
            match signature_problem(&value, position, trust) {
                Ok(true) => report.signed += 1,
                Ok(false) => report.unsigned_before_signing += 1,
                Err(what) => {
                    report.broken = Some(brk(None, None, what));
                    return report;
                }
            }
        }
    }
    if report.events_verified > 0 {
        report.head = Some(prev_hash);
    }
    report
}

/// Whether the record at `position` is signed (`Ok(true)`), unsigned from before signing began
/// (`Ok(false)`), or what is wrong with its signature.
fn signature_problem(value: &Value, position: u64, trust: Trust<'_>) -> Result<bool, String> {
    match trust.keyring.check(value) {
        SignatureCheck::Valid => Ok(true),
        SignatureCheck::Unsigned => match trust.signing_began_at {
            Some(began) if position >= began => Err(format!(
                "unsigned record after signing began at position {began}"
            )),
            _ => Ok(false),
        },
        SignatureCheck::UnknownKey(key) => Err(format!("signed by unknown key {key}")),
        SignatureCheck::Invalid(what) => Err(format!("bad signature: {what}")),
    }
}

/// The position of the log's first signed record (scans from the start until it finds one).
pub async fn signing_began_at(log: &EventLog) -> Result<Option<u64>, AuditError> {
    Ok(log.find_signing_start().await?)
}

/// What is wrong with a record's commit-level fields, if anything.
fn commit_mismatch(value: &Value, request_id: RequestId) -> Option<String> {
    let Some(object) = value.as_object() else {
        return Some("record is not a JSON object".into());
    };
    let stored = object.get("request_id").and_then(Value::as_str);
    if stored != Some(request_id.to_string().as_str()) {
        return Some(format!(
            "record names request {:?}, not {request_id}",
            stored.unwrap_or("")
        ));
    }
    match object.get("events").and_then(Value::as_array) {
        None => Some("record holds no `events` array".into()),
        Some(events) if events.is_empty() => Some("record holds no event".into()),
        Some(_) => None,
    }
}

/// What is wrong with one stored event, given the version and predecessor it must have.
fn event_mismatch(
    event: &Value,
    request_id: RequestId,
    version: u64,
    prev_hash: &str,
) -> Option<String> {
    if !event.is_object() {
        return Some("event is not a JSON object".into());
    }
    let stored_request = event.get("request_id").and_then(Value::as_str);
    if stored_request != Some(request_id.to_string().as_str()) {
        return Some(format!(
            "event names request {:?}",
            stored_request.unwrap_or("")
        ));
    }
    let stored_version = event.get("version").and_then(Value::as_u64);
    if stored_version != Some(version) {
        return Some(format!(
            "version {} where {version} was due",
            stored_version.map_or("missing".to_string(), |v| v.to_string())
        ));
    }
    let stored_prev = event.get("prev_hash").and_then(Value::as_str).unwrap_or("");
    if stored_prev != prev_hash {
        return Some(format!(
            "prev_hash {stored_prev} does not name the previous event's hash {prev_hash}"
        ));
    }
    let stored_hash = event.get("hash").and_then(Value::as_str).unwrap_or("");
    let computed = hash_of_raw(event);
    if stored_hash != computed {
        return Some(format!(
            "stored hash {stored_hash} but content hashes to {computed}"
        ));
    }
    None
}

/// Checks one request's chain as stored in `log`.
pub async fn verify_request(
    log: &EventLog,
    request_id: RequestId,
) -> Result<ChainReport, AuditError> {
    let signing_began_at = signing_began_at(log).await?;
    verify_request_trusting(log, request_id, signing_began_at).await
}

async fn verify_request_trusting(
    log: &EventLog,
    request_id: RequestId,
    signing_began_at: Option<u64>,
) -> Result<ChainReport, AuditError> {
    let records = log.load_raw(request_id).await?;
    let trust = Trust {
        keyring: log.keyring(),
        signing_began_at,
    };
    Ok(verify_raw_trusting(request_id, &records, Some(trust)))
}

/// Every request id in the log, in order of first appearance, read from the raw records;
/// records that name no readable request are reported as broken links (they cannot be
/// attributed to a chain).
pub async fn request_ids(log: &EventLog) -> Result<(Vec<RequestId>, Vec<BrokenLink>), AuditError> {
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    let mut undecodable = Vec::new();
    let mut from = 1u64;
    loop {
        let batch = log.read_raw_from(from, SCAN_BATCH_LEN).await?;
        for (position, bytes) in &batch {
            let named = serde_json::from_slice::<Value>(bytes).map(|raw| {
                raw.get("request_id")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<RequestId>().ok())
            });
            match named {
                Ok(Some(id)) => {
                    if seen.insert(id) {
                        ids.push(id);
                    }
                }
                Ok(None) | Err(_) => undecodable.push(BrokenLink {
                    request_id: Uuid::nil(),
                    version: None,
                    position: *position,
                    event_id: None,
                    what: match named {
                        Err(e) => format!("record does not decode: {e}"),
                        Ok(_) => "record names no request".into(),
                    },
                }),
            }
        }
        match batch.last() {
            Some((last, _)) if batch.len() == SCAN_BATCH_LEN => from = last + 1,
            _ => break,
        }
    }
    Ok((ids, undecodable))
}

/// Checks every chain in the log (requests, the reference-data stream and the digest stream).
/// `progress`, when given, gets its length set to the number of streams and ticks per stream.
pub async fn verify_all(
    log: &EventLog,
    progress: Option<&ProgressBar>,
) -> Result<LogReport, AuditError> {
    let log_head = log.last_position().await?;
    let (ids, undecodable) = request_ids(log).await?;
    let signing_began_at = signing_began_at(log).await?;
    if let Some(bar) = progress {
        bar.set_length(ids.len() as u64);
    }
    let mut report = LogReport {
        broken: undecodable,
        log_head,
        signing_began_at,
        ..LogReport::default()
    };
    for id in ids {
        let chain = verify_request_trusting(log, id, signing_began_at).await?;
        report.requests += 1;
        report.signed += chain.signed;
        report.unsigned_before_signing += chain.unsigned_before_signing;
        report.commits += chain.commits;
        report.events_verified += chain.events_verified;
        if let Some(broken) = chain.broken {
            report.broken.push(broken);
        }
        if let Some(bar) = progress {
            bar.inc(1);
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    // A record that names no request is also seen by its request's chain when the store
    // files it under one (a JetStream subject): keep the attributed report.
    report
        .broken
        .sort_by_key(|b| (b.position, b.request_id.is_nil()));
    report.broken.dedup_by_key(|b| b.position);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(request: Uuid, version: u64, prev: &str) -> Value {
        let mut e = json!({
            "event_id": Uuid::from_u128(version as u128).to_string(),
            "request_id": request.to_string(),
            "version": version,
            "prev_hash": prev,
            "type": "progress_noted",
            "data": {"note": format!("step {version}")},
        });
        let hash = hash_of_raw(&e);
        e["hash"] = Value::String(hash);
        e
    }

    fn chain(request: Uuid, n: u64) -> Vec<(u64, Vec<u8>)> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|v| {
                let e = event(request, v, &prev);
                prev = e["hash"].as_str().unwrap().to_string();
                let commit = json!({"commit_id": Uuid::from_u128(1000 + v as u128).to_string(),
                    "request_id": request.to_string(), "command": "note_progress", "events": [e]});
                (v * 10, serde_json::to_vec(&commit).unwrap())
            })
            .collect()
    }

    #[test]
    fn a_clean_chain_holds_and_names_its_head() {
        let id = Uuid::from_u128(7);
        let records = chain(id, 4);
        let report = verify_raw(id, &records);
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.events_verified, 4);
        let last: Value = serde_json::from_slice(&records[3].1).unwrap();
        assert_eq!(report.head.as_deref(), last["events"][0]["hash"].as_str());
    }

    #[test]
    fn an_edited_payload_breaks_at_that_event() {
        let id = Uuid::from_u128(7);
        let mut records = chain(id, 4);
        let edited = String::from_utf8(records[2].1.clone())
            .unwrap()
            .replace("step 3", "step X");
        records[2].1 = edited.into_bytes();
        let broken = verify_raw(id, &records).broken.expect("broken");
        assert_eq!((broken.version, broken.position), (Some(3), 30));
        assert!(broken.what.contains("hashes to"), "{}", broken.what);
    }

    #[test]
    fn a_rehashed_edit_breaks_at_the_next_link() {
        let id = Uuid::from_u128(7);
        let mut records = chain(id, 4);
        let mut commit: Value = serde_json::from_slice(&records[1].1).unwrap();
        commit["events"][0]["data"]["note"] = json!("rewritten");
        let rehash = hash_of_raw(&commit["events"][0]);
        commit["events"][0]["hash"] = json!(rehash);
        records[1].1 = serde_json::to_vec(&commit).unwrap();
        let broken = verify_raw(id, &records).broken.expect("broken");
        assert_eq!((broken.version, broken.position), (Some(3), 30));
        assert!(broken.what.contains("prev_hash"), "{}", broken.what);
    }

    #[test]
    fn a_missing_event_and_a_foreign_record_are_caught() {
        let id = Uuid::from_u128(7);
        let mut records = chain(id, 4);
        records.remove(1);
        let broken = verify_raw(id, &records).broken.expect("gap");
        assert_eq!((broken.version, broken.position), (Some(2), 30));

        let other = chain(Uuid::from_u128(8), 1);
        let mut records = chain(id, 2);
        records.push((99, other[0].1.clone()));
        let broken = verify_raw(id, &records).broken.expect("foreign");
        assert_eq!(broken.position, 99);
        assert!(broken.what.contains("names request"), "{}", broken.what);

        let mut records = chain(id, 2);
        records.push((100, b"{not json".to_vec()));
        assert_eq!(
            verify_raw(id, &records).broken.expect("garbage").position,
            100
        );
    }
}
