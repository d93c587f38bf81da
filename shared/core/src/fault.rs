//! Failures of the environment, as opposed to bad input.
//!
//! Bad input is the input's problem: the record is quarantined, counted, and
//! the rest of the batch goes on. A [`Fault`] is the environment's problem
//! (throttling, a 5xx, access denied, a disabled key, a missing table or
//! bucket, a network or disk error): nothing about the input is wrong, so the
//! invocation fails and AWS delivers it again. Adapters decide the class once,
//! from the service's error code, and keep the service's error as the source.

use std::fmt;

use serde::Serialize;

/// Any error, sent between threads.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What kind of environment failure it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultClass {
    /// The service throttled the call, past the SDK's own retries.
    Throttled,
    /// The service failed (5xx) or could not be reached.
    Unavailable,
    /// The call timed out.
    Timeout,
    /// The caller may not do this (IAM, a resource policy, expired credentials).
    AccessDenied,
    /// A KMS key is disabled, missing or denies use.
    Encryption,
    /// A table, topic, bucket, key or version does not exist.
    MissingResource,
    /// The service refused the request as invalid (a defect: nothing the
    /// product writes is built to be refused).
    Rejected,
    /// A local read or write failed (disk, terminal).
    Io,
    /// Anything else.
    Other,
}

impl FaultClass {
    /// A short stable name, for logs, metrics and the Lambda error type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::AccessDenied => "access_denied",
            Self::Encryption => "encryption",
            Self::MissingResource => "missing_resource",
            Self::Rejected => "rejected",
            Self::Io => "io",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for FaultClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str().replace('_', " ").as_str())
    }
}

/// An environment failure: which call, what kind, the service's own code, and its error.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed ({class}{})", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
pub struct Fault {
    /// What kind of failure.
    pub class: FaultClass,
    /// The call, e.g. `DynamoDB PutItem on table alerts`.
    pub operation: String,
    /// The service's error code, e.g. `ResourceNotFoundException`.
    pub code: Option<String>,
    /// The underlying error.
    #[source]
    pub source: BoxError,
}

impl Fault {
    /// A fault from any error.
    pub fn new(class: FaultClass, operation: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self { class, operation: operation.into(), code: None, source: source.into() }
    }

    /// A local I/O failure.
    pub fn io(operation: impl Into<String>, source: std::io::Error) -> Self {
        Self::new(FaultClass::Io, operation, source)
    }
}

/// An error and every source under it, joined by `: `.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_names_the_call_class_and_code_and_keeps_its_source() {
        let mut f = Fault::new(FaultClass::MissingResource, "DynamoDB PutItem on table alerts", "table gone");
        f.code = Some("ResourceNotFoundException".into());
        assert_eq!(
            f.to_string(),
            "DynamoDB PutItem on table alerts failed (missing resource, ResourceNotFoundException)"
        );
        assert_eq!(chain(&f), format!("{f}: table gone"));
    }
}
