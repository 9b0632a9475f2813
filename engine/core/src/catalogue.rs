//! The service catalogue (服务事项清单): versioned service items grouped by category, each with
//! responsible departments, handling mode, default urgency, limits with units, reminder lead,
//! escalation chain, priority-lane shortening and an optional statutory limit.
//!
//! Parsed from `deploy/policy/catalogue.toml` (a string: no I/O here) and validated against the
//! directory: unknown fields, duplicate ids, unknown department codes, non-positive limits and
//! empty escalation chains are refused with the item and field named.

use std::collections::BTreeMap;

use chrono::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use schemas::{HandlingMode, Timestamp, UpwardLevel, Urgency};

use crate::calendar::WorkingCalendar;
use crate::directory::Directory;
use crate::policy::LoadError;
use crate::questions::{Question, validate_questions};
use crate::routing::{RoutingRuleFile, RoutingTable};

/// The built-in default catalogue.
pub const BUILTIN_CATALOGUE: &str = include_str!("../../../deploy/policy/catalogue.toml");

/// Largest share, in percent, a priority lane may cut from a limit.
pub const MAX_LANE_SHORTEN_PERCENT: u32 = 90;

/// The unit a limit counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitUnit {
    /// Clock minutes, any day (自然时).
    NaturalMinutes,
    /// Clock hours, any day (自然时).
    NaturalHours,
    /// Office hours on working days (工作时).
    WorkingHours,
    /// Working days, counted from the next day, ending at closing time (工作日).
    WorkingDays,
    /// Calendar days, ending at closing time, moved off holidays (自然日).
    CalendarDays,
}

/// A limit as written in a file: an amount and its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitFile {
    /// How many units; must be positive.
    pub amount: i64,
    /// The unit.
    pub unit: LimitUnit,
}

/// A validated, positive limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// How many units (at least 1).
    pub amount: u32,
    /// The unit.
    pub unit: LimitUnit,
}

impl Limit {
    /// Validates a file limit; `Err` holds the reason.
    pub fn from_file(file: LimitFile) -> Result<Limit, String> {
        if file.amount <= 0 {
            return Err(format!("must be positive, got {}", file.amount));
        }
        let amount =
            u32::try_from(file.amount).map_err(|_| format!("{} is too large", file.amount))?;
        Ok(Limit {
            amount,
            unit: file.unit,
        })
    }

    /// The limit cut by `percent` (rounded up, never below one unit).
    pub fn shortened(self, percent: u32) -> Limit {
        let percent = u64::from(percent.min(MAX_LANE_SHORTEN_PERCENT));
        let kept = (u64::from(self.amount) * (100 - percent)).div_ceil(100);
        Limit {
            amount: u32::try_from(kept).unwrap_or(self.amount).max(1),
            unit: self.unit,
        }
    }

    /// Whether this limit's deadline from `from` (`due`) is provisional: a limit counted on
    /// the working calendar (working hours, working days, calendar days) whose span runs
    /// through a year the calendar does not cover. Natural minutes and hours never are.
    pub fn provisional(self, calendar: &WorkingCalendar, from: Timestamp, due: Timestamp) -> bool {
        match self.unit {
            LimitUnit::NaturalMinutes | LimitUnit::NaturalHours => false,
            LimitUnit::WorkingHours | LimitUnit::WorkingDays | LimitUnit::CalendarDays => {
                !calendar.covers_span(from, due)
            }
        }
    }

    /// The instant this limit ends when it starts at `from`, per `calendar`.
    pub fn due(self, calendar: &WorkingCalendar, from: Timestamp) -> Timestamp {
        match self.unit {
            LimitUnit::NaturalMinutes => from
                .checked_add_signed(Duration::minutes(i64::from(self.amount)))
                .unwrap_or(from),
            LimitUnit::NaturalHours => calendar.add_natural_hours(from, self.amount),
            LimitUnit::WorkingHours => calendar.add_working_hours(from, self.amount),
            LimitUnit::WorkingDays => calendar.add_working_days(from, self.amount),
            LimitUnit::CalendarDays => calendar.add_calendar_days(from, self.amount),
        }
    }
}

/// The catalogue file as written on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogueFile {
    /// Catalogue version, recorded in every stamped deadline (e.g. `2026.1`).
    pub version: String,
    /// Categories, each holding its items.
    pub categories: Vec<CategoryFile>,
    /// Routing rules (`crate::routing`): category or item × area → lead and assisting units.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routing: Vec<RoutingRuleFile>,
}

/// A category of service items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryFile {
    /// Category id, e.g. `social-security`.
    pub id: String,
    /// Display name (Chinese and English).
    pub name: String,
    /// The category's items.
    pub items: Vec<ItemFile>,
}

