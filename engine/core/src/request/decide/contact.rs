//! `correct_contact`: the correction of the resident's contact data, recorded as a fact
//! while the data itself stays in the service's contact store.

use schemas::command::CorrectContact;

use super::*;

/// The longest reason a `correct_contact` may give, in characters (the log keeps it for good).
pub const MAX_CONTACT_CORRECTION_REASON_CHARS: usize = 500;

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
