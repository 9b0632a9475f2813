//! Unit delivery channels: where a department, a station or a supervision level is told about
//! a dispatch, a reminder (催办), a warning, an overdue mark, an escalation and the other unit
//! kinds — reference data, versioned and recorded on the log like the directory
//! ([`crate::audit::reference`], kind `unit_channels`).
//!
//! The file (`notify.channels_file`; `deploy/policy/channels.toml` is the demo district's)
//! names, per unit, a NATS subject (`nats = true`: `<prefix>.units.<unit_kind>.<code>.<kind>`,
//! spelled by [`schemas::Names`]) and any number of signed webhooks. A webhook names its
//! secret (`secret`, a key of `notify.channel_secrets` in the configuration): secrets never
//! sit in reference data. Units are `department:<code>`, `station:<community>` and
//! `level:<street|district|city>`; each is checked against the directory at load.
//!
//! No file: no unit channels (units still read their worklists). Decided over built-in
//! channels because a channel names a deployment's own endpoints, which no built-in file can
//! know.

use std::collections::{BTreeMap, HashSet};

use engine_core::directory::Directory;
use serde::Deserialize;

use crate::audit::reference::ReferenceItem;

/// The demo district's channels (`deploy/policy/channels.toml`), for examples and tests.
pub const DEMO_CHANNELS: &str = include_str!("../../../../deploy/policy/channels.toml");

/// Why a channels file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unit channels ({source_name}): {message}")]
pub struct ChannelsError {
    /// Where the file came from.
    pub source_name: String,
    /// What is wrong, naming the unit and field.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelsFile {
    version: String,
    /// Every unit of the directory (departments, stations, levels) gets its NATS subject.
    #[serde(default)]
    nats_all: bool,
    #[serde(default)]
    units: Vec<UnitFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitFile {
    unit: String,
    #[serde(default)]
    nats: bool,
    #[serde(default)]
    webhooks: Vec<UnitWebhookFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitWebhookFile {
    name: String,
    url: String,
    secret: String,
}

/// A unit a notification is addressed to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Unit {
    /// `department`, `station` or `level`.
    pub kind: &'static str,
    /// The department code, community code or level name.
    pub code: String,
}

impl Unit {
    /// A department.
    pub fn department(code: &str) -> Unit {
        Unit {
            kind: "department",
            code: code.to_string(),
        }
    }

    /// A station (the community's service station).
    pub fn station(community: &str) -> Unit {
        Unit {
            kind: "station",
            code: community.to_string(),
        }
    }

    /// Where an escalation goes: a supervision level (`street`, `district`, `city`) or a
    /// department of the escalation chain.
    pub fn escalation_target(to: &str) -> Unit {
        match to {
            "street" | "district" | "city" | "centre" => Unit {
                kind: "level",
                code: to.to_string(),
            },
            other => Unit::department(other),
        }
    }

    /// Parses `department:<code>`, `station:<community>` or `level:<name>`.
    pub fn parse(text: &str) -> Option<Unit> {
        let (kind, code) = text.split_once(':')?;
        let kind = ["department", "station", "level"]
            .into_iter()
            .find(|k| *k == kind)?;
        let token_ok = !code.is_empty()
            && code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        token_ok.then(|| Unit {
            kind,
            code: code.to_string(),
        })
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.code)
    }
}

/// One signed webhook of a unit, its secret resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitWebhook {
    /// Name (unique in the file); in the channel `unit-webhook:<name>`.
    pub name: String,
    /// Where to POST.
    pub url: String,
    /// The HMAC-SHA256 key.
    pub secret: String,
}

/// The channels of one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitChannel {
    /// Published on its NATS subject.
    pub nats: bool,
    /// Its webhooks.
    pub webhooks: Vec<UnitWebhook>,
}

/// The unit channels in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitChannels {
    version: String,
    units: BTreeMap<Unit, UnitChannel>,
}

fn known(unit: &Unit, directory: &Directory) -> bool {
    match unit.kind {
        "department" => directory.knows_department(&unit.code),
        "station" => directory.grids().any(|g| g.community == unit.code),
        _ => ["street", "district", "city", "centre"].contains(&unit.code.as_str()),
    }
}

impl UnitChannels {
    /// No unit channels.
    pub fn none() -> UnitChannels {
        UnitChannels::default()
    }