/// A service item (服务事项).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemFile {
    /// Stable item id, unique across the catalogue.
    pub id: String,
    /// Display name (Chinese and English).
    pub name: String,
    /// Responsible department codes (from the directory), lead first.
    pub departments: Vec<String>,
    /// How the station handles it.
    pub handling_mode: HandlingMode,
    /// Urgency applied when intake gives none.
    pub default_urgency: Urgency,
    /// Response limit; the profile tier's when absent.
    #[serde(default)]
    pub response: Option<LimitFile>,
    /// Completion limit; the profile tier's when absent.
    #[serde(default)]
    pub completion: Option<LimitFile>,
    /// Reminder (催办) lead before completion, in hours; the profile's when absent.
    #[serde(default)]
    pub reminder_lead_hours: Option<i64>,
    /// Escalation chain: levels (`street`, `district`, `city`) or department codes, in order.
    pub escalation_chain: Vec<String>,
    /// Percent a priority lane (绿色通道) cuts from the limits; the profile's when absent.
    #[serde(default)]
    pub lane_shorten_percent: Option<u32>,
    /// Statutory completion limit; overrides every other completion limit.
    #[serde(default)]
    pub statutory: Option<StatutoryFile>,
    /// Ratings of requests under this item stay out of the satisfaction rate (law-enforcement
    /// matters, 执法办案: the resident's satisfaction is not the measure of a lawful decision).
    #[serde(default)]
    pub excluded_from_satisfaction: bool,
    /// Typed questions asked at intake under this item (`crate::questions`), in form order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<Question>,
}

/// A completion limit fixed by law.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatutoryFile {
    /// How many units; must be positive.
    pub amount: i64,
    /// The unit.
    pub unit: LimitUnit,
    /// The legal basis, e.g. `行政许可法 art. 42`.
    pub basis: String,
}

/// A validated service item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Stable item id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Category id.
    pub category: String,
    /// Responsible department codes, lead first (never empty).
    pub departments: Vec<String>,
    /// Handling mode.
    pub handling_mode: HandlingMode,
    /// Default urgency.
    pub default_urgency: Urgency,
    /// Item response limit.
    pub response: Option<Limit>,
    /// Item completion limit.
    pub completion: Option<Limit>,
    /// Reminder lead, when the item sets one.
    pub reminder_lead: Option<Duration>,
    /// Escalation chain (never empty).
    pub escalation_chain: Vec<String>,
    /// Priority-lane cut in percent, when the item sets one.
    pub lane_shorten_percent: Option<u32>,
    /// Statutory completion limit and its basis.
    pub statutory: Option<(Limit, String)>,
    /// Ratings under this item are left out of the satisfaction rate.
    pub excluded_from_satisfaction: bool,
    /// Typed questions asked at intake, in form order (validated).
    pub questions: Vec<Question>,
}

/// The validated catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    version: String,
    categories: BTreeMap<String, String>,
    items: BTreeMap<String, Item>,
    routing: RoutingTable,
}

impl Catalogue {
    /// The built-in catalogue, validated against `directory`.
    pub fn builtin(directory: &Directory) -> Catalogue {
        Catalogue::parse("catalogue.toml", BUILTIN_CATALOGUE, directory).expect(
            "the built-in catalogue is valid against the built-in directory (checked by tests)",
        )
    }

    /// Parses and validates a catalogue file against `directory`; `name` labels errors.
    pub fn parse(name: &str, text: &str, directory: &Directory) -> Result<Catalogue, LoadError> {
        let file: CatalogueFile = toml::from_str(text).map_err(|e| LoadError::syntax(name, &e))?;
        if file.version.trim().is_empty() {
            return Err(LoadError::invalid(
                name,
                "catalogue",
                "version",
                "must not be empty".into(),
            ));
        }
        let mut categories = BTreeMap::new();
        let mut items = BTreeMap::new();
        for category in &file.categories {
            let at = format!("category \"{}\"", category.id);
            if category.id.trim().is_empty() {
                return Err(LoadError::invalid(
                    name,
                    &at,
                    "id",
                    "must not be empty".into(),
                ));
            }
            if categories
                .insert(category.id.clone(), category.name.clone())
                .is_some()
            {
                return Err(LoadError::invalid(
                    name,
                    &at,
                    "id",
                    "duplicate category id".into(),
                ));
            }
            for raw in &category.items {
                let item =
                    validate_item(raw, &category.id, directory).map_err(|(field, reason)| {
                        LoadError::invalid(name, &format!("item \"{}\"", raw.id), &field, reason)
                    })?;
                if items.contains_key(&item.id) {
                    let at = format!("item \"{}\"", item.id);
                    return Err(LoadError::invalid(
                        name,
                        &at,
                        "id",
                        "duplicate item id".into(),
                    ));
                }
                items.insert(item.id.clone(), item);
            }
        }
        let routing = RoutingTable::validate(
            &file.routing,
            directory,
            |id| items.contains_key(id),
            |id| categories.contains_key(id),
        )
        .map_err(|(rule, field, reason)| {
            LoadError::invalid(name, &format!("routing rule \"{rule}\""), field, reason)
        })?;
        Ok(Catalogue {
            version: file.version,
            categories,
            items,
            routing,
        })
    }

