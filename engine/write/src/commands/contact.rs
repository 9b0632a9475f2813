//! The contact writes that go with commands: the contact an intake brings, and an explicit
//! correction (`correct_contact`).
//!
//! An intake's contact is stored before its `receive` is appended and only when that receive
//! creates the request ([`ContactWrite::Intake`]). A correction goes the other way round
//! ([`ContactWrite::Correction`]): the `contact_corrected` event (a reason, no data) is
//! appended first and the encrypted record replaced after, so the log never claims less than
//! the store holds; should the process stop between the two, the caller's retry with the same
//! command id finds the commit recorded and replaces the record again. A retry replaces only
//! while its correction is the request's latest, so a late retry never undoes a newer one.

use schemas::intake::ResidentContact;
use schemas::{CommandKind, ContactRef, EventKind, LoggedCommit, RequestId};
use uuid::Uuid;

use super::{CommandError, CommandService};
use crate::contacts::{PutOutcome, StoredContact};

/// A contact write that goes with a command, made under the request's lock.
#[derive(Debug, Clone, Copy)]
pub enum ContactWrite<'a> {
    /// The contact sent with a `receive`: stored only when that receive creates the request,
    /// never replacing a stored contact.
    Intake(&'a ContactRef, &'a ResidentContact),
    /// The new contact of a `correct_contact`: replaces the record under the request's own
    /// contact reference (taken from its state, never from the caller) once the event is
    /// appended.
    Correction(&'a ResidentContact),
}

/// The longest contact field, in characters (intake and correction alike).
pub const MAX_CONTACT_FIELD_CHARS: usize = 256;

/// Checks a contact as intake and correction accept it: at least one field not blank, each
/// at most [`MAX_CONTACT_FIELD_CHARS`] characters. Errors name the field `contact`, never
/// its content.
pub fn validate_contact(contact: &ResidentContact) -> Result<(), CommandError> {
    let fields = [
        &contact.name,
        &contact.phone,
        &contact.id_number,
        &contact.address_detail,
    ];
    if fields
        .iter()
        .all(|f| f.as_deref().is_none_or(|v| v.trim().is_empty()))
    {
        return Err(CommandError::invalid(
            "required",
            "contact",
            "contact must give at least one of name, phone, id_number, address_detail",
        ));
    }
    if fields.iter().any(|f| {
        f.as_deref()
            .is_some_and(|v| v.chars().count() > MAX_CONTACT_FIELD_CHARS)
    }) {
        return Err(CommandError::invalid(
            "invalid_length",
            "contact",
            format!("contact fields are at most {MAX_CONTACT_FIELD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// `correct_contact` only travels with its data: anything else is a caller using the wrong
/// edge (or, for a correction with another command, a fault of the engine).
pub(super) fn check_pairing(
    kind: CommandKind,
    contact: Option<ContactWrite<'_>>,
) -> Result<(), CommandError> {
    let correction = matches!(contact, Some(ContactWrite::Correction(_)));
    match (kind == CommandKind::CorrectContact, correction) {
        (true, false) => Err(CommandError::Invalid {
            code: "use_contact_route".into(),
            message: "`correct_contact` carries the new contact data: send it with \
                      PUT /api/v1/requests/{id}/contact"
                .into(),
            field: Some("action".into()),
        }),
        (false, true) => Err(CommandError::Internal(format!(
            "a contact correction sent with `{}`",
            kind.as_str()
        ))),
        _ => Ok(()),
    }
}

/// Checks a correction's new contact, once the caller's rights are known (so that a caller
/// who may not correct hears the same answer whatever it sends).
pub(super) fn check_data(contact: Option<ContactWrite<'_>>) -> Result<(), CommandError> {
    match contact {
        Some(ContactWrite::Correction(data)) => validate_contact(data),
        _ => Ok(()),
    }
}

impl CommandService {
    /// The write made before the commit is appended: an intake's new contact (returning its
    /// reference, to discard should the commit not be recorded), or the check that a
    /// correction's record was not erased.
    pub(super) async fn write_before_append(
        &self,
        contact: Option<ContactWrite<'_>>,
        contact_ref: Option<&ContactRef>,
        request_id: RequestId,
    ) -> Result<Option<ContactRef>, CommandError> {
        let contacts = &self.inner.contacts;
        match (contact, contact_ref) {
            (Some(ContactWrite::Intake(reference, data)), _) => {
                Ok((contacts.put(reference, data).await? == PutOutcome::Stored)
                    .then(|| reference.clone()))
            }
            (Some(ContactWrite::Correction(_)), Some(reference)) => {
                match contacts.get(reference).await? {
                    Some(StoredContact::Erased) => Err(CommandError::ContactErased(request_id)),
                    _ => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }

    /// The write made once the commit is recorded: a correction replaces the record.
    pub(super) async fn write_after_append(
        &self,
        contact: Option<ContactWrite<'_>>,
        contact_ref: Option<&ContactRef>,
        request_id: RequestId,
    ) -> Result<(), CommandError> {
        let (Some(ContactWrite::Correction(data)), Some(reference)) = (contact, contact_ref) else {
            return Ok(());
        };
        match self.inner.contacts.replace(reference, data).await? {
            PutOutcome::Erased => Err(CommandError::ContactErased(request_id)),
            PutOutcome::Stored | PutOutcome::Kept => {
                tracing::info!(contact_ref = %reference.0, "contact corrected");
                Ok(())
            }
        }
    }

    /// A retried correction replaces the record again (healing a stop between append and
    /// replace), unless a later correction of the request was recorded since.
    pub(super) async fn rewrite_on_retry(
        &self,
        contact: Option<ContactWrite<'_>>,
        contact_ref: Option<&ContactRef>,
        request_id: RequestId,
        command_id: Uuid,
    ) -> Result<(), CommandError> {
        if !matches!(contact, Some(ContactWrite::Correction(_))) {
            return Ok(());
        }
        let commits = self.inner.log.load(request_id).await?;
        if latest_correction(&commits) == Some(command_id) {
            self.write_after_append(contact, contact_ref, request_id)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn discard_contact(&self, stored: Option<ContactRef>) {
        let Some(reference) = stored else { return };
        if let Err(error) = self.inner.contacts.discard(&reference).await {
            tracing::warn!(contact_ref = %reference.0, %error, "could not discard an unused contact");
        }
    }
}

/// The command id of the request's latest commit recording a `contact_corrected`.
fn latest_correction(commits: &[LoggedCommit]) -> Option<Uuid> {
    commits
        .iter()
        .rev()
        .find(|c| {
            c.commit
                .events
                .iter()
                .any(|e| e.event.kind() == EventKind::ContactCorrected)
        })
        .map(|c| c.commit.commit_id)
}
