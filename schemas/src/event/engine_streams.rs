//! Events of the engine's own streams, which no request's state machine folds: the reference
//! data in force, daily digests, and rate reports with the higher level's feedback on them
//! ([`super::EventKind::is_request_event`] is false for all of them).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::types::*;

/// What kind of reference data a [`ReferenceDataRecorded`] event versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceKind {
    /// The service catalogue.
    Catalogue,
    /// A policy profile (time limits, caps, windows).
    PolicyProfile,
    /// A working-day calendar.
    Calendar,
    /// Departments and the grid tree.
    Directory,
    /// API tokens and their roles (hashes only).
    RoleGrants,
    /// The delivery channels of units (departments, stations, supervision levels).
    UnitChannels,
    /// The grid polygons (GeoJSON) point-only intake is placed by.
    GridPolygons,
}

/// Reference data in force changed (recorded on the reference-data stream, not on a request),
/// so an auditor can tell which policy stamped which deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceDataRecorded {
    /// What changed.
    pub kind: ReferenceKind,
    /// Its declared version (e.g. `community-station@2026.1`).
    pub version: String,
    /// SHA-256 (hex) of the file content in force.
    pub sha256: String,
    /// Where it was loaded from (`builtin` or a path).
    pub source: String,
    /// Why it changed, as the operator who recorded it said (`bianmin policy record`,
    /// `bianmin calendar load`); the engine's own start-up record says it found the change.
    /// Absent in events written before reasons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The content in force (UTF-8 text), so an auditor can read exactly what stamped a
    /// deadline. Absent for role grants (hashes of credentials), for content over
    /// `MAX_RECORDED_CONTENT_BYTES` of the recorder, and in events written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// A unified diff from the previously recorded content of the same kind (and source),
    /// when that content was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// The digest of one day's events (recorded on the digest stream and published to NATS),
/// so an outside party can hold the engine to its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DailyDigestRecorded {
    /// The day (Asia/Shanghai), `YYYY-MM-DD`.
    pub day: String,
    /// Number of events covered.
    pub n_events: u64,
    /// Highest log position covered.
    pub last_position: u64,
    /// Merkle root (SHA-256, hex) over the day's event hashes in log order.
    pub merkle_root: String,
    /// The previous day's digest root ([`crate::envelope::GENESIS_HASH`] for the first).
    pub prev_root: String,
}

/// The level of the unit a rate report is published for (and the level it reports to is the
/// next one up: a street reports to its district, a district to its city).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReportLevel {
    /// A street (街道) reports to its district.
    Street,
    /// A district (区) reports to its city.
    District,
    /// A city (市) reports to the province.
    City,
}

impl ReportLevel {
    /// Every level, lowest first.
    pub const ALL: [ReportLevel; 3] = [
        ReportLevel::Street,
        ReportLevel::District,
        ReportLevel::City,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportLevel::Street => "street",
            ReportLevel::District => "district",
            ReportLevel::City => "city",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<ReportLevel> {
        ReportLevel::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// One figure that differs between two revisions of a rate report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FigureChange {
    /// JSON Pointer (RFC 6901) of the figure inside `figures`.
    pub path: String,
    /// The value in the superseded revision (`null` when absent).
    pub from: serde_json::Value,
    /// The value in this revision (`null` when absent).
    pub to: serde_json::Value,
}

/// A periodic rate report (response, on-time, resolution and satisfaction rates, ranking,
/// backlog, hot categories, overdue cases) was computed from the log up to `log_position` and
/// published upward. Recorded on the report's own stream (UUIDv5 of level, unit and period);
/// a later revision never edits this one, it supersedes it and says what changed and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateReportPublished {
    /// The report (= its stream id): UUIDv5 of level, unit and period.
    pub report_id: Uuid,
    /// Revision, 1 for the first publication.
    pub revision: u32,
    /// Level of the reporting unit.
    pub level: ReportLevel,
    /// The reporting unit (street, district or city code).
    pub unit: String,
    /// The period: `YYYY-MM`, `YYYY-Www` or `YYYY-MM-DD..YYYY-MM-DD`.
    pub period: String,
    /// Highest log position folded into the figures (the log's end when computed).
    pub log_position: u64,
    /// The instant deadlines were judged against (when the figures were computed).
    pub as_of: Timestamp,
    /// Version of the formulas and report layout that computed the figures.
    pub formula_version: String,
    /// The figures, exactly as sent.
    pub figures: serde_json::Value,
    /// SHA-256 (hex) of the canonical JSON bytes of `figures`.
    pub figures_sha256: String,
    /// The stable message id of this revision on NATS: UUIDv5 of unit, period and revision.
    pub message_id: Uuid,
    /// The revision this one supersedes (`None` for the first).
    pub supersedes: Option<u32>,
    /// Figures changed since the superseded revision.
    pub changes: Vec<FigureChange>,
    /// Why a revision was published (e.g. a correction, an upheld rating appeal).
    pub reason: Option<String>,
}

/// The higher level's answer to a rate report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportFeedbackKind {
    /// Received.
    Received,
    /// Questioned, with comments.
    Questioned,
    /// Returned for correction.
    Returned,
    /// Accepted.
    Accepted,
}

impl ReportFeedbackKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFeedbackKind::Received => "received",
            ReportFeedbackKind::Questioned => "questioned",
            ReportFeedbackKind::Returned => "returned",
            ReportFeedbackKind::Accepted => "accepted",
        }
    }
}

/// The higher level's feedback on one revision of a rate report was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateReportFeedbackRecorded {
    /// The report.
    pub report_id: Uuid,
    /// The revision answered.
    pub revision: u32,
    /// Kind of feedback.
    pub kind: ReportFeedbackKind,
    /// Comments (may be empty).
    pub comments: String,
    /// The sender's own message id, when given (a resent document is recorded once).
    pub message_id: Option<String>,
}
