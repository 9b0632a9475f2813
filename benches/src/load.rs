//! Loading the engine: request lifecycles over NATS request-reply or HTTP (many in flight),
//! projection lag sampled while that runs, then history and dashboard reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use futures::StreamExt;
use serde_json::Value;
use uuid::Uuid;

use crate::city::{City, Lifecycle, Who};
use crate::stats::{Samples, Throughput};

/// The header the engine sets on every NATS error reply.
const ERROR_HEADER: &str = "Bianmin-Error";
/// The dev identity header.
const ACTOR_HEADER: &str = "X-Bianmin-Actor";

/// Which edge commands go through.
#[derive(Debug, Clone)]
pub enum Edge {
    /// NATS request-reply on `<prefix>.intake.<channel>` and `<prefix>.cmd.<action>`.
    Nats {
        /// The connection.
        client: async_nats::Client,
        /// Subject prefix.
        prefix: String,
    },
    /// HTTP on the engine's API.
    Http {
        /// Keep-alive client.
        client: reqwest::Client,
        /// `http://127.0.0.1:<port>`.
        base_url: String,
    },
}

/// What one load phase did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Commands answered successfully (intake included).
    pub commands: u64,
    /// Events those commands recorded.
    pub events: u64,
    /// Latency of every successful command.
    pub latency: Samples,
    /// Failed commands by error code.
    pub errors: BTreeMap<String, u64>,
    /// Requests whose whole lifecycle went through.
    pub completed: Vec<Uuid>,
    /// Wall time of the phase.
    pub throughput: Option<Throughput>,
}

impl Outcome {
    /// Failed commands, all codes.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Runs the lifecycles of requests `range` through `edge`, `in_flight` requests at once.
pub async fn drive(
    edge: &Edge,
    city: &City,
    tag: &str,
    range: std::ops::Range<u64>,
    in_flight: usize,
) -> Outcome {
    let started = Instant::now();
    let mut lives = futures::stream::iter(range)
        .map(|i| {
            let life = city.lifecycle(i, tag);
            async move { run_life(edge, life, i).await }
        })
        .buffer_unordered(in_flight);
    let mut out = Outcome::default();
    while let Some(one) = lives.next().await {
        out.commands += one.commands;
        out.events += one.events;
        out.latency.extend(one.latency);
        for (code, n) in one.errors {
            *out.errors.entry(code).or_default() += n;
        }
        out.completed.extend(one.completed);
    }
    out.throughput = Some(Throughput::new(out.commands, started.elapsed()));
    out
}

/// One command's answer: events recorded, or the error code.
type Answer = Result<(Option<Uuid>, u64), String>;

async fn run_life(edge: &Edge, life: Lifecycle, index: u64) -> Outcome {
    let mut out = Outcome::default();
    let t = Instant::now();
    let request_id = match intake(edge, &life).await {
        Ok((Some(id), events)) => {
            out.latency.push(t.elapsed());
            out.commands += 1;
            out.events += events;
            id
        }
        Ok((None, _)) => {
            *out.errors.entry("intake_without_id".into()).or_default() += 1;
            return out;
        }
        Err(code) => {
            *out.errors.entry(format!("intake:{code}")).or_default() += 1;
            return out;
        }
    };
    for (n, step) in life.steps.iter().enumerate() {
        let actor = step.who.header(&life.community);
        // A stable idempotency key per (request, step): a retry would not apply twice.
        let command_id = Uuid::from_u64_pair(index, n as u64 + 1);
        let t = Instant::now();
        match command(
            edge,
            request_id,
            command_id,
            step.action,
            &step.body,
            &actor,
        )
        .await
        {
            Ok((_, events)) => {
                out.latency.push(t.elapsed());
                out.commands += 1;
                out.events += events;
            }
            Err(code) => {
                *out.errors
                    .entry(format!("{}:{code}", step.action))
                    .or_default() += 1;
                return out;
            }
        }
    }
    out.completed.push(request_id);
    out
}

async fn intake(edge: &Edge, life: &Lifecycle) -> Answer {
    let actor = Who::Intake.header(&life.community);
    match edge {
        Edge::Nats { client, prefix } => {
            let subject = format!("{prefix}.intake.{}", life.channel);
            nats_call(client, subject, &life.intake, &actor)
                .await
                .map(|v| (request_id(&v), 1))
        }
        Edge::Http { client, base_url } => {
            let url = format!("{base_url}/api/v1/requests");
            http_call(client.post(url).json(&life.intake), &actor)
                .await
                .map(|v| (request_id(&v), 1))
        }
    }
}

async fn command(
    edge: &Edge,
    request: Uuid,
    command_id: Uuid,
    action: &str,
    body: &Value,
    actor: &str,
) -> Answer {
    let reply = match edge {
        Edge::Nats { client, prefix } => {
            let mut command = body.clone();
            if let Some(object) = command.as_object_mut() {
                object.insert("action".into(), Value::String(action.into()));
            }
            let envelope = serde_json::json!({"command_id": command_id, "request_id": request, "command": command});
            nats_call(client, format!("{prefix}.cmd.{action}"), &envelope, actor).await?
        }
        Edge::Http { client, base_url } => {
            let url = format!("{base_url}/api/v1/requests/{request}/{action}");
            let call = client
                .post(url)
                .header("Idempotency-Key", command_id.to_string())
                .json(body);
            http_call(call, actor).await?
        }
    };
    let events = reply
        .get("events")
        .and_then(|e| e.as_array())
        .map_or(0, |e| e.len() as u64);
    Ok((request_id(&reply), events))
}

fn request_id(reply: &Value) -> Option<Uuid> {
    reply
        .get("request_id")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
}

async fn nats_call(
    client: &async_nats::Client,
    subject: String,
    payload: &Value,
    actor: &str,
) -> Result<Value, String> {
    let mut headers = HeaderMap::new();
    headers.insert(ACTOR_HEADER, actor);
    let bytes = serde_json::to_vec(payload).map_err(|e| format!("encode: {e}"))?;
    let message = client
        .request_with_headers(subject, headers, bytes.into())
        .await
        .map_err(|e| format!("nats_{:?}", e.kind()).to_lowercase())?;
    if let Some(code) = message.headers.as_ref().and_then(|h| h.get(ERROR_HEADER)) {
        return Err(code.to_string());
    }
    serde_json::from_slice(&message.payload).map_err(|_| "reply_not_json".into())
}

async fn http_call(call: reqwest::RequestBuilder, actor: &str) -> Result<Value, String> {
    let response = call
        .header(ACTOR_HEADER, actor)
        .send()
        .await
        .map_err(|_| "http_transport".to_string())?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let code = body
            .get("code")
            .or_else(|| body.get("error").and_then(|e| e.get("code")))
            .and_then(|c| c.as_str())
            .map_or_else(|| format!("http_{}", status.as_u16()), str::to_string);
        return Err(code);
    }
    Ok(body)
}

