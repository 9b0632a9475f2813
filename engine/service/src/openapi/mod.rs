//! The OpenAPI 3.1 document of the whole HTTP API, generated from the code.
//!
//! Component schemas come from the wire types themselves through `schemars` (the same derive
//! that produces `schemas/json/v1`; OpenAPI 3.1 schemas are JSON Schema 2020-12, so they are
//! used as generated). Operations are declared in [`routes`], next to nothing else: one entry
//! per method and path of the router. `cargo run -p engine-service --bin gen-openapi`
//! rewrites `schemas/openapi/bianmin.openapi.json`; `tests/it/openapi.rs` fails when the
//! committed file drifts from [`document`], when a route of the router is missing from the
//! document, or when a documented route does not exist.

pub mod operation;
pub mod read_models;
pub mod routes;

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

/// Where the committed document lives, relative to the workspace root.
pub const DOCUMENT_PATH: &str = "schemas/openapi/bianmin.openapi.json";

/// A `$ref` to a component schema.
pub fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Collects component schemas from types.
struct Components {
    generator: SchemaGenerator,
}

impl Components {
    fn new() -> Components {
        let settings = SchemaSettings::draft2020_12().with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        });
        Components {
            generator: SchemaGenerator::new(settings),
        }
    }

    /// Adds `T` and every type it refers to.
    fn add<T: JsonSchema>(&mut self) {
        let _reference = self.generator.subschema_for::<T>();
    }

    fn finish(mut self) -> Map<String, Value> {
        let definitions = self.generator.take_definitions(true);
        let mut sorted: Vec<(String, Value)> = definitions.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        sorted.into_iter().collect()
    }
}

/// The component schemas of every typed request and response body.
fn components() -> Map<String, Value> {
    let mut c = Components::new();
    c.add::<schemas::IntakeDocument>();
    c.add::<schemas::Command>();
    c.add::<schemas::EventEnvelope>();
    c.add::<schemas::ErrorBody>();
    c.add::<crate::http::lookup::LookupQuery>();
    c.add::<crate::http::lookup::LookupAnswer>();
    c.add::<crate::projector::duplicates::DuplicateCandidates>();
    c.add::<crate::privacy::http::ContactCorrection>();
    c.add::<crate::upward::FeedbackDocument>();
    c.add::<crate::reports::store::FeedbackDocument>();
    c.add::<crate::http::open311::wire::Service>();
    c.add::<crate::http::open311::wire::ServiceDefinition>();
    c.add::<crate::http::open311::wire::CreatedRequest>();
    c.add::<crate::http::open311::wire::ServiceRequest>();
    c.add::<crate::http::open311::wire::Open311ErrorItem>();
    c.add::<crate::http::open311::discovery::Discovery>();
    let mut out = c.finish();
    for (name, schema) in routes::inline_components() {
        out.insert(name.to_string(), schema);
    }
    out.into_iter()
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect()
}

/// The whole document.
pub fn document() -> Value {
    let mut paths: std::collections::BTreeMap<String, Map<String, Value>> = Default::default();
    for op in routes::operations()
        .into_iter()
        .chain(read_models::operations())
    {
        paths
            .entry(op.path.to_string())
            .or_default()
            .insert(op.method.to_string(), op.to_value());
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Bianmin HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Intake, workflow commands, reads, read models, audit, upward reporting and Open311 GeoReport v2 of the Bianmin work-order engine. Errors are `{code, message, field}` (ErrorBody) except on the Open311 paths, which answer the GeoReport error array. Authentication: `Authorization: Bearer <token>` (configured tokens, each acting in one role); in development also `X-Bianmin-Actor: <id>;<role>[;<unit>]`.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "servers": [{ "url": "http://127.0.0.1:8080" }],
        "tags": routes::tags(),
        "paths": paths,
        "components": {
            "schemas": components(),
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "A configured token (`[[auth.tokens]]`)." },
                "devActor": { "type": "apiKey", "in": "header", "name": "X-Bianmin-Actor", "description": "Development identity `<id>;<role>[;<unit>]`; only with `--dev-identity`." }
            }
        }
    })
}

/// The document as committed: pretty JSON with a trailing newline.
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("the document serialises");
    text.push('\n');
    text
}
