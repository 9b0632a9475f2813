//! The `[reports]` configuration and the schedules `serve` fires.
//!
//! A schedule says "on day D at HH:MM (Asia/Shanghai), publish last month's (or last week's)
//! report for these units at this level". The task checks every `poll_secs` on the injected
//! clock, takes the latest firing instant at or before now, and publishes the first revision
//! of each unit's report for the period before it — unless that report already exists, so a
//! restart (or a second engine) never publishes twice. A missed firing is caught up once, on
//! the next check; older ones are not (publish them by hand with `bianmin report publish`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone};
use engine_core::Clock;
use engine_core::directory::Directory;
use schemas::event::ReportLevel;
use schemas::{Actor, Role, Timestamp};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::ReportError;
use super::compute::{ReportPeriod, ReportSpec, streets};
use super::link::LinkConfig;
use super::store::{self, PublishOutcome};
use engine_log::EventLog;

/// Settings of rate reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsConfig {
    /// Seconds between checks of the schedules.
    pub poll_secs: u64,
    /// The schedules (none by default).
    pub schedules: Vec<Schedule>,
}

impl Default for ReportsConfig {
    fn default() -> ReportsConfig {
        ReportsConfig {
            poll_secs: 60,
            schedules: Vec::new(),
        }
    }
}

impl ReportsConfig {
    /// The report link's settings for the instance named by `names` whose streams have
    /// `replicas` replicas (`nats.replicas`).
    pub fn link(&self, names: &schemas::Names, replicas: usize) -> LinkConfig {
        LinkConfig {
            names: names.clone(),
            replicas,
        }
    }
}

/// How often a schedule fires and which period it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    /// On day `day` of each month; reports the previous month.
    Month,
    /// On ISO weekday `day` (1 = Monday) of each week; reports the previous ISO week.
    Week,
}

/// One schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Level of the reporting units.
    pub level: ReportLevel,
    /// Units; empty means every street of the directory (street level) or the directory's
    /// district (district level). City level needs its unit named.
    #[serde(default)]
    pub units: Vec<String>,
    /// Monthly or weekly.
    pub every: Every,
    /// Day of the month (1-28) or ISO weekday (1-7).
    pub day: u32,
    /// Local time `HH:MM` (Asia/Shanghai).
    pub at: String,
}

impl Schedule {
    fn time(&self) -> Result<NaiveTime, ReportError> {
        NaiveTime::parse_from_str(&self.at, "%H:%M").map_err(|_| {
            ReportError::invalid(
                "reports.schedules.at",
                format!("{:?} is not HH:MM", self.at),
            )
        })
    }

    /// Checks the schedule against the directory.
    pub fn validate(&self, directory: &Directory) -> Result<(), ReportError> {
        self.time()?;
        let days = match self.every {
            Every::Month => 1..=28,
            Every::Week => 1..=7,
        };
        if !days.contains(&self.day) {
            return Err(ReportError::invalid(
                "reports.schedules.day",
                format!("day {} outside {days:?}", self.day),
            ));
        }
        if self.level == ReportLevel::City && self.units.is_empty() {
            return Err(ReportError::invalid(
                "reports.schedules.units",
                "a city-level schedule names its city code",
            ));
        }
        for unit in self.units(directory) {
            ReportSpec {
                level: self.level,
                unit,
                period: ReportPeriod::Month("2026-01".into()),
            }
            .validate(directory)?;
        }
        Ok(())
    }

    /// The units this schedule reports for.
    pub fn units(&self, directory: &Directory) -> Vec<String> {
        match (self.units.is_empty(), self.level) {
            (false, _) => self.units.clone(),
            (true, ReportLevel::Street) => streets(directory),
            (true, _) => vec![directory.district().to_string()],
        }
    }

    /// The latest firing at or before `now` and the period it reports.
    pub fn latest_firing(&self, now: Timestamp) -> Result<(Timestamp, ReportPeriod), ReportError> {
        let time = self.time()?;
        let local = now
            .with_timezone(&schemas::local_time::offset())
            .date_naive();
        let at = |day: NaiveDate| {
            schemas::local_time::offset()
                .from_local_datetime(&day.and_time(time))
                .single()
                .expect("a fixed offset has no gaps")
                .to_utc()
        };
        match self.every {
            Every::Month => {
                let first = local.with_day(1).expect("day 1 exists");
                let mut fire = first.with_day(self.day).expect("day 1-28 exists");
                if at(fire) > now {
                    fire = fire - Months::new(1);
                }
                let reported = fire - Months::new(1);
                Ok((
                    at(fire),
                    ReportPeriod::Month(reported.format("%Y-%m").to_string()),
                ))
            }
            Every::Week => {
                let monday = local - Days::new(u64::from(local.weekday().num_days_from_monday()));
                let mut fire = monday + Days::new(u64::from(self.day - 1));
                if at(fire) > now {
                    fire = fire - Days::new(7);
                }
                let week = (fire - Days::new(7)).iso_week();
                Ok((
                    at(fire),
                    ReportPeriod::Week(format!("{}-W{:02}", week.year(), week.week())),
                ))
            }
        }
    }
}

