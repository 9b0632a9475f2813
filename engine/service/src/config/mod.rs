//! The service's configuration: typed, layered with figment.
//!
//! Layers, later wins: built-in defaults ← optional TOML file (`--config` / `BIANMIN_CONFIG`)
//! ← environment (`BIANMIN_` prefix, `__` for nesting, e.g. `BIANMIN_HTTP__LISTEN`; plus the
//! shortcuts `BIANMIN_NATS_URL` and `DATABASE_URL`) ← command-line flags. Every key and its
//! default is written out, with the reason for it, in `deploy/config/bianmin.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::auth::TokenConfig;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Directory for embedded stores (SQLite event log, projections, contacts).
    pub data_dir: PathBuf,
    /// PostgreSQL URL for projections; `None` uses SQLite at `data_dir/projections.db`.
    pub database_url: Option<String>,
    /// HTTP server.
    pub http: HttpConfig,
    /// NATS JetStream event log.
    pub nats: NatsConfig,
    /// Policy profile.
    pub policy: PolicyConfig,
    /// In-memory caches.
    pub cache: CacheConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// Read-model projectors.
    pub projections: crate::projector::ProjectionsConfig,
    /// Resident privacy: who may read contact data, retention of contact keys.
    pub privacy: crate::privacy::PrivacyConfig,
    /// Daily digests of the log.
    pub digest: crate::audit::digest::DigestConfig,
    /// Periodic rate reports upward: stream, schedules.
    pub reports: crate::reports::schedule::ReportsConfig,
    /// Resident notifications: templates, retries, webhooks.
    pub notify: crate::notify::NotifyConfig,
    /// Open311 GeoReport v2 endpoints.
    pub open311: crate::http::open311::Open311Config,
    /// The commit signing key and the trusted public keys.
    pub signing: engine_log::signing::SigningConfig,
    /// The secret intake request ids are keyed with.
    pub intake_ids: crate::intake_ids::IntakeIdConfig,
    /// Where the contact store, the privacy ledger and the delivery table live.
    pub stores: crate::stores::StoresConfig,
    /// The leases of the workers that run once per instance (see [`crate::lease`]).
    pub leases: crate::lease::LeaseConfig,
    /// Stored attachments: size and type limits, Open311 `media_url` fetching.
    pub media: crate::media::MediaConfig,
}

/// HTTP server settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// A request that takes longer is answered 408 and abandoned.
    pub request_timeout_ms: u64,
    /// Requests served at once; more wait.
    pub concurrency_limit: usize,
    /// On shutdown, how long in-flight requests may take to finish.
    pub drain_timeout_ms: u64,
    /// Per-client rate limit of intake (`POST /api/v1/requests`).
    pub intake_rate_limit: crate::ratelimit::RateLimitConfig,
    /// Per-client rate limit of the residents' status lookup (`POST /api/v1/lookup`); low,
    /// so the four-digit check cannot be walked.
    pub lookup_rate_limit: crate::ratelimit::RateLimitConfig,
}

/// NATS JetStream settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL, or several separated by commas (seeds of a cluster, tried in order);
    /// `None` runs on the embedded SQLite log at `data_dir/events.db`. Userinfo in a URL
    /// (`nats://user:password@host`) is a login like `user` + `password`.
    pub url: Option<String>,
    /// User name, with `password` or `password_file`.
    pub user: Option<String>,
    /// The user's password; better `password_file` or the environment
    /// (`BIANMIN_NATS__PASSWORD`) than the TOML file.
    pub password: Option<Secret>,
    /// File holding the user's password (a trailing newline is ignored).
    pub password_file: Option<PathBuf>,
    /// Authentication token (server `authorization { token }`).
    pub token: Option<Secret>,
    /// File holding the token.
    pub token_file: Option<PathBuf>,
    /// File holding an nkey seed (`SU…`); the server lists the user's public key.
    pub nkey_seed_file: Option<PathBuf>,
    /// A `.creds` file (user JWT and nkey seed) for operator/JWT deployments.
    pub credentials_file: Option<PathBuf>,
    /// PEM file of the CA certificates that sign the servers' certificates.
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate, when the server verifies clients (with `tls_key_file`).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Refuse to talk to a server without TLS (also implied by `tls://` URLs).
    pub tls_required: bool,
    /// The connection name the server shows in its monitoring (`connz`); `None`: `bianmin`.
    pub connection_name: Option<String>,
    /// The stream holding the event log.
    pub stream: String,
    /// First token of every subject (`<prefix>.events.<id>`, `<prefix>.intake.<channel>`, …);
    /// every other stream, consumer and queue group is named from it (`<PREFIX>_INBOX`,
    /// `<prefix>-engine`), so two instances on one NATS server need only different prefixes
    /// and streams.
    pub subject_prefix: String,
    /// Stream replicas (3 in a clustered production deployment).
    pub replicas: usize,
    /// How long `bianmin serve` (and `project`, `supervise`) keeps trying, at start-up, to
    /// reach a NATS server that refuses connections, and then to create or reach the stream
    /// while JetStream answers "unavailable" (a cluster still electing its leaders).
    pub startup_wait_secs: u64,
}

