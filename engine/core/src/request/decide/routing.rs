//! Routing at classification and referral: the proposal a classification records, the
//! automatic referral a rule's `auto_dispatch` makes, and the routing decision every referral
//! records (the rule it follows, or the override and its reason). Rules: `crate::routing`.

use std::collections::BTreeSet;

use schemas::Event;
use schemas::command::Refer;
use schemas::event::{ReferredToDepartment, RequestClassified, RoutingDecision};

use super::Stage;
use crate::context::Context;
use crate::refusal::Refusal;
use crate::request::Request;

impl Request {
    /// The classification's events: the classification, then the automatic referral when the
    /// proposing rule dispatches by itself and this classification makes the request
    /// `classified` (a reclassification of a request already in the workflow never refers).
    pub(super) fn classified_events(
        &self,
        classified: RequestClassified,
        ctx: &Context,
    ) -> Vec<Event> {
        let auto = classified
            .routing
            .as_ref()
            .filter(|p| p.binding && p.auto_dispatch && self.stage == Stage::Accepted)
            .cloned();
        let mut events = vec![Event::RequestClassified(classified)];
        if let Some(proposal) = auto {
            let decision = RoutingDecision {
                rule: proposal.rule,
                overridden: false,
                override_reason: None,
                automatic: true,
            };
            events.push(self.referral_event(
                &proposal.lead,
                &proposal.assisting,
                None,
                Some(decision),
                ctx,
            ));
        }
        events
    }

    /// How the referral `c` relates to the routing proposal in force: followed, or overridden
    /// with a reason (required when the proposal binds). `None` without a proposal.
    pub(super) fn routing_decision(&self, c: &Refer) -> Result<Option<RoutingDecision>, Refusal> {
        let Some(proposal) = self
            .classification
            .as_ref()
            .and_then(|k| k.routing.as_ref())
        else {
            return Ok(None);
        };
        let reason = c
            .override_reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        let chosen: BTreeSet<&String> = c.assisting_departments.iter().collect();
        let proposed: BTreeSet<&String> = proposal.assisting.iter().collect();
        let overridden = c.lead_department != proposal.lead || chosen != proposed;
        if !overridden && reason.is_some() {
            return Err(Refusal::InvalidField {
                field: "override_reason",
                reason: "the units are the proposed ones: nothing is overridden",
            });
        }
        if overridden && proposal.binding && reason.is_none() {
            return Err(Refusal::OverrideReasonRequired {
                rule: proposal.rule.clone(),
            });
        }
        Ok(Some(RoutingDecision {
            rule: proposal.rule.clone(),
            overridden,
            override_reason: reason.filter(|_| overridden).map(String::from),
            automatic: false,
        }))
    }

    /// The referral fact: deadlines from the policy at the decision's instant, numbered after the last one.
    pub(super) fn referral_event(
        &self,
        lead: &str,
        assisting: &[String],
        note: Option<String>,
        routing: Option<RoutingDecision>,
        ctx: &Context,
    ) -> Event {
        let (policy, now) = (ctx.policy, ctx.now);
        Event::ReferredToDepartment(ReferredToDepartment {
            lead_department: lead.to_string(),
            assisting_departments: assisting.to_vec(),
            note,
            sign_off_due_at: policy.sign_off_due(now),
            return_window_ends_at: policy.return_window_end(now),
            referral_number: self.referral().map(|r| r.number).unwrap_or(0) + 1,
            provisional: policy.referral_provisional(now),
            assistance_due_at: (!assisting.is_empty()).then(|| policy.assistance_due(now)),
            routing,
        })
    }
}
