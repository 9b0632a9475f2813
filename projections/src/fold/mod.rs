//! The pure fold of one request's events into its state, and the summary row derived from it.
//!
//! The state keeps what corrections need (every classification, every rating, every deadline
//! move, each with its event id), so `event_corrected` can neutralise an earlier event and the
//! summary is recomputed from what remains. No clock is read: every instant comes from events.

use chrono::{DateTime, Datelike, Duration, FixedOffset, Utc};
use schemas::{Event, EventEnvelope, GridPath};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod callback;
mod events;
mod parts;
mod refold;
mod summary;

pub use callback::Callback;
pub use parts::{ASSISTING, Part, WHISTLE};
pub use refold::Logged;
pub use summary::{Summary, SupervisionMarks, UnitPart};

/// A UTC instant.
pub type Ts = DateTime<Utc>;

/// One classification with the deadlines it stamped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// The `request_classified` event.
    pub event_id: Uuid,
    /// Stream version of that event.
    pub version: u64,
    /// When.
    pub at: Ts,
    /// Catalogue item.
    pub catalogue_item: String,
    /// Category.
    pub category: String,
    /// Request type (wire name).
    pub request_type: String,
    /// Urgency (wire name).
    pub urgency: String,
    /// Response deadline stamped.
    pub response_due_at: Ts,
    /// Completion deadline stamped.
    pub completion_due_at: Ts,
    /// The item keeps its ratings out of the satisfaction rate (stamped with the catalogue
    /// version that classified it).
    #[serde(default)]
    pub excluded_from_satisfaction: bool,
}

/// A move of the completion deadline (granted extension or resumed clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DueMove {
    /// The moving event.
    pub event_id: Uuid,
    /// Its stream version.
    pub version: u64,
    /// The new completion deadline.
    pub new_due_at: Ts,
}

/// One rating by the resident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    /// The `rated` event.
    pub event_id: Uuid,
    /// When.
    pub at: Ts,
    /// Satisfaction (wire name).
    pub satisfaction: String,
    /// Resolution (wire name).
    pub resolution: String,
    /// Excluded by an upheld appeal.
    pub excluded: bool,
}

/// Everything the `requests` projector remembers about one request (stored as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestState {
    /// The request.
    pub request_id: Uuid,
    /// Current stage (snake_case).
    pub stage: String,
    /// `service` or `dispute`.
    pub kind: String,
    /// Channel (wire name).
    pub channel: String,
    /// Grid location.
    pub location: GridPath,
    /// The point sent with the request, `(lat, lon)` in WGS-84 degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<(f64, f64)>,
    /// Anonymous request.
    pub anonymous: bool,
    /// Received at.
    pub received_at: Ts,
    /// Accept deadline from intake.
    pub accept_due_at: Ts,
    /// The catalogue item named at intake (`request_received.service_code`).
    #[serde(default)]
    pub requested_item: Option<String>,
    /// The intake answers to that item's questions, as a JSON object text (`None`: none).
    #[serde(default)]
    pub answers: Option<String>,
    /// Accepted at.
    pub accepted_at: Option<Ts>,
    /// Declined at.
    pub declined_at: Option<Ts>,
    /// Owner (首问责任人).
    pub owner: Option<String>,
    /// The person assigned (指派), distinct from the owner; cleared by a new referral.
    #[serde(default)]
    pub assignee: Option<String>,
    /// The unit the assignee acts for (lead department or community code).
    #[serde(default)]
    pub assignee_unit: Option<String>,
    /// The departments' own parts: assisting parts (协办) and whistle summonses (吹哨报到).
    #[serde(default)]
    pub parts: Vec<Part>,
    /// The callback (回访) of the reply in force.
    #[serde(default)]
    pub callback: Callback,
    /// Classifications in order; the last one is in force.
    pub classifications: Vec<Classification>,
    /// Completion-deadline moves in order.
    pub due_moves: Vec<DueMove>,
    /// Lead department of the latest referral.
    pub lead_department: Option<String>,
    /// The latest referral's routing decision (rule, overridden); absent before routing rules
    /// and in states stored before it was folded.
    #[serde(default)]
    pub routing: Option<(String, bool)>,
    /// First referral at.
    pub referred_at: Option<Ts>,
    /// First sign-off at.
    pub signed_at: Option<Ts>,
    /// First time the unit engaged without contact (sign-off, direct or proxy handling start).
    pub engaged_at: Option<Ts>,
    /// First contact with the resident.
    pub first_contact_at: Option<Ts>,
    /// First reply to the resident.
    pub replied_at: Option<Ts>,
    /// Outcome of the latest reply.
    pub reply_outcome: Option<String>,
    /// Open: received and neither declined, replied nor archived (reopening opens it again).
    pub open: bool,
    /// Ratings in order (corrected ones removed); the last one counts.
    pub ratings: Vec<Rating>,
    /// Archived at.
    pub archived_at: Option<Ts>,
    /// A `deadline_missed` for response, sign-off or completion was recorded.
    pub overdue: bool,
    /// Reopen count.
    pub reopen_count: i64,
    /// Referral returns (退单) recorded.
    pub referral_returns: i64,
    /// Highest supervision level reached.
    pub escalation_level: Option<String>,
    /// The completion clock stands still since (`clock_paused`); cleared by `clock_resumed`,
    /// whose new deadline then applies. Absent in states stored before pauses were folded.
    #[serde(default)]
    pub paused_since: Option<Ts>,
    /// The latest supervision marks (催办, warning, overdue mark, escalation), when they
    /// occurred. Absent in states stored before they were folded.
    #[serde(default)]
    pub marks: SupervisionMarks,
    /// Referrals in order.
    pub referrals: Vec<Referral>,
    /// The original this request was merged into (并案); absent in states stored before
    /// merges were folded.
    #[serde(default)]
    pub merged_into: Option<Uuid>,
    /// Log position of the last event applied.
    pub last_position: u64,
    /// Every event folded, with its position, so that a correction can fold the history again
    /// without the events it neutralises (`refold.rs`). Empty in states stored before it was
    /// kept: those fall back to [`RequestState::correct`] until the read models are rebuilt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<Logged>,
    /// Folded again in this batch: its referral and part rows are written whole.
    #[serde(skip)]
    pub refolded: bool,
}

