//! The simulator: runs a workflow many times in virtual time under spot interruptions.
//! It drives the engine's own state machine ([`crate::engine::machine::Machine`]): what
//! launches when, what runs again after a loss and which market comes next are decided
//! by the code `respawn run` uses, and the simulator only plays the cluster and the store
//! (see [`trial`] for the timing model).

mod choose;
mod market;
mod trace;
mod trial;

use crate::plan::{Plan, PlanOptions, plan};
use crate::workflow::{CheckpointPolicy, Market, MarketChoice, Workflow};
pub use choose::{MAX_STAGES_COMPARED, chosen_plan};
use rand::SeedableRng;
use std::time::Duration;
pub use trace::parse_trace;
pub use trial::{Simulator, TrialEvents};

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
    /// Share of trials that finished by `cluster.fallback.deadline`, when there is one.
    pub deadline_met_share: Option<f64>,
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
    /// The currency of every cost (`cost.currency`).
    pub currency: String,
    /// `cluster.fallback.deadline`, in seconds.
    pub deadline: Option<f64>,
    /// `cluster.market: auto`: what the `auto` row chose before the run, and why.
    pub market_choice: Option<crate::plan::fallback::MarketDecision>,
}

/// A simulated trial stops after this many interruptions, or this many times the
/// failure-free makespan, so that hopeless policies cannot run forever.
pub const MAX_INTERRUPTIONS: u32 = 5_000;
pub const MAX_MAKESPAN_FACTOR: f64 = 200.0;

/// The price of a whole cluster per hour on a market. The one place the simulator reads
/// prices from.
pub fn price_per_hour(workflow: &Workflow, market: Market) -> f64 {
    crate::plan::prices::cluster_rate(workflow, market).per_hour
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

fn summarize(
    name: &str,
    plan: &Plan,
    outcomes: &[TrialOutcome],
    deadline: Option<f64>,
) -> PolicySummary {
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
        deadline_met_share: deadline.map(|d| {
            outcomes
                .iter()
                .filter(|o| !o.censored && o.makespan <= d)
                .count() as f64
                / count
        }),
    }
}

/// The policies `respawn simulate` compares, each a plan of the same workflow. The `auto`
/// row is on spot, or with `cluster.market: auto` on the market `run` would choose.
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
        (
            "auto",
            chosen_plan(
                workflow,
                &PlanOptions {
                    mtti,
                    policy: Some(CheckpointPolicy::Auto),
                    market: match workflow.cluster.market {
                        MarketChoice::Auto => None,
                        MarketChoice::Fixed(_) => Some(Market::Spot),
                    },
                },
            ),
        ),
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
    // The spot plans' MTTI (the `auto` row may be on demand, where nothing is interrupted).
    let mtti = plans[0].1.mtti;
    let deadline = workflow.cluster.fallback.deadline.map(|d| d.as_secs_f64());
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
            summarize(name, plan, &outcomes, deadline)
        })
        .collect();
    SimReport {
        workflow: workflow.name.clone(),
        mtti,
        trials: options.trials,
        seed: options.seed,
        lower_bound,
        chain_optimum: plans[0].1.chain_optimum,
        policies,
        currency: workflow.cost.currency.clone(),
        deadline,
        market_choice: auto.auto_market.as_ref().map(|a| a.decision.clone()),
    }
}
