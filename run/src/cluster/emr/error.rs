//! Errors of EMR calls and of cluster starts.

use aws_sdk_emr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// An EMR API call that failed after the SDK's own retries.
#[derive(Debug, Clone, thiserror::Error)]
#[error("EMR {operation} failed: {detail}")]
pub struct EmrError {
    pub operation: &'static str,
    pub kind: EmrErrorKind,
    /// The service's error code, when EMR answered with one.
    pub code: Option<String>,
    pub detail: String,
}

/// Whether retrying an EMR call can help: decided once, where the SDK's error is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmrErrorKind {
    /// EMR asked the caller to slow down.
    Throttled,
    /// EMR refused the request as such (invalid, or not allowed): the same request
    /// cannot succeed.
    Refused,
    /// It may pass: a timeout, a connection that failed, an answer that could not be
    /// read, a server error, or an error code respawn does not know.
    Transient,
}

impl EmrErrorKind {
    /// The kind of an error EMR answered with, by its code.
    fn of_code(code: &str) -> EmrErrorKind {
        match code {
            "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException" => {
                EmrErrorKind::Throttled
            }
            "ValidationException"
            | "InvalidRequestException"
            | "AccessDeniedException"
            | "UnrecognizedClientException" => EmrErrorKind::Refused,
            _ => EmrErrorKind::Transient,
        }
    }
}

impl EmrError {
    pub(super) fn from_sdk<E, R>(operation: &'static str, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = error
            .as_service_error()
            .and_then(|e| e.code())
            .map(String::from);
        // Only a service error carries a code; anything else (a timeout, a dispatch
        // failure, an answer that could not be read) may pass.
        let kind = code
            .as_deref()
            .map_or(EmrErrorKind::Transient, EmrErrorKind::of_code);
        let detail = match error.as_service_error() {
            Some(service) => format!(
                "{}: {}",
                service.code().unwrap_or("error"),
                service.message().unwrap_or("(no message)")
            ),
            None => DisplayErrorContext(&error).to_string(),
        };
        EmrError {
            operation,
            kind,
            code,
            detail,
        }
    }

    /// EMR answered, but without what the call is for.
    pub(super) fn incomplete_answer(operation: &'static str, detail: &str) -> Self {
        EmrError {
            operation,
            kind: EmrErrorKind::Transient,
            code: None,
            detail: detail.into(),
        }
    }
}

use crate::cluster::Usage;

/// How a cluster start ended when it did not give a cluster.
#[derive(Debug)]
pub enum ProvisionError {
    /// The cluster ended while starting, for a reason that is an interruption;
    /// `released` is the cluster and what its instances used meanwhile, when EMR lists them.
    Lost {
        cause: String,
        released: Option<(String, Usage)>,
    },
    /// It cannot work (a refused request, a bootstrap failure): the run fails.
    Broken(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_emr::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_emr::operation::describe_cluster::DescribeClusterError;

    fn answered(code: &str) -> EmrError {
        let error = DescribeClusterError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message("as EMR says it")
                .build(),
        );
        EmrError::from_sdk("DescribeCluster", SdkError::service_error(error, ()))
    }

    #[test]
    fn throttling_codes_are_throttled_refusals_are_refused_other_codes_may_pass() {
        for code in [
            "ThrottlingException",
            "RequestLimitExceeded",
            "TooManyRequestsException",
        ] {
            assert_eq!(answered(code).kind, EmrErrorKind::Throttled, "{code}");
        }
        for code in [
            "ValidationException",
            "InvalidRequestException",
            "AccessDeniedException",
            "UnrecognizedClientException",
        ] {
            assert_eq!(answered(code).kind, EmrErrorKind::Refused, "{code}");
        }
        for code in ["InternalServerError", "InternalServerException", "Unheard"] {
            assert_eq!(answered(code).kind, EmrErrorKind::Transient, "{code}");
        }
    }

    #[test]
    fn timeouts_dispatch_failures_and_unreadable_answers_may_pass() {
        let timeout: SdkError<DescribeClusterError, ()> = SdkError::timeout_error("took too long");
        let dispatch: SdkError<DescribeClusterError, ()> =
            SdkError::dispatch_failure(ConnectorError::io("connection reset".into()));
        let unreadable: SdkError<DescribeClusterError, ()> =
            SdkError::response_error("not JSON", ());
        for error in [timeout, dispatch, unreadable] {
            let error = EmrError::from_sdk("DescribeCluster", error);
            assert_eq!(error.kind, EmrErrorKind::Transient, "{error}");
            assert_eq!(error.code, None);
        }
    }

    #[test]
    fn the_message_names_the_operation_and_what_emr_said() {
        let error: &dyn std::error::Error = &answered("ValidationException");
        assert_eq!(
            error.to_string(),
            "EMR DescribeCluster failed: ValidationException: as EMR says it"
        );
    }
}
