//! `auto`'s last step: its own placement against the fixed policies, judged by the one
//! cost model there is, the simulator (the engine's run loop in virtual time).
//!
//! The planner's rule (the chain optimum on the longest path, slack-weighted decisions
//! off it) is a heuristic: on DAGs whose slots are scarce or whose stages are long against
//! the MTTI it can trail `all` or `interval` by far. So `auto` simulates its rule and the
//! three fixed placements on the same interruptions and keeps the one with the shortest
//! mean makespan. `respawn plan`, `run` and `simulate` all take their `auto` plan here.

use crate::plan::{Plan, PlanOptions, plan};
use crate::sim::{Interruptions, SimOptions, Simulator, TrialInterruptions, run_trials, trial_rng};
use crate::workflow::units::format_seconds as fmt;
use crate::workflow::{CheckpointPolicy, Market, MarketChoice, Workflow};

/// Above this many stages `auto` keeps its rule: simulating candidates would cost more
/// than planning (a 10,000-stage plan takes about 0.1 s).
pub const MAX_STAGES_COMPARED: usize = 2_000;

/// Stage-trials spent per candidate: a 100-stage workflow gets 400 trials, a 2,000-stage
/// one 40 (and never fewer than 40).
const STAGE_TRIALS: usize = 40_000;

/// The seed of the comparison: fixed, so that the same workflow always gets the same plan.
const SEED: u64 = 0x5EED_0A07;

/// The plan `respawn plan`, `run` and `simulate` use: [`plan`], and with policy `auto` on
/// spot, the best of the rule and the fixed policies in the simulator; with
/// `cluster.market: auto` (and no market forced by `options`), the market chosen by
/// [`super::market::auto_plan`].
pub fn chosen_plan(workflow: &Workflow, options: &PlanOptions) -> Plan {
    if options.market.is_none() && workflow.cluster.market == MarketChoice::Auto {
        return super::market::auto_plan(workflow, options);
    }
    checkpoint_plan(workflow, options)
}

/// [`chosen_plan`] on the market `options` or the workflow names (`auto` plans as spot).
pub(super) fn checkpoint_plan(workflow: &Workflow, options: &PlanOptions) -> Plan {
    let rule = plan(workflow, options);
    let n = workflow.stages.len();
    if rule.policy != CheckpointPolicy::Auto
        || rule.market != Market::Spot
        || !rule.mtti.is_finite()
        || n > MAX_STAGES_COMPARED
    {
        return rule;
    }
    let trials = (STAGE_TRIALS / n.max(1)).clamp(40, 400) as u32;
    let with = |policy| {
        plan(
            workflow,
            &PlanOptions {
                policy: Some(policy),
                ..*options
            },
        )
    };
    let candidates = [
        ("all", with(CheckpointPolicy::All)),
        ("interval", with(CheckpointPolicy::Interval)),
        ("none", with(CheckpointPolicy::None)),
    ];
    let free = Simulator::new(workflow, &rule, f64::INFINITY)
        .run(TrialInterruptions::Never, &mut trial_rng(0, 0))
        .makespan;
    let options = SimOptions {
        trials,
        seed: SEED,
        mtti: None,
        traces: None,
        threads: 1,
        partial: 0.0,
        capacity: None,
    };
    let interruptions = Interruptions::planning(workflow, rule.mtti);
    let mean = |candidate: &Plan, limit: f64| {
        let outcomes = run_trials(workflow, candidate, &interruptions, &options, limit);
        outcomes.iter().map(|o| o.makespan).sum::<f64>() / outcomes.len().max(1) as f64
    };
    // A candidate is stopped once it is far behind: it cannot win.
    let rule_mean = mean(&rule, crate::sim::MAX_MAKESPAN_FACTOR * free.max(1.0));
    let mut best: Option<(&str, &Plan, f64)> = None;
    for (name, candidate) in &candidates {
        if candidate.checkpointed() == rule.checkpointed() {
            continue;
        }
        let limit = 2.0 * best.map_or(rule_mean, |b| b.2.min(rule_mean));
        let candidate_mean = mean(candidate, limit);
        // The rule keeps ties: only a clear gain replaces it.
        if candidate_mean < rule_mean * 0.995 && best.is_none_or(|b| candidate_mean < b.2) {
            best = Some((name, candidate, candidate_mean));
        }
    }
    let Some((name, winner, winner_mean)) = best else {
        return rule;
    };
    let mut chosen = rule.clone();
    for (mine, theirs) in chosen.stages.iter_mut().zip(&winner.stages) {
        *mine = theirs.clone();
        mine.reason = format!(
            "auto takes the `{name}` placement (simulated mean {} < its rule's {}): {}",
            fmt(winner_mean),
            fmt(rule_mean),
            theirs.reason
        );
    }
    chosen.makespan_estimate = winner.makespan_estimate;
    chosen
}
