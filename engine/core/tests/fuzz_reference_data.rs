//! Bounded fuzzing of every reference-data parser (policy profiles, catalogue, calendars,
//! directory) with proptest: random bytes, random TOML-ish text, and mutations of the shipped
//! files. A parser must answer `Ok` or a `LoadError`, never panic; whatever parses must then
//! answer deadline questions without panicking or running unbounded.

use chrono::{DateTime, TimeZone, Utc};
use engine_core::Policy;
use engine_core::calendar::{BUILTIN_CN_2025_2026, WorkingCalendar};
use engine_core::catalogue::{BUILTIN_CATALOGUE, Catalogue};
use engine_core::directory::{BUILTIN_DIRECTORY, Directory};
use engine_core::policy::{BUILTIN_CITY_HOTLINE_12345, BUILTIN_COMMUNITY_STATION, Profile};
use proptest::prelude::*;

/// Enough cases to find shallow crashes, few enough for CI on two cores.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 192,
        max_shrink_iters: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Which shipped file a mutation starts from.
#[derive(Debug, Clone, Copy)]
enum File {
    Station,
    Hotline,
    Catalogue,
    Calendar,
    Directory,
}

impl File {
    fn text(self) -> &'static str {
        match self {
            File::Station => BUILTIN_COMMUNITY_STATION,
            File::Hotline => BUILTIN_CITY_HOTLINE_12345,
            File::Catalogue => BUILTIN_CATALOGUE,
            File::Calendar => BUILTIN_CN_2025_2026,
            File::Directory => BUILTIN_DIRECTORY,
        }
    }
}

fn any_file() -> impl Strategy<Value = File> {
    prop_oneof![
        Just(File::Station),
        Just(File::Hotline),
        Just(File::Catalogue),
        Just(File::Calendar),
        Just(File::Directory),
    ]
}

/// One edit of a text file.
#[derive(Debug, Clone)]
enum Mutation {
    /// Delete the line at this index (mod line count).
    DeleteLine(usize),
    /// Duplicate the line at this index.
    DuplicateLine(usize),
    /// Replace the n-th number in the file with this literal.
    ReplaceNumber(usize, String),
    /// Replace the n-th quoted string with this content.
    ReplaceString(usize, String),
    /// Insert raw text at a char position.
    Insert(usize, String),
    /// Truncate at a char position.
    Truncate(usize),
}

fn extreme_number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("4294967295".to_string()),
        Just("4294967296".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("1e308".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u16>().prop_map(|n| n.to_string()),
    ]
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("9999-12-31".to_string()),
        Just("0000-01-01".to_string()),
        Just("-262144-01-01".to_string()),
        Just("2026-02-30".to_string()),
        Just("25:61".to_string()),
        Just("23:59".to_string()),
        Just("00:00".to_string()),
        Just("+14:00".to_string()),
        Just("-23:59".to_string()),
        Just("+99:99".to_string()),
        Just("sat".to_string()),
        Just("yc/../..".to_string()),
        Just("\u{202e}\u{0000}".to_string()),
        "[a-z0-9:/+\\-]{0,12}",
        ".{0,24}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), extreme_number()).prop_map(|(i, n)| Mutation::ReplaceNumber(i, n)),
        (any::<usize>(), hostile_string()).prop_map(|(i, s)| Mutation::ReplaceString(i, s)),
        (
            any::<usize>(),
            prop_oneof![
                Just("[[".to_string()),
                Just("]]\n".to_string()),
                Just("\"".to_string()),
                Just("\n[x]\n".to_string()),
                Just("= {".to_string()),
                Just("\u{0000}".to_string()),
                ".{0,16}",
            ]
        )
            .prop_map(|(i, s)| Mutation::Insert(i, s)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn char_boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Byte ranges of numbers (runs of ASCII digits) and of `"…"` strings on one line.
fn spans(text: &str, quoted: bool) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if quoted && bytes[i] == b'"' {
            if let Some(end) = bytes[i + 1..]
                .iter()
                .position(|b| *b == b'"' || *b == b'\n')
            {
                out.push((i + 1, i + 1 + end));
                i += end + 2;
                continue;
            }
        } else if !quoted && bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            out.push((start, i));
            continue;
        }
        i += 1;
    }
    out
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let lines: Vec<&str> = text.lines().collect();
    match mutation {
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            let at = i % lines.len();
            let kept: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != at)
                .map(|(_, l)| *l)
                .collect();
            kept.join("\n")
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let at = i % lines.len();
            let mut out: Vec<&str> = lines.clone();
            out.insert(at, lines[at]);
            out.join("\n")
        }
        Mutation::ReplaceNumber(i, with) | Mutation::ReplaceString(i, with) => {
            let found = spans(text, matches!(mutation, Mutation::ReplaceString(..)));
            if found.is_empty() {
                return text.to_string();
            }
            let (start, end) = found[i % found.len()];
            format!("{}{}{}", &text[..start], with, &text[end..])
        }
        Mutation::Insert(at, what) => {
            let at = char_boundary(text, *at);
            format!("{}{}{}", &text[..at], what, &text[at..])
        }
        Mutation::Truncate(at) => text[..char_boundary(text, *at)].to_string(),
        _ => text.to_string(),
    }
}

