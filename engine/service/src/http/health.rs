//! Liveness, readiness and metrics endpoints.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// `GET /healthz`: 200 while the process serves.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: the state of every part, `{"ready", "status", "parts": {"log": "ok", …}}`.
/// 503 (`ready: false`, with `code`, `message`, `field`) when the event log does not answer:
/// nothing can be recorded. A read-model part that is not reachable (`projections`,
/// `notifications`) leaves it 200 with `status: "degraded"`: intake and commands work, the
/// read API answers 503 until the part is back, and the projectors catch up from the log.
/// Quarantined log records (see [`engine_log::quarantine`]) also make it `degraded`, listed
/// under `quarantined` with position, request, reason and when this process first read them.
/// The `calendar` part warns (`degraded`) `policy.calendar_warn_days` days before the loaded
/// working calendar ends, and once it has (see [`crate::calendar`]). `leases` names this
/// process in the lease bucket and the singleton workers it runs now ([`crate::lease`]);
/// a replica holding none is as ready as one holding all.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let log = state.commands.log().ping().await;
    let mut parts = serde_json::Map::new();
    parts.insert(
        "log".into(),
        match &log {
            Ok(()) => "ok".into(),
            Err(error) => format!("unreachable: {error}").into(),
        },
    );
    for (part, status) in state.readiness.parts() {
        parts.insert(part.into(), status.into());
    }
    let quarantined = state.commands.log().quarantined();
    if !quarantined.is_empty() {
        let positions: Vec<String> = quarantined.iter().map(|q| q.position.to_string()).collect();
        parts.insert(
            "quarantine".into(),
            format!(
                "{} log records quarantined (positions {}); see `bianmin quarantine list`",
                quarantined.len(),
                positions.join(", ")
            )
            .into(),
        );
    }
    let coverage = calendar_coverage(&state);
    parts.insert("calendar".into(), coverage.readiness().into());
    let missing = state.readiness.missing();
    let failing = state.leases.failing();
    if !failing.is_empty() {
        let names: Vec<&str> = failing.keys().map(String::as_str).collect();
        parts.insert(
            "workers".into(),
            format!("failed and starting again: {}", names.join(", ")).into(),
        );
    }
    let degraded =
        !missing.is_empty() || !quarantined.is_empty() || coverage.warn || !failing.is_empty();
    let leases = serde_json::json!({
        "holder": state.leases.holder(),
        "held": state.leases.held(),
        "failing": failing,
    });
    match log {
        Ok(()) => Json(serde_json::json!({
            "ready": true,
            "status": if degraded { "degraded" } else { "ready" },
            "parts": parts,
            "quarantined": quarantined,
            "leases": leases,
        }))
        .into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "ready": false,
                "status": "unavailable",
                "code": "unavailable",
                "message": format!("event log: {error}"),
                "field": null,
                "parts": parts,
            })),
        )
            .into_response(),
    }
}

/// `GET /metrics`: every metric in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let metrics = state.commands.metrics();
            metrics.set_quarantined(state.commands.log().quarantined().len());
            let days_left = calendar_coverage(&state).days_left;
            // No covered year at all counts as run out.
            metrics.set_calendar_days_left(days_left.unwrap_or(-1));
            metrics.render()
        },
    )
        .into_response()
}

/// The coverage of the calendar in force, seen from the engine's clock.
fn calendar_coverage(state: &AppState) -> crate::calendar::Coverage {
    crate::calendar::Coverage::of(
        state.commands.policy().calendar(),
        state.commands.clock().now(),
        state.calendar_warn_days,
    )
}
