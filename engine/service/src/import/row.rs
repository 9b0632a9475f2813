//! The column mapping of an import row and its validation into an [`ImportRow`].
//!
//! A row arrives as column → text pairs (CSV header names and JSON Lines keys are the same
//! names, listed in [`COLUMNS`]); empty values count as absent. Everything that can be
//! checked without the domain core is checked here, and the first problem found is reported
//! as a [`RowError`] naming the line and the column. The full mapping is documented in
//! `docs/import.md`.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use engine_core::Policy;
use schemas::{
    GridPath, HandlingMode, IntakeDocument, Place, ReplyOutcome, RequestType, Resolution,
    Satisfaction, Timestamp, Urgency,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::steps;

/// Every column an import file may carry, in the order of `docs/import.md`.
pub const COLUMNS: &[&str] = &[
    "external_id",
    "channel",
    "received_at",
    "raised_at",
    "street",
    "community",
    "grid",
    "lat",
    "lon",
    "datum",
    "address",
    "text",
    "kind",
    "anonymous",
    "confidential",
    "no_reply_requested",
    "priority_lanes",
    "contact_name",
    "contact_phone",
    "contact_id_number",
    "contact_address",
    "owner",
    "accepted_at",
    "catalogue_item",
    "category",
    "request_type",
    "urgency",
    "classified_at",
    "handling",
    "department",
    "assisting_departments",
    "override_reason",
    "referred_at",
    "signed_for_at",
    "contacted_at",
    "contact_method",
    "replied_at",
    "outcome",
    "reply_text",
    "reply_plan",
    "reviewed_at",
    "rated_at",
    "satisfaction",
    "resolution",
    "rating_comment",
    "archived_at",
    "status",
];

/// The prefix of the answer columns: `answer.<question code>` holds the answer to a typed
/// question of the row's `catalogue_item` (one column per question, as a spreadsheet has).
pub const ANSWER_PREFIX: &str = "answer.";

/// Whether `name` is a column of the mapping: one of [`COLUMNS`] or an answer column.
pub fn is_column(name: &str) -> bool {
    COLUMNS.contains(&name)
        || name
            .strip_prefix(ANSWER_PREFIX)
            .is_some_and(|c| !c.is_empty())
}

/// Offset of timestamps written without one: Beijing time (UTC+8).
pub const LOCAL_OFFSET_SECONDS: i32 = schemas::local_time::UTC_OFFSET_SECS;

/// Why one row is not imported: `line N: field X: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based line of the file where the row starts (the CSV header is line 1).
    pub line: u64,
    /// The row's external ticket id, when it could be read.
    pub external_id: Option<String>,
    /// Stable code (`invalid_value`, `required`, `unknown_reference`, `lifecycle_order`,
    /// `malformed_line`, a refusal code of the domain core, ...).
    pub code: String,
    /// The column concerned, when there is one.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "line {}: field {field}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// One row as read from the file: its line and its non-empty values by column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// 1-based line where the row starts.
    pub line: u64,
    /// Column → value (trimmed; empty values left out).
    pub values: HashMap<String, String>,
}

/// The classification part of a row.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationRow {
    /// Catalogue item id.
    pub catalogue_item: String,
    /// Statutory request type.
    pub request_type: RequestType,
    /// Urgency; the item's default when absent.
    pub urgency: Option<Urgency>,
    /// When.
    pub at: Timestamp,
}

/// How the request was handled, once classified.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlingRow {
    /// Direct, proxy or referral.
    pub mode: HandlingMode,
    /// Proxy department or referral lead department.
    pub department: String,
    /// Assisting departments of a referral.
    pub assisting: Vec<String>,
    /// Why the referral's units differ from the routing rule's proposal.
    pub override_reason: Option<String>,
    /// When handling was assigned (referral dispatch, or start of direct/proxy handling).
    pub at: Timestamp,
    /// When the lead department signed for a referral (when it did).
    pub signed_for_at: Option<Timestamp>,
}

/// The reply to the resident and the centre's review of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyRow {
    /// Outcome code.
    pub outcome: ReplyOutcome,
    /// What the resident was told.
    pub content: String,
    /// For "cannot solve now": the plan and expected date (required with that outcome).
    pub plan: Option<String>,
    /// When.
    pub at: Timestamp,
    /// When the centre approved the reply.
    pub reviewed_at: Timestamp,
}

