//! The working-day calendar and deadline arithmetic: holidays, make-up working days (调休上班),
//! weekends, office hours and the deployment's fixed UTC offset.
//!
//! Calendars are data (`deploy/policy/calendars/*.toml`), one or more files per deployment: a
//! deployment adds a year by adding a file, no release. Every function here is pure: dates
//! outside the covered years fall back to "weekends are non-working", and the coverage is a
//! fact the callers see: [`WorkingCalendar::coverage_end`] for the shell's warnings,
//! [`WorkingCalendar::covers_span`] for the `provisional` mark on deadlines counted through
//! uncovered days (`catalogue::Limit::provisional`).
//!
//! Counting rules (see `docs/deadlines.md` and `cn-public-holidays.md`):
//! - a make-up day is a working day; every day of a holiday block is not;
//! - working days count from the day after the start, and a working-day or calendar-day
//!   deadline ends at closing time of its last day (Civil Code art. 201, 203);
//! - a calendar-day deadline whose last day is not a working day moves to the next working day;
//! - working hours count only office hours on working days, so a request received after hours
//!   starts counting at the next opening.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use schemas::Timestamp;

use crate::policy::LoadError;

/// Longest span any arithmetic here walks, in days (about 30 years); longer requests clamp.
///
/// Bounds every loop so that no input can make a deadline computation run unbounded.
pub const MAX_SPAN_DAYS: u32 = 11_000;

/// Default offset when no file sets one: Asia/Shanghai, UTC+8.
pub const DEFAULT_UTC_OFFSET_SECS: i32 = schemas::local_time::UTC_OFFSET_SECS;

/// The built-in calendar: PRC public holidays and make-up days for 2025 and 2026.
pub const BUILTIN_CN_2025_2026: &str =
    include_str!("../../../deploy/policy/calendars/cn-2025-2026.toml");

/// One calendar file as written on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarFile {
    /// Calendar identifier, e.g. `cn`.
    pub id: String,
    /// Version of this file, e.g. `2026.1`.
    pub version: String,
    /// Fixed offset from UTC of local time, `+08:00` for Asia/Shanghai (no tz database).
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// Weekend days (`mon` … `sun`); default Saturday and Sunday.
    #[serde(default)]
    pub weekend: Option<Vec<String>>,
    /// Office hours on a working day as `[open, close]` pairs (`HH:MM`), in order.
    #[serde(default)]
    pub office_hours: Option<Vec<[String; 2]>>,
    /// The years this file covers.
    #[serde(default)]
    pub years: Vec<YearFile>,
}

/// One year's official holiday arrangement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct YearFile {
    /// The calendar year.
    pub year: i32,
    /// The notice the dates come from.
    #[serde(default)]
    pub notice: Option<String>,
    /// Holiday blocks (放假调休), both ends included.
    #[serde(default)]
    pub holidays: Vec<HolidayFile>,
    /// Make-up working days (调休上班): weekend days that count as working days.
    #[serde(default)]
    pub makeup_workdays: Vec<MakeupFile>,
}

/// A holiday block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HolidayFile {
    /// First day off, `YYYY-MM-DD`.
    pub from: String,
    /// Last day off, `YYYY-MM-DD`.
    pub to: String,
    /// Holiday name.
    pub name: String,
}

/// A make-up working day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MakeupFile {
    /// The date, `YYYY-MM-DD`.
    pub date: String,
    /// What it makes up for.
    pub name: String,
}

/// Working days, holidays, make-up days and office hours, merged from one or more files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingCalendar {
    offset: FixedOffset,
    weekend: Vec<Weekday>,
    /// Sorted, non-overlapping, non-empty intervals.
    office_hours: Vec<(NaiveTime, NaiveTime)>,
    holidays: BTreeSet<NaiveDate>,
    makeup_workdays: BTreeSet<NaiveDate>,
    /// Covered year → `id@version` of the file that declared it.
    years: BTreeMap<i32, String>,
}

impl WorkingCalendar {
    /// The built-in calendar ([`BUILTIN_CN_2025_2026`]).
    pub fn builtin() -> WorkingCalendar {
        WorkingCalendar::parse_many(&[("cn-2025-2026.toml", BUILTIN_CN_2025_2026)])
            .expect("the built-in calendar is valid (checked by tests)")
    }

    /// Parses one calendar file; `name` labels errors.
    pub fn parse(name: &str, text: &str) -> Result<WorkingCalendar, LoadError> {
        WorkingCalendar::parse_many(&[(name, text)])
    }

