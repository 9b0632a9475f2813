//! The working-day calendar: the shipped 2025/2026 data checked day by day against the official
//! notices, and deadline arithmetic across holidays, make-up days, weekends and office hours.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use engine_core::calendar::{BUILTIN_CN_2025_2026, WorkingCalendar};
use engine_core::policy::LoadError;

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

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

fn cal() -> WorkingCalendar {
    WorkingCalendar::builtin()
}

/// Weekdays taken off by the holiday blocks, copied from cn-public-holidays.md.
const WEEKDAYS_OFF: &[(i32, &[&str])] = &[
    (
        2025,
        &[
            "01-01", "01-28", "01-29", "01-30", "01-31", "02-03", "02-04", "04-04", "05-01",
            "05-02", "05-05", "06-02", "10-01", "10-02", "10-03", "10-06", "10-07", "10-08",
        ],
    ),
    (
        2026,
        &[
            "01-01", "01-02", "02-16", "02-17", "02-18", "02-19", "02-20", "02-23", "04-06",
            "05-01", "05-04", "05-05", "06-19", "09-25", "10-01", "10-02", "10-05", "10-06",
            "10-07",
        ],
    ),
];

/// Make-up working days, copied from cn-public-holidays.md.
const MAKEUP_DAYS: &[(i32, &[&str])] = &[
    (2025, &["01-26", "02-08", "04-27", "09-28", "10-11"]),
    (
        2026,
        &["01-04", "02-14", "02-28", "05-09", "09-20", "10-10"],
    ),
];

#[test]
fn every_day_of_2025_and_2026_matches_the_notices() {
    let cal = cal();
    for year in [2025, 2026] {
        let off: Vec<NaiveDate> = WEEKDAYS_OFF
            .iter()
            .filter(|(y, _)| *y == year)
            .flat_map(|(_, days)| days.iter().map(move |d| date(&format!("{year}-{d}"))))
            .collect();
        let makeup: Vec<NaiveDate> = MAKEUP_DAYS
            .iter()
            .filter(|(y, _)| *y == year)
            .flat_map(|(_, days)| days.iter().map(move |d| date(&format!("{year}-{d}"))))
            .collect();
        let mut n_working = 0;
        for day in date(&format!("{year}-01-01"))
            .iter_days()
            .take_while(|d| d.year() == year)
        {
            let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
            let expected = if makeup.contains(&day) {
                true
            } else if off.contains(&day) {
                false
            } else {
                !weekend
            };
            assert_eq!(
                cal.is_working_day(day),
                expected,
                "{day} ({})",
                day.weekday()
            );
            n_working += usize::from(expected);
        }
        assert_eq!(n_working, 248, "working days in {year}");
    }
}

#[test]
fn make_up_saturdays_and_sundays_are_working_days() {
    let cal = cal();
    for day in [
        "2026-02-14",
        "2026-02-28",
        "2026-10-10",
        "2025-01-26",
        "2025-09-28",
    ] {
        assert!(cal.is_working_day(date(day)), "{day}");
    }
    // An ordinary Saturday and a swapped-off Friday are not.
    assert!(!cal.is_working_day(date("2026-03-07")));
    assert!(!cal.is_working_day(date("2026-02-20")));
}

#[test]
fn covered_years_are_reported_and_uncovered_years_fall_back_to_weekends() {
    let cal = cal();
    assert!(cal.covers(2025) && cal.covers(2026));
    assert!(!cal.covers(2027) && !cal.covers(2024));
    assert_eq!(cal.years().collect::<Vec<_>>(), vec![2025, 2026]);
    // 2027-01-01 is a Friday: without 2027 data it is an ordinary working day.
    assert!(cal.is_working_day(date("2027-01-01")));
    assert!(!cal.is_working_day(date("2027-01-02")));
}

#[test]
fn five_working_days_from_the_eve_of_national_day_skip_the_holiday_week() {
    // Wed 30 Sep → Thu 8 (1), Fri 9 (2), make-up Sat 10 (3), Mon 12 (4), Tue 13 (5).
    let due = cal().add_working_days(local("2026-09-30 10:00"), 5);
    assert_eq!(due, local("2026-10-13 17:30"));
}