/// The actor scheduled reports are published as.
pub fn schedule_actor(unit: &str) -> Actor {
    Actor {
        id: "report-schedule".into(),
        role: Role::System,
        unit: Some(unit.to_string()),
    }
}

/// Publishes every report the schedules owe at `now` that does not exist yet. Returns what was
/// published.
pub async fn fire_due(
    log: &EventLog,
    directory: &Directory,
    schedules: &[Schedule],
    now: Timestamp,
) -> Result<Vec<PublishOutcome>, ReportError> {
    let mut specs = Vec::new();
    for schedule in schedules {
        let (_, period) = schedule.latest_firing(now)?;
        for unit in schedule.units(directory) {
            let spec = ReportSpec {
                level: schedule.level,
                unit,
                period: period.clone(),
            };
            if !specs.contains(&spec) {
                specs.push(spec);
            }
        }
    }
    let out = store::publish_first_many(log, directory, &specs, now, |spec| {
        schedule_actor(&spec.unit)
    })
    .await?;
    for outcome in &out {
        if let PublishOutcome::Published { revision } = outcome {
            let p = &revision.published;
            tracing::info!(level = p.level.as_str(), unit = %p.unit, period = %p.period,
                report_id = %p.report_id, "scheduled rate report published");
        }
    }
    Ok(out)
}

/// Runs the schedules until `shutdown` (idle, but running, when there are none).
pub async fn run(
    log: EventLog,
    directory: Directory,
    clock: Arc<dyn Clock>,
    config: ReportsConfig,
    shutdown: CancellationToken,
) -> Result<(), ReportError> {
    for (i, schedule) in config.schedules.iter().enumerate() {
        schedule.validate(&directory).map_err(|e| match e {
            ReportError::Invalid { field, message } => ReportError::Invalid {
                message: format!("[[reports.schedules]] number {}: {field}: {message}", i + 1),
                field,
            },
            other => other,
        })?;
    }
    if config.schedules.is_empty() {
        // Nothing to fire; a background task that ends would stop the app.
        shutdown.cancelled().await;
        return Ok(());
    }
    let poll = Duration::from_secs(config.poll_secs.max(1));
    loop {
        if let Err(error) = fire_due(&log, &directory, &config.schedules, clock.now()).await {
            tracing::warn!(%error, "scheduled rate reports failed; retrying");
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

    fn monthly(day: u32, at: &str) -> Schedule {
        Schedule {
            level: ReportLevel::Street,
            units: vec![],
            every: Every::Month,
            day,
            at: at.into(),
        }
    }

    #[test]
    fn monthly_firing_reports_the_previous_month() {
        let s = monthly(1, "09:00");
        // 1 Nov 2026 08:59 Beijing = 00:59 UTC: October's firing not yet; September's report.
        let (fire, period) = s
            .latest_firing("2026-11-01T00:59:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(fire, "2026-10-01T01:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(period.key(), "2026-09");
        let (fire, period) = s
            .latest_firing("2026-11-01T01:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(fire, "2026-11-01T01:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(period.key(), "2026-10");
        let (_, period) = s
            .latest_firing("2027-01-15T00:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(period.key(), "2026-12");
    }

    #[test]
    fn weekly_firing_reports_the_previous_iso_week() {
        let s = Schedule {
            every: Every::Week,
            ..monthly(1, "08:30")
        };
        // Monday 26 Oct 2026 (W44) 08:30 Beijing: reports W43.
        let (_, period) = s
            .latest_firing("2026-10-26T00:30:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(period.key(), "2026-W43");
        let (_, period) = s
            .latest_firing("2026-10-26T00:29:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(period.key(), "2026-W42");
    }

    #[test]
    fn bad_schedules_are_refused_with_their_field() {
        let d = Directory::builtin();
        assert!(monthly(1, "09:00").validate(&d).is_ok());
        let e = monthly(31, "09:00").validate(&d).unwrap_err();
        assert_eq!(e.body().field.as_deref(), Some("reports.schedules.day"));
        let e = monthly(1, "9h").validate(&d).unwrap_err();
        assert_eq!(e.body().field.as_deref(), Some("reports.schedules.at"));
        let e = Schedule {
            units: vec!["nowhere".into()],
            ..monthly(1, "09:00")
        }
        .validate(&d)
        .unwrap_err();
        assert_eq!(e.body().field.as_deref(), Some("unit"));
    }
}
