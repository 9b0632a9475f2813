//! What a command id is bound to: the request and a digest of the command and its sender
//! (see [`engine_log::bindings`]). The same id with the same digest on the same request is a
//! retry and answers the original outcome; anything else reuses the key and is refused.

use schemas::Command;
use sha2::{Digest, Sha256};

use super::CommandRequest;
use engine_log::Binding;

impl CommandRequest {
    /// The binding this request makes of its command id.
    pub fn binding(&self) -> Binding {
        binding_of(self)
    }
}

/// The binding `request` makes of its command id.
///
/// The digest is SHA-256 over the canonical JSON (keys sorted, no whitespace, as the event
/// hashes use) of `{actor, command}`: the typed command, so a body that only differs in
/// spelling (key order, an explicit `null` for an absent option) is the same command, and its
/// sender, so another caller replaying a key neither records a second command nor reads the
/// first caller's outcome.
///
/// A `receive` is the exception. Its id is derived from the request id (the channel and the
/// upstream ticket), so the ticket is the key: a re-sent intake is the same request however
/// its text or contact differ, and intake answers it with `created: false`. Its digest covers
/// the action only.
fn binding_of(request: &CommandRequest) -> Binding {
    let named = match &request.command {
        Command::Receive(_) => serde_json::json!({ "action": "receive" }),
        command => serde_json::json!({ "actor": request.actor, "command": command }),
    };
    let bytes = serde_json::to_vec(&named).expect("commands always serialise");
    Binding {
        request_id: request.request_id,
        digest: hex::encode(Sha256::digest(&bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::{Actor, Role};
    use uuid::Uuid;

    fn note(actor: &str, note: &str) -> CommandRequest {
        let body = serde_json::json!({ "note": note });
        CommandRequest {
            request_id: Uuid::from_u128(1),
            command_id: Uuid::from_u128(2),
            correlation_id: None,
            actor: Actor {
                id: actor.into(),
                role: Role::StationWorker,
                unit: Some("sq-0101".into()),
            },
            command: Command::from_action_body("note_progress", body).expect("a command"),
        }
    }

    #[test]
    fn the_digest_tells_bodies_and_senders_apart_and_nothing_else() {
        let first = binding_of(&note("w-1", "a"));
        assert_eq!(first, binding_of(&note("w-1", "a")));
        assert_ne!(first.digest, binding_of(&note("w-1", "b")).digest);
        assert_ne!(first.digest, binding_of(&note("w-2", "a")).digest);
        let mut elsewhere = note("w-1", "a");
        elsewhere.request_id = Uuid::from_u128(3);
        assert_eq!(binding_of(&elsewhere).digest, first.digest);
        assert_ne!(binding_of(&elsewhere), first);
        assert_eq!(first.digest.len(), 64);
    }
}
