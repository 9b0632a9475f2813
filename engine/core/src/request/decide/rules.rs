//! The rules of the commands whose decision is longer than a line of the table in
//! [`super`]: extensions and the
//! paused clock, the reply, archiving, supervision and the whistle (吹哨), and the
//! correction of the resident's contact data.

use super::*;

impl Request {
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
