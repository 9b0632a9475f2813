//! `bianmin privacy …`: erase, show a contact's status, the ledger, the retention sweep.

use super::*;

/// `bianmin privacy …`.
#[derive(Debug, Clone, Subcommand)]
pub enum PrivacyCommand {
    /// Erase a resident's contact data by destroying its key (crypto-shredding). The event log
    /// is untouched: histories stay verifiable and show the contact as erased.
    Erase {
        /// A request id or a contact reference.
        target: Uuid,
        /// Why (recorded; no personal data).
        #[arg(long, default_value = "resident_request")]
        reason: String,
        /// Who is erasing (recorded).
        #[arg(long, default_value = "operator")]
        actor: String,
    },
    /// Show whether a request's contact is held, erased or absent (never the data).
    Status {
        /// The request.
        request: Uuid,
    },
    /// Run one retention sweep now and print what it erased.
    Retention {
        /// Override the configured days after archive.
        #[arg(long)]
        days: Option<u32>,
    },
    /// Print the privacy ledger: erasures and contact reads, as JSON lines.
    Ledger,
    /// Re-wrap every live contact data key under a new key-encryption key and destroy the old
    /// KEK files (PostgreSQL stores only): after it, erased keys left in PostgreSQL's dead
    /// tuples, WAL or backups can no longer be unwrapped.
    RotateKek,
}

impl PrivacyCommand {
    /// Runs the subcommand against the stores `config` names, printing to stdout.
    pub async fn run(
        self,
        config: &crate::config::Config,
        privacy: &PrivacyConfig,
    ) -> Result<ExitCode, PrivacyError> {
        let clock: Arc<dyn Clock> = Arc::new(engine_log::clock::SystemClock);
        let (log, nats) =
            crate::log_open::open_log(config)
                .await
                .map_err(|e| PrivacyError::Open {
                    what: "the event log",
                    message: e.to_string(),
                })?;
        let stores = config.stores_location();
        let contacts = ContactStore::open(&stores, clock.clone()).await?;
        if let PrivacyCommand::RotateKek = self {
            let rotation = contacts.rotate_kek().await?;
            println!("{}", serde_json::json!({ "kek_rotation": rotation }));
            return Ok(ExitCode::SUCCESS);
        }
        let ledger = PrivacyLedger::open(&stores).await?;
        match self {
            PrivacyCommand::Erase {
                target,
                reason,
                actor,
            } => {
                let names = config.names().map_err(|e| PrivacyError::Open {
                    what: "the instance's names",
                    message: e.to_string(),
                })?;
                let media = crate::media::open(config, &names, nats)
                    .await
                    .map_err(|e| PrivacyError::Open {
                        what: "the media store",
                        message: e.to_string(),
                    })?;
                let outcome = erase_with_media(
                    &log,
                    &contacts,
                    &ledger,
                    &media,
                    target,
                    &actor,
                    &reason,
                    clock.now(),
                )
                .await?;
                println!(
                    "contact {} erased{}{}",
                    outcome.contact_ref.0,
                    outcome
                        .request_id
                        .map(|r| format!(" (request {r})"))
                        .unwrap_or_default(),
                    if outcome.key_destroyed {
                        ""
                    } else {
                        "; its key had already been destroyed"
                    }
                );
            }
            PrivacyCommand::Status { request } => {
                let status = contact_status(&log, &contacts, request).await?;
                println!(
                    "request {request}: contact {}",
                    serde_json::to_value(status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                );
            }
            PrivacyCommand::Retention { days } => {
                let mut policy = privacy.retention;
                if let Some(days) = days {
                    policy.contact_days_after_archive = days;
                }
                let mut index = retention::RetentionIndex::new();
                let report = retention::sweep(
                    &log,
                    &contacts,
                    &ledger,
                    None,
                    &policy,
                    &mut index,
                    clock.now(),
                )
                .await?;
                println!(
                    "retention: read to position {}, {} archived requests with contact data, {} erased",
                    report.position,
                    report.archived_with_contact,
                    report.erased.len()
                );
                for reference in report.erased {
                    println!("erased {}", reference.0);
                }
            }
            PrivacyCommand::RotateKek => {}
            PrivacyCommand::Ledger => {
                for record in ledger.erasures().await? {
                    println!("{}", serde_json::json!({"erasure": record}));
                }
                for record in ledger.accesses().await? {
                    println!("{}", serde_json::json!({"access": record}));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
