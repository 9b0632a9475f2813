//! Policy profiles: the TOML shape of a jurisdiction's profile (`deploy/policy/profiles/*.toml`:
//! tiers, windows, extensions, priority lanes, when the clock starts) and the checked
//! [`Profile`] the engine runs under, parsed from it.

use chrono::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use schemas::{PriorityLane, Urgency};

use super::{AssistanceFile, CallbackFile, Limits, LoadError, Participation};
use crate::catalogue::{Limit, LimitFile, MAX_LANE_SHORTEN_PERCENT};
use crate::duplicates::{DuplicateRule, DuplicatesFile};

/// When a request's limits start running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockStart {
    /// From receipt: the caller passes the received-at instant.
    OnReceipt,
    /// From dispatch to the unit: the caller passes the dispatch (or classification) instant.
    OnDispatch,
    /// From the opening of the next working day after the instant passed (次日起算).
    NextWorkingDay,
}

/// A policy profile as written on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Profile id, e.g. `community-station`.
    pub id: String,
    /// Profile version, e.g. `2026.1`.
    pub version: String,
    /// Display name.
    pub name: String,
    /// When limits start running.
    pub clock_start: ClockStart,
    /// Accept-and-respond limit from receipt.
    pub accept: LimitFile,
    /// Sign-off (签收) limit for a referral.
    pub sign_off: LimitFile,
    /// Return (退单) window for a referral.
    pub return_window: LimitFile,
    /// Report (报到) limit for departments summoned by a whistle.
    pub whistle_report: LimitFile,
    /// Hours after a missed deadline before escalating, and between escalations.
    pub escalation_grace_hours: i64,
    /// Reminder (催办) lead before completion, in hours.
    pub reminder_lead_hours: i64,
    /// Share of the completion limit after which the pre-breach warning fires (0 < f < 1).
    pub warn_fraction: f64,
    /// Reopenings allowed.
    pub max_reopens: u32,
    /// Unanswered callback attempts before "unreachable".
    pub callback_attempts: u32,
    /// Hours after a rating during which a department may appeal it.
    pub appeal_window_hours: u32,
    /// Assisting units' limit and what the reply does about their parts (optional).
    #[serde(default)]
    pub assistance: AssistanceFile,
    /// The timely-callback limit (optional).
    #[serde(default)]
    pub callback: CallbackFile,
    /// Which requests are shown as candidate duplicates (optional).
    #[serde(default)]
    pub duplicates: DuplicatesFile,
    /// Extension caps.
    pub extensions: ExtensionsFile,
    /// Priority lanes and their default shortening.
    pub priority_lanes: PriorityLanesFile,
    /// Limits per urgency tier.
    pub tiers: TiersFile,
}

/// Extension (延期) caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionsFile {
    /// Extensions allowed per request.
    pub max_count: u32,
    /// Longest single extension, working days.
    pub max_working_days: u32,
    /// Longest total of all extensions, working days.
    pub max_total_working_days: u32,
}

/// Priority lanes (绿色通道).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityLanesFile {
    /// Lanes this profile honours.
    pub lanes: Vec<PriorityLane>,
    /// Percent cut from limits when an item does not say (0 = lanes do not shorten).
    pub shorten_percent: u32,
}

/// Limits for each urgency tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TiersFile {
    /// 紧急.
    pub emergency: TierFile,
    /// 及时性 (water, power, gas, heat).
    pub time_critical: TierFile,
    /// 一般.
    pub general: TierFile,
    /// 复杂疑难.
    pub complex: TierFile,
}

/// One tier's limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierFile {
    /// First response to the resident.
    pub response: LimitFile,
    /// Completion with a reply.
    pub completion: LimitFile,
}

/// A tier's validated limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// Response limit.
    pub response: Limit,
    /// Completion limit.
    pub completion: Limit,
}

/// A validated policy profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Profile id.
    pub id: String,
    /// Profile version.
    pub version: String,
    /// Display name.
    pub name: String,
    /// When limits start running.
    pub clock_start: ClockStart,
    /// Accept-and-respond limit.
    pub accept: Limit,
    /// Sign-off limit.
    pub sign_off: Limit,
    /// Return window.
    pub return_window: Limit,
    /// Whistle report limit.
    pub whistle_report: Limit,
    /// Escalation grace.
    pub escalation_grace: Duration,
    /// Reminder lead.
    pub reminder_lead: Duration,
    /// Warning fraction in per-mille (1..=999).
    pub warn_permille: i32,
    /// Priority lanes honoured.
    pub lanes: Vec<PriorityLane>,
    /// Default lane shortening, percent.
    pub lane_shorten_percent: u32,
    /// Counts and windows.
    pub limits: Limits,
    /// Assisting units and the callback.
    pub participation: Participation,
    /// The window and threshold of candidate duplicates.
    pub duplicates: DuplicateRule,
    /// Tiers: emergency, time-critical, general, complex.
    pub tiers: [Tier; 4],
}

