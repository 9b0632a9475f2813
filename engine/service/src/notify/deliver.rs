//! The two ways a notification leaves the engine: a JetStream publish to
//! `<prefix>.notify.<kind>` (stream created idempotently, `Nats-Msg-Id` = notification id) and
//! an HTTP POST to a configured webhook, signed with HMAC-SHA256.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;

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
    http: reqwest::Client,
    names: schemas::Names,
    webhooks: Vec<WebhookConfig>,
}

impl Sender {
    /// A sender for `cfg`; `nats` is the client when the engine runs on JetStream, with the
    /// replicas of the instance's streams.
    pub fn new(
        cfg: &NotifyConfig,
        names: &schemas::Names,
        nats: Option<(async_nats::Client, usize)>,
    ) -> Result<Sender, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.webhook_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Sender {
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
        let name = channel.strip_prefix("webhook:").unwrap_or(channel);
        let Some(webhook) = self.webhooks.iter().find(|w| w.name() == name) else {
            return Err(format!("no webhook named `{name}` is configured"));
        };
        let response = self
            .http
            .post(&webhook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                SIGNATURE_HEADER,
                format!("sha256={}", signature(&webhook.secret, &body)),
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
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            document.notification_id.to_string().as_str(),
        );
        let subject = self.names.notify_subject(document.kind.as_str());
        js.publish_with_headers(subject, headers, body.into())
            .await
            .map_err(|e| format!("publish: {e}"))?
            .await
            .map_err(|e| format!("publish acknowledgement: {e}"))?;
        Ok(())
    }
}
