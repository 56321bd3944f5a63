//! Saving an ephemeral work-table from HDFS to the store, as a notice's window asks: a
//! step that runs `s3-dist-cp --src=hdfs://... --dest=s3://...` through
//! command-runner.jar, followed to its end. The orchestrator then commits what it wrote as
//! it commits a checkpoint a step wrote to the store itself.

use super::EmrError;
use super::cluster::EmrClusters;
use super::steps::step_name;
use aws_sdk_emr::types::StepState;
use std::sync::Arc;

/// DescribeStep errors in a row after which a save is given up (the cluster is gone).
const GIVE_UP_AFTER: u32 = 10;

/// What a persist task needs to save a table from one cluster.
#[derive(Clone)]
pub struct Saver {
    pub(super) owner: Arc<EmrClusters>,
    pub(super) cluster: String,
}

impl Saver {
    /// Copies attempt `attempt` of `stage` from `from` (its HDFS folder) to `to` (its place
    /// in the store) with the step `respawn:<run>:<stage>.save:<attempt>`, and waits for
    /// its end. An error says how the step ended.
    pub async fn save(
        &self,
        stage: &str,
        attempt: u32,
        from: &str,
        to: &str,
    ) -> Result<(), String> {
        let owner = &self.owner;
        let name = step_name(&owner.run_id, &format!("{stage}.save"), attempt);
        let line = format!("s3-dist-cp --src={from} --dest={to}");
        let step = owner
            .submit(&self.cluster, &name, &line)
            .await
            .map_err(|e| e.to_string())?;
        let mut errors = 0;
        loop {
            tokio::time::sleep(owner.jittered()).await;
            let described = match owner
                .client
                .describe_step()
                .cluster_id(&self.cluster)
                .step_id(&step)
                .send()
                .await
            {
                Ok(described) => described,
                Err(error) => {
                    errors += 1;
                    let error = EmrError::from_sdk("DescribeStep", error);
                    if errors >= GIVE_UP_AFTER {
                        return Err(error.to_string());
                    }
                    continue;
                }
            };
            errors = 0;
            let status = described.step().and_then(|s| s.status());
            match status.and_then(|s| s.state()) {
                Some(StepState::Completed) => return Ok(()),
                Some(
                    state @ (StepState::Failed | StepState::Cancelled | StepState::Interrupted),
                ) => {
                    let why = status
                        .and_then(|s| s.failure_details())
                        .and_then(|d| d.message())
                        .unwrap_or_default();
                    return Err(format!(
                        "the save step {step} on {} ended {}: {why}",
                        self.cluster,
                        state.as_str()
                    ));
                }
                _ => {}
            }
        }
    }
}