/// One referral (转办) of the request to a lead department.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Referral {
    /// 1 for the first referral, 2+ for re-routes.
    pub number: u32,
    /// Lead department.
    pub department: String,
    /// Referred at.
    pub referred_at: Ts,
    /// Sign-off due.
    pub sign_off_due_at: Ts,
    /// Signed for at.
    pub signed_at: Option<Ts>,
    /// Returned (退单) at.
    pub returned_at: Option<Ts>,
    /// Log position of the last change.
    pub last_position: u64,
}

fn wire<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Asia/Shanghai (UTC+8, no daylight saving): the zone periods are cut in.
pub fn shanghai() -> FixedOffset {
    schemas::local_time::offset()
}

/// Day (`YYYY-MM-DD`), ISO week (`YYYY-Www`) and month (`YYYY-MM`) of an instant in Asia/Shanghai.
pub fn periods(t: Ts) -> (String, String, String) {
    let local = t.with_timezone(&shanghai());
    let week = local.iso_week();
    (
        local.format("%Y-%m-%d").to_string(),
        format!("{}-W{:02}", week.year(), week.week()),
        local.format("%Y-%m").to_string(),
    )
}

impl RequestState {
    /// Starts a state from a `request_received` envelope; `None` for any other event.
    pub fn start(env: &EventEnvelope, position: u64) -> Option<RequestState> {
        let Event::RequestReceived(r) = &env.event else {
            return None;
        };
        Some(RequestState {
            request_id: env.request_id,
            stage: "received".into(),
            kind: wire(&r.kind),
            channel: r.channel.as_str().into(),
            location: r.location.clone(),
            point: r
                .place
                .as_ref()
                .and_then(|p| p.point)
                .map(|p| (p.lat, p.lon)),
            anonymous: r.anonymous,
            received_at: env.occurred_at,
            accept_due_at: r.accept_due_at,
            requested_item: r.service_code.clone(),
            answers: (!r.answers.is_empty())
                .then(|| serde_json::to_string(&r.answers).unwrap_or_default()),
            accepted_at: None,
            declined_at: None,
            owner: None,
            assignee: None,
            assignee_unit: None,
            parts: Vec::new(),
            callback: Callback::default(),
            classifications: Vec::new(),
            due_moves: Vec::new(),
            lead_department: None,
            routing: None,
            referred_at: None,
            signed_at: None,
            engaged_at: None,
            first_contact_at: None,
            replied_at: None,
            reply_outcome: None,
            open: true,
            ratings: Vec::new(),
            archived_at: None,
            overdue: false,
            reopen_count: 0,
            referral_returns: 0,
            escalation_level: None,
            paused_since: None,
            marks: SupervisionMarks::default(),
            referrals: Vec::new(),
            merged_into: None,
            last_position: position,
            log: vec![Logged::new(env, position)],
            refolded: false,
        })
    }

    /// Applies one event (not the `request_received` that started the state); a correction
    /// folds the kept log again without what it neutralises.
    pub fn apply(&mut self, env: &EventEnvelope, position: u64) {
        if self.log.is_empty() {
            return self.fold(env, position);
        }
        self.log.push(Logged::new(env, position));
        match &env.event {
            Event::EventCorrected(e) if refold::refolds(e.corrected_type) => self.refold(),
            _ => self.fold(env, position),
        }
    }

    /// The classification in force.
    pub fn classification(&self) -> Option<&Classification> {
        self.classifications.last()
    }

    /// Response deadline in force: the classification's, else the intake accept deadline.
    pub fn response_due_at(&self) -> Ts {
        self.classification()
            .map(|c| c.response_due_at)
            .unwrap_or(self.accept_due_at)
    }

