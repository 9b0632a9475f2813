//! Policy: the limits a deployment runs under, composed with its catalogue, calendar and
//! directory. Every number that differs by jurisdiction lives here as data, never in code.
//!
//! A profile (`deploy/policy/profiles/*.toml`) holds the jurisdiction's tiers and windows
//! (HOTLINE_PRACTICE §3); [`Policy`] composes it with the catalogue, the calendar and the
//! directory, all parsed from strings (the shell reads the files). Completion limits follow
//! one precedence: the item's statutory limit, else the item's own limit when the request keeps
//! the item's default urgency, else the profile tier for the urgency (see `docs/deadlines.md`).

use chrono::Duration;

use schemas::event::RoutingProposal;
use schemas::{Deadlines, GridPath, HandlingMode, PriorityLane, Timestamp, Urgency};

use crate::calendar::{BUILTIN_CN_2025_2026, WorkingCalendar};
use crate::catalogue::{BUILTIN_CATALOGUE, Catalogue, Item, Limit};
use crate::directory::{BUILTIN_DIRECTORY, Directory};
use crate::places::Places;

mod participation;
mod profile;
pub use participation::{AssistanceFile, AtReply, CallbackFile, Participation};
pub use profile::*;

/// Counts and windows the state machine enforces (HOTLINE_PRACTICE §9).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Reopenings (重办) allowed per request.
    pub max_reopens: u32,
    /// Extensions (延期) allowed per request.
    pub max_extensions: u32,
    /// Longest single extension, in working days.
    pub max_extension_working_days: u32,
    /// Longest total of all extensions, in working days.
    pub max_extension_total_working_days: u32,
    /// Unanswered callback attempts after which the resident counts as unreachable.
    pub callback_attempts: u32,
    /// Hours after a rating during which a department may appeal it.
    pub appeal_window_hours: u32,
}

/// What classifying a request against the catalogue yields.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// The item's category.
    pub category: String,
    /// The item's handling mode.
    pub handling_mode: HandlingMode,
    /// Responsible departments.
    pub departments: Vec<String>,
    /// Escalation chain (units, in order).
    pub escalation_chain: Vec<String>,
    /// The urgency applied.
    pub urgency: Urgency,
    /// The stamped deadlines.
    pub deadlines: Deadlines,
    /// The item keeps its ratings out of the satisfaction rate.
    pub excluded_from_satisfaction: bool,
}

/// Reminder and warning instants for a completion deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Reminder (催办) instant.
    pub remind_at: Timestamp,
    /// Pre-breach warning instant.
    pub warn_at: Timestamp,
}

/// Why reference data refused a lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// No such catalogue item.
    #[error("unknown catalogue item `{0}`")]
    UnknownCatalogueItem(String),
}

