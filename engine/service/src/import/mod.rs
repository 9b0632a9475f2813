//! `bianmin import`: historical requests from an older system, as events of the same
//! lifecycle live requests go through.
//!
//! A file (CSV or JSON Lines; the column mapping is in `docs/import.md` and [`row::COLUMNS`])
//! is read row by row. Each row is validated ([`row`]), turned into the commands of its
//! lifecycle, each at the row's own timestamp ([`plan`]), and every command is decided by the
//! domain core against an in-memory request before anything is written: a row the rules
//! refuse records nothing. A good row's commits are then appended with the usual
//! optimistic-concurrency check; its contact goes to the encrypted contact store only.
//!
//! Re-running is harmless: the request id is the keyed intake id of channel and external id
//! (as for live intake, [`crate::intake_ids`], the legacy id in logs that predate it) and every command id is derived from the request id and the step, so a row whose
//! request exists is recognised — "already imported" when every step is in the log, completed
//! when an earlier run stopped half-way, skipped when the request was not written by an
//! import. Many rows are in flight at once (`concurrency`); the stores batch their writes.

mod answers;
pub mod cli;
pub mod plan;
pub mod row;
pub mod source;
mod steps;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use engine_core::{Clock, Policy, Request};
use futures::StreamExt;
use indicatif::ProgressBar;
use schemas::{Channel, LoggedCommit, RequestId};
use serde::Serialize;

use crate::contacts::ContactStore;
use crate::intake_ids::IntakeIds;
use engine_log::clock::IdSource;
use engine_log::{EventLog, LogError};
use plan::{RowPlan, decide_steps, import_correlation_id, plan_row};
use row::{RawRow, RowError, parse_row};
pub use source::Format;

/// Rows in flight at once by default.
pub const DEFAULT_CONCURRENCY: usize = 256;
/// How often a row is decided again after another writer changed its request meanwhile.
const MAX_ATTEMPTS: u32 = 8;

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The file.
    pub path: PathBuf,
    /// Its format; from the file name when `None`.
    pub format: Option<Format>,
    /// Rows in flight at once.
    pub concurrency: usize,
    /// The actor id recorded on every imported command (with the role each step needs).
    pub actor_id: String,
    /// Validate and decide every row, write nothing.
    pub dry_run: bool,
}

impl ImportOptions {
    /// Options for `path` with the defaults.
    pub fn new(path: impl Into<PathBuf>) -> ImportOptions {
        ImportOptions {
            path: path.into(),
            format: None,
            concurrency: DEFAULT_CONCURRENCY,
            actor_id: "import".into(),
            dry_run: false,
        }
    }
}

/// Why an import could not run at all (row problems are in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read or its header is unusable.
    #[error(transparent)]
    Source(#[from] source::SourceError),
}

/// A row skipped because its request exists but was not written by an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Line of the row.
    pub line: u64,
    /// External ticket id.
    pub external_id: String,
    /// The existing request.
    pub request_id: RequestId,
    /// Why.
    pub message: String,
}

/// What an import did; written as JSON by `--report`.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The file.
    pub file: String,
    /// Its format.
    pub format: Format,
    /// Nothing was written (`--dry-run`).
    pub dry_run: bool,
    /// Rows read (good and bad).
    pub rows: u64,
    /// Rows recorded by this run.
    pub imported: u64,
    /// Rows an earlier, interrupted run had started and this run completed.
    pub completed: u64,
    /// Rows whose every step was already in the log.
    pub already_imported: u64,
    /// Rows whose request exists but was not written by an import (left as it is).
    pub skipped_existing: u64,
    /// Rows rejected for their content (bad values, unknown references, refused lifecycle).
    pub bad: u64,
    /// Rows that could not be recorded because a store failed; a re-run completes them.
    pub failed: u64,
    /// Rows that passed every check in a dry run.
    pub validated: u64,
    /// Commits appended by this run.
    pub commits: u64,
    /// Wall-clock seconds.
    pub elapsed_seconds: f64,
    /// Rows per second over the whole run.
    pub rows_per_second: f64,
    /// The bad rows, by line.
    pub errors: Vec<RowError>,
    /// The rows that could not be recorded, by line.
    pub failures: Vec<RowError>,
    /// The rows skipped because their request exists, by line.
    pub skipped: Vec<Skipped>,
}