    /// Parses and checks a file against `directory`; webhook secrets are looked up by name in
    /// `secrets`.
    pub fn parse(
        source_name: &str,
        text: &str,
        directory: &Directory,
        secrets: &BTreeMap<String, String>,
    ) -> Result<UnitChannels, ChannelsError> {
        let fail = |message: String| ChannelsError {
            source_name: source_name.to_string(),
            message,
        };
        let file: ChannelsFile = toml::from_str(text).map_err(|e| fail(e.to_string()))?;
        if file.version.trim().is_empty() {
            return Err(fail("`version` must not be empty".into()));
        }
        let mut units: BTreeMap<Unit, UnitChannel> = BTreeMap::new();
        if file.nats_all {
            let departments = directory.department_codes().map(Unit::department);
            let stations: HashSet<String> = directory.grids().map(|g| g.community).collect();
            let levels = ["street", "district", "city"].map(Unit::escalation_target);
            for unit in departments
                .chain(stations.iter().map(|s| Unit::station(s)))
                .chain(levels)
            {
                units.entry(unit).or_default().nats = true;
            }
        }
        let mut names = HashSet::new();
        for entry in file.units {
            let unit = Unit::parse(&entry.unit).ok_or_else(|| {
                fail(format!(
                    "`{}` is not `department:<code>`, `station:<community>` or `level:<name>`",
                    entry.unit
                ))
            })?;
            if !known(&unit, directory) {
                return Err(fail(format!("{unit}: not in the directory")));
            }
            let channel = units.entry(unit.clone()).or_default();
            channel.nats |= entry.nats;
            for hook in entry.webhooks {
                if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
                    return Err(fail(format!(
                        "{unit}: `{}` is not an http(s) URL",
                        hook.name
                    )));
                }
                if !names.insert(hook.name.clone()) {
                    return Err(fail(format!("webhook name `{}` is used twice", hook.name)));
                }
                let secret = secrets.get(&hook.secret).filter(|s| !s.is_empty());
                let secret = secret.ok_or_else(|| {
                    fail(format!(
                        "{unit}: webhook `{}` names the secret `{}`, which \
                         notify.channel_secrets does not hold",
                        hook.name, hook.secret
                    ))
                })?;
                channel.webhooks.push(UnitWebhook {
                    name: hook.name,
                    url: hook.url,
                    secret: secret.clone(),
                });
            }
        }
        Ok(UnitChannels {
            version: file.version,
            units,
        })
    }

    /// The file's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether no unit has a channel.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Whether any unit has a webhook.
    pub fn has_webhooks(&self) -> bool {
        self.units.values().any(|c| !c.webhooks.is_empty())
    }

    /// The channels of `unit` (`unit-nats`, `unit-webhook:<name>`); empty when it has none.
    /// `nats` says whether the engine runs on NATS at all.
    pub fn channels_of(&self, unit: &Unit, nats: bool) -> Vec<String> {
        let Some(channel) = self.units.get(unit) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if channel.nats && nats {
            out.push(UNIT_NATS.to_string());
        }
        out.extend(
            channel
                .webhooks
                .iter()
                .map(|w| format!("{UNIT_WEBHOOK}{}", w.name)),
        );
        out
    }

    /// The webhook named `name`.
    pub fn webhook(&self, name: &str) -> Option<&UnitWebhook> {
        self.units
            .values()
            .flat_map(|c| &c.webhooks)
            .find(|w| w.name == name)
    }
}

/// The channel of a unit's NATS subject.
pub const UNIT_NATS: &str = "unit-nats";
/// The prefix of a unit webhook's channel.
pub const UNIT_WEBHOOK: &str = "unit-webhook:";

/// Loads the channels `path` names (none without a path), with the reference item to record.
pub fn load(
    path: Option<&std::path::Path>,
    directory: &Directory,
    secrets: &BTreeMap<String, String>,
) -> Result<(UnitChannels, Option<ReferenceItem>), String> {
    let Some(path) = path else {
        return Ok((UnitChannels::none(), None));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let source = path.display().to_string();
    let channels =
        UnitChannels::parse(&source, &text, directory, secrets).map_err(|e| e.to_string())?;
    let item = ReferenceItem {
        kind: schemas::event::ReferenceKind::UnitChannels,
        version: channels.version().to_string(),
        content: text.into_bytes(),
        source,
    };
    Ok((channels, Some(item)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> BTreeMap<String, String> {
        BTreeMap::from([("um".to_string(), "k".to_string())])
    }

    #[test]
    fn the_demo_file_loads_against_the_builtin_directory() {
        let directory = Directory::builtin();
        let channels = UnitChannels::parse("demo", DEMO_CHANNELS, &directory, &BTreeMap::new());
        let channels = channels.unwrap();
        let um = Unit::department("urban-management");
        assert_eq!(channels.channels_of(&um, true), vec![UNIT_NATS]);
        assert!(channels.channels_of(&um, false).is_empty());
        assert_eq!(
            channels.channels_of(&Unit::escalation_target("street"), true),
            vec![UNIT_NATS]
        );
    }

    #[test]
    fn unknown_units_bad_urls_and_missing_secrets_are_refused() {
        let directory = Directory::builtin();
        let parse = |body: &str| {
            UnitChannels::parse(
                "t",
                &format!("version = \"1\"\n{body}"),
                &directory,
                &secrets(),
            )
        };
        let hook = |unit: &str, url: &str, secret: &str| {
            format!(
                "[[units]]\nunit = \"{unit}\"\n[[units.webhooks]]\nname = \"h\"\nurl = \"{url}\"\nsecret = \"{secret}\"\n"
            )
        };
        assert!(
            parse(&hook(
                "department:urban-management",
                "http://127.0.0.1:1/x",
                "um"
            ))
            .is_ok()
        );
        let unknown = parse(&hook("department:nope", "http://a/x", "um")).unwrap_err();
        assert!(unknown.message.contains("department:nope"), "{unknown}");
        assert!(parse(&hook("dept:x", "http://a/x", "um")).is_err());
        assert!(parse(&hook("department:urban-management", "ftp://a", "um")).is_err());
        let secret =
            parse(&hook("department:urban-management", "http://a/x", "other")).unwrap_err();
        assert!(secret.message.contains("`other`"), "{secret}");
    }
}
