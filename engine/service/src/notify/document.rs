//! The notification document a resident gateway receives, and how it is rendered from an
//! event and the request's earlier events.

use std::collections::HashMap;

use schemas::envelope::ID_NAMESPACE;
use schemas::event::RequestReceived;
use schemas::{Channel, Event, EventEnvelope, LoggedCommit, RequestId, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::kind::NotifyKind;
use super::templates::Templates;

/// The resident, as the gateway needs them to reach them. Only ever in the gateway payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct Recipient {
    /// Name, if given.
    pub name: Option<String>,
    /// Phone number, if given.
    pub phone: Option<String>,
}

/// One notification as published to `<prefix>.notify.<kind>` and POSTed to webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct NotificationDocument {
    /// UUIDv5 of the event id and the channel: stable across restarts and replays.
    pub notification_id: Uuid,
    /// What the resident is told about.
    pub kind: NotifyKind,
    /// The request.
    pub request_id: RequestId,
    /// The event told about.
    pub event_id: Uuid,
    /// The upstream ticket id the resident knows.
    pub ticket: String,
    /// The channel the request came in on (the gateway may answer on the same one).
    pub intake_channel: Channel,
    /// When the event happened.
    pub occurred_at: Timestamp,
    /// Locale of `text`.
    pub locale: String,
    /// Version of the template set `text` was rendered from.
    pub template_version: String,
    /// The rendered message.
    pub text: String,
    /// The resident asked for confidential handling: the gateway must not pass the
    /// recipient on to anyone but the resident.
    pub confidential: bool,
    /// Who to send it to; present only in what the gateway receives, never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Recipient>,
    /// The unit a unit notification is addressed to (`department:<code>`,
    /// `station:<community>`, `level:<name>`); absent on residents' notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// The stable id of the notification of `event_id` on `channel`.
pub fn notification_id(event_id: Uuid, channel: &str) -> Uuid {
    Uuid::new_v5(
        &ID_NAMESPACE,
        format!("notify:{event_id}:{channel}").as_bytes(),
    )
}

/// What the request's earlier events say that a notification needs.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFacts {
    /// The receipt.
    pub received: RequestReceived,
    /// The reason of the latest extension request before the event.
    pub extension_reason: Option<String>,
}

impl RequestFacts {
    /// Folds the request's commits up to and including the event `event_id`.
    pub fn from_history(commits: &[LoggedCommit], event_id: Uuid) -> Option<RequestFacts> {
        let mut received = None;
        let mut extension_reason = None;
        'outer: for logged in commits {
            for envelope in &logged.commit.events {
                match &envelope.event {
                    Event::RequestReceived(r) => received = Some(r.clone()),
                    Event::ExtensionRequested(x) => extension_reason = Some(x.reason.clone()),
                    _ => {}
                }
                if envelope.event_id == event_id {
                    break 'outer;
                }
            }
        }
        received.map(|received| RequestFacts {
            received,
            extension_reason,
        })
    }
}

