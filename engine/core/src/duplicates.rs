//! Candidate duplicates (重复诉求): which earlier or later requests may be about the same
//! matter, and how alike their texts are. The service picks the neighbours (same base grid,
//! same category once classified, within [`WINDOW_DAYS`] of receipt) from the read model and
//! asks [`similarity`] for each; a worker decides, the engine never links on its own.
//!
//! The score is the normalised Levenshtein similarity of the texts counted in characters
//! (`strsim::normalized_levenshtein`: 1 − edits / longer length), after folding case and
//! dropping whitespace and punctuation: it suits Chinese, where words are not separated, as
//! well as other scripts, and needs no dictionary.

/// How far apart in receipt time two requests may be and still be candidates, in days.
pub const WINDOW_DAYS: i64 = 7;

/// The lowest score shown as a candidate.
pub const MIN_SCORE: f64 = 0.3;

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