impl ImportReport {
    /// The process exit code: 0 every row is in the log (or validated); 3 some rows were bad
    /// (the good ones are imported); 1 some rows could not be recorded (store failure).
    pub fn exit_code(&self) -> u8 {
        if self.failed > 0 {
            1
        } else if self.bad > 0 {
            3
        } else {
            0
        }
    }
}

/// What happened to one row.
#[derive(Debug)]
enum RowOutcome {
    Imported { commits: u64 },
    Completed { commits: u64 },
    AlreadyImported,
    Existing(Skipped),
    Validated,
    Bad(RowError),
    Failed(RowError),
}

/// The stores and reference data an import writes with.
#[derive(Clone)]
pub struct Importer {
    log: EventLog,
    contacts: ContactStore,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
    intake_ids: IntakeIds,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("log", &self.log.describe())
            .finish_non_exhaustive()
    }
}

struct RowContext {
    importer: Importer,
    actor_id: String,
    dry_run: bool,
    ids: IdSource,
}

impl Importer {
    /// An importer over the engine's log, contact store and policy; `clock` gives the
    /// recording time and the "not in the future" bound; `intake_ids` derives request ids as
    /// live intake does (the instance's secret).
    pub fn new(
        log: EventLog,
        contacts: ContactStore,
        policy: Arc<Policy>,
        clock: Arc<dyn Clock>,
        intake_ids: IntakeIds,
    ) -> Importer {
        Importer {
            log,
            contacts,
            policy,
            clock,
            intake_ids,
        }
    }

    /// Imports the file; `progress`, when given, follows the bytes read and the rows done.
    pub async fn run(
        &self,
        options: &ImportOptions,
        progress: Option<&ProgressBar>,
    ) -> Result<ImportReport, ImportError> {
        let started = Instant::now();
        let format = options
            .format
            .unwrap_or_else(|| Format::from_path(&options.path));
        let rows = source::open(&options.path, format)?;
        if let Some(bar) = progress {
            let length = std::fs::metadata(&options.path).map_or(0, |m| m.len());
            bar.set_length(length);
        }
        let context = Arc::new(RowContext {
            importer: self.clone(),
            actor_id: options.actor_id.clone(),
            dry_run: options.dry_run,
            ids: IdSource,
        });
        let mut seen: HashMap<RequestId, u64> = HashMap::new();
        let tasks = futures::stream::iter(rows).map(|(row, offset)| {
            let context = context.clone();
            let duplicate = row.as_ref().ok().and_then(|raw| {
                let id = request_id_of(&context.importer.intake_ids, raw)?;
                seen.insert(id, raw.line)
            });
            async move {
                let outcome =
                    match (row, duplicate) {
                        (Err(error), _) => RowOutcome::Bad(error),
                        (Ok(raw), Some(first)) => RowOutcome::Bad(RowError {
                            line: raw.line,
                            external_id: raw.values.get("external_id").cloned(),
                            code: "duplicate_row".into(),
                            field: Some("external_id".into()),
                            message: format!(
                                "the same channel and external_id already appear on line {first}"
                            ),
                        }),
                        (Ok(raw), None) => tokio::spawn(import_row(context, raw))
                            .await
                            .unwrap_or_else(|e| {
                                RowOutcome::Failed(RowError {
                                    line: 0,
                                    external_id: None,
                                    code: "internal".into(),
                                    field: None,
                                    message: format!("row task failed: {e}"),
                                })
                            }),
                    };
                (outcome, offset)
            }
        });
        let mut tasks = tasks.buffer_unordered(options.concurrency.max(1));
        let mut report = ImportReport {
            file: options.path.display().to_string(),
            format,
            dry_run: options.dry_run,
            rows: 0,
            imported: 0,
            completed: 0,
            already_imported: 0,
            skipped_existing: 0,
            bad: 0,
            failed: 0,
            validated: 0,
            commits: 0,
            elapsed_seconds: 0.0,
            rows_per_second: 0.0,
            errors: Vec::new(),
            failures: Vec::new(),
            skipped: Vec::new(),
        };
        let mut read_to = 0u64;
        while let Some((outcome, offset)) = tasks.next().await {
            report.rows += 1;
            match outcome {
                RowOutcome::Imported { commits } => {
                    report.imported += 1;
                    report.commits += commits;
                }
                RowOutcome::Completed { commits } => {
                    report.completed += 1;
                    report.commits += commits;
                }
                RowOutcome::AlreadyImported => report.already_imported += 1,
                RowOutcome::Existing(skipped) => {
                    report.skipped_existing += 1;
                    report.skipped.push(skipped);
                }
                RowOutcome::Validated => report.validated += 1,
                RowOutcome::Bad(error) => {
                    report.bad += 1;
                    report.errors.push(error);
                }
                RowOutcome::Failed(error) => {
                    report.failed += 1;
                    report.failures.push(error);
                }
            }
            if let Some(bar) = progress {
                read_to = read_to.max(offset);
                bar.set_position(read_to);
                if report.rows.is_multiple_of(256) {
                    bar.set_message(progress_message(&report));
                }
            }
        }
        if let Some(bar) = progress {
            bar.set_message(progress_message(&report));
            bar.finish();
        }
        report.errors.sort_by_key(|e| e.line);
        report.failures.sort_by_key(|e| e.line);
        report.skipped.sort_by_key(|s| s.line);
        report.elapsed_seconds = started.elapsed().as_secs_f64();
        report.rows_per_second = report.rows as f64 / report.elapsed_seconds.max(1e-9);
        Ok(report)
    }