/// The resident's rating.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingRow {
    /// Satisfaction.
    pub satisfaction: Satisfaction,
    /// Resolution.
    pub resolution: Resolution,
    /// Comment.
    pub comment: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// A validated row: the intake document and the lifecycle steps it records.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    /// Line where the row starts.
    pub line: u64,
    /// The intake document (contact included; it goes to the contact store only).
    pub document: IntakeDocument,
    /// The grid path of the row (its `street`, `community`, `grid` columns).
    pub location: GridPath,
    /// The point (`lat`, `lon`, `datum`) and `address` of the row, when given.
    pub place: Option<Place>,
    /// When the request was received.
    pub received_at: Timestamp,
    /// Station worker id recorded as the owner (首问); the import actor when absent.
    pub owner: Option<String>,
    /// When it was accepted.
    pub accepted_at: Option<Timestamp>,
    /// Classification.
    pub classification: Option<ClassificationRow>,
    /// Handling.
    pub handling: Option<HandlingRow>,
    /// When the handling unit contacted the resident and started handling.
    pub contacted_at: Option<Timestamp>,
    /// How the resident was contacted.
    pub contact_method: String,
    /// Reply and review.
    pub reply: Option<ReplyRow>,
    /// Rating.
    pub rating: Option<RatingRow>,
    /// When it was archived.
    pub archived_at: Option<Timestamp>,
    /// The stage the row says the request ended in (checked after deciding).
    pub status: Option<String>,
}

/// Reads the values of one row.
pub(super) struct Fields<'a> {
    raw: &'a RawRow,
    external_id: Option<String>,
}

