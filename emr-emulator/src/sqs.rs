//! Amazon SQS, as much as an EventBridge rule on `aws.ec2` feeding a queue needs: queues
//! made by the test ([`crate::EmrEmulator::create_queue`]), EC2's interruption warnings and
//! rebalance recommendations put on every queue when a test reclaims a cluster's spot
//! instances, and the calls a consumer makes over SQS's awsJson1.0 protocol
//! (`X-Amz-Target: AmazonSQS.<Operation>`): ReceiveMessage (long polling, visibility
//! timeout, receive count) and DeleteMessage (by receipt handle). Errors are SQS's:
//! `QueueDoesNotExist`, `ReceiptHandleIsInvalid`, `InvalidParameterValue`.

use crate::cluster::random_id;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// The account id in queue URLs and event ARNs.
pub(crate) const ACCOUNT: &str = "123456789012";
/// The region events say they come from.
const REGION: &str = "us-east-1";
/// How often a long poll looks for a message again.
const LONG_POLL_STEP: Duration = Duration::from_millis(25);

#[derive(Default)]
pub(crate) struct Queues {
    queues: BTreeMap<String, Vec<Message>>,
}

struct Message {
    id: String,
    body: String,
    /// The receipt handle of the latest receive.
    receipt: Option<String>,
    visible_at: Instant,
    receives: u32,
    sent: SystemTime,
}

#[derive(Debug)]
pub(crate) struct SqsError {
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

fn error(kind: &'static str, message: impl Into<String>) -> SqsError {
    SqsError {
        kind,
        message: message.into(),
    }
}

impl Queues {
    /// A queue at `<endpoint>/<account>/<name>` (kept if it exists).
    pub(crate) fn create(&mut self, endpoint: &str, name: &str) -> String {
        let url = format!("{endpoint}/{ACCOUNT}/{name}");
        self.queues.entry(url.clone()).or_default();
        url
    }

    pub(crate) fn send(&mut self, url: &str, body: String) -> bool {
        let Some(queue) = self.queues.get_mut(url) else {
            return false;
        };
        queue.push(Message {
            id: uuid(),
            body,
            receipt: None,
            visible_at: Instant::now(),
            receives: 0,
            sent: SystemTime::now(),
        });
        true
    }

    /// `body` on every queue, as an EventBridge rule targeting each of them would.
    pub(crate) fn broadcast(&mut self, body: &str) {
        let urls: Vec<String> = self.queues.keys().cloned().collect();
        for url in urls {
            self.send(&url, body.to_string());
        }
    }

    /// The bodies on a queue, received or not.
    pub(crate) fn bodies(&self, url: &str) -> Vec<String> {
        self.queues
            .get(url)
            .map(|q| q.iter().map(|m| m.body.clone()).collect())
            .unwrap_or_default()
    }

    /// One ReceiveMessage without waiting: up to `max` visible messages, hidden for
    /// `visibility` from now.
    fn take(&mut self, url: &str, max: usize, visibility: Duration) -> Result<Value, SqsError> {
        let queue = self.queues.get_mut(url).ok_or_else(no_queue)?;
        let now = Instant::now();
        let mut out = Vec::new();
        for message in queue.iter_mut().filter(|m| m.visible_at <= now).take(max) {
            let receipt = format!("{}#{}", message.id, random_id("", 24));
            message.receipt = Some(receipt.clone());
            message.visible_at = now + visibility;
            message.receives += 1;
            let sent = message
                .sent
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            out.push(json!({
                "MessageId": message.id,
                "ReceiptHandle": receipt,
                "Body": message.body,
                "Attributes": {
                    "ApproximateReceiveCount": message.receives.to_string(),
                    "SentTimestamp": sent.to_string(),
                },
            }));
        }
        Ok(if out.is_empty() {
            json!({})
        } else {
            json!({ "Messages": out })
        })
    }

