//! Errors of EMR calls and of cluster starts.

use aws_sdk_emr::error::{DisplayErrorContext, ProvideErrorMetadata};

/// An EMR API call that failed after the SDK's own retries.
#[derive(Debug, Clone)]
pub struct EmrError {
    pub operation: &'static str,
    pub code: Option<String>,
    pub detail: String,
}

impl std::fmt::Display for EmrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EMR {} failed: {}", self.operation, self.detail)
    }
}

impl EmrError {
    /// EMR asks the caller to slow down.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException")
        )
    }

    /// A request EMR refuses as such (retrying the same request cannot help).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                "ValidationException"
                    | "InvalidRequestException"
                    | "AccessDeniedException"
                    | "UnrecognizedClientException"
            )
        )
    }

    pub(super) fn from_sdk<E, R>(
        operation: &'static str,
        error: aws_sdk_emr::error::SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = error
            .as_service_error()
            .and_then(|e| e.code())
            .map(String::from);
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
            code,
            detail,
        }
    }
}

/// How a cluster start ended when it did not give a cluster.
#[derive(Debug)]
pub enum ProvisionError {
    /// The cluster ended while starting, for a reason that is an interruption.
    Lost(String),
    /// It cannot work (a refused request, a bootstrap failure): the run fails.
    Broken(String),
}
