//! The simulator: runs a workflow many times in simulated time under spot interruptions,
//! driving the same planner, recompute-set and fallback code as the engine.
//!
//! The model: a cluster runs up to `slots` stages at once. A stage takes its estimate, plus
//! the restore of checkpointed inputs missing from the cluster, plus the write of its own
//! checkpoint. An interruption (exponential with mean MTTI on spot, or replayed from a
//! trace) ends every running stage and loses every work-table that was not checkpointed;
//! a new cluster takes `provision_time`, during which nothing is interrupted, and then
//! the recompute set runs. The makespan is counted from the first cluster being ready.

use crate::plan::fallback::{MarketSituation, next_market};
use crate::plan::recompute::recompute_into;
use crate::plan::{Plan, PlanOptions, needs_of, plan, remaining_critical};
use crate::workflow::{CheckpointPolicy, Market, StageId, Workflow, graph};
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// Where interruptions come from.
#[derive(Clone, Debug)]
pub enum Interruptions {
    /// Exponential inter-arrival times with this mean, in seconds, while a spot cluster is up.
    Exponential { mtti: f64 },
    /// Interruption times in seconds since the run started, one list per trace; trial k
    /// replays trace k modulo their number. A time that falls while no spot cluster is up
    /// is skipped.
    Traces(Vec<Vec<f64>>),
    /// No interruption at all.
    Never,
}

/// Where one trial's interruptions come from.
#[derive(Clone, Copy, Debug)]
pub enum TrialInterruptions<'a> {
    Exponential {
        mtti: f64,
    },
    /// Absolute times in seconds since the start, sorted.
    Replay(&'a [f64]),
    Never,
}

