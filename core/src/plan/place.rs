//! Checkpoint placement: which work-tables a plan persists, and why. Each stage is
//! decided on a schedule where only the writes that must happen count ([`decide`]); then
//! shared inputs are checked, since one checkpoint of an input several consumers inherit
//! can spare more of them downstream; then the reasons are written, once.

use super::formulas::{ChainStage, chain_optimum};
use super::schedule::{self, Schedule};
use super::{Decision, Plan, PlanOptions, StagePlan, decide, fmt, needs_of, transfer_seconds};
use crate::workflow::{CheckpointPolicy, Market, StageCheckpoint, StageId, Workflow, graph};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The plan of `workflow`: its schedule, and where its checkpoints go and why.
pub fn plan(workflow: &Workflow, options: &PlanOptions) -> Plan {
    let stages = Stages::new(workflow, options);
    let mut plans: Vec<StagePlan> = Vec::with_capacity(stages.n);
    for s in 0..stages.n {
        let stage_plan = stages.evaluate(
            s,
            &|p| (plans[p].checkpoint, plans[p].unprotected_work),
            false,
        );
        plans.push(stage_plan);
    }
    let shared = stages.shared_inputs(&mut plans);
    stages.write_reasons(&mut plans, &shared);
    // Uploads do not hold a slot and consumers start before them; a final output's write
    // ends the run.
    let with_final_writes: Vec<f64> = (0..stages.n)
        .map(|s| {
            stages.work[s]
                + if workflow.stages[s].is_final {
                    stages.write[s]
                } else {
                    0.0
                }
        })
        .collect();
    let makespan_estimate = schedule::list_schedule(
        &stages.needs,
        &with_final_writes,
        stages.slots,
        &stages.order,
    )
    .makespan;
    Plan {
        policy: stages.policy,
        market: stages.market,
        mtti: stages.mtti,
        provision_time: stages.provision_time,
        notice: stages.notice,
        critical_path: stages.schedule.critical_path.clone(),
        makespan_estimate,
        chain_optimum: stages.chain_expected,
        stages: plans,
        auto_market: None,
    }
}

/// What deciding each stage needs: its times, what the file forces, the schedule, and
/// the chain the dynamic program places checkpoints on.
struct Stages<'w> {
    workflow: &'w Workflow,
    n: usize,
    policy: CheckpointPolicy,
    market: Market,
    mtti: f64,
    provision_time: f64,
    notice: Option<f64>,
    needs: Vec<Vec<StageId>>,
    consumers: Vec<Vec<StageId>>,
    work: Vec<f64>,
    write: Vec<f64>,
    restore: Vec<f64>,
    forbidden: Vec<bool>,
    slots: usize,
    order: Vec<StageId>,
    /// On the cluster's slots, only the writes that must happen counted: the slack it
    /// shows is slack that exists when slots are scarce.
    schedule: Schedule,
    on_chain: Vec<bool>,
    chain_choice: Vec<bool>,
    chain_expected: f64,
    /// How long after it is produced each work-table is still needed.
    exposure: Vec<f64>,
}

