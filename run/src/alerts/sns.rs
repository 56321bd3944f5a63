//! Alerts published to an SNS topic (`Publish`, the only SNS call respawn makes): the
//! standard credential chain, the topic's own region, `AWS_ENDPOINT_URL_SNS` where set.

use super::Payload;
use super::deliver::{Failure, TRY_TIMEOUT, failure};
use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use respawn_core::workflow::SnsTopic;

/// A client for the topic's region; the SDK tries each call once ([`super::deliver`]
/// retries).
pub(super) async fn client(topic: &SnsTopic) -> aws_sdk_sns::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(topic.region.clone()))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    aws_sdk_sns::Client::new(&config)
}

/// Publishes the payload's JSON as the message, its summary as the subject.
pub(super) async fn publish(
    client: &aws_sdk_sns::Client,
    topic: &SnsTopic,
    payload: &Payload,
    body: &[u8],
) -> Result<(), Failure> {
    let message = String::from_utf8_lossy(body).into_owned();
    let call = (client.publish())
        .topic_arn(&topic.arn)
        .subject(subject(&payload.summary))
        .message(message)
        .send();
    let Ok(sent) = tokio::time::timeout(TRY_TIMEOUT, call).await else {
        return Err(failure("SNS did not answer in time", true));
    };
    match sent {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(error)) => {
            let code = error.err().code().unwrap_or("an error").to_string();
            // The sender's own mistakes (no such topic, no permission, a bad message)
            // stay what they are; throttling and SNS's own failures may pass.
            let again = matches!(
                code.as_str(),
                "Throttled"
                    | "Throttling"
                    | "ThrottlingException"
                    | "InternalError"
                    | "KMSThrottling"
            ) || error.raw().status().is_server_error();
            let said = error.err().message().unwrap_or_default();
            Err(failure(format!("SNS answered {code}: {said}"), again))
        }
        Err(other) => Err(failure(
            format!("cannot reach SNS: {}", DisplayErrorContext(&other)),
            true,
        )),
    }
}

/// SNS subjects are at most 100 printable ASCII characters, without line breaks.
fn subject(summary: &str) -> String {
    let printable: String = (summary.chars())
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    printable.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn subjects_are_printable_ascii_of_at_most_a_hundred_characters() {
        assert_eq!(
            super::subject("orders 2026-11-02: check `a` refused"),
            "orders 2026-11-02: check `a` refused"
        );
        assert_eq!(super::subject("é\nx"), "??x");
        assert_eq!(super::subject(&"x".repeat(150)).len(), 100);
    }
}
