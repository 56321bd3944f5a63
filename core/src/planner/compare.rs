//! What `respawn simulate` prints: every checkpoint policy simulated on the same
//! interruptions, the `auto` row planned as `run` would plan it ([`super::chosen_plan`]).

use super::chosen_plan;
use crate::plan::{Plan, PlanOptions, plan};
use crate::sim::{
    Interruptions, MAX_MAKESPAN_FACTOR, SimOptions, Simulator, TrialInterruptions, TrialOutcome,
    run_trials, trial_rng,
};
use crate::workflow::{CheckpointPolicy, Market, MarketChoice, Workflow};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct PolicySummary {
    pub name: String,
    pub checkpoints: usize,
    pub mean_makespan: f64,
    pub p95_makespan: f64,
    pub mean_cost: f64,
    pub mean_interruptions: f64,
    /// Seconds of stage work thrown away per trial (interrupted attempts, recomputed
    /// producers).
    pub mean_lost_work: f64,
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
    /// The warning before each spot loss the trials played (`cluster.notice`), seconds.
    pub notice: Option<f64>,
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
        mean_lost_work: mean(|o| o.lost_work),
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
    let interruptions = match (&options.capacity, &options.traces) {
        (Some(trace), _) => Interruptions::Capacity(trace.clone()),
        (None, Some(traces)) => Interruptions::Traces(traces.clone()),
        // `--mtti` asks for exponential losses, whatever the planning model.
        (None, None) if options.mtti.is_some() => Interruptions::Exponential { mtti },
        (None, None) => Interruptions::planning(workflow, mtti),
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
        notice: plans[0].1.notice,
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
