//! The policy a configuration names — the built-in profile, catalogue, calendar and directory,
//! each replaced by its file when one is configured — and, with it, every reference-data
//! source it was built from, for recording in the log (see [`crate::audit::reference`]).

use std::path::Path;

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
    let calendars = calendar_files(config)?;
    let directory = read(&config.directory_file, BUILTIN_DIRECTORY, "directory")?;
    let calendar_refs: Vec<(&str, &str)> = calendars
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    let policy = Policy::from_files(
        (&profile.0, &profile.1),
        (&catalogue.0, &catalogue.1),
        &calendar_refs,
        (&directory.0, &directory.1),
    )
    .map_err(AppError::PolicyInvalid)?;
    let (policy, grids) = with_grid_polygons(policy, config)?;
    let calendar = combined_calendar_source(&calendars);
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
    let mut sources = sources;
    if let Some(grids) = grids {
        sources.push(item(
            ReferenceKind::GridPolygons,
            policy.places().version().to_string(),
            grids,
        ));
    }
    Ok((policy, sources))
}

/// The policy with its grid polygons: `policy.grids_file` when configured, else the built-in
/// polygons when the directory is the built-in one (they name its grids), else none. Returns
/// the `(source, text)` loaded, for recording.
fn with_grid_polygons(
    policy: Policy,
    config: &PolicyConfig,
) -> Result<(Policy, Option<(String, String)>), AppError> {
    use engine_core::places::{BUILTIN_GRIDS, Places};

    let source = match (&config.grids_file, &config.directory_file) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map(|text| (path.display().to_string(), text))
            .map_err(|source| AppError::PolicyFile {
                path: path.clone(),
                source,
            })?,
        (None, None) => ("built-in grids".to_string(), BUILTIN_GRIDS.to_string()),
        (None, Some(_)) => return Ok((policy, None)),
    };
    let places =
        Places::parse(&source.0, &source.1, policy.directory()).map_err(AppError::PolicyInvalid)?;
    Ok((policy.with_places(places), Some(source)))
}

/// The calendar files in force as `(name, text)`: the base calendar (`policy.calendar_file`,
/// else the built-in one), then the added files of `policy.calendar_dir`.
pub fn calendar_files(config: &PolicyConfig) -> Result<Vec<(String, String)>, AppError> {
    let base = match &config.calendar_file {
        Some(path) => std::fs::read_to_string(path)
            .map(|text| (path.display().to_string(), text))
            .map_err(|source| AppError::PolicyFile {
                path: path.clone(),
                source,
            })?,
        None => (
            "built-in calendar".to_string(),
            engine_core::calendar::BUILTIN_CN_2025_2026.to_string(),
        ),
    };
    let mut files = vec![base];
    files.extend(added_calendars(config.calendar_dir.as_deref())?);
    Ok(files)
}

/// The added calendar files of `dir` (`*.toml`, in name order) as `(path, text)`; none when
/// the directory is not configured or does not exist.
pub fn added_calendars(dir: Option<&Path>) -> Result<Vec<(String, String)>, AppError> {
    let Some(dir) = dir else {
        return Ok(Vec::new());
    };
    let failed = |source| AppError::PolicyFile {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(failed(e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(failed)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            std::fs::read_to_string(&path)
                .map(|text| (path.display().to_string(), text))
                .map_err(|source| AppError::PolicyFile { path, source })
        })
        .collect()
}

/// The calendar in force as one reference-data source: the files' names joined by ` + ` and
/// their texts concatenated in load order, each after a `# file: <name>` line, so adding a
/// year is one recorded change of the calendar.
fn combined_calendar_source(files: &[(String, String)]) -> (String, String) {
    if let [(name, text)] = files {
        return (name.clone(), text.clone());
    }
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    let text = files
        .iter()
        .map(|(name, text)| format!("# file: {name}\n{text}"))
        .collect::<Vec<_>>()
        .join("\n");
    (names.join(" + "), text)
}
