//! The attachments of a request: the files recorded by `media_attached`, by content hash.
//! The bytes live in the engine's media store; the state keeps what reads and erasure need
//! (which hashes belong to the request, their type, and whether they are personal data).

use schemas::command::AttachmentPurpose;
use schemas::event::MediaAttached;

use super::Request;

/// One attached file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attachment {
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// Media type found from the magic bytes.
    pub content_type: String,
    /// Length in bytes.
    pub size_bytes: u64,
    /// At which step it came in.
    pub purpose: AttachmentPurpose,
    /// Personal data of the resident: deleted from the media store on erasure.
    pub personal: bool,
}

impl From<&MediaAttached> for Attachment {
    fn from(e: &MediaAttached) -> Self {
        Attachment {
            sha256: e.sha256.clone(),
            content_type: e.content_type.clone(),
            size_bytes: e.size_bytes,
            purpose: e.purpose,
            personal: e.personal,
        }
    }
}

impl Request {
    /// Every attached file, in the order attached.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// The attachment with content hash `sha256`, if the request has one.
    pub fn attachment(&self, sha256: &str) -> Option<&Attachment> {
        self.attachments.iter().find(|a| a.sha256 == sha256)
    }
}

/// Whether `text` is a SHA-256 digest as the log records it: 64 lowercase hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
