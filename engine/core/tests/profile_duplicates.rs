//! The policy profile's `[duplicates]` section: the shipped profiles set the window and the
//! threshold of candidate duplicates, a profile without the section takes the defaults, bad
//! values are refused with the field named, and the committed JSON Schema of profiles is the
//! one the code generates and admits the section.

use chrono::Duration;
use engine_core::Policy;
use engine_core::duplicates::{DuplicateRule, MIN_SCORE, WINDOW_DAYS};
use engine_core::policy::{
    BUILTIN_CITY_HOTLINE_12345, BUILTIN_COMMUNITY_STATION, LoadError, Profile,
};

/// The community-station profile with its `[duplicates]` section replaced by `section`.
fn station_with(section: &str) -> String {
    let start = BUILTIN_COMMUNITY_STATION
        .find("[duplicates]")
        .expect("the station profile has a [duplicates] section");
    let end = start
        + BUILTIN_COMMUNITY_STATION[start..]
            .find("[extensions]")
            .expect("[extensions] follows");
    format!(
        "{}{section}\n{}",
        &BUILTIN_COMMUNITY_STATION[..start],
        &BUILTIN_COMMUNITY_STATION[end..]
    )
}

#[test]
fn the_shipped_profiles_set_the_default_window_and_threshold() {
    for text in [BUILTIN_COMMUNITY_STATION, BUILTIN_CITY_HOTLINE_12345] {
        let policy = Policy::builtin(text).expect("built-in profile");
        let rule = policy.duplicates();
        assert_eq!(rule.window(), Duration::days(WINDOW_DAYS));
        assert_eq!(rule.min_score(), MIN_SCORE);
    }
}

#[test]
fn a_profile_sets_its_own_window_and_threshold_or_takes_the_defaults() {
    let text = station_with("[duplicates]\nwindow_days = 30\nmin_score = 0.55\n");
    let rule = Profile::parse("p.toml", &text).expect("valid").duplicates;
    assert_eq!(rule.window(), Duration::days(30));
    assert_eq!(rule.min_score(), 0.55);
    assert!(rule.lists(0.55) && !rule.lists(0.549));

    let without = station_with("");
    let rule = Profile::parse("p.toml", &without)
        .expect("valid")
        .duplicates;
    assert_eq!(rule, DuplicateRule::default());
    let half = station_with("[duplicates]\nmin_score = 0.9\n");
    let rule = Profile::parse("p.toml", &half).expect("valid").duplicates;
    assert_eq!(
        (rule.window(), rule.min_score()),
        (Duration::days(WINDOW_DAYS), 0.9)
    );
}

#[test]
fn out_of_range_or_unknown_duplicate_settings_are_refused_with_the_field_named() {
    for (section, field) in [
        ("window_days = 0", "duplicates.window_days"),
        ("window_days = 400", "duplicates.window_days"),
        ("min_score = 1.2", "duplicates.min_score"),
        ("min_score = -0.5", "duplicates.min_score"),
    ] {
        let text = station_with(&format!("[duplicates]\n{section}\n"));
        match Profile::parse("p.toml", &text) {
            Err(LoadError::Invalid { at, field: got, .. }) => {
                assert_eq!(
                    (at.as_str(), got.as_str()),
                    ("profile \"community-station\"", field)
                );
            }
            other => panic!("{section}: expected an invalid field, got {other:?}"),
        }
    }
    let unknown = station_with("[duplicates]\nwindow_hours = 3\n");
    assert!(
        matches!(
            Profile::parse("p.toml", &unknown),
            Err(LoadError::Syntax { .. })
        ),
        "unknown keys are refused"
    );
}

#[test]
fn the_committed_profile_schema_matches_the_code_and_admits_duplicates() {
    let committed = include_str!("../../../deploy/policy/profile.schema.json");
    let generated = Profile::json_schema();
    if committed != generated && std::env::var_os("BIANMIN_BLESS").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/policy/profile.schema.json"
        );
        std::fs::write(path, &generated).expect("write schema");
        return;
    }
    assert_eq!(
        committed, generated,
        "run with BIANMIN_BLESS=1 to regenerate the schema file"
    );
    let schema: serde_json::Value = serde_json::from_str(committed).expect("JSON");
    let section = &schema["$defs"]["DuplicatesFile"]["properties"];
    assert_eq!(section["window_days"]["type"], "integer", "{section}");
    assert_eq!(section["min_score"]["type"], "number", "{section}");
    assert!(
        schema["required"]
            .as_array()
            .is_some_and(|r| !r.iter().any(|f| f == "duplicates")),
        "the section is optional"
    );
}
