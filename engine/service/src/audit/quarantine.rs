//! `bianmin quarantine list|show`: every record of the log that readers skip, recomputed from
//! the whole log (the authority), with the reason (see [`engine_log::quarantine`]).

use clap::Subcommand;
use schemas::RequestId;
use serde::Serialize;

use super::AuditError;
use engine_log::EventLog;

/// Records read per batch while scanning.
const SCAN_BATCH_LEN: usize = 512;

/// `bianmin quarantine …`.
#[derive(Debug, Clone, Subcommand)]
pub enum QuarantineCommand {
    /// Every quarantined record: position, request, reason. Exit code 1 when there is any.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// One record: why it is quarantined, and its stored bytes (lossy UTF-8).
    Show {
        /// The record's log position.
        position: u64,
    },
}

/// One record readers skip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedRecord {
    /// Its log position.
    pub position: u64,
    /// The request it names, when readable.
    pub request_id: Option<RequestId>,
    /// Why readers skip it.
    pub reason: String,
}

/// Every quarantined record of `log`, in log order.
pub async fn list(log: &EventLog) -> Result<Vec<QuarantinedRecord>, AuditError> {
    let mut found = Vec::new();
    let mut from = 1;
    loop {
        let batch = log.read_raw_from(from, SCAN_BATCH_LEN).await?;
        for (position, bytes) in &batch {
            if let Some((request_id, reason)) = log.quarantine_reason(*position, bytes) {
                found.push(QuarantinedRecord {
                    position: *position,
                    request_id,
                    reason,
                });
            }
        }
        match batch.last() {
            Some((last, _)) if batch.len() == SCAN_BATCH_LEN => from = last + 1,
            _ => return Ok(found),
        }
    }
}

/// Runs `command`; returns the text to print and whether anything is quarantined.
pub async fn run(
    command: &QuarantineCommand,
    log: &EventLog,
) -> Result<(String, bool), AuditError> {
    match command {
        QuarantineCommand::List { json } => {
            let found = list(log).await?;
            let text = match json {
                true => {
                    serde_json::to_string_pretty(&found).map_err(|e| AuditError::Io(e.into()))?
                        + "\n"
                }
                false if found.is_empty() => "no quarantined record\n".to_string(),
                false => found
                    .iter()
                    .map(|q| {
                        let request = q.request_id.map_or("-".to_string(), |r| r.to_string());
                        format!("{}\t{request}\t{}\n", q.position, q.reason)
                    })
                    .collect(),
            };
            Ok((text, !found.is_empty()))
        }
        QuarantineCommand::Show { position } => {
            let batch = log.read_raw_from(*position, 1).await?;
            let Some((at, bytes)) = batch.first().filter(|(at, _)| at == position) else {
                return Ok((format!("no record at position {position}\n"), false));
            };
            let verdict = match log.quarantine_reason(*at, bytes) {
                Some((_, reason)) => format!("quarantined: {reason}"),
                None => "admitted: readers apply this record".to_string(),
            };
            let text = format!(
                "position {at}\n{verdict}\n{}\n",
                String::from_utf8_lossy(bytes)
            );
            Ok((text, verdict.starts_with("quarantined")))
        }
    }
}
