//! Generation of the published JSON Schema files (`schemas/json/v1/*.schema.json`).
//!
//! `cargo run -p schemas --bin gen-schemas` rewrites them; a test fails when the committed
//! files differ from what the code generates, so integrators can rely on them.

use schemars::schema_for;

/// Every published schema: (file name, pretty JSON).
pub fn all() -> Vec<(&'static str, String)> {
    let render = |schema: schemars::Schema| {
        let mut text = serde_json::to_string_pretty(&schema).expect("schemas serialise");
        text.push('\n');
        text
    };
    vec![
        (
            "intake_document.schema.json",
            render(schema_for!(crate::IntakeDocument)),
        ),
        ("command.schema.json", render(schema_for!(crate::Command))),
        (
            "command_envelope.schema.json",
            render(schema_for!(crate::CommandEnvelope)),
        ),
        ("event.schema.json", render(schema_for!(crate::Event))),
        (
            "event_envelope.schema.json",
            render(schema_for!(crate::EventEnvelope)),
        ),
        ("commit.schema.json", render(schema_for!(crate::Commit))),
        ("error.schema.json", render(schema_for!(crate::ErrorBody))),
    ]
}

/// Directory, relative to the `schemas` crate, the files live in.
pub const DIR: &str = "json/v1";