    /// Parses and merges calendar files `(name, text)`. A year may appear in one file only;
    /// offset, weekend and office hours may be set by several files only if they agree.
    pub fn parse_many(files: &[(&str, &str)]) -> Result<WorkingCalendar, LoadError> {
        let mut merged = Merge::default();
        for (name, text) in files {
            let file: CalendarFile =
                toml::from_str(text).map_err(|e| LoadError::syntax(name, &e))?;
            merged.add(name, &file)?;
        }
        merged.finish()
    }

    /// Whether the calendar holds the official arrangement for `year`.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// The covered years, ascending.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// The last day of the calendar's coverage: 31 December of the last year of the run of
    /// covered years that starts at the first one (a gap ends the coverage). `None` when no
    /// year is covered.
    pub fn coverage_end(&self) -> Option<NaiveDate> {
        let mut years = self.years.keys().copied();
        let mut last = years.next()?;
        for year in years {
            if year != last + 1 {
                break;
            }
            last = year;
        }
        NaiveDate::from_ymd_opt(last, 12, 31)
    }

    /// Whether every local date from `from` to `to` (either order) lies in a covered year, so
    /// working-day arithmetic between them used official data only. A deadline whose span is
    /// not covered is provisional: it treated the uncovered days by the weekend rule alone.
    pub fn covers_span(&self, from: Timestamp, to: Timestamp) -> bool {
        let (a, b) = (self.local_date(from).year(), self.local_date(to).year());
        (a.min(b)..=a.max(b)).all(|year| self.covers(year))
    }

    /// Label of each file that declared years, `id@version: years`, in year order.
    pub fn sources(&self) -> Vec<String> {
        let mut by_label: Vec<(String, Vec<i32>)> = Vec::new();
        for (year, label) in &self.years {
            match by_label.iter_mut().find(|(l, _)| l == label) {
                Some((_, years)) => years.push(*year),
                None => by_label.push((label.clone(), vec![*year])),
            }
        }
        by_label
            .into_iter()
            .map(|(label, years)| {
                let years: Vec<String> = years.iter().map(i32::to_string).collect();
                format!("{label}: {}", years.join(","))
            })
            .collect()
    }

    /// The fixed UTC offset of local time.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    /// Office hours on a working day, in order.
    pub fn office_hours(&self) -> &[(NaiveTime, NaiveTime)] {
        &self.office_hours
    }

