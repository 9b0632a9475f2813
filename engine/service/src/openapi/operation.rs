//! The model of one operation (method, path, parameters, bodies, answers) and its OpenAPI
//! form, with the parameter schemas shared by the table in [`super::routes`]: every
//! constraint the server enforces on a parameter is stated in its schema.

use serde_json::{Value, json};

use super::schema_ref;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials.
    Public,
    /// A bearer token (or the dev actor header), with the roles named in the description.
    Token,
    /// Open311: `api_key` parameter (an intake-system token).
    ApiKey,
}

/// How errors are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errors {
    /// `{code, message, field}`.
    Api,
    /// Open311's `[{code, description}]`.
    Open311,
    /// Open311's `<errors><error><code/><description/></error></errors>`.
    Open311Xml,
    /// A `{…_file}` path: the array for `.json`, the XML document for `.xml`.
    Open311File,
}

/// One parameter.
#[derive(Debug, Clone)]
pub struct Param {
    /// Name.
    pub name: &'static str,
    /// `path`, `query` or `header`.
    pub place: &'static str,
    /// Required.
    pub required: bool,
    /// Schema.
    pub schema: Value,
    /// What it does.
    pub description: &'static str,
}

/// One method on one path.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Lower-case HTTP method.
    pub method: &'static str,
    /// Path in OpenAPI form (`{id}`).
    pub path: &'static str,
    /// Unique operation id.
    pub id: &'static str,
    /// Tag.
    pub tag: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Roles and behaviour.
    pub description: &'static str,
    /// Credentials.
    pub access: Access,
    /// Parameters.
    pub params: Vec<Param>,
    /// Request body: (media type, schema).
    pub body: Option<(&'static str, Value)>,
    /// Success answers: (status, description, media type, schema).
    pub ok: Vec<(u16, &'static str, &'static str, Value)>,
    /// Error statuses.
    pub errors: &'static [u16],
    /// Descriptions of error statuses that say more than the generic [`error_text`].
    pub error_notes: &'static [(u16, &'static str)],
    /// Error shape.
    pub error_shape: Errors,
}

impl Operation {
    /// The OpenAPI operation object.
    pub fn to_value(&self) -> Value {
        let mut responses = serde_json::Map::new();
        for (status, description, media, schema) in &self.ok {
            let content = if media.is_empty() {
                json!(null)
            } else {
                json!({ *media: { "schema": schema } })
            };
            // A status listed again adds another media type (the Open311 `.json`/`.xml` files).
            if let Some(known) = responses.get_mut(&status.to_string()) {
                if let (Some(known), Value::Object(more)) =
                    (known["content"].as_object_mut(), content)
                {
                    known.extend(more);
                }
                continue;
            }
            let mut answer = json!({ "description": description });
            if !content.is_null() {
                answer["content"] = content;
            }
            responses.insert(status.to_string(), answer);
        }
        // Every route can answer 400 (a path or query value that is not UTF-8 or holds a
        // control character, an unknown parameter) and 500 (the last line of defence).
        let mut errors: Vec<u16> = self.errors.to_vec();
        if self.body.is_some() {
            errors.push(413);
        }
        errors.extend([400, 500]);
        errors.sort_unstable();
        errors.dedup();
        for status in &errors {
            let open311 = || json!({"type": "array", "items": schema_ref("Open311ErrorItem")});
            let content = match self.error_shape {
                Errors::Api => json!({ JSON: { "schema": schema_ref("ErrorBody") } }),
                Errors::Open311 => json!({ JSON: { "schema": open311() } }),
                Errors::Open311Xml => json!({ XML: { "schema": string() } }),
                Errors::Open311File => json!({
                    JSON: { "schema": open311() },
                    XML: { "schema": string() }
                }),
            };
            let description = self
                .error_notes
                .iter()
                .find(|(noted, _)| noted == status)
                .map_or(error_text(*status), |(_, note)| note);
            responses.insert(
                status.to_string(),
                json!({ "description": description, "content": content }),
            );
        }
        let mut op = json!({
            "operationId": self.id,
            "tags": [self.tag],
            "summary": self.summary,
            "description": self.description,
            "responses": responses,
        });
        let params: Vec<Value> = self
            .params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name, "in": p.place, "required": p.required,
                    "description": p.description, "schema": p.schema
                })
            })
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some((media, schema)) = &self.body {
            op["requestBody"] = json!({
                "required": true,
                "content": { *media: { "schema": schema } }
            });
        }
        match self.access {
            Access::Public => op["security"] = json!([]),
            Access::Token => op["security"] = json!([{ "bearer": [] }, { "devActor": [] }]),
            Access::ApiKey => op["security"] = json!([]),
        }
        op
    }
}