    pub(crate) fn delete(&mut self, body: &Value) -> Result<Value, SqsError> {
        let url = queue_url(body)?;
        let receipt = body["ReceiptHandle"]
            .as_str()
            .ok_or_else(|| error("MissingParameter", "ReceiptHandle is required"))?;
        let queue = self.queues.get_mut(url).ok_or_else(no_queue)?;
        let before = queue.len();
        queue.retain(|m| m.receipt.as_deref() != Some(receipt));
        if queue.len() == before {
            return Err(error(
                "ReceiptHandleIsInvalid",
                format!("The input receipt handle \"{receipt}\" is not a valid receipt handle."),
            ));
        }
        Ok(json!({}))
    }
}

fn no_queue() -> SqsError {
    error("QueueDoesNotExist", "The specified queue does not exist.")
}

fn queue_url(body: &Value) -> Result<&str, SqsError> {
    body["QueueUrl"]
        .as_str()
        .ok_or_else(|| error("MissingParameter", "QueueUrl is required"))
}

fn bounded(body: &Value, name: &str, default: i64, range: (i64, i64)) -> Result<i64, SqsError> {
    let value = match &body[name] {
        Value::Null => return Ok(default),
        value => value.as_i64(),
    };
    value
        .filter(|v| (range.0..=range.1).contains(v))
        .ok_or_else(|| {
            error(
                "InvalidParameterValue",
                format!(
                    "Value for parameter {name} is invalid. Reason: must be between {} and {}.",
                    range.0, range.1
                ),
            )
        })
}

/// ReceiveMessage: waits up to `WaitTimeSeconds` for a visible message.
pub(crate) async fn receive(
    queues: &std::sync::Mutex<Queues>,
    body: &Value,
) -> Result<Value, SqsError> {
    let url = queue_url(body)?;
    let max = bounded(body, "MaxNumberOfMessages", 1, (1, 10))? as usize;
    let wait = bounded(body, "WaitTimeSeconds", 0, (0, 20))?;
    let visibility = bounded(body, "VisibilityTimeout", 30, (0, 43_200))?;
    let visibility = Duration::from_secs(visibility as u64);
    let deadline = Instant::now() + Duration::from_secs(wait as u64);
    loop {
        let found = queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(url, max, visibility)?;
        if found.get("Messages").is_some() || Instant::now() >= deadline {
            return Ok(found);
        }
        tokio::time::sleep(LONG_POLL_STEP).await;
    }
}

/// An EventBridge event from `aws.ec2` about `instance`, as a queue receives it.
pub(crate) fn ec2_event(detail_type: &str, instance: &str, now: SystemTime) -> String {
    let mut detail = json!({ "instance-id": instance });
    if detail_type.contains("Interruption") {
        detail["instance-action"] = json!("terminate");
    }
    json!({
        "version": "0",
        "id": uuid(),
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": ACCOUNT,
        "time": humantime::format_rfc3339_seconds(now).to_string(),
        "region": REGION,
        "resources": [format!("arn:aws:ec2:{REGION}a:instance/{instance}")],
        "detail": detail,
    })
    .to_string()
}

pub(crate) const INTERRUPTION_WARNING: &str = "EC2 Spot Instance Interruption Warning";
pub(crate) const REBALANCE_RECOMMENDATION: &str = "EC2 Instance Rebalance Recommendation";

fn uuid() -> String {
    let hex = random_id("", 32).to_lowercase();
    let hex: String = hex
        .bytes()
        .map(|b| char::from_digit(u32::from(b) % 16, 16).unwrap_or('0'))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_message_is_hidden_for_its_visibility_timeout_and_deleted_by_its_receipt() {
        let mut queues = Queues::default();
        let url = queues.create("http://127.0.0.1:1", "q");
        assert!(queues.send(&url, "one".into()));
        let got = queues.take(&url, 10, Duration::from_secs(30)).unwrap();
        let message = &got["Messages"][0];
        assert_eq!(message["Body"], "one");
        assert_eq!(message["Attributes"]["ApproximateReceiveCount"], "1");
        let hidden = queues.take(&url, 10, Duration::from_secs(30)).unwrap();
        assert!(hidden.get("Messages").is_none(), "hidden while in flight");
        let receipt = message["ReceiptHandle"].clone();
        let delete = json!({ "QueueUrl": url, "ReceiptHandle": receipt });
        queues.delete(&delete).unwrap();
        assert!(queues.bodies(&url).is_empty());
        let again = queues.delete(&delete).err().unwrap();
        assert_eq!(again.kind, "ReceiptHandleIsInvalid");
    }

    #[test]
    fn a_message_left_with_no_visibility_timeout_is_received_again() {
        let mut queues = Queues::default();
        let url = queues.create("http://127.0.0.1:1", "q");
        queues.send(&url, "left".into());
        queues.take(&url, 1, Duration::ZERO).unwrap();
        let again = queues.take(&url, 1, Duration::ZERO).unwrap();
        assert_eq!(
            again["Messages"][0]["Attributes"]["ApproximateReceiveCount"],
            "2"
        );
        let missing = queues.take("http://127.0.0.1:1/123456789012/nope", 1, Duration::ZERO);
        assert_eq!(missing.err().unwrap().kind, "QueueDoesNotExist");
    }

    #[test]
    fn an_interruption_warning_names_its_instance_and_the_terminate_action() {
        let body = ec2_event(INTERRUPTION_WARNING, "i-0abc", SystemTime::UNIX_EPOCH);
        let event: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(event["source"], "aws.ec2");
        assert_eq!(event["detail"]["instance-id"], "i-0abc");
        assert_eq!(event["detail"]["instance-action"], "terminate");
        assert_eq!(event["time"], "1970-01-01T00:00:00Z");
        let rebalance = ec2_event(REBALANCE_RECOMMENDATION, "i-0abc", SystemTime::UNIX_EPOCH);
        assert!(!rebalance.contains("instance-action"));
    }
}