    /// Records a planned row: the contact first, then its commits in order; a request that
    /// already exists is completed, recognised or skipped (see the module docs).
    async fn record(&self, plan: &RowPlan, commits: Vec<schemas::Commit>) -> RowOutcome {
        if let Some((contact_ref, contact)) = &plan.contact {
            let stored = match self.contacts.get(contact_ref).await {
                Ok(found) => found.is_some(),
                Err(e) => return failed(plan, "unavailable", e.to_string()),
            };
            if !stored && let Err(e) = self.contacts.put(contact_ref, contact).await {
                return failed(plan, "unavailable", e.to_string());
            }
        }
        let mut expected = 0;
        let mut written = 0;
        for commit in &commits {
            match self.log.append(commit, expected).await {
                Ok(appended) if !appended.duplicate => {
                    expected = appended.position;
                    written += 1;
                }
                // The request exists (an earlier run, live intake, or another writer).
                Ok(_) | Err(LogError::Conflict { .. }) => {
                    return match self.complete_existing(plan).await {
                        RowOutcome::Completed { commits } if written > 0 => RowOutcome::Imported {
                            commits: commits + written,
                        },
                        RowOutcome::AlreadyImported if written > 0 => {
                            RowOutcome::Imported { commits: written }
                        }
                        other => other,
                    };
                }
                Err(e) => return failed(plan, log_code(&e), e.to_string()),
            }
        }
        RowOutcome::Imported { commits: written }
    }

