//! The `bianmin import` subcommand: opens the stores the configuration names, runs the
//! import with a progress bar, prints the bad rows and the totals, writes `--report`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use engine_core::Clock;
use indicatif::{ProgressBar, ProgressStyle};

use super::{DEFAULT_CONCURRENCY, Format, ImportOptions, Importer, write_report};
use crate::config::Config;
use crate::contacts::ContactStore;

/// `bianmin import <FILE>`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The file: CSV (header row of column names) or JSON Lines; columns in docs/import.md.
    pub file: PathBuf,
    /// The file's format; by default from its extension (`.jsonl`/`.ndjson`, else CSV).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the full report (totals, every bad row with line, field, code) as JSON here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Rows in flight at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY, env = "BIANMIN_IMPORT_CONCURRENCY")]
    pub concurrency: usize,
    /// The actor id recorded on the imported commands.
    #[arg(long, default_value = "import")]
    pub actor: String,
    /// Check and decide every row, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print at most this many bad rows (all are in `--report`).
    #[arg(long, default_value_t = 50)]
    pub show_errors: usize,
}

/// Why `bianmin import` could not run.
#[derive(Debug, thiserror::Error)]
pub enum ImportCliError {
    /// A store could not be opened.
    #[error("opening {what}: {message}")]
    Open {
        /// Which store.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The file could not be read.
    #[error(transparent)]
    Import(#[from] super::ImportError),
    /// The report could not be written.
    #[error("writing the report: {0}")]
    Report(std::io::Error),
}

impl ImportArgs {
    /// Runs the import against the event log and contact store `config` names. Exit code:
    /// 0 all rows are in the log, 3 some rows were bad (the rest imported), 1 some rows could
    /// not be recorded.
    pub async fn run(self, config: &Config) -> Result<ExitCode, ImportCliError> {
        let open = |what| {
            move |e: &dyn std::fmt::Display| ImportCliError::Open {
                what,
                message: e.to_string(),
            }
        };
        let clock: Arc<dyn Clock> = Arc::new(engine_log::clock::SystemClock);
        let policy =
            crate::policy_files::load_policy(&config.policy).map_err(|e| open("the policy")(&e))?;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| open("the data directory")(&e))?;
        // The import writes the log like `serve`: the JetStream stream is created (or brought
        // to the configuration) when missing, so history can be imported before the first start.
        let (log, _nats) = crate::log_open::open_log_with(config, true)
            .await
            .map_err(|e| open("the event log")(&e))?;
        let contacts = ContactStore::open(&config.stores_location(), clock.clone())
            .await
            .map_err(|e| open("the contact store")(&e))?;
        let intake_ids = crate::log_open::open_intake_ids(config, &log)
            .await
            .map_err(|e| open("the intake-id secret")(&e))?;
        let importer = Importer::new(log, contacts, Arc::new(policy), clock, intake_ids);
        let options = ImportOptions {
            path: self.file.clone(),
            format: self.format,
            concurrency: self.concurrency,
            actor_id: self.actor.clone(),
            dry_run: self.dry_run,
        };
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:>8} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta}) {msg}",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix("import");
        let report = importer.run(&options, Some(&bar)).await?;
        for error in report.errors.iter().take(self.show_errors) {
            eprintln!("{error} [{}]", error.code);
        }
        if report.errors.len() > self.show_errors {
            eprintln!(
                "… and {} more bad rows (see --report)",
                report.errors.len() - self.show_errors
            );
        }
        for failure in &report.failures {
            eprintln!("{failure} [{}] (not recorded; run again)", failure.code);
        }
        if let Some(path) = &self.report {
            write_report(&report, path).map_err(ImportCliError::Report)?;
        }
        let verb = if report.dry_run {
            "validated"
        } else {
            "imported"
        };
        println!(
            "{} rows in {:.1} s ({:.0} rows/s): {} {verb}{}, {} already imported, {} skipped (request exists), {} bad, {} failed; {} commits",
            report.rows,
            report.elapsed_seconds,
            report.rows_per_second,
            if report.dry_run {
                report.validated
            } else {
                report.imported + report.completed
            },
            if report.completed > 0 {
                format!(" ({} completed from an earlier run)", report.completed)
            } else {
                String::new()
            },
            report.already_imported,
            report.skipped_existing,
            report.bad,
            report.failed,
            report.commits,
        );
        Ok(ExitCode::from(report.exit_code()))
    }
}
