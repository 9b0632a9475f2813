//! The one place a NATS client is made. Every process (`serve`, `project`, `supervise`) and
//! every tool that opens the JetStream log connects through [`connect`], so they all log in
//! the same way from the `[nats]` configuration.
//!
//! async-nats sends in its `CONNECT` only what its `ConnectOptions` carry: a user and
//! password written into the URL (`nats://engine:pw@host`) is parsed and then dropped, and
//! the server answers `authorization violation`. So the URL's userinfo is taken out here and
//! handed to the options (percent-decoded), next to the configured `user`/`password`,
//! `token`, nkey seed or `.creds` file and TLS files. The addresses given to async-nats carry
//! no userinfo, so neither its logs nor ours can print a password.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions, ServerAddr};

use crate::config::NatsConfig;
use engine_log::backoff::{Attempt, Backoff, Retries};
pub use engine_log::transient_api_error;

/// Why no NATS client could be made. Messages name servers without their userinfo and never
/// contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum NatsConnectError {
    /// `nats.url` is not set.
    #[error("nats.url is not set")]
    NoUrl,
    /// An entry of `nats.url` is not a NATS server address.
    #[error("nats.url entry {entry} is not a NATS server address")]
    Address {
        /// The entry, password masked.
        entry: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The login settings contradict each other.
    #[error("nats: {0}")]
    Settings(&'static str),
    /// A file with a secret, the credentials or a TLS certificate cannot be read.
    #[error("nats.{key}: cannot read {path}")]
    File {
        /// The configuration key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The servers refused the connection or the login.
    #[error("cannot connect to NATS at {servers} (after {waited_ms} ms)")]
    Connect {
        /// The servers tried, without userinfo.
        servers: String,
        /// How long start-up waited before giving up.
        waited_ms: u64,
        /// The last attempt's error.
        #[source]
        source: async_nats::ConnectError,
    },
}

/// The parsed `nats.url`: the servers without userinfo, and the userinfo they carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerList {
    addrs: Vec<ServerAddr>,
    userinfo: Option<(String, Option<String>)>,
}

impl ServerList {
    /// Parses a comma-separated list of server URLs (`nats://`, `tls://`, `ws://`, `wss://`;
    /// a bare `host:port` means `nats://`). Userinfo, if any, must be the same on every entry.
    pub fn parse(list: &str) -> Result<ServerList, NatsConnectError> {
        let mut addrs = Vec::new();
        let mut userinfo = None;
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = |source| NatsConnectError::Address {
                entry: crate::config::mask_url(entry),
                source,
            };
            let mut url = ServerAddr::from_str(entry).map_err(bad)?.into_inner();
            if !url.username().is_empty() {
                let user = decode(url.username());
                let password = url.password().map(decode);
                if userinfo.get_or_insert((user.clone(), password.clone())) != &(user, password) {
                    return Err(NatsConnectError::Settings(
                        "the entries of nats.url carry different users or passwords",
                    ));
                }
                // Infallible for nats:// and the other schemes with a host.
                let _ = url.set_password(None);
                let _ = url.set_username("");
            }
            addrs.push(ServerAddr::from_url(url).map_err(bad)?);
        }
        if addrs.is_empty() {
            return Err(NatsConnectError::NoUrl);
        }
        Ok(ServerList { addrs, userinfo })
    }

    /// The servers, without userinfo, in the configured order.
    pub fn addrs(&self) -> &[ServerAddr] {
        &self.addrs
    }
}

impl std::fmt::Display for ServerList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<&str> = self.addrs.iter().map(ServerAddr::as_url_str).collect();
        f.write_str(&shown.join(","))
    }
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Reads a secret file: the whole file, without the trailing newline editors add.
fn read_secret(key: &'static str, path: &Path) -> Result<String, NatsConnectError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim_end_matches(['\r', '\n']).to_string())
        .map_err(|source| NatsConnectError::File {
            key,
            path: path.to_path_buf(),
            source,
        })
}

/// How the client proves who it is; at most one per configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Login {
    Anonymous,
    UserPassword(String, String),
    Token(String),
    Nkey(String),
    Credentials(PathBuf),
}

/// The login the configuration and the URL's userinfo describe. Refuses two ways at once.
fn login(config: &NatsConfig, servers: &ServerList) -> Result<Login, NatsConnectError> {
    let password = match (&config.password, &config.password_file) {
        (Some(_), Some(_)) => {
            return Err(NatsConnectError::Settings(
                "set nats.password or nats.password_file, not both",
            ));
        }
        (Some(secret), None) => Some(secret.expose().to_string()),
        (None, Some(path)) => Some(read_secret("password_file", path)?),
        (None, None) => None,
    };
    let token = match (&config.token, &config.token_file) {
        (Some(_), Some(_)) => {
            return Err(NatsConnectError::Settings(
                "set nats.token or nats.token_file, not both",
            ));
        }
        (Some(secret), None) => Some(secret.expose().to_string()),
        (None, Some(path)) => Some(read_secret("token_file", path)?),
        (None, None) => None,
    };
    let mut ways = Vec::new();
    match (&config.user, password) {
        (Some(user), Some(password)) => ways.push(Login::UserPassword(user.clone(), password)),
        (None, None) => {}
        _ => {
            return Err(NatsConnectError::Settings(
                "nats.user and a password (nats.password or nats.password_file) go together",
            ));
        }
    }
    if let Some(token) = token {
        ways.push(Login::Token(token));
    }
    if let Some(path) = &config.nkey_seed_file {
        ways.push(Login::Nkey(read_secret("nkey_seed_file", path)?));
    }
    if let Some(path) = &config.credentials_file {
        ways.push(Login::Credentials(path.clone()));
    }
    match &servers.userinfo {
        Some((user, Some(password))) => {
            ways.push(Login::UserPassword(user.clone(), password.clone()));
        }
        // `nats://<token>@host`, as the other NATS clients read it.
        Some((token, None)) => ways.push(Login::Token(token.clone())),
        None => {}
    }
    if ways.len() > 1 {
        return Err(NatsConnectError::Settings(
            "more than one way to log in is configured (user and password, token, nkey seed, \
             credentials file, userinfo in nats.url): keep one",
        ));
    }
    Ok(ways.pop().unwrap_or(Login::Anonymous))
}

