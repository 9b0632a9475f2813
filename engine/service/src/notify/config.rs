//! The `[notify]` configuration section.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::stream;
use serde::{Deserialize, Serialize};

use super::kind::NotifyKind;

/// Settings of resident notifications (`[notify]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Run the notifier inside `bianmin serve`. It runs only when there is somewhere to send:
    /// the JetStream log (NATS configured) or at least one webhook.
    pub enabled: bool,
    /// How long the notification stream keeps a document, seconds (default 3 days: long
    /// enough for a gateway consumer to be down over a weekend, short enough that the
    /// stream is no archive). Documents there carry no recipient either way.
    pub max_age_secs: u64,
    /// A template file replacing the built-in `deploy/notify/templates.toml`.
    pub templates_file: Option<PathBuf>,
    /// Locale of the texts (falls back to the template set's default locale).
    pub locale: String,
    /// The kinds residents are told about.
    pub kinds: Vec<NotifyKind>,
    /// Attempts per notification and channel before it goes to the dead-letter list.
    pub max_attempts: u32,
    /// Delay after the first failed attempt; doubles per attempt, with jitter.
    pub retry_initial_ms: u64,
    /// Longest delay between attempts.
    pub retry_max_ms: u64,
    /// How often due deliveries are looked for when nothing wakes the sender.
    pub poll_interval_ms: u64,
    /// Timeout of one webhook POST.
    pub webhook_timeout_ms: u64,
    /// HTTP webhooks of resident gateways (SMS, WeChat, phone system).
    pub webhooks: Vec<WebhookConfig>,
    /// The unit delivery channels (reference data; `deploy/policy/channels.toml` is the demo
    /// district's). None: nothing is delivered to units.
    pub channels_file: Option<PathBuf>,
    /// The keys of the unit webhooks' signatures, by the name the channels file gives them.
    pub channel_secrets: BTreeMap<String, String>,
}

/// One resident-gateway webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Name used in the channel (`webhook:<name>`) and the notification id; defaults to the
    /// URL. Keep it stable: renaming a webhook makes its notifications new ones.
    #[serde(default)]
    pub name: Option<String>,
    /// Where to POST the JSON document.
    pub url: String,
    /// Kinds it takes; empty: every kind.
    #[serde(default)]
    pub kinds: Vec<NotifyKind>,
    /// Key of the HMAC-SHA256 signature header.
    pub secret: String,
}

impl WebhookConfig {
    /// Its name (the URL when none is configured).
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.url)
    }
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            enabled: true,
            max_age_secs: 3 * 24 * 3600,
            templates_file: None,
            locale: "zh-CN".into(),
            kinds: NotifyKind::ALL.to_vec(),
            max_attempts: 8,
            retry_initial_ms: 2_000,
            retry_max_ms: 600_000,
            poll_interval_ms: 1_000,
            webhook_timeout_ms: 10_000,
            webhooks: Vec::new(),
            channels_file: None,
            channel_secrets: BTreeMap::new(),
        }
    }
}

impl NotifyConfig {
    /// Checks ranges and URLs.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts == 0 {
            return Err("notify.max_attempts must be positive".into());
        }
        if self.retry_initial_ms == 0 || self.retry_max_ms < self.retry_initial_ms {
            return Err("notify.retry_initial_ms must be positive and at most retry_max_ms".into());
        }
        if self.poll_interval_ms < 10 {
            return Err("notify.poll_interval_ms must be at least 10".into());
        }
        if self.webhook_timeout_ms == 0 {
            return Err("notify.webhook_timeout_ms must be positive".into());
        }
        if self.max_age_secs == 0 {
            return Err(
                "notify.max_age_secs must be positive (0 would keep documents forever)".into(),
            );
        }
        let mut names = std::collections::HashSet::new();
        for webhook in &self.webhooks {
            if !(webhook.url.starts_with("http://") || webhook.url.starts_with("https://")) {
                return Err(format!(
                    "notify.webhooks: `{}` is not an http(s) URL",
                    webhook.name()
                ));
            }
            if webhook.secret.is_empty() {
                return Err(format!(
                    "notify.webhooks: `{}` needs a secret",
                    webhook.name()
                ));
            }
            if !names.insert(webhook.name().to_string()) {
                return Err(format!(
                    "notify.webhooks: the name `{}` is used twice",
                    webhook.name()
                ));
            }
        }
        Ok(())
    }

    /// The stream configuration: file storage, deduplication on notification ids, `replicas`
    /// as every stream of the instance (`nats.replicas`).
    pub fn stream_config(&self, names: &schemas::Names, replicas: usize) -> stream::Config {
        stream::Config {
            name: names.notify_stream(),
            description: Some(
                "Bianmin resident notifications (references and texts, no contact data)".into(),
            ),
            subjects: vec![names.notify_wildcard()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            num_replicas: replicas,
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::from_secs(self.max_age_secs),
            ..Default::default()
        }
    }

    /// The stream of unit notifications, set like the residents' one.
    pub fn units_stream_config(&self, names: &schemas::Names, replicas: usize) -> stream::Config {
        stream::Config {
            name: names.units_stream(),
            description: Some("Bianmin unit notifications (dispatch, supervision)".into()),
            subjects: vec![names.units_wildcard()],
            ..self.stream_config(names, replicas)
        }
    }

    /// The delay before attempt `attempts + 1` after `attempts` failures, before jitter.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let delay = self.retry_initial_ms.saturating_mul(1u64 << exp);
        Duration::from_millis(delay.min(self.retry_max_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg = NotifyConfig {
            retry_initial_ms: 100,
            retry_max_ms: 1_000,
            ..NotifyConfig::default()
        };
        let delays: Vec<u64> = (1..=6).map(|a| cfg.backoff(a).as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn the_printed_configuration_masks_webhook_secrets() {
        let mut config = crate::config::Config::default();
        config.notify.webhooks = vec![WebhookConfig {
            name: Some("sms".into()),
            url: "http://127.0.0.1:9/notify".into(),
            kinds: vec![],
            secret: "very-secret-key".into(),
        }];
        let printed = config.masked_toml();
        assert!(!printed.contains("very-secret-key"), "{printed}");
        assert!(printed.contains("http://127.0.0.1:9/notify"));
    }

    #[test]
    fn webhooks_need_a_url_a_secret_and_a_unique_name() {
        let hook = |url: &str, secret: &str| WebhookConfig {
            name: None,
            url: url.into(),
            kinds: vec![],
            secret: secret.into(),
        };
        let with = |hooks| NotifyConfig {
            webhooks: hooks,
            ..NotifyConfig::default()
        };
        assert!(
            with(vec![hook("http://127.0.0.1:1/x", "k")])
                .validate()
                .is_ok()
        );
        assert!(with(vec![hook("ftp://x", "k")]).validate().is_err());
        assert!(
            with(vec![hook("http://127.0.0.1:1/x", "")])
                .validate()
                .is_err()
        );
        assert!(
            with(vec![hook("http://a/x", "k"), hook("http://a/x", "k")])
                .validate()
                .is_err()
        );
    }
}