    /// The routing rules.
    pub fn routing(&self) -> &RoutingTable {
        &self.routing
    }

    /// The catalogue version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The item with id `id`.
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.get(id)
    }

    /// Every item, by id.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.items.values()
    }

    /// Category ids and names.
    pub fn categories(&self) -> impl Iterator<Item = (&str, &str)> {
        self.categories
            .iter()
            .map(|(id, name)| (id.as_str(), name.as_str()))
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the catalogue has no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The JSON Schema of the catalogue file format, pretty-printed with a trailing newline
/// (committed as `deploy/policy/catalogue.schema.json`).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(CatalogueFile);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

fn validate_item(
    raw: &ItemFile,
    category: &str,
    directory: &Directory,
) -> Result<Item, (String, String)> {
    let fail = |field: &str, reason: String| (field.to_string(), reason);
    if raw.id.trim().is_empty() {
        return Err(fail("id", "must not be empty".into()));
    }
    if raw.name.trim().is_empty() {
        return Err(fail("name", "must not be empty".into()));
    }
    if raw.departments.is_empty() {
        return Err(fail(
            "departments",
            "at least one department is required".into(),
        ));
    }
    for code in &raw.departments {
        if !directory.knows_department(code) {
            return Err(fail(
                "departments",
                format!("unknown department code `{code}`"),
            ));
        }
    }
    if raw.escalation_chain.is_empty() {
        return Err(fail("escalation_chain", "must not be empty".into()));
    }
    for step in &raw.escalation_chain {
        let is_level = [
            UpwardLevel::Street,
            UpwardLevel::District,
            UpwardLevel::City,
        ]
        .iter()
        .any(|level| level.as_str() == step);
        if !is_level && !directory.knows_department(step) {
            return Err(fail(
                "escalation_chain",
                format!("`{step}` is neither a level nor a department"),
            ));
        }
    }
    let limit = |field: &str, file: Option<LimitFile>| -> Result<Option<Limit>, (String, String)> {
        file.map(Limit::from_file)
            .transpose()
            .map_err(|reason| fail(&format!("{field}.amount"), reason))
    };
    let response = limit("response", raw.response)?;
    let completion = limit("completion", raw.completion)?;
    let statutory = match &raw.statutory {
        None => None,
        Some(statutory) => {
            let limit = Limit::from_file(LimitFile {
                amount: statutory.amount,
                unit: statutory.unit,
            })
            .map_err(|reason| fail("statutory.amount", reason))?;
            if statutory.basis.trim().is_empty() {
                return Err(fail("statutory.basis", "must name the legal basis".into()));
            }
            Some((limit, statutory.basis.clone()))
        }
    };
    let reminder_lead = match raw.reminder_lead_hours {
        None => None,
        Some(hours) if hours > 0 && hours <= 24 * 365 => Some(Duration::hours(hours)),
        Some(hours) => {
            return Err(fail(
                "reminder_lead_hours",
                format!("must be 1..=8760, got {hours}"),
            ));
        }
    };
    if let Some(percent) = raw.lane_shorten_percent
        && percent > MAX_LANE_SHORTEN_PERCENT
    {
        return Err(fail(
            "lane_shorten_percent",
            format!("must be at most {MAX_LANE_SHORTEN_PERCENT}, got {percent}"),
        ));
    }
    validate_questions(&raw.questions)?;
    Ok(Item {
        questions: raw.questions.clone(),
        excluded_from_satisfaction: raw.excluded_from_satisfaction,
        id: raw.id.clone(),
        name: raw.name.clone(),
        category: category.to_string(),
        departments: raw.departments.clone(),
        handling_mode: raw.handling_mode,
        default_urgency: raw.default_urgency,
        response,
        completion,
        reminder_lead,
        escalation_chain: raw.escalation_chain.clone(),
        lane_shorten_percent: raw.lane_shorten_percent,
        statutory,
    })
}
