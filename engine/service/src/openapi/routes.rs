//! Every operation of the HTTP API: method, path, parameters, bodies and answers. The table
//! follows the routers (`http/`, `audit/http.rs`, `privacy.rs`, `projector.rs`,
//! `projections/src/http.rs` (in `read_models.rs`), `reports/http.rs`, `notify/http.rs`, `http/open311/`); a test
//! walks the routers' sources and fails when a route is missing here.

use serde_json::{Value, json};

use super::operation::*;
use super::schema_ref;

/// Component schemas of responses without a wire type of their own.
pub fn inline_components() -> Vec<(&'static str, Value)> {
    vec![
        (
            "IntakeResponse",
            json!({
                "type": "object",
                "required": ["request_id", "created", "version"],
                "properties": {
                    "request_id": {"type": "string", "format": "uuid"},
                    "created": {"type": "boolean", "description": "False when the same channel and external id had been received before."},
                    "version": {"type": "integer", "minimum": 0},
                    "duplicates": {"type": "array", "items": schema_ref("DuplicateCandidate"), "description": "Candidate duplicates the caller may read (same grid, within the policy profile's `[duplicates]` window, text score at least its `min_score`), best first; absent when no read models run in this process (docs/duplicates.md)."}
                }
            }),
        ),
        (
            "CommandResponse",
            json!({
                "type": "object",
                "required": ["request_id", "version", "position", "events", "duplicate"],
                "properties": {
                    "request_id": {"type": "string", "format": "uuid"},
                    "version": {"type": "integer", "minimum": 0},
                    "position": {"type": "integer", "minimum": 0, "description": "The commit's global log position."},
                    "events": {"type": "array", "items": schema_ref("EventEnvelope")},
                    "duplicate": {"type": "boolean", "description": "The command id had been recorded before: the original result."},
                    "duplicates": {"type": "array", "items": schema_ref("DuplicateCandidate"), "description": "`accept` only: candidate duplicates the caller may read, best first, as `GET /api/v1/requests/{id}/duplicates` lists them; absent for other commands and when no read models run in this process (docs/duplicates.md)."}
                }
            }),
        ),
        (
            "RequestState",
            json!({
                "type": "object",
                "required": ["request_id", "version", "stage", "state"],
                "properties": {
                    "request_id": {"type": "string", "format": "uuid"},
                    "version": {"type": "integer", "minimum": 0},
                    "stage": {"type": "string"},
                    "as_of": {"type": ["string", "null"], "format": "date-time"},
                    "state": {"type": "object", "description": "The aggregate's full state."}
                }
            }),
        ),
        (
            "Page",
            json!({
                "type": "object",
                "required": ["items"],
                "properties": {
                    "items": {"type": "array", "items": {"type": "object"}},
                    "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last."}
                }
            }),
        ),
        ("MapAnswer", super::read_models::map_answer_schema()),
    ]
}

/// The tags, in order.
pub fn tags() -> Value {
    json!([
        {"name": "requests", "description": "Intake, workflow commands and reads of single requests."},
        {"name": "read models", "description": "Rates, lists, rankings and worklists from the projections (when they run in this process)."},
        {"name": "audit", "description": "Hash-chain verification, digests, reference data, time travel."},
        {"name": "upward", "description": "Reports upward and the higher level's feedback."},
        {"name": "reports", "description": "Rate reports published to higher levels."},
        {"name": "notifications", "description": "Resident notifications and their delivery."},
        {"name": "privacy", "description": "Audited reads and recorded corrections of resident contact data."},
        {"name": "open311", "description": "Open311 GeoReport v2 (docs/open311.md)."},
        {"name": "operations", "description": "Health, readiness, metrics and the dashboard."}
    ])
}

fn as_of_params() -> Vec<Param> {
    vec![
        query(
            "as_of",
            datetime(),
            "Only events recorded at or before this instant.",
        ),
        query("version", integer(), "Only events up to this version."),
    ]
}

/// An Open311 date: a date-time, or blank (GeoReport clients send empty form fields, which
/// count as absent).
fn open311_date() -> Value {
    json!({"anyOf": [datetime(), {"type": "string", "pattern": "^ *$"}]})
}

fn open311_jurisdiction() -> Param {
    query(
        "jurisdiction_id",
        text(),
        "This deployment's `open311.jurisdiction_id`; another answers 404.",
    )
}

