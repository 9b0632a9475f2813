//! Who among the units must hear about an event, and the document each is sent.
//!
//! The addressee follows from the event and the request's state after it (folded by the core,
//! never re-decided here):
//! - `dispatch`: the lead and every assisting department of the referral;
//! - `sign_off_reminder`: the lead department that has not signed;
//! - `reminder`, `pre_breach_warning`, `overdue`: the unit handling the request — the lead
//!   department of a referral in force, else the community's station; a missed whistle
//!   report goes to every summoned department that has neither reported nor been released;
//! - `escalation`: the level (or department) escalated to;
//! - `return_decision`: the department that keeps the request;
//! - `appeal_decision`: the lead department (the appellant);
//! - `whistle_summons`: every summoned department.

use std::collections::HashMap;

use engine_core::Request;
use engine_core::request::Handling;
use schemas::{Event, EventEnvelope};

use super::channels::Unit;
use super::document::{self, NotificationDocument, RequestFacts, local_time, wire_name};
use super::kind::NotifyKind;
use super::templates::Templates;

/// One addressee of an event, with the values only it gets (its role in a referral).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressee {
    /// The unit.
    pub unit: Unit,
    /// Extra template values.
    pub values: Vec<(&'static str, String)>,
}

fn to(unit: Unit) -> Addressee {
    Addressee {
        unit,
        values: Vec::new(),
    }
}

/// The unit handling the request: the referral's lead, else the community's station.
fn handling_unit(request: &Request) -> Option<Unit> {
    match request.handling() {
        Some(Handling::Referral(r)) => Some(Unit::department(&r.lead)),
        _ => request.location().map(|g| Unit::station(&g.community)),
    }
}

/// The units `event` is addressed to, given the request's state after it.
pub fn addressees(event: &Event, after: &Request) -> Vec<Addressee> {
    use schemas::DeadlineKind;
    match event {
        Event::ReferredToDepartment(r) => {
            let lead = Addressee {
                unit: Unit::department(&r.lead_department),
                values: vec![("role", "lead".into())],
            };
            let assisting = r.assisting_departments.iter().map(|d| Addressee {
                unit: Unit::department(d),
                values: vec![("role", "assisting".into())],
            });
            std::iter::once(lead).chain(assisting).collect()
        }
        Event::DeadlineMissed(m) if m.deadline == DeadlineKind::WhistleReport => after
            .whistle()
            .map(|w| {
                w.awaited()
                    .iter()
                    .map(|d| to(Unit::department(d)))
                    .collect()
            })
            .unwrap_or_default(),
        Event::DeadlineMissed(m) if m.deadline == DeadlineKind::SignOff => after
            .lead_department()
            .map(|d| vec![to(Unit::department(d))])
            .unwrap_or_default(),
        Event::ReminderSent(_) | Event::PreBreachWarned(_) | Event::DeadlineMissed(_) => {
            handling_unit(after).map(to).into_iter().collect()
        }
        Event::Escalated(e) => vec![to(Unit::escalation_target(&e.to))],
        Event::ReturnRejected(r) => vec![to(Unit::department(&r.department))],
        Event::AppealDecided(_) => after
            .lead_department()
            .map(|d| vec![to(Unit::department(d))])
            .unwrap_or_default(),
        Event::WhistleBlown(w) => w
            .departments
            .iter()
            .map(|d| to(Unit::department(d)))
            .collect(),
        _ => Vec::new(),
    }
}

