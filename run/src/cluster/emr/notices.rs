//! EC2's warnings before it reclaims spot instances, read from the SQS queue that an
//! EventBridge rule on `aws.ec2` fills (`cluster.emr.notice_queue`, made by
//! `infra/respawn-emr.yaml`), and turned into notices for the cluster whose instances they
//! name.
//!
//! One listener per cluster long-polls the queue. A message is an EventBridge event; an
//! "EC2 Spot Instance Interruption Warning" or an "EC2 Instance Rebalance Recommendation"
//! about one of the cluster's instances (EC2 ids from `ListInstances`, listed again when
//! an unknown id comes, at most every few seconds) is deleted and told to the driver as
//! [`ClusterNews::Notice`] with the instances of the batch that brought it: once per kind
//! per cluster when they take the cluster (its primary node, or all its core nodes), each
//! time when they are some of its nodes (spot task nodes, say), which it outlives. Anything else is left on the queue for whoever it is for: others' instances,
//! other events, and bodies that are not such events (named once in the log, never a
//! crash). A queue that cannot be read is named once and tried again with backoff: the run
//! goes on as without notices.

use super::EmrClusters;
use crate::cluster::{ClusterNews, Notify};
use aws_sdk_sqs::error::DisplayErrorContext;
use respawn_core::machine::NoticeKind;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const INTERRUPTION: &str = "EC2 Spot Instance Interruption Warning";
const REBALANCE: &str = "EC2 Instance Rebalance Recommendation";
/// SQS's longest long poll.
const WAIT_SECONDS: i32 = 20;
/// How long a message this listener leaves stays hidden from it (and from others): short,
/// so that the run it is for sees it soon.
const LEAVE_HIDDEN_SECONDS: i32 = 2;
/// Instances are listed again for an unknown id at most this often.
const RELIST_EVERY: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Short polls after a warning, for the rest of its burst.
const BURST_POLLS: usize = 5;

/// A warning about one of the cluster's instances: kind, instance, when EC2 sent it, and
/// the receipt handle to delete it with.
type Ours = (NoticeKind, String, Option<SystemTime>, String);

/// The queue of `cluster.emr.notice_queue`, and how long EC2 warns before a loss.
pub struct NoticeQueue {
    pub(super) client: aws_sdk_sqs::Client,
    pub(super) url: String,
    /// `cluster.notice` (EC2's two minutes unless set): the lead of a fresh warning.
    pub(super) lead: Duration,
}

impl NoticeQueue {
    /// A client with the standard chain (and `AWS_ENDPOINT_URL_SQS`, as the SDK reads it).
    pub async fn new(region: Option<&str>, url: &str, lead: Duration) -> NoticeQueue {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region.to_string()));
        }
        let config = loader.load().await;
        NoticeQueue {
            client: aws_sdk_sqs::Client::new(&config),
            url: url.to_string(),
            lead,
        }
    }
}

/// What one message says.
#[derive(Debug, PartialEq)]
pub(super) enum Read {
    Warning {
        kind: NoticeKind,
        instance: String,
        /// When EC2 sent it.
        time: Option<SystemTime>,
    },
    /// An event, but not one of the two warnings.
    Other,
}

/// Reads an EventBridge event; `Err` says why the body is not one.
pub(super) fn read(body: &str) -> Result<Read, String> {
    let event: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let detail_type = event["detail-type"]
        .as_str()
        .ok_or("no `detail-type`: not an EventBridge event")?;
    let kind = match (event["source"].as_str(), detail_type) {
        (Some("aws.ec2"), INTERRUPTION) => NoticeKind::Interruption,
        (Some("aws.ec2"), REBALANCE) => NoticeKind::Rebalance,
        _ => return Ok(Read::Other),
    };
    let instance = event["detail"]["instance-id"]
        .as_str()
        .filter(|id| id.starts_with("i-"))
        .ok_or("an EC2 warning without a `detail.instance-id`")?;
    let time = event["time"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok());
    Ok(Read::Warning {
        kind,
        instance: instance.to_string(),
        time,
    })
}

