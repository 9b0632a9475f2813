//! What a decision needs besides the state and the command.

use schemas::{Actor, Timestamp};
use uuid::Uuid;

use crate::policy::Policy;
use crate::request::Request;

/// The injected facts a decision may use: the time, who asks, the command's id, and the
/// reference data in force. Built by the shell for every command.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The instant the decision is made (the events' `occurred_at`).
    pub now: Timestamp,
    /// Who issued the command.
    pub actor: &'a Actor,
    /// The command's id; used to derive stable ids inside events (e.g. upward report ids).
    pub command_id: Uuid,
    /// Catalogue, calendar, policy profile and directory in force.
    pub policy: &'a Policy,
    /// The other request a cross-request command names (the `original` of `link_duplicate`
    /// and `merge_into`), as the shell loaded it; `None` for every other command.
    pub peer: Option<&'a Request>,
}
