//! Policy profiles, the catalogue and the directory: both shipped profiles give their documented
//! limits, precedence (statutory > item > tier), priority lanes, clock start, and load errors
//! that name the file, entry and field.

use chrono::{DateTime, Duration, TimeZone, Utc};
use engine_core::Policy;
use engine_core::catalogue::{self, BUILTIN_CATALOGUE, Catalogue};
use engine_core::directory::{BUILTIN_DIRECTORY, Directory};
use engine_core::policy::{
    BUILTIN_CITY_HOTLINE_12345, BUILTIN_COMMUNITY_STATION, ClockStart, LoadError, PolicyError,
    Profile,
};
use schemas::{GridPath, HandlingMode, PriorityLane, Urgency};

/// A local (UTC+8) wall-clock instant.
fn local(text: &str) -> DateTime<Utc> {
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("test time");
    chrono::FixedOffset::east_opt(8 * 3600)
        .expect("offset")
        .from_local_datetime(&naive)
        .single()
        .expect("fixed offsets are unambiguous")
        .with_timezone(&Utc)
}

fn station() -> Policy {
    Policy::for_tests()
}

fn hotline() -> Policy {
    Policy::builtin(BUILTIN_CITY_HOTLINE_12345).expect("built-in hotline policy")
}

/// A Wednesday mid-morning with no holiday nearby.
const START: &str = "2026-03-04 10:00";

#[test]
fn built_in_policies_load_and_name_themselves() {
    assert_eq!(station().name(), "community-station@2026.1");
    assert_eq!(hotline().name(), "city-hotline-12345@2026.1");
    assert_eq!(station().clock_start(), ClockStart::OnReceipt);
    assert_eq!(hotline().clock_start(), ClockStart::OnDispatch);
    let classification = station()
        .classify("ss-pension-certification", None, &[], local(START))
        .expect("known");
    assert_eq!(classification.deadlines.policy, "community-station@2026.1");
    assert_eq!(classification.deadlines.catalogue_version, "2026.4");
}

#[test]
fn the_default_catalogue_covers_every_seed_category() {
    let policy = station();
    let catalogue = policy.catalogue();
    assert_eq!(catalogue.version(), "2026.4");
    assert!(
        (40..=65).contains(&catalogue.len()),
        "{} items",
        catalogue.len()
    );
    let categories: Vec<&str> = catalogue.categories().map(|(id, _)| id).collect();
    for expected in [
        "social-security",
        "civil-affairs",
        "disability-affairs",
        "real-estate-registration",
        "business-registration",
        "food-hygiene-permits",
        "urban-management",
        "environment-sanitation",
        "public-security-mediation",
        "health-family-planning",
        "housing",
        "utilities",
        "property-management",
    ] {
        assert!(
            categories.contains(&expected),
            "missing category {expected}"
        );
        assert!(
            catalogue.items().any(|item| item.category == expected),
            "empty category {expected}"
        );
    }
    for item in catalogue.items() {
        for code in &item.departments {
            assert!(policy.knows_department(code), "{}: {code}", item.id);
        }
    }
}

#[test]
fn the_committed_catalogue_schema_matches_the_code() {
    let committed = include_str!("../../../deploy/policy/catalogue.schema.json");
    let generated = catalogue::json_schema();
    if committed != generated && std::env::var_os("BIANMIN_BLESS").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/policy/catalogue.schema.json"
        );
        std::fs::write(path, &generated).expect("write schema");
        return;
    }
    assert_eq!(
        committed, generated,
        "run with BIANMIN_BLESS=1 to regenerate the schema file"
    );
}

