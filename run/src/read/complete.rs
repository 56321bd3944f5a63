//! Whether a succeeded batch is still complete: the one check `run --batch` (reopen or
//! nothing to do), `tick` (rebuild), `batches` and `backfill --reprocess stale` share.

use crate::ledger::{Layout, RunRecord, output_problem};
use crate::store::{AnyStore, StoreError};
use respawn_core::contract::fingerprint::fingerprints;
use respawn_core::workflow::Workflow;

/// What a succeeded run's batch is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completeness {
    Complete,
    /// A published output is gone or damaged (`problem` says how): the next tick rebuilds
    /// the batch. Checked first: deleting an output is enough to have it rebuilt.
    Incomplete {
        stage: String,
        problem: String,
    },
    /// The definition of `stage` changed since the run (`backfill --reprocess stale`).
    Stale {
        stage: String,
    },
}

impl Completeness {
    /// Why the batch is not complete, in words.
    pub fn reason(&self) -> Option<String> {
        match self {
            Completeness::Complete => None,
            Completeness::Incomplete { stage, problem } => Some(format!(
                "the output of stage `{stage}` is not complete: {problem}"
            )),
            Completeness::Stale { stage } => {
                Some(format!("the definition of stage `{stage}` changed since"))
            }
        }
    }
}

/// Checks every final output of `record`'s batch against its `_SUCCESS` manifest, then
/// every stage's fingerprint against the one the run recorded.
pub async fn completeness(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    record: &RunRecord,
) -> Result<Completeness, StoreError> {
    for stage in workflow.stages.iter().filter(|s| s.is_final) {
        if let Some(problem) = output_problem(store, layout, &stage.name, &record.batch).await? {
            return Ok(Completeness::Incomplete {
                stage: stage.name.clone(),
                problem,
            });
        }
    }
    let prints = fingerprints(workflow);
    let changed = workflow.stages.iter().zip(&prints).find(|(stage, print)| {
        record
            .stages
            .get(&stage.name)
            .and_then(|s| s.fingerprint.as_ref())
            != Some(*print)
    });
    Ok(match changed {
        Some((stage, _)) => Completeness::Stale {
            stage: stage.name.clone(),
        },
        None => Completeness::Complete,
    })
}
