//! Where a record came from, and what went wrong with it.

use std::fmt;
use std::sync::Arc;

/// Where a record sits: the input (file, S3 key, Lambda event) and the
/// position inside it, nested through every framing layer
/// (`byte 1204 > awslogs.data > logEvents[3]`, `line 17`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// The input's name as the caller gave it.
    pub input: Arc<str>,
    /// The position inside the input; empty for the input as a whole.
    pub at: String,
}

impl Location {
    /// The input as a whole.
    pub fn input(input: Arc<str>) -> Self {
        Self { input, at: String::new() }
    }

    /// A position one layer deeper than `self`.
    pub fn child(&self, step: impl fmt::Display) -> Self {
        let at = if self.at.is_empty() { step.to_string() } else { format!("{} > {step}", self.at) };
        Self { input: Arc::clone(&self.input), at }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() { write!(f, "{}", self.input) } else { write!(f, "{}: {}", self.input, self.at) }
    }
}

/// A record, or the rest of an input, that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct DecodeError {
    /// Where it happened.
    pub location: Location,
    /// What happened.
    pub kind: ErrorKind,
    /// The bytes that could not be decoded, as far as they were read: the
    /// record, or the Lambda payload a damaged stream came in. `None` when
    /// the input itself is the damaged stream (it stays where it is) or the
    /// record was too large to keep.
    pub raw: Option<Vec<u8>>,
}

/// The input's own reader failed (a network or disk error, not bad data):
/// decoding stopped there, and the input must be read again.
#[derive(Debug, thiserror::Error)]
#[error("{location}: reading failed after {offset} bytes: {source}")]
pub struct ReadError {
    /// The input.
    pub location: Location,
    /// Bytes of the input read before it failed.
    pub offset: u64,
    /// The reader's error.
    #[source]
    pub source: std::io::Error,
}

/// What went wrong while decoding.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// Reading the input failed.
    #[error("read failed: {0}")]
    Io(#[source] std::io::Error),
    /// A compressed stream ends early or is corrupt (this includes trailing
    /// bytes after the last gzip member that are not another member).
    #[error("corrupt or truncated {codec} data at compressed byte {offset}: {message}")]
    Decompress {
        /// `gzip` or `zlib`.
        codec: &'static str,
        /// How far into the compressed input the decoder had read.
        offset: u64,
        /// The decompressor's own message.
        message: String,
    },
    /// Decompression produced more than the configured limit: a gzip bomb,
    /// or an input larger than this deployment accepts.
    #[error("decompressed data exceeds the limit of {limit} bytes (gzip bomb?)")]
    DecompressedTooLarge {
        /// The limit in force.
        limit: u64,
    },
    /// One record (line or JSON value) is larger than the configured limit.
    #[error("record of at least {size} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge {
        /// Bytes seen before giving up (at least this many).
        size: u64,
        /// The limit in force.
        limit: usize,
    },
    /// The input ends inside a JSON value.
    #[error("input ends inside a JSON value that started here")]
    Truncated,
    /// A byte where a JSON object should start.
    #[error("unexpected byte {byte:#04x} where a JSON object should start")]
    UnexpectedByte {
        /// The offending byte.
        byte: u8,
    },
    /// A raw newline inside a JSON string: the record is cut or corrupt.
    #[error("line break inside a JSON string")]
    BrokenString,
    /// Invalid JSON, or JSON of the wrong shape (serde's message gives line and column).
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A line that is neither JSON nor a `<RFC 3339 time> <message>` export line.
    #[error("line is neither a JSON object nor a CloudWatch Logs export line")]
    NotJsonLine,
    /// A base64 field that does not decode.
    #[error("invalid base64 in {field}: {message}")]
    Base64 {
        /// The field holding the data.
        field: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// The input's format is none the decoder knows.
    #[error("unrecognised input format: {0}")]
    UnknownFormat(String),
}
