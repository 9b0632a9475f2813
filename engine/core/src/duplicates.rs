//! Candidate duplicates (重复诉求): which earlier or later requests may be about the same
//! matter, and how alike their texts are. The service picks the neighbours (same base grid,
//! same category once classified, within the profile's window of receipt, [`DuplicateRule`])
//! from the read model and asks [`similarity`] for each; a worker decides, the engine never
//! links on its own.
//!
//! The score is the normalised Levenshtein similarity of the texts counted in characters
//! (`strsim::normalized_levenshtein`: 1 − edits / longer length), after folding case and
//! dropping whitespace and punctuation: it suits Chinese, where words are not separated, as
//! well as other scripts, and needs no dictionary.

use chrono::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How far apart in receipt time two requests may be and still be candidates, in days: the
/// default of a profile's `[duplicates] window_days`.
pub const WINDOW_DAYS: i64 = 7;

/// The lowest score shown as a candidate: the default of a profile's `[duplicates] min_score`.
pub const MIN_SCORE: f64 = 0.3;

/// The longest window a profile may set, in days: a year. Beyond it the neighbours of a busy
/// grid are more than the read model's neighbour query returns, so a longer window would
/// promise candidates it cannot find.
pub const WINDOW_DAYS_MAX: i64 = 366;

/// `[duplicates]` in a profile file (optional; an absent key takes its default, 7 days and
/// 0.3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DuplicatesFile {
    /// Days either side of a request's receipt within which neighbours are candidates
    /// (1..=366).
    #[serde(default = "default_window_days")]
    pub window_days: i64,
    /// The lowest text score listed as a candidate (0..=1).
    #[serde(default = "default_min_score")]
    pub min_score: f64,
}

impl Default for DuplicatesFile {
    fn default() -> Self {
        DuplicatesFile {
            window_days: WINDOW_DAYS,
            min_score: MIN_SCORE,
        }
    }
}

fn default_window_days() -> i64 {
    WINDOW_DAYS
}

fn default_min_score() -> f64 {
    MIN_SCORE
}

/// The checked duplicate rule of a profile: the window and the threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DuplicateRule {
    window: Duration,
    min_score: f64,
}

impl Default for DuplicateRule {
    fn default() -> Self {
        DuplicateRule {
            window: Duration::days(WINDOW_DAYS),
            min_score: MIN_SCORE,
        }
    }
}

impl DuplicateRule {
    /// Checks a profile's `[duplicates]`; the error names the field and why.
    pub fn parse(file: DuplicatesFile) -> Result<DuplicateRule, (&'static str, String)> {
        if !(1..=WINDOW_DAYS_MAX).contains(&file.window_days) {
            return Err((
                "duplicates.window_days",
                format!(
                    "must be 1..={WINDOW_DAYS_MAX} days, got {}",
                    file.window_days
                ),
            ));
        }
        if !(0.0..=1.0).contains(&file.min_score) {
            return Err((
                "duplicates.min_score",
                format!("must be between 0 and 1, got {}", file.min_score),
            ));
        }
        Ok(DuplicateRule {
            window: Duration::days(file.window_days),
            min_score: file.min_score,
        })
    }

    /// How far either side of a receipt neighbours are looked for.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The lowest score listed.
    pub fn min_score(&self) -> f64 {
        self.min_score
    }

    /// Whether a pair scoring `score` is listed as candidates.
    pub fn lists(&self, score: f64) -> bool {
        score >= self.min_score
    }
}

/// The text as compared: lower case, letters and digits only.
fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// How alike two residents' texts are, from 0 (nothing shared) to 1 (the same words).
pub fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (normalise(a), normalise(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    strsim::normalized_levenshtein(&a, &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_identical_texts_score_high_and_unrelated_ones_low() {
        let a = "小区门口路灯不亮已经一周了，晚上很危险。";
        let b = "小区门口的路灯不亮已经一周，晚上很危险！";
        let c = "楼下餐馆油烟太大，影响居民休息。";
        assert!(similarity(a, b) > 0.7, "{}", similarity(a, b));
        assert!(similarity(a, c) < MIN_SCORE, "{}", similarity(a, c));
        assert_eq!(similarity(a, a), 1.0);
    }

    #[test]
    fn the_rule_defaults_to_the_constants_and_refuses_out_of_range_values() {
        let rule = DuplicateRule::parse(DuplicatesFile::default()).expect("defaults are valid");
        assert_eq!(rule, DuplicateRule::default());
        assert_eq!(rule.window(), Duration::days(WINDOW_DAYS));
        assert!(rule.lists(MIN_SCORE) && !rule.lists(MIN_SCORE - 0.001));
        for (window_days, min_score, field) in [
            (0, 0.3, "duplicates.window_days"),
            (WINDOW_DAYS_MAX + 1, 0.3, "duplicates.window_days"),
            (7, 1.5, "duplicates.min_score"),
            (7, -0.1, "duplicates.min_score"),
            (7, f64::NAN, "duplicates.min_score"),
        ] {
            let file = DuplicatesFile {
                window_days,
                min_score,
            };
            assert_eq!(DuplicateRule::parse(file).unwrap_err().0, field);
        }
    }

    #[test]
    fn case_spaces_and_punctuation_do_not_count_and_empty_text_matches_nothing() {
        assert_eq!(
            similarity(
                "Street light OUT, building 5",
                "street light out building 5!"
            ),
            1.0
        );
        assert_eq!(similarity("", "路灯"), 0.0);
        assert_eq!(similarity("。。", "。。"), 0.0);
    }
}
