//! The links of a request to other requests (关联 / 并案): the originals it was linked or
//! merged into, and the duplicates linked or merged into it (back-references both ways).
//! Folded from `linked_to_original` and `duplicate_recorded`; the rules are in
//! `decide/links.rs`.

use schemas::{Event, EventEnvelope, LinkRelation, RequestId, Timestamp};

/// One link to another request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    /// The other request.
    pub request: RequestId,
    /// Related or merged.
    pub relation: LinkRelation,
    /// When it was recorded.
    pub at: Timestamp,
}

/// Both directions of a request's links.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Links {
    /// The originals this request was linked to or merged into.
    pub originals: Vec<Link>,
    /// The requests linked to or merged into this one (its duplicates).
    pub duplicates: Vec<Link>,
}

/// Records `link`, replacing an earlier one to the same request (a merge supersedes a link).
fn upsert(links: &mut Vec<Link>, link: Link) {
    match links.iter_mut().find(|l| l.request == link.request) {
        Some(existing) => *existing = link,
        None => links.push(link),
    }
}

impl Links {
    /// Folds the links `envelope` adds.
    pub(super) fn apply(&mut self, envelope: &EventEnvelope) {
        let at = envelope.occurred_at;
        match &envelope.event {
            Event::LinkedToOriginal(e) => upsert(
                &mut self.originals,
                Link {
                    request: e.original,
                    relation: e.relation,
                    at,
                },
            ),
            Event::DuplicateRecorded(e) => upsert(
                &mut self.duplicates,
                Link {
                    request: e.duplicate,
                    relation: e.relation,
                    at,
                },
            ),
            _ => {}
        }
    }

    /// The original this request was merged into, if it was.
    pub fn merged_into(&self) -> Option<RequestId> {
        self.originals
            .iter()
            .find(|l| l.relation == LinkRelation::Merged)
            .map(|l| l.request)
    }

    /// Whether some request was merged into this one.
    pub(super) fn has_merged_duplicates(&self) -> bool {
        self.duplicates
            .iter()
            .any(|l| l.relation == LinkRelation::Merged)
    }
}

impl super::Request {
    /// The links to other requests, both ways.
    pub fn links(&self) -> &Links {
        &self.links
    }

    /// Folds a link event: the links, and the stage of a merged request.
    pub(super) fn apply_links(&mut self, envelope: &EventEnvelope) {
        self.links.apply(envelope);
        if let Event::LinkedToOriginal(e) = &envelope.event
            && e.relation == LinkRelation::Merged
        {
            self.stage = super::Stage::Merged;
        }
    }
}
