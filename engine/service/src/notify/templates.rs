//! Versioned notification templates: parsed and checked at load, rendered per notification.
//!
//! The built-in set is `deploy/notify/templates.toml` (embedded); `notify.templates_file`
//! replaces it. Loading refuses a set whose version is empty, whose kinds are unknown, that
//! lacks a text in the default locale for some kind, or whose texts name an unknown
//! placeholder or leave a brace unclosed — so a bad file stops `serve` at start-up instead of
//! sending garbled messages.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::kind::NotifyKind;

/// The built-in templates.
pub const BUILTIN_TEMPLATES: &str = include_str!("../../../../deploy/notify/templates.toml");

/// Why a template set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("notification templates ({source_name}): {message}")]
pub struct TemplateError {
    /// Where the set came from (file path or `built-in`).
    pub source_name: String,
    /// What is wrong, naming the kind, locale and placeholder.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    version: String,
    default_locale: String,
    templates: BTreeMap<String, BTreeMap<String, String>>,
}

/// One piece of a parsed text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Placeholder(String),
}

/// A checked template set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    version: String,
    default_locale: String,
    texts: HashMap<(NotifyKind, String), Vec<Piece>>,
}

impl Templates {
    /// The built-in set.
    pub fn builtin() -> Result<Templates, TemplateError> {
        Templates::parse("built-in deploy/notify/templates.toml", BUILTIN_TEMPLATES)
    }

    /// Parses and checks a set; `source_name` names it in errors.
    pub fn parse(source_name: &str, text: &str) -> Result<Templates, TemplateError> {
        let fail = |message: String| TemplateError {
            source_name: source_name.to_string(),
            message,
        };
        let file: TemplateFile = toml::from_str(text).map_err(|e| fail(e.to_string()))?;
        if file.version.trim().is_empty() {
            return Err(fail("`version` must not be empty".into()));
        }
        if file.default_locale.trim().is_empty() {
            return Err(fail("`default_locale` must not be empty".into()));
        }
        let mut texts = HashMap::new();
        for (kind_name, locales) in &file.templates {
            let kind = NotifyKind::parse(kind_name).ok_or_else(|| {
                fail(format!(
                    "unknown kind `{kind_name}` (known: {})",
                    NotifyKind::ALL.map(NotifyKind::as_str).join(", ")
                ))
            })?;
            for (locale, body) in locales {
                let pieces =
                    parse_text(body).map_err(|m| fail(format!("{kind_name}.{locale}: {m}")))?;
                for piece in &pieces {
                    if let Piece::Placeholder(name) = piece
                        && !kind.placeholders().contains(&name.as_str())
                    {
                        return Err(fail(format!(
                            "{kind_name}.{locale}: unknown placeholder `{{{name}}}` (allowed: {})",
                            kind.placeholders().join(", ")
                        )));
                    }
                }
                texts.insert((kind, locale.clone()), pieces);
            }
        }
        for kind in NotifyKind::ALL {
            if !texts.contains_key(&(kind, file.default_locale.clone())) {
                return Err(fail(format!(
                    "kind `{}` has no text in the default locale `{}`",
                    kind.as_str(),
                    file.default_locale
                )));
            }
        }
        Ok(Templates {
            version: file.version,
            default_locale: file.default_locale,
            texts,
        })
    }

    /// The set's version, recorded in every notification.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The locale used when none is configured or the configured one lacks a text.
    pub fn default_locale(&self) -> &str {
        &self.default_locale
    }

    /// Whether `locale` has a text for every kind.
    pub fn covers_locale(&self, locale: &str) -> bool {
        NotifyKind::ALL
            .iter()
            .all(|k| self.texts.contains_key(&(*k, locale.to_string())))
    }