    /// The request exists: skip it when the import did not write it, otherwise decide and
    /// append the steps not yet in the log.
    async fn complete_existing(&self, plan: &RowPlan) -> RowOutcome {
        for _ in 0..MAX_ATTEMPTS {
            let logged = match self.log.load(plan.request_id).await {
                Ok(logged) => logged,
                Err(e) => return failed(plan, log_code(&e), e.to_string()),
            };
            let ours = logged
                .first()
                .and_then(|c| c.commit.events.first())
                .is_some_and(|e| e.correlation_id == import_correlation_id(plan.request_id));
            if logged.is_empty() {
                continue;
            }
            if !ours {
                return RowOutcome::Existing(Skipped {
                    line: plan.line,
                    external_id: plan.external_id.clone(),
                    request_id: plan.request_id,
                    message: "a request with this channel and external_id exists and was not \
                              written by an import; left as it is"
                        .into(),
                });
            }
            let in_log: HashSet<uuid::Uuid> = logged.iter().map(|c| c.commit.commit_id).collect();
            let remaining: Vec<_> = plan
                .steps
                .iter()
                .filter(|s| !in_log.contains(&s.command_id))
                .cloned()
                .collect();
            if remaining.is_empty() {
                return RowOutcome::AlreadyImported;
            }
            let mut request = Request::new(plan.request_id);
            let mut last_hash = schemas::envelope::GENESIS_HASH.to_string();
            let mut expected = 0;
            for LoggedCommit { position, commit } in &logged {
                for envelope in &commit.events {
                    request.apply(envelope);
                    last_hash = envelope.hash.clone();
                }
                expected = *position;
            }
            let decided = match decide_steps(
                plan,
                request,
                last_hash,
                &remaining,
                &self.policy,
                self.clock.now(),
                &IdSource,
            ) {
                Ok(decided) => decided,
                Err(error) => return RowOutcome::Bad(error),
            };
            let mut written = 0;
            let mut conflict = false;
            for commit in &decided.commits {
                match self.log.append(commit, expected).await {
                    Ok(appended) => {
                        expected = appended.position;
                        written += u64::from(!appended.duplicate);
                    }
                    Err(LogError::Conflict { .. }) => {
                        conflict = true;
                        break;
                    }
                    Err(e) => return failed(plan, log_code(&e), e.to_string()),
                }
            }
            if !conflict {
                return RowOutcome::Completed { commits: written };
            }
        }
        failed(
            plan,
            "conflict",
            "the request kept changing while it was imported; run the import again".into(),
        )
    }
}

/// Validates, plans, decides and records one row.
async fn import_row(context: Arc<RowContext>, raw: RawRow) -> RowOutcome {
    let importer = &context.importer;
    let now = importer.clock.now();
    let row = match parse_row(&raw, &importer.policy, now) {
        Ok(row) => row,
        Err(error) => return RowOutcome::Bad(error),
    };
    let request_id = match importer
        .intake_ids
        .resolve(
            &importer.log,
            row.document.channel,
            &row.document.external_id,
        )
        .await
    {
        Ok(id) => id,
        Err(e) => {
            return RowOutcome::Failed(RowError {
                line: raw.line,
                external_id: Some(row.document.external_id.clone()),
                code: log_code(&e).into(),
                field: None,
                message: e.to_string(),
            });
        }
    };
    let plan = plan_row(row, &context.actor_id, request_id);
    let decided = match decide_steps(
        &plan,
        Request::new(plan.request_id),
        schemas::envelope::GENESIS_HASH.to_string(),
        &plan.steps,
        &importer.policy,
        now,
        &context.ids,
    ) {
        Ok(decided) => decided,
        Err(error) => return RowOutcome::Bad(error),
    };
    if context.dry_run {
        return RowOutcome::Validated;
    }
    importer.record(&plan, decided.commits).await
}

/// The keyed request id of a raw row, when its channel and external id can be read (to
/// find the same ticket twice in one file).
fn request_id_of(ids: &IntakeIds, raw: &RawRow) -> Option<RequestId> {
    let channel = Channel::parse(raw.values.get("channel")?)?;
    let external_id = raw.values.get("external_id")?;
    Some(ids.request_id(channel, external_id))
}

fn failed(plan: &RowPlan, code: &str, message: String) -> RowOutcome {
    RowOutcome::Failed(RowError {
        line: plan.line,
        external_id: Some(plan.external_id.clone()),
        code: code.into(),
        field: None,
        message,
    })
}

fn log_code(error: &LogError) -> &'static str {
    match error {
        LogError::Unavailable(_) => "unavailable",
        LogError::Conflict { .. } => "conflict",
        _ => "internal",
    }
}

fn progress_message(report: &ImportReport) -> String {
    format!(
        "{} rows: {} imported, {} already there, {} bad, {} failed",
        report.rows,
        report.imported + report.completed,
        report.already_imported + report.skipped_existing,
        report.bad,
        report.failed
    )
}

/// Writes the report as pretty JSON to `path`.
pub fn write_report(report: &ImportReport, path: &Path) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(path, json)
}
