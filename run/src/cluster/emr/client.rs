//! The client every EMR call goes through, and the retry on top of the SDK's own.

use super::{EmrError, EmrErrorKind};
use aws_sdk_emr::Client;
use std::time::Duration;

/// The client every EMR call goes through: the standard credential chain and region,
/// `endpoint` when given (else `AWS_ENDPOINT_URL_EMR` / `AWS_ENDPOINT_URL` as the SDK
/// reads them), and the SDK's standard retry mode with up to 5 attempts, which backs
/// off with jitter on `ThrottlingException` and transient errors; [`again`] retries
/// on top of it.
pub async fn client(region: Option<&str>, endpoint: Option<&str>) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).retry_config(
        aws_config::retry::RetryConfig::standard()
            .with_max_attempts(5)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(5)),
    );
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let config = loader.load().await;
    Client::new(&config)
}

/// Retries an EMR call with jittered exponential backoff (0.5 s to 20 s, 8 times) while it
/// fails for a reason that may pass: what the SDK's own retries could not absorb, as when
/// its retry quota runs out under sustained throttling. `any_transient` retries every
/// error but a refused request; otherwise only throttling is retried.
pub(super) async fn again<T, Fut>(
    any_transient: bool,
    call: impl FnMut() -> Fut,
) -> Result<T, EmrError>
where
    Fut: std::future::Future<Output = Result<T, EmrError>>,
{
    use backon::Retryable;
    // backon's jitter is seeded the same in every process unless told otherwise.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
        ^ u64::from(std::process::id());
    call.retry(
        backon::ExponentialBuilder::default()
            .with_jitter()
            .with_jitter_seed(seed)
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(20))
            .with_max_times(8),
    )
    .when(|e: &EmrError| match e.kind {
        EmrErrorKind::Throttled => true,
        EmrErrorKind::Transient => any_transient,
        EmrErrorKind::Refused => false,
    })
    .notify(|e, after| tracing::warn!("{e}; retrying in {after:?}"))
    .await
}
