//! Watching a cluster: polling `DescribeCluster` (with jitter) until it is up, then
//! following it and the steps given to it, and telling loss from failure: by the
//! cluster's state-change reason when it ends, and, when a step fails, by whether
//! instances of the cluster ended while it ran (then its attempt was interrupted).

use super::{EmrClusters, EmrError, EmrErrorKind, ProvisionError};
use crate::cluster::{ClusterEnd, ClusterNews, Notify, StepEnd};
use aws_sdk_emr::types::{ClusterState, ClusterStateChangeReasonCode, StepState, StepStatus};
use respawn_core::workflow::StageId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a cluster's end means for the run.
fn classify(code: Option<&ClusterStateChangeReasonCode>) -> ClusterEnd {
    match code {
        Some(ClusterStateChangeReasonCode::UserRequest) => ClusterEnd::Stopped,
        Some(
            ClusterStateChangeReasonCode::ValidationError
            | ClusterStateChangeReasonCode::BootstrapFailure,
        ) => ClusterEnd::Broken,
        _ => ClusterEnd::Lost,
    }
}

/// Where a cluster runs: its availability zone and subnet, when EMR tells them.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    pub zone: Option<String>,
    pub subnet: Option<String>,
}

/// The state of a cluster, as a watcher reads it.
struct Seen {
    state: ClusterState,
    code: Option<ClusterStateChangeReasonCode>,
    message: String,
    /// The subnet it runs in, once EMR has chosen one.
    subnet: Option<String>,
    /// That subnet's availability zone.
    zone: Option<String>,
}

