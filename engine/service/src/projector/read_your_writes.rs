//! Read-your-writes for the read models: a read with `?min_position=<n>` (the `position` a
//! command answered) waits, bounded by `projections.read_wait_ms`, until every projector has
//! applied the log up to `n`, then answers as usual; past the bound it answers 503
//! `not_caught_up` with `Retry-After`. Every read-model answer carries `Bianmin-Position`, the
//! log position the read models had reached when it was read, so a client can tell how fresh
//! it is without asking.
//!
//! The checkpoints are read from the read-model database, not from this process's projector
//! tasks, so the wait is right whichever replica runs the projectors.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use projections::Projections;
use tokio::time::Instant;

use crate::http::error::ApiError;

/// The query parameter a read waits on.
pub const MIN_POSITION: &str = "min_position";
/// The answer header naming the read models' position.
pub const POSITION_HEADER: &str = "bianmin-position";
/// How often the checkpoints are read while waiting.
const POLL: Duration = Duration::from_millis(20);

/// What the middleware needs: the read models and the longest wait.
#[derive(Clone)]
pub struct ReadYourWrites {
    /// The read-model database.
    pub projections: Projections,
    /// Longest wait for `min_position`.
    pub max_wait: Duration,
}

/// Waits for `?min_position=`, strips it from the query (the read routes do not know it) and
/// stamps `Bianmin-Position` on the answer.
pub async fn read_your_writes(
    State(state): State<ReadYourWrites>,
    mut request: Request,
    next: Next,
) -> Response {
    let (wanted, rest) = match split_min_position(request.uri()) {
        Ok(split) => split,
        Err(error) => return error.into_response(),
    };
    let reached = match wanted {
        Some(n) => match wait_for(&state, n).await {
            Ok(reached) => Some(reached),
            Err(answer) => return answer,
        },
        None => None,
    };
    if let Some(uri) = rest {
        *request.uri_mut() = uri;
    }
    let mut response = next.run(request).await;
    let position = match reached {
        Some(p) => Some(p),
        None => position(&state.projections).await.ok(),
    };
    if let Some(p) = position {
        response
            .headers_mut()
            .insert(POSITION_HEADER, HeaderValue::from(p));
    }
    response
}

/// The position every projector has applied: the least of their checkpoints.
async fn position(projections: &Projections) -> Result<u64, projections::ProjectionError> {
    let mut least = u64::MAX;
    for name in Projections::projector_names() {
        least = least.min(projections.checkpoint(name).await?);
    }
    Ok(least)
}

/// Polls the checkpoints until they reach `wanted` or the wait is over.
async fn wait_for(state: &ReadYourWrites, wanted: u64) -> Result<u64, Response> {
    let give_up = Instant::now() + state.max_wait;
    loop {
        let reached = position(&state.projections).await.map_err(|error| {
            tracing::warn!(%error, "read models unavailable while waiting for a position");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the read models cannot be read",
                None,
            )
            .into_response()
        })?;
        if reached >= wanted {
            return Ok(reached);
        }
        if Instant::now() >= give_up {
            let error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_caught_up",
                format!(
                    "the read models are at log position {reached}, not yet at {wanted}; \
                     retry shortly"
                ),
                Some(MIN_POSITION),
            );
            return Err(([(RETRY_AFTER, HeaderValue::from_static("1"))], error).into_response());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The `min_position` of `uri` and, when it was given, the URI without it.
fn split_min_position(uri: &Uri) -> Result<(Option<u64>, Option<Uri>), ApiError> {
    let Some(query) = uri.query() else {
        return Ok((None, None));
    };
    let mut wanted = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != MIN_POSITION {
            kept.push(pair);
            continue;
        }
        // Log positions are at most i64::MAX (the SQLite row id; JetStream's sequence
        // is kept within the same range by every reader).
        let n = value
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= i64::MAX as u64)
            .filter(|_| wanted.is_none() && value.bytes().all(|b| b.is_ascii_digit()));
        wanted = Some(n.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                "min_position must be a log position (a command's `position`), given once",
                Some(MIN_POSITION),
            )
        })?);
    }
    if wanted.is_none() {
        return Ok((None, None));
    }
    let path = uri.path();
    let rebuilt = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    let uri = rebuilt
        .parse()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "malformed", "invalid query", None))?;
    Ok((wanted, Some(uri)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(uri: &str) -> Result<(Option<u64>, Option<String>), u16> {
        split_min_position(&uri.parse().expect("uri"))
            .map(|(n, u)| (n, u.map(|u| u.to_string())))
            .map_err(|e| e.into_response().status().as_u16())
    }

    #[test]
    fn min_position_is_taken_out_of_the_query_and_the_rest_kept() {
        assert_eq!(split("/api/v1/overdue"), Ok((None, None)));
        assert_eq!(split("/api/v1/overdue?limit=5"), Ok((None, None)));
        assert_eq!(
            split("/api/v1/overdue?limit=5&min_position=42&community=sq"),
            Ok((
                Some(42),
                Some("/api/v1/overdue?limit=5&community=sq".into())
            ))
        );
        assert_eq!(
            split("/api/v1/stats?min_position=7"),
            Ok((Some(7), Some("/api/v1/stats".into())))
        );
    }

    #[test]
    fn a_bad_or_repeated_min_position_is_refused() {
        for uri in [
            "/api/v1/stats?min_position=",
            "/api/v1/stats?min_position=-1",
            "/api/v1/stats?min_position=%2B1",
            "/api/v1/stats?min_position=1&min_position=2",
            "/api/v1/stats?min_position=9223372036854775808",
        ] {
            assert_eq!(split(uri), Err(400), "{uri}");
        }
    }
}