/// Samples projection lag until `stop` is set: every `every`, it reads the log head (the
/// stream's last sequence) and the slowest projector's checkpoint; a position's lag is the time
/// from when the head was first seen at or past it to when the checkpoint was.
pub async fn sample_lag(
    js: async_nats::jetstream::Context,
    stream: String,
    pg_url: String,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Samples> {
    let mut conn = crate::scratch::connect(&pg_url).await?;
    let mut pending: std::collections::VecDeque<(u64, Instant)> = Default::default();
    let mut samples = Samples::default();
    let mut last_head = 0u64;
    let mut drain_deadline: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let head = match js.get_stream(&stream).await {
            Ok(mut s) => s
                .info()
                .await
                .map(|i| i.state.last_sequence)
                .unwrap_or(last_head),
            Err(_) => last_head,
        };
        if head > last_head {
            pending.push_back((head, now));
            last_head = head;
        }
        let checkpoint: Option<i64> =
            sqlx::query_scalar("SELECT min(position) FROM projection_checkpoints")
                .fetch_one(&mut conn)
                .await
                .ok()
                .flatten();
        let checkpoint = checkpoint.unwrap_or(0).max(0) as u64;
        while let Some(&(position, seen)) = pending.front() {
            if position > checkpoint {
                break;
            }
            samples.push(now.duration_since(seen));
            pending.pop_front();
        }
        if stop.load(Ordering::Relaxed) {
            // Let the projector finish the tail, for at most 30 s.
            let deadline = *drain_deadline.get_or_insert(now + Duration::from_secs(30));
            if pending.is_empty() || now > deadline {
                break;
            }
        }
        tokio::time::sleep(every).await;
    }
    Ok(samples)
}

/// `GET` each of `paths` in turn, `rounds` times over; returns the latencies, the number of
/// failures, and the mean number of array items in successful answers.
pub async fn read_many(
    client: &reqwest::Client,
    base_url: &str,
    paths: &[String],
    actor: &str,
    concurrency: usize,
) -> (Samples, u64, Option<f64>) {
    let mut calls = futures::stream::iter(paths.iter())
        .map(|path| async move {
            let t = Instant::now();
            let result = client
                .get(format!("{base_url}{path}"))
                .header(ACTOR_HEADER, actor)
                .send()
                .await;
            match result {
                Ok(r) if r.status().is_success() => {
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    Some((t.elapsed(), body.as_array().map(|a| a.len())))
                }
                _ => None,
            }
        })
        .buffer_unordered(concurrency);
    let mut samples = Samples::default();
    let (mut failures, mut items, mut arrays) = (0u64, 0usize, 0usize);
    while let Some(call) = calls.next().await {
        match call {
            Some((elapsed, len)) => {
                samples.push(elapsed);
                if let Some(len) = len {
                    items += len;
                    arrays += 1;
                }
            }
            None => failures += 1,
        }
    }
    let mean = (arrays > 0).then(|| items as f64 / arrays as f64);
    (samples, failures, mean)
}
