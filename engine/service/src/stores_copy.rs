//! `bianmin stores copy`: moves an existing deployment's embedded stores (`contacts.db`,
//! `privacy.db` in a data directory) into the PostgreSQL stores `[stores]` names, so that a
//! JetStream deployment can drop `stores.url = "sqlite"` and run several replicas.
//!
//! Contacts are found through the log (every `request_received` naming a contact
//! reference), read and decrypted from the SQLite store, and put into the target, which wraps
//! them under its own keys: a contact already there is kept (a re-run copies nothing twice),
//! and one erased in the source is erased in the target (erasure stays final). Ledger records
//! already in the target (same contact, actor, reason or purpose and instant to the
//! microsecond) are skipped. Safe to interrupt and re-run.

use std::collections::{BTreeMap, BTreeSet};

use schemas::{ContactRef, Event, RequestId};
use serde::Serialize;
use uuid::Uuid;

use crate::contacts::{ContactStore, PutOutcome, StoredContact};
use crate::privacy::{AccessRecord, ErasureRecord, PrivacyError, PrivacyLedger};
use crate::stores::StoresLocation;
use engine_log::EventLog;

/// One side of the copy: a contact store and its ledger.
#[derive(Clone)]
pub struct StoreSet {
    /// The contact store.
    pub contacts: ContactStore,
    /// The privacy ledger.
    pub ledger: PrivacyLedger,
}

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// Contact references the log names.
    pub contacts_seen: u64,
    /// Contacts written to the target.
    pub contacts_copied: u64,
    /// Contacts the target held already (kept as they were).
    pub contacts_kept: u64,
    /// Contacts erased in the source, now erased in the target too.
    pub contacts_erased: u64,
    /// References with nothing stored in the source.
    pub contacts_absent: u64,
    /// Erasure records added to the target ledger.
    pub erasures_copied: u64,
    /// Access records added to the target ledger.
    pub accesses_copied: u64,
}

/// Copies every contact the log refers to and every ledger record from `from` into `to`;
/// `progress(done, total)` after each contact.
pub async fn copy(
    log: &EventLog,
    from: &StoreSet,
    to: &StoreSet,
    mut progress: impl FnMut(u64, u64),
) -> Result<CopyReport, PrivacyError> {
    let refs = contact_refs(log).await?;
    let mut report = CopyReport {
        contacts_seen: refs.len() as u64,
        ..CopyReport::default()
    };
    for (done, id) in refs.keys().enumerate() {
        copy_contact(&ContactRef(*id), from, to, &mut report).await?;
        progress(done as u64 + 1, report.contacts_seen);
    }
    report.erasures_copied = copy_erasures(&from.ledger, &to.ledger).await?;
    report.accesses_copied = copy_accesses(&from.ledger, &to.ledger).await?;
    Ok(report)
}

/// Every contact reference received in the log, with its request.
async fn contact_refs(log: &EventLog) -> Result<BTreeMap<Uuid, RequestId>, PrivacyError> {
    let mut refs = BTreeMap::new();
    log.scan(1, |logged| {
        for envelope in &logged.commit.events {
            if let Event::RequestReceived(received) = &envelope.event
                && let Some(contact_ref) = &received.contact_ref
            {
                refs.insert(contact_ref.0, envelope.request_id);
            }
        }
    })
    .await?;
    Ok(refs)
}

