//! The plan layer: pure functions of a workflow. Critical path and slack, checkpoint
//! placement with reasons, the recompute set after a loss, and the market decision.
//! `respawn plan`, the simulator and the engine all call this one implementation.

pub mod calendar;
pub mod fallback;
pub mod formulas;
pub mod market;
mod place;
pub mod prices;
#[cfg(test)]
mod properties;
pub mod recompute;
pub mod schedule;

use crate::workflow::units::format_seconds as fmt;
use crate::workflow::{CheckpointPolicy, Market, StageCheckpoint, StageId, Workflow};
use formulas::daly_interval;
pub use place::plan;
pub use schedule::{
    Schedule, bottom_levels, launch_order, list_schedule, remaining_critical, remaining_time,
};
use std::fmt::Write as _;
use std::time::Duration;

/// What `plan` may be told beyond the workflow file.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlanOptions {
    /// Overrides `cluster.mtti`.
    pub mtti: Option<Duration>,
    /// Overrides `checkpoint.policy`.
    pub policy: Option<CheckpointPolicy>,
    /// Overrides `cluster.market` with a fixed market; on on-demand capacity no
    /// interruption is expected. `market: auto` is planned as spot by [`plan`] and chosen
    /// by `sim::chosen_plan`.
    pub market: Option<Market>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StagePlan {
    pub earliest_start: f64,
    pub latest_start: f64,
    pub slack: f64,
    pub critical: bool,
    pub checkpoint: bool,
    pub reason: String,
    /// Time to recompute this work-table from its nearest checkpointed ancestors.
    pub unprotected_work: f64,
    /// Seconds to persist this work-table to the store, and to restore it.
    pub checkpoint_cost: f64,
    pub restore_cost: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub policy: CheckpointPolicy,
    pub market: Market,
    /// Mean time to interruption used, in seconds; infinite on on-demand capacity.
    pub mtti: f64,
    pub provision_time: f64,
    /// Seconds of warning before a spot loss (`cluster.notice`), if the market gives one.
    pub notice: Option<f64>,
    pub critical_path: Vec<StageId>,
    /// Failure-free makespan on the cluster's slots, the writes of final outputs included.
    pub makespan_estimate: f64,
    /// Expected makespan of the critical path alone under the optimal chain placement
    /// (the dynamic program of design.md): the reference `auto` is measured against.
    pub chain_optimum: f64,
    pub stages: Vec<StagePlan>,
    /// `cluster.market: auto`: what was chosen before the run and why (set by
    /// `sim::chosen_plan`, which simulates both markets; `None` from [`plan`] alone).
    pub auto_market: Option<market::AutoMarket>,
}

impl Plan {
    pub fn checkpointed(&self) -> Vec<bool> {
        self.stages.iter().map(|s| s.checkpoint).collect()
    }

    /// The mean checkpoint write, in seconds: what the fallback policy charges per
    /// checkpoint when it inflates the remaining work.
    pub fn typical_checkpoint_cost(&self) -> f64 {
        let total: f64 = self.stages.iter().map(|s| s.checkpoint_cost).sum();
        total / self.stages.len().max(1) as f64
    }
}

/// Seconds to write or read `bytes` at `throughput` bytes per second.
fn transfer_seconds(bytes: u64, throughput: u64) -> f64 {
    bytes as f64 / throughput.max(1) as f64
}

/// The stages' `needs`, as the graph functions take them.
pub fn needs_of(workflow: &Workflow) -> Vec<Vec<StageId>> {
    workflow.stages.iter().map(|s| s.needs.clone()).collect()
}

struct Decision {
    policy: CheckpointPolicy,
    market: Market,
    mtti: f64,
    unprotected: f64,
    critical: bool,
    on_chain: bool,
    chain_choice: bool,
    slack: f64,
    write: f64,
    /// How long after it is produced the work-table is still needed (its consumers' finish).
    exposure: f64,
    every: f64,
    every_critical: f64,
}

