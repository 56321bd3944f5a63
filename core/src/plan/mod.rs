//! The plan layer: pure functions of a workflow. Critical path and slack, checkpoint
//! placement with reasons, the recompute set after a loss, and the market decision.
//! `respawn plan`, the simulator and the engine all call this one implementation.

pub mod calendar;
pub mod fallback;
pub mod formulas;
pub mod market;
pub mod prices;
#[cfg(test)]
mod properties;
pub mod recompute;
pub mod schedule;

use crate::workflow::units::format_seconds as fmt;
use crate::workflow::{CheckpointPolicy, Market, StageCheckpoint, StageId, Workflow, graph};
use formulas::{ChainStage, chain_optimum, daly_interval};
pub use schedule::{
    Schedule, bottom_levels, launch_order, list_schedule, remaining_critical, remaining_time,
};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
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

pub fn plan(workflow: &Workflow, options: &PlanOptions) -> Plan {
    let policy = options.policy.unwrap_or(workflow.checkpoint.policy);
    let market = options
        .market
        .unwrap_or(workflow.cluster.market.planning_market());
    let mtti = match market {
        Market::OnDemand => f64::INFINITY,
        Market::Spot => options.mtti.unwrap_or(workflow.cluster.mtti).as_secs_f64(),
    };
    let provision_time = workflow.cluster.provision_time.as_secs_f64();
    let notice = workflow
        .cluster
        .notice
        .map(|n| n.as_secs_f64())
        .filter(|n| *n > 0.0 && market == Market::Spot);
    // With a notice the replacement is asked for before the loss: the downtime a loss
    // costs is what provisioning takes beyond the warning.
    let downtime = (provision_time - notice.unwrap_or(0.0)).max(0.0);
    let needs = needs_of(workflow);
    let stages = &workflow.stages;
    let n = stages.len();
    let work: Vec<f64> = stages.iter().map(|s| s.estimate.as_secs_f64()).collect();
    let write: Vec<f64> = stages
        .iter()
        .map(|s| transfer_seconds(s.output_size, workflow.checkpoint.write_throughput))
        .collect();
    let restore: Vec<f64> = stages
        .iter()
        .map(|s| transfer_seconds(s.output_size, workflow.checkpoint.read_throughput))
        .collect();
    let forced: Vec<bool> = stages
        .iter()
        .map(|s| s.is_final || s.checkpoint == StageCheckpoint::Always)
        .collect();
    let forbidden: Vec<bool> = stages
        .iter()
        .map(|s| s.checkpoint == StageCheckpoint::Never)
        .collect();

    // Decisions are taken on a schedule where only the writes that must happen count, on
    // the cluster's slots, in the order the engine launches: the slack it shows is slack
    // that exists when slots are scarce.
    let base: Vec<f64> = (0..n)
        .map(|s| work[s] + if forced[s] { write[s] } else { 0.0 })
        .collect();
    let order = schedule::launch_order(&needs, &work);
    let slots = workflow.cluster.slots.max(1) as usize;
    let schedule = schedule::list_schedule(&needs, &base, slots, &order);
    // The chain the dynamic program places checkpoints on: the longest path of data.
    let chain_path = schedule::schedule(&needs, &base).critical_path;

    let mut on_chain = vec![false; n];
    for &s in &chain_path {
        on_chain[s] = true;
    }
    let chain: Vec<ChainStage> = chain_path
        .iter()
        .map(|&s| ChainStage {
            work: work[s],
            checkpoint_cost: write[s],
            restore_cost: restore[s],
            forced: forced[s],
            forbidden: forbidden[s],
        })
        .collect();
    let (chain_expected, placement) = chain_optimum(&chain, downtime, mtti);
    let mut chain_choice = vec![false; n];
    if policy == CheckpointPolicy::Auto {
        for (k, &s) in chain_path.iter().enumerate() {
            chain_choice[s] = placement[k];
        }
    }

    let consumers = graph::consumers(&needs);
    let finish = |s: usize| schedule.earliest_start[s] + base[s];
    let exposure: Vec<f64> = (0..n)
        .map(|s| {
            consumers[s]
                .iter()
                .map(|&c| finish(c) - finish(s))
                .fold(0.0, f64::max)
        })
        .collect();
    let decision = |s: usize, unprotected: f64| Decision {
        policy,
        market,
        mtti,
        unprotected,
        critical: schedule.is_critical(s),
        on_chain: on_chain[s],
        chain_choice: chain_choice[s],
        slack: schedule.slack[s],
        write: write[s],
        exposure: exposure[s],
        every: workflow.checkpoint.every.as_secs_f64(),
        every_critical: workflow.checkpoint.every_critical.as_secs_f64(),
    };
    // `parent(p)` says whether p's work-table is checkpointed and how much unprotected work
    // it carries. A pinned stage is checkpointed. The reason is left empty: the passes below
    // evaluate stages many times, and the words are written once, at the end.
    let evaluate = |s: usize, parent: &dyn Fn(usize) -> (bool, f64), pinned: bool| -> StagePlan {
        let inherited = needs[s]
            .iter()
            .map(|&p| parent(p))
            .filter(|(checkpoint, _)| !checkpoint)
            .map(|(_, unprotected)| unprotected)
            .fold(0.0, f64::max);
        let unprotected = work[s] + inherited;
        let critical = schedule.is_critical(s);
        let slack = schedule.slack[s];
        let checkpoint = pinned || decide(&decision(s, unprotected), &workflow.stages[s], false).0;
        let reason = String::new();
        StagePlan {
            earliest_start: schedule.earliest_start[s],
            latest_start: schedule.latest_start[s],
            slack,
            critical,
            checkpoint,
            reason,
            unprotected_work: unprotected,
            checkpoint_cost: write[s],
            restore_cost: restore[s],
        }
    };
    let mut plans: Vec<StagePlan> = Vec::with_capacity(n);
    for s in 0..n {
        let stage_plan = evaluate(
            s,
            &|p| (plans[p].checkpoint, plans[p].unprotected_work),
            false,
        );
        plans.push(stage_plan);
    }
    // Shared inputs: when leaving a work-table unprotected makes more stages downstream
    // need a checkpoint than checkpointing it would (several consumers inherit its work),
    // one checkpoint of the shared input protects them all. Without this, a higher MTTI
    // that drops one checkpoint could add several.
    let mut shared = vec![false; n];
    if policy == CheckpointPolicy::Auto && market == Market::Spot {
        // One trial per candidate; the work space is reused across trials. `changed` holds
        // the trial's re-evaluated stages, and `changed_at` finds them.
        let mut changed: Vec<(usize, StagePlan)> = Vec::new();
        let mut changed_at: Vec<Option<usize>> = vec![None; n];
        let mut queue = Queue::new(n);
        for p in 0..n {
            if plans[p].checkpoint || forbidden[p] || consumers[p].is_empty() {
                continue;
            }
            let pinned = evaluate(
                p,
                &|i| (plans[i].checkpoint, plans[i].unprotected_work),
                true,
            );
            changed_at[p] = Some(0);
            changed.push((p, pinned));
            queue.extend(&consumers[p]);
            while let Some(s) = queue.pop() {
                let view = |i: usize| {
                    let plan = changed_at[i].map_or(&plans[i], |k| &changed[k].1);
                    (plan.checkpoint, plan.unprotected_work)
                };
                let next = evaluate(s, &view, false);
                let old = &plans[s];
                let propagates = next.checkpoint != old.checkpoint
                    || (!next.checkpoint && next.unprotected_work != old.unprotected_work);
                if propagates {
                    queue.extend(&consumers[s]);
                }
                if next.checkpoint != old.checkpoint
                    || next.unprotected_work != old.unprotected_work
                {
                    match changed_at[s] {
                        Some(k) => changed[k].1 = next,
                        None => {
                            changed_at[s] = Some(changed.len());
                            changed.push((s, next));
                        }
                    }
                }
            }
            let delta: i64 = changed
                .iter()
                .map(|(s, next)| next.checkpoint as i64 - plans[*s].checkpoint as i64)
                .sum();
            let keep = delta < 0;
            for (s, next) in changed.drain(..) {
                changed_at[s] = None;
                if keep {
                    plans[s] = next;
                }
            }
            shared[p] = keep;
        }
    }
    for (s, stage_plan) in plans.iter_mut().enumerate() {
        stage_plan.reason = if shared[s] {
            format!(
                "{}; one checkpoint here spares more of them downstream",
                if stage_plan.critical {
                    "critical".to_string()
                } else {
                    format!("slack {}", fmt(stage_plan.slack))
                }
            )
        } else {
            let (checkpoint, reason) = decide(
                &decision(s, stage_plan.unprotected_work),
                &workflow.stages[s],
                true,
            );
            debug_assert_eq!(checkpoint, stage_plan.checkpoint, "stage {s}");
            reason
        };
    }
    // Uploads do not hold a slot and consumers start before them; a final output's write
    // ends the run.
    let with_final_writes: Vec<f64> = (0..n)
        .map(|s| work[s] + if stages[s].is_final { write[s] } else { 0.0 })
        .collect();
    let makespan_estimate =
        schedule::list_schedule(&needs, &with_final_writes, slots, &order).makespan;
    Plan {
        policy,
        market,
        mtti,
        provision_time,
        notice,
        critical_path: schedule.critical_path,
        makespan_estimate,
        chain_optimum: chain_expected,
        stages: plans,
        auto_market: None,
    }
}

