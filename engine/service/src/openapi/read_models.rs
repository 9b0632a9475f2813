//! The read models' operations in the OpenAPI document (`projections/src/http.rs` behind
//! `projector::read_api`): rates, request lists and worklists, the upward ledger, and the
//! rankings of departments overall and within their tiers, of streets and of communities
//! (formulas in docs/metrics.md). Every one takes `min_position` (read-your-writes).

use serde_json::{Value, json};

use super::operation::*;
use super::routes::op;
use super::schema_ref;

fn dims() -> Vec<Param> {
    [
        ("street", "Only this street."),
        ("community", "Only this community."),
        ("grid", "Only this grid."),
        ("department", "Only this lead department."),
        ("category", "Only this catalogue category."),
        ("channel", "Only this intake channel."),
    ]
    .into_iter()
    .map(|(name, description)| query(name, text(), description))
    .collect()
}

fn list_params(extra: Vec<Param>) -> Vec<Param> {
    let mut params = dims();
    params.extend([
        query(
            "now",
            datetime(),
            "The instant deadlines are judged against; default now.",
        ),
        since_position(),
        min_position(),
        limit(),
        cursor(),
    ]);
    params.extend(scope());
    params.extend(extra);
    params
}

/// The period range and the dispatched-only scope every rate and list reads.
fn scope() -> [Param; 3] {
    [
        query("from", period_key(), "First period key included."),
        query("to", period_key(), "Last period key included."),
        query(
            "dispatched",
            boolean(),
            "Only requests referred at least once.",
        ),
    ]
}

/// `YYYY-MM-DD`, `YYYY-Www` or `YYYY-MM`.
fn period_key() -> Value {
    pattern("^[0-9]{4}-([0-9]{2}(-[0-9]{2})?|W[0-9]{2})$")
}

fn since_position() -> Param {
    query(
        "since_position",
        int_range(0, i64::MAX as u64, None),
        "Only rows changed after this log position.",
    )
}

fn limit() -> Param {
    query(
        "limit",
        int_range(1, u64::from(projections::http::MAX_LIMIT), Some(100)),
        "Page size.",
    )
}

fn cursor() -> Param {
    query(
        "cursor",
        pattern(projections::query::CURSOR_PATTERN),
        "From the previous page's `next_cursor` (any other value: 400).",
    )
}

/// The ranking's cursor: the offset of the next page.
fn offset_cursor() -> Param {
    query(
        "cursor",
        pattern("^[0-9]{1,18}$"),
        "From the previous page's `next_cursor` (any other value: 400).",
    )
}

/// Any of the dimensions, comma-separated.
/// The `group_by` pattern: a comma-separated list of the projections' dimensions.
fn group_by_pattern() -> String {
    let one = projections::query::Dim::ALL
        .map(projections::query::Dim::name)
        .join("|");
    format!("^(({one})(,({one}))*)?$")
}

/// A ranking weight.
fn weight() -> Value {
    json!({"type": "number", "minimum": 0, "maximum": projections::http::MAX_WEIGHT})
}

/// What a read-model read may answer besides 200 (503: `not_caught_up` after `min_position`'s
/// wait, or the read-model database unreachable).
const READ_MODEL_ERRORS: &[u16] = &[400, 401, 403, 408, 500, 503];

/// Read-your-writes on every read-model read (`projector::read_your_writes`).
fn min_position() -> Param {
    query(
        "min_position",
        int_range(0, i64::MAX as u64, None),
        "Answer only once the read models have applied the log up to this position (a command's `position`); after `projections.read_wait_ms` 503 `not_caught_up` with `Retry-After`. Every answer names the read models' position in `Bianmin-Position`.",
    )
}

/// A request list: the dimension filters, paging and `extra`.
fn list(
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    extra: Vec<Param>,
) -> Operation {
    Operation {
        params: list_params(extra),
        ok: vec![(200, "A page of request summaries", JSON, schema_ref("Page"))],
        errors: READ_MODEL_ERRORS,
        ..op(
            "get",
            path,
            id,
            "read models",
            summary,
            "Roles: see docs/metrics.md; the dashboard role reads aggregates only.",
        )
    }
}

