//! The kinds of notification and the events they come from: ten told to residents, nine
//! addressed to units (departments, stations, supervision levels).

use schemas::{Event, LinkRelation};
use serde::{Deserialize, Serialize};

/// What a resident is told about. The wire name is the event's type and the last token of
/// the subject `<prefix>.notify.<kind>`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    /// Acknowledgement of receipt.
    RequestReceived,
    /// The request was accepted (受理).
    RequestAccepted,
    /// The request was registered and classified (登记): the completion date now stamped.
    RequestClassified,
    /// The request was not accepted, with the explanation.
    RequestDeclined,
    /// The completion deadline was extended: the new date and the reason.
    ExtensionGranted,
    /// The handling result was replied.
    ResultReplied,
    /// A callback (回访) did not reach the resident.
    CallbackAttempted,
    /// The request was reopened (重办).
    Reopened,
    /// The request was merged into another (并案): the original's ticket, which it follows.
    RequestMerged,
    /// Another request about the same matter was merged into this one.
    DuplicateMerged,
    /// Unit: a referral reached the department (转办), as lead or assisting unit.
    Dispatch,
    /// Unit: the referral was not signed for (签收) in time.
    SignOffReminder,
    /// Unit: a reminder (催办) before a deadline.
    Reminder,
    /// Unit: a pre-breach warning.
    PreBreachWarning,
    /// Unit: a deadline was missed (超期).
    Overdue,
    /// Unit: supervision escalated (督办), told to the level escalated to.
    Escalation,
    /// Unit: the centre rejected a department's return (退单); it keeps the request.
    ReturnDecision,
    /// Unit: a rating appeal (申诉) was decided.
    AppealDecision,
    /// Unit: a department was summoned by a whistle (吹哨).
    WhistleSummons,
}

impl NotifyKind {
    /// Every kind.
    pub const ALL: [NotifyKind; 19] = [
        NotifyKind::RequestReceived,
        NotifyKind::RequestAccepted,
        NotifyKind::RequestClassified,
        NotifyKind::RequestDeclined,
        NotifyKind::ExtensionGranted,
        NotifyKind::ResultReplied,
        NotifyKind::CallbackAttempted,
        NotifyKind::Reopened,
        NotifyKind::RequestMerged,
        NotifyKind::DuplicateMerged,
        NotifyKind::Dispatch,
        NotifyKind::SignOffReminder,
        NotifyKind::Reminder,
        NotifyKind::PreBreachWarning,
        NotifyKind::Overdue,
        NotifyKind::Escalation,
        NotifyKind::ReturnDecision,
        NotifyKind::AppealDecision,
        NotifyKind::WhistleSummons,
    ];