/// Which policy profile to run under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// `community-station` or `city-hotline-12345`.
    pub profile: String,
    /// Optional TOML file overriding parts of the profile.
    pub profile_file: Option<PathBuf>,
    /// Optional catalogue file replacing the built-in catalogue.
    pub catalogue_file: Option<PathBuf>,
    /// Optional holiday calendar file replacing the built-in calendar.
    pub calendar_file: Option<PathBuf>,
    /// Directory of added calendar files (`*.toml`, loaded in name order after the base
    /// calendar); `bianmin calendar load` stores files here. Default `<data_dir>/calendars`.
    pub calendar_dir: Option<PathBuf>,
    /// `/readyz` turns `degraded` this many days before the loaded calendar ends.
    pub calendar_warn_days: u32,
    /// Optional directory file (departments and grid tree) replacing the built-in one.
    pub directory_file: Option<PathBuf>,
    /// Optional GeoJSON file of the grid polygons (docs/places.md). Without it the built-in
    /// polygons are used with the built-in directory, and none with a directory file.
    pub grids_file: Option<PathBuf>,
}

/// Cache settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Most requests whose state is kept in memory between commands.
    pub requests_max: usize,
}

/// Authentication settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Accept `X-Bianmin-Actor: <id>;<role>[;<unit>]` without a token. Development only.
    pub dev_identity: bool,
    /// Bearer tokens, stored as SHA-256 hashes.
    pub tokens: Vec<TokenConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./bianmin-data"),
            database_url: None,
            http: HttpConfig::default(),
            nats: NatsConfig::default(),
            policy: PolicyConfig::default(),
            cache: CacheConfig::default(),
            auth: AuthConfig::default(),
            projections: crate::projector::ProjectionsConfig::default(),
            privacy: crate::privacy::PrivacyConfig::default(),
            digest: crate::audit::digest::DigestConfig::default(),
            reports: crate::reports::schedule::ReportsConfig::default(),
            notify: crate::notify::NotifyConfig::default(),
            open311: crate::http::open311::Open311Config::default(),
            signing: engine_log::signing::SigningConfig::default(),
            intake_ids: crate::intake_ids::IntakeIdConfig::default(),
            stores: crate::stores::StoresConfig::default(),
            leases: crate::lease::LeaseConfig::default(),
            media: crate::media::MediaConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 64 * 1024,
            request_timeout_ms: 10_000,
            concurrency_limit: 256,
            drain_timeout_ms: 10_000,
            intake_rate_limit: crate::ratelimit::RateLimitConfig::default(),
            lookup_rate_limit: crate::http::lookup::default_rate_limit(),
        }
    }
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: None,
            user: None,
            password: None,
            password_file: None,
            token: None,
            token_file: None,
            nkey_seed_file: None,
            credentials_file: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_required: false,
            connection_name: None,
            stream: schemas::names::DEFAULT_EVENTS_STREAM.into(),
            subject_prefix: schemas::names::DEFAULT_PREFIX.into(),
            replicas: 1,
            startup_wait_secs: 30,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            profile: "community-station".into(),
            profile_file: None,
            catalogue_file: None,
            calendar_file: None,
            calendar_dir: None,
            calendar_warn_days: 30,
            directory_file: None,
            grids_file: None,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            requests_max: 10_000,
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--nats-url`.
    pub nats_url: Option<String>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--policy-profile`.
    pub policy_profile: Option<String>,
    /// `--dev-identity` (only ever switches it on).
    pub dev_identity: bool,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer did not parse or a value has the wrong type.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// The named config file does not exist.
    #[error("config file {0} not found")]
    MissingFile(PathBuf),
    /// A value is out of its range.
    #[error("invalid configuration: {0}")]
    Value(String),
}

