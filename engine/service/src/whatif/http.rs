//! `POST /api/v1/policy/whatif`: a proposed profile (TOML text, or a built-in profile's name)
//! over a period, compared with the recorded figures. Supervisors, auditors and the system
//! role only; errors are `{code, message, field}`. Merged into the read-model router, whose
//! projections handle carries the deployment's assessment (weights and tiers).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use projections::Projections;
use projections::query::{Dim, Period, Weights};
use schemas::{Role, Timestamp};
use serde::Deserialize;

use super::{WhatIfReport, WhatIfSpec, named_profile, whatif};
use crate::http::error::{ApiError, ApiJson};
use crate::http::{AppState, Caller};
use crate::reports::ReportError;

/// The body of `POST /api/v1/policy/whatif`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatIfBody {
    /// The proposed profile's TOML text (as in `deploy/policy/profiles/`).
    #[serde(default)]
    pub profile: Option<String>,
    /// Or a built-in profile by name (`community-station`, `city-hotline-12345`).
    #[serde(default)]
    pub profile_name: Option<String>,
    /// Start of the period (inclusive), RFC 3339.
    pub from: Timestamp,
    /// End of the period (exclusive), RFC 3339.
    pub to: Timestamp,
    /// Period grain of the rates (default month).
    #[serde(default)]
    pub period: Period,
    /// Dimensions to group the rates by.
    #[serde(default)]
    pub group_by: Vec<Dim>,
    /// Proposed composite weights; the deployment's when absent.
    #[serde(default)]
    pub weights: Option<Weights>,
}

/// The what-if route, over the live read models' handle (read for its assessment only).
pub fn router(projections: Projections) -> Router<AppState> {
    Router::new().route(
        "/api/v1/policy/whatif",
        post(
            move |state: State<AppState>, caller: Caller, body: ApiJson<WhatIfBody>| {
                let projections = projections.clone();
                async move { handle(state, caller, body, projections).await }
            },
        ),
    )
}

async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<WhatIfBody>,
    projections: Projections,
) -> Result<Json<WhatIfReport>, ApiError> {
    if !matches!(
        caller.0.role,
        Role::Supervisor | Role::Auditor | Role::System
    ) {
        return Err(ApiError::forbidden(format!(
            "role `{}` may not run policy what-ifs",
            caller.0.role.as_str()
        )));
    }
    let spec = spec_of(body)?;
    let commands = &state.commands;
    let report = whatif(
        commands.log(),
        commands.policy(),
        projections.assessment(),
        &spec,
        None,
    )
    .await?;
    Ok(Json(report))
}

/// The spec of a body: exactly one of `profile` and `profile_name`.
fn spec_of(body: WhatIfBody) -> Result<WhatIfSpec, ReportError> {
    let (profile_name, profile_text) = match (body.profile, body.profile_name) {
        (Some(text), None) => ("profile".to_string(), text),
        (None, Some(name)) => (name.clone(), named_profile(&name)?.to_string()),
        _ => {
            return Err(ReportError::invalid(
                "profile",
                "give exactly one of `profile` (TOML text) and `profile_name`",
            ));
        }
    };
    Ok(WhatIfSpec {
        profile_name,
        profile_text,
        from: body.from,
        to: body.to,
        period: body.period,
        group_by: body.group_by,
        weights: body.weights,
    })
}
