//! Working-calendar coverage as a fact of the running engine, and `bianmin calendar`.
//!
//! The calendar in force is the base file (built-in, or `policy.calendar_file`) plus every
//! `*.toml` in `policy.calendar_dir` (default `<data_dir>/calendars`), merged by the core.
//! [`Coverage`] says until when it holds official data: `/metrics` exports the days left
//! (`bianmin_calendar_coverage_days_left`) and `/readyz` turns `degraded` (still 200)
//! `policy.calendar_warn_days` days before the end. `bianmin calendar load <file>` validates a
//! file against the calendar in force, stores it in the calendar directory and records the new
//! calendar in the reference-data history (as start-up does); `show` prints the coverage and
//! its sources; `provisional` lists the requests whose deadlines in force were counted through
//! days the calendar did not cover when they were stamped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use engine_core::Policy;
use engine_core::calendar::WorkingCalendar;
use schemas::{Event, RequestId, Timestamp};

use crate::app::AppError;
use crate::config::Config;

/// Until when the calendar in force holds official data, seen from one day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    /// Last covered day (`None`: no year is covered).
    pub ends: Option<NaiveDate>,
    /// Days from `today` to `ends` (negative once past; `None` without coverage).
    pub days_left: Option<i64>,
    /// Whether the end is within the warning window (or past, or there is no coverage).
    pub warn: bool,
    /// `id@version: years` of every file that declared years.
    pub sources: Vec<String>,
}

impl Coverage {
    /// The coverage of `calendar` seen from the local date of `now`, warning `warn_days`
    /// days (or fewer) before the end.
    pub fn of(calendar: &WorkingCalendar, now: Timestamp, warn_days: u32) -> Coverage {
        let today = calendar.local_date(now);
        let ends = calendar.coverage_end();
        let days_left = ends.map(|end| (end - today).num_days());
        Coverage {
            ends,
            days_left,
            warn: days_left.is_none_or(|d| d <= i64::from(warn_days)),
            sources: calendar.sources(),
        }
    }

    /// The `/readyz` state of the `calendar` part: `ok` or what to do.
    pub fn readiness(&self) -> String {
        match (self.ends, self.days_left) {
            (Some(_), Some(_)) if !self.warn => crate::readiness::OK.to_string(),
            (Some(end), Some(days)) if days >= 0 => format!(
                "the working calendar ends {end} ({days} days left): load the next year with \
                 `bianmin calendar load`"
            ),
            (Some(end), _) => format!(
                "the working calendar ended {end}: deadlines after it are provisional; load \
                 the next year with `bianmin calendar load`"
            ),
            _ => "no working calendar year is loaded".to_string(),
        }
    }
}

/// `bianmin calendar …`.
#[derive(Debug, clap::Subcommand)]
pub enum CalendarCommand {
    /// Validate a calendar file against the calendar in force, store it in the calendar
    /// directory and record the new calendar in the reference-data history.
    Load {
        /// The calendar file (TOML, the format of deploy/policy/calendars/*.toml).
        file: PathBuf,
        /// Who loads it (recorded as the change's actor in the reference-data history).
        #[arg(long, value_name = "ID")]
        actor: String,
        /// Why (recorded with the change), e.g. the notice it transcribes.
        #[arg(long)]
        reason: String,
    },
    /// Print the coverage range, days left and the files it comes from.
    Show,
    /// List the requests whose deadlines in force are provisional.
    Provisional,
}