/// Stages waiting to be evaluated again: smallest id first, each at most once while it waits.
struct Queue {
    heap: BinaryHeap<Reverse<usize>>,
    waiting: Vec<bool>,
}

impl Queue {
    fn new(stages: usize) -> Self {
        Queue {
            heap: BinaryHeap::new(),
            waiting: vec![false; stages],
        }
    }

    fn extend(&mut self, stages: &[usize]) {
        for &s in stages {
            if !std::mem::replace(&mut self.waiting[s], true) {
                self.heap.push(Reverse(s));
            }
        }
    }

    fn pop(&mut self) -> Option<usize> {
        let Reverse(s) = self.heap.pop()?;
        self.waiting[s] = false;
        Some(s)
    }
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
    if stage.is_final {
        return (true, words(&|| "final output: always persisted".into()));
    }
    if stage.checkpoint == StageCheckpoint::Always {
        return (true, words(&|| "`checkpoint: always`".into()));
    }
    if stage.checkpoint == StageCheckpoint::Never {
        return (false, words(&|| "`checkpoint: never`".into()));
    }
    // The words are written into one string: a plan of 10,000 stages writes 10,000 of them.
    let place = || {
        let mut out = String::with_capacity(128);
        if d.critical {
            out.push_str("critical");
        } else {
            out.push_str("slack ");
            out.push_str(&fmt(d.slack));
        }
        out
    };
    let compare = |threshold: f64, label: &str| {
        let sign = if d.unprotected > threshold { ">" } else { "<=" };
        let mut out = place();
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
    };
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
            (
                d.unprotected > interval,
                words(&|| {
                    compare(
                        interval,
                        &format!("interval {} (rule of thumb)", fmt(interval)),
                    )
                }),
            )
        }
        CheckpointPolicy::Auto if d.market == Market::OnDemand => (
            false,
            words(&|| {
                "on-demand: no interruption expected, only final outputs are persisted".into()
            }),
        ),
        CheckpointPolicy::Auto => {
            let interval = daly_interval(d.write, d.mtti);
            if d.on_chain {
                let verdict = if d.chain_choice {
                    "the chain optimum checkpoints here"
                } else {
                    "the chain optimum defers"
                };
                (
                    d.chain_choice,
                    words(&|| {
                        let mut out = compare(interval, &["interval ", &fmt(interval)].concat());
                        out.push_str("; ");
                        out.push_str(verdict);
                        out
                    }),
                )
            } else {
                // Off the chain, a lost work-table costs its recompute time beyond what slack
                // absorbs (half the slack: interruptions delay the chain too, but less), and
                // only if the cluster is lost before the consumers are done with it.
                let loss_chance = -(-d.exposure / d.mtti).exp_m1();
                let exposed = (d.unprotected - d.slack / 2.0).max(0.0);
                let expected_loss = loss_chance * exposed;
                let checkpoint = expected_loss > d.write && d.unprotected > interval;
                let sign = if checkpoint { ">" } else { "<=" };
                (
                    checkpoint,
                    words(&|| {
                        let mut out = place();
                        // Writing into a String cannot fail.
                        let _ = write!(
                            out,
                            "; {} unprotected work, {:.0}% chance of a loss while it is needed: expected loss {} {sign} write {}",
                            fmt(d.unprotected),
                            loss_chance * 100.0,
                            fmt(expected_loss),
                            fmt(d.write)
                        );
                        out
                    }),
                )
            }
        }
    }
}