    /// Whether `date` is a working day: a make-up day, or a weekday outside holiday blocks.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.makeup_workdays.contains(&date) {
            return true;
        }
        !self.holidays.contains(&date) && !self.weekend.contains(&date.weekday())
    }

    /// The local calendar date of `instant`.
    pub fn local_date(&self, instant: Timestamp) -> NaiveDate {
        self.local(instant).date()
    }

    /// The first working day strictly after `date`.
    pub fn next_working_day(&self, date: NaiveDate) -> NaiveDate {
        let mut day = date;
        for _ in 0..MAX_SPAN_DAYS {
            day = next_day(day);
            if self.is_working_day(day) {
                return day;
            }
        }
        day
    }

    /// The first working day on or after `date`.
    pub fn working_day_on_or_after(&self, date: NaiveDate) -> NaiveDate {
        if self.is_working_day(date) {
            date
        } else {
            self.next_working_day(date)
        }
    }

    /// Closing time (end of the last office-hours interval) of `date`, as an instant.
    pub fn closing_of(&self, date: NaiveDate) -> Timestamp {
        let close = self
            .office_hours
            .last()
            .map_or(NaiveTime::MIN, |(_, close)| *close);
        self.instant(date.and_time(close))
    }

    /// Opening time (start of the first office-hours interval) of `date`, as an instant.
    pub fn opening_of(&self, date: NaiveDate) -> Timestamp {
        let open = self
            .office_hours
            .first()
            .map_or(NaiveTime::MIN, |(open, _)| *open);
        self.instant(date.and_time(open))
    }

    /// Opening of the first working day after the local date of `instant` (clock start
    /// "next working day", 次日起算).
    pub fn next_working_day_opening(&self, instant: Timestamp) -> Timestamp {
        self.opening_of(self.next_working_day(self.local_date(instant)))
    }

    /// `n` working days after `from`: counting starts the day after `from`'s local date, and
    /// the deadline is closing time of the `n`th working day. `n = 0` returns `from`.
    pub fn add_working_days(&self, from: Timestamp, n: u32) -> Timestamp {
        if n == 0 {
            return from;
        }
        let mut day = self.local_date(from);
        for _ in 0..n.min(MAX_SPAN_DAYS) {
            day = self.next_working_day(day);
        }
        self.closing_of(day)
    }

    /// `n` calendar days after `from`: closing time of the `n`th day after `from`'s local date,
    /// moved to the next working day when that day is not one (Civil Code art. 203).
    /// `n = 0` returns `from`.
    pub fn add_calendar_days(&self, from: Timestamp, n: u32) -> Timestamp {
        if n == 0 {
            return from;
        }
        let last = self
            .local_date(from)
            .checked_add_days(chrono::Days::new(u64::from(n.min(MAX_SPAN_DAYS))))
            .unwrap_or(NaiveDate::MAX);
        self.closing_of(self.working_day_on_or_after(last))
    }

    /// `hours` natural (clock) hours after `from`; holidays do not matter.
    pub fn add_natural_hours(&self, from: Timestamp, hours: u32) -> Timestamp {
        let hours = i64::from(hours.min(MAX_SPAN_DAYS * 24));
        from.checked_add_signed(Duration::hours(hours))
            .unwrap_or(from)
    }

    /// `hours` office hours after `from`, counting only office hours on working days.
    pub fn add_working_hours(&self, from: Timestamp, hours: u32) -> Timestamp {
        self.add_working_minutes(from, u64::from(hours) * 60)
    }

    /// `minutes` office minutes after `from`, counting only office hours on working days; see
    /// [`WorkingCalendar::add_working_time`].
    pub fn add_working_minutes(&self, from: Timestamp, minutes: u64) -> Timestamp {
        let minutes = i64::try_from(minutes).unwrap_or(i64::MAX);
        let span = Duration::try_minutes(minutes).unwrap_or(Duration::MAX);
        self.add_working_time(from, span)
    }

    /// `span` of office time after `from`, exact to the nanosecond: only office hours on
    /// working days count, a start outside office hours counts from the next opening, and the
    /// part of a minute (or second) left at an interval's end carries over to the next
    /// opening, so 16:30:00.68 plus 4 working hours is 13:30:00.68 two working days later
    /// (59 min 59.32 s, then 09:00–12:00, then 0.68 s after lunch). A deadline that lands
    /// exactly on an interval's end stays there (12:00, not 13:30). A zero or negative span
    /// returns `from`.
    pub fn add_working_time(&self, from: Timestamp, span: Duration) -> Timestamp {
        if span <= Duration::zero() {
            return from;
        }
        let local = self.local(from);
        let mut remaining = span;
        let mut day = local.date();
        let mut not_before = Some(local.time());
        for _ in 0..MAX_SPAN_DAYS {
            if self.is_working_day(day) {
                for (open, close) in &self.office_hours {
                    let begin = not_before.map_or(*open, |t| (*open).max(t));
                    if begin >= *close {
                        continue;
                    }
                    let available = *close - begin;
                    if remaining <= available {
                        return self.instant(day.and_time(begin) + remaining);
                    }
                    remaining -= available;
                }
            }
            day = next_day(day);
            not_before = None;
        }
        self.closing_of(day)
    }

    fn local(&self, instant: Timestamp) -> NaiveDateTime {
        instant.with_timezone(&self.offset).naive_local()
    }

    fn instant(&self, local: NaiveDateTime) -> Timestamp {
        let utc = local
            .checked_sub_signed(Duration::seconds(i64::from(self.offset.local_minus_utc())))
            .unwrap_or(local);
        utc.and_utc()
    }
}

fn next_day(day: NaiveDate) -> NaiveDate {
    day.succ_opt().unwrap_or(day)
}

/// Accumulates files; settings are checked for agreement, years for uniqueness.
#[derive(Default)]
struct Merge {
    offset: Option<(String, FixedOffset)>,
    weekend: Option<(String, Vec<Weekday>)>,
    office_hours: Option<(String, Vec<(NaiveTime, NaiveTime)>)>,
    holidays: BTreeSet<NaiveDate>,
    makeup_workdays: BTreeSet<NaiveDate>,
    years: BTreeMap<i32, String>,
}