impl EmrClusters {
    async fn describe(&self, id: &str) -> Result<Seen, EmrError> {
        let output = self
            .client
            .describe_cluster()
            .cluster_id(id)
            .send()
            .await
            .map_err(|e| EmrError::from_sdk("DescribeCluster", e))?;
        let status = output.cluster().and_then(|c| c.status());
        let reason = status.and_then(|s| s.state_change_reason());
        let placed = output.cluster().and_then(|c| c.ec2_instance_attributes());
        let subnet = placed.and_then(|p| p.ec2_subnet_id()).map(String::from);
        let zone = placed
            .and_then(|p| p.ec2_availability_zone())
            .map(String::from);
        if let (Some(subnet), Some(zone)) = (&subnet, &zone) {
            self.zones
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .seen(subnet, zone);
        }
        Ok(Seen {
            subnet,
            zone,
            state: status
                .and_then(|s| s.state())
                .cloned()
                .unwrap_or(ClusterState::Starting),
            code: reason.and_then(|r| r.code()).cloned(),
            message: reason
                .and_then(|r| r.message())
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// Polls until the cluster is up (`RUNNING` or `WAITING`) or has ended; where it is
    /// up, when EMR says.
    pub(super) async fn wait_until_up(&self, id: &str) -> Result<Placement, ProvisionError> {
        loop {
            let seen = match self.describe(id).await {
                Ok(seen) => seen,
                Err(e) if e.kind == EmrErrorKind::Refused => {
                    return Err(ProvisionError::Broken(e.to_string()));
                }
                Err(e) => {
                    tracing::warn!("{e} (will poll again)");
                    tokio::time::sleep(self.jittered()).await;
                    continue;
                }
            };
            match seen.state {
                ClusterState::Running | ClusterState::Waiting => {
                    return Ok(Placement {
                        zone: seen.zone,
                        subnet: seen.subnet,
                    });
                }
                ClusterState::Terminating
                | ClusterState::Terminated
                | ClusterState::TerminatedWithErrors => {
                    let cause = end_cause(id, &seen);
                    return Err(match classify(seen.code.as_ref()) {
                        ClusterEnd::Lost => ProvisionError::Lost {
                            cause,
                            released: None,
                        },
                        ClusterEnd::Stopped | ClusterEnd::Broken => ProvisionError::Broken(cause),
                    });
                }
                _ => tokio::time::sleep(self.jittered()).await,
            }
        }
    }

    /// Capacity of cluster `id` was reclaimed: its subnet's zone is avoided for a while.
    pub(super) async fn reclaimed_in(&self, id: &str) {
        match self.describe(id).await {
            Ok(Seen {
                subnet: Some(subnet),
                ..
            }) => self.reclaimed_subnet(&subnet),
            Ok(_) => {}
            Err(error) => tracing::warn!("{error}"),
        }
    }

    fn reclaimed_subnet(&self, subnet: &str) {
        self.zones
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reclaimed(subnet, std::time::Instant::now());
    }

    /// The instances of cluster `id` that ended since `since` (seconds since the epoch),
    /// when any did, and how many still run. EMR may list an instance's end a little
    /// after the step it took failed, so it is asked twice.
    async fn reclaimed_during(&self, id: &str, since: f64) -> Option<(BTreeSet<String>, u32)> {
        for _ in 0..2 {
            match self.reclaimed_since(id, since).await {
                Ok((lost, running)) if !lost.is_empty() => return Some((lost, running)),
                Ok(_) => tokio::time::sleep(self.jittered()).await,
                Err(error) => {
                    tracing::warn!("{error}");
                    return None;
                }
            }
        }
        None
    }

    pub(super) fn jittered(&self) -> Duration {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        self.poll
            .mul_f64(0.8 + 0.4 * f64::from(nanos % 1000) / 1000.0)
    }
}

fn end_cause(id: &str, seen: &Seen) -> String {
    let code = seen
        .code
        .as_ref()
        .map(|c| c.as_str().to_string())
        .unwrap_or_else(|| "no reason given".into());
    if seen.message.is_empty() {
        format!("EMR cluster {id} ended ({}, {code})", seen.state.as_str())
    } else {
        format!(
            "EMR cluster {id} ended ({}, {code}: {})",
            seen.state.as_str(),
            seen.message
        )
    }
}
/// Polls one cluster and the steps given to it until the cluster ends.
pub(super) async fn watch(
    owner: Arc<EmrClusters>,
    id: String,
    generation: u32,
    watched: Arc<Mutex<BTreeMap<String, (StageId, u32)>>>,
    notify: Notify,
) {
    let mut watcher = Watcher {
        owner,
        id,
        generation,
        watched,
        notify,
        told: BTreeSet::new(),
    };
    loop {
        tokio::time::sleep(watcher.owner.jittered()).await;
        let seen = match watcher.owner.describe(&watcher.id).await {
            Ok(seen) => seen,
            Err(error) => {
                tracing::warn!("{error} (will poll again)");
                continue;
            }
        };
        if watcher.ended(&seen) {
            return;
        }
        for (step, (stage, attempt)) in watcher.steps() {
            if let Some(end) = watcher.step_end(&seen, &step, stage, attempt).await {
                watcher.exited(&step, stage, attempt, end);
            }
        }
    }
}

/// What a cluster's watcher follows, and the reclaimed instances it already told of.
struct Watcher {
    owner: Arc<EmrClusters>,
    id: String,
    generation: u32,
    watched: Arc<Mutex<BTreeMap<String, (StageId, u32)>>>,
    notify: Notify,
    told: BTreeSet<String>,
}

impl Watcher {
    /// Tells of the cluster's end, when it ended; true then.
    fn ended(&self, seen: &Seen) -> bool {
        if !matches!(
            seen.state,
            ClusterState::Terminating
                | ClusterState::Terminated
                | ClusterState::TerminatedWithErrors
        ) {
            return false;
        }
        let end = classify(seen.code.as_ref());
        if let (ClusterEnd::Lost, Some(subnet)) = (end, &seen.subnet) {
            self.owner.reclaimed_subnet(subnet);
        }
        (self.notify)(ClusterNews::Ended {
            generation: self.generation,
            end,
            cause: end_cause(&self.id, seen),
        });
        true
    }

    /// The steps given to the cluster that have not ended yet.
    fn steps(&self) -> Vec<(String, (StageId, u32))> {
        let watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        watched.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// How `step` ended, or `None` while it runs (or cannot be described now).
    async fn step_end(
        &mut self,
        seen: &Seen,
        step: &str,
        stage: StageId,
        attempt: u32,
    ) -> Option<StepEnd> {
        let described = (self.owner.client.describe_step())
            .cluster_id(&self.id)
            .step_id(step)
            .send()
            .await
            .map_err(|error| {
                let error = EmrError::from_sdk("DescribeStep", error);
                tracing::warn!("{error} (will poll again)");
            })
            .ok()?;
        let status = described.step().and_then(|s| s.status());
        let id = self.id.clone();
        match status.and_then(|s| s.state()) {
            Some(StepState::Completed) => Some(StepEnd::Success),
            Some(StepState::Failed) => {
                let started = (status.and_then(|s| s.timeline()))
                    .and_then(|t| t.start_date_time())
                    .map_or(0.0, |t| t.as_secs_f64());
                self.tell_reclaimed(seen, started, stage, attempt).await;
                Some(StepEnd::Failed {
                    code: 1,
                    detail: Some(failure_detail(step, &id, status)),
                })
            }
            Some(state @ (StepState::Cancelled | StepState::Interrupted)) => {
                Some(StepEnd::Failed {
                    code: 1,
                    detail: Some(format!("EMR step {step} on {id} was {}", state.as_str())),
                })
            }
            _ => None,
        }
    }

    /// When instances of the cluster ended while a failed step ran (since `started`),
    /// tells that the attempt lost its nodes: its failure is an interruption.
    async fn tell_reclaimed(&mut self, seen: &Seen, started: f64, stage: StageId, attempt: u32) {
        let Some((lost, remaining)) = self.owner.reclaimed_during(&self.id, started).await else {
            return;
        };
        if let Some(subnet) = &seen.subnet {
            self.owner.reclaimed_subnet(subnet);
        }
        let instances = lost
            .into_iter()
            .filter(|i| self.told.insert(i.clone()))
            .collect();
        (self.notify)(ClusterNews::NodesLost {
            generation: self.generation,
            stage,
            attempt,
            instances,
            remaining,
        });
    }

    /// The step ended: it is no longer watched, and the run is told.
    fn exited(&self, step: &str, stage: StageId, attempt: u32, end: StepEnd) {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        watched.remove(step);
        drop(watched);
        (self.notify)(ClusterNews::Exited {
            generation: self.generation,
            stage,
            attempt,
            end,
        });
    }
}

/// What EMR says of a failed step: its reason, message and log.
fn failure_detail(step: &str, id: &str, status: Option<&StepStatus>) -> String {
    let mut detail = format!("EMR step {step} on {id} FAILED");
    if let Some(d) = status.and_then(|s| s.failure_details()) {
        for part in [d.reason(), d.message()].into_iter().flatten() {
            detail.push_str(&format!("\n{part}"));
        }
        if let Some(log) = d.log_file() {
            detail.push_str(&format!("\nstep log: {log}"));
        }
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_request_is_a_stop_a_bootstrap_failure_is_broken_the_rest_is_a_loss() {
        assert_eq!(
            classify(Some(&ClusterStateChangeReasonCode::UserRequest)),
            ClusterEnd::Stopped
        );
        assert_eq!(
            classify(Some(&ClusterStateChangeReasonCode::BootstrapFailure)),
            ClusterEnd::Broken
        );
        for code in [
            ClusterStateChangeReasonCode::InstanceFailure,
            ClusterStateChangeReasonCode::InstanceFleetTimeout,
            ClusterStateChangeReasonCode::InternalError,
            ClusterStateChangeReasonCode::AllStepsCompleted,
        ] {
            assert_eq!(classify(Some(&code)), ClusterEnd::Lost, "{code:?}");
        }
        assert_eq!(classify(None), ClusterEnd::Lost);
    }
}