/// (item, urgency override, expected response due, expected completion due) at [`START`].
type Case = (&'static str, Option<Urgency>, &'static str, &'static str);

fn check_cases(policy: &Policy, cases: &[Case]) {
    for (item, urgency, response, completion) in cases {
        let deadlines = policy
            .classify(item, *urgency, &[], local(START))
            .expect("known item")
            .deadlines;
        assert_eq!(
            deadlines.response_due_at,
            local(response),
            "{} {item} {urgency:?} response",
            policy.name()
        );
        assert_eq!(
            deadlines.completion_due_at,
            local(completion),
            "{} {item} {urgency:?} completion",
            policy.name()
        );
    }
}

#[test]
fn the_community_station_profile_gives_its_documented_tiers() {
    check_cases(
        &station(),
        &[
            // Emergency: 30 min response, 2 h completion.
            (
                "um-manhole-cover",
                None,
                "2026-03-04 10:30",
                "2026-03-04 12:00",
            ),
            // Time-critical: 2 h response, 24 h completion.
            (
                "es-garbage-collection",
                None,
                "2026-03-04 12:00",
                "2026-03-05 10:00",
            ),
            // General: 24 h response, 5 working days.
            (
                "es-garbage-collection",
                Some(Urgency::General),
                "2026-03-05 10:00",
                "2026-03-11 17:30",
            ),
            // Complex: 15 working days.
            (
                "um-illegal-construction",
                None,
                "2026-03-05 10:00",
                "2026-03-25 17:30",
            ),
        ],
    );
}

#[test]
fn the_city_hotline_profile_gives_its_documented_tiers() {
    check_cases(
        &hotline(),
        &[
            (
                "um-manhole-cover",
                None,
                "2026-03-04 10:30",
                "2026-03-04 12:00",
            ),
            (
                "es-garbage-collection",
                None,
                "2026-03-04 12:00",
                "2026-03-05 10:00",
            ),
            (
                "es-garbage-collection",
                Some(Urgency::General),
                "2026-03-05 10:00",
                "2026-03-11 17:30",
            ),
            // Complex: 15 calendar days.
            (
                "um-illegal-construction",
                None,
                "2026-03-05 10:00",
                "2026-03-19 17:30",
            ),
        ],
    );
}

#[test]
fn both_profiles_give_their_documented_windows_and_counts() {
    let (station, hotline) = (station(), hotline());
    let start = local("2026-03-04 16:00");
    // Accept: 24 h at the station, 2 h for network intake at the hotline.
    assert_eq!(station.accept_due(start, &[]), start + Duration::hours(24));
    assert_eq!(hotline.accept_due(start, &[]), start + Duration::hours(2));
    // Sign-off: 4 office hours (1.5 h today, 2.5 h tomorrow) vs 2 natural hours.
    assert_eq!(station.sign_off_due(start), local("2026-03-05 11:30"));
    assert_eq!(hotline.sign_off_due(start), local("2026-03-04 18:00"));
    // Return window: 1 vs 2 working days.
    assert_eq!(station.return_window_end(start), local("2026-03-05 17:30"));
    assert_eq!(hotline.return_window_end(start), local("2026-03-06 17:30"));
    // Whistle report and escalation grace: 24 h.
    assert_eq!(
        station.whistle_report_due(start),
        start + Duration::hours(24)
    );
    assert_eq!(hotline.escalation_grace(), Duration::hours(24));
    for policy in [&station, &hotline] {
        let limits = policy.limits();
        assert_eq!(
            (
                limits.max_extensions,
                limits.max_extension_working_days,
                limits.max_extension_total_working_days
            ),
            (3, 3, 10)
        );
        assert_eq!(
            (
                limits.max_reopens,
                limits.callback_attempts,
                limits.appeal_window_hours
            ),
            (2, 3, 72)
        );
    }
    // Extensions add working days across a holiday.
    assert_eq!(
        station.add_working_days(local("2026-09-30 17:30"), 3),
        local("2026-10-10 17:30")
    );
}

#[test]
fn a_statutory_limit_overrides_the_item_and_the_tier() {
    let policy = station();
    let start = local(START);
    // Item says 15 wd, the law 30 wd: the law wins, at any urgency.
    for urgency in [None, Some(Urgency::Emergency), Some(Urgency::General)] {
        let due = policy
            .classify("re-first-registration", urgency, &[], start)
            .expect("known")
            .deadlines;
        assert_eq!(
            due.completion_due_at,
            policy.calendar().add_working_days(start, 30),
            "{urgency:?}"
        );
    }
    // Shorter statutory limits win too: 3 wd instead of the item's 5.
    let due = policy
        .classify("br-individual-business", None, &[], start)
        .expect("known")
        .deadlines;
    assert_eq!(due.completion_due_at, local("2026-03-09 17:30"));
    // Statutory 7 calendar days for legal aid.
    let due = policy
        .classify("ps-legal-aid", None, &[], start)
        .expect("known")
        .deadlines;
    assert_eq!(due.completion_due_at, local("2026-03-11 17:30"));
}

#[test]
fn an_item_limit_beats_the_tier_only_at_the_items_default_urgency() {
    let policy = station();
    // Street vending: the item's 3 working days.
    let own = policy
        .classify("um-street-vending", None, &[], local(START))
        .expect("known");
    assert_eq!(own.deadlines.completion_due_at, local("2026-03-09 17:30"));
    assert_eq!(own.urgency, Urgency::General);
    // Raised to emergency: the tier's 2 hours.
    let raised = policy
        .classify(
            "um-street-vending",
            Some(Urgency::Emergency),
            &[],
            local(START),
        )
        .expect("known");
    assert_eq!(
        raised.deadlines.completion_due_at,
        local("2026-03-04 12:00")
    );
    assert_eq!(raised.urgency, Urgency::Emergency);
    // An item response limit: water outage, 2 natural hours.
    let water = policy
        .classify("ut-water-outage", None, &[], local(START))
        .expect("known");
    assert_eq!(water.deadlines.response_due_at, local("2026-03-04 12:00"));
    assert_eq!(water.handling_mode, HandlingMode::Referral);
    assert_eq!(water.departments, vec!["water".to_string()]);
    assert_eq!(water.escalation_chain, vec!["water", "district", "city"]);
    assert_eq!(water.category, "utilities");
}

#[test]
fn a_priority_lane_shortens_only_where_policy_says_so() {
    let policy = station();
    let start = local(START);
    // Elderly allowance: 20 wd, cut by 25% → 15 wd for an elderly resident.
    let plain = policy
        .classify("ca-elderly-allowance", None, &[], start)
        .expect("known")
        .deadlines;
    let lane = policy
        .classify(
            "ca-elderly-allowance",
            None,
            &[PriorityLane::Elderly],
            start,
        )
        .expect("known")
        .deadlines;
    assert_eq!(plain.completion_due_at, policy.add_working_days(start, 20));
    assert_eq!(lane.completion_due_at, policy.add_working_days(start, 15));
    // An item without its own cut follows the profile default, 0%.
    let item = "ss-resident-pension-enrolment";
    let plain = policy
        .classify(item, None, &[], start)
        .expect("known")
        .deadlines;
    let lane = policy
        .classify(item, None, &[PriorityLane::Military], start)
        .expect("known")
        .deadlines;
    assert_eq!(plain, lane);
    // A profile that cuts 50% shortens accept and tier limits; lanes it does not honour do not.
    let text = BUILTIN_COMMUNITY_STATION
        .replace("shorten_percent = 0", "shorten_percent = 50")
        .replace(
            "lanes = [\"elderly\", \"military\", \"disabled\"]",
            "lanes = [\"elderly\"]",
        );
    let halving = Policy::builtin(&text).expect("valid profile");
    assert_eq!(
        halving.accept_due(start, &[PriorityLane::Elderly]),
        start + Duration::hours(12)
    );
    assert_eq!(
        halving.accept_due(start, &[PriorityLane::Disabled]),
        start + Duration::hours(24)
    );
    let due = halving
        .classify(item, None, &[PriorityLane::Elderly], start)
        .expect("known")
        .deadlines;
    // 5 wd halved, rounded up: 3 wd.
    assert_eq!(due.completion_due_at, local("2026-03-09 17:30"));
}

#[test]
fn the_next_working_day_clock_start_moves_the_anchor() {
    let text = BUILTIN_CITY_HOTLINE_12345.replace(
        "clock_start = \"on_dispatch\"",
        "clock_start = \"next_working_day\"",
    );
    let policy = Policy::builtin(&text).expect("valid profile");
    assert_eq!(policy.clock_start(), ClockStart::NextWorkingDay);
    // Dispatched on the eve of National Day: the clock starts Thu 8 Oct 09:00.
    let start = local("2026-09-30 10:00");
    assert_eq!(policy.anchor(start), local("2026-10-08 09:00"));
    let due = policy
        .classify("um-street-vending", None, &[], start)
        .expect("known")
        .deadlines;
    // 3 wd from 8 Oct: Fri 9, make-up Sat 10, Mon 12.
    assert_eq!(due.completion_due_at, local("2026-10-12 17:30"));
    assert_eq!(due.response_due_at, local("2026-10-09 09:00"));
}

#[test]
fn reminders_and_warnings_sit_inside_the_limit() {
    let policy = station();
    let start = local(START);
    // 2-hour emergency: the 24 h lead clamps to the start; warning at 80% = 96 minutes.
    let emergency = policy
        .classify("um-manhole-cover", None, &[], start)
        .expect("known")
        .deadlines;
    assert_eq!(emergency.remind_at, start);
    assert_eq!(emergency.warn_at, start + Duration::minutes(96));
    // Water outage: the item's 4 h lead before a 24 h limit.
    let water = policy
        .classify("ut-water-outage", None, &[], start)
        .expect("known")
        .deadlines;
    assert_eq!(water.remind_at, start + Duration::hours(20));
    // Rescheduling after an extension uses the same rules.
    let due = local("2026-03-20 17:30");
    let schedule = policy.reschedule("ss-pension-certification", start, due);
    assert_eq!(schedule.remind_at, due - Duration::hours(24));
    assert_eq!(schedule.warn_at, start + (due - start) * 4 / 5);
    for policy in [station(), hotline()] {
        for item in policy.catalogue().items() {
            for urgency in [None, Some(Urgency::Emergency), Some(Urgency::Complex)] {
                let d = policy
                    .classify(&item.id, urgency, &[PriorityLane::Disabled], start)
                    .expect("known")
                    .deadlines;
                assert!(
                    start < d.response_due_at && d.response_due_at <= d.completion_due_at,
                    "{}",
                    item.id
                );
                assert!(
                    start <= d.remind_at && d.remind_at <= d.completion_due_at,
                    "{}",
                    item.id
                );
                assert!(
                    start < d.warn_at && d.warn_at < d.completion_due_at,
                    "{}",
                    item.id
                );
            }
        }
    }
}

#[test]
fn an_unknown_item_is_a_policy_error() {
    let result = station().classify("no-such-item", None, &[], local(START));
    assert_eq!(
        result,
        Err(PolicyError::UnknownCatalogueItem("no-such-item".into()))
    );
    assert!(station().classify("", None, &[], local(START)).is_err());
}

#[test]
fn the_directory_checks_departments_and_full_grid_paths() {
    let policy = station();
    let path = |street: &str, community: &str, grid: &str, micro: Option<&str>| GridPath {
        street: street.into(),
        community: community.into(),
        grid: grid.into(),
        micro_grid: micro.map(Into::into),
    };
    assert!(policy.knows_department("civil-affairs"));
    assert!(!policy.knows_department("ministry-of-magic"));
    assert!(!policy.knows_department(""));
    assert!(policy.knows_grid(&path("jd-01", "sq-0101", "wg-010101", None)));
    assert!(policy.knows_grid(&path("jd-01", "sq-0101", "wg-010101", Some("wwg-01010101"))));
    assert!(policy.knows_grid(&path("jd-03", "sq-0303", "wg-030303", None)));
    // Wrong micro-grid, wrong nesting, unknown codes.
    assert!(!policy.knows_grid(&path("jd-01", "sq-0101", "wg-010101", Some("wwg-02010101"))));
    assert!(!policy.knows_grid(&path("jd-01", "sq-0101", "wg-010102", Some("wwg-01010101"))));
    assert!(!policy.knows_grid(&path("jd-02", "sq-0101", "wg-010101", None)));
    assert!(!policy.knows_grid(&path("jd-01", "sq-0101", "wg-999999", None)));
    let directory = policy.directory();
    assert_eq!(directory.district(), "yc");
    assert_eq!(directory.grids().count(), 27);
}

fn invalid(result: Result<impl std::fmt::Debug, LoadError>) -> (String, String, String) {
    match result {
        Err(LoadError::Invalid {
            file, at, field, ..
        }) => (file, at, field),
        other => panic!("expected an invalid-field error, got {other:?}"),
    }
}

fn small_catalogue(item_body: &str) -> String {
    format!(
        "version = \"t\"\n[[categories]]\nid = \"c\"\nname = \"C\"\n[[categories.items]]\nid = \"x\"\nname = \"X\"\n{item_body}\n"
    )
}

const GOOD_ITEM: &str = "departments = [\"water\"]\nhandling_mode = \"referral\"\ndefault_urgency = \"general\"\ncompletion = { amount = 5, unit = \"working_days\" }\nescalation_chain = [\"street\"]";

#[test]
fn catalogue_errors_name_the_item_and_field() {
    let directory = Directory::builtin();
    let parse = |body: &str| Catalogue::parse("cat.toml", &small_catalogue(body), &directory);
    assert!(parse(GOOD_ITEM).is_ok());
    let cases = [
        (GOOD_ITEM.replace("\"water\"", "\"nowhere\""), "departments"),
        (
            GOOD_ITEM.replace("departments = [\"water\"]", "departments = []"),
            "departments",
        ),
        (
            GOOD_ITEM.replace("amount = 5", "amount = 0"),
            "completion.amount",
        ),
        (
            GOOD_ITEM.replace("amount = 5", "amount = -2"),
            "completion.amount",
        ),
        (GOOD_ITEM.replace("[\"street\"]", "[]"), "escalation_chain"),
        (
            GOOD_ITEM.replace("[\"street\"]", "[\"galaxy\"]"),
            "escalation_chain",
        ),
        (
            format!("{GOOD_ITEM}\nlane_shorten_percent = 95"),
            "lane_shorten_percent",
        ),
        (
            format!("{GOOD_ITEM}\nreminder_lead_hours = 0"),
            "reminder_lead_hours",
        ),
        (
            format!(
                "{GOOD_ITEM}\nstatutory = {{ amount = 0, unit = \"working_days\", basis = \"law\" }}"
            ),
            "statutory.amount",
        ),
        (
            format!(
                "{GOOD_ITEM}\nstatutory = {{ amount = 3, unit = \"working_days\", basis = \" \" }}"
            ),
            "statutory.basis",
        ),
    ];
    for (body, field) in cases {
        let (file, at, got) = invalid(parse(&body));
        assert_eq!(
            (file.as_str(), at.as_str(), got.as_str()),
            ("cat.toml", "item \"x\"", field),
            "{body}"
        );
    }
    // Duplicate ids across categories.
    let twice = format!(
        "{}[[categories]]\nid = \"d\"\nname = \"D\"\n[[categories.items]]\nid = \"x\"\nname = \"X\"\n{GOOD_ITEM}\n",
        small_catalogue(GOOD_ITEM)
    );
    assert_eq!(
        invalid(Catalogue::parse("cat.toml", &twice, &directory)).2,
        "id"
    );
    // Unknown fields and bad enum values are syntax errors naming the key.
    for (body, needle) in [
        (format!("{GOOD_ITEM}\ncolour = \"red\""), "colour"),
        (
            GOOD_ITEM.replace("\"working_days\"", "\"fortnights\""),
            "fortnights",
        ),
    ] {
        match parse(&body) {
            Err(LoadError::Syntax { file, message }) => {
                assert_eq!(file, "cat.toml");
                assert!(message.contains(needle), "{message}");
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }
}

#[test]
fn profile_and_directory_errors_name_the_field() {
    let cases = [
        (
            BUILTIN_COMMUNITY_STATION.replace("warn_fraction = 0.8", "warn_fraction = 1.5"),
            "warn_fraction",
        ),
        (
            BUILTIN_COMMUNITY_STATION.replace("accept = { amount = 24", "accept = { amount = 0"),
            "accept.amount",
        ),
        (
            BUILTIN_COMMUNITY_STATION
                .replace("escalation_grace_hours = 24", "escalation_grace_hours = -1"),
            "escalation_grace_hours",
        ),
        (
            BUILTIN_COMMUNITY_STATION.replace("max_working_days = 3", "max_working_days = 30"),
            "extensions.max_working_days",
        ),
        (
            BUILTIN_COMMUNITY_STATION.replace(
                "completion = { amount = 15, unit = \"working_days\" }",
                "completion = { amount = 0, unit = \"working_days\" }",
            ),
            "tiers.complex.completion.amount",
        ),
    ];
    for (text, field) in cases {
        let (file, at, got) = invalid(Profile::parse("station.toml", &text));
        assert_eq!(
            (file.as_str(), at.as_str(), got.as_str()),
            ("station.toml", "profile \"community-station\"", field)
        );
    }
    let duplicate = BUILTIN_DIRECTORY.replacen("code = \"sq-0102\"", "code = \"sq-0101\"", 1);
    assert_eq!(invalid(Directory::parse("dir.toml", &duplicate)).2, "code");
    let department = BUILTIN_DIRECTORY.replacen("code = \"gas\"", "code = \"water\"", 1);
    let (_, at, field) = invalid(Directory::parse("dir.toml", &department));
    assert_eq!(
        (at.as_str(), field.as_str()),
        ("department \"water\"", "code")
    );
    // Policy::from_files reports a catalogue that names a department the directory lacks.
    let small_directory = BUILTIN_DIRECTORY.replacen("code = \"heat\"", "code = \"heating\"", 1);
    let result = Policy::from_files(
        ("p.toml", BUILTIN_COMMUNITY_STATION),
        ("c.toml", BUILTIN_CATALOGUE),
        &[("cal.toml", engine_core::calendar::BUILTIN_CN_2025_2026)],
        ("d.toml", &small_directory),
    );
    let (file, _, field) = invalid(result);
    assert_eq!((file.as_str(), field.as_str()), ("c.toml", "departments"));
}

#[test]
fn law_enforcement_items_are_flagged_out_of_satisfaction_with_the_catalogue_version() {
    let policy = Policy::for_tests();
    let at = "2026-03-02T01:00:00Z".parse().expect("instant");
    for (item, excluded) in [
        ("um-illegal-construction", true),
        ("fh-food-safety-complaint", true),
        ("um-street-vending", false),
    ] {
        let classification = policy.classify(item, None, &[], at).expect("classify");
        assert_eq!(
            classification.excluded_from_satisfaction, excluded,
            "{item}"
        );
        assert_eq!(classification.deadlines.catalogue_version, "2026.4");
    }
}

#[test]
fn the_builtin_catalogue_asks_typed_questions() {
    let directory = Directory::builtin();
    let catalogue = Catalogue::builtin(&directory);
    let asking = catalogue
        .items()
        .filter(|i| !i.questions.is_empty())
        .count();
    assert!(asking >= 5, "{asking} items ask questions");
    let light = catalogue.item("um-streetlight").expect("streetlight");
    assert_eq!(light.questions[0].code, "pole_number");
    assert!(light.questions[0].required);
    let wages = catalogue.item("ss-wage-arrears").expect("wage arrears");
    let codes: Vec<&str> = wages.questions.iter().map(|q| q.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "employer_name",
            "amount_owed",
            "months_owed",
            "has_contract"
        ]
    );
}

#[test]
fn a_catalogue_question_of_a_bad_shape_is_refused_with_the_item_named() {
    let directory = Directory::builtin();
    let text = BUILTIN_CATALOGUE.replacen(
        "code = \"pole_number\"\nkind = \"text\"",
        "code = \"pole_number\"\nkind = \"single_choice\"",
        1,
    );
    let err = Catalogue::parse("catalogue.toml", &text, &directory)
        .expect_err("a choice question without choices");
    let msg = err.to_string();
    assert!(
        msg.contains("um-streetlight") && msg.contains("questions[0]"),
        "{msg}"
    );
}
