//! Commands that touch two requests: `link_duplicate` and `merge_into`.
//!
//! Each request is its own stream, so a link is two commits, in order, both through the one
//! commit writer ([`CommandService::execute`]):
//!
//! 1. the command on the request being linked, decided by the core with the original's state
//!    loaded beside it (`Context::peer`: rights on the original, its stage, cycles), recording
//!    `linked_to_original`;
//! 2. the back-reference on the original, `record_duplicate` → `duplicate_recorded`, under a
//!    command id derived from the first one ([`back_reference_id`]), by the same actor and in
//!    the same conversation.
//!
//! Should the second commit fail (the log unavailable, a lost race beyond the retries), the
//! caller gets the error while the first commit stands; retrying the command with the same
//! idempotency key answers the first commit as a duplicate and records the back-reference
//! again under the same derived id, which the log binds to that one commit for good. The back-reference
//! is accepted in every stage of the original (archived too), so a retry always completes.

use engine_core::Request;
use schemas::command::RecordDuplicate;
use schemas::{Command, LinkRelation, RequestId};
use uuid::Uuid;

use super::{CommandError, CommandRequest, CommandService};

/// Namespace of the back-reference command ids derived from a link's command id.
pub const BACK_REFERENCE_NAMESPACE: Uuid =
    Uuid::from_u128(0x6b1f_3c1e_8d2a_4f0b_9a57_2c44_1e0d_b011);

/// The command id of the back-reference of the link command `command_id`.
pub fn back_reference_id(command_id: Uuid) -> Uuid {
    Uuid::new_v5(&BACK_REFERENCE_NAMESPACE, command_id.as_bytes())
}

/// The original a cross-request command names, and how it is linked.
fn original_of(command: &Command) -> Option<(RequestId, LinkRelation)> {
    match command {
        Command::LinkDuplicate(c) => Some((c.original, LinkRelation::Related)),
        Command::MergeInto(c) => Some((c.original, LinkRelation::Merged)),
        _ => None,
    }
}

/// The back-reference command that follows `request`, if it is a link or a merge.
pub(super) fn back_reference(request: &CommandRequest) -> Option<CommandRequest> {
    let (original, relation) = original_of(&request.command)?;
    if original == request.request_id {
        return None;
    }
    Some(CommandRequest {
        request_id: original,
        command_id: back_reference_id(request.command_id),
        correlation_id: Some(request.correlation_id.unwrap_or(request.command_id)),
        actor: request.actor.clone(),
        command: Command::RecordDuplicate(RecordDuplicate {
            duplicate: request.request_id,
            relation,
        }),
    })
}

impl CommandService {
    /// The original a link or merge names, as the log has it now, for the core to judge
    /// (`None` when it does not exist, or for any other command). Read without the
    /// original's lock: its own commit comes second and takes it then.
    pub(super) async fn peer_of(
        &self,
        request: &CommandRequest,
    ) -> Result<Option<Request>, CommandError> {
        let Some((original, _)) = original_of(&request.command) else {
            return Ok(None);
        };
        if original == request.request_id {
            return Ok(None);
        }
        match self.load(original).await {
            Ok(state) => Ok(Some(state)),
            Err(CommandError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Records the back-reference `back` on the original (the second commit of a link).
    pub(super) async fn record_back_reference(
        &self,
        back: CommandRequest,
    ) -> Result<(), CommandError> {
        let original = back.request_id;
        match self.execute_locked(back, None, None, None).await {
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::warn!(
                    %original,
                    error = %error,
                    "back-reference not recorded: retry the link with the same idempotency key"
                );
                Err(error)
            }
        }
    }
}