impl Fields<'_> {
    pub(super) fn error(&self, code: &str, field: &str, message: impl Into<String>) -> RowError {
        RowError {
            line: self.raw.line,
            external_id: self.external_id.clone(),
            code: code.into(),
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// The answer columns of the row: question code → value, in code order.
    pub(super) fn answers(&self) -> std::collections::BTreeMap<&str, &str> {
        self.raw
            .values
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(ANSWER_PREFIX)?, v.as_str())))
            .collect()
    }

    pub(super) fn get(&self, column: &str) -> Option<&str> {
        self.raw.values.get(column).map(String::as_str)
    }

    pub(super) fn required(&self, column: &str) -> Result<&str, RowError> {
        self.get(column)
            .ok_or_else(|| self.error("required", column, "is required"))
    }

    pub(super) fn text(&self, column: &str) -> Option<String> {
        self.get(column).map(str::to_string)
    }

    /// A snake_case wire value parsed as `T` (the same names as the JSON API).
    pub(super) fn code<T: DeserializeOwned>(
        &self,
        column: &str,
        allowed: &str,
    ) -> Result<Option<T>, RowError> {
        match self.get(column) {
            None => Ok(None),
            Some(v) => serde_json::from_value(serde_json::Value::String(v.to_string()))
                .map(Some)
                .map_err(|_| {
                    self.error(
                        "invalid_value",
                        column,
                        format!("`{v}` is not one of {allowed}"),
                    )
                }),
        }
    }

    pub(super) fn flag(&self, column: &str) -> Result<Option<bool>, RowError> {
        match self.get(column).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some("true" | "yes" | "y" | "1" | "是") => Ok(Some(true)),
            Some("false" | "no" | "n" | "0" | "否") => Ok(Some(false)),
            Some(other) => Err(self.error(
                "invalid_value",
                column,
                format!("`{other}` is not a boolean (true/false, yes/no, 1/0)"),
            )),
        }
    }

    pub(super) fn time(&self, column: &str) -> Result<Option<Timestamp>, RowError> {
        match self.get(column) {
            None => Ok(None),
            Some(v) => parse_time(v).map(Some).ok_or_else(|| {
                self.error(
                    "invalid_value",
                    column,
                    format!(
                        "`{v}` is not a date-time (RFC 3339, or `YYYY-MM-DD HH:MM[:SS]` in UTC+8)"
                    ),
                )
            }),
        }
    }

    pub(super) fn list(&self, column: &str) -> Vec<String> {
        self.get(column)
            .map(|v| {
                v.split([';', '；', ','])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Parses RFC 3339, or a local date-time without offset (taken as UTC+8): `YYYY-MM-DD
/// HH:MM[:SS]`, `YYYY-MM-DDTHH:MM[:SS]`, `YYYY/MM/DD HH:MM[:SS]`, or a bare date (midnight).
pub fn parse_time(value: &str) -> Option<Timestamp> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    let local = FixedOffset::east_opt(LOCAL_OFFSET_SECONDS)?;
    const FORMATS: [&str; 6] = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
    ];
    let naive = FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    local
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// Validates a raw row into an [`ImportRow`]. `now` is the wall clock: no timestamp may lie
/// in the future.
pub fn parse_row(raw: &RawRow, policy: &Policy, now: Timestamp) -> Result<ImportRow, RowError> {
    let mut f = Fields {
        raw,
        external_id: None,
    };
    if let Some(unknown) = raw.values.keys().filter(|k| !is_column(k)).min() {
        return Err(f.error(
            "unknown_column",
            unknown,
            "is not a column of the import mapping (docs/import.md)",
        ));
    }
    let external_id = f.required("external_id")?.to_string();
    f.external_id = Some(external_id.clone());
    let (document, location, place, received_at) = steps::intake(&f, external_id, policy)?;
    let accepted_at = f.time("accepted_at")?;
    let classification = steps::classification(&f, policy)?;
    let replied_at = f.time("replied_at")?;
    let contacted_at = f.time("contacted_at")?;
    let handling = steps::handling(
        &f,
        policy,
        classification.as_ref(),
        replied_at,
        contacted_at,
    )?;
    let reply = steps::reply(&f, replied_at)?;
    let rating = steps::rating(&f)?;

    let row = ImportRow {
        line: raw.line,
        received_at,
        owner: f.text("owner"),
        accepted_at,
        classification,
        handling,
        contacted_at,
        contact_method: f.text("contact_method").unwrap_or_else(|| "phone".into()),
        reply,
        rating,
        archived_at: f.time("archived_at")?,
        status: f.text("status"),
        document,
        location,
        place,
    };
    check_order(&row, &f, now)?;
    Ok(row)
}

/// Every step needs the ones before it, at the same instant or later, and none lies in the
/// future.
fn check_order(row: &ImportRow, f: &Fields<'_>, now: Timestamp) -> Result<(), RowError> {
    let cl = row.classification.as_ref();
    let handling = row.handling.as_ref();
    let reply = row.reply.as_ref();
    // (column, instant, the column it needs before it, that column is present)
    let needs: [(&str, Option<Timestamp>, &str, bool); 6] = [
        (
            "classified_at",
            cl.map(|c| c.at),
            "accepted_at",
            row.accepted_at.is_some(),
        ),
        (
            "contacted_at",
            row.contacted_at,
            "classified_at",
            handling.is_some(),
        ),
        (
            "replied_at",
            reply.map(|r| r.at),
            "classified_at",
            handling.is_some(),
        ),
        (
            "rated_at",
            row.rating.as_ref().map(|r| r.at),
            "replied_at",
            reply.is_some(),
        ),
        (
            "archived_at",
            row.archived_at,
            "accepted_at",
            row.accepted_at.is_some(),
        ),
        ("accepted_at", row.accepted_at, "received_at", true),
    ];
    for (column, at, before, present) in needs {
        if at.is_some() && !present {
            return Err(f.error(
                "lifecycle_order",
                column,
                format!("is given but {before} is not"),
            ));
        }
    }
    let mut sequence: Vec<(&str, Timestamp)> = vec![("received_at", row.received_at)];
    sequence.extend(row.accepted_at.map(|t| ("accepted_at", t)));
    sequence.extend(cl.map(|c| ("classified_at", c.at)));
    if let Some(h) = handling {
        sequence.push(("referred_at", h.at));
        sequence.extend(h.signed_for_at.map(|t| ("signed_for_at", t)));
    }
    sequence.extend(row.contacted_at.map(|t| ("contacted_at", t)));
    if let Some(r) = reply {
        sequence.push(("replied_at", r.at));
        sequence.push(("reviewed_at", r.reviewed_at));
    }
    sequence.extend(row.rating.as_ref().map(|r| ("rated_at", r.at)));
    sequence.extend(row.archived_at.map(|t| ("archived_at", t)));
    for pair in sequence.windows(2) {
        let [(before, earlier), (column, later)] = pair else {
            continue;
        };
        if later < earlier {
            return Err(f.error(
                "lifecycle_order",
                column,
                format!(
                    "{} is earlier than {before} ({})",
                    later.to_rfc3339(),
                    earlier.to_rfc3339()
                ),
            ));
        }
    }
    let future = now + chrono::Duration::minutes(5);
    if let Some((column, at)) = sequence.iter().find(|(_, at)| *at > future) {
        return Err(f.error(
            "invalid_value",
            column,
            format!("{} lies in the future", at.to_rfc3339()),
        ));
    }
    if let Some(raised) = row.document.raised_at
        && raised > row.received_at
    {
        return Err(f.error("lifecycle_order", "raised_at", "is later than received_at"));
    }
    Ok(())
}
