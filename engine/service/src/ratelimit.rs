//! Per-client rate limiting of intake (`POST /api/v1/requests`): a token bucket per caller.
//!
//! The caller is keyed by its credentials as sent, before authentication: the SHA-256 of the
//! bearer token, else the id in the dev actor header, else the peer address when the server
//! records it (`ConnectInfo`), else one shared anonymous bucket. Keying on what was sent, not
//! on who it turned out to be, means a flood of bad tokens is limited too and costs no
//! authentication work. Over the limit the answer is `429 {code: "rate_limited"}` with
//! `Retry-After`, and nothing reaches the command service.
//!
//! Wiring (in the router):
//! ```text
//! let limiter = IntakeRateLimiter::new(RateLimitConfig::default());
//! router.layer(axum::middleware::from_fn_with_state(limiter, ratelimit::limit_intake))
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use schemas::ErrorBody;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::DEV_ACTOR_HEADER;

/// The path whose `POST` is limited.
pub const INTAKE_PATH: &str = "/api/v1/requests";

/// Limits per client.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained intakes per second per client; 0 switches limiting off.
    pub per_second: f64,
    /// Intakes a client may send at once after being quiet (bucket size).
    pub burst: u32,
    /// Most clients tracked; beyond it, idle (full) buckets are forgotten first.
    pub max_clients: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_second: 200.0,
            burst: 400,
            max_clients: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refreshed: Instant,
}

/// The shared limiter state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct IntakeRateLimiter {
    config: RateLimitConfig,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse; the client may retry after this long.
    Refuse(Duration),
}

impl IntakeRateLimiter {
    /// A limiter with `config`.
    pub fn new(config: RateLimitConfig) -> IntakeRateLimiter {
        IntakeRateLimiter {
            config,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The configuration.
    pub fn config(&self) -> RateLimitConfig {
        self.config
    }

    /// Takes one token from `client`'s bucket at `now`.
    pub fn check(&self, client: &str, now: Instant) -> Decision {
        let RateLimitConfig {
            per_second,
            burst,
            max_clients,
        } = self.config;
        if per_second <= 0.0 || !per_second.is_finite() {
            return Decision::Allow;
        }
        let capacity = f64::from(burst.max(1));
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !buckets.contains_key(client) && buckets.len() >= max_clients.max(1) {
            // Forget clients whose bucket has refilled (they lose nothing), then, if still
            // full, the longest idle one.
            buckets.retain(|_, b| refill(b, now, per_second, capacity) < capacity);
            if buckets.len() >= max_clients.max(1)
                && let Some(oldest) = buckets
                    .iter()
                    .min_by_key(|(_, b)| b.refreshed)
                    .map(|(k, _)| k.clone())
            {
                buckets.remove(&oldest);
            }
        }
        let bucket = buckets.entry(client.to_string()).or_insert(Bucket {
            tokens: capacity,
            refreshed: now,
        });
        let tokens = refill(bucket, now, per_second, capacity);
        bucket.refreshed = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            Decision::Allow
        } else {
            bucket.tokens = tokens;
            let wait = (1.0 - tokens) / per_second;
            Decision::Refuse(Duration::from_secs_f64(wait.clamp(0.001, 3600.0)))
        }
    }
}

fn refill(bucket: &Bucket, now: Instant, per_second: f64, capacity: f64) -> f64 {
    let elapsed = now
        .saturating_duration_since(bucket.refreshed)
        .as_secs_f64();
    (bucket.tokens + elapsed * per_second).min(capacity)
}

/// The client key of a request (see the module docs).
pub fn client_key(request: &Request) -> String {
    let headers = request.headers();
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    {
        return format!(
            "token:{}",
            hex::encode(Sha256::digest(token.trim().as_bytes()))
        );
    }
    if let Some(id) = headers
        .get(DEV_ACTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
    {
        return format!("actor:{}", id.trim());
    }
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        return format!("peer:{}", peer.ip());
    }
    "anonymous".to_string()
}

/// The middleware: limits `POST /api/v1/requests`, passes everything else through.
pub async fn limit_intake(
    State(limiter): State<IntakeRateLimiter>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST || request.uri().path() != INTAKE_PATH {
        return next.run(request).await;
    }
    let key = client_key(&request);
    match limiter.check(&key, Instant::now()) {
        Decision::Allow => next.run(request).await,
        Decision::Refuse(wait) => refused(wait, "intake requests"),
    }
}

/// The client key of a route open to anyone: the peer address alone (else one shared
/// bucket). Headers are not trusted there, since a caller could mint a new token or actor
/// header per request to get a fresh bucket each time.
pub fn peer_key(request: &Request) -> String {
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => format!("peer:{}", peer.ip()),
        None => "anonymous".to_string(),
    }
}

