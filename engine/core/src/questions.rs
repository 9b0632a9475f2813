//! Typed intake questions of a catalogue item (事项问题): what a resident is asked besides the
//! free text when reporting under that item (a streetlight's pole number, the employer of a
//! wage-arrears claim), versioned with the catalogue.
//!
//! Each question has a code (the key of its answer), a type (text, number, single or multiple
//! choice, date, yes/no), whether it is required, and Chinese and English labels. The
//! catalogue validates the questions when it loads; [`validate_answers`] checks a set of
//! answers against an item's questions and names the failing answer as `answers.<code>`.
//! Answers are JSON values: text and choices as strings, numbers as numbers, dates as
//! `YYYY-MM-DD` strings, yes/no as booleans, multiple choice as an array of choice codes.
//! [`answers_from_form`] turns form text (Open311's `attribute[code]=value`) into those values.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Question codes the Open311 service definition already uses for its own attributes.
pub const RESERVED_CODES: [&str; 2] = ["grid", "priority_lane"];

/// Most characters of a text answer when the question sets no `max_length`.
pub const DEFAULT_TEXT_MAX: u32 = 500;

/// Most questions per item.
pub const MAX_QUESTIONS: usize = 20;

/// The type of a question's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// Free text (at most `max_length` characters).
    Text,
    /// A number (within `min`..=`max` when set).
    Number,
    /// One of the `choices`.
    SingleChoice,
    /// Any non-empty set of the `choices`.
    MultiChoice,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// Yes or no.
    YesNo,
}

impl QuestionKind {
    /// Whether answers pick from `choices`.
    pub fn has_choices(self) -> bool {
        matches!(self, QuestionKind::SingleChoice | QuestionKind::MultiChoice)
    }
}

/// One allowed answer of a choice question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// The value sent back (`[a-z0-9_]`, 1..=64).
    pub code: String,
    /// Chinese label.
    pub label_zh: String,
    /// English label.
    pub label_en: String,
}

/// A question of a catalogue item, as written in the catalogue and as validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// The answer's key (`[a-z][a-z0-9_]*`, at most 64), unique within the item; not `grid`
    /// or `priority_lane`.
    pub code: String,
    /// The answer's type.
    pub kind: QuestionKind,
    /// Whether intake must carry an answer.
    #[serde(default)]
    pub required: bool,
    /// The question in Chinese.
    pub label_zh: String,
    /// The question in English.
    pub label_en: String,
    /// The allowed answers of `single_choice` and `multi_choice` (required there, refused
    /// elsewhere).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
    /// Most characters of a `text` answer (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Smallest `number` answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest `number` answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// Bounds are checked finite when the catalogue loads, so equality is total.
impl Eq for Question {}

impl Question {
    /// The bilingual label, `中文 English`.
    pub fn label(&self) -> String {
        format!("{} {}", self.label_zh, self.label_en)
    }
}

fn is_code(s: &str, first_letter: bool) -> bool {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || (!first_letter && c.is_ascii_digit()));
    first_ok
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks an item's questions when the catalogue loads; `Err` holds the field (relative to
/// the item, e.g. `questions[1].choices`) and the reason.
pub fn validate_questions(questions: &[Question]) -> Result<(), (String, String)> {
    if questions.len() > MAX_QUESTIONS {
        return Err((
            "questions".into(),
            format!("at most {MAX_QUESTIONS} questions, got {}", questions.len()),
        ));
    }
    let mut codes = BTreeSet::new();
    for (i, q) in questions.iter().enumerate() {
        let fail = |field: &str, reason: String| (format!("questions[{i}].{field}"), reason);
        if !is_code(&q.code, true) {
            return Err(fail(
                "code",
                format!("`{}` is not [a-z][a-z0-9_]{{0,63}}", q.code),
            ));
        }
        if RESERVED_CODES.contains(&q.code.as_str()) {
            return Err(fail("code", format!("`{}` is reserved", q.code)));
        }
        if !codes.insert(q.code.as_str()) {
            return Err(fail("code", format!("duplicate question `{}`", q.code)));
        }
        if q.label_zh.trim().is_empty() || q.label_en.trim().is_empty() {
            return Err(fail("label_zh", "both labels must be given".into()));
        }
        validate_shape(q).map_err(|(field, reason)| fail(field, reason))?;
    }
    Ok(())
}

fn validate_shape(q: &Question) -> Result<(), (&'static str, String)> {
    if q.kind.has_choices() {
        if q.choices.is_empty() {
            return Err(("choices", "a choice question needs choices".into()));
        }
        let mut seen = BTreeSet::new();
        for c in &q.choices {
            if !is_code(&c.code, false) || !seen.insert(c.code.as_str()) {
                return Err(("choices", format!("bad or duplicate choice `{}`", c.code)));
            }
            if c.label_zh.trim().is_empty() || c.label_en.trim().is_empty() {
                return Err(("choices", format!("choice `{}` needs both labels", c.code)));
            }
        }
    } else if !q.choices.is_empty() {
        return Err(("choices", "only choice questions have choices".into()));
    }
    if q.max_length.is_some() && q.kind != QuestionKind::Text {
        return Err(("max_length", "only text questions have a max_length".into()));
    }
    if q.max_length == Some(0) {
        return Err(("max_length", "must be positive".into()));
    }
    if (q.min.is_some() || q.max.is_some()) && q.kind != QuestionKind::Number {
        return Err(("min", "only number questions have min and max".into()));
    }
    if q.min.is_some_and(|m| !m.is_finite()) || q.max.is_some_and(|m| !m.is_finite()) {
        return Err(("min", "min and max must be finite".into()));
    }
    if let (Some(min), Some(max)) = (q.min, q.max)
        && min > max
    {
        return Err(("min", format!("min {min} is above max {max}")));
    }
    Ok(())
}