/// One cluster's listener: until aborted.
struct Listener {
    owner: Arc<EmrClusters>,
    cluster: String,
    generation: u32,
    notify: Notify,
    /// EC2 id to the type of its fleet.
    instances: BTreeMap<String, String>,
    listed: Option<Instant>,
    told: BTreeSet<NoticeKind>,
    named: HashSet<String>,
    failing: bool,
}

/// Reads the notice queue for cluster `cluster` (generation `generation`) until aborted.
pub(super) async fn listen(
    owner: Arc<EmrClusters>,
    cluster: String,
    generation: u32,
    notify: Notify,
) {
    let mut listener = Listener {
        owner,
        cluster,
        generation,
        notify,
        instances: BTreeMap::new(),
        listed: None,
        told: BTreeSet::new(),
        named: HashSet::new(),
        failing: false,
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        match listener.once().await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(error) => {
                if !listener.failing {
                    tracing::warn!(
                        "cannot read the notice queue {}: {error}; cluster {} runs on without \
                         notices until it can",
                        listener.queue().url,
                        listener.cluster
                    );
                }
                listener.failing = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

impl Listener {
    fn queue(&self) -> &NoticeQueue {
        self.owner
            .notices
            .as_ref()
            .expect("a listener runs only with a notice queue")
    }

    /// One long poll and what came of it. When it brings a warning for this cluster, the
    /// rest of the burst (EC2 warns each instance apart) is gathered with short polls.
    async fn once(&mut self) -> Result<(), String> {
        let mut ours = self.receive(WAIT_SECONDS).await?;
        if self.failing {
            tracing::info!("the notice queue {} can be read again", self.queue().url);
            self.failing = false;
        }
        for _ in 0..BURST_POLLS {
            if ours.is_empty() {
                break;
            }
            let more = self.receive(0).await.unwrap_or_default();
            if more.is_empty() {
                break;
            }
            ours.extend(more);
        }
        self.handle(ours).await;
        Ok(())
    }

    /// One ReceiveMessage: the warnings about this cluster's instances in it.
    async fn receive(&mut self, wait: i32) -> Result<Vec<Ours>, String> {
        let queue = self.queue();
        let received = queue
            .client
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .visibility_timeout(LEAVE_HIDDEN_SECONDS)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        let mut ours = Vec::new();
        for message in received.messages() {
            let id = message.message_id().unwrap_or_default().to_string();
            match read(message.body().unwrap_or_default()) {
                Ok(Read::Warning {
                    kind,
                    instance,
                    time,
                }) => {
                    if self.is_ours(&instance).await {
                        let receipt = message.receipt_handle().unwrap_or_default().to_string();
                        ours.push((kind, instance, time, receipt));
                    }
                }
                Ok(Read::Other) => {}
                Err(why) => {
                    if self.named.insert(id.clone()) {
                        tracing::warn!(
                            "message {id} on the notice queue {} is left there: {why}",
                            self.queue().url
                        );
                    }
                }
            }
        }
        Ok(ours)
    }

    /// Whether `instance` is one of the cluster's, listing them again when it is unknown.
    async fn is_ours(&mut self, instance: &str) -> bool {
        if self.instances.contains_key(instance) {
            return true;
        }
        if self.listed.is_some_and(|at| at.elapsed() < RELIST_EVERY) {
            return false;
        }
        self.listed = Some(Instant::now());
        match self.owner.ec2_ids(&self.cluster).await {
            Ok(ids) => self.instances = ids,
            Err(error) => tracing::warn!("{error}"),
        }
        self.instances.contains_key(instance)
    }

    /// Whether losing `warned` loses the cluster: they include its primary node, or every
    /// core node it has.
    fn takes_the_cluster(&self, warned: &BTreeSet<String>) -> bool {
        let of = |kind: &'static str| {
            self.instances
                .iter()
                .filter(move |(_, k)| k.as_str() == kind)
                .map(|(id, _)| id)
        };
        of("MASTER").any(|id| warned.contains(id))
            || (of("CORE").next().is_some() && of("CORE").all(|id| warned.contains(id)))
    }

    /// Deletes the cluster's warnings and tells each kind once (an interruption rather than
    /// a rebalance when a batch brings both).
    async fn handle(&mut self, ours: Vec<Ours>) {
        for (_, _, _, receipt) in &ours {
            let queue = self.queue();
            if let Err(error) = queue
                .client
                .delete_message()
                .queue_url(&queue.url)
                .receipt_handle(receipt)
                .send()
                .await
            {
                tracing::warn!(
                    "could not delete a handled notice from {}: {}",
                    queue.url,
                    DisplayErrorContext(error)
                );
            }
        }
        let kind = if ours.iter().any(|o| o.0 == NoticeKind::Interruption) {
            NoticeKind::Interruption
        } else if !ours.is_empty() {
            NoticeKind::Rebalance
        } else {
            return;
        };
        let of_kind = ours.iter().filter(|o| o.0 == kind);
        let sent = of_kind.clone().filter_map(|o| o.2).min();
        let instances: BTreeSet<String> = of_kind.map(|o| o.1.clone()).collect();
        let whole = self.takes_the_cluster(&instances);
        // The cluster's own warnings are told once per kind; warnings about some of its
        // nodes each time they come.
        if whole && (self.told.contains(&NoticeKind::Interruption) || !self.told.insert(kind)) {
            return;
        }
        let age = sent
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        (self.notify)(ClusterNews::Notice {
            generation: self.generation,
            kind,
            lead: self.queue().lead.saturating_sub(age),
            instances: instances.into_iter().collect(),
            whole,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: &str, detail_type: &str, detail: &str) -> String {
        format!(
            r#"{{"version":"0","id":"x","detail-type":"{detail_type}","source":"{source}","account":"123456789012","time":"2026-12-06T12:00:00Z","region":"us-east-1","resources":[],"detail":{detail}}}"#
        )
    }

    #[test]
    fn an_interruption_warning_and_a_rebalance_recommendation_name_their_instance() {
        let warning = event(
            "aws.ec2",
            INTERRUPTION,
            r#"{"instance-id":"i-0abc","instance-action":"terminate"}"#,
        );
        let Ok(Read::Warning {
            kind,
            instance,
            time,
        }) = read(&warning)
        else {
            panic!("a warning");
        };
        assert_eq!(
            (kind, instance.as_str()),
            (NoticeKind::Interruption, "i-0abc")
        );
        let expected = humantime::parse_rfc3339("2026-12-06T12:00:00Z").unwrap();
        assert_eq!(time, Some(expected));
        let rebalance = event("aws.ec2", REBALANCE, r#"{"instance-id":"i-0abc"}"#);
        assert!(matches!(
            read(&rebalance),
            Ok(Read::Warning {
                kind: NoticeKind::Rebalance,
                ..
            })
        ));
    }

    #[test]
    fn other_events_are_others_and_broken_bodies_say_why() {
        let state_change = event(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            r#"{"instance-id":"i-0abc","state":"running"}"#,
        );
        assert_eq!(read(&state_change), Ok(Read::Other));
        let s3 = event("aws.s3", INTERRUPTION, "{}");
        assert_eq!(read(&s3), Ok(Read::Other));
        assert!(read("hello").unwrap_err().starts_with("not JSON"));
        assert!(read("{}").unwrap_err().contains("detail-type"));
        let no_instance = event(
            "aws.ec2",
            INTERRUPTION,
            r#"{"instance-action":"terminate"}"#,
        );
        assert!(read(&no_instance).unwrap_err().contains("instance-id"));
    }
}
