//! The kinds of resident notification and the events they come from.

use schemas::Event;
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
}

impl NotifyKind {
    /// Every kind.
    pub const ALL: [NotifyKind; 7] = [
        NotifyKind::RequestReceived,
        NotifyKind::RequestAccepted,
        NotifyKind::RequestDeclined,
        NotifyKind::ExtensionGranted,
        NotifyKind::ResultReplied,
        NotifyKind::CallbackAttempted,
        NotifyKind::Reopened,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::RequestReceived => "request_received",
            NotifyKind::RequestAccepted => "request_accepted",
            NotifyKind::RequestDeclined => "request_declined",
            NotifyKind::ExtensionGranted => "extension_granted",
            NotifyKind::ResultReplied => "result_replied",
            NotifyKind::CallbackAttempted => "callback_attempted",
            NotifyKind::Reopened => "reopened",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<NotifyKind> {
        NotifyKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The placeholders its templates may use.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            NotifyKind::RequestReceived | NotifyKind::RequestAccepted => {
                &["ticket", "request_id", "occurred_at"]
            }
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
        }
    }

    /// The kind an event is told to the resident as, if any. A callback that reached the
    /// resident needs no message (they spoke to the caller).
    pub fn of_event(event: &Event) -> Option<NotifyKind> {
        Some(match event {
            Event::RequestReceived(_) => NotifyKind::RequestReceived,
            Event::RequestAccepted(_) => NotifyKind::RequestAccepted,
            Event::RequestDeclined(_) => NotifyKind::RequestDeclined,
            Event::ExtensionGranted(_) => NotifyKind::ExtensionGranted,
            Event::ResultReplied(_) => NotifyKind::ResultReplied,
            Event::CallbackAttempted(c) if !c.reached => NotifyKind::CallbackAttempted,
            Event::Reopened(_) => NotifyKind::Reopened,
            _ => return None,
        })
    }
}