    /// Renders `kind` in `locale` (falling back to the default locale); returns the locale
    /// used and the text. A value missing from `values` renders empty.
    pub fn render(
        &self,
        kind: NotifyKind,
        locale: &str,
        values: &HashMap<&'static str, String>,
    ) -> (String, String) {
        let (locale, pieces) = match self.texts.get(&(kind, locale.to_string())) {
            Some(pieces) => (locale.to_string(), pieces),
            None => (
                self.default_locale.clone(),
                &self.texts[&(kind, self.default_locale.clone())],
            ),
        };
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Placeholder(name) => {
                    out.push_str(values.get(name.as_str()).map_or("", String::as_str))
                }
            }
        }
        (locale, out)
    }
}

/// Splits a text into literals and `{placeholder}`s; `{{` and `}}` are literal braces.
fn parse_text(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
                        Some(c) => return Err(format!("unexpected `{c}` inside a placeholder")),
                        None => return Err("a `{` is never closed".into()),
                    }
                }
                if name.is_empty() {
                    return Err("empty placeholder `{}`".into());
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Placeholder(name));
            }
            '}' => return Err("a `}` closes nothing (write `}}` for a brace)".into()),
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_set_loads_and_covers_chinese_and_english() {
        let templates = Templates::builtin().unwrap();
        assert_eq!(templates.default_locale(), "zh-CN");
        assert!(templates.covers_locale("zh-CN"));
        assert!(templates.covers_locale("en"));
        let values = HashMap::from([
            ("ticket", "12345-1".to_string()),
            ("new_due_at", "2026-03-20 18:00".to_string()),
            ("reason", "需协调多个部门".to_string()),
        ]);
        let (locale, text) = templates.render(NotifyKind::ExtensionGranted, "zh-CN", &values);
        assert_eq!(locale, "zh-CN");
        assert!(
            text.contains("2026-03-20 18:00") && text.contains("需协调多个部门"),
            "{text}"
        );
        let (locale, _) = templates.render(NotifyKind::ExtensionGranted, "fr", &values);
        assert_eq!(locale, "zh-CN");
    }

    #[test]
    fn bad_sets_are_refused_with_the_place_named() {
        let base = |body: &str| format!("version = \"1\"\ndefault_locale = \"zh-CN\"\n{body}");
        let all_but = |skip: NotifyKind, extra: &str| {
            let mut body = String::new();
            for kind in NotifyKind::ALL {
                if kind != skip {
                    body.push_str(&format!("[templates.{}]\nzh-CN = \"x\"\n", kind.as_str()));
                }
            }
            base(&format!("{body}{extra}"))
        };
        let missing = Templates::parse("t.toml", &all_but(NotifyKind::Reopened, "")).unwrap_err();
        assert!(missing.message.contains("reopened"), "{missing}");
        let unknown_placeholder = Templates::parse(
            "t.toml",
            &all_but(
                NotifyKind::Reopened,
                "[templates.reopened]\nzh-CN = \"{phone}\"\n",
            ),
        )
        .unwrap_err();
        assert!(
            unknown_placeholder.message.contains("`{phone}`"),
            "{unknown_placeholder}"
        );
        let unclosed = Templates::parse(
            "t.toml",
            &all_but(
                NotifyKind::Reopened,
                "[templates.reopened]\nzh-CN = \"{reason\"\n",
            ),
        )
        .unwrap_err();
        assert!(unclosed.message.contains("reopened.zh-CN"), "{unclosed}");
        let unknown_kind = Templates::parse(
            "t.toml",
            &all_but(
                NotifyKind::Reopened,
                "[templates.reopened]\nzh-CN = \"x\"\n[templates.rated]\nzh-CN = \"x\"\n",
            ),
        );
        assert!(unknown_kind.is_err());
        let no_version = Templates::parse(
            "t.toml",
            "version = \"\"\ndefault_locale = \"zh-CN\"\n[templates]\n",
        );
        assert!(no_version.unwrap_err().message.contains("version"));
    }

    #[test]
    fn doubled_braces_are_literal() {
        assert_eq!(
            parse_text("a{{b}}{ticket}").unwrap(),
            vec![
                Piece::Literal("a{b}".into()),
                Piece::Placeholder("ticket".into())
            ]
        );
    }
}
