//! Handling: the station's own (`handle_directly`, `start_proxy`), the referral to a lead
//! department and its answers (`refer`, `sign_for`, `return_referral`, `reject_return`), and
//! the handling unit's work (`contact_resident`, `start_handling`, `note_progress`). The
//! assisting departments' parts are in `participants.rs`.

use schemas::Role;
use schemas::command::{
    ContactResident, HandleDirectly, NoteProgress, Refer, RejectReturn, ReturnReferral, SignFor,
    StartHandling, StartProxy,
};

use super::super::authorize::not_addressed;
use super::*;

impl Request {
    /// `handle_directly`: the station handles the classified request itself (直接办理).
    pub(super) fn handle_directly(&self, c: &HandleDirectly) -> Result<Vec<Event>, Refusal> {
        Ok(vec![Event::DirectHandlingStarted(DirectHandlingStarted {
            note: c.note.clone(),
        })])
    }

    /// `start_proxy`: the station proxy-handles it with a known department (代办).
    pub(super) fn start_proxy(&self, c: &StartProxy, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        required(&c.department, "department")?;
        if !ctx.policy.knows_department(&c.department) {
            return Err(Refusal::UnknownReference {
                field: "department",
                value: c.department.clone(),
            });
        }
        Ok(vec![Event::ProxyHandlingStarted(ProxyHandlingStarted {
            department: c.department.clone(),
            note: c.note.clone(),
        })])
    }

    /// `refer`: the centre refers the classified (or returned) request to a known lead
    /// department with distinct assisting ones; redispatching a live referral is the
    /// supervisor's, and a return is not referred back to the department that returned it.
    pub(super) fn refer(&self, c: &Refer, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::Refer;
        if self.stage == Dispatched && ctx.actor.role != Role::Supervisor {
            // Redispatch of a live referral is the centre's decision only.
            return Err(Refusal::NotPermitted {
                role: ctx.actor.role,
                command: kind,
            });
        }
        required(&c.lead_department, "lead_department")?;
        if !ctx.policy.knows_department(&c.lead_department) {
            return Err(Refusal::UnknownReference {
                field: "lead_department",
                value: c.lead_department.clone(),
            });
        }
        for (i, a) in c.assisting_departments.iter().enumerate() {
            if !ctx.policy.knows_department(a) {
                return Err(Refusal::UnknownReference {
                    field: "assisting_departments",
                    value: a.clone(),
                });
            }
            if *a == c.lead_department {
                return Err(Refusal::InvalidField {
                    field: "assisting_departments",
                    reason: "names the lead department",
                });
            }
            if c.assisting_departments[..i].contains(a) {
                return Err(Refusal::InvalidField {
                    field: "assisting_departments",
                    reason: "names a department twice",
                });
            }
        }
        if let Some(r) = self.referral()
            && r.returned_by.as_deref() == Some(c.lead_department.as_str())
            && self.stage == ReturnRequested
        {
            return Err(Refusal::InvalidField {
                field: "lead_department",
                reason: "is the department that returned the referral",
            });
        }
        let routing = self.routing_decision(c)?;
        Ok(vec![self.referral_event(
            &c.lead_department,
            &c.assisting_departments,
            c.note.clone(),
            routing,
            ctx,
        )])
    }

    /// `sign_for`: the lead department signs for its referral (签收).
    pub(super) fn sign_for(&self, c: &SignFor, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::SignFor;
        self.check_lead(ctx.actor, kind)?;
        Ok(vec![Event::ReferralSignedFor(ReferralSignedFor {
            department: self.lead_department().unwrap_or_default().to_string(),
            note: c.note.clone(),
        })])
    }

    /// `return_referral`: the lead department returns its referral (退单) within the return
    /// window, with a reason, unless the referral is locked.
    pub(super) fn return_referral(
        &self,
        c: &ReturnReferral,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::ReturnReferral;
        self.check_lead(ctx.actor, kind)?;
        let Some(r) = self.referral() else {
            return Err(not_addressed(ctx.actor, kind));
        };
        if r.locked {
            return Err(Refusal::ReferralLocked {
                department: r.lead.clone(),
            });
        }
        if ctx.now > r.return_window_ends_at {
            return Err(Refusal::WindowClosed {
                window: "return_window",
                closed_at: r.return_window_ends_at,
            });
        }
        required(&c.reason, "reason")?;
        Ok(vec![Event::ReferralReturned(ReferralReturned {
            department: r.lead.clone(),
            reason: c.reason.clone(),
            legal_basis: c.legal_basis.clone(),
        })])
    }

    /// `reject_return`: the centre refuses a return, with a reason; the referral stands.
    pub(super) fn reject_return(&self, c: &RejectReturn) -> Result<Vec<Event>, Refusal> {
        required(&c.reason, "reason")?;
        let department = self
            .referral()
            .and_then(|r| r.returned_by.clone())
            .unwrap_or_default();
        Ok(vec![Event::ReturnRejected(ReturnRejected {
            department,
            reason: c.reason.clone(),
        })])
    }

    /// `contact_resident`: the handling unit contacts a named resident, within the response
    /// limit or not (响应).
    pub(super) fn contact_resident(
        &self,
        c: &ContactResident,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::ContactResident;
        self.check_handling_unit(ctx.actor, kind)?;
        if self.anonymous() {
            return Err(Refusal::AnonymousRequest);
        }
        required(&c.method, "method")?;
        let within_limit = self
            .deadlines
            .as_ref()
            .is_none_or(|d| ctx.now <= d.response_due_at);
        Ok(vec![Event::ResidentContacted(ResidentContacted {
            method: c.method.clone(),
            note: c.note.clone(),
            within_limit,
        })])
    }

    /// `start_handling`: handling starts once the resident was contacted (an anonymous
    /// request needs no contact).
    pub(super) fn start_handling(
        &self,
        c: &StartHandling,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::StartHandling;
        self.check_handling_unit(ctx.actor, kind)?;
        if self.stage != Contacted && !self.anonymous() {
            return Err(Refusal::ContactRequired);
        }
        Ok(vec![Event::HandlingStarted(HandlingStarted {
            note: c.note.clone(),
        })])
    }

    /// `note_progress`: a unit involved notes progress while the request is open.
    pub(super) fn note_progress(
        &self,
        c: &NoteProgress,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::NoteProgress;
        self.check_involved(ctx.actor, kind)?;
        required(&c.note, "note")?;
        Ok(vec![Event::ProgressNoted(ProgressNoted {
            note: c.note.clone(),
        })])
    }
}
