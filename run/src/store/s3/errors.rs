//! SDK errors to [`StoreError`]s: the typed outcome (not found, precondition failed, ...)
//! or a message naming the object, with a [`StoreErrorKind`] decided from the S3 error code
//! and the HTTP status.

use super::S3Store;
use crate::store::{StoreError, StoreErrorKind};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// An error and its sources, each message once: "a: b: c". (The SDK's own rendering adds
/// debug dumps of whole HTTP responses, too much for a user.)
pub(super) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The kind of an S3 error code, when it says one. S3 and compatible servers send these
/// codes in the error body (and DeleteObjects per key, inside a successful response).
pub(super) fn code_kind(code: &str) -> Option<StoreErrorKind> {
    Some(match code {
        "SlowDown"
        | "ServiceUnavailable"
        | "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequests"
        | "RequestThrottled" => StoreErrorKind::Throttled,
        "InternalError" | "RequestTimeout" | "RequestTimeoutException" => StoreErrorKind::Transient,
        "NoSuchKey" | "NotFound" | "NoSuchUpload" => StoreErrorKind::NotFound,
        "PreconditionFailed" | "ConditionalRequestConflict" => StoreErrorKind::Precondition,
        "AccessDenied" | "AllAccessDisabled" => StoreErrorKind::Access,
        // Credentials the server does not know, a wrong region or bucket, a clock too far
        // off, a request this server does not implement: retrying changes nothing.
        "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "InvalidToken"
        | "TokenRefreshRequired"
        | "RequestTimeTooSkewed"
        | "AuthorizationHeaderMalformed"
        | "PermanentRedirect"
        | "IllegalLocationConstraintException"
        | "InvalidBucketName"
        | "NoSuchBucket"
        | "NotImplemented"
        | "MethodNotAllowed" => StoreErrorKind::Configuration,
        _ => return None,
    })
}

/// The kind of an S3 error response: from its code when the code says one (AWS answers a
/// request timeout with 400 RequestTimeout), else from the HTTP status.
fn response_kind(status: Option<u16>, code: Option<&str>) -> StoreErrorKind {
    if let Some(kind) = code.and_then(code_kind) {
        return kind;
    }
    match status {
        Some(503 | 429) => StoreErrorKind::Throttled,
        Some(404) => StoreErrorKind::NotFound,
        Some(409 | 412) => StoreErrorKind::Precondition,
        Some(403) => StoreErrorKind::Access,
        Some(408) => StoreErrorKind::Transient,
        Some(501) => StoreErrorKind::Configuration,
        Some(500..=599) => StoreErrorKind::Transient,
        // The server refuses the request as made (400, 401, 405, a redirect to another
        // region, ...).
        Some(300..=499) => StoreErrorKind::Configuration,
        // No status, or a success status with an error body or one that could not be
        // read: a response cut short.
        _ => StoreErrorKind::Transient,
    }
}