/// Whether to checkpoint, and why in words when `explain` (otherwise the words are empty:
/// formatting them is most of the cost of a decision).
fn decide(d: &Decision, stage: &crate::workflow::Stage, explain: bool) -> (bool, String) {
    let words = |text: &dyn Fn() -> String| if explain { text() } else { String::new() };
    if let Some((persist, why)) = fixed(stage) {
        return (persist, words(&|| why.into()));
    }
    match d.policy {
        CheckpointPolicy::All => (
            true,
            words(&|| "policy all: every work-table is persisted".into()),
        ),
        CheckpointPolicy::None => (
            false,
            words(&|| "policy none: only final outputs are persisted".into()),
        ),
        CheckpointPolicy::Interval => {
            let interval = if d.critical {
                d.every_critical
            } else {
                d.every
            };
            let label = || format!("interval {} (rule of thumb)", fmt(interval));
            (
                d.unprotected > interval,
                words(&|| compare(d, interval, &label())),
            )
        }
        CheckpointPolicy::Auto if d.market == Market::OnDemand => (
            false,
            words(&|| {
                "on-demand: no interruption expected, only final outputs are persisted".into()
            }),
        ),
        CheckpointPolicy::Auto if d.on_chain => {
            let interval = daly_interval(d.write, d.mtti);
            let verdict = if d.chain_choice {
                "the chain optimum checkpoints here"
            } else {
                "the chain optimum defers"
            };
            (
                d.chain_choice,
                words(&|| {
                    let mut out = compare(d, interval, &["interval ", &fmt(interval)].concat());
                    out.push_str("; ");
                    out.push_str(verdict);
                    out
                }),
            )
        }
        CheckpointPolicy::Auto => off_chain(d, explain),
    }
}

/// What the stage itself decides, whatever the policy: a final output is always
/// persisted, and `checkpoint: always` or `never` is obeyed.
fn fixed(stage: &crate::workflow::Stage) -> Option<(bool, &'static str)> {
    if stage.is_final {
        Some((true, "final output: always persisted"))
    } else {
        match stage.checkpoint {
            StageCheckpoint::Always => Some((true, "`checkpoint: always`")),
            StageCheckpoint::Never => Some((false, "`checkpoint: never`")),
            _ => None,
        }
    }
}

/// Policy auto off the critical chain: a lost work-table costs its recompute time beyond
/// what slack absorbs (half the slack: interruptions delay the chain too, but less), and
/// only if the cluster is lost before the consumers are done with it.
fn off_chain(d: &Decision, explain: bool) -> (bool, String) {
    let interval = daly_interval(d.write, d.mtti);
    let loss_chance = -(-d.exposure / d.mtti).exp_m1();
    let exposed = (d.unprotected - d.slack / 2.0).max(0.0);
    let expected_loss = loss_chance * exposed;
    let checkpoint = expected_loss > d.write && d.unprotected > interval;
    if !explain {
        return (checkpoint, String::new());
    }
    let sign = if checkpoint { ">" } else { "<=" };
    let mut out = place(d);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "; {} unprotected work, {:.0}% chance of a loss while it is needed: expected loss {} {sign} write {}",
        fmt(d.unprotected),
        loss_chance * 100.0,
        fmt(expected_loss),
        fmt(d.write)
    );
    (checkpoint, out)
}

// The words are written into one string: a plan of 10,000 stages writes 10,000 of them.

/// Where the stage is: on the critical path, or how much slack it has.
fn place(d: &Decision) -> String {
    let mut out = String::with_capacity(128);
    if d.critical {
        out.push_str("critical");
    } else {
        out.push_str("slack ");
        out.push_str(&fmt(d.slack));
    }
    out
}

/// The stage's place and its unprotected work against `threshold`, named `label`.
fn compare(d: &Decision, threshold: f64, label: &str) -> String {
    let sign = if d.unprotected > threshold { ">" } else { "<=" };
    let mut out = place(d);
    for part in [
        "; ",
        &fmt(d.unprotected),
        " unprotected work ",
        sign,
        " ",
        label,
    ] {
        out.push_str(part);
    }
    out
}
