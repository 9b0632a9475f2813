//! What `/readyz` reports besides the log, part by part, and the routes that join the HTTP
//! server only once their database is reachable.
//!
//! Start-up never waits for the read models: when their database does not answer, the engine
//! serves intake and commands at once, a background task keeps connecting, and the read API,
//! the notification API and Open311 request lists join when it succeeds. Until then
//! [`Readiness`] names what is missing and why.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;

use crate::http::error::ApiError;

/// The state every part is in: `ok`, or what is missing (`unreachable: <error>`, `waiting
/// for …`). Cheap to clone; shared by the tasks that connect the parts and by `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    parts: Arc<Mutex<BTreeMap<&'static str, String>>>,
}

/// The state of a part that works.
pub const OK: &str = "ok";

impl Readiness {
    /// Records the state of `part`.
    pub fn set(&self, part: &'static str, state: impl Into<String>) {
        self.parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(part, state.into());
    }

    /// Every part and its state.
    pub fn parts(&self) -> BTreeMap<&'static str, String> {
        self.parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The parts that are not [`OK`], as `part (state)`.
    pub fn missing(&self) -> Vec<String> {
        self.parts()
            .into_iter()
            .filter(|(_, state)| state != OK)
            .map(|(part, state)| format!("{part} ({state})"))
            .collect()
    }
}

/// Marks a response of a late router that matched no route.
#[derive(Debug, Clone, Copy)]
struct Unmatched;

/// Routers added while the server runs; the server's fallback hands them every request no
/// route of its own matched.
#[derive(Debug, Clone, Default)]
pub struct LateRoutes {
    router: Arc<RwLock<Option<Router>>>,
    readiness: Readiness,
}

impl LateRoutes {
    /// Late routes whose absence is explained by `readiness`.
    pub fn new(readiness: Readiness) -> LateRoutes {
        LateRoutes {
            router: Arc::default(),
            readiness,
        }
    }

    /// Adds `router` (which must have no fallback of its own).
    pub fn add(&self, router: Router) {
        let mut slot = self.router.write().unwrap_or_else(PoisonError::into_inner);
        let merged = match slot.take() {
            Some(existing) => existing.merge(router),
            None => router,
        };
        *slot = Some(merged);
    }

    /// Answers `request` from the late routers; with no match, 503 naming the missing parts
    /// while some are missing (the route may be theirs), else `404 route_not_found` (under
    /// `/open311/v2/`, the spec's error array: [`crate::http::open311::discovery::unknown_path`]).
    pub async fn answer(self, request: Request) -> Response {
        let path = request.uri().path().to_string();
        let router = self
            .router
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(router) = router {
            let marked = router.fallback(|| async {
                let mut response = StatusCode::NOT_FOUND.into_response();
                response.extensions_mut().insert(Unmatched);
                response
            });
            let Ok(response) = marked.oneshot(request).await;
            if response.extensions().get::<Unmatched>().is_none() {
                return response;
            }
        }
        let missing = self.readiness.missing();
        if missing.is_empty() {
            // Open311 clients parse the spec's error array, also for a path no route serves.
            if path.starts_with(crate::http::open311::discovery::PREFIX) {
                return crate::http::open311::discovery::unknown_path(&path);
            }
            return ApiError::route_not_found().into_response();
        }
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!(
                "no such route, or it belongs to a part not reachable yet: {}; retry later",
                missing.join(", ")
            ),
            None,
        )
        .into_response()
    }
}