/// `<uuid>.json` or `<uuid>.xml`.
const REQUEST_FILE: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\.(json|xml)$";

const READ_ERRORS: &[u16] = &[400, 401, 403, 404, 408, 503];

/// What a 409 of a command means.
const COMMAND_CONFLICT: (u16, &str) = (
    409,
    "`conflict`: other writers kept winning the race for the request (retry); or \
     `idempotency_key_reused` (field `Idempotency-Key`): the key was first used for another \
     command, caller or request and stays bound to it; or `version_mismatch` (field \
     `If-Match`): the request is no longer at the version the caller expected. Nothing was \
     recorded.",
);

/// What a 422 of a contact correction means besides the workflow's refusals.
const CONTACT_REFUSALS: (u16, &str) = (
    422,
    "`no_contact`: the request was received without contact data (anonymous); `contact_erased` (field `contact`): its contact data was erased, for good. Nothing stored.",
);

/// The headers of every command route.
fn command_headers() -> Vec<Param> {
    vec![
        header(
            "Idempotency-Key",
            json!({"type": "string", "format": "uuid"}),
            "The command id, bound for good to this request and command: a retry with the same key, body and caller returns the original result (`duplicate: true`); the key with anything else answers 409 `idempotency_key_reused`.",
        ),
        header(
            "X-Correlation-Id",
            json!({"type": "string", "format": "uuid"}),
            "Correlation id recorded on the events.",
        ),
    ]
}

/// An operation with the defaults every route shares: a token, no body, the read errors.
pub(super) fn op(
    method: &'static str,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: &'static str,
) -> Operation {
    Operation {
        method,
        path,
        id,
        tag,
        summary,
        description,
        access: Access::Token,
        params: Vec::new(),
        body: None,
        ok: Vec::new(),
        errors: READ_ERRORS,
        error_notes: &[],
        error_shape: Errors::Api,
    }
}