/// Rates, lists and the upward ledger.
fn reads() -> Vec<Operation> {
    vec![
        Operation {
            params: {
                let mut p = dims();
                p.extend([
                    query(
                        "period",
                        json!({"type": "string", "enum": ["day", "week", "month"]}),
                        "Period grain.",
                    ),
                    query(
                        "group_by",
                        pattern(&group_by_pattern()),
                        "Comma-separated dimensions.",
                    ),
                ]);
                p.extend(scope());
                p.extend([
                    query(
                        "now",
                        datetime(),
                        "The instant deadlines are judged against.",
                    ),
                    min_position(),
                ]);
                p
            },
            ok: vec![(
                200,
                "Rates per group",
                JSON,
                object("`{items: [RateRow]}`: counts and rates per group (docs/metrics.md)."),
            )],
            errors: READ_MODEL_ERRORS,
            ..op(
                "get",
                "/api/v1/stats",
                "stats",
                "read models",
                "Rates by period and dimension",
                "Every role that reads aggregates, including dashboard.",
            )
        },
        list(
            "/api/v1/overdue",
            "overdue",
            "Open requests past a deadline",
            vec![],
        ),
        list(
            "/api/v1/due-soon",
            "due_soon",
            "Open requests due soon",
            vec![query(
                "within_hours",
                int_range(1, projections::http::MAX_WITHIN_HOURS as u64, Some(24)),
                "Window, hours.",
            )],
        ),
        list(
            "/api/v1/worklists/workers/{id}",
            "worker_worklist",
            "A worker's open requests",
            vec![path("id", "The worker id.")],
        ),
        list(
            "/api/v1/worklists/people/{id}",
            "person_worklist",
            "The open requests assigned to a person (指派)",
            vec![
                path("id", "The assignee's actor id."),
                query(
                    "unit",
                    json!({"type": "string", "minLength": 1, "pattern": TEXT_PATTERN}),
                    "Only assignments for this unit (not empty; omit it for every unit); a colleague of the unit reads with it.",
                ),
            ],
        ),
        list(
            "/api/v1/worklists/departments/{code}",
            "department_worklist",
            "A department's open requests: led, assisted (协办) and summoned (吹哨), each part marked",
            vec![path("code", "The department code.")],
        ),
        list(
            "/api/v1/worklists/stations/{community}/unassigned",
            "station_unassigned",
            "A station's unassigned queue",
            vec![path("community", "The community code.")],
        ),
        list(
            "/api/v1/requests",
            "list_requests",
            "Every request in change order (the incremental feed)",
            vec![],
        ),
        Operation {
            params: vec![
                query("open", boolean(), "Only open reports."),
                since_position(),
                min_position(),
                limit(),
                cursor(),
            ],
            ok: vec![(200, "A page of the ledger", JSON, schema_ref("Page"))],
            errors: READ_MODEL_ERRORS,
            ..op(
                "get",
                "/api/v1/upward",
                "upward_ledger",
                "upward",
                "The report-upward ledger",
                "Read-model roles.",
            )
        },
    ]
}

/// Parameters every ranking reads, then `extra`.
fn params(extra: Vec<Param>) -> Vec<Param> {
    let mut params = vec![
        query(
            "month",
            pattern("^[0-9]{4}-[0-9]{2}$"),
            "`YYYY-MM`; default the current month.",
        ),
        query(
            "w1",
            weight(),
            "Weight of the response rate (default `projections.weights.response`, 10).",
        ),
        query(
            "w2",
            weight(),
            "Weight of the resolution rate (default `projections.weights.resolution`, 45).",
        ),
        query(
            "w3",
            weight(),
            "Weight of the satisfaction rate (default `projections.weights.satisfaction`, 45).",
        ),
        query(
            "w4",
            weight(),
            "Weight of the bottom-up ratings (default `projections.weights.bottom_up`, 0); a unit nobody rated is scored on the three rates scaled to the same total.",
        ),
        limit(),
        offset_cursor(),
        query(
            "now",
            datetime(),
            "The instant deadlines are judged against.",
        ),
        min_position(),
    ];
    params.extend(extra);
    params
}

