//! The retention sweep: crypto-shreds the contact keys of requests archived longer ago
//! than the policy keeps contact data, and records each erasure (reason `retention`).

use super::*;
use tokio_util::sync::CancellationToken;

/// What one sweep found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Log position read up to.
    pub position: u64,
    /// Archived requests with contact data known so far.
    pub archived_with_contact: usize,
    /// Keys destroyed by this sweep.
    pub erased: Vec<ContactRef>,
}

/// What the sweep remembers between runs: the log position read and, per request, its
/// contact reference and the time it was (last) archived.
#[derive(Debug, Clone, Default)]
pub struct RetentionIndex {
    position: u64,
    contact: HashMap<RequestId, ContactRef>,
    archived: HashMap<RequestId, Timestamp>,
    done: std::collections::HashSet<RequestId>,
}

impl RetentionIndex {
    /// An empty index (the first sweep reads the whole log).
    pub fn new() -> RetentionIndex {
        RetentionIndex::default()
    }

    async fn catch_up(&mut self, log: &EventLog) -> Result<(), PrivacyError> {
        loop {
            let batch = log.read_from(self.position + 1, 512).await?;
            let Some(last) = batch.last() else {
                return Ok(());
            };
            let last = last.position;
            for logged in &batch {
                for envelope in &logged.commit.events {
                    match &envelope.event {
                        Event::RequestReceived(r) => {
                            if let Some(reference) = r.contact_ref.clone() {
                                self.contact.insert(envelope.request_id, reference);
                            }
                        }
                        Event::Archived(_) => {
                            self.archived
                                .insert(envelope.request_id, envelope.occurred_at);
                        }
                        _ => {}
                    }
                }
            }
            self.position = last;
        }
    }
}

/// Reads the log from where `index` stopped, then erases every contact whose request was
/// archived at or before `now - contact_days_after_archive`, and, given `media`, the
/// request's personal attachments.
pub async fn sweep(
    log: &EventLog,
    contacts: &ContactStore,
    ledger: &PrivacyLedger,
    media: Option<&crate::media::MediaStore>,
    policy: &RetentionPolicy,
    index: &mut RetentionIndex,
    now: Timestamp,
) -> Result<SweepReport, PrivacyError> {
    index.catch_up(log).await?;
    let keep = chrono::Duration::days(i64::from(policy.contact_days_after_archive));
    let cutoff = now.checked_sub_signed(keep).unwrap_or(now);
    let mut report = SweepReport {
        position: index.position,
        ..SweepReport::default()
    };
    let mut expired: Vec<(RequestId, ContactRef)> = index
        .archived
        .iter()
        .filter(|(id, at)| **at <= cutoff && !index.done.contains(id))
        .filter_map(|(id, _)| index.contact.get(id).map(|c| (*id, c.clone())))
        .collect();
    expired.sort_by_key(|(id, _)| *id);
    report.archived_with_contact = index
        .archived
        .keys()
        .filter(|id| index.contact.contains_key(id))
        .count();
    for (request_id, reference) in expired {
        // Erase only what still has a key: an already erased contact needs no new record.
        if matches!(
            contacts.get(&reference).await?,
            Some(StoredContact::Present(_))
        ) {
            let outcome = erase_ref(
                contacts,
                ledger,
                reference.clone(),
                Some(request_id),
                "retention-job",
                "retention",
                now,
            )
            .await?;
            if outcome.key_destroyed {
                report.erased.push(reference);
            }
            if let Some(media) = media {
                crate::media::erase_request(log, media, request_id).await?;
            }
        }
        index.done.insert(request_id);
    }
    Ok(report)
}

/// The background task: a sweep every `sweep_interval_secs` until `shutdown`, and, on the
/// PostgreSQL stores with `kek_rotation_days > 0`, a key-encryption-key rotation whenever the
/// current key is that old (replicas racing to rotate are serialised by the database, and the
/// age is read there, so one of them rotates). A failing sweep or rotation is logged and
/// retried next time; the task returns only on shutdown.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    log: EventLog,
    contacts: ContactStore,
    ledger: PrivacyLedger,
    media: crate::media::MediaStore,
    clock: Arc<dyn Clock>,
    policy: RetentionPolicy,
    kek_rotation_days: u32,
    shutdown: CancellationToken,
) -> Result<(), crate::app::TaskError> {
    if !policy.enabled && (kek_rotation_days == 0 || contacts.backend_name() != "postgres") {
        shutdown.cancelled().await;
        return Ok(());
    }
    let mut index = RetentionIndex::new();
    let interval = Duration::from_secs(policy.sweep_interval_secs.max(1));
    loop {
        if policy.enabled {
            let swept = sweep(
                &log,
                &contacts,
                &ledger,
                Some(&media),
                &policy,
                &mut index,
                clock.now(),
            );
            match swept.await {
                Ok(report) if !report.erased.is_empty() => {
                    tracing::info!(
                        erased = report.erased.len(),
                        position = report.position,
                        "retention sweep erased expired contact data"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "retention sweep failed; retrying later"),
            }
        }
        if let Err(error) = contacts.rotate_kek_if_older_than(kek_rotation_days).await {
            tracing::warn!(%error, "key-encryption-key rotation failed; retrying later");
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
    }
}