#[test]
fn working_days_count_from_the_next_day_and_end_at_closing_time() {
    let cal = cal();
    let cases = [
        // (start, n, due)
        ("2026-03-04 10:00", 1, "2026-03-05 17:30"),
        ("2026-03-04 10:00", 5, "2026-03-11 17:30"),
        // After hours on Wednesday: still counted from Thursday.
        ("2026-03-04 20:00", 5, "2026-03-11 17:30"),
        // Received on a Sunday: Monday is day 1.
        ("2026-03-08 11:00", 5, "2026-03-13 17:30"),
        // Spring Festival 2026: Fri 13 → make-up Sat 14 (1), Tue 24 (2).
        ("2026-02-13 09:30", 2, "2026-02-24 17:30"),
        // 15 working days across Labour Day 2025 with the make-up Sunday 27 April.
        ("2025-04-25 09:00", 15, "2025-05-20 17:30"),
    ];
    for (start, n, due) in cases {
        assert_eq!(
            cal.add_working_days(local(start), n),
            local(due),
            "{start} + {n} wd"
        );
    }
    assert_eq!(
        cal.add_working_days(local("2026-03-04 10:00"), 0),
        local("2026-03-04 10:00")
    );
}

#[test]
fn calendar_day_deadlines_ending_on_a_holiday_move_to_the_next_working_day() {
    let cal = cal();
    // 7 days from 28 Sep 2026 is 5 Oct, inside National Day: moves to Thu 8 Oct.
    assert_eq!(
        cal.add_calendar_days(local("2026-09-28 15:00"), 7),
        local("2026-10-08 17:30")
    );
    // 15 days from 2 Mar 2026 is Tue 17 Mar, a working day.
    assert_eq!(
        cal.add_calendar_days(local("2026-03-02 15:00"), 15),
        local("2026-03-17 17:30")
    );
    // Landing on an ordinary Sunday moves to Monday.
    assert_eq!(
        cal.add_calendar_days(local("2026-03-01 08:00"), 7),
        local("2026-03-09 17:30")
    );
}

#[test]
fn natural_hours_ignore_the_calendar() {
    let start = local("2026-09-30 22:00");
    assert_eq!(cal().add_natural_hours(start, 2), local("2026-10-01 00:00"));
    assert_eq!(
        cal().add_natural_hours(start, 24),
        local("2026-10-01 22:00")
    );
}

#[test]
fn working_hours_count_only_office_hours_on_working_days() {
    let cal = cal();
    let cases = [
        // Across the lunch break: 1 h before noon, 1 h after 13:30.
        ("2026-03-04 11:00", 2, "2026-03-04 14:30"),
        // Ending exactly at noon stays at noon.
        ("2026-03-04 10:00", 2, "2026-03-04 12:00"),
        // Received during lunch: counting starts at 13:30.
        ("2026-03-04 12:40", 1, "2026-03-04 14:30"),
        // After hours: counting starts at the next opening.
        ("2026-03-04 18:00", 2, "2026-03-05 11:00"),
        // Before opening.
        ("2026-03-04 07:00", 3, "2026-03-04 12:00"),
        // On a Sunday: Monday's opening.
        ("2026-03-08 10:00", 1, "2026-03-09 10:00"),
        // Over a weekend: 1 h on Friday, 2 h on Monday.
        ("2026-03-06 16:30", 3, "2026-03-09 11:00"),
        // A full day is 7 office hours.
        ("2026-03-04 09:00", 7, "2026-03-04 17:30"),
        ("2026-03-04 09:00", 8, "2026-03-05 10:00"),
        // Over National Day 2026 into the make-up Saturday 10 Oct.
        ("2026-09-30 17:00", 2, "2026-10-08 10:30"),
        ("2026-10-09 17:00", 1, "2026-10-10 09:30"),
    ];
    for (start, hours, due) in cases {
        assert_eq!(
            cal.add_working_hours(local(start), hours),
            local(due),
            "{start} + {hours} wh"
        );
    }
}

#[test]
fn next_working_day_opening_skips_holidays() {
    let cal = cal();
    assert_eq!(
        cal.next_working_day_opening(local("2026-09-30 08:00")),
        local("2026-10-08 09:00")
    );
    assert_eq!(
        cal.next_working_day_opening(local("2026-03-06 12:00")),
        local("2026-03-09 09:00")
    );
}