/// One ranking operation.
fn ranking(
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    description: &'static str,
    extra: Vec<Param>,
) -> Operation {
    Operation {
        method: "get",
        path,
        id,
        tag: "read models",
        summary,
        description,
        access: Access::Token,
        params: params(extra),
        body: None,
        ok: vec![(
            200,
            "The ranking",
            JSON,
            object("`{month, weights, items, next_cursor}`."),
        )],
        errors: READ_MODEL_ERRORS,
        error_notes: &[],
        error_shape: Errors::Api,
    }
}

/// Every read-model operation.
pub fn operations() -> Vec<Operation> {
    let mut all = reads();
    all.extend(rankings());
    all.push(map());
    all
}

/// `GET /api/v1/map` (`projector::map`).
fn map() -> Operation {
    let mut params: Vec<Param> = dims()
        .into_iter()
        .filter(|p| ["street", "community", "grid", "department"].contains(&p.name))
        .collect();
    params.push(min_position());
    Operation {
        params,
        ok: vec![(
            200,
            "The grid polygons and the open requests' points",
            JSON,
            schema_ref("MapAnswer"),
        )],
        errors: READ_MODEL_ERRORS,
        ..op(
            "get",
            "/api/v1/map",
            "map",
            "read models",
            "The grid polygons in force and the open requests that carry a point",
            "Polygons for every authenticated role; the points under the request list's rule (supervisors, auditors; a station worker or department handler with their own `community` / `department`), else `points_visible: false`. Coordinates are WGS-84 degrees.",
        )
    }
}

/// The schema of the map's answer.
pub fn map_answer_schema() -> Value {
    let position = json!({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "[lon, lat]"});
    json!({
        "type": "object",
        "required": ["version", "areas", "points_visible", "points", "truncated"],
        "properties": {
            "version": {"type": "string", "description": "Version of the grid file in force; empty when none is loaded."},
            "bounds": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4, "description": "[min_lon, min_lat, max_lon, max_lat]"},
            "areas": {"type": "array", "items": {
                "type": "object",
                "required": ["level", "street", "community", "rings"],
                "properties": {
                    "level": {"enum": ["community", "grid"]},
                    "street": {"type": "string"},
                    "community": {"type": "string"},
                    "grid": {"type": "string"},
                    "rings": {"type": "array", "items": {"type": "array", "items": position}}
                }
            }},
            "points_visible": {"type": "boolean", "description": "Whether the caller may see the requests' points."},
            "points": {"type": "array", "items": {
                "type": "object",
                "required": ["request_id", "stage", "street", "community", "grid", "lat", "lon", "overdue"],
                "properties": {
                    "request_id": {"type": "string", "format": "uuid"},
                    "stage": {"type": "string"},
                    "street": {"type": "string"},
                    "community": {"type": "string"},
                    "grid": {"type": "string"},
                    "lat": {"type": "number"},
                    "lon": {"type": "number"},
                    "overdue": {"type": "boolean"}
                }
            }},
            "truncated": {"type": "boolean", "description": "More open requests with points exist than the answer carries (at most 5000)."}
        }
    })
}

/// The three ranking operations.
fn rankings() -> Vec<Operation> {
    vec![
        ranking(
            "/api/v1/rankings/departments",
            "rankings",
            "Department ranking",
            "Composite of response, resolution and satisfaction rates and, when weighted, bottom-up ratings; each row carries its rank overall, its tier (from the directory's kind of unit) and its rank within the tier. Every role that reads aggregates.",
            vec![query(
                "tier",
                pattern("^(district_department|street_town|public_service)$"),
                "Only this tier (ranks within it are `tier_rank`).",
            )],
        ),
        ranking(
            "/api/v1/rankings/streets",
            "street_rankings",
            "Street ranking",
            "Composite of the rates of every request located in each street and received in the month. Every role that reads aggregates.",
            vec![],
        ),
        ranking(
            "/api/v1/rankings/communities",
            "community_rankings",
            "Community ranking",
            "Composite of the rates of every request located in each community and received in the month. Every role that reads aggregates.",
            vec![query(
                "street",
                text(),
                "Only the communities of this street.",
            )],
        ),
    ]
}
