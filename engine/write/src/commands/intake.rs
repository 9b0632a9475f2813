//! Intake: an [`IntakeDocument`] becomes a `receive` command. The document is validated at
//! the edge, the request id derived from `<channel>:<external_id>` (so a resubmission finds
//! the same request), and only a contact reference goes into the event; the contact itself
//! is written through [`ContactWrite::Intake`].

use schemas::command::Receive;
use schemas::{Actor, Command, ContactRef, GridPath, IntakeDocument, Place, RequestId};
use uuid::Uuid;

use engine_core::Policy;

use super::place::locate_intake;
use super::{
    CONTACT_NAMESPACE, CommandError, CommandRequest, CommandService, ContactWrite, IntakeOutcome,
    RECEIVE_NAMESPACE, validate_contact,
};

/// Most attachments an intake document may carry.
pub const MAX_ATTACHMENTS: usize = 20;
/// Longest accepted text, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// How far in the past an intake's `raised_at` may lie, in days: a live channel forwards
/// what residents raised recently; history comes through `bianmin import`.
pub const RAISED_AT_MAX_AGE_DAYS: i64 = 366;
/// Longest accepted external id, in characters.
pub const MAX_EXTERNAL_ID_CHARS: usize = 128;

impl CommandService {
    /// Turns an intake document into a new request (or finds the one it made before).
    pub async fn intake(
        &self,
        document: IntakeDocument,
        actor: Actor,
    ) -> Result<IntakeOutcome, CommandError> {
        let channel = document.channel.as_str();
        let result = self.intake_inner(document, actor).await;
        let outcome = match &result {
            Ok(outcome) if outcome.created => "created",
            Ok(_) => "existing",
            Err(CommandError::Invalid { .. } | CommandError::Refused(_)) => "invalid",
            Err(_) => "failed",
        };
        self.inner.metrics.intake(channel, outcome);
        result
    }

    async fn intake_inner(
        &self,
        document: IntakeDocument,
        actor: Actor,
    ) -> Result<IntakeOutcome, CommandError> {
        let now = self.inner.clock.now();
        let (location, place) = validate_intake(&document, &self.inner.policy, now)?;
        let request_id = self
            .inner
            .intake_ids
            .resolve(&self.inner.log, document.channel, &document.external_id)
            .await?;
        let command_id = Uuid::new_v5(&RECEIVE_NAMESPACE, request_id.as_bytes());
        // Anonymous residents' contact data is never stored, even when sent.
        let contact = document.contact.filter(|_| !document.anonymous);
        let contact_ref = contact
            .as_ref()
            .map(|_| ContactRef(Uuid::new_v5(&CONTACT_NAMESPACE, request_id.as_bytes())));
        let command = Command::Receive(Receive {
            channel: document.channel,
            external_id: document.external_id,
            contact_ref: contact_ref.clone(),
            anonymous: document.anonymous,
            confidential: document.confidential,
            no_reply_requested: document.no_reply_requested,
            location,
            place: place.map(Box::new),
            text: document.text,
            attachments: document.attachments,
            priority_lanes: document.priority_lanes,
            kind: document.kind,
            raised_at: document.raised_at.unwrap_or(now),
            service_code: document.service_code,
            answers: Box::new(document.answers),
        });
        let request = CommandRequest {
            request_id,
            command_id,
            correlation_id: None,
            actor,
            command,
        };
        let write = contact_ref
            .as_ref()
            .zip(contact.as_ref())
            .map(|(reference, data)| ContactWrite::Intake(reference, data));
        match self.execute_with(request, write, None).await {
            Ok(outcome) if !outcome.duplicate => Ok(IntakeOutcome {
                request_id,
                created: true,
                version: outcome.version,
            }),
            Ok(outcome) => Ok(IntakeOutcome {
                request_id,
                created: false,
                version: self.current_version(request_id, outcome.version).await,
            }),
            // Should a request with this id exist without our receive commit, it is still
            // the same request: report it, record nothing.
            Err(CommandError::Refused(refusal)) => match self.load(request_id).await {
                Ok(existing) => Ok(IntakeOutcome {
                    request_id,
                    created: false,
                    version: existing.version(),
                }),
                Err(_) => Err(CommandError::Refused(refusal)),
            },
            Err(other) => Err(other),
        }
    }

    async fn current_version(&self, id: RequestId, fallback: u64) -> u64 {
        match self.load(id).await {
            Ok(request) => request.version(),
            Err(_) => fallback,
        }
    }
}

/// Checks an intake document before anything is stored; returns the grid path it is filed
/// under and the place recorded with it ([`locate_intake`]).
pub fn validate_intake(
    document: &IntakeDocument,
    policy: &Policy,
    now: schemas::Timestamp,
) -> Result<(GridPath, Option<Place>), CommandError> {
    let external_chars = document.external_id.chars().count();
    if external_chars == 0 || external_chars > MAX_EXTERNAL_ID_CHARS {
        return Err(CommandError::invalid(
            "invalid_length",
            "external_id",
            format!("external_id must be 1..={MAX_EXTERNAL_ID_CHARS} characters"),
        ));
    }
    if document.external_id.chars().any(char::is_control) {
        return Err(CommandError::invalid(
            "invalid_value",
            "external_id",
            "external_id must not contain control characters",
        ));
    }
    let text_chars = document.text.chars().count();
    if document.text.trim().is_empty() || text_chars > MAX_TEXT_CHARS {
        return Err(CommandError::invalid(
            "invalid_length",
            "text",
            format!("text must be 1..={MAX_TEXT_CHARS} characters and not blank"),
        ));
    }
    if !document.anonymous {
        let Some(contact) = &document.contact else {
            return Err(CommandError::invalid(
                "required",
                "contact",
                "contact is required unless the request is anonymous",
            ));
        };
        validate_contact(contact)?;
    }
    let placed = locate_intake(document, policy)?;
    if document.attachments.len() > MAX_ATTACHMENTS {
        return Err(CommandError::invalid(
            "too_many",
            "attachments",
            format!("at most {MAX_ATTACHMENTS} attachments"),
        ));
    }
    if document
        .attachments
        .iter()
        .any(|a| a.uri.trim().is_empty() || a.uri.chars().count() > 2048)
    {
        return Err(CommandError::invalid(
            "invalid_value",
            "attachments",
            "attachment uris are 1..=2048 characters",
        ));
    }
    if document.priority_lanes.len() > 3 {
        return Err(CommandError::invalid(
            "too_many",
            "priority_lanes",
            "each priority lane at most once",
        ));
    }
    if document
        .raised_at
        .is_some_and(|raised| raised > now + chrono::Duration::minutes(5))
    {
        return Err(CommandError::invalid(
            "invalid_value",
            "raised_at",
            "raised_at lies in the future",
        ));
    }
    if document
        .raised_at
        .is_some_and(|raised| raised < now - chrono::Duration::days(RAISED_AT_MAX_AGE_DAYS))
    {
        return Err(CommandError::invalid(
            "invalid_value",
            "raised_at",
            format!(
                "raised_at lies more than {RAISED_AT_MAX_AGE_DAYS} days in the past; \
                 older requests are brought in with `bianmin import`"
            ),
        ));
    }
    Ok(placed)
}
