//! Reading an import file, row by row: CSV (header row of column names) or JSON Lines (one
//! object per line, keys = column names). A line that cannot be read becomes a
//! [`RowError`] with code `malformed_line`; reading goes on with the next one.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::row::{RawRow, RowError, is_column};

/// The format of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Comma-separated values, UTF-8 (a byte-order mark is allowed), first row = column names.
    Csv,
    /// JSON Lines: one JSON object per line, keys = column names.
    Jsonl,
}

impl Format {
    /// The format a file name suggests: `.jsonl`/`.ndjson` → JSON Lines, anything else CSV.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson") => {
                Format::Jsonl
            }
            _ => Format::Csv,
        }
    }
}

/// Why a file cannot be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The CSV header is unusable (unknown or repeated column names, unreadable).
    #[error("line 1: {0}")]
    Header(String),
}

/// Rows of a file, in file order, each with the byte offset reached after it (for progress).
pub type Rows = Box<dyn Iterator<Item = (Result<RawRow, RowError>, u64)> + Send>;

/// Opens `path` and returns its rows.
pub fn open(path: &Path, format: Format) -> Result<Rows, SourceError> {
    let io = |source| SourceError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    match format {
        Format::Csv => csv_rows(file),
        Format::Jsonl => Ok(jsonl_rows(file)),
    }
}

fn malformed(line: u64, message: impl Into<String>) -> RowError {
    RowError {
        line,
        external_id: None,
        code: "malformed_line".into(),
        field: None,
        message: message.into(),
    }
}

/// Offsets of the line-break bytes (`\r`, `\n`) read so far and not yet passed, shared
/// between the [`BreakTap`] that reads the file and the [`LineIndex`] that numbers rows.
type Breaks = Arc<Mutex<VecDeque<(u64, u8)>>>;

/// A reader that notes where every line break of the file is, as it is read.
struct BreakTap<R> {
    inner: R,
    read: u64,
    breaks: Breaks,
}