    /// The kinds told to residents.
    pub const RESIDENT: [NotifyKind; 10] = [
        NotifyKind::RequestReceived,
        NotifyKind::RequestAccepted,
        NotifyKind::RequestClassified,
        NotifyKind::RequestDeclined,
        NotifyKind::ExtensionGranted,
        NotifyKind::ResultReplied,
        NotifyKind::CallbackAttempted,
        NotifyKind::Reopened,
        NotifyKind::RequestMerged,
        NotifyKind::DuplicateMerged,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::RequestReceived => "request_received",
            NotifyKind::RequestAccepted => "request_accepted",
            NotifyKind::RequestClassified => "request_classified",
            NotifyKind::RequestDeclined => "request_declined",
            NotifyKind::ExtensionGranted => "extension_granted",
            NotifyKind::ResultReplied => "result_replied",
            NotifyKind::CallbackAttempted => "callback_attempted",
            NotifyKind::Reopened => "reopened",
            NotifyKind::RequestMerged => "request_merged",
            NotifyKind::DuplicateMerged => "duplicate_merged",
            NotifyKind::Dispatch => "dispatch",
            NotifyKind::SignOffReminder => "sign_off_reminder",
            NotifyKind::Reminder => "reminder",
            NotifyKind::PreBreachWarning => "pre_breach_warning",
            NotifyKind::Overdue => "overdue",
            NotifyKind::Escalation => "escalation",
            NotifyKind::ReturnDecision => "return_decision",
            NotifyKind::AppealDecision => "appeal_decision",
            NotifyKind::WhistleSummons => "whistle_summons",
        }
    }

    /// Whether it is addressed to a unit (else to the resident).
    pub fn is_unit(self) -> bool {
        !NotifyKind::RESIDENT.contains(&self)
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<NotifyKind> {
        NotifyKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The placeholders its templates may use.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            NotifyKind::RequestReceived => {
                &["ticket", "request_id", "occurred_at", "accept_due_at"]
            }
            NotifyKind::RequestAccepted => &["ticket", "request_id", "occurred_at"],
            NotifyKind::RequestClassified => &[
                "ticket",
                "request_id",
                "occurred_at",
                "completion_due_at",
                "response_due_at",
            ],
            NotifyKind::RequestDeclined => &[
                "ticket",
                "request_id",
                "occurred_at",
                "reason",
                "disposition",
            ],
            NotifyKind::ExtensionGranted => &[
                "ticket",
                "request_id",
                "occurred_at",
                "new_due_at",
                "previous_due_at",
                "reason",
            ],
            NotifyKind::ResultReplied => {
                &["ticket", "request_id", "occurred_at", "content", "outcome"]
            }
            NotifyKind::CallbackAttempted => &["ticket", "request_id", "occurred_at", "attempt"],
            NotifyKind::Reopened => &["ticket", "request_id", "occurred_at", "reason"],
            NotifyKind::RequestMerged => &[
                "ticket",
                "request_id",
                "occurred_at",
                "original_ticket",
                "reason",
            ],
            NotifyKind::DuplicateMerged => &["ticket", "request_id", "occurred_at"],
            NotifyKind::Dispatch => &[
                "ticket",
                "request_id",
                "occurred_at",
                "unit",
                "role",
                "sign_off_due_at",
            ],
            NotifyKind::SignOffReminder
            | NotifyKind::Reminder
            | NotifyKind::PreBreachWarning
            | NotifyKind::Overdue => &[
                "ticket",
                "request_id",
                "occurred_at",
                "unit",
                "deadline",
                "due_at",
            ],
            NotifyKind::Escalation => &[
                "ticket",
                "request_id",
                "occurred_at",
                "unit",
                "level",
                "reason",
            ],
            NotifyKind::ReturnDecision => {
                &["ticket", "request_id", "occurred_at", "unit", "reason"]
            }
            NotifyKind::AppealDecision => &[
                "ticket",
                "request_id",
                "occurred_at",
                "unit",
                "decision",
                "comment",
            ],
            NotifyKind::WhistleSummons => &[
                "ticket",
                "request_id",
                "occurred_at",
                "unit",
                "summary",
                "report_due_at",
            ],
        }
    }

    /// The unit kind an event is told to units as, if any: a missed sign-off is a sign-off
    /// reminder, every other missed deadline an overdue mark.
    pub fn unit_kind_of_event(event: &Event) -> Option<NotifyKind> {
        use schemas::DeadlineKind;
        Some(match event {
            Event::ReferredToDepartment(_) => NotifyKind::Dispatch,
            Event::DeadlineMissed(m) if m.deadline == DeadlineKind::SignOff => {
                NotifyKind::SignOffReminder
            }
            Event::ReminderSent(r) if r.deadline == DeadlineKind::SignOff => {
                NotifyKind::SignOffReminder
            }
            Event::ReminderSent(_) => NotifyKind::Reminder,
            Event::PreBreachWarned(_) => NotifyKind::PreBreachWarning,
            Event::DeadlineMissed(_) => NotifyKind::Overdue,
            Event::Escalated(_) => NotifyKind::Escalation,
            Event::ReturnRejected(_) => NotifyKind::ReturnDecision,
            Event::AppealDecided(_) => NotifyKind::AppealDecision,
            Event::WhistleBlown(_) => NotifyKind::WhistleSummons,
            _ => return None,
        })
    }

    /// The kind an event is told to the resident as, if any. A callback that reached the
    /// resident needs no message (they spoke to the caller); a reclassification is not told
    /// again (the first classification told the date; a later change of it is an extension,
    /// told as such).
    pub fn of_event(event: &Event) -> Option<NotifyKind> {
        Some(match event {
            Event::RequestReceived(_) => NotifyKind::RequestReceived,
            Event::RequestAccepted(_) => NotifyKind::RequestAccepted,
            Event::RequestClassified(c) if !c.reclassified => NotifyKind::RequestClassified,
            Event::RequestDeclined(_) => NotifyKind::RequestDeclined,
            Event::ExtensionGranted(_) => NotifyKind::ExtensionGranted,
            Event::ResultReplied(_) => NotifyKind::ResultReplied,
            Event::CallbackAttempted(c) if !c.reached => NotifyKind::CallbackAttempted,
            Event::Reopened(_) => NotifyKind::Reopened,
            Event::LinkedToOriginal(l) if l.relation == LinkRelation::Merged => {
                NotifyKind::RequestMerged
            }
            Event::DuplicateRecorded(d) if d.relation == LinkRelation::Merged => {
                NotifyKind::DuplicateMerged
            }
            _ => return None,
        })
    }
}