impl<'w> Stages<'w> {
    fn new(workflow: &'w Workflow, options: &PlanOptions) -> Stages<'w> {
        let policy = options.policy.unwrap_or(workflow.checkpoint.policy);
        let market = (options.market).unwrap_or(workflow.cluster.market.planning_market());
        let mtti = match market {
            Market::OnDemand => f64::INFINITY,
            Market::Spot => options.mtti.unwrap_or(workflow.cluster.mtti).as_secs_f64(),
        };
        let provision_time = workflow.cluster.provision_time.as_secs_f64();
        let notice = (workflow.cluster.notice.map(|n| n.as_secs_f64()))
            .filter(|n| *n > 0.0 && market == Market::Spot);
        let needs = needs_of(workflow);
        let stages = &workflow.stages;
        let n = stages.len();
        let seconds = |throughput| -> Vec<f64> {
            (stages.iter())
                .map(|s| transfer_seconds(s.output_size, throughput))
                .collect()
        };
        let work: Vec<f64> = stages.iter().map(|s| s.estimate.as_secs_f64()).collect();
        let write = seconds(workflow.checkpoint.write_throughput);
        let restore = seconds(workflow.checkpoint.read_throughput);
        let forced: Vec<bool> = (stages.iter())
            .map(|s| s.is_final || s.checkpoint == StageCheckpoint::Always)
            .collect();
        let forbidden: Vec<bool> = (stages.iter())
            .map(|s| s.checkpoint == StageCheckpoint::Never)
            .collect();
        let base: Vec<f64> = (0..n)
            .map(|s| work[s] + if forced[s] { write[s] } else { 0.0 })
            .collect();
        let order = schedule::launch_order(&needs, &work);
        let slots = workflow.cluster.slots.max(1) as usize;
        let schedule = schedule::list_schedule(&needs, &base, slots, &order);
        let consumers = graph::consumers(&needs);
        let finish = |s: usize| schedule.earliest_start[s] + base[s];
        let exposure: Vec<f64> = (0..n)
            .map(|s| {
                (consumers[s].iter())
                    .map(|&c| finish(c) - finish(s))
                    .fold(0.0, f64::max)
            })
            .collect();
        // With a notice the replacement is asked for before the loss: the downtime a loss
        // costs is what provisioning takes beyond the warning.
        let downtime = (provision_time - notice.unwrap_or(0.0)).max(0.0);
        let chain_path = schedule::schedule(&needs, &base).critical_path;
        let chain: Vec<ChainStage> = (chain_path.iter())
            .map(|&s| ChainStage {
                work: work[s],
                checkpoint_cost: write[s],
                restore_cost: restore[s],
                forced: forced[s],
                forbidden: forbidden[s],
            })
            .collect();
        let (chain_expected, placement) = chain_optimum(&chain, downtime, mtti);
        let (mut on_chain, mut chain_choice) = (vec![false; n], vec![false; n]);
        for (k, &s) in chain_path.iter().enumerate() {
            on_chain[s] = true;
            chain_choice[s] = policy == CheckpointPolicy::Auto && placement[k];
        }
        Stages {
            workflow,
            n,
            policy,
            market,
            mtti,
            provision_time,
            notice,
            needs,
            consumers,
            work,
            write,
            restore,
            forbidden,
            slots,
            order,
            schedule,
            on_chain,
            chain_choice,
            chain_expected,
            exposure,
        }
    }

    fn decision(&self, s: usize, unprotected: f64) -> Decision {
        let checkpoint = &self.workflow.checkpoint;
        Decision {
            policy: self.policy,
            market: self.market,
            mtti: self.mtti,
            unprotected,
            critical: self.schedule.is_critical(s),
            on_chain: self.on_chain[s],
            chain_choice: self.chain_choice[s],
            slack: self.schedule.slack[s],
            write: self.write[s],
            exposure: self.exposure[s],
            every: checkpoint.every.as_secs_f64(),
            every_critical: checkpoint.every_critical.as_secs_f64(),
        }
    }

    /// Stage `s` decided. `parent(p)` says whether p's work-table is checkpointed and how
    /// much unprotected work it carries. A pinned stage is checkpointed. The reason is left
    /// empty: the passes evaluate stages many times, and the words are written once, at
    /// the end.
    fn evaluate(&self, s: usize, parent: &dyn Fn(usize) -> (bool, f64), pinned: bool) -> StagePlan {
        let inherited = (self.needs[s].iter())
            .map(|&p| parent(p))
            .filter(|(checkpoint, _)| !checkpoint)
            .map(|(_, unprotected)| unprotected)
            .fold(0.0, f64::max);
        let unprotected = self.work[s] + inherited;
        let decision = self.decision(s, unprotected);
        let checkpoint = pinned || decide(&decision, &self.workflow.stages[s], false).0;
        StagePlan {
            earliest_start: self.schedule.earliest_start[s],
            latest_start: self.schedule.latest_start[s],
            slack: self.schedule.slack[s],
            critical: self.schedule.is_critical(s),
            checkpoint,
            reason: String::new(),
            unprotected_work: unprotected,
            checkpoint_cost: self.write[s],
            restore_cost: self.restore[s],
        }
    }

    /// Shared inputs: when leaving a work-table unprotected makes more stages downstream
    /// need a checkpoint than checkpointing it would (several consumers inherit its work),
    /// one checkpoint of the shared input protects them all. Without this, a higher MTTI
    /// that drops one checkpoint could add several. Which stages were pinned so.
    fn shared_inputs(&self, plans: &mut [StagePlan]) -> Vec<bool> {
        let n = self.n;
        let mut shared = vec![false; n];
        if self.policy != CheckpointPolicy::Auto || self.market != Market::Spot {
            return shared;
        }
        // One trial per candidate; the work space is reused across trials. `changed` holds
        // the trial's re-evaluated stages, and `changed_at` finds them.
        let mut changed: Vec<(usize, StagePlan)> = Vec::new();
        let mut changed_at: Vec<Option<usize>> = vec![None; n];
        let mut queue = Queue::new(n);
        for p in 0..n {
            if plans[p].checkpoint || self.forbidden[p] || self.consumers[p].is_empty() {
                continue;
            }
            let pinned = self.evaluate(
                p,
                &|i| (plans[i].checkpoint, plans[i].unprotected_work),
                true,
            );
            changed_at[p] = Some(0);
            changed.push((p, pinned));
            queue.extend(&self.consumers[p]);
            while let Some(s) = queue.pop() {
                let view = |i: usize| {
                    let plan = changed_at[i].map_or(&plans[i], |k| &changed[k].1);
                    (plan.checkpoint, plan.unprotected_work)
                };
                let next = self.evaluate(s, &view, false);
                let old = &plans[s];
                let propagates = next.checkpoint != old.checkpoint
                    || (!next.checkpoint && next.unprotected_work != old.unprotected_work);
                if propagates {
                    queue.extend(&self.consumers[s]);
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
            let delta: i64 = (changed.iter())
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
        shared
    }

    /// The words of each decision, written once.
    fn write_reasons(&self, plans: &mut [StagePlan], shared: &[bool]) {
        for (s, stage_plan) in plans.iter_mut().enumerate() {
            stage_plan.reason = if shared[s] {
                let place = if stage_plan.critical {
                    "critical".to_string()
                } else {
                    format!("slack {}", fmt(stage_plan.slack))
                };
                format!("{place}; one checkpoint here spares more of them downstream")
            } else {
                let decision = self.decision(s, stage_plan.unprotected_work);
                let (checkpoint, reason) = decide(&decision, &self.workflow.stages[s], true);
                debug_assert_eq!(checkpoint, stage_plan.checkpoint, "stage {s}");
                reason
            };
        }
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
