//! AWS SDK errors as [`Fault`]s: the class decided once, here, from the
//! service's error code (`ProvideErrorMetadata::code()`) and the HTTP status,
//! never from formatted text; the SDK's error kept as the source.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use sentinel_core::fault::{Fault, FaultClass};

/// The class of a service error from its code, or failing that its HTTP status.
pub fn classify(code: Option<&str>, status: Option<u16>) -> FaultClass {
    if let Some(code) = code {
        let by_code = match code {
            c if c.starts_with("KMS") || c.starts_with("Kms") || c.contains("KMS") => Some(FaultClass::Encryption),
            c if c.contains("Throttl")
                || c.contains("ThroughputExceeded")
                || c == "RequestLimitExceeded"
                || c == "TooManyRequestsException"
                || c == "SlowDown" =>
            {
                Some(FaultClass::Throttled)
            }
            c if c.starts_with("AccessDenied")
                || c.starts_with("AuthorizationError")
                || c == "UnrecognizedClientException"
                || c == "InvalidClientTokenId"
                || c.starts_with("ExpiredToken")
                || c == "SignatureDoesNotMatch"
                || c == "InvalidAccessKeyId"
                || c == "Forbidden" =>
            {
                Some(FaultClass::AccessDenied)
            }
            c if c.starts_with("ResourceNotFound")
                || c.starts_with("NoSuch")
                || c == "NotFound"
                || c == "NotFoundException"
                || c == "TableNotFoundException" =>
            {
                Some(FaultClass::MissingResource)
            }
            c if c.starts_with("InternalServer")
                || c.starts_with("InternalError")
                || c.starts_with("InternalFailure")
                || c.starts_with("ServiceUnavailable")
                || c == "RequestTimeout" =>
            {
                Some(FaultClass::Unavailable)
            }
            c if c.starts_with("Validation")
                || c.starts_with("InvalidParameter")
                || c == "ItemCollectionSizeLimitExceededException"
                || c == "PreconditionFailed" =>
            {
                Some(FaultClass::Rejected)
            }
            _ => None,
        };
        if let Some(class) = by_code {
            return class;
        }
    }
    match status {
        Some(429) => FaultClass::Throttled,
        Some(401 | 403) => FaultClass::AccessDenied,
        Some(404) => FaultClass::MissingResource,
        Some(s) if s >= 500 => FaultClass::Unavailable,
        Some(400..=499) => FaultClass::Rejected,
        _ => FaultClass::Other,
    }
}

/// A [`Fault`] from an SDK error: `operation` names the call and its target.
pub fn from_sdk<E>(operation: impl Into<String>, error: SdkError<E, HttpResponse>) -> Fault
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = error.code().map(str::to_owned);
    let class = match &error {
        SdkError::TimeoutError(_) => FaultClass::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => FaultClass::Timeout,
        SdkError::DispatchFailure(_) => FaultClass::Unavailable,
        SdkError::ResponseError(_) => FaultClass::Unavailable,
        SdkError::ServiceError(s) => classify(code.as_deref(), Some(s.raw().status().as_u16())),
        _ => FaultClass::Other,
    };
    Fault { class, operation: operation.into(), code, source: Box::new(error) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_decide_the_class_and_status_fills_in() {
        for (code, status, class) in [
            (Some("ThrottlingException"), Some(400), FaultClass::Throttled),
            (Some("ProvisionedThroughputExceededException"), Some(400), FaultClass::Throttled),
            (Some("AccessDeniedException"), Some(400), FaultClass::AccessDenied),
            (Some("AuthorizationError"), Some(403), FaultClass::AccessDenied),
            (Some("KMSDisabledException"), Some(400), FaultClass::Encryption),
            (Some("KMSAccessDenied"), Some(400), FaultClass::Encryption),
            (Some("ResourceNotFoundException"), Some(400), FaultClass::MissingResource),
            (Some("NotFound"), Some(404), FaultClass::MissingResource),
            (Some("NoSuchBucket"), Some(404), FaultClass::MissingResource),
            (Some("InternalServerError"), Some(500), FaultClass::Unavailable),
            (Some("ValidationException"), Some(400), FaultClass::Rejected),
            (None, Some(503), FaultClass::Unavailable),
            (Some("Whatever"), Some(429), FaultClass::Throttled),
            (None, None, FaultClass::Other),
        ] {
            assert_eq!(classify(code, status), class, "{code:?} {status:?}");
        }
    }
}
