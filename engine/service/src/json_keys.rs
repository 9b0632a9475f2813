//! Refusing JSON bodies that name one key twice in an object.
//!
//! serde_json keeps the last of duplicate keys when it builds a `Value` (and some decoders
//! go through one), so `{"phone":"a","phone":"b"}` would be read as `b` by this engine and
//! possibly as `a` by a proxy or a log scanner in front of it. Every body is checked before it
//! is decoded: a duplicate is a structured 400 naming the key.

use std::collections::HashSet;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// The first key found twice in one object, as a dotted path (`contact.phone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey(pub String);

/// The error code every edge answers a duplicate key with.
pub const DUPLICATE_KEY: &str = "duplicate_key";

impl DuplicateKey {
    /// What the edges say about it.
    pub fn message(&self) -> String {
        format!("the key `{}` appears more than once in one object", self.0)
    }
}

/// Scans `bytes` as JSON and returns the first key that occurs twice in one object. Bodies
/// that are not JSON at all are left to the decoder, which names what is wrong with them.
pub fn duplicate_key(bytes: &[u8]) -> Option<DuplicateKey> {
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let _ = Scan {
        path: String::new(),
        found: &mut found,
    }
    .deserialize(&mut deserializer);
    found.map(DuplicateKey)
}

/// Walks one JSON value, recording the first duplicate under `path`.
struct Scan<'a> {
    path: String,
    found: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                *self.found = Some(path);
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value_seed(Scan {
                path,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(Scan {
                path: format!("{}[{index}]", self.path),
                found: &mut *self.found,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_duplicate_at_any_depth_and_passes_clean_bodies() {
        assert_eq!(duplicate_key(br#"{"a":1,"b":[{"c":1}]}"#), None);
        assert_eq!(
            duplicate_key(br#"{"a":1,"a":2}"#),
            Some(DuplicateKey("a".into()))
        );
        assert_eq!(
            duplicate_key(br#"{"contact":{"phone":"1","phone":"2"}}"#),
            Some(DuplicateKey("contact.phone".into()))
        );
        assert_eq!(
            duplicate_key(br#"{"x":[{"k":1},{"k":1,"k":2}]}"#),
            Some(DuplicateKey("x[1].k".into()))
        );
        assert_eq!(duplicate_key(b"not json"), None);
        assert_eq!(duplicate_key(b""), None);
    }
}