pub(super) fn error_text(status: u16) -> &'static str {
    match status {
        400 => "Malformed or invalid input",
        401 => "No or unknown credentials",
        403 => "The role or unit may not do or see this",
        404 => "Unknown resource",
        405 => "Method not allowed",
        408 => "Timed out",
        409 => "Conflict",
        410 => "Gone",
        413 => "Body over the size limit",
        415 => "Unsupported media type",
        422 => "Refused by the workflow rules",
        429 => "Rate limited",
        500 => "Internal error (logged with the request id, which the message names)",
        503 => "A backing store is unavailable",
        _ => "Error",
    }
}

pub(super) fn path(name: &'static str, description: &'static str) -> Param {
    Param {
        name,
        place: "path",
        required: true,
        schema: text(),
        description,
    }
}

/// A `{…_file}` path segment: a name and the format, `.json` or `.xml`.
pub(super) fn file_path(name: &'static str, description: &'static str) -> Param {
    Param {
        schema: pattern(FILE_PATTERN),
        ..path(name, description)
    }
}

/// `<name>.json` or `<name>.xml`, the name without control characters.
pub(super) const FILE_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]+\\.(json|xml)$";

pub(super) fn uuid_path(name: &'static str, description: &'static str) -> Param {
    Param {
        schema: json!({"type": "string", "format": "uuid"}),
        ..path(name, description)
    }
}

pub(super) fn query(name: &'static str, schema: Value, description: &'static str) -> Param {
    Param {
        name,
        place: "query",
        required: false,
        schema,
        description,
    }
}

pub(super) fn header(name: &'static str, schema: Value, description: &'static str) -> Param {
    Param {
        name,
        place: "header",
        required: false,
        schema,
        description,
    }
}

pub(super) fn string() -> Value {
    json!({"type": "string"})
}

pub(super) fn datetime() -> Value {
    json!({"type": "string", "format": "date-time"})
}

/// Text the edge accepts in a path or query value: no control characters (NUL among them).
pub(super) const TEXT_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";

/// A string without control characters.
pub(super) fn text() -> Value {
    json!({"type": "string", "pattern": TEXT_PATTERN})
}

/// A string matching `pattern`.
pub(super) fn pattern(pattern: &str) -> Value {
    json!({"type": "string", "pattern": pattern})
}

/// An integer in `minimum..=maximum` (out of range: 400 naming the parameter).
pub(super) fn int_range(minimum: i64, maximum: u64, default: Option<i64>) -> Value {
    let mut schema = json!({"type": "integer", "minimum": minimum, "maximum": maximum});
    if let Some(default) = default {
        schema["default"] = json!(default);
    }
    schema
}

/// A non-negative integer that fits in 64 bits.
pub(super) fn integer() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})
}

pub(super) fn boolean() -> Value {
    json!({"type": "boolean"})
}

pub(super) fn object(description: &'static str) -> Value {
    json!({"type": "object", "description": description})
}

pub(super) fn array_of(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

pub(super) const JSON: &str = "application/json";
pub(super) const XML: &str = "text/xml";