impl Profile {
    /// Parses and validates a profile; `name` labels errors.
    pub fn parse(name: &str, text: &str) -> Result<Profile, LoadError> {
        let file: ProfileFile = toml::from_str(text).map_err(|e| LoadError::syntax(name, &e))?;
        let at = format!("profile \"{}\"", file.id);
        let invalid = |field: &str, reason: String| LoadError::invalid(name, &at, field, reason);
        for (field, value) in [("id", &file.id), ("version", &file.version)] {
            if value.trim().is_empty() {
                return Err(invalid(field, "must not be empty".into()));
            }
        }
        let limit = |field: &str, file: LimitFile| {
            Limit::from_file(file).map_err(|reason| invalid(&format!("{field}.amount"), reason))
        };
        let hours = |field: &str, value: i64| {
            if (1..=24 * 365).contains(&value) {
                Ok(Duration::hours(value))
            } else {
                Err(invalid(
                    field,
                    format!("must be 1..=8760 hours, got {value}"),
                ))
            }
        };
        if !(file.warn_fraction > 0.0 && file.warn_fraction < 1.0) {
            return Err(invalid(
                "warn_fraction",
                format!("must be between 0 and 1, got {}", file.warn_fraction),
            ));
        }
        let ext = &file.extensions;
        if ext.max_working_days > ext.max_total_working_days {
            return Err(invalid(
                "extensions.max_working_days",
                "exceeds extensions.max_total_working_days".into(),
            ));
        }
        if file.priority_lanes.shorten_percent > MAX_LANE_SHORTEN_PERCENT {
            return Err(invalid(
                "priority_lanes.shorten_percent",
                format!("must be at most {MAX_LANE_SHORTEN_PERCENT}"),
            ));
        }
        let tier = |field: &str, tier: &TierFile| -> Result<Tier, LoadError> {
            Ok(Tier {
                response: limit(&format!("tiers.{field}.response"), tier.response)?,
                completion: limit(&format!("tiers.{field}.completion"), tier.completion)?,
            })
        };
        let tiers = [
            tier("emergency", &file.tiers.emergency)?,
            tier("time_critical", &file.tiers.time_critical)?,
            tier("general", &file.tiers.general)?,
            tier("complex", &file.tiers.complex)?,
        ];
        Ok(Profile {
            accept: limit("accept", file.accept)?,
            sign_off: limit("sign_off", file.sign_off)?,
            return_window: limit("return_window", file.return_window)?,
            whistle_report: limit("whistle_report", file.whistle_report)?,
            escalation_grace: hours("escalation_grace_hours", file.escalation_grace_hours)?,
            reminder_lead: hours("reminder_lead_hours", file.reminder_lead_hours)?,
            // In (0, 1), so the product is in (0, 1000).
            warn_permille: ((file.warn_fraction * 1000.0).round() as i32).clamp(1, 999),
            lanes: file.priority_lanes.lanes.clone(),
            lane_shorten_percent: file.priority_lanes.shorten_percent,
            limits: Limits {
                max_reopens: file.max_reopens,
                max_extensions: ext.max_count,
                max_extension_working_days: ext.max_working_days,
                max_extension_total_working_days: ext.max_total_working_days,
                callback_attempts: file.callback_attempts,
                appeal_window_hours: file.appeal_window_hours,
            },
            participation: Participation::parse(file.assistance, file.callback, invalid)?,
            duplicates: DuplicateRule::parse(file.duplicates)
                .map_err(|(field, reason)| invalid(field, reason))?,
            tiers,
            id: file.id,
            version: file.version,
            name: file.name,
            clock_start: file.clock_start,
        })
    }

    /// The JSON Schema of the profile file format, pretty-printed with a trailing newline
    /// (committed as `deploy/policy/profile.schema.json`).
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(ProfileFile);
        let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The tier for `urgency`.
    pub fn tier(&self, urgency: Urgency) -> Tier {
        match urgency {
            Urgency::Emergency => self.tiers[0],
            Urgency::TimeCritical => self.tiers[1],
            Urgency::General => self.tiers[2],
            Urgency::Complex => self.tiers[3],
        }
    }
}