/// Why a set of answers was refused: a stable code and the answer concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {reason}")]
pub struct AnswerError {
    /// `answer_required`, `answer_invalid` or `unknown_question`.
    pub code: &'static str,
    /// The answer, `answers.<question code>`.
    pub field: String,
    /// What is wrong, for people.
    pub reason: String,
}

impl AnswerError {
    fn new(code: &'static str, question: &str, reason: String) -> AnswerError {
        AnswerError {
            code,
            field: format!("answers.{question}"),
            reason,
        }
    }
}

/// Checks `answers` against an item's `questions`: every required question answered, no
/// answer to a question the item does not ask, each answer of its question's type (a choice
/// among the choices, a number within bounds, a real date). `null` counts as no answer.
/// Returns the answers as they are recorded (multiple choices in the order of the choices,
/// without repeats; nulls dropped).
pub fn validate_answers(
    questions: &[Question],
    answers: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>, AnswerError> {
    if let Some(code) = answers
        .keys()
        .find(|code| !questions.iter().any(|q| &q.code == *code))
    {
        return Err(AnswerError::new(
            "unknown_question",
            code,
            "this service item asks no such question".into(),
        ));
    }
    let mut out = BTreeMap::new();
    for q in questions {
        match answers.get(&q.code).filter(|v| !v.is_null()) {
            None if q.required => {
                return Err(AnswerError::new(
                    "answer_required",
                    &q.code,
                    format!("required: {}", q.label()),
                ));
            }
            None => {}
            Some(value) => {
                let checked = check(q, value)
                    .map_err(|reason| AnswerError::new("answer_invalid", &q.code, reason))?;
                out.insert(q.code.clone(), checked);
            }
        }
    }
    Ok(out)
}

fn check(q: &Question, value: &Value) -> Result<Value, String> {
    match q.kind {
        QuestionKind::Text => {
            let s = value.as_str().ok_or("expected text")?;
            let max = q.max_length.unwrap_or(DEFAULT_TEXT_MAX) as usize;
            if s.trim().is_empty() {
                return Err("must not be blank".into());
            }
            if s.chars().count() > max {
                return Err(format!("at most {max} characters"));
            }
            if s.chars().any(|c| c.is_control() && c != '\n') {
                return Err("must not contain control characters".into());
            }
            Ok(Value::String(s.to_owned()))
        }
        QuestionKind::Number => {
            let n = value
                .as_f64()
                .filter(|n| n.is_finite())
                .ok_or("expected a number")?;
            if q.min.is_some_and(|min| n < min) || q.max.is_some_and(|max| n > max) {
                return Err(format!(
                    "must be within {}..={}",
                    q.min.map_or("".into(), |m| m.to_string()),
                    q.max.map_or("".into(), |m| m.to_string())
                ));
            }
            Ok(value.clone())
        }
        QuestionKind::Date => {
            let s = value.as_str().ok_or("expected a date YYYY-MM-DD")?;
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| "expected a date YYYY-MM-DD".to_string())?;
            Ok(Value::String(s.to_owned()))
        }
        QuestionKind::YesNo => Ok(Value::Bool(
            value.as_bool().ok_or("expected true or false")?,
        )),
        QuestionKind::SingleChoice => {
            let s = value.as_str().ok_or("expected one choice code")?;
            choice(q, s)?;
            Ok(Value::String(s.to_owned()))
        }
        QuestionKind::MultiChoice => {
            let picked = value
                .as_array()
                .ok_or("expected an array of choice codes")?;
            let mut codes = BTreeSet::new();
            for v in picked {
                let s = v.as_str().ok_or("expected an array of choice codes")?;
                choice(q, s)?;
                codes.insert(s);
            }
            if codes.is_empty() {
                return Err("pick at least one choice".into());
            }
            Ok(Value::Array(
                q.choices
                    .iter()
                    .filter(|c| codes.contains(c.code.as_str()))
                    .map(|c| Value::String(c.code.clone()))
                    .collect(),
            ))
        }
    }
}

fn choice(q: &Question, s: &str) -> Result<(), String> {
    if q.choices.iter().any(|c| c.code == s) {
        Ok(())
    } else {
        let all: Vec<&str> = q.choices.iter().map(|c| c.code.as_str()).collect();
        Err(format!("`{s}` is not one of {}", all.join(", ")))
    }
}

/// Form answers (every value text, as Open311's `attribute[code]=value` and
/// `attribute[code][]=value` carry them) as the JSON values [`validate_answers`] checks:
/// numbers parsed, `true`/`false` (also `yes`/`no`, `1`/`0`) for yes/no, every value of a
/// multiple choice, the single value of the others. Text that does not parse stays text, so
/// validation refuses it with the question named; codes the item does not ask stay too.
pub fn answers_from_form(
    questions: &[Question],
    form: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, Value> {
    form.iter()
        .map(|(code, values)| {
            let kind = questions.iter().find(|q| &q.code == code).map(|q| q.kind);
            let text = |v: &String| Value::String(v.clone());
            let value = match (kind, values.as_slice()) {
                (Some(QuestionKind::MultiChoice), vs) => {
                    Value::Array(vs.iter().map(text).collect())
                }
                (_, []) => Value::Null,
                (Some(QuestionKind::Number), [v]) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
                    .unwrap_or_else(|| text(v)),
                (Some(QuestionKind::YesNo), [v]) => match v.trim() {
                    "true" | "yes" | "1" => Value::Bool(true),
                    "false" | "no" | "0" => Value::Bool(false),
                    _ => text(v),
                },
                (_, [v]) => text(v),
                (_, vs) => Value::Array(vs.iter().map(text).collect()),
            };
            (code.clone(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests;