    /// Completion deadline in force: the last move after the classification in force, else the
    /// classification's stamped deadline.
    pub fn completion_due_at(&self) -> Option<Ts> {
        let c = self.classification()?;
        Some(
            self.due_moves
                .iter()
                .rev()
                .find(|m| m.version > c.version)
                .map(|m| m.new_due_at)
                .unwrap_or(c.completion_due_at),
        )
    }

    /// Whether a reply at `replied` met the completion deadline in force: a pause running at
    /// the reply counts as stood-still time (the deadline moves by `replied − paused_since`),
    /// as the engine judges it.
    fn completed_on_time_at(&self, replied: Ts, due: Option<Ts>) -> bool {
        let Some(due) = due else {
            return true;
        };
        match self.paused_since {
            Some(since) if since <= replied => replied <= due + (replied - since),
            _ => replied <= due,
        }
    }

    /// Responded at: first contact with the resident; else the first reply; for anonymous
    /// requests also the unit's first engagement (sign-off or handling start).
    pub fn responded_at(&self) -> Option<Ts> {
        let mut candidates = vec![self.first_contact_at, self.replied_at];
        if self.anonymous {
            candidates.push(self.engaged_at);
        }
        if self.first_contact_at.is_some() {
            return self.first_contact_at;
        }
        candidates.into_iter().flatten().min()
    }

    /// The rating that counts (the last one not corrected away), if any.
    pub fn rating(&self) -> Option<&Rating> {
        self.ratings.last()
    }

    /// The summary row of this state.
    pub fn summary(&self) -> Summary {
        let (day, week, month) = periods(self.received_at);
        let class = self.classification();
        let response_due_at = self.response_due_at();
        let completion_due_at = self.completion_due_at();
        let responded_at = self.responded_at();
        let rating = self.rating();
        Summary {
            request_id: self.request_id.to_string(),
            stage: self.stage.clone(),
            kind: self.kind.clone(),
            channel: self.channel.clone(),
            street: self.location.street.clone(),
            community: self.location.community.clone(),
            grid: self.location.grid.clone(),
            micro_grid: self.location.micro_grid.clone(),
            category: class.map(|c| c.category.clone()),
            catalogue_item: class.map(|c| c.catalogue_item.clone()),
            request_type: class.map(|c| c.request_type.clone()),
            urgency: class.map(|c| c.urgency.clone()),
            lead_department: self.lead_department.clone(),
            owner: self.owner.clone(),
            assignee: self.assignee.clone(),
            assignee_unit: self.assignee_unit.clone(),
            anonymous: self.anonymous,
            received_at: self.received_at,
            received_day: day,
            received_week: week,
            received_month: month,
            accepted_at: self.accepted_at,
            declined_at: self.declined_at,
            classified_at: class.map(|c| c.at),
            referred_at: self.referred_at,
            signed_at: self.signed_at,
            first_contact_at: self.first_contact_at,
            responded_at,
            replied_at: self.replied_at,
            reply_outcome: self.reply_outcome.clone(),
            rated_at: rating.map(|r| r.at),
            archived_at: self.archived_at,
            response_due_at,
            completion_due_at,
            due_at: completion_due_at.unwrap_or(response_due_at),
            response_on_time: responded_at.map(|r| r <= response_due_at),
            completed_on_time: self
                .replied_at
                .map(|r| self.completed_on_time_at(r, completion_due_at)),
            handling_seconds: self
                .replied_at
                .map(|r| (r - self.received_at).num_seconds()),
            overdue: self.overdue,
            open: self.open,
            dispatched: self.referred_at.is_some(),
            satisfaction: rating.map(|r| r.satisfaction.clone()),
            resolution: rating.map(|r| r.resolution.clone()),
            rating_excluded: rating.is_some_and(|r| r.excluded),
            satisfaction_excluded: class.is_some_and(|c| c.excluded_from_satisfaction),
            reopen_count: self.reopen_count,
            referral_returns: self.referral_returns,
            escalation_level: self.escalation_level.clone(),
            merged_into: self.merged_into.map(|o| o.to_string()),
            routing_rule: self.routing.as_ref().map(|(rule, _)| rule.clone()),
            routing_overridden: self.routing.as_ref().map(|(_, overridden)| *overridden),
            last_position: self.last_position as i64,
            paused_since: self.paused_since,
            reminded_at: self.marks.reminded_at,
            warned_at: self.marks.warned_at,
            marked_overdue_at: self.marks.marked_overdue_at,
            escalated_at: self.marks.escalated_at,
            lat: self.point.map(|(lat, _)| lat),
            lon: self.point.map(|(_, lon)| lon),
            requested_item: self.requested_item.clone(),
            answers: self.answers.clone(),
            callback_attempts: self.callback.attempts,
            callback_at: self.callback.reached_at,
            callback_on_time: self.callback.on_time,
            part: None,
        }
    }
}

/// Hours in a day, for due-soon windows.
pub const DEFAULT_DUE_SOON: Duration = Duration::hours(24);

#[cfg(test)]
mod tests;
