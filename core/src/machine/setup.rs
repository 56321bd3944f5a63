//! What the run loop's machine is told about a workflow and its plan.

use crate::plan::{Plan, needs_of};
use crate::workflow::{FallbackSpec, Market, StageCheckpoint, StageId, Workflow};

/// What the machine needs to know about a workflow and its plan.
#[derive(Clone, Debug)]
pub struct Setup {
    pub needs: Vec<Vec<StageId>>,
    /// Work-tables the plan persists (finals included).
    pub checkpoint: Vec<bool>,
    pub is_final: Vec<bool>,
    /// Estimated seconds of work per stage (for the deadline check).
    pub estimate: Vec<f64>,
    pub slots: usize,
    /// Failures of a stage retried before the run fails.
    pub retries: u32,
    pub market: Market,
    pub fallback: FallbackSpec,
    pub mtti: f64,
    pub provision_time: f64,
    /// A typical checkpoint write and restore, in seconds.
    pub checkpoint_cost: f64,
    /// Seconds to upload each stage's work-table (what a notice's window is spent on).
    pub write_time: Vec<f64>,
    /// Work-tables a notice may upload although the plan does not checkpoint them: those
    /// not `checkpoint: never` (on EMR an ephemeral one is copied out of HDFS by a step).
    pub may_save: Vec<bool>,
    /// `market: auto`: the numbers the market is chosen again with after an interruption.
    pub auto_market: Option<crate::plan::market::AutoMarket>,
    /// Write the reasons of market decisions in words. The simulator, which reads none of
    /// them and meets millions of losses, turns it off.
    pub explain: bool,
}

impl Setup {
    /// The machine's view of a workflow and its plan.
    pub fn new(workflow: &Workflow, plan: &Plan) -> Setup {
        Setup {
            needs: needs_of(workflow),
            checkpoint: plan.checkpointed(),
            is_final: workflow.stages.iter().map(|s| s.is_final).collect(),
            estimate: workflow
                .stages
                .iter()
                .map(|s| s.estimate.as_secs_f64())
                .collect(),
            slots: workflow.cluster.slots as usize,
            retries: workflow.retries,
            market: plan.market,
            fallback: workflow.cluster.fallback.clone(),
            mtti: plan.mtti,
            provision_time: plan.provision_time,
            checkpoint_cost: plan.typical_checkpoint_cost(),
            write_time: plan.stages.iter().map(|s| s.checkpoint_cost).collect(),
            may_save: workflow
                .stages
                .iter()
                .map(|s| s.checkpoint != StageCheckpoint::Never)
                .collect(),
            auto_market: plan.auto_market.clone(),
            explain: true,
        }
    }
}
