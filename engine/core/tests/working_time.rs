//! Working-hour arithmetic exact to the instant: a table of named cases across lunch breaks,
//! closing time, weekends, holidays and make-up days, properties over random starts and spans,
//! and every working-hour limit of a profile stamped to the sub-second.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, TimeZone, Utc};
use engine_core::calendar::WorkingCalendar;
use engine_core::policy::{BUILTIN_COMMUNITY_STATION, Policy};
use proptest::prelude::*;

/// A local (UTC+8) wall-clock instant with fractional seconds, `YYYY-MM-DD HH:MM:SS.f`.
fn local(text: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").expect("test time");
    FixedOffset::east_opt(8 * 3600)
        .expect("offset")
        .from_local_datetime(&naive)
        .single()
        .expect("fixed offsets are unambiguous")
        .with_timezone(&Utc)
}

/// `(name, start, span in milliseconds, expected end)`, all local wall-clock times.
const CASES: &[(&str, &str, i64, &str)] = &[
    (
        "the partial minute before closing carries over the lunch break",
        "2026-09-30 16:30:00.68",
        4 * 3_600_000,
        "2026-10-08 13:30:00.68",
    ),
    (
        "seconds before noon carry over to the afternoon opening",
        "2026-03-02 11:59:30.5",
        3_600_000,
        "2026-03-02 14:29:30.5",
    ),
    (
        "a deadline landing exactly at noon stays at noon",
        "2026-03-02 11:00:00",
        3_600_000,
        "2026-03-02 12:00:00",
    ),
    (
        "a millisecond before closing carries to the next morning",
        "2026-03-02 17:29:59.999",
        3_600_000,
        "2026-03-03 09:59:59.999",
    ),
    (
        "Friday evening runs over the weekend to Monday",
        "2026-11-27 17:00:00.25",
        3_600_000,
        "2026-11-30 09:30:00.25",
    ),
    (
        "New Year holiday, then a make-up Sunday",
        "2025-12-31 17:00:00.5",
        3_600_000,
        "2026-01-04 09:30:00.5",
    ),
    (
        "a make-up Saturday counts",
        "2026-10-09 17:00:00.1",
        2 * 3_600_000,
        "2026-10-10 10:30:00.1",
    ),
    (
        "before opening: the fraction before 09:00 does not count",
        "2026-03-02 08:15:12.3",
        3_600_000,
        "2026-03-02 10:00:00",
    ),
    (
        "a start on a holiday counts from the first working morning",
        "2026-10-03 14:22:11.7",
        3_600_000,
        "2026-10-08 10:00:00",
    ),
    (
        "a start in the lunch break counts from 13:30",
        "2026-03-02 12:45:33.3",
        30 * 60_000,
        "2026-03-02 14:00:00",
    ),
    (
        "a sub-second span inside office hours",
        "2026-03-02 10:00:00.9",
        250,
        "2026-03-02 10:00:01.15",
    ),
    (
        "a full office day from opening ends at closing",
        "2026-03-02 09:00:00",
        7 * 3_600_000,
        "2026-03-02 17:30:00",
    ),
];

#[test]
fn named_cases_are_exact_to_the_millisecond() {
    let cal = WorkingCalendar::builtin();
    for (name, start, span_ms, expected) in CASES {
        let got = cal.add_working_time(local(start), Duration::milliseconds(*span_ms));
        assert_eq!(got, local(expected), "{name}: {start} + {span_ms} ms");
    }
}

#[test]
fn the_referral_of_the_national_day_eve_is_due_at_thirteen_thirty_and_sub_seconds() {
    let cal = WorkingCalendar::builtin();
    let referred = local("2026-09-30 16:30:00.68");
    let due = cal.add_working_hours(referred, 4);
    assert_eq!(due.to_rfc3339(), "2026-10-08T05:30:00.680+00:00");
    assert_eq!(cal.add_working_minutes(referred, 240), due);
}

#[test]
fn whole_hours_and_minutes_agree_with_exact_time() {
    let cal = WorkingCalendar::builtin();
    let start = local("2026-05-08 15:07:41.123456");
    assert_eq!(
        cal.add_working_hours(start, 3),
        cal.add_working_time(start, Duration::hours(3))
    );
    assert_eq!(
        cal.add_working_minutes(start, 97),
        cal.add_working_time(start, Duration::minutes(97))
    );
    assert_eq!(cal.add_working_time(start, Duration::zero()), start);
    assert_eq!(cal.add_working_time(start, Duration::seconds(-5)), start);
}

