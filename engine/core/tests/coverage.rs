//! Calendar coverage as a fact: where the loaded calendar ends, which spans it covers, and the
//! `provisional` mark on deadlines counted through days it does not cover.

use chrono::{DateTime, NaiveDate, Utc};
use engine_core::calendar::{BUILTIN_CN_2025_2026, WorkingCalendar};
use engine_core::policy::Policy;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 instant")
}

/// A 2027 file as a deployment would add it (dates for the tests only).
const Y2027: &str = include_str!("fixtures/cn-2027-test.toml");

#[test]
fn coverage_ends_on_the_last_day_of_the_last_contiguous_year() {
    let cal = WorkingCalendar::builtin();
    assert_eq!(cal.coverage_end(), NaiveDate::from_ymd_opt(2026, 12, 31));
    let more = WorkingCalendar::parse_many(&[
        ("cn-2025-2026.toml", BUILTIN_CN_2025_2026),
        ("cn-2027.toml", Y2027),
    ])
    .expect("merged");
    assert_eq!(more.coverage_end(), NaiveDate::from_ymd_opt(2027, 12, 31));
    assert_eq!(
        more.sources(),
        vec!["cn@2026.1: 2025,2026", "cn-2027-test@2027.0: 2027"]
    );
    // A gap ends the coverage: 2029 alone does not extend it.
    let gap = Y2027.replace("2027", "2029");
    let gapped = WorkingCalendar::parse_many(&[
        ("cn-2025-2026.toml", BUILTIN_CN_2025_2026),
        ("gap.toml", &gap),
    ])
    .expect("merged");
    assert_eq!(gapped.coverage_end(), NaiveDate::from_ymd_opt(2026, 12, 31));
}

#[test]
fn spans_into_an_uncovered_year_are_not_covered() {
    let cal = WorkingCalendar::builtin();
    assert!(cal.covers_span(at("2026-12-01T01:00:00Z"), at("2026-12-31T09:30:00Z")));
    // 2026-12-31 17:00 UTC is 2027-01-01 01:00 in Beijing.
    assert!(!cal.covers_span(at("2026-12-30T01:00:00Z"), at("2026-12-31T17:00:00Z")));
}

#[test]
fn deadlines_counted_into_an_uncovered_year_are_provisional() {
    let policy = Policy::for_tests();
    // 3 working days from Tuesday 29 December 2026 run into January 2027.
    let late = policy
        .classify("um-street-vending", None, &[], at("2026-12-29T02:00:00Z"))
        .expect("classify");
    assert!(late.deadlines.provisional, "{:?}", late.deadlines);
    // Without the 2027 data, 1 January 2027 (a Friday) counts as a working day.
    assert_eq!(late.deadlines.completion_due_at, at("2027-01-01T09:30:00Z"));
    let early = policy
        .classify("um-street-vending", None, &[], at("2026-12-01T02:00:00Z"))
        .expect("classify");
    assert!(!early.deadlines.provisional);
    // Natural-hour limits never depend on the calendar.
    let emergency = policy
        .classify(
            "um-street-vending",
            Some(schemas::Urgency::Emergency),
            &[],
            at("2026-12-31T15:00:00Z"),
        )
        .expect("classify");
    assert!(!emergency.deadlines.provisional);
}

#[test]
fn a_loaded_year_makes_the_same_deadline_final_and_official() {
    let with_2027 = Policy::from_files(
        (
            "profile.toml",
            engine_core::policy::BUILTIN_COMMUNITY_STATION,
        ),
        ("catalogue.toml", engine_core::catalogue::BUILTIN_CATALOGUE),
        &[
            ("cn-2025-2026.toml", BUILTIN_CN_2025_2026),
            ("cn-2027.toml", Y2027),
        ],
        ("directory.toml", engine_core::directory::BUILTIN_DIRECTORY),
    )
    .expect("policy");
    let stamped = with_2027
        .classify("um-street-vending", None, &[], at("2026-12-29T02:00:00Z"))
        .expect("classify");
    assert!(!stamped.deadlines.provisional);
    // 12-30, 12-31, then 01-01..01-03 off: the third working day is Monday 4 January 2027.
    assert_eq!(
        stamped.deadlines.completion_due_at,
        at("2027-01-04T09:30:00Z")
    );
}

#[test]
fn referral_windows_counted_into_an_uncovered_year_are_marked() {
    let policy = Policy::for_tests();
    // 4 working hours from 17:00 on 31 December 2026 run into 2027.
    assert!(policy.referral_provisional(at("2026-12-31T09:00:00Z")));
    assert!(!policy.referral_provisional(at("2026-12-01T02:00:00Z")));
}