/// Every parser over `text` standing in for `file`; each must return, never panic.
fn parse_everything(file: File, text: &str) {
    let _ = Profile::parse("fuzz-profile.toml", text);
    let _ = WorkingCalendar::parse("fuzz-calendar.toml", text);
    let directory = Directory::builtin();
    let _ = Catalogue::parse("fuzz-catalogue.toml", text, &directory);
    let _ = Directory::parse("fuzz-directory.toml", text);
    let files = |f: File| {
        if f as u8 == file as u8 {
            text
        } else {
            f.text()
        }
    };
    let profile = match file {
        File::Hotline => files(File::Hotline),
        _ => files(File::Station),
    };
    if let Ok(policy) = Policy::from_files(
        ("profile.toml", profile),
        ("catalogue.toml", files(File::Catalogue)),
        &[("calendar.toml", files(File::Calendar))],
        ("directory.toml", files(File::Directory)),
    ) {
        exercise(policy.calendar());
    }
    if let Ok(calendar) = WorkingCalendar::parse("calendar.toml", text) {
        exercise(&calendar);
    }
}

/// Deadline arithmetic over a parsed calendar: bounded and panic-free at the edges.
fn exercise(calendar: &WorkingCalendar) {
    let starts: [DateTime<Utc>; 3] = [
        Utc.with_ymd_and_hms(2026, 1, 31, 23, 59, 0)
            .single()
            .expect("valid"),
        Utc.with_ymd_and_hms(2025, 9, 30, 16, 0, 0)
            .single()
            .expect("valid"),
        DateTime::<Utc>::MAX_UTC - chrono::Duration::days(2),
    ];
    for from in starts {
        let _ = calendar.add_working_days(from, 15);
        let _ = calendar.add_calendar_days(from, 60);
        let _ = calendar.add_working_hours(from, 24);
        let _ = calendar.add_natural_hours(from, u32::MAX);
        let _ = calendar.next_working_day_opening(from);
    }
}

#[test]
fn the_shipped_files_parse_so_the_mutations_start_from_valid_input() {
    for profile in [BUILTIN_COMMUNITY_STATION, BUILTIN_CITY_HOTLINE_12345] {
        Policy::from_files(
            ("profile.toml", profile),
            ("catalogue.toml", BUILTIN_CATALOGUE),
            &[("calendar.toml", BUILTIN_CN_2025_2026)],
            ("directory.toml", BUILTIN_DIRECTORY),
        )
        .expect("shipped reference data is valid");
    }
    exercise(&WorkingCalendar::builtin());
}

#[test]
fn a_calendar_of_only_holidays_still_answers_in_bounded_time() {
    // Every day a weekend day: no working day exists, and every walk must stop at the bound.
    let text = r#"
id = "x"
version = "1"
weekend = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
"#;
    if let Ok(calendar) = WorkingCalendar::parse("all-weekend.toml", text) {
        let started = std::time::Instant::now();
        exercise(&calendar);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic_a_parser(bytes in proptest::collection::vec(any::<u8>(), 0..512), file in any_file()) {
        parse_everything(file, &String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_toml_lines_never_panic_a_parser(
        lines in proptest::collection::vec("[a-z_\\[\\]]{0,10} ?= ?(\"[^\"\n]{0,12}\"|[0-9\\-]{1,6}|\\[\\]|true|\\{\\})", 0..24),
        file in any_file(),
    ) {
        parse_everything(file, &lines.join("\n"));
    }

    #[test]
    fn mutated_shipped_files_never_panic_a_parser(
        file in any_file(),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let mut text = file.text().to_string();
        for m in &mutations {
            text = apply(&text, m);
        }
        parse_everything(file, &text);
    }

    #[test]
    fn deeply_nested_tables_and_arrays_are_refused_not_crashed(depth in 1usize..2048, arrays in any::<bool>()) {
        let (open, close) = if arrays { ("[", "]") } else { ("{ a = ", " }") };
        let text = format!("id = {}1{}\nversion = \"1\"", open.repeat(depth), close.repeat(depth));
        parse_everything(File::Calendar, &text);
    }
}