/// The options of one connection attempt, from the configuration.
async fn options(
    config: &NatsConfig,
    servers: &ServerList,
) -> Result<ConnectOptions, NatsConnectError> {
    let mut options =
        match login(config, servers)? {
            Login::Anonymous => ConnectOptions::new(),
            Login::UserPassword(user, password) => {
                ConnectOptions::with_user_and_password(user, password)
            }
            Login::Token(token) => ConnectOptions::with_token(token),
            Login::Nkey(seed) => ConnectOptions::with_nkey(seed),
            Login::Credentials(path) => ConnectOptions::with_credentials_file(&path)
                .await
                .map_err(|source| NatsConnectError::File {
                    key: "credentials_file",
                    path,
                    source,
                })?,
        };
    for (key, path) in [
        ("tls_ca_file", &config.tls_ca_file),
        ("tls_cert_file", &config.tls_cert_file),
        ("tls_key_file", &config.tls_key_file),
    ] {
        if let Some(path) = path
            && let Err(source) = std::fs::metadata(path)
        {
            return Err(NatsConnectError::File {
                key,
                path: path.clone(),
                source,
            });
        }
    }
    if let Some(ca) = &config.tls_ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        (None, None) => {}
        _ => {
            return Err(NatsConnectError::Settings(
                "nats.tls_cert_file and nats.tls_key_file go together",
            ));
        }
    }
    let name = config.connection_name.as_deref().unwrap_or("bianmin");
    Ok(options
        .require_tls(config.tls_required)
        .name(name)
        .retain_servers_order())
}

/// Connects to the servers of `nats.url` (tried in the configured order) as the
/// configuration says. While no server accepts connections (refused, timed out, not
/// resolvable) it retries with [`Backoff::startup`] for up to `wait`, logging each retry;
/// a refused login, a TLS failure or anything still failing after `wait` is returned.
/// Reading tools pass `Duration::ZERO`: one attempt.
pub async fn connect(
    config: &NatsConfig,
    wait: Duration,
) -> Result<async_nats::Client, NatsConnectError> {
    let servers = ServerList::parse(config.url.as_deref().ok_or(NatsConnectError::NoUrl)?)?;
    let started = tokio::time::Instant::now();
    let servers = &servers;
    let client = Backoff::startup()
        .patiently("NATS", wait, Retries::Warn, || async move {
            let options = match options(config, servers).await {
                Ok(options) => options,
                Err(error) => return Attempt::Failed(error),
            };
            let error = match options.connect(servers.addrs().to_vec()).await {
                Ok(client) => return Attempt::Done(client),
                Err(error) => error,
            };
            let unreachable = matches!(
                error.kind(),
                ConnectErrorKind::Io | ConnectErrorKind::TimedOut | ConnectErrorKind::Dns
            );
            let error = NatsConnectError::Connect {
                servers: servers.to_string(),
                waited_ms: started.elapsed().as_millis() as u64,
                source: error,
            };
            match unreachable {
                true => Attempt::Transient(error),
                false => Attempt::Failed(error),
            }
        })
        .await?;
    tracing::info!(servers = %servers, "connected to NATS");
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_parses_and_userinfo_leaves_the_addresses() {
        let list =
            ServerList::parse(" nats://engine:p%40ss@127.0.0.1:4001 ,127.0.0.1:4002").unwrap();
        assert_eq!(
            list.to_string(),
            "nats://127.0.0.1:4001,nats://127.0.0.1:4002"
        );
        assert_eq!(
            list.userinfo,
            Some(("engine".to_string(), Some("p@ss".to_string())))
        );
        assert!(!format!("{list:?}").contains("p%40ss"));
    }

    #[test]
    fn an_entry_without_a_port_number_is_named_masked() {
        let error = ServerList::parse("nats://engine:secret@127.0.0.1:x").unwrap_err();
        let shown = error.to_string();
        assert!(shown.contains("engine:****@"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn two_ways_to_log_in_are_refused() {
        let config = NatsConfig {
            url: Some("nats://engine:pw@127.0.0.1:4222".into()),
            token: Some(crate::config::Secret::from("t")),
            ..NatsConfig::default()
        };
        let servers = ServerList::parse(config.url.as_deref().unwrap()).unwrap();
        assert!(matches!(
            login(&config, &servers),
            Err(NatsConnectError::Settings(_))
        ));
        let config = NatsConfig {
            user: Some("engine".into()),
            ..NatsConfig::default()
        };
        let servers = ServerList::parse("127.0.0.1").unwrap();
        assert!(login(&config, &servers).is_err());
    }
}
