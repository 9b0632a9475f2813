//! The two ways a notification leaves the engine: a JetStream publish (residents:
//! `<prefix>.notify.<kind>`; units: `<prefix>.units.<unit_kind>.<code>.<kind>`; streams
//! created idempotently, `Nats-Msg-Id` = notification id) and an HTTP POST to a webhook (a
//! resident gateway's or a unit's), signed with HMAC-SHA256.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;

use super::channels::{UNIT_NATS, UNIT_WEBHOOK, UnitChannels};
use super::config::{NotifyConfig, WebhookConfig};
use super::document::NotificationDocument;

/// Header carrying `sha256=<hex HMAC-SHA256 of the body under the webhook's secret>`.
pub const SIGNATURE_HEADER: &str = "X-Bianmin-Signature";
/// Header carrying the notification id (receivers deduplicate on it).
pub const NOTIFICATION_ID_HEADER: &str = "X-Bianmin-Notification-Id";

/// The hex HMAC-SHA256 of `body` under `secret`, as sent in [`SIGNATURE_HEADER`] after
/// `sha256=`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Sends notifications over NATS and HTTP.
#[derive(Debug)]
pub struct Sender {
    nats: Option<(async_nats::Client, String, stream::Config)>,
    stream_ready: OnceCell<()>,
    units_stream: Option<stream::Config>,
    units_ready: OnceCell<()>,
    http: reqwest::Client,
    names: schemas::Names,
    webhooks: Vec<WebhookConfig>,
    units: UnitChannels,
}

impl Sender {
    /// A sender for `cfg`; `nats` is the client when the engine runs on JetStream, with the
    /// replicas of the instance's streams.
    pub fn new(
        cfg: &NotifyConfig,
        names: &schemas::Names,
        nats: Option<(async_nats::Client, usize)>,
        units: UnitChannels,
    ) -> Result<Sender, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.webhook_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let units_stream = nats
            .as_ref()
            .map(|(_, replicas)| cfg.units_stream_config(names, *replicas));
        Ok(Sender {
            units_stream,
            units_ready: OnceCell::new(),
            units,
            nats: nats.map(|(client, replicas)| {
                let stream_config = cfg.stream_config(names, replicas);
                (client, stream_config.name.clone(), stream_config)
            }),
            stream_ready: OnceCell::new(),
            http,
            names: names.clone(),
            webhooks: cfg.webhooks.clone(),
        })
    }

    /// The channels a notification of `kind` goes to: `nats` when on JetStream, and
    /// `webhook:<name>` for every webhook taking the kind.
    pub fn channels(&self, kind: super::NotifyKind) -> Vec<String> {
        let mut out = Vec::new();
        if self.nats.is_some() {
            out.push("nats".to_string());
        }
        for webhook in &self.webhooks {
            if webhook.kinds.is_empty() || webhook.kinds.contains(&kind) {
                out.push(format!("webhook:{}", webhook.name()));
            }
        }
        out
    }

    /// The unit channels in force.
    pub fn units(&self) -> &UnitChannels {
        &self.units
    }

    /// Whether the engine publishes on NATS.
    pub fn has_nats(&self) -> bool {
        self.nats.is_some()
    }

    /// Sends `document` (with its recipient) on `channel`; `Err` names why it failed.
    ///
    /// The JetStream stream keeps what is published for `notify.max_age_secs`, so what goes
    /// there carries no recipient: no name or phone outlives the delivery. Only a webhook,
    /// answered at once and signed, receives the recipient.
    pub async fn send(&self, channel: &str, document: &NotificationDocument) -> Result<(), String> {
        if channel == "nats" {
            let stored = NotificationDocument {
                recipient: None,
                ..document.clone()
            };
            let body = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
            return self.publish(&stored, body).await;
        }
        let body = serde_json::to_vec(document).map_err(|e| e.to_string())?;
        if channel == UNIT_NATS {
            return self.publish_to_unit(document, body).await;
        }
        let (url, secret, name) = match channel.strip_prefix(UNIT_WEBHOOK) {
            Some(name) => match self.units.webhook(name) {
                Some(hook) => (hook.url.as_str(), hook.secret.as_str(), name),
                None => return Err(format!("no unit webhook named `{name}` is in force")),
            },
            None => {
                let name = channel.strip_prefix("webhook:").unwrap_or(channel);
                let Some(webhook) = self.webhooks.iter().find(|w| w.name() == name) else {
                    return Err(format!("no webhook named `{name}` is configured"));
                };
                (webhook.url.as_str(), webhook.secret.as_str(), name)
            }
        };
        self.post(url, secret, name, document, body).await
    }

    async fn post(
        &self,
        url: &str,
        secret: &str,
        name: &str,
        document: &NotificationDocument,
        body: Vec<u8>,
    ) -> Result<(), String> {
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                SIGNATURE_HEADER,
                format!("sha256={}", signature(secret, &body)),
            )
            .header(NOTIFICATION_ID_HEADER, document.notification_id.to_string())
            .body(body)
            .send()
            .await
            .map_err(|e| format!("webhook `{name}`: {e}"))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("webhook `{name}` answered {status}"))
        }
    }

    /// Publishes a unit notification on `<prefix>.units.<unit_kind>.<code>.<kind>`.
    async fn publish_to_unit(
        &self,
        document: &NotificationDocument,
        body: Vec<u8>,
    ) -> Result<(), String> {
        let (Some((client, _, _)), Some(config)) = (&self.nats, &self.units_stream) else {
            return Err("NATS is not configured".into());
        };
        let unit = document
            .unit
            .as_deref()
            .and_then(super::channels::Unit::parse)
            .ok_or("a unit notification without a unit")?;
        let js = jetstream::new(client.clone());
        self.units_ready
            .get_or_try_init(|| async {
                js.create_or_update_stream(config.clone())
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("stream {}: {e}", config.name))
            })
            .await?;
        let subject = self
            .names
            .unit_subject(unit.kind, &unit.code, document.kind.as_str());
        publish_acknowledged(&js, subject, document, body).await
    }

    async fn publish(&self, document: &NotificationDocument, body: Vec<u8>) -> Result<(), String> {
        let Some((client, name, config)) = &self.nats else {
            return Err("NATS is not configured".into());
        };
        let js = jetstream::new(client.clone());
        self.stream_ready
            .get_or_try_init(|| async {
                js.create_or_update_stream(config.clone())
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("stream {name}: {e}"))
            })
            .await?;
        let subject = self.names.notify_subject(document.kind.as_str());
        publish_acknowledged(&js, subject, document, body).await
    }
}

/// Publishes with `Nats-Msg-Id` = the notification id and waits for JetStream to store it.
async fn publish_acknowledged(
    js: &jetstream::Context,
    subject: String,
    document: &NotificationDocument,
    body: Vec<u8>,
) -> Result<(), String> {
    let mut headers = HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        document.notification_id.to_string().as_str(),
    );
    js.publish_with_headers(subject, headers, body.into())
        .await
        .map_err(|e| format!("publish: {e}"))?
        .await
        .map_err(|e| format!("publish acknowledgement: {e}"))?;
    Ok(())
}
