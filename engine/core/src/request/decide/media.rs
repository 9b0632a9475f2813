//! `attach_media`: the rule of recording a stored file on a request.

use schemas::command::{AttachMedia, AttachmentPurpose};
use schemas::event::MediaAttached;
use schemas::{CommandKind, Event, Role};

use super::stages::OPEN;
use crate::context::Context;
use crate::refusal::Refusal;
use crate::request::Request;
use crate::request::media::is_sha256_hex;

/// Longest media type recorded, in characters.
const MAX_CONTENT_TYPE_CHARS: usize = 100;

impl Request {
    /// `attach_media`: intake files while the request is received or open, by the intake
    /// system, the station or the centre; progress and reply files while it is open, by a
    /// unit working on it (a department only when it is the lead or an assisting one). The
    /// same bytes are attached once per request.
    pub(super) fn attach_media(
        &self,
        c: &AttachMedia,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::AttachMedia;
        match c.purpose {
            AttachmentPurpose::Intake => {
                if ctx.actor.role == Role::DepartmentHandler {
                    return Err(Refusal::NotPermitted {
                        role: ctx.actor.role,
                        command: kind,
                    });
                }
            }
            _ => {
                // The table admits `SUPERVISED`; other purposes than intake need the request open.
                self.stage_in(kind, OPEN)?;
                self.check_involved(ctx.actor, kind)?;
            }
        }
        if !is_sha256_hex(&c.sha256) {
            return Err(Refusal::InvalidField {
                field: "sha256",
                reason: "not 64 lowercase hex digits",
            });
        }
        let content_type = c.content_type.trim();
        if content_type.is_empty()
            || content_type.chars().count() > MAX_CONTENT_TYPE_CHARS
            || !content_type.contains('/')
        {
            return Err(Refusal::InvalidField {
                field: "content_type",
                reason: "not a media type",
            });
        }
        if c.size_bytes == 0 {
            return Err(Refusal::InvalidField {
                field: "size_bytes",
                reason: "an empty file",
            });
        }
        if self.attachment(&c.sha256).is_some() {
            return Err(Refusal::AlreadyRecorded { what: "attachment" });
        }
        Ok(vec![Event::MediaAttached(MediaAttached {
            sha256: c.sha256.clone(),
            content_type: content_type.to_string(),
            size_bytes: c.size_bytes,
            purpose: c.purpose,
            personal: c
                .personal
                .unwrap_or_else(|| c.purpose.personal_by_default()),
        })])
    }
}
