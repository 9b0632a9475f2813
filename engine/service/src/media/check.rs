//! What a file must be before it is stored: not over `media.max_bytes`, not empty, of an
//! allowed media type as its magic bytes show it (the `infer` crate; a declared
//! `Content-Type` that disagrees with the bytes is refused too), hashed with SHA-256.

use sha2::{Digest, Sha256};

use super::MediaConfig;

/// A file that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// The media type found from the magic bytes.
    pub content_type: String,
    /// Length in bytes.
    pub size_bytes: u64,
}

/// Why a file is refused; nothing is stored or recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaRefusal {
    /// Over the size limit (413).
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge {
        /// `media.max_bytes`.
        limit: u64,
    },
    /// Empty (400).
    #[error("the file is empty")]
    Empty,
    /// The bytes are of no allowed type (415).
    #[error("the file's content ({found}) is not an accepted type ({allowed})")]
    TypeNotAllowed {
        /// What the magic bytes show, or `unknown`.
        found: String,
        /// The accepted types.
        allowed: String,
    },
    /// The declared type is not what the bytes are (415).
    #[error("the file is declared as {declared} but its content is {found}")]
    TypeMismatch {
        /// The declared `Content-Type`.
        declared: String,
        /// What the magic bytes show.
        found: String,
    },
}

/// Declared types that say nothing about the content and are not compared with it.
const UNSPECIFIC: [&str; 2] = ["application/octet-stream", "binary/octet-stream"];

/// Checks `bytes` (declared as `declared`, when a type was sent) against `config`.
pub fn check(
    bytes: &[u8],
    declared: Option<&str>,
    config: &MediaConfig,
) -> Result<Checked, MediaRefusal> {
    if bytes.len() as u64 > config.max_bytes {
        return Err(MediaRefusal::TooLarge {
            limit: config.max_bytes,
        });
    }
    if bytes.is_empty() {
        return Err(MediaRefusal::Empty);
    }
    let found = infer::get(bytes).map(|kind| kind.mime_type());
    let Some(found) = found.filter(|f| config.allowed_types.iter().any(|a| a == f)) else {
        return Err(MediaRefusal::TypeNotAllowed {
            found: found.unwrap_or("unknown").to_string(),
            allowed: config.allowed_types.join(", "),
        });
    };
    if let Some(declared) = declared.map(essence).filter(|d| !d.is_empty())
        && !UNSPECIFIC.contains(&declared.as_str())
        && declared != found
    {
        return Err(MediaRefusal::TypeMismatch {
            declared,
            found: found.to_string(),
        });
    }
    Ok(Checked {
        sha256: hex::encode(Sha256::digest(bytes)),
        content_type: found.to_string(),
        size_bytes: bytes.len() as u64,
    })
}

/// A media type without parameters, lowercase (`Image/JPEG; q=1` → `image/jpeg`).
fn essence(declared: &str) -> String {
    declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

    fn config(max_bytes: u64) -> MediaConfig {
        MediaConfig {
            max_bytes,
            ..MediaConfig::default()
        }
    }

    #[test]
    fn a_png_passes_with_its_hash() {
        let checked = check(PNG, Some("image/png"), &config(1024)).expect("accepted");
        assert_eq!(checked.content_type, "image/png");
        assert_eq!(checked.size_bytes, PNG.len() as u64);
        assert_eq!(checked.sha256, hex::encode(Sha256::digest(PNG)));
    }

    #[test]
    fn the_type_comes_from_the_bytes_not_the_header() {
        let text = b"#!/bin/sh\necho not a picture\n";
        assert!(matches!(
            check(text, Some("image/png"), &config(1024)),
            Err(MediaRefusal::TypeNotAllowed { .. })
        ));
        assert!(matches!(
            check(PNG, Some("image/jpeg"), &config(1024)),
            Err(MediaRefusal::TypeMismatch { .. })
        ));
        assert!(check(PNG, Some("application/octet-stream"), &config(1024)).is_ok());
        assert!(check(PNG, None, &config(1024)).is_ok());
    }

    #[test]
    fn oversized_and_empty_files_are_refused() {
        assert_eq!(
            check(PNG, None, &config(PNG.len() as u64 - 1)),
            Err(MediaRefusal::TooLarge {
                limit: PNG.len() as u64 - 1
            })
        );
        assert_eq!(check(b"", None, &config(10)), Err(MediaRefusal::Empty));
    }
}