impl Merge {
    fn add(&mut self, name: &str, file: &CalendarFile) -> Result<(), LoadError> {
        let invalid =
            |at: &str, field: &str, reason: String| LoadError::invalid(name, at, field, reason);
        if file.id.trim().is_empty() {
            return Err(invalid("calendar", "id", "must not be empty".into()));
        }
        if file.version.trim().is_empty() {
            return Err(invalid("calendar", "version", "must not be empty".into()));
        }
        if let Some(text) = &file.utc_offset {
            let offset = parse_offset(text).ok_or_else(|| {
                invalid("calendar", "utc_offset", format!("`{text}` is not ±HH:MM"))
            })?;
            agree(&mut self.offset, name, "utc_offset", offset)?;
        }
        if let Some(days) = &file.weekend {
            let mut weekend = Vec::new();
            for text in days {
                let day = parse_weekday(text).ok_or_else(|| {
                    invalid("calendar", "weekend", format!("`{text}` is not mon…sun"))
                })?;
                weekend.push(day);
            }
            agree(&mut self.weekend, name, "weekend", weekend)?;
        }
        if let Some(pairs) = &file.office_hours {
            let hours = parse_office_hours(pairs)
                .map_err(|reason| invalid("calendar", "office_hours", reason))?;
            agree(&mut self.office_hours, name, "office_hours", hours)?;
        }
        let label = format!("{}@{}", file.id, file.version);
        for year in &file.years {
            let at = format!("years[{}]", year.year);
            if let Some(previous) = self.years.get(&year.year) {
                return Err(invalid(
                    &at,
                    "year",
                    format!("already declared by {previous}"),
                ));
            }
            self.years.insert(year.year, label.clone());
            let mut year_holidays = BTreeSet::new();
            for (idx, block) in year.holidays.iter().enumerate() {
                let at = format!("{at}.holidays[{idx}] ({})", block.name);
                let from = parse_date(&block.from)
                    .ok_or_else(|| invalid(&at, "from", bad_date(&block.from)))?;
                let to =
                    parse_date(&block.to).ok_or_else(|| invalid(&at, "to", bad_date(&block.to)))?;
                if to < from {
                    return Err(invalid(&at, "to", format!("{to} is before `from` {from}")));
                }
                if (to - from).num_days() > 31 {
                    return Err(invalid(
                        &at,
                        "to",
                        "a holiday block is at most 31 days".into(),
                    ));
                }
                year_holidays.extend(from.iter_days().take_while(|day| *day <= to));
            }
            for (idx, makeup) in year.makeup_workdays.iter().enumerate() {
                let at = format!("{at}.makeup_workdays[{idx}] ({})", makeup.name);
                let date = parse_date(&makeup.date)
                    .ok_or_else(|| invalid(&at, "date", bad_date(&makeup.date)))?;
                if year_holidays.contains(&date) {
                    return Err(invalid(
                        &at,
                        "date",
                        format!("{date} is also inside a holiday block"),
                    ));
                }
                if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
                    return Err(invalid(
                        &at,
                        "date",
                        format!("{date} is a weekday, not a weekend day"),
                    ));
                }
                self.makeup_workdays.insert(date);
            }
            self.holidays.extend(year_holidays);
        }
        Ok(())
    }

    fn finish(self) -> Result<WorkingCalendar, LoadError> {
        let default_hours = vec![(hm(9, 0), hm(12, 0)), (hm(13, 30), hm(17, 30))];
        Ok(WorkingCalendar {
            offset: match self.offset {
                Some((_, offset)) => offset,
                None => FixedOffset::east_opt(DEFAULT_UTC_OFFSET_SECS)
                    .expect("+08:00 is a valid offset"),
            },
            weekend: self
                .weekend
                .map_or(vec![Weekday::Sat, Weekday::Sun], |(_, w)| w),
            office_hours: self.office_hours.map_or(default_hours, |(_, h)| h),
            holidays: self.holidays,
            makeup_workdays: self.makeup_workdays,
            years: self.years,
        })
    }
}

fn hm(hour: u32, minute: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN)
}

fn agree<T: PartialEq + std::fmt::Debug>(
    slot: &mut Option<(String, T)>,
    name: &str,
    field: &str,
    value: T,
) -> Result<(), LoadError> {
    match slot {
        Some((first, existing)) if *existing != value => Err(LoadError::invalid(
            name,
            "calendar",
            field,
            format!("{value:?} disagrees with {existing:?} set by {first}"),
        )),
        Some(_) => Ok(()),
        None => {
            *slot = Some((name.to_string(), value));
            Ok(())
        }
    }
}

fn bad_date(text: &str) -> String {
    format!("`{text}` is not a YYYY-MM-DD date")
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

fn parse_offset(text: &str) -> Option<FixedOffset> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = rest.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if hours > 14 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

fn parse_weekday(text: &str) -> Option<Weekday> {
    Some(match text {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

fn parse_office_hours(pairs: &[[String; 2]]) -> Result<Vec<(NaiveTime, NaiveTime)>, String> {
    if pairs.is_empty() {
        return Err("at least one interval is required".into());
    }
    let mut hours = Vec::with_capacity(pairs.len());
    let mut previous_close = NaiveTime::MIN;
    for (idx, [open, close]) in pairs.iter().enumerate() {
        let parse = |text: &str| {
            NaiveTime::parse_from_str(text, "%H:%M")
                .map_err(|_| format!("[{idx}]: `{text}` is not HH:MM"))
        };
        let (open, close) = (parse(open)?, parse(close)?);
        if close <= open {
            return Err(format!(
                "[{idx}]: closes at {close} before opening at {open}"
            ));
        }
        if idx > 0 && open < previous_close {
            return Err(format!(
                "[{idx}]: overlaps or precedes the previous interval"
            ));
        }
        previous_close = close;
        hours.push((open, close));
    }
    Ok(hours)
}