impl Interruptions {
    /// The source trial `trial` sees: trial k replays trace k modulo the number of traces.
    pub fn for_trial(&self, trial: u32) -> TrialInterruptions<'_> {
        match self {
            Interruptions::Exponential { mtti } => TrialInterruptions::Exponential { mtti: *mtti },
            Interruptions::Traces(traces) if !traces.is_empty() => {
                TrialInterruptions::Replay(&traces[trial as usize % traces.len()])
            }
            Interruptions::Traces(_) | Interruptions::Never => TrialInterruptions::Never,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SimOptions {
    pub trials: u32,
    pub seed: u64,
    pub mtti: Option<Duration>,
    pub traces: Option<Vec<Vec<f64>>>,
    /// Threads to spread trials on; results do not depend on it.
    pub threads: usize,
}

/// One trial's outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TrialOutcome {
    pub makespan: f64,
    pub cost: f64,
    pub interruptions: u32,
    /// Gigabyte-hours of intermediate checkpoints kept in the store until the run ended.
    pub checkpoint_gb_hours: f64,
    /// The run switched to on-demand capacity.
    pub fell_back: bool,
    /// The trial hit the simulation's limits before finishing; its makespan is a lower bound.
    pub censored: bool,
    /// Stage attempts started (a stage that ran twice counts twice).
    pub attempts: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PolicySummary {
    pub name: String,
    pub checkpoints: usize,
    pub mean_makespan: f64,
    pub p95_makespan: f64,
    pub mean_cost: f64,
    pub mean_interruptions: f64,
    pub mean_checkpoint_gb_hours: f64,
    /// Share of trials that fell back to on-demand.
    pub fallback_rate: f64,
    /// Trials stopped at the simulation's limits (their makespans are lower bounds).
    pub censored_trials: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SimReport {
    pub workflow: String,
    pub mtti: f64,
    pub trials: u32,
    pub seed: u64,
    /// Failure-free makespan with only final outputs persisted: no run can be faster.
    pub lower_bound: f64,
    /// Expected makespan of the critical path under the optimal chain placement.
    pub chain_optimum: f64,
    pub policies: Vec<PolicySummary>,
}

/// A simulated trial stops after this many interruptions, or this many times the
/// failure-free makespan, so that hopeless policies cannot run forever.
pub const MAX_INTERRUPTIONS: u32 = 5_000;
pub const MAX_MAKESPAN_FACTOR: f64 = 200.0;

/// The simulator for one plan: the workflow's numbers, flattened for speed.
pub struct Simulator<'w> {
    workflow: &'w Workflow,
    needs: Vec<Vec<StageId>>,
    consumers: Vec<Vec<StageId>>,
    work: Vec<f64>,
    write: Vec<f64>,
    restore: Vec<f64>,
    size_gb: Vec<f64>,
    checkpointed: Vec<bool>,
    priority: Vec<f64>,
    start_market: Market,
    mtti: f64,
    provision_time: f64,
    typical_checkpoint: f64,
    time_limit: f64,
}

impl<'w> Simulator<'w> {
    pub fn new(workflow: &'w Workflow, plan: &Plan, time_limit: f64) -> Self {
        let needs = needs_of(workflow);
        let consumers = graph::consumers(&needs);
        let n = needs.len();
        let work: Vec<f64> = workflow
            .stages
            .iter()
            .map(|s| s.estimate.as_secs_f64())
            .collect();
        // Bottom level: the longest path from a stage to the end; stages on long paths go first.
        let mut priority = vec![0.0; n];
        for s in (0..n).rev() {
            let tail = consumers[s]
                .iter()
                .map(|&c| priority[c])
                .fold(0.0, f64::max);
            priority[s] = work[s] + tail;
        }
        Simulator {
            workflow,
            needs,
            consumers,
            work,
            write: plan.stages.iter().map(|s| s.checkpoint_cost).collect(),
            restore: plan.stages.iter().map(|s| s.restore_cost).collect(),
            size_gb: workflow
                .stages
                .iter()
                .map(|s| s.output_size as f64 / 1e9)
                .collect(),
            checkpointed: plan.checkpointed(),
            priority,
            start_market: plan.market,
            mtti: plan.mtti,
            provision_time: plan.provision_time,
            typical_checkpoint: plan.typical_checkpoint_cost(),
            time_limit,
        }
    }

    fn price(&self, market: Market) -> f64 {
        match market {
            Market::Spot => self.workflow.cost.spot_per_hour,
            Market::OnDemand => self.workflow.cost.on_demand_per_hour,
        }
    }

    /// Runs the workflow once. `rng` draws exponential interruptions.
    pub fn run(&self, interruptions: TrialInterruptions, rng: &mut impl Rng) -> TrialOutcome {
        let n = self.needs.len();
        let slots = self.workflow.cluster.slots.max(1) as usize;
        let mut outcome = TrialOutcome::default();
        let mut finished = vec![false; n];
        let mut committed = vec![false; n];
        let mut committed_at = vec![0.0f64; n];
        let mut present = vec![false; n];
        let mut pending = vec![0usize; n];
        let mut to_run = vec![true; n];
        let mut ready: BinaryHeap<(OrderedTime, Reverse<StageId>)> = BinaryHeap::new();
        let mut running: BinaryHeap<Reverse<(OrderedTime, StageId)>> = BinaryHeap::new();
        let mut market = self.start_market;
        let mut now = 0.0f64;
        let mut cluster_since = 0.0f64;
        let mut trace_position = 0usize;
        let mut remaining = n;

        let next_interruption = |now: f64,
                                 market: Market,
                                 trace_position: &mut usize,
                                 rng: &mut dyn rand::RngCore|
         -> f64 {
            if market == Market::OnDemand {
                return f64::INFINITY;
            }
            match interruptions {
                TrialInterruptions::Never => f64::INFINITY,
                TrialInterruptions::Replay(times) => {
                    while *trace_position < times.len() && times[*trace_position] <= now {
                        *trace_position += 1;
                    }
                    times.get(*trace_position).copied().unwrap_or(f64::INFINITY)
                }
                TrialInterruptions::Exponential { mtti } => {
                    let u: f64 = rng.random();
                    now - mtti * (1.0 - u).ln()
                }
            }
        };

        for s in 0..n {
            pending[s] = self.needs[s].len();
            if pending[s] == 0 {
                ready.push((OrderedTime(self.priority[s]), Reverse(s)));
            }
        }
        let mut interrupt_at = next_interruption(now, market, &mut trace_position, rng);

        while remaining > 0 {
            while running.len() < slots {
                let Some((_, Reverse(s))) = ready.pop() else {
                    break;
                };
                let mut duration = self.work[s];
                for &p in &self.needs[s] {
                    if !present[p] {
                        duration += self.restore[p];
                        present[p] = true;
                    }
                }
                if self.checkpointed[s] {
                    duration += self.write[s];
                }
                outcome.attempts += 1;
                running.push(Reverse((OrderedTime(now + duration), s)));
            }
            let Some(&Reverse((OrderedTime(done_at), s))) = running.peek() else {
                // Nothing can run: only possible if the graph were broken; stop rather than spin.
                outcome.censored = true;
                break;
            };
            if done_at <= interrupt_at {
                running.pop();
                now = done_at;
                finished[s] = true;
                present[s] = true;
                remaining -= 1;
                if self.checkpointed[s] {
                    committed[s] = true;
                    committed_at[s] = now;
                }
                for &c in &self.consumers[s] {
                    if to_run[c] && !finished[c] {
                        pending[c] -= 1;
                        if pending[c] == 0 {
                            ready.push((OrderedTime(self.priority[c]), Reverse(c)));
                        }
                    }
                }
                continue;
            }
            // The cluster is lost.
            now = interrupt_at;
            outcome.interruptions += 1;
            outcome.cost += (now - cluster_since) / 3600.0 * self.price(market);
            if outcome.interruptions >= MAX_INTERRUPTIONS || now >= self.time_limit {
                outcome.censored = true;
                break;
            }
            running.clear();
            ready.clear();
            recompute_into(&self.needs, &finished, &committed, &mut to_run);
            remaining = 0;
            for s in 0..n {
                present[s] = false;
                if to_run[s] {
                    finished[s] = false;
                    remaining += 1;
                }
            }
            let fallback = &self.workflow.cluster.fallback;
            let decision = next_market(
                fallback,
                &MarketSituation {
                    current: market,
                    interruptions: outcome.interruptions,
                    elapsed: now,
                    // Only the deadline rule reads it; a hopeless policy meets thousands of
                    // losses per trial, so it is not computed for nothing.
                    remaining_critical: if fallback.deadline.is_some() {
                        remaining_critical(&self.consumers, &self.work, &to_run)
                    } else {
                        0.0
                    },
                    mtti: self.mtti,
                    provision_time: self.provision_time,
                    checkpoint_cost: self.typical_checkpoint,
                },
            );
            if decision.market != market {
                outcome.fell_back = true;
            }
            market = decision.market;
            cluster_since = now;
            now += self.provision_time;
            for s in 0..n {
                if to_run[s] {
                    pending[s] = self.needs[s].iter().filter(|&&p| !finished[p]).count();
                    if pending[s] == 0 {
                        ready.push((OrderedTime(self.priority[s]), Reverse(s)));
                    }
                }
            }
            interrupt_at = next_interruption(now, market, &mut trace_position, rng);
        }
        outcome.makespan = now;
        outcome.cost += (now - cluster_since) / 3600.0 * self.price(market);
        outcome.checkpoint_gb_hours = (0..n)
            .filter(|&s| committed[s] && !self.workflow.stages[s].is_final)
            // A fold from +0.0: summing no floats gives -0.0.
            .fold(0.0, |total, s| {
                total + self.size_gb[s] * (now - committed_at[s]) / 3600.0
            });
        outcome
    }
}

/// A time that sorts totally (simulated times are never NaN).
#[derive(Clone, Copy, Debug, PartialEq)]
struct OrderedTime(f64);
impl Eq for OrderedTime {}
impl PartialOrd for OrderedTime {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrderedTime {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The random stream of trial `trial`: the same for every policy, so that policies are
/// compared on the same interruptions.
pub fn trial_rng(seed: u64, trial: u32) -> rand_pcg::Pcg64Mcg {
    rand_pcg::Pcg64Mcg::seed_from_u64(
        seed ^ (u64::from(trial) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    )
}

/// Runs `trials` trials of one plan, in trial order whatever the number of threads.
pub fn run_trials(
    workflow: &Workflow,
    plan: &Plan,
    interruptions: &Interruptions,
    options: &SimOptions,
    time_limit: f64,
) -> Vec<TrialOutcome> {
    let simulator = Simulator::new(workflow, plan, time_limit);
    let trials = options.trials as usize;
    let threads = options.threads.clamp(1, 64).min(trials.max(1));
    let mut outcomes = vec![TrialOutcome::default(); trials];
    let chunk = trials.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for (part, slice) in outcomes.chunks_mut(chunk).enumerate() {
            let simulator = &simulator;
            scope.spawn(move || {
                for (offset, outcome) in slice.iter_mut().enumerate() {
                    let trial = (part * chunk + offset) as u32;
                    let mut rng = trial_rng(options.seed, trial);
                    *outcome = simulator.run(interruptions.for_trial(trial), &mut rng);
                }
            });
        }
    });
    outcomes
}

fn summarize(name: &str, plan: &Plan, outcomes: &[TrialOutcome]) -> PolicySummary {
    let count = outcomes.len().max(1) as f64;
    let mean = |f: fn(&TrialOutcome) -> f64| outcomes.iter().map(f).sum::<f64>() / count;
    let mut makespans: Vec<f64> = outcomes.iter().map(|o| o.makespan).collect();
    makespans.sort_by(f64::total_cmp);
    let p95 = if makespans.is_empty() {
        0.0
    } else {
        let rank = ((0.95 * makespans.len() as f64).ceil() as usize).clamp(1, makespans.len());
        makespans[rank - 1]
    };
    PolicySummary {
        name: name.to_string(),
        checkpoints: plan.stages.iter().filter(|s| s.checkpoint).count(),
        mean_makespan: mean(|o| o.makespan),
        p95_makespan: p95,
        mean_cost: mean(|o| o.cost),
        mean_interruptions: mean(|o| f64::from(o.interruptions)),
        mean_checkpoint_gb_hours: mean(|o| o.checkpoint_gb_hours),
        fallback_rate: mean(|o| if o.fell_back { 1.0 } else { 0.0 }),
        censored_trials: outcomes.iter().filter(|o| o.censored).count() as u32,
    }
}

/// The policies `respawn simulate` compares, each a plan of the same workflow.
pub fn policy_plans(workflow: &Workflow, mtti: Option<Duration>) -> Vec<(&'static str, Plan)> {
    let spot = |policy| {
        plan(
            workflow,
            &PlanOptions {
                mtti,
                policy: Some(policy),
                market: Some(Market::Spot),
            },
        )
    };
    vec![
        ("none", spot(CheckpointPolicy::None)),
        ("all", spot(CheckpointPolicy::All)),
        ("interval", spot(CheckpointPolicy::Interval)),
        ("auto", spot(CheckpointPolicy::Auto)),
        (
            "on-demand",
            plan(
                workflow,
                &PlanOptions {
                    mtti,
                    policy: Some(CheckpointPolicy::Auto),
                    market: Some(Market::OnDemand),
                },
            ),
        ),
    ]
}

/// Simulates every policy of [`policy_plans`] on the same interruptions.
pub fn simulate(workflow: &Workflow, options: &SimOptions) -> SimReport {
    let plans = policy_plans(workflow, options.mtti);
    let auto = &plans[3].1;
    let mtti = auto.mtti;
    let free = Simulator::new(workflow, &plans[0].1, f64::INFINITY);
    let lower_bound = free
        .run(TrialInterruptions::Never, &mut trial_rng(0, 0))
        .makespan;
    let time_limit = MAX_MAKESPAN_FACTOR * lower_bound.max(1.0);
    let interruptions = match &options.traces {
        Some(traces) => Interruptions::Traces(traces.clone()),
        None => Interruptions::Exponential { mtti },
    };
    let policies = plans
        .iter()
        .map(|(name, plan)| {
            let source = if plan.market == Market::OnDemand {
                &Interruptions::Never
            } else {
                &interruptions
            };
            let outcomes = run_trials(workflow, plan, source, options, time_limit);
            summarize(name, plan, &outcomes)
        })
        .collect();
    SimReport {
        workflow: workflow.name.clone(),
        mtti,
        trials: options.trials,
        seed: options.seed,
        lower_bound,
        chain_optimum: auto.chain_optimum,
        policies,
    }
}

/// Reads an interruption trace: one time per line (seconds, or a duration like `1h30m`),
/// or `trace,time` pairs to give several traces. `#` comments and a header line are skipped.
pub fn parse_trace(text: &str) -> Result<Vec<Vec<f64>>, String> {
    let mut traces: Vec<(String, Vec<f64>)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (trace, time) = match line.split_once(',') {
            Some((trace, time)) => (trace.trim().to_string(), time.trim()),
            None => (String::new(), line),
        };
        let seconds = match time.parse::<f64>() {
            Ok(value) => value,
            Err(_) => match crate::workflow::units::parse_duration(time) {
                Ok(duration) => duration.as_secs_f64(),
                Err(_) if number == 0 => continue, // a header
                Err(reason) => return Err(format!("line {}: {reason}", number + 1)),
            },
        };
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(format!(
                "line {}: `{time}` is not a time since the start",
                number + 1
            ));
        }
        match traces.iter_mut().find(|(name, _)| *name == trace) {
            Some((_, times)) => times.push(seconds),
            None => traces.push((trace, vec![seconds])),
        }
    }
    if traces.is_empty() {
        return Err("the trace has no interruption times".into());
    }
    Ok(traces
        .into_iter()
        .map(|(_, mut times)| {
            times.sort_by(f64::total_cmp);
            times
        })
        .collect())
}