/// Every operation but the read models' ([`super::read_models`]).
pub fn operations() -> Vec<Operation> {
    vec![
        // ---------------------------------------------------------------- requests
        Operation {
            body: Some((JSON, schema_ref("IntakeDocument"))),
            ok: vec![
                (201, "Created", JSON, schema_ref("IntakeResponse")),
                (200, "Received before: the same request", JSON, schema_ref("IntakeResponse")),
            ],
            errors: &[400, 401, 403, 408, 413, 422, 429, 503],
            ..op("post", "/api/v1/requests", "intake", "requests", "Submit an intake document", "Role intake_system. The same channel + external_id always yields the same request (a keyed hash under the instance's secret: outsiders cannot compute it).")
        },
        Operation {
            params: vec![uuid_path("id", "The request.")],
            ok: vec![(200, "The request", JSON, schema_ref("RequestState"))],
            ..op("get", "/api/v1/requests/{id}", "get_request", "requests", "A request's current state, or as it stood", "`as_of` and/or `version` rebuild it from the events. Station workers read their community's requests, department handlers the ones referred to them.")
        }
        .with_params(as_of_params()),
        Operation {
            params: vec![uuid_path("id", "The request.")],
            ok: vec![(200, "The candidates, best first", JSON, schema_ref("DuplicateCandidates"))],
            ..op("get", "/api/v1/requests/{id}/duplicates", "duplicates", "requests", "Candidate duplicates of a request", "Read rules as for the request; candidates the caller may not see are left out. Neighbours: the same base grid (and category once classified) received within 7 days either side, scored by text similarity (0 to 1, normalised Levenshtein over characters); at least 0.3 is listed. Needs the read models.")
        },
        Operation {
            params: vec![
                uuid_path("id", "The request."),
                query("with_state", boolean(), "Each step as `{envelope, state_after, corrected_by}`."),
            ],
            ok: vec![(200, "The event envelopes, in order", JSON, array_of(schema_ref("EventEnvelope")))],
            ..op("get", "/api/v1/requests/{id}/history", "history", "requests", "A request's events", "Read rules as for the request.")
        },
        Operation {
            params: [
                vec![
                    uuid_path("id", "The request."),
                    path("action", "The command's `action` (see the Command schema), e.g. `accept`, `classify`, `refer`, `reply`."),
                ],
                command_headers(),
                vec![header("If-Match", json!({"type": "string", "pattern": "^\"?[0-9]{1,19}\"?$"}), "The request's `ETag` (its version in quotes) as last read: the command is recorded only if the request is still at that version, else 409 `version_mismatch`. Every command answer and `GET /api/v1/requests/{id}` carry the `ETag`.")],
            ]
            .concat(),
            body: Some((JSON, object("The command's fields without `action` (see the Command schema); empty for commands without fields."))),
            ok: vec![(200, "Recorded (or the original result of a retry)", JSON, schema_ref("CommandResponse"))],
            errors: &[400, 401, 403, 404, 408, 409, 413, 422, 503],
            error_notes: &[COMMAND_CONFLICT],
            ..op("post", "/api/v1/requests/{id}/{action}", "command", "requests", "Issue one workflow command", "Roles per command: docs/state-machine.md. Refusals are 422 with a stable code. `correct_contact` is refused here (400 `use_contact_route`): it is sent with its data to `PUT /api/v1/requests/{id}/contact`.")
        },
        Operation {
            params: vec![
                uuid_path("id", "The request."),
                query("purpose", text(), "Why the data is read (recorded in the privacy ledger)."),
            ],
            ok: vec![(200, "The contact data", JSON, object("The resident's contact record."))],
            errors: &[400, 401, 403, 404, 503],
            ..op("get", "/api/v1/requests/{id}/contact", "contact", "privacy", "Read a resident's contact data", "Only explicitly permitted auditors; every read is recorded before the data is sent.")
        },
        Operation {
            params: [vec![uuid_path("id", "The request.")], command_headers()].concat(),
            body: Some((JSON, schema_ref("ContactCorrection"))),
            ok: vec![(200, "Recorded (or the original result of a retry)", JSON, schema_ref("CommandResponse"))],
            errors: &[400, 401, 403, 404, 408, 409, 413, 422, 503],
            error_notes: &[COMMAND_CONFLICT, CONTACT_REFUSALS],
            ..op("put", "/api/v1/requests/{id}/contact", "correct_contact", "privacy", "Correct a resident's contact data", "The command `correct_contact`: station workers of the request's community and supervisors, in every stage. Records `contact_corrected` (the reason and who, never the data) and replaces the encrypted record.")
        },
        Operation {
            params: [
                vec![
                    uuid_path("id", "The request."),
                    query("purpose", json!({"type": "string", "enum": ["intake", "progress", "reply_before", "reply_after"], "default": "intake"}), "At which step the file comes in."),
                    query("personal", boolean(), "The resident's personal data (deleted on erasure); default true for intake files, false otherwise."),
                ],
                command_headers(),
            ]
            .concat(),
            body: Some(("application/octet-stream", json!({"type": "string", "format": "binary", "description": "The file as the raw body with its Content-Type, or `multipart/form-data` with the file in a part with a file name (or named `file`)."}))),
            ok: vec![
                (201, "Stored and recorded (`media_attached`)", JSON, object("The attachment: request_id, sha256, content_type, size_bytes, purpose, personal, version, created.")),
                (200, "The request held these bytes already", JSON, object("The recorded attachment, `created: false`.")),
            ],
            errors: &[400, 401, 403, 404, 408, 413, 415, 422, 503],
            error_notes: &[(413, "Over `media.max_bytes` (field `file`); nothing stored or recorded."), (415, "The magic bytes show no accepted type (field `file`), or not the declared one (field `content_type`); nothing stored or recorded.")],
            ..op("post", "/api/v1/requests/{id}/attachments", "attach_media", "requests", "Attach a photo or document", "Intake files: the intake system, stations and supervisors while the request is received or open; progress and reply files: the units working on it while it is open. Rights first: an outsider gets the same 403 as for an unknown request. The file is typed by its magic bytes, hashed (SHA-256) and stored (NATS object store or files) before `attach_media` is recorded.")
        },
        Operation {
            params: vec![
                uuid_path("id", "The request."),
                path("sha256", "The file's SHA-256, hex, as `media_attached` recorded it."),
            ],
            ok: vec![(200, "The bytes, with the recorded Content-Type", "application/octet-stream", json!({"type": "string", "format": "binary"}))],
            errors: &[400, 401, 403, 404, 408, 410, 503],
            error_notes: &[(410, "`media_erased`: deleted with the request's personal data.")],
            ..op("get", "/api/v1/requests/{id}/attachments/{sha256}", "attachment", "requests", "Download an attachment", "Read rules as for the request.")
        },
        Operation {
            access: Access::Public,
            body: Some((JSON, schema_ref("LookupQuery"))),
            ok: vec![(200, "The request's public facts", JSON, schema_ref("LookupAnswer"))],
            errors: &[400, 404, 408, 413, 429, 503],
            error_notes: &[(404, "The same answer for an unknown ticket, a wrong check, an anonymous request and one whose contact was erased.")],
            ..op("post", "/api/v1/lookup", "lookup", "requests", "A resident's status lookup", "No credentials: the ticket (and channel, if known) and the last four digits of the resident's phone. Answers the stage in plain words, the expected date (Beijing time) and the reply once replied. Rate limited per peer address (`http.lookup_rate_limit`).")
        },
        Operation {
            access: Access::Public,
            ok: vec![(200, "Each projector's checkpoint and lag", JSON, object("`{status, projectors}`."))],
            errors: &[503],
            ..op("get", "/api/v1/health/projections", "projections_health", "operations", "Projector health", "Public, like `/healthz`. 503 when the read-model database does not answer within 2 s.")
        },
        // ---------------------------------------------------------------- audit, upward
        Operation {
            params: vec![query("request", json!({"type": "string", "format": "uuid"}), "One request; every chain when absent.")],
            ok: vec![(200, "The chain report", JSON, object("Verification report."))],
            ..op("get", "/api/v1/audit/verify", "verify", "audit", "Verify hash chains", "Auditor, supervisor and system roles.")
        },
        Operation {
            ok: vec![(200, "The digests, each recomputed", JSON, array_of(object("A recorded daily digest and whether it still matches.")))],
            ..op("get", "/api/v1/audit/digests", "digests", "audit", "Daily Merkle digests", "Auditor, supervisor and system roles.")
        },
        Operation {
            ok: vec![(200, "Reference-data records", JSON, array_of(object("Kind, version, source, sha256, who, when.")))],
            ..op("get", "/api/v1/audit/reference", "reference", "audit", "Recorded reference-data versions", "Auditor, supervisor and system roles.")
        },
        Operation {
            params: vec![uuid_path("id", "The request.")],
            ok: vec![(200, "Each step with the state after it", JSON, array_of(object("`{envelope, state_after, corrected_by}`.")))],
            ..op("get", "/api/v1/audit/requests/{id}/timeline", "timeline", "audit", "A request's timeline", "Auditor, supervisor and system roles.")
        }
        .with_params(as_of_params()),
        Operation {
            params: vec![uuid_path("id", "The request.")],
            ok: vec![(200, "The request as it stood", JSON, object("`{request_id, version, stage, state}`."))],
            ..op("get", "/api/v1/audit/requests/{id}/state", "state_as_of", "audit", "A request as it stood", "Auditor, supervisor and system roles.")
        }
        .with_params(as_of_params()),
        Operation {
            body: Some((JSON, schema_ref("UpwardFeedbackDocument"))),
            ok: vec![(200, "Recorded", JSON, object("The feedback reply."))],
            errors: &[400, 401, 403, 404, 408, 409, 413, 422, 503],
            error_notes: &[COMMAND_CONFLICT],
            ..op("post", "/api/v1/upward/feedback", "upward_feedback", "upward", "A higher level's feedback on an upward report", "Higher-level and system roles.")
        },
        // ---------------------------------------------------------------- reports
        Operation {
            params: vec![query("level", json!({"type": "string", "enum": ["", "street", "district", "city"]}), "Only reports to this level; empty: every level.")],
            ok: vec![(200, "Published reports", JSON, array_of(object("A report: revisions (without figures) and feedback.")))],
            ..op("get", "/api/v1/reports", "reports", "reports", "Published rate reports", "Auditor, supervisor, higher-level, dashboard and system roles.")
        },
        Operation {
            params: vec![uuid_path("id", "The report.")],
            ok: vec![(200, "The report", JSON, object("Every revision with its figures, changes and reason, and its feedback."))],
            ..op("get", "/api/v1/reports/{id}", "report", "reports", "One rate report", "Auditor, supervisor, higher-level, dashboard and system roles.")
        },
        Operation {
            params: vec![uuid_path("id", "The report.")],
            body: Some((JSON, schema_ref("ReportFeedbackDocument"))),
            ok: vec![(200, "Recorded", JSON, object("The feedback reply."))],
            errors: &[400, 401, 403, 404, 409, 413, 503],
            ..op("post", "/api/v1/reports/{id}/feedback", "report_feedback", "reports", "The higher level's feedback on a report", "Higher-level and system roles.")
        },
        // ---------------------------------------------------------------- policy
        Operation {
            body: Some((JSON, whatif_body())),
            ok: vec![(200, "Every rate and ranking figure recorded and under the proposed profile, with deltas", JSON, object("The what-if report (docs/whatif.md)."))],
            errors: &[400, 401, 403, 408, 413, 503],
            ..op("post", "/api/v1/policy/whatif", "policy_whatif", "read models", "A proposed profile's figures next to the recorded ones", "Supervisor, auditor and system roles. Folds the period into two scratch projections (recorded, re-stamped under the profile); the live read models are only read. Needs the read models.")
        },
        // ---------------------------------------------------------------- notifications
        Operation {
            params: vec![
                query("status", json!({"type": "string", "enum": ["pending", "failed", "sent", "dead", "suppressed"]}), "Only this delivery status."),
                query("request_id", json!({"type": "string", "format": "uuid"}), "Only this request's notifications."),
                query("limit", int_range(1, 1000, None), "Most rows."),
            ],
            ok: vec![(200, "Notifications without recipients", JSON, array_of(object("A delivery with its text.")))],
            ..op("get", "/api/v1/notifications", "notifications", "notifications", "Resident notifications and their delivery", "Supervisor, auditor and system roles; never carries contact data.")
        },
        Operation {
            params: vec![uuid_path("id", "The notification.")],
            ok: vec![(200, "Queued again", JSON, object("The delivery."))],
            errors: &[400, 401, 403, 404, 503],
            ..op("post", "/api/v1/notifications/{id}/replay", "notification_replay", "notifications", "Send a notification again", "Supervisor and system roles.")
        },
        // ---------------------------------------------------------------- open311
        Operation {
            access: Access::Public,
            ok: vec![(200, "The service discovery document: one production endpoint, JSON and XML", JSON, schema_ref("Open311Discovery"))],
            errors: &[],
            error_shape: Errors::Open311,
            ..op("get", "/open311/v2/discovery.json", "open311_discovery", "open311", "GeoReport v2: service discovery", "Public. `changeset`, `contact`, `key_service` and the endpoint (`specification` http://wiki.open311.org/GeoReport_v2, `url`, `changeset`, `type` production, `formats`).")
        },
        Operation {
            access: Access::Public,
            ok: vec![(200, "`<discovery>…<endpoints><endpoint>…`", XML, string())],
            errors: &[],
            error_shape: Errors::Open311Xml,
            ..op("get", "/open311/v2/discovery.xml", "open311_discovery_xml", "open311", "GeoReport v2: service discovery (XML)", "Public.")
        },
        Operation {
            access: Access::Public,
            params: vec![open311_jurisdiction()],
            ok: vec![(200, "Every catalogue item as a service", JSON, array_of(schema_ref("Service")))],
            errors: &[400, 404],
            error_shape: Errors::Open311,
            ..op("get", "/open311/v2/services.json", "open311_services", "open311", "GeoReport v2: service list", "Public.")
        },
        Operation {
            access: Access::Public,
            params: vec![file_path("service_file", "`<service_code>.json` or `<service_code>.xml`."), open311_jurisdiction()],
            ok: vec![
                (200, "The service definition", JSON, schema_ref("ServiceDefinition")),
                (200, "`<service_definition>…` (the `.xml` file)", XML, string()),
            ],
            errors: &[400, 404],
            error_shape: Errors::Open311File,
            ..op("get", "/open311/v2/services/{service_file}", "open311_service_definition", "open311", "GeoReport v2: service definition", "Public. Attributes `grid` and `priority_lane`.")
        },
        Operation {
            access: Access::ApiKey,
            body: Some(("application/x-www-form-urlencoded", json!({
                "type": "object",
                "required": ["api_key", "service_code"],
                "properties": {
                    "api_key": {"type": "string", "description": "A token acting as intake_system."},
                    "jurisdiction_id": {"type": "string"},
                    "service_code": {"type": "string"},
                    "lat": {"type": "number"}, "long": {"type": "number"},
                    "address_string": {"type": "string"}, "address_id": {"type": "string"},
                    "email": {"type": "string"}, "device_id": {"type": "string"}, "account_id": {"type": "string"},
                    "first_name": {"type": "string"}, "last_name": {"type": "string"}, "phone": {"type": "string"},
                    "description": {"type": "string", "maxLength": 4000},
                    "media_url": {"type": "string", "format": "uri"}
                },
                "additionalProperties": {"type": "string", "description": "`attribute[<code>]` values."}
            }))),
            ok: vec![
                (201, "Created", JSON, array_of(schema_ref("CreatedRequest"))),
                (200, "The same call was received before today: the same request", JSON, array_of(schema_ref("CreatedRequest"))),
            ],
            errors: &[400, 403, 404, 413, 429, 503],
            error_shape: Errors::Open311,
            ..op("post", "/open311/v2/requests.json", "open311_create", "open311", "GeoReport v2: create a request", "Form-encoded (or a JSON object). `api_key` required.")
        },
        Operation {
            access: Access::Public,
            params: vec![
                open311_jurisdiction(),
                query("service_request_id", pattern("^\\s*(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(,[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})*)?\\s*$"), "Comma-separated request ids (UUIDs); blank: any."),
                query("service_code", text(), "Comma-separated service codes."),
                query("status", pattern("^(open|closed|open,closed|closed,open)?$"), "`open`, `closed` or `open,closed`."),
                query("start_date", open311_date(), "Received at or after; blank: the default window."),
                query("end_date", open311_date(), "Received at or before; blank: now."),
            ],
            ok: vec![(200, "Requests created over Open311, newest first", JSON, array_of(schema_ref("ServiceRequest")))],
            errors: &[400, 404, 503],
            error_shape: Errors::Open311,
            ..op("get", "/open311/v2/requests.json", "open311_requests", "open311", "GeoReport v2: requests", "Public; never shows contact data.")
        },
        Operation {
            access: Access::Public,
            params: vec![Param { schema: pattern(REQUEST_FILE), ..path("request_file", "`<service_request_id>.json` or `.xml`.") }, open311_jurisdiction()],
            ok: vec![
                (200, "The request (a one-element array)", JSON, array_of(schema_ref("ServiceRequest"))),
                (200, "`<service_requests><request>…` (the `.xml` file)", XML, string()),
            ],
            errors: &[400, 404, 503],
            error_shape: Errors::Open311File,
            ..op("get", "/open311/v2/requests/{request_file}", "open311_request", "open311", "GeoReport v2: one request", "Public; never shows contact data.")
        },
        // The same three literal paths in the XML format (the `{…_file}` paths take `.xml` too).
        Operation {
            access: Access::Public,
            params: vec![open311_jurisdiction()],
            ok: vec![(200, "`<services><service>…`", XML, string())],
            errors: &[400, 404],
            error_shape: Errors::Open311Xml,
            ..op("get", "/open311/v2/services.xml", "open311_services_xml", "open311", "GeoReport v2: service list (XML)", "Public.")
        },
        Operation {
            access: Access::ApiKey,
            body: Some(("application/x-www-form-urlencoded", object("As `POST /open311/v2/requests.json`."))),
            ok: vec![
                (201, "`<service_requests><request>…`", XML, string()),
                (200, "The same call was received before today: the same request", XML, string()),
            ],
            errors: &[400, 403, 404, 413, 429, 503],
            error_shape: Errors::Open311Xml,
            ..op("post", "/open311/v2/requests.xml", "open311_create_xml", "open311", "GeoReport v2: create a request (XML answer)", "As the JSON form.")
        },
        Operation {
            access: Access::Public,
            params: vec![
                open311_jurisdiction(),
                query("service_request_id", pattern("^\\s*(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(,[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})*)?\\s*$"), "Comma-separated request ids (UUIDs); blank: any."),
                query("service_code", text(), "Comma-separated service codes."),
                query("status", pattern("^(open|closed|open,closed|closed,open)?$"), "`open`, `closed` or `open,closed`."),
                query("start_date", open311_date(), "Received at or after; blank: the default window."),
                query("end_date", open311_date(), "Received at or before; blank: now."),
            ],
            ok: vec![(200, "`<service_requests><request>…`", XML, string())],
            errors: &[400, 404, 503],
            error_shape: Errors::Open311Xml,
            ..op("get", "/open311/v2/requests.xml", "open311_requests_xml", "open311", "GeoReport v2: requests (XML)", "Public; never shows contact data.")
        },
        // ---------------------------------------------------------------- operations
        Operation {
            access: Access::Public,
            ok: vec![(200, "Serving", JSON, object("`{status: ok}`."))],
            errors: &[],
            ..op("get", "/healthz", "healthz", "operations", "Liveness", "Public.")
        },
        Operation {
            access: Access::Public,
            ok: vec![(200, "The event log answers", JSON, object("`{status: ready}`."))],
            errors: &[503],
            ..op("get", "/readyz", "readyz", "operations", "Readiness", "Public.")
        },
        Operation {
            access: Access::Public,
            ok: vec![(200, "This document", JSON, object("The OpenAPI 3.1 document."))],
            errors: &[],
            ..op("get", "/openapi.json", "openapi", "operations", "The OpenAPI document", "Public; the same document as schemas/openapi/bianmin.openapi.json.")
        },
        Operation {
            access: Access::Public,
            ok: vec![(200, "Prometheus text format", "text/plain", string())],
            errors: &[],
            ..op("get", "/metrics", "metrics", "operations", "Metrics", "Public.")
        },
        Operation {
            access: Access::Public,
            ok: vec![(307, "Redirect to /dashboard", "", Value::Null)],
            errors: &[],
            ..op("get", "/", "root", "operations", "Redirect to the dashboard", "Public.")
        },
        Operation {
            access: Access::Public,
            ok: vec![(200, "The dashboard page", "text/html", string())],
            errors: &[],
            ..op("get", "/dashboard", "dashboard", "operations", "The dashboard page", "Public; its data calls need credentials.")
        },
        Operation {
            access: Access::Public,
            ok: vec![(307, "Redirect to /dashboard", "", Value::Null)],
            errors: &[],
            ..op("get", "/dashboard/", "dashboard_slash", "operations", "Redirect to the dashboard", "Public.")
        },
        Operation {
            access: Access::Public,
            ok: vec![(200, "The dashboard script", "text/javascript", string())],
            errors: &[],
            ..op("get", "/dashboard/dashboard.js", "dashboard_js", "operations", "Dashboard script", "Public.")
        },
        Operation {
            access: Access::Public,
            ok: vec![(200, "The dashboard map's script", "text/javascript", string())],
            errors: &[],
            ..op("get", "/dashboard/map.js", "dashboard_map_js", "operations", "Dashboard map script (inline SVG of the grid polygons)", "Public.")
        },
        Operation {
            access: Access::Public,
            ok: vec![(200, "The dashboard style sheet", "text/css", string())],
            errors: &[],
            ..op("get", "/dashboard/dashboard.css", "dashboard_css", "operations", "Dashboard style sheet", "Public.")
        },
        Operation {
            ok: vec![(200, "Who the caller is and what lists it may read", JSON, object("`{id, role, unit, list_filter}`."))],
            errors: &[401],
            ..op("get", "/dashboard/session", "dashboard_session", "operations", "The dashboard's session", "Any authenticated caller.")
        },
    ]
}

impl Operation {
    fn with_params(mut self, extra: Vec<Param>) -> Operation {
        self.params.extend(extra);
        self
    }
}

/// The body of `POST /api/v1/policy/whatif`: one of `profile` / `profile_name` (a rule across
/// fields, checked by the handler), and the period.
fn whatif_body() -> Value {
    json!({
        "type": "object",
        "description": "The proposed profile's TOML text (`profile`) or a built-in profile's name (`profile_name`), the period (RFC 3339, `from` before `to`), the rates' grain and grouping, proposed composite weights.",
        "required": ["from", "to"],
        "additionalProperties": false,
        "properties": {
            "profile": {"type": "string"},
            "profile_name": {"type": "string"},
            "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time"},
            "period": {"type": "string", "enum": ["day", "week", "month"]},
            "group_by": {"type": "array", "items": {"type": "string"}},
            "weights": {"type": "object"}
        }
    })
}