/// Why a reference-data file (profile, catalogue, calendar, directory) was refused at load.
///
/// Messages name the file, the entry and the field, so an operator can fix the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file is not valid TOML or does not match the format (unknown or missing field...).
    #[error("{file}: {message}")]
    Syntax {
        /// The file's name.
        file: String,
        /// The parser's message, with line, column and key.
        message: String,
    },
    /// The file parses but an entry breaks a rule.
    #[error("{file}: {at}: field `{field}`: {reason}")]
    Invalid {
        /// The file's name.
        file: String,
        /// The entry, e.g. `item "ss-pension"`.
        at: String,
        /// The field, e.g. `completion.amount`.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

impl LoadError {
    pub(crate) fn syntax(file: &str, error: &toml::de::Error) -> LoadError {
        LoadError::Syntax {
            file: file.to_string(),
            message: error.to_string().trim_end().to_string(),
        }
    }

    pub(crate) fn invalid(file: &str, at: &str, field: &str, reason: String) -> LoadError {
        LoadError::Invalid {
            file: file.to_string(),
            at: at.to_string(),
            field: field.to_string(),
            reason,
        }
    }
}

/// The built-in community-station profile.
pub const BUILTIN_COMMUNITY_STATION: &str =
    include_str!("../../../deploy/policy/profiles/community-station.toml");

/// The built-in 12345 city-hotline profile.
pub const BUILTIN_CITY_HOTLINE_12345: &str =
    include_str!("../../../deploy/policy/profiles/city-hotline-12345.toml");

/// The composed reference data a deployment runs under.
#[derive(Debug, Clone)]
pub struct Policy {
    profile: Profile,
    catalogue: Catalogue,
    calendar: WorkingCalendar,
    directory: Directory,
    places: Places,
}

impl Policy {
    /// The policy the engine ships with for tests and simulation: the built-in
    /// community-station profile, default catalogue, 2025/2026 calendar and sample directory.
    pub fn for_tests() -> Policy {
        Policy::builtin(BUILTIN_COMMUNITY_STATION)
            .expect("the built-in reference data is valid (checked by tests)")
    }

    /// The built-in catalogue, calendar and directory under the profile text `profile`
    /// (e.g. [`BUILTIN_CITY_HOTLINE_12345`]).
    pub fn builtin(profile: &str) -> Result<Policy, LoadError> {
        let policy = Policy::from_files(
            ("profile.toml", profile),
            ("catalogue.toml", BUILTIN_CATALOGUE),
            &[("cn-2025-2026.toml", BUILTIN_CN_2025_2026)],
            ("directory.toml", BUILTIN_DIRECTORY),
        )?;
        let places = Places::builtin(policy.directory())?;
        Ok(policy.with_places(places))
    }

    /// This policy with the grid polygons `places` (parsed against its directory); without
    /// them ([`Policy::from_files`] alone) point-only intake is refused.
    pub fn with_places(mut self, places: Places) -> Policy {
        self.places = places;
        self
    }

    /// This policy under another profile, its catalogue, calendar, directory and places
    /// kept: what a what-if (`engine_core::whatif`) judges by.
    pub fn with_profile(mut self, profile: Profile) -> Policy {
        self.profile = profile;
        self
    }

    /// The grid polygons in force.
    pub fn places(&self) -> &Places {
        &self.places
    }

    /// Parses and validates every reference file, each given as `(name, text)`; names label
    /// errors. The catalogue is checked against the directory.
    pub fn from_files(
        profile: (&str, &str),
        catalogue: (&str, &str),
        calendars: &[(&str, &str)],
        directory: (&str, &str),
    ) -> Result<Policy, LoadError> {
        let profile = Profile::parse(profile.0, profile.1)?;
        let directory = Directory::parse(directory.0, directory.1)?;
        let catalogue = Catalogue::parse(catalogue.0, catalogue.1, &directory)?;
        let calendar = WorkingCalendar::parse_many(calendars)?;
        Ok(Policy {
            profile,
            catalogue,
            calendar,
            directory,
            places: Places::default(),
        })
    }

    /// `profile@version`, recorded in every stamped deadline.
    pub fn name(&self) -> String {
        format!("{}@{}", self.profile.id, self.profile.version)
    }

    /// Counts and windows.
    pub fn limits(&self) -> &Limits {
        &self.profile.limits
    }

    /// The profile in force.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The window and threshold of candidate duplicates under the profile in force.
    pub fn duplicates(&self) -> crate::duplicates::DuplicateRule {
        self.profile.duplicates
    }

    /// The catalogue in force.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The working-day calendar in force.
    pub fn calendar(&self) -> &WorkingCalendar {
        &self.calendar
    }

    /// The directory in force.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// When limits start running under this profile.
    pub fn clock_start(&self) -> ClockStart {
        self.profile.clock_start
    }

    /// The instant limits run from, given the instant the caller chose for the profile's
    /// [`ClockStart`] (receipt or dispatch); "next working day" moves it to that day's opening.
    pub fn anchor(&self, start: Timestamp) -> Timestamp {
        match self.profile.clock_start {
            ClockStart::OnReceipt | ClockStart::OnDispatch => start,
            ClockStart::NextWorkingDay => self.calendar.next_working_day_opening(start),
        }
    }

    /// Accept-and-respond deadline for a request received at `received_at`.
    pub fn accept_due(&self, received_at: Timestamp, lanes: &[PriorityLane]) -> Timestamp {
        let percent = self.lane_percent(None, lanes);
        self.profile
            .accept
            .shortened(percent)
            .due(&self.calendar, received_at)
    }

    /// Classifies against the catalogue and stamps deadlines from `start`.
    pub fn classify(
        &self,
        item: &str,
        urgency: Option<Urgency>,
        lanes: &[PriorityLane],
        start: Timestamp,
    ) -> Result<Classification, PolicyError> {
        let entry = self
            .catalogue
            .item(item)
            .ok_or_else(|| PolicyError::UnknownCatalogueItem(item.into()))?;
        let urgency = urgency.unwrap_or(entry.default_urgency);
        let (response, completion) = self.limits_for(entry, urgency);
        let percent = self.lane_percent(Some(entry), lanes);
        let anchor = self.anchor(start);
        let (completion, response) = (completion.shortened(percent), response.shortened(percent));
        let completion_due_at = completion.due(&self.calendar, anchor);
        let response_due_at = response.due(&self.calendar, anchor).min(completion_due_at);
        let provisional = completion.provisional(&self.calendar, anchor, completion_due_at)
            || response.provisional(&self.calendar, anchor, response_due_at);
        let schedule = self.schedule(entry.reminder_lead, anchor, completion_due_at);
        Ok(Classification {
            category: entry.category.clone(),
            handling_mode: entry.handling_mode,
            departments: entry.departments.clone(),
            escalation_chain: entry.escalation_chain.clone(),
            urgency,
            excluded_from_satisfaction: entry.excluded_from_satisfaction,
            deadlines: Deadlines {
                response_due_at,
                completion_due_at,
                remind_at: schedule.remind_at,
                warn_at: schedule.warn_at,
                policy: self.name(),
                catalogue_version: self.catalogue.version().to_string(),
                provisional,
            },
        })
    }

    /// The units routing proposes for a request under `item` at `location`; `None` for an
    /// unknown item.
    pub fn route(&self, item: &str, location: &GridPath) -> Option<RoutingProposal> {
        let entry = self.catalogue.item(item)?;
        Some(self.catalogue.routing().propose(entry, location))
    }

    /// The (response, completion) limits for `item` at `urgency`, before lane shortening:
    /// statutory limit, else the item's own limit at its default urgency, else the tier.
    pub fn limits_for(&self, item: &Item, urgency: Urgency) -> (Limit, Limit) {
        let tier = self.profile.tier(urgency);
        let own = urgency == item.default_urgency;
        let response = item.response.filter(|_| own).unwrap_or(tier.response);
        let completion = match (&item.statutory, item.completion) {
            (Some((statutory, _)), _) => *statutory,
            (None, Some(limit)) if own => limit,
            _ => tier.completion,
        };
        (response, completion)
    }

    /// Reminder and warning instants for a completion deadline running from `start` to `due`.
    pub fn reschedule(&self, item: &str, start: Timestamp, due: Timestamp) -> Schedule {
        let lead = self
            .catalogue
            .item(item)
            .and_then(|entry| entry.reminder_lead);
        self.schedule(lead, start, due)
    }

    /// `working_days` working days after `from` (for extensions).
    pub fn add_working_days(&self, from: Timestamp, working_days: u32) -> Timestamp {
        self.calendar.add_working_days(from, working_days)
    }

    /// Sign-off deadline for a referral made at `referred_at`.
    pub fn sign_off_due(&self, referred_at: Timestamp) -> Timestamp {
        self.profile.sign_off.due(&self.calendar, referred_at)
    }

    /// Whether the sign-off or return-window instant of a referral made at `referred_at` was
    /// counted through days the calendar does not cover.
    pub fn referral_provisional(&self, referred_at: Timestamp) -> bool {
        let sign_off = self.sign_off_due(referred_at);
        let window = self.return_window_end(referred_at);
        self.profile
            .sign_off
            .provisional(&self.calendar, referred_at, sign_off)
            || self
                .profile
                .return_window
                .provisional(&self.calendar, referred_at, window)
    }

    /// End of the return (退单) window for a referral made at `referred_at`.
    pub fn return_window_end(&self, referred_at: Timestamp) -> Timestamp {
        self.profile.return_window.due(&self.calendar, referred_at)
    }

    /// Report (报到) deadline for departments summoned by a whistle blown at `blown_at`.
    pub fn whistle_report_due(&self, blown_at: Timestamp) -> Timestamp {
        self.profile.whistle_report.due(&self.calendar, blown_at)
    }

    /// Time after a missed deadline before the first escalation, and between escalations.
    pub fn escalation_grace(&self) -> Duration {
        self.profile.escalation_grace
    }

    /// Whether `department` is a known department code.
    pub fn knows_department(&self, department: &str) -> bool {
        self.directory.knows_department(department)
    }

    /// Whether `path` names a known grid node.
    pub fn knows_grid(&self, path: &GridPath) -> bool {
        self.directory.knows_grid(path)
    }

    /// Percent the lanes cut: the item's setting or the profile's, when any lane applies.
    fn lane_percent(&self, item: Option<&Item>, lanes: &[PriorityLane]) -> u32 {
        if !lanes.iter().any(|lane| self.profile.lanes.contains(lane)) {
            return 0;
        }
        item.and_then(|entry| entry.lane_shorten_percent)
            .unwrap_or(self.profile.lane_shorten_percent)
    }

    fn schedule(&self, lead: Option<Duration>, start: Timestamp, due: Timestamp) -> Schedule {
        if due <= start {
            return Schedule {
                remind_at: due,
                warn_at: due,
            };
        }
        let lead = lead.unwrap_or(self.profile.reminder_lead);
        let remind_at = due.checked_sub_signed(lead).unwrap_or(start).max(start);
        let span_ms = (due - start).num_milliseconds();
        let warn_ms = span_ms / 1000 * i64::from(self.profile.warn_permille)
            + span_ms % 1000 * i64::from(self.profile.warn_permille) / 1000;
        let warn_at = start + Duration::milliseconds(warn_ms);
        Schedule { remind_at, warn_at }
    }
}
