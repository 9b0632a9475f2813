//! What the `bianmin` subcommands share: the parsers of their time and period arguments, and
//! their progress display on stderr.

use std::time::Duration;

use chrono::{NaiveDate, TimeZone};
use indicatif::{ProgressBar, ProgressStyle};
use projections::query::Period;
use schemas::Timestamp;

/// Parses an instant: RFC 3339, or a day `YYYY-MM-DD` meaning its midnight in Asia/Shanghai.
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(at.to_utc());
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is neither RFC 3339 nor YYYY-MM-DD"))?;
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    schemas::local_time::offset()
        .from_local_datetime(&midnight)
        .single()
        .map(|t| t.to_utc())
        .ok_or_else(|| format!("{s:?} is not a valid local time"))
}

/// Parses a reporting period: `day`, `week` or `month`.
pub fn parse_period(s: &str) -> Result<Period, String> {
    Period::parse(s).ok_or_else(|| format!("{s:?}: expected day, week or month"))
}

/// A progress bar on stderr (hidden when stderr is not a terminal) for a job whose length is
/// set once known: `message [====>   ] pos/len (eta)`.
pub fn bar(message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A spinner on stderr (hidden when stderr is not a terminal) while a command folds the whole
/// log into a scratch projection, which takes as long as a projections rebuild.
pub fn folding(message: String) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        spinner.set_style(style);
    }
    spinner.set_message(message);
    spinner.enable_steady_tick(Duration::from_millis(200));
    spinner
}
