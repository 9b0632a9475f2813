//! Moderation of what is published of a request (Open311 answers): the rule of
//! `moderate_public_text` and the public view it leaves. The resident's own text and
//! attachments are never changed in the log — auditors and staff still read them; only the
//! public answers show the redacted text or nothing.

use schemas::Event;
use schemas::command::{ModeratePublicText, ModerationAction};
use schemas::event::PublicTextModerated;

use super::Request;
use crate::refusal::Refusal;

/// Most characters of a moderation reason.
pub const MAX_MODERATION_REASON_CHARS: usize = 500;

/// Most characters of a redacted text.
pub const MAX_REDACTED_TEXT_CHARS: usize = 4000;

/// The moderation in force: the latest `public_text_moderated`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Moderation {
    /// Hide or redact.
    pub action: ModerationAction,
    /// The published text, for a redaction.
    pub redacted_text: Option<String>,
}

/// What a public answer may show of the resident's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicText<'a> {
    /// Not moderated: the text as submitted.
    Original,
    /// Redacted: this text instead.
    Redacted(&'a str),
    /// Hidden: no text.
    Hidden,
}

impl Request {
    /// `moderate_public_text`: in every stage of an existing request (archived included: a
    /// published text may need hiding at any time), with a reason; a redaction carries the
    /// text to publish, a hiding none.
    pub(super) fn moderate(&self, c: &ModeratePublicText) -> Result<Vec<Event>, Refusal> {
        let reason = c.reason.trim();
        if reason.is_empty() {
            return Err(Refusal::MissingField { field: "reason" });
        }
        if reason.chars().count() > MAX_MODERATION_REASON_CHARS {
            return Err(Refusal::InvalidField {
                field: "reason",
                reason: "longer than 500 characters",
            });
        }
        let redacted_text = match (c.moderation, c.redacted_text.as_deref().map(str::trim)) {
            (ModerationAction::Hide, None) => None,
            (ModerationAction::Hide, Some(_)) => {
                return Err(Refusal::InvalidField {
                    field: "redacted_text",
                    reason: "only a redaction carries a text",
                });
            }
            (ModerationAction::Redact, None | Some("")) => {
                return Err(Refusal::MissingField {
                    field: "redacted_text",
                });
            }
            (ModerationAction::Redact, Some(text)) => {
                if text.chars().count() > MAX_REDACTED_TEXT_CHARS {
                    return Err(Refusal::InvalidField {
                        field: "redacted_text",
                        reason: "longer than 4000 characters",
                    });
                }
                Some(text.to_string())
            }
        };
        Ok(vec![Event::PublicTextModerated(PublicTextModerated {
            moderation: c.moderation,
            redacted_text,
            reason: reason.to_string(),
        })])
    }

    /// The moderation in force, if any.
    pub fn moderation(&self) -> Option<&Moderation> {
        self.moderation.as_ref()
    }

    /// What public answers may show of the resident's text.
    pub fn public_text(&self) -> PublicText<'_> {
        match &self.moderation {
            None => PublicText::Original,
            Some(m) => match (m.action, m.redacted_text.as_deref()) {
                (ModerationAction::Redact, Some(text)) => PublicText::Redacted(text),
                _ => PublicText::Hidden,
            },
        }
    }

    /// Whether public answers may show the attachments: not once the text is moderated.
    pub fn public_attachments(&self) -> bool {
        self.moderation.is_none()
    }
}