#[test]
fn huge_counts_are_bounded_and_do_not_panic() {
    let cal = cal();
    let start = local("2026-03-04 10:00");
    assert!(cal.add_working_days(start, u32::MAX) > start);
    assert!(cal.add_working_hours(start, u32::MAX) > start);
    assert!(cal.add_calendar_days(start, u32::MAX) > start);
    assert!(cal.add_natural_hours(start, u32::MAX) > start);
}

#[test]
fn a_deployment_adds_a_year_with_a_second_file() {
    // A fixture year (not real 2027 data): one holiday and one make-up Saturday.
    let extra = r#"
        id = "cn-extra"
        version = "1"
        [[years]]
        year = 2027
        holidays = [{ from = "2027-01-01", to = "2027-01-01", name = "test holiday" }]
        makeup_workdays = [{ date = "2027-01-09", name = "test make-up" }]
    "#;
    let cal =
        WorkingCalendar::parse_many(&[("cn.toml", BUILTIN_CN_2025_2026), ("extra.toml", extra)])
            .expect("merges");
    assert!(cal.covers(2027));
    assert!(!cal.is_working_day(date("2027-01-01")));
    assert!(cal.is_working_day(date("2027-01-09")));
    // The first file's settings still apply.
    assert_eq!(
        cal.add_working_hours(local("2027-01-04 17:00"), 1),
        local("2027-01-05 09:30")
    );
}

fn invalid_field(result: Result<WorkingCalendar, LoadError>) -> (String, String, String) {
    match result {
        Err(LoadError::Invalid {
            file, at, field, ..
        }) => (file, at, field),
        other => panic!("expected an invalid-field error, got {other:?}"),
    }
}

#[test]
fn a_year_declared_twice_is_refused() {
    let result = WorkingCalendar::parse_many(&[
        ("a.toml", BUILTIN_CN_2025_2026),
        ("b.toml", BUILTIN_CN_2025_2026),
    ]);
    let (file, at, field) = invalid_field(result);
    assert_eq!(
        (file.as_str(), at.as_str(), field.as_str()),
        ("b.toml", "years[2025]", "year")
    );
}

#[test]
fn errors_name_the_file_entry_and_field() {
    let bad_date = r#"
        id = "x"
        version = "1"
        [[years]]
        year = 2030
        holidays = [{ from = "2030-02-30", to = "2030-03-01", name = "bad" }]
    "#;
    let (file, at, field) = invalid_field(WorkingCalendar::parse("x.toml", bad_date));
    assert_eq!(file, "x.toml");
    assert!(at.contains("years[2030].holidays[0]"), "{at}");
    assert_eq!(field, "from");

    let reversed = bad_date.replace("2030-02-30", "2030-03-05");
    assert_eq!(
        invalid_field(WorkingCalendar::parse("x.toml", &reversed)).2,
        "to"
    );

    let weekday_makeup = r#"
        id = "x"
        version = "1"
        [[years]]
        year = 2030
        makeup_workdays = [{ date = "2030-03-06", name = "a Wednesday" }]
    "#;
    assert_eq!(
        invalid_field(WorkingCalendar::parse("x.toml", weekday_makeup)).2,
        "date"
    );

    let bad_offset = "id = \"x\"\nversion = \"1\"\nutc_offset = \"8\"\n";
    assert_eq!(
        invalid_field(WorkingCalendar::parse("x.toml", bad_offset)).2,
        "utc_offset"
    );

    let bad_hours = "id = \"x\"\nversion = \"1\"\noffice_hours = [[\"13:00\", \"12:00\"]]\n";
    assert_eq!(
        invalid_field(WorkingCalendar::parse("x.toml", bad_hours)).2,
        "office_hours"
    );

    let other_offset = "id = \"x\"\nversion = \"1\"\nutc_offset = \"+09:00\"\n";
    let result =
        WorkingCalendar::parse_many(&[("cn.toml", BUILTIN_CN_2025_2026), ("x.toml", other_offset)]);
    assert_eq!(invalid_field(result).2, "utc_offset");
}

#[test]
fn unknown_fields_are_refused_with_their_name() {
    let text = "id = \"x\"\nversion = \"1\"\nholiday = []\n";
    match WorkingCalendar::parse("x.toml", text) {
        Err(LoadError::Syntax { file, message }) => {
            assert_eq!(file, "x.toml");
            assert!(message.contains("holiday"), "{message}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
}