async fn copy_contact(
    contact_ref: &ContactRef,
    from: &StoreSet,
    to: &StoreSet,
    report: &mut CopyReport,
) -> Result<(), PrivacyError> {
    match from.contacts.get(contact_ref).await? {
        Some(StoredContact::Present(contact)) => {
            match to.contacts.put(contact_ref, &contact).await? {
                PutOutcome::Stored => report.contacts_copied += 1,
                PutOutcome::Kept => report.contacts_kept += 1,
                PutOutcome::Erased => report.contacts_erased += 1,
            }
        }
        Some(StoredContact::Erased) => {
            // The target keeps a tombstone only for a reference it held: hold an empty
            // contact, then erase it, so the reference reads as erased there too.
            let empty = schemas::intake::ResidentContact {
                name: None,
                phone: None,
                id_number: None,
                address_detail: None,
            };
            if to.contacts.put(contact_ref, &empty).await? != PutOutcome::Erased {
                to.contacts.erase(contact_ref).await?;
            }
            report.contacts_erased += 1;
        }
        None => report.contacts_absent += 1,
    }
    Ok(())
}

async fn copy_erasures(from: &PrivacyLedger, to: &PrivacyLedger) -> Result<u64, PrivacyError> {
    let key = |r: &ErasureRecord| {
        (
            r.contact_ref.0,
            r.actor.clone(),
            r.reason.clone(),
            r.erased_at.timestamp_micros(),
        )
    };
    let present: BTreeSet<_> = to.erasures().await?.iter().map(key).collect();
    let mut copied = 0;
    for record in from.erasures().await? {
        if !present.contains(&key(&record)) {
            to.record_erasure(&record).await?;
            copied += 1;
        }
    }
    Ok(copied)
}

async fn copy_accesses(from: &PrivacyLedger, to: &PrivacyLedger) -> Result<u64, PrivacyError> {
    let key = |r: &AccessRecord| {
        (
            r.contact_ref.0,
            r.actor.clone(),
            r.purpose.clone(),
            r.accessed_at.timestamp_micros(),
        )
    };
    let present: BTreeSet<_> = to.accesses().await?.iter().map(key).collect();
    let mut copied = 0;
    for record in from.accesses().await? {
        if !present.contains(&key(&record)) {
            to.record_access(&record).await?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// `bianmin stores …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum StoresCommand {
    /// Copy the contact store and privacy ledger of a data directory (`contacts.db`,
    /// `privacy.db`) into the PostgreSQL stores `[stores]` names; idempotent, with progress.
    Copy {
        /// The data directory holding the files (default: `data_dir`).
        #[arg(long, value_name = "DIR")]
        from: Option<std::path::PathBuf>,
    },
}

impl StoresCommand {
    /// Runs the copy, printing progress to stderr and the [`CopyReport`] as JSON to stdout.
    pub async fn run(self, config: &crate::config::Config) -> Result<(), PrivacyError> {
        let StoresCommand::Copy { from } = self;
        let open = |what: &'static str, message: String| PrivacyError::Open { what, message };
        let target = config.stores_location();
        if !matches!(target, StoresLocation::Postgres { .. }) {
            return Err(open(
                "the target stores",
                "[stores] names no PostgreSQL database (set stores.url or database_url)".into(),
            ));
        }
        let data_dir = from.unwrap_or_else(|| config.data_dir.clone());
        if !data_dir.join("contacts.db").is_file() {
            let message = format!("no contacts.db in {}", data_dir.display());
            return Err(open("the source stores", message));
        }
        let source = StoresLocation::Embedded { data_dir };
        let (log, _nats) = crate::log_open::open_log(config)
            .await
            .map_err(|e| open("the event log", e.to_string()))?;
        let clock: std::sync::Arc<dyn engine_core::Clock> =
            std::sync::Arc::new(engine_log::clock::SystemClock);
        let side = |location: StoresLocation| {
            let clock = clock.clone();
            async move {
                Ok::<_, PrivacyError>(StoreSet {
                    contacts: ContactStore::open(&location, clock).await?,
                    ledger: PrivacyLedger::open(&location).await?,
                })
            }
        };
        let (from, to) = (side(source).await?, side(target).await?);
        let bar = indicatif::ProgressBar::new(0);
        let report = copy(&log, &from, &to, |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await?;
        bar.finish_and_clear();
        println!("{}", serde_json::json!({ "stores_copy": report }));
        Ok(())
    }
}