impl S3Store {
    /// Turns an SDK error into the typed outcome or a message naming the object, with its
    /// kind decided from the error code and the HTTP status ([`response_kind`]).
    pub(super) fn error<E>(
        &self,
        operation: &'static str,
        object: String,
        err: SdkError<E>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_owned);
        let kind = match &err {
            SdkError::ConstructionFailure(_) => StoreErrorKind::Configuration,
            _ => response_kind(status, code.as_deref()),
        };
        match (&err, status, code.as_deref()) {
            (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), _, _) => {
                StoreError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    detail: error_chain(&err),
                    attempts: self.max_attempts,
                }
            }
            (_, _, Some("NoSuchBucket")) => StoreError::NoSuchBucket {
                bucket: self.bucket.clone(),
                endpoint: self.endpoint.clone(),
            },
            (_, Some(404), _) | (_, _, Some("NoSuchKey" | "NotFound")) => {
                StoreError::NotFound { object }
            }
            (_, Some(412), _) | (_, _, Some("ConditionalRequestConflict")) => {
                StoreError::PreconditionFailed { object }
            }
            (_, Some(403), _) => StoreError::AccessDenied {
                object,
                detail: err
                    .message()
                    .unwrap_or(code.as_deref().unwrap_or("403 Forbidden"))
                    .to_string(),
                kind: match kind {
                    StoreErrorKind::Configuration => StoreErrorKind::Configuration,
                    _ => StoreErrorKind::Access,
                },
            },
            _ => StoreError::Service {
                operation,
                object,
                detail: match (&code, err.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.clone(),
                    _ => error_chain(&err),
                },
                kind,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TransferOptions;
    use aws_sdk_s3::Client;
    use aws_sdk_s3::config::http::HttpResponse;
    use aws_sdk_s3::config::{BehaviorVersion, Region};
    use aws_sdk_s3::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    fn store() -> S3Store {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        S3Store {
            client: Client::from_conf(config),
            bucket: "bucket".into(),
            prefix: "team/".into(),
            endpoint: "http://127.0.0.1:9000".into(),
            aws: false,
            max_attempts: 4,
            patience: super::super::retry::Patience::Attempts(4),
            transfer: TransferOptions::default(),
        }
    }

    /// The error of a GetObject answered with this status and, if given, error code.
    fn answered(status: u16, code: Option<&str>) -> StoreError {
        let mut meta = ErrorMetadata::builder().message("the server says no");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let response = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        let err = SdkError::service_error(GetObjectError::generic(meta.build()), response);
        store().error("GetObject", "s3://bucket/team/k".into(), err)
    }

    #[test]
    fn statuses_and_codes_decide_the_kind() {
        use StoreErrorKind as K;
        for (status, code, kind) in [
            (503, Some("SlowDown"), K::Throttled),
            (503, None, K::Throttled),
            (429, None, K::Throttled),
            (500, Some("InternalError"), K::Transient),
            (500, None, K::Transient),
            (502, None, K::Transient),
            (504, None, K::Transient),
            (400, Some("RequestTimeout"), K::Transient),
            (404, Some("NoSuchKey"), K::NotFound),
            (404, None, K::NotFound),
            (412, Some("PreconditionFailed"), K::Precondition),
            (409, Some("ConditionalRequestConflict"), K::Precondition),
            (409, Some("OperationAborted"), K::Precondition),
            (403, Some("AccessDenied"), K::Access),
            (403, None, K::Access),
            (403, Some("InvalidAccessKeyId"), K::Configuration),
            (403, Some("SignatureDoesNotMatch"), K::Configuration),
            (400, Some("AuthorizationHeaderMalformed"), K::Configuration),
            (301, Some("PermanentRedirect"), K::Configuration),
            (404, Some("NoSuchBucket"), K::Configuration),
            (501, Some("NotImplemented"), K::Configuration),
            (400, Some("InvalidArgument"), K::Configuration),
        ] {
            let error = answered(status, code);
            assert_eq!(error.kind(), kind, "{status} {code:?}: {error}");
            assert_eq!(
                error.is_transient(),
                matches!(kind, K::Transient | K::Throttled),
                "{status} {code:?}"
            );
        }
    }

    #[test]
    fn responses_keep_their_variants_and_messages() {
        assert!(matches!(
            answered(404, Some("NoSuchKey")),
            StoreError::NotFound { object } if object == "s3://bucket/team/k"
        ));
        assert!(matches!(
            answered(412, None),
            StoreError::PreconditionFailed { .. }
        ));
        assert!(matches!(
            answered(404, Some("NoSuchBucket")),
            StoreError::NoSuchBucket { .. }
        ));
        let denied = answered(403, Some("InvalidAccessKeyId"));
        assert!(matches!(denied, StoreError::AccessDenied { .. }));
        assert_eq!(
            denied.message(),
            "access to s3://bucket/team/k was denied: the server says no"
        );
        assert!(denied.hint().is_some_and(|h| h.contains("s3:GetObject")));
        assert_eq!(
            answered(503, Some("SlowDown")).to_string(),
            "GetObject s3://bucket/team/k failed: SlowDown: the server says no"
        );
    }

    #[test]
    fn timeouts_and_failed_connections_are_transient() {
        let timeout: SdkError<GetObjectError> = SdkError::timeout_error("took too long");
        let refused: SdkError<GetObjectError> = SdkError::dispatch_failure(ConnectorError::io(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
        ));
        for err in [timeout, refused] {
            let error = store().error("GetObject", "s3://bucket/team/k".into(), err);
            assert!(matches!(error, StoreError::Unreachable { .. }), "{error}");
            assert_eq!(error.kind(), StoreErrorKind::Transient);
            assert!(error.is_transient());
        }
        let unbuildable: SdkError<GetObjectError> =
            SdkError::construction_failure("no bucket given");
        let error = store().error("GetObject", "s3://bucket/team/k".into(), unbuildable);
        assert_eq!(error.kind(), StoreErrorKind::Configuration, "{error}");
    }

    #[test]
    fn delete_objects_codes_per_key() {
        assert_eq!(code_kind("SlowDown"), Some(StoreErrorKind::Throttled));
        assert_eq!(code_kind("InternalError"), Some(StoreErrorKind::Transient));
        assert_eq!(code_kind("AccessDenied"), Some(StoreErrorKind::Access));
        assert_eq!(code_kind("SomethingNew"), None);
    }
}
