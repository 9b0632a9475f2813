//! The published JSON Schemas of what the engine answers and publishes on NATS: the
//! request-reply answers, the error reply, inbox rejects and resident notifications
//! (`schemas/json/v1/*.schema.json`, next to the schemas of the documents clients send,
//! which the `schemas` crate generates).
//!
//! `cargo run -p engine-service --bin gen-nats-schemas` rewrites them from the Rust types;
//! a test fails when the committed files differ from what the code generates.

use schemars::{JsonSchema, schema_for};

/// Directory, relative to the workspace root, the files live in (shared with
/// `schemas::json_schema::DIR`).
pub const DIR: &str = "schemas/json/v1";

fn render<T: JsonSchema>() -> String {
    let schema = schema_for!(T);
    let mut text = serde_json::to_string_pretty(&schema).expect("schemas serialise");
    text.push('\n');
    text
}

/// Every NATS reply and notification schema: (file name, pretty JSON).
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        (
            "intake_reply.schema.json",
            render::<super::intake::IntakeReply>(),
        ),
        (
            "command_reply.schema.json",
            render::<super::cmd::CommandReply>(),
        ),
        ("error_reply.schema.json", render::<super::ErrorDocument>()),
        (
            "inbox_reject.schema.json",
            render::<super::inbox::InboxReject>(),
        ),
        (
            "upward_feedback_reply.schema.json",
            render::<crate::upward::FeedbackReply>(),
        ),
        (
            "upward_ack_reply.schema.json",
            render::<crate::upward::AckReply>(),
        ),
        (
            "report_feedback_reply.schema.json",
            render::<crate::reports::store::FeedbackReply>(),
        ),
        (
            "notification.schema.json",
            render::<crate::notify::document::NotificationDocument>(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_nats_schemas_match_the_code() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(DIR);
        for (name, generated) in all() {
            let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            assert!(
                committed == generated,
                "{name} is stale: run `cargo run -p engine-service --bin gen-nats-schemas` and commit the result"
            );
        }
    }
}