/// A profile whose every limit runs in working hours, so each stamp is checked to the instant.
fn working_hour_policy() -> Policy {
    let profile = BUILTIN_COMMUNITY_STATION
        .replace(
            "accept = { amount = 24, unit = \"natural_hours\" }",
            "accept = { amount = 2, unit = \"working_hours\" }",
        )
        .replace(
            "whistle_report = { amount = 24, unit = \"natural_hours\" }",
            "whistle_report = { amount = 3, unit = \"working_hours\" }",
        )
        .replace(
            "return_window = { amount = 1, unit = \"working_days\" }",
            "return_window = { amount = 6, unit = \"working_hours\" }",
        )
        .replace(
            "response = { amount = 24, unit = \"natural_hours\" }\ncompletion = { amount = 5, unit = \"working_days\" }",
            "response = { amount = 1, unit = \"working_hours\" }\ncompletion = { amount = 8, unit = \"working_hours\" }",
        );
    assert!(profile.contains("amount = 8, unit = \"working_hours\""));
    Policy::builtin(&profile).expect("the working-hour profile is valid")
}

#[test]
fn every_working_hour_limit_of_a_profile_is_stamped_to_the_sub_second() {
    let policy = working_hour_policy();
    let at = local("2026-09-30 16:30:00.68");
    assert_eq!(policy.sign_off_due(at), local("2026-10-08 13:30:00.68"));
    assert_eq!(policy.accept_due(at, &[]), local("2026-10-08 10:00:00.68"));
    assert_eq!(
        policy.whistle_report_due(at),
        local("2026-10-08 11:00:00.68")
    );
    assert_eq!(
        policy.return_window_end(at),
        local("2026-10-08 15:30:00.68")
    );
    // An item with no limits of its own, at a non-default urgency, takes the general tier.
    let item = policy
        .catalogue()
        .items()
        .find(|item| {
            item.response.is_none() && item.completion.is_none() && item.statutory.is_none()
        })
        .map(|item| item.id.clone());
    let item = item.expect("the catalogue has an item without limits of its own");
    let urgency = Some(schemas::Urgency::General);
    let stamped = policy.classify(&item, urgency, &[], at).expect("classify");
    let deadlines = stamped.deadlines;
    assert_eq!(deadlines.response_due_at, local("2026-10-08 09:00:00.68"));
    assert_eq!(deadlines.completion_due_at, local("2026-10-09 09:00:00.68"));
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 2025-01-01 .. 2026-12-01 UTC in nanoseconds: inside the covered years.
    let from = local("2025-01-01 00:00:00")
        .timestamp_nanos_opt()
        .expect("in range");
    let to = local("2026-12-01 00:00:00")
        .timestamp_nanos_opt()
        .expect("in range");
    (from..to).prop_map(DateTime::from_timestamp_nanos)
}

fn span() -> impl Strategy<Value = Duration> {
    // Up to about four working weeks, in nanoseconds.
    (0i64..(140 * 3_600 * 1_000_000_000)).prop_map(Duration::nanoseconds)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn monotonic_in_the_start(a in instant(), b in instant(), span in span()) {
        let cal = WorkingCalendar::builtin();
        let (early, late) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(cal.add_working_time(early, span) <= cal.add_working_time(late, span));
    }

    #[test]
    fn adding_a_then_b_equals_adding_a_plus_b(start in instant(), a in span(), b in span()) {
        let cal = WorkingCalendar::builtin();
        let stepwise = cal.add_working_time(cal.add_working_time(start, a), b);
        prop_assert_eq!(stepwise, cal.add_working_time(start, a + b));
    }

    #[test]
    fn never_earlier_than_the_span_in_wall_time(start in instant(), span in span()) {
        let cal = WorkingCalendar::builtin();
        prop_assert!(cal.add_working_time(start, span) >= start + span);
    }

    #[test]
    fn whole_minutes_keep_the_start_sub_seconds_inside_office_hours(
        day in 0u32..400, minute_of_day in 0u32..(3 * 60), nanos in 0u32..1_000_000_000, minutes in 1u64..600
    ) {
        // A start inside the morning interval of a working day keeps its fraction of a second.
        let cal = WorkingCalendar::builtin();
        let date = chrono::NaiveDate::from_ymd_opt(2025, 1, 2).expect("date") + chrono::Days::new(u64::from(day));
        let date = cal.working_day_on_or_after(date);
        let time = chrono::NaiveTime::from_hms_nano_opt(9 + minute_of_day / 60, minute_of_day % 60, 0, nanos)
            .expect("time");
        let start = FixedOffset::east_opt(8 * 3600).expect("offset")
            .from_local_datetime(&date.and_time(time)).single().expect("fixed").with_timezone(&Utc);
        let due = cal.add_working_minutes(start, minutes);
        // Office intervals start and end on whole minutes, so the fraction is kept.
        prop_assert_eq!(due.timestamp_subsec_nanos(), nanos);
    }
}