impl<R: Read> Read for BreakTap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut breaks) = self.breaks.lock() {
            for (i, b) in buf[..n].iter().enumerate() {
                if matches!(b, b'\r' | b'\n') {
                    breaks.push_back((self.read + i as u64, *b));
                }
            }
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// Physical line numbers of CSV records, counted from the file's own `\n` bytes.
///
/// The csv crate's record position points at the `\n` of a CRLF ending (it stops at the `\r`),
/// and its line count is then one short for every record after the first. Here a record's line
/// is 1 + the `\n` bytes before its first content byte: breaks before the record's start
/// offset, then the run of `\r`/`\n` bytes at the start itself (the rest of a CRLF, or blank
/// lines the reader skipped). Right for LF, CRLF (RFC 4180, Excel) and quoted multi-line fields.
struct LineIndex {
    breaks: Breaks,
    newlines: u64,
}

impl LineIndex {
    /// The line of the record whose reading began at byte `start`; starts never go backwards.
    fn line_at(&mut self, start: u64) -> u64 {
        let Ok(mut breaks) = self.breaks.lock() else {
            return self.newlines + 1;
        };
        let mut cursor = start;
        while let Some(&(at, byte)) = breaks.front() {
            if at < start || at == cursor {
                if at == cursor {
                    cursor += 1;
                }
                self.newlines += u64::from(byte == b'\n');
                breaks.pop_front();
            } else {
                break;
            }
        }
        self.newlines + 1
    }
}

fn csv_rows(file: File) -> Result<Rows, SourceError> {
    let breaks = Breaks::default();
    let tap = BreakTap {
        inner: file,
        read: 0,
        breaks: breaks.clone(),
    };
    let mut lines = LineIndex {
        breaks,
        newlines: 0,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(BufReader::with_capacity(1 << 16, tap));
    let header = reader
        .byte_headers()
        .map_err(|e| SourceError::Header(e.to_string()))?
        .clone();
    let mut columns = Vec::with_capacity(header.len());
    for (i, name) in header.iter().enumerate() {
        let name = std::str::from_utf8(name)
            .map_err(|_| SourceError::Header(format!("column {} is not UTF-8", i + 1)))?;
        let name = name.trim_start_matches('\u{feff}').trim().to_string();
        if !is_column(&name) {
            return Err(SourceError::Header(format!(
                "unknown column `{name}` (the mapping is in docs/import.md)"
            )));
        }
        if columns.contains(&name) {
            return Err(SourceError::Header(format!(
                "column `{name}` appears twice"
            )));
        }
        columns.push(name);
    }
    for required in [
        "external_id",
        "channel",
        "received_at",
        "street",
        "community",
        "grid",
        "text",
    ] {
        if !columns.iter().any(|c| c == required) {
            return Err(SourceError::Header(format!(
                "required column `{required}` is missing"
            )));
        }
    }
    let mut record = csv::ByteRecord::new();
    let mut failed = false;
    let rows = std::iter::from_fn(move || {
        loop {
            if failed {
                return None;
            }
            let start = reader.position().byte();
            match reader.read_byte_record(&mut record) {
                Ok(false) => return None,
                Ok(true) => {
                    let offset = reader.position().byte();
                    let line = lines.line_at(record.position().map_or(start, |p| p.byte()));
                    if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                        continue;
                    }
                    let mut values = HashMap::with_capacity(columns.len());
                    for (column, field) in columns.iter().zip(record.iter()) {
                        let Ok(text) = std::str::from_utf8(field) else {
                            let error = RowError {
                                field: Some(column.clone()),
                                ..malformed(line, "is not valid UTF-8")
                            };
                            return Some((Err(error), offset));
                        };
                        let text = text.trim();
                        if !text.is_empty() {
                            values.insert(column.clone(), text.to_string());
                        }
                    }
                    return Some((Ok(RawRow { line, values }), offset));
                }
                Err(error) => {
                    let offset = reader.position().byte();
                    let (line, message) = match error.kind() {
                        csv::ErrorKind::UnequalLengths {
                            pos,
                            expected_len,
                            len,
                        } => (
                            lines.line_at(pos.as_ref().map_or(start, |p| p.byte())),
                            format!("{len} fields where the header has {expected_len}"),
                        ),
                        _ => (
                            lines.line_at(error.position().map_or(start, |p| p.byte())),
                            format!("unreadable CSV: {error}"),
                        ),
                    };
                    // An I/O error does not go away on the next read: report it and stop.
                    failed = matches!(error.kind(), csv::ErrorKind::Io(_));
                    return Some((Err(malformed(line, message)), offset));
                }
            }
        }
    });
    Ok(Box::new(rows))
}

fn jsonl_rows(file: File) -> Rows {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut line_no = 0u64;
    let mut offset = 0u64;
    let mut buf = Vec::new();
    let mut failed = false;
    Box::new(std::iter::from_fn(move || {
        loop {
            if failed {
                return None;
            }
            buf.clear();
            let n = match reader.read_until(b'\n', &mut buf) {
                Ok(0) => return None,
                Ok(n) => n,
                Err(e) => {
                    line_no += 1;
                    // Stop after reporting: the reader cannot go on.
                    failed = true;
                    return Some((Err(malformed(line_no, format!("unreadable: {e}"))), offset));
                }
            };
            offset += n as u64;
            line_no += 1;
            let Ok(text) = std::str::from_utf8(&buf) else {
                return Some((Err(malformed(line_no, "is not valid UTF-8")), offset));
            };
            let text = text.trim_start_matches('\u{feff}').trim();
            if text.is_empty() {
                continue;
            }
            let value: serde_json::Value = match serde_json::from_str(text) {
                Ok(value) => value,
                Err(e) => {
                    return Some((Err(malformed(line_no, format!("not JSON: {e}"))), offset));
                }
            };
            let serde_json::Value::Object(object) = value else {
                return Some((Err(malformed(line_no, "not a JSON object")), offset));
            };
            let mut values = HashMap::with_capacity(object.len());
            for (key, value) in object {
                let text = match value {
                    serde_json::Value::Null => continue,
                    serde_json::Value::String(s) => s.trim().to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Array(items) => {
                        let mut parts = Vec::with_capacity(items.len());
                        for item in items {
                            match item {
                                serde_json::Value::String(s) => parts.push(s),
                                other => parts.push(other.to_string()),
                            }
                        }
                        parts.join(";")
                    }
                    serde_json::Value::Object(_) => {
                        let error = RowError {
                            field: Some(key),
                            code: "invalid_value".into(),
                            ..malformed(line_no, "must be a string, number, boolean or list")
                        };
                        return Some((Err(error), offset));
                    }
                };
                if !text.is_empty() {
                    values.insert(key, text);
                }
            }
            return Some((
                Ok(RawRow {
                    line: line_no,
                    values,
                }),
                offset,
            ));
        }
    }))
}