/// The middleware of a router open to anyone and limited as a whole (the residents' status
/// lookup): every request takes a token from its peer's bucket ([`peer_key`]) before the
/// handler sees it.
pub async fn limit_by_peer(
    State(limiter): State<IntakeRateLimiter>,
    request: Request,
    next: Next,
) -> Response {
    let key = peer_key(&request);
    match limiter.check(&key, Instant::now()) {
        Decision::Allow => next.run(request).await,
        Decision::Refuse(wait) => refused(wait, "requests"),
    }
}

fn refused(wait: Duration, what: &str) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let body = ErrorBody {
        code: "rate_limited".into(),
        message: format!("too many {what} from this client; retry in {seconds} s"),
        field: None,
    };
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    fn limiter(per_second: f64, burst: u32, max_clients: usize) -> IntakeRateLimiter {
        IntakeRateLimiter::new(RateLimitConfig {
            per_second,
            burst,
            max_clients,
        })
    }

    #[test]
    fn a_burst_passes_then_the_client_waits_for_refill() {
        let limiter = limiter(2.0, 3, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("a", t0), Decision::Allow);
        }
        let Decision::Refuse(wait) = limiter.check("a", t0) else {
            panic!("the fourth at once is refused");
        };
        assert!(wait <= Duration::from_millis(500) && wait > Duration::ZERO);
        // Another client is not affected.
        assert_eq!(limiter.check("b", t0), Decision::Allow);
        // Half a second refills one token at 2/s.
        assert_eq!(
            limiter.check("a", t0 + Duration::from_millis(500)),
            Decision::Allow
        );
        assert!(matches!(
            limiter.check("a", t0 + Duration::from_millis(500)),
            Decision::Refuse(_)
        ));
    }

    #[test]
    fn zero_rate_means_unlimited_and_the_client_table_stays_bounded() {
        let off = limiter(0.0, 1, 1);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(off.check("a", t0), Decision::Allow);
        }
        let small = limiter(1.0, 1, 4);
        for i in 0..100 {
            let _ = small.check(&format!("c{i}"), t0 + Duration::from_millis(i));
        }
        assert!(small.buckets.lock().unwrap().len() <= 4);
    }

    #[tokio::test]
    async fn only_intake_is_limited_and_refusals_are_429_with_retry_after() {
        let limiter = limiter(0.001, 2, 10);
        let app = Router::new()
            .route(INTAKE_PATH, post(|| async { StatusCode::CREATED }))
            .route("/healthz", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(limiter, limit_intake));
        let intake = |actor: &str| {
            axum::http::Request::post(INTAKE_PATH)
                .header(DEV_ACTOR_HEADER, actor)
                .body(Body::empty())
                .unwrap()
        };
        for _ in 0..2 {
            let r = app
                .clone()
                .oneshot(intake("sys;intake_system"))
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
        }
        let r = app
            .clone()
            .oneshot(intake("sys;intake_system"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().get(header::RETRY_AFTER).is_some());
        let r = app
            .clone()
            .oneshot(intake("other;intake_system"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        for _ in 0..5 {
            let r = app
                .clone()
                .oneshot(
                    axum::http::Request::get("/healthz")
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    }
}
