//! Intake: `receive` (a request from a channel, with its answers to the item's questions),
//! `accept` and `decline` (受理 / 不予受理, with a disposition), and `classify` (登记分类: the
//! catalogue item and the deadlines it stamps, again on a reclassification).

use std::collections::BTreeMap;

use schemas::Disposition;
use schemas::command::{Accept, Classify, Decline, Receive};

use super::*;
use crate::questions::validate_answers;

impl Request {
    /// `receive`: a new request from a channel, with its location on a known grid, a contact
    /// unless anonymous, and the answers its service item asks for; stamps the accept deadline.
    pub(super) fn receive(&self, c: &Receive, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        if self.exists() {
            return Err(Refusal::AlreadyExists);
        }
        required(&c.external_id, "external_id")?;
        required(&c.text, "text")?;
        if !c.anonymous && c.contact_ref.is_none() {
            return Err(Refusal::MissingField {
                field: "contact_ref",
            });
        }
        if !ctx.policy.knows_grid(&c.location) {
            let l = &c.location;
            return Err(Refusal::UnknownReference {
                field: "location",
                value: format!("{}/{}/{}", l.street, l.community, l.grid),
            });
        }
        let answers = self.intake_answers(c, ctx)?;
        Ok(vec![Event::RequestReceived(RequestReceived {
            service_code: c.service_code.clone(),
            answers,
            channel: c.channel,
            external_id: c.external_id.clone(),
            contact_ref: c.contact_ref.clone(),
            anonymous: c.anonymous,
            confidential: c.confidential,
            no_reply_requested: c.no_reply_requested,
            location: c.location.clone(),
            place: c.place.as_deref().cloned(),
            text: c.text.clone(),
            attachments: c.attachments.clone(),
            priority_lanes: c.priority_lanes.clone(),
            kind: c.kind,
            raised_at: c.raised_at,
            accept_due_at: ctx.policy.accept_due(ctx.now, &c.priority_lanes),
        })])
    }

    /// The intake's answers checked against the questions of the item it names: the item must
    /// exist when named, and answers need an item.
    fn intake_answers(
        &self,
        c: &Receive,
        ctx: &Context,
    ) -> Result<BTreeMap<String, serde_json::Value>, Refusal> {
        let Some(code) = &c.service_code else {
            if c.answers.is_empty() {
                return Ok(BTreeMap::new());
            }
            return Err(Refusal::MissingField {
                field: "service_code",
            });
        };
        let item = ctx
            .policy
            .catalogue()
            .item(code)
            .ok_or_else(|| Refusal::UnknownReference {
                field: "service_code",
                value: code.clone(),
            })?;
        Ok(validate_answers(&item.questions, &c.answers)?)
    }

    /// `accept`: the first-contact worker accepts the received request and owns it (首问),
    /// within the accept limit or not.
    pub(super) fn accept(&self, c: &Accept, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let within_limit = self
            .intake
            .as_ref()
            .is_none_or(|i| ctx.now <= i.accept_due_at);
        Ok(vec![Event::RequestAccepted(RequestAccepted {
            owner: ctx.actor.id.clone(),
            within_limit,
            note: c.note.clone(),
        })])
    }

    /// `decline`: the received request is not accepted, with an explanation and what its
    /// disposition needs (an emergency line, a legal channel, the original of a duplicate).
    pub(super) fn decline(&self, c: &Decline) -> Result<Vec<Event>, Refusal> {
        required(&c.explanation, "explanation")?;
        match c.disposition {
            Disposition::EmergencyTransfer if c.emergency_line.is_none() => {
                return Err(Refusal::MissingField {
                    field: "emergency_line",
                });
            }
            Disposition::LegalChannel => required_opt(&c.legal_channel, "legal_channel")?,
            Disposition::DuplicateNoNewFacts => match c.duplicate_of {
                None => {
                    return Err(Refusal::MissingField {
                        field: "duplicate_of",
                    });
                }
                Some(original) if original == self.id => {
                    return Err(Refusal::InvalidField {
                        field: "duplicate_of",
                        reason: "names this request",
                    });
                }
                Some(_) => {}
            },
            _ => {}
        }
        Ok(vec![Event::RequestDeclined(RequestDeclined {
            disposition: c.disposition,
            explanation: c.explanation.clone(),
            emergency_line: c.emergency_line,
            legal_channel: c.legal_channel.clone(),
            duplicate_of: c.duplicate_of,
        })])
    }

    /// `classify`: the catalogue item stamps the deadlines; a reclassification gives a reason
    /// and keeps the clock's original start.
    pub(super) fn classify(&self, c: &Classify, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let reclassified = self.classification.is_some();
        if reclassified {
            required_opt(&c.reason, "reason")?;
        }
        required(&c.catalogue_item, "catalogue_item")?;
        // The profile says when limits run from: receipt, or the classification that
        // dispatches the request (the next working day is the policy's own anchor). A
        // reclassification keeps the clock's original start: it changes the limits, it
        // does not restart the count.
        let start = self.clock_start(ctx);
        let lanes = self
            .intake
            .as_ref()
            .map(|i| i.priority_lanes.as_slice())
            .unwrap_or(&[]);
        let cl = ctx
            .policy
            .classify(&c.catalogue_item, c.urgency, lanes, start)
            .map_err(|_| Refusal::UnknownReference {
                field: "catalogue_item",
                value: c.catalogue_item.clone(),
            })?;
        let routing = self
            .intake
            .as_ref()
            .and_then(|i| ctx.policy.route(&c.catalogue_item, &i.location));
        let classified = RequestClassified {
            catalogue_item: c.catalogue_item.clone(),
            category: cl.category,
            request_type: c.request_type,
            urgency: cl.urgency,
            handling_mode: cl.handling_mode,
            departments: cl.departments,
            escalation_chain: cl.escalation_chain,
            deadlines: cl.deadlines,
            excluded_from_satisfaction: cl.excluded_from_satisfaction,
            reclassified,
            reason: c.reason.clone(),
            routing,
        };
        Ok(self.classified_events(classified, ctx))
    }
}
