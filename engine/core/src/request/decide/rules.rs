//! The rules of the commands whose decision is longer than a line of the table in
//! [`super`]: extensions and the
//! paused clock, the reply, archiving, supervision and the whistle (吹哨), and the
//! correction of the resident's contact data.

use super::*;

impl Request {
    pub(super) fn blow_whistle(
        &self,
        c: &BlowWhistle,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::BlowWhistle;
        self.check_community(ctx.actor, kind)?;
        if self.whistle().is_some_and(|w| !w.awaited().is_empty()) {
            return Err(Refusal::AlreadyPending { what: "whistle" });
        }
        if c.departments.is_empty() {
            return Err(Refusal::MissingField {
                field: "departments",
            });
        }
        for (i, d) in c.departments.iter().enumerate() {
            if !ctx.policy.knows_department(d) {
                return Err(Refusal::UnknownReference {
                    field: "departments",
                    value: d.clone(),
                });
            }
            if c.departments[..i].contains(d) {
                return Err(Refusal::InvalidField {
                    field: "departments",
                    reason: "names a department twice",
                });
            }
        }
        required(&c.summary, "summary")?;
        Ok(vec![Event::WhistleBlown(WhistleBlown {
            departments: c.departments.clone(),
            summary: c.summary.clone(),
            report_due_at: ctx.policy.whistle_report_due(ctx.now),
        })])
    }

    /// `correct_contact`: allowed in every stage (archived included) of a request received
    /// with contact data, with a reason. The new data itself never reaches the core: the
    /// service stores it in the contact store once this decision records the event.
    pub(super) fn correct_contact(&self, c: &CorrectContact) -> Result<Vec<Event>, Refusal> {
        if self.contact_ref().is_none() {
            return Err(Refusal::NoContact);
        }
        required(&c.reason, "reason")?;
        if c.reason.chars().count() > MAX_CONTACT_CORRECTION_REASON_CHARS {
            return Err(Refusal::InvalidField {
                field: "reason",
                reason: "longer than 500 characters",
            });
        }
        Ok(vec![Event::ContactCorrected(ContactCorrected {
            reason: c.reason.trim().to_string(),
        })])
    }
}