/// The values of `event` every addressee's text may use.
fn event_values(event: &Event) -> Vec<(&'static str, String)> {
    match event {
        Event::ReferredToDepartment(r) => vec![("sign_off_due_at", local_time(&r.sign_off_due_at))],
        Event::ReminderSent(r) => vec![
            ("deadline", wire_name(&r.deadline)),
            ("due_at", local_time(&r.due_at)),
        ],
        Event::PreBreachWarned(w) => vec![
            ("deadline", wire_name(&w.deadline)),
            ("due_at", local_time(&w.due_at)),
        ],
        Event::DeadlineMissed(m) => vec![
            ("deadline", wire_name(&m.deadline)),
            ("due_at", local_time(&m.due_at)),
        ],
        Event::Escalated(e) => vec![("level", wire_name(&e.level)), ("reason", e.reason.clone())],
        Event::ReturnRejected(r) => vec![("reason", r.reason.clone())],
        Event::AppealDecided(a) => vec![
            (
                "decision",
                if a.upheld { "upheld" } else { "rejected" }.into(),
            ),
            ("comment", a.reason.clone()),
        ],
        Event::WhistleBlown(w) => vec![
            ("summary", w.summary.clone()),
            ("report_due_at", local_time(&w.report_due_at)),
        ],
        _ => Vec::new(),
    }
}

/// The document of `envelope` for `addressee` (a nil id, to be set per channel).
pub fn render(
    kind: NotifyKind,
    envelope: &EventEnvelope,
    facts: &RequestFacts,
    addressee: &Addressee,
    templates: &Templates,
    locale: &str,
) -> NotificationDocument {
    let mut values: HashMap<&'static str, String> = HashMap::from([
        ("ticket", facts.received.external_id.clone()),
        ("request_id", envelope.request_id.to_string()),
        ("occurred_at", local_time(&envelope.occurred_at)),
        ("unit", addressee.unit.to_string()),
    ]);
    values.extend(event_values(&envelope.event));
    values.extend(addressee.values.iter().cloned());
    let (locale, text) = templates.render(kind, locale, &values);
    NotificationDocument {
        notification_id: uuid::Uuid::nil(),
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
        unit: Some(addressee.unit.to_string()),
    }
}

/// The stable id of the notification of `event_id` to `unit` on `channel`.
pub fn notification_id(event_id: uuid::Uuid, unit: &Unit, channel: &str) -> uuid::Uuid {
    document::notification_id(event_id, &format!("{unit}/{channel}"))
}

impl super::Notifier {
    /// The delivery rows of a unit notification of `envelope`: one per addressee and channel.
    pub(super) async fn unit_rows(
        &self,
        position: u64,
        envelope: &EventEnvelope,
        kind: NotifyKind,
    ) -> Result<Vec<super::store::NewDelivery>, super::NotifyError> {
        let history: Vec<schemas::LoggedCommit> = self
            .log
            .load(envelope.request_id)
            .await?
            .into_iter()
            .filter(|c| c.position <= position)
            .collect();
        let Some(facts) = RequestFacts::from_history(&history, envelope.event_id) else {
            tracing::warn!(request_id = %envelope.request_id, "no receipt for a unit notification; skipped");
            return Ok(Vec::new());
        };
        let events = history.iter().flat_map(|c| &c.commit.events);
        let mut upto = Vec::new();
        for e in events {
            upto.push(e);
            if e.event_id == envelope.event_id {
                break;
            }
        }
        let after = Request::from_history(envelope.request_id, upto);
        let nats = self.sender.has_nats();
        let mut rows = Vec::new();
        for addressee in addressees(&envelope.event, &after) {
            let channels = self.sender.units().channels_of(&addressee.unit, nats);
            if channels.is_empty() {
                continue;
            }
            let base = render(
                kind,
                envelope,
                &facts,
                &addressee,
                &self.templates,
                &self.cfg.locale,
            );
            for channel in channels {
                let mut doc = base.clone();
                doc.notification_id = notification_id(envelope.event_id, &addressee.unit, &channel);
                rows.push(super::store::NewDelivery {
                    notification_id: doc.notification_id.to_string(),
                    event_id: envelope.event_id.to_string(),
                    request_id: envelope.request_id.to_string(),
                    kind: kind.as_str().to_string(),
                    channel,
                    status: super::Status::Pending,
                    reason: None,
                    template_version: doc.template_version.clone(),
                    document: serde_json::to_string(&doc).expect("documents always serialise"),
                    contact_ref: None,
                    recipient: Some(addressee.unit.to_string()),
                });
            }
        }
        Ok(rows)
    }
}
