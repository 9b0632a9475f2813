//! Digests anchored outside the data directory: every recorded daily digest is also appended,
//! signed by the engine's key, as one JSON line to an operator-chosen file (`digest.anchor_file`,
//! e.g. on another volume or a write-once mount), besides being published to
//! `<prefix>.audit.digest.<day>`. `bianmin verify --digests` recomputes every anchored day from
//! the log: a rewrite of the log that also rewrote its own digest records no longer matches
//! the roots anchored before it, and a digest record removed from the log is missing.

use std::io::{BufRead as _, Write as _};
use std::path::Path;

use schemas::envelope::CommitSignature;
use schemas::event::DailyDigestRecorded;
use serde::{Deserialize, Serialize};

use super::{AuditError, digest};
use engine_log::EventLog;
use engine_log::signing::SignatureCheck;

/// One line of the anchor file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchoredDigest {
    /// The digest as recorded in the log.
    pub digest: DailyDigestRecorded,
    /// The engine's signature over the digest's JSON (absent on a log without a signer).
    pub signature: Option<CommitSignature>,
}

/// The bytes an anchored digest's signature covers.
fn signed_bytes(digest: &DailyDigestRecorded) -> Vec<u8> {
    let mut bytes = b"bianmin-digest-anchor-v1\n".to_vec();
    bytes.extend(serde_json::to_vec(digest).expect("digests always serialise"));
    bytes
}

/// Appends `digest` to the anchor file at `path` (created if missing), signed with the log's
/// key, unless a line for its day is already there. Returns once the line is on disk.
pub fn append(path: &Path, digest: &DailyDigestRecorded, log: &EventLog) -> Result<(), AuditError> {
    if read(path)?.iter().any(|a| a.digest.day == digest.day) {
        return Ok(());
    }
    let line = AnchoredDigest {
        digest: digest.clone(),
        signature: log.signer().map(|s| s.sign_bytes(&signed_bytes(digest))),
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut text = serde_json::to_vec(&line).expect("anchors always serialise");
    text.push(b'\n');
    file.write_all(&text)?;
    file.sync_all()?;
    Ok(())
}

/// Every anchored digest in the file (none when it does not exist).
pub fn read(path: &Path) -> Result<Vec<AnchoredDigest>, AuditError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut anchored = Vec::new();
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str(&line).map_err(|e| {
            AuditError::Invalid(format!("{} line {}: {e}", path.display(), number + 1))
        })?;
        anchored.push(parsed);
    }
    Ok(anchored)
}

/// One anchored day checked against the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnchorCheck {
    /// The day.
    pub day: String,
    /// The root anchored outside.
    pub anchored_root: String,
    /// The root recomputed from the log now, when the log still records the day.
    pub recomputed_root: Option<String>,
    /// What is wrong; `None` when the log still matches the anchor.
    pub problem: Option<String>,
}

/// Checks every digest anchored in `path` against `log`: the log must still record the day,
/// its recorded and recomputed roots must equal the anchored one, and the anchor's signature
/// must be by a trusted key.
pub async fn check(log: &EventLog, path: &Path) -> Result<Vec<AnchorCheck>, AuditError> {
    let anchored = read(path)?;
    let recorded = digest::verify_digests(log).await?;
    Ok(anchored
        .into_iter()
        .map(|anchor| {
            let day = anchor.digest.day.clone();
            let in_log = recorded.iter().find(|c| c.recorded.day == day);
            let problem = match (in_log, signature_problem(log, &anchor)) {
                (_, Some(problem)) => Some(problem),
                (None, None) => Some("the log no longer records this day's digest".into()),
                (Some(c), None) if c.recomputed.merkle_root != anchor.digest.merkle_root => Some(
                    format!("the log now hashes to {}", c.recomputed.merkle_root),
                ),
                (Some(c), None) if c.recorded != anchor.digest => {
                    Some("the log's digest record differs from the anchored one".into())
                }
                (Some(_), None) => None,
            };
            AnchorCheck {
                day,
                anchored_root: anchor.digest.merkle_root,
                recomputed_root: in_log.map(|c| c.recomputed.merkle_root.clone()),
                problem,
            }
        })
        .collect())
}

fn signature_problem(log: &EventLog, anchor: &AnchoredDigest) -> Option<String> {
    let signature = anchor.signature.as_ref()?;
    match log
        .keyring()
        .check_bytes(signature, &signed_bytes(&anchor.digest))
    {
        SignatureCheck::Valid => None,
        SignatureCheck::Unsigned => None,
        SignatureCheck::UnknownKey(key) => Some(format!("anchor signed by unknown key {key}")),
        SignatureCheck::Invalid(what) => Some(format!("anchor signature: {what}")),
    }
}