/// Why a `bianmin calendar` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The file cannot be read or stored.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A required flag is blank.
    #[error("{0} must not be blank")]
    Blank(&'static str),
    /// The file is not a valid calendar or conflicts with the calendar in force.
    #[error("{0}")]
    Invalid(#[source] engine_core::policy::LoadError),
    /// The policy, the log or the reference history failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// Reading the log failed.
    #[error("reading the event log: {0}")]
    Log(#[from] engine_log::LogError),
}

/// The calendar directory of `config`.
pub fn calendar_dir(config: &Config) -> PathBuf {
    config
        .policy
        .calendar_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("calendars"))
}

impl CalendarCommand {
    /// Runs the command; prints its outcome on stdout.
    pub async fn run(&self, config: &Config, now: Timestamp) -> Result<(), CalendarError> {
        let mut config = config.clone();
        config.policy.calendar_dir = Some(calendar_dir(&config));
        match self {
            CalendarCommand::Load {
                file,
                actor,
                reason,
            } => {
                let by = crate::audit::reference::Attribution::operator(actor, reason);
                load(&config, file, &by, now).await
            }
            CalendarCommand::Show => {
                let policy = crate::policy_files::load_policy(&config.policy)?;
                let coverage =
                    Coverage::of(policy.calendar(), now, config.policy.calendar_warn_days);
                print_coverage(&coverage);
                Ok(())
            }
            CalendarCommand::Provisional => {
                let policy = crate::policy_files::load_policy(&config.policy)?;
                let (log, _nats) = crate::log_open::open_log(&config).await?;
                for line in provisional(&log, &policy).await? {
                    println!("{line}");
                }
                Ok(())
            }
        }
    }
}

fn print_coverage(coverage: &Coverage) {
    match (coverage.ends, coverage.days_left) {
        (Some(end), Some(days)) => println!("covered to {end} ({days} days left)"),
        _ => println!("no year covered"),
    }
    for source in &coverage.sources {
        println!("  {source}");
    }
    if coverage.warn {
        println!("warning: {}", coverage.readiness());
    }
}

/// Validates `file` with the calendar in force (a stored file of the same name is replaced),
/// stores it and records the calendar in the reference-data history.
async fn load(
    config: &Config,
    file: &Path,
    by: &crate::audit::reference::Attribution,
    now: Timestamp,
) -> Result<(), CalendarError> {
    if by.actor.id.is_empty() {
        return Err(CalendarError::Blank("--actor"));
    }
    if by.reason.as_deref().is_none_or(str::is_empty) {
        return Err(CalendarError::Blank("--reason"));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CalendarError::Io { path, source }
    };
    let text = std::fs::read_to_string(file).map_err(io(file))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .ok_or_else(|| CalendarError::Io {
            path: file.to_path_buf(),
            source: std::io::Error::other("a calendar file name ends in .toml"),
        })?;
    let dir = calendar_dir(config);
    let target = dir.join(&name);
    // Validate with the calendar in force, without the stored file it replaces.
    let mut files = crate::policy_files::calendar_files(&config.policy)?;
    let target_name = target.display().to_string();
    files.retain(|(path, _)| *path != target_name);
    files.push((file.display().to_string(), text.clone()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    WorkingCalendar::parse_many(&refs).map_err(CalendarError::Invalid)?;
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    std::fs::write(&target, &text).map_err(io(&target))?;
    let (policy, reference) = crate::policy_files::load_policy_with_sources(&config.policy)?;
    let (log, _nats) = crate::log_open::open_log(config).await?;
    let recorded = crate::audit::reference::record(&log, &reference, by, now)
        .await
        .map_err(AppError::Reference)?;
    println!("stored {}", target.display());
    for change in recorded {
        println!(
            "recorded {:?} {} from {}",
            change.kind, change.version, change.source
        );
    }
    print_coverage(&Coverage::of(
        policy.calendar(),
        now,
        config.policy.calendar_warn_days,
    ));
    Ok(())
}

/// A request whose deadlines in force are provisional.
#[derive(Debug, Clone, PartialEq)]
pub struct Provisional {
    /// The request.
    pub request_id: RequestId,
    /// When they were stamped.
    pub stamped_at: Timestamp,
    /// The provisional deadlines.
    pub deadlines: schemas::Deadlines,
    /// The calendar in force covers their span now: a re-stamp is due.
    pub covered_now: bool,
}

/// Every request whose deadlines in force are provisional, read from the whole log: a
/// provisional classification not followed by another classification or a re-stamp.
pub async fn provisional_requests(
    log: &engine_log::EventLog,
    policy: &Policy,
) -> Result<Vec<Provisional>, CalendarError> {
    let mut marked: BTreeMap<RequestId, (Timestamp, schemas::Deadlines)> = BTreeMap::new();
    let mut from = 1;
    loop {
        let batch = log.read_from(from, 500).await?;
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        for logged in &batch {
            let request = logged.commit.request_id;
            for envelope in &logged.commit.events {
                match &envelope.event {
                    Event::RequestClassified(e) if e.deadlines.provisional => {
                        marked.insert(request, (envelope.occurred_at, e.deadlines.clone()));
                    }
                    Event::RequestClassified(_) | Event::DeadlinesRestamped(_) => {
                        marked.remove(&request);
                    }
                    _ => {}
                }
            }
        }
    }
    let calendar = policy.calendar();
    Ok(marked
        .into_iter()
        .map(|(request_id, (stamped_at, deadlines))| Provisional {
            covered_now: calendar.covers_span(stamped_at, deadlines.completion_due_at)
                && calendar.covers_span(stamped_at, deadlines.response_due_at),
            request_id,
            stamped_at,
            deadlines,
        })
        .collect())
}

/// One line per request whose deadlines in force are provisional: id, the deadlines and
/// whether the calendar in force now covers their span (then a re-stamp is due).
pub async fn provisional(
    log: &engine_log::EventLog,
    policy: &Policy,
) -> Result<Vec<String>, CalendarError> {
    Ok(provisional_requests(log, policy)
        .await?
        .into_iter()
        .map(|p| {
            format!(
                "{} response_due_at={} completion_due_at={} covered_now={}",
                p.request_id,
                p.deadlines.response_due_at.to_rfc3339(),
                p.deadlines.completion_due_at.to_rfc3339(),
                p.covered_now
            )
        })
        .collect())
}

/// Re-stamps, through the command service (the normal command path, one
/// `restamp_deadlines` by the engine per request), every provisional request the calendar in
/// force now covers. Returns the requests re-stamped; a request the core refuses (its
/// deadlines moved since, or it was replied meanwhile) is logged and stays listed.
pub async fn restamp_covered(
    commands: &crate::commands::CommandService,
    reason: &str,
) -> Result<Vec<RequestId>, CalendarError> {
    let engine = schemas::Actor {
        id: "bianmin".into(),
        role: schemas::Role::System,
        unit: None,
    };
    let mut restamped = Vec::new();
    for p in provisional_requests(commands.log(), commands.policy()).await? {
        if !p.covered_now {
            continue;
        }
        let command = schemas::Command::RestampDeadlines(schemas::command::RestampDeadlines {
            reason: reason.to_string(),
        });
        // The same re-stamp of the same stamped deadlines is the same command.
        let key = format!(
            "restamp:{}:{}:{reason}",
            p.request_id,
            p.deadlines.completion_due_at.to_rfc3339()
        );
        let request = crate::commands::CommandRequest {
            request_id: p.request_id,
            command_id: uuid::Uuid::new_v5(&schemas::envelope::ID_NAMESPACE, key.as_bytes()),
            correlation_id: None,
            actor: engine.clone(),
            command,
        };
        match commands.execute(request).await {
            Ok(_) => restamped.push(p.request_id),
            Err(error) => {
                tracing::warn!(request = %p.request_id, %error, "provisional deadlines not re-stamped");
            }
        }
    }
    Ok(restamped)
}