/// Beijing time, `YYYY-MM-DD HH:MM`.
pub(crate) fn local_time(t: &Timestamp) -> String {
    let beijing = schemas::local_time::offset();
    t.with_timezone(&beijing)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

pub(super) fn wire_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Renders the document of `envelope` (without recipient, with a nil id to be set per
/// channel).
pub fn render(
    kind: NotifyKind,
    envelope: &EventEnvelope,
    facts: &RequestFacts,
    templates: &Templates,
    locale: &str,
) -> NotificationDocument {
    let mut values: HashMap<&'static str, String> = HashMap::from([
        ("ticket", facts.received.external_id.clone()),
        ("request_id", envelope.request_id.to_string()),
        ("occurred_at", local_time(&envelope.occurred_at)),
    ]);
    match &envelope.event {
        Event::RequestReceived(r) => {
            values.insert("accept_due_at", local_time(&r.accept_due_at));
        }
        Event::RequestClassified(c) => {
            values.insert(
                "completion_due_at",
                local_time(&c.deadlines.completion_due_at),
            );
            values.insert("response_due_at", local_time(&c.deadlines.response_due_at));
        }
        Event::RequestDeclined(d) => {
            values.insert("reason", d.explanation.clone());
            values.insert("disposition", wire_name(&d.disposition));
        }
        Event::ExtensionGranted(x) => {
            values.insert("new_due_at", local_time(&x.new_due_at));
            values.insert("previous_due_at", local_time(&x.previous_due_at));
            let reason = facts
                .extension_reason
                .clone()
                .or_else(|| x.note.clone())
                .unwrap_or_default();
            values.insert("reason", reason);
        }
        Event::ResultReplied(r) => {
            values.insert("content", r.content.clone());
            values.insert("outcome", wire_name(&r.outcome));
        }
        Event::CallbackAttempted(c) => {
            values.insert("attempt", c.attempt.to_string());
        }
        Event::Reopened(r) => {
            values.insert("reason", r.reason.clone());
        }
        Event::LinkedToOriginal(l) => {
            values.insert("original_ticket", l.original_ticket.clone());
            values.insert("reason", l.reason.clone());
        }
        _ => {}
    }
    let (locale, text) = templates.render(kind, locale, &values);
    NotificationDocument {
        notification_id: Uuid::nil(),
        kind,
        request_id: envelope.request_id,
        event_id: envelope.event_id,
        ticket: facts.received.external_id.clone(),
        intake_channel: facts.received.channel,
        occurred_at: envelope.occurred_at,
        locale,
        template_version: templates.version().to_string(),
        text,
        confidential: facts.received.confidential,
        recipient: None,
        unit: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::event::RequestClassified;
    use schemas::{Actor, Deadlines, GridPath, HandlingMode, RequestType, Role, Urgency};

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn received() -> RequestReceived {
        RequestReceived {
            channel: Channel::Hotline,
            external_id: "12345-20260302-0001".into(),
            contact_ref: None,
            anonymous: false,
            confidential: false,
            no_reply_requested: false,
            location: GridPath {
                street: "s".into(),
                community: "c".into(),
                grid: "g".into(),
                micro_grid: None,
            },
            text: "路灯不亮".into(),
            attachments: vec![],
            priority_lanes: vec![],
            kind: Default::default(),
            raised_at: at("2026-03-02T01:00:00Z"),
            // 10:00 Beijing time the next day.
            accept_due_at: at("2026-03-03T02:00:00Z"),
            place: None,
            service_code: None,
            answers: Default::default(),
        }
    }

    fn envelope(event: Event) -> EventEnvelope {
        EventEnvelope {
            event_id: Uuid::from_u128(7),
            request_id: Uuid::from_u128(1),
            version: 1,
            schema_version: 1,
            occurred_at: at("2026-03-02T01:00:00Z"),
            recorded_at: at("2026-03-02T01:00:00Z"),
            actor: Actor {
                id: "w-1".into(),
                role: Role::StationWorker,
                unit: None,
            },
            causation_id: Uuid::from_u128(2),
            correlation_id: Uuid::from_u128(2),
            prev_hash: schemas::envelope::GENESIS_HASH.to_string(),
            hash: String::new(),
            event,
        }
    }

    fn text(kind: NotifyKind, event: Event, locale: &str) -> String {
        let facts = RequestFacts {
            received: received(),
            extension_reason: None,
        };
        let templates = Templates::builtin().unwrap();
        render(kind, &envelope(event), &facts, &templates, locale).text
    }

    #[test]
    fn the_receipt_tells_the_acceptance_limit_in_beijing_time() {
        let event = Event::RequestReceived(received());
        let zh = text(NotifyKind::RequestReceived, event.clone(), "zh-CN");
        assert!(zh.contains("将于2026-03-03 10:00前受理"), "{zh}");
        let en = text(NotifyKind::RequestReceived, event, "en");
        assert!(en.contains("by 2026-03-03 10:00 (Beijing time)"), "{en}");
    }

    #[test]
    fn the_registration_tells_the_completion_date_once() {
        let classified = RequestClassified {
            catalogue_item: "item".into(),
            category: "cat".into(),
            request_type: RequestType::Complaint,
            urgency: Urgency::General,
            handling_mode: HandlingMode::Referral,
            departments: vec![],
            escalation_chain: vec![],
            deadlines: Deadlines {
                response_due_at: at("2026-03-03T09:00:00Z"),
                // 17:30 Beijing time on 16 March.
                completion_due_at: at("2026-03-16T09:30:00Z"),
                remind_at: at("2026-03-13T09:30:00Z"),
                warn_at: at("2026-03-14T09:30:00Z"),
                policy: "p@1".into(),
                catalogue_version: "1".into(),
                provisional: false,
            },
            excluded_from_satisfaction: false,
            reclassified: false,
            reason: None,
            routing: None,
        };
        let event = Event::RequestClassified(classified.clone());
        assert_eq!(
            NotifyKind::of_event(&event),
            Some(NotifyKind::RequestClassified)
        );
        let zh = text(NotifyKind::RequestClassified, event.clone(), "zh-CN");
        assert!(zh.contains("预计于2026-03-16 17:30前办结"), "{zh}");
        let en = text(NotifyKind::RequestClassified, event, "en");
        assert!(en.contains("reply by 2026-03-16 17:30"), "{en}");
        let again = Event::RequestClassified(RequestClassified {
            reclassified: true,
            reason: Some("wrong item".into()),
            ..classified
        });
        assert_eq!(NotifyKind::of_event(&again), None);
    }
}
