//! The simulator: runs a workflow many times in virtual time under spot interruptions.
//! It drives the engine's own state machine ([`crate::machine::Machine`]): what
//! launches when, what runs again after a loss and which market comes next are decided
//! by the code `respawn run` uses, and the simulator only plays the cluster and the store
//! (see [`trial`] for the timing model).

mod trace;
mod trial;

use crate::plan::Plan;
pub use crate::workflow::capacity::{CapacityTrace, Drop, parse_capacity_trace};
use crate::workflow::{Market, Workflow};
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
    /// A capacity trace ([`capacity`]): each trial starts at an offset of its own, drawn
    /// from the seed, and the trace repeats past its end.
    Capacity(CapacityTrace),
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
    /// A capacity trace read from `offset` seconds into it.
    Capacity {
        trace: &'a CapacityTrace,
        offset: f64,
    },
    Never,
}

impl Interruptions {
    /// The workflow's planning model: its capacity trace (`cluster.interruptions.trace`,
    /// once loaded), else the clusters its history held (`cluster.learned_trace`), else
    /// exponential losses with mean `mtti`. What the market choice and the checkpoint
    /// policy are simulated under, unless `simulate` is given another.
    pub fn planning(workflow: &Workflow, mtti: f64) -> Interruptions {
        let cluster = &workflow.cluster;
        let file = cluster
            .interruptions
            .as_ref()
            .and_then(|m| m.trace.as_ref());
        match file.or(cluster.learned_trace.as_ref()) {
            Some(trace) => Interruptions::Capacity((**trace).clone()),
            None => Interruptions::Exponential { mtti },
        }
    }

    /// The source trial `trial` sees: trial k replays trace k modulo the number of traces;
    /// on a capacity trace it starts at an offset drawn from `seed` and `trial`.
    pub fn for_trial(&self, seed: u64, trial: u32) -> TrialInterruptions<'_> {
        match self {
            Interruptions::Capacity(trace) => {
                use rand::Rng;
                let u: f64 = trial_rng(seed ^ 0x6361_7061_6369_7479, trial).random();
                TrialInterruptions::Capacity {
                    trace,
                    offset: (u * trace.span() / trace.gap).floor() * trace.gap,
                }
            }
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
    /// The share of losses that take one node of the cluster, not all of it.
    pub partial: f64,
    /// A capacity trace to read losses off (in place of `traces` and `mtti`).
    pub capacity: Option<CapacityTrace>,
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
    /// Seconds of stage work thrown away: attempts a loss interrupted (up to the loss)
    /// and producers run again because their work-table was lost.
    pub lost_work: f64,
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
    let simulator = Simulator::new(workflow, plan, time_limit).with_partial(options.partial);
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
                    *outcome =
                        simulator.run(interruptions.for_trial(options.seed, trial), &mut rng);
                }
            });
        }
    });
    outcomes
}