impl Config {
    /// Loads defaults ← `file` (or `BIANMIN_CONFIG`) ← environment ← `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("BIANMIN_CONFIG").map(PathBuf::from));
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.clone()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment
            .merge(
                Env::prefixed("BIANMIN_")
                    .ignore(&["CONFIG", "NATS_URL", "LOG_FORMAT"])
                    .split("__"),
            )
            .merge(
                Env::raw()
                    .only(&["BIANMIN_NATS_URL"])
                    .map(|_| "nats.url".into()),
            )
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database_url".into()),
            );
        if let Some(listen) = overrides.listen {
            figment = figment.merge(("http.listen", listen));
        }
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(("data_dir", dir));
        }
        if let Some(url) = &overrides.nats_url {
            figment = figment.merge(("nats.url", url));
        }
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(("database_url", url));
        }
        if let Some(profile) = &overrides.policy_profile {
            figment = figment.merge(("policy.profile", profile));
        }
        if overrides.dev_identity {
            figment = figment.merge(("auth.dev_identity", true));
        }
        let mut config: Config = figment.extract().map_err(Box::new)?;
        if config.policy.calendar_dir.is_none() {
            config.policy.calendar_dir = Some(config.data_dir.join("calendars"));
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges that types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |message: &str| Err(ConfigError::Value(message.into()));
        if self.http.body_limit_bytes < 1024 {
            return fail("http.body_limit_bytes must be at least 1024");
        }
        if self.http.request_timeout_ms == 0 {
            return fail("http.request_timeout_ms must be positive");
        }
        if self.http.concurrency_limit == 0 {
            return fail("http.concurrency_limit must be positive");
        }
        if self.cache.requests_max == 0 {
            return fail("cache.requests_max must be positive");
        }
        if !matches!(
            self.policy.profile.as_str(),
            "community-station" | "city-hotline-12345"
        ) {
            return fail("policy.profile must be `community-station` or `city-hotline-12345`");
        }
        self.names()?;
        if self.nats.replicas == 0 || self.nats.replicas > 5 {
            return fail("nats.replicas must be between 1 and 5");
        }
        if self.projections.batch_max == 0 || self.projections.batch_max > 10_000 {
            return fail("projections.batch_max must be between 1 and 10000");
        }
        if self.projections.gauges_interval_ms < 100 {
            return fail("projections.gauges_interval_ms must be at least 100");
        }
        if self.projections.read_wait_ms >= self.http.request_timeout_ms {
            return fail("projections.read_wait_ms must be shorter than http.request_timeout_ms");
        }
        let w = &self.projections.weights;
        let weights = [w.response, w.resolution, w.satisfaction, w.bottom_up];
        if weights
            .iter()
            .any(|w| !w.is_finite() || !(0.0..=100.0).contains(w))
        {
            return fail("projections.weights: each weight must be a number in 0..=100");
        }
        self.notify.validate().map_err(ConfigError::Value)?;
        self.open311.validate().map_err(ConfigError::Value)?;
        self.stores.validate().map_err(ConfigError::Value)?;
        Ok(())
    }

    /// The configuration as TOML with secrets masked (URL passwords, token hashes).
    pub fn masked_toml(&self) -> String {
        let mut masked = self.clone();
        masked.database_url = masked.database_url.as_deref().map(mask_url);
        masked.stores.url = masked.stores.url.as_deref().map(mask_url);
        masked.nats.url = masked.nats.url.as_deref().map(mask_url_list);
        for secret in [&mut masked.nats.password, &mut masked.nats.token]
            .into_iter()
            .flatten()
        {
            *secret = Secret::from("****");
        }
        for token in &mut masked.auth.tokens {
            token.token_sha256 = "****".into();
        }
        for webhook in &mut masked.notify.webhooks {
            webhook.secret = "****".into();
        }
        for secret in masked.notify.channel_secrets.values_mut() {
            *secret = "****".into();
        }
        toml::to_string_pretty(&masked).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// Every NATS subject, stream, consumer and queue group of this instance, derived from
    /// `nats.subject_prefix` and `nats.stream` (see [`schemas::names`]).
    pub fn names(&self) -> Result<schemas::Names, ConfigError> {
        schemas::Names::new(&self.nats.subject_prefix, &self.nats.stream)
            .map_err(|e| ConfigError::Value(format!("{}: {e}", e.field())))
    }

    /// Where the embedded event log lives.
    pub fn events_db(&self) -> PathBuf {
        self.data_dir.join("events.db")
    }

    /// Where the embedded projections live.
    pub fn projections_db(&self) -> PathBuf {
        self.data_dir.join("projections.db")
    }

    /// The projections database: `database_url` when set, else SQLite at
    /// [`Config::projections_db`].
    pub fn projections_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.projections_db().display()),
        }
    }

    /// Where the contact store lives.
    pub fn contacts_db(&self) -> PathBuf {
        self.data_dir.join("contacts.db")
    }
}

/// A secret configuration value (password, token). Its `Debug` shows `****`, so a logged
/// configuration never carries it; it deserializes from any scalar, because figment reads an
/// environment value such as `12345` or `true` as a number or a boolean.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            Text(String),
            Signed(i64),
            Unsigned(u64),
            Float(f64),
            Bool(bool),
        }
        Ok(Secret(match Scalar::deserialize(deserializer)? {
            Scalar::Text(text) => text,
            Scalar::Signed(n) => n.to_string(),
            Scalar::Unsigned(n) => n.to_string(),
            Scalar::Float(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }))
    }
}

/// [`mask_url`] on each entry of a comma-separated list of URLs.
pub(crate) fn mask_url_list(list: &str) -> String {
    list.split(',').map(mask_url).collect::<Vec<_>>().join(",")
}

/// Replaces the password in `scheme://user:password@host/...` with `****`.
pub(crate) fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:****@{host}"),
        None => format!("{scheme}://****@{host}"),
    }
}

mod stores;
#[cfg(test)]
mod tests;
