//! The policy a configuration names — the built-in profile, catalogue, calendar and directory,
//! each replaced by its file when one is configured — and, with it, every reference-data
//! source it was built from, for recording in the log (see [`crate::audit::reference`]).

use engine_core::Policy;
use schemas::event::ReferenceKind;

use crate::app::AppError;
use crate::audit::reference::ReferenceItem;
use crate::config::{Config, PolicyConfig};

/// The policy the config names: the built-in profile, catalogue, calendar and directory,
/// each replaced by its file when one is configured.
pub fn load_policy(config: &PolicyConfig) -> Result<Policy, AppError> {
    load_policy_with_sources(config).map(|(policy, _)| policy)
}

/// The API tokens in force as reference data: ids, roles, units and token hashes (never
/// tokens), so an auditor can tell who held which role when.
pub fn role_grants(config: &Config) -> ReferenceItem {
    let content = serde_json::to_vec(&config.auth.tokens).unwrap_or_default();
    ReferenceItem {
        kind: ReferenceKind::RoleGrants,
        version: format!("{} tokens", config.auth.tokens.len()),
        content,
        source: "config auth.tokens".into(),
    }
}

/// Loads the policy and returns, with it, each reference-data file it was built from, for
/// recording in the log.
pub fn load_policy_with_sources(
    config: &PolicyConfig,
) -> Result<(Policy, Vec<ReferenceItem>), AppError> {
    use engine_core::calendar::BUILTIN_CN_2025_2026;
    use engine_core::catalogue::BUILTIN_CATALOGUE;
    use engine_core::directory::BUILTIN_DIRECTORY;
    use engine_core::policy::{BUILTIN_CITY_HOTLINE_12345, BUILTIN_COMMUNITY_STATION};

    let builtin_profile = match config.profile.as_str() {
        "community-station" => BUILTIN_COMMUNITY_STATION,
        "city-hotline-12345" => BUILTIN_CITY_HOTLINE_12345,
        other => return Err(AppError::Policy(format!("unknown profile `{other}`"))),
    };
    let read =
        |path: &Option<std::path::PathBuf>, builtin: &'static str, name: &'static str| match path {
            Some(path) => std::fs::read_to_string(path)
                .map(|text| (path.display().to_string(), text))
                .map_err(|source| AppError::PolicyFile {
                    path: path.clone(),
                    source,
                }),
            None => Ok((format!("built-in {name}"), builtin.to_string())),
        };
    let profile = read(&config.profile_file, builtin_profile, "profile")?;
    let catalogue = read(&config.catalogue_file, BUILTIN_CATALOGUE, "catalogue")?;
    let calendar = read(&config.calendar_file, BUILTIN_CN_2025_2026, "calendar")?;
    let directory = read(&config.directory_file, BUILTIN_DIRECTORY, "directory")?;
    let policy = Policy::from_files(
        (&profile.0, &profile.1),
        (&catalogue.0, &catalogue.1),
        &[(&calendar.0, &calendar.1)],
        (&directory.0, &directory.1),
    )
    .map_err(AppError::PolicyInvalid)?;
    let years: Vec<String> = policy.calendar().years().map(|y| y.to_string()).collect();
    let item = |kind, version: String, (source, text): (String, String)| ReferenceItem {
        kind,
        version,
        content: text.into_bytes(),
        source,
    };
    let sources = vec![
        item(ReferenceKind::PolicyProfile, policy.name(), profile),
        item(
            ReferenceKind::Catalogue,
            policy.catalogue().version().to_string(),
            catalogue,
        ),
        item(ReferenceKind::Calendar, years.join(","), calendar),
        item(
            ReferenceKind::Directory,
            policy.directory().version().to_string(),
            directory,
        ),
    ];
    Ok((policy, sources))
}
