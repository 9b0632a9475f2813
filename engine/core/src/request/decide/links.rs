//! The rules of `link_duplicate`, `merge_into` and the back-reference `record_duplicate`.
//!
//! Both requests must be live: the one linked in the stages before a reply (or still
//! `received`), the original anywhere from `received` to `rated`, neither merged into a third.
//! Links stay one level deep, so no cycle can form: a request that has duplicates merged into
//! it is not merged itself, and two requests are linked once, in one direction. The original is
//! judged on the state the shell loaded (`Context::peer`), after the actor's right to see it:
//! an original the actor may not see is answered like one that does not exist.

use schemas::command::{LinkDuplicate, MergeInto, RecordDuplicate};
use schemas::event::{DuplicateRecorded, LinkedToOriginal};
use schemas::{CommandKind, Event, LinkRelation, RequestId};

use super::stages::{LINKABLE, OPEN};
use super::{Request, Stage, required};
use crate::context::Context;
use crate::refusal::Refusal;

/// The longest reason a link or merge may give, in characters.
pub const MAX_LINK_REASON_CHARS: usize = 500;

impl Request {
    pub(super) fn link_duplicate(
        &self,
        c: &LinkDuplicate,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        self.link_to(
            CommandKind::LinkDuplicate,
            c.original,
            &c.reason,
            LinkRelation::Related,
            ctx,
        )
    }

    pub(super) fn merge_into(&self, c: &MergeInto, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        self.link_to(
            CommandKind::MergeInto,
            c.original,
            &c.reason,
            LinkRelation::Merged,
            ctx,
        )
    }

    fn link_to(
        &self,
        kind: CommandKind,
        original: RequestId,
        reason: &str,
        relation: LinkRelation,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        self.stage_in(kind, LINKABLE)?;
        if original == self.id {
            return Err(Refusal::InvalidField {
                field: "original",
                reason: "a request cannot be linked to or merged into itself",
            });
        }
        required(reason, "reason")?;
        if reason.chars().count() > MAX_LINK_REASON_CHARS {
            return Err(Refusal::InvalidField {
                field: "reason",
                reason: "longer than 500 characters",
            });
        }
        let peer = ctx
            .peer
            .filter(|p| p.id == original && p.admit(ctx.actor, kind).is_ok())
            .ok_or_else(|| Refusal::UnknownReference {
                field: "original",
                value: original.to_string(),
            })?;
        if self.links.duplicates.iter().any(|l| l.request == original) {
            return Err(cycle());
        }
        let linked = self.links.originals.iter().find(|l| l.request == original);
        if linked.is_some_and(|l| l.relation == relation || l.relation == LinkRelation::Merged) {
            return Err(Refusal::AlreadyRecorded { what: "link" });
        }
        if relation == LinkRelation::Merged && self.links.has_merged_duplicates() {
            return Err(Refusal::InvalidField {
                field: "original",
                reason: "this request has duplicates merged into it: merge those first",
            });
        }
        peer.check_link_target(self.id)?;
        Ok(vec![Event::LinkedToOriginal(LinkedToOriginal {
            original,
            original_ticket: peer
                .intake
                .as_ref()
                .map(|i| i.external_id.clone())
                .unwrap_or_default(),
            relation,
            reason: reason.to_string(),
        })])
    }

    /// Whether this request may take `duplicate` as a linked or merged duplicate.
    fn check_link_target(&self, duplicate: RequestId) -> Result<(), Refusal> {
        if self.links.merged_into().is_some() {
            return Err(Refusal::InvalidField {
                field: "original",
                reason: "is itself merged into another request: name that one",
            });
        }
        if self.stage == Stage::Archived {
            return Err(Refusal::InvalidField {
                field: "original",
                reason: "is archived",
            });
        }
        if self.stage != Stage::Received && !OPEN.contains(&self.stage) {
            return Err(Refusal::InvalidField {
                field: "original",
                reason: "is closed (not accepted, transferred or a duplicate)",
            });
        }
        if self.links.originals.iter().any(|l| l.request == duplicate) {
            return Err(cycle());
        }
        Ok(())
    }

    /// The back-reference on the original; any stage (archived too: it records a fact of
    /// the other request). Recorded once per duplicate and relation (a retry of the same
    /// back-reference is recognised by its derived command id before this rule).
    pub(super) fn record_duplicate(&self, c: &RecordDuplicate) -> Result<Vec<Event>, Refusal> {
        if c.duplicate == self.id {
            return Err(Refusal::InvalidField {
                field: "duplicate",
                reason: "a request cannot be its own duplicate",
            });
        }
        let known = self
            .links
            .duplicates
            .iter()
            .any(|l| l.request == c.duplicate && l.relation == c.relation);
        if known {
            return Err(Refusal::AlreadyRecorded { what: "duplicate" });
        }
        Ok(vec![Event::DuplicateRecorded(DuplicateRecorded {
            duplicate: c.duplicate,
            relation: c.relation,
        })])
    }
}

fn cycle() -> Refusal {
    Refusal::InvalidField {
        field: "original",
        reason: "is itself linked to this request: the link would make a cycle",
    }
}
