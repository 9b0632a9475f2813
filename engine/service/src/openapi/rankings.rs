//! The rankings of the read models in the OpenAPI document: departments overall and within
//! their tiers, streets, and communities (`projections/src/http.rs`; formulas in
//! docs/metrics.md, "Assessment").

use super::operation::*;
use super::routes::{READ_MODEL_ERRORS, limit, min_position, offset_cursor, weight};

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

/// The three ranking operations.
pub fn operations() -> Vec<Operation> {
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
