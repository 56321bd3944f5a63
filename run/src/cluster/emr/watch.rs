//! Watching a cluster: polling `DescribeCluster` (with jitter) until it is up, then
//! following it and the steps given to it, and telling loss from failure by the
//! cluster's state-change reason.

use super::{EmrClusters, EmrError, EmrErrorKind, ProvisionError};
use crate::cluster::{ClusterEnd, ClusterNews, Notify, StepEnd};
use aws_sdk_emr::types::{ClusterState, ClusterStateChangeReasonCode, StepState};
use respawn_core::workflow::StageId;
use std::collections::BTreeMap;
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

/// The state of a cluster, as a watcher reads it.
struct Seen {
    state: ClusterState,
    code: Option<ClusterStateChangeReasonCode>,
    message: String,
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
        Ok(Seen {
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

    /// Polls until the cluster is up (`RUNNING` or `WAITING`) or has ended.
    pub(super) async fn wait_until_up(&self, id: &str) -> Result<(), ProvisionError> {
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
                ClusterState::Running | ClusterState::Waiting => return Ok(()),
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

    fn jittered(&self) -> Duration {
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
    loop {
        tokio::time::sleep(owner.jittered()).await;
        let seen = match owner.describe(&id).await {
            Ok(seen) => seen,
            Err(error) => {
                tracing::warn!("{error} (will poll again)");
                continue;
            }
        };
        if matches!(
            seen.state,
            ClusterState::Terminating
                | ClusterState::Terminated
                | ClusterState::TerminatedWithErrors
        ) {
            notify(ClusterNews::Ended {
                generation,
                end: classify(seen.code.as_ref()),
                cause: end_cause(&id, &seen),
            });
            return;
        }
        let steps: Vec<(String, (StageId, u32))> = watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (step, (stage, attempt)) in steps {
            let described = match owner
                .client
                .describe_step()
                .cluster_id(&id)
                .step_id(&step)
                .send()
                .await
            {
                Ok(described) => described,
                Err(error) => {
                    tracing::warn!(
                        "{} (will poll again)",
                        EmrError::from_sdk("DescribeStep", error)
                    );
                    continue;
                }
            };
            let status = described.step().and_then(|s| s.status());
            let end = match status.and_then(|s| s.state()) {
                Some(StepState::Completed) => StepEnd::Success,
                Some(StepState::Failed) => {
                    let details = status.and_then(|s| s.failure_details());
                    let mut detail = format!("EMR step {step} on {id} FAILED");
                    if let Some(d) = details {
                        for part in [d.reason(), d.message()].into_iter().flatten() {
                            detail.push_str(&format!("\n{part}"));
                        }
                        if let Some(log) = d.log_file() {
                            detail.push_str(&format!("\nstep log: {log}"));
                        }
                    }
                    StepEnd::Failed {
                        code: 1,
                        detail: Some(detail),
                    }
                }
                Some(StepState::Cancelled | StepState::Interrupted) => StepEnd::Failed {
                    code: 1,
                    detail: Some(format!(
                        "EMR step {step} on {id} was {}",
                        status
                            .and_then(|s| s.state())
                            .map(|s| s.as_str())
                            .unwrap_or("cancelled")
                    )),
                },
                _ => continue,
            };
            watched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&step);
            notify(ClusterNews::Exited {
                generation,
                stage,
                attempt,
                end,
            });
        }
    }
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
