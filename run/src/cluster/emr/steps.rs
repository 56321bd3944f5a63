//! Steps: a stage attempt is the step `respawn:<run>:<stage>:<attempt>` running
//! `bash -c <line>` through `command-runner.jar`.

use super::client::again;
use super::{EmrClusters, EmrError};
use aws_sdk_emr::types::{ActionOnFailure, HadoopJarStepConfig, StepConfig};

/// A step's name: how an adopting orchestrator recognises the attempt.
pub fn step_name(run_id: &str, stage: &str, attempt: u32) -> String {
    format!("respawn:{run_id}:{stage}:{attempt}")
}

pub(super) fn parse_step_name(name: &str, run_id: &str) -> Option<(String, u32)> {
    let rest = name
        .strip_prefix("respawn:")?
        .strip_prefix(run_id)?
        .strip_prefix(':')?;
    let (stage, attempt) = rest.rsplit_once(':')?;
    Some((stage.to_string(), attempt.parse().ok()?))
}

/// `bash -c LINE`: the rendered `run:` line keeps its shell meaning on the cluster.
pub fn step_args(line: &str) -> Vec<String> {
    vec!["bash".into(), "-c".into(), line.into()]
}

impl EmrClusters {
    /// Adds a step; retried only when refused for throttling (see [`EmrClusters::start`]).
    pub(super) async fn submit(
        &self,
        cluster: &str,
        name: &str,
        line: &str,
    ) -> Result<String, EmrError> {
        again(false, || self.submit_once(cluster, name, line)).await
    }

    async fn submit_once(&self, cluster: &str, name: &str, line: &str) -> Result<String, EmrError> {
        let step = StepConfig::builder()
            .name(name)
            .action_on_failure(ActionOnFailure::Continue)
            .hadoop_jar_step(
                HadoopJarStepConfig::builder()
                    .jar("command-runner.jar")
                    .set_args(Some(step_args(line)))
                    .build(),
            )
            .build();
        let output = self
            .client
            .add_job_flow_steps()
            .job_flow_id(cluster)
            .steps(step)
            .send()
            .await
            .map_err(|e| EmrError::from_sdk("AddJobFlowSteps", e))?;
        output.step_ids().first().cloned().ok_or_else(|| {
            EmrError::incomplete_answer("AddJobFlowSteps", "the answer has no step id")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_round_trip_and_other_runs_are_ignored() {
        let name = step_name("20261121-a1b2", "sessions", 3);
        assert_eq!(name, "respawn:20261121-a1b2:sessions:3");
        assert_eq!(
            parse_step_name(&name, "20261121-a1b2"),
            Some(("sessions".to_string(), 3))
        );
        assert_eq!(parse_step_name(&name, "20261121-a1b"), None);
        assert_eq!(parse_step_name("respawn:x:s:notanumber", "x"), None);
    }
}
