//! `cluster.market: auto` before the run: the workflow simulated on demand, and on spot
//! as `auto` runs there (the engine's run loop, choosing again after every interruption,
//! the fallback included), and [`crate::plan::market::decide`] choosing between them.
//! After an interruption the engine's machine chooses again with the numbers kept in
//! [`AutoMarket`].

use super::choose::checkpoint_plan;
use crate::plan::fallback::MarketDecision;
use crate::plan::fallback::MarketSituation;
use crate::plan::market::{AutoMarket, Expectation, calibration, deadline_risk, decide};
use crate::plan::{Plan, PlanOptions, needs_of, remaining_time};
use crate::sim::{
    Interruptions, SimOptions, Simulator, TrialInterruptions, TrialOutcome, run_trials, trial_rng,
};
use crate::workflow::units::format_seconds;
use crate::workflow::{Market, Workflow, graph};

/// The seed of the spot trials: fixed, so that the same workflow gets the same choice.
const SEED: u64 = 0x5EED_3A2C;

/// Stage-trials spent on spot: at most 2,000 trials, a 400-stage workflow 500.
/// They run in batches of [`BATCH`]; the choice stops early once spot's mean cost is more
/// than [`CLEAR`] times on-demand's, or less than its 1/[`CLEAR`] with every trial in time.
const STAGE_TRIALS: usize = 200_000;
const BATCH: usize = 500;
const CLEAR: f64 = 1.5;

/// A spot trial is stopped once its bill reaches this many times the on-demand run's: it
/// cannot make spot the cheaper choice, and its cost so far is a lower bound.
const COST_LIMIT: f64 = 5.0;

/// The plan for `market: auto`: the spot plan or the on-demand plan, whichever
/// [`decide`] chooses, with the decision and its numbers in `auto_market`.
pub fn auto_plan(workflow: &Workflow, options: &PlanOptions) -> Plan {
    let on = |market| {
        checkpoint_plan(
            workflow,
            &PlanOptions {
                market: Some(market),
                ..*options
            },
        )
    };
    let spot_plan = on(Market::Spot);
    let on_demand_plan = on(Market::OnDemand);
    let deadline = workflow.cluster.fallback.deadline.map(|d| d.as_secs_f64());
    let od = never_interrupted(workflow, &on_demand_plan);
    let on_demand = Expectation {
        makespan: od.makespan,
        cost: od.cost,
        deadline_share: deadline.map(|d| if od.makespan <= d { 1.0 } else { 0.0 }),
        trials: 1,
    };
    let whole = whole_run(workflow, &spot_plan);
    let exposure = (spot_plan.stages.iter())
        .map(|p| p.unprotected_work + p.checkpoint_cost)
        .fold(0.0, f64::max);
    let spot_per_hour = crate::sim::price_per_hour(workflow, Market::Spot);
    // What the spot trials decide again with; the spot numbers are not known yet, so the
    // estimate of time on spot is taken as it comes ([`calibration`] sets it after).
    let (_, on_demand_factor) = calibration(1.0, on_demand.makespan, &whole);
    let auto = AutoMarket {
        decision: MarketDecision {
            market: Market::Spot,
            reason: String::new(),
        },
        currency: workflow.cost.currency.clone(),
        spot_per_hour,
        on_demand_per_hour: crate::sim::price_per_hour(workflow, Market::OnDemand),
        spot: on_demand.clone(),
        on_demand: on_demand.clone(),
        spot_calibration: 1.0,
        on_demand_factor,
        exposure,
    };
    let free = never_interrupted(workflow, &spot_plan).makespan.max(1.0);
    let by_cost = if spot_per_hour > 0.0 {
        COST_LIMIT * od.cost / spot_per_hour * 3600.0
    } else {
        f64::INFINITY
    };
    let limits = Limits {
        time: (crate::sim::MAX_MAKESPAN_FACTOR * free).min(by_cost.max(2.0 * free)),
        on_demand_cost: od.cost,
        deadline,
    };
    let (mut auto, spot) = most_careful_enough(workflow, &spot_plan, auto, &limits);
    auto.decision = choose(workflow, &auto, &whole, &spot, &on_demand);
    (auto.spot_calibration, _) = calibration(spot.makespan, on_demand.makespan, &whole);
    auto.spot = spot;
    auto.on_demand = on_demand;
    let mut chosen = match auto.decision.market {
        Market::Spot => spot_plan,
        Market::OnDemand => on_demand_plan,
    };
    chosen.auto_market = Some(auto);
    chosen
}

/// One trial of `plan` without interruptions.
fn never_interrupted(workflow: &Workflow, plan: &Plan) -> TrialOutcome {
    Simulator::new(workflow, plan, f64::INFINITY)
        .run(TrialInterruptions::Never, &mut trial_rng(0, 0))
}

/// The whole run before it starts, as the deadline rule sees it: on spot, nothing done,
/// the critical path of the estimates ahead.
fn whole_run(workflow: &Workflow, spot_plan: &Plan) -> MarketSituation {
    let needs = needs_of(workflow);
    let estimate: Vec<f64> = (workflow.stages.iter())
        .map(|s| s.estimate.as_secs_f64())
        .collect();
    MarketSituation {
        current: Market::Spot,
        interruptions: 0,
        elapsed: 0.0,
        remaining_critical: remaining_time(
            &graph::consumers(&needs),
            &estimate,
            &vec![true; estimate.len()],
            workflow.cluster.slots as usize,
        ),
        mtti: spot_plan.mtti,
        provision_time: spot_plan.provision_time,
        checkpoint_cost: spot_plan.typical_checkpoint_cost(),
    }
}

/// With a deadline, how careful the deadline rule is, is chosen in the simulator too: the
/// whole exposure, three quarters, half, a quarter of it, or none (on demand only once it
/// barely fits), the cheapest whose runs meet the deadline. Returns the numbers chosen and
/// what the spot trials expect with them.
fn most_careful_enough(
    workflow: &Workflow,
    spot_plan: &Plan,
    auto: AutoMarket,
    limits: &Limits,
) -> (AutoMarket, Expectation) {
    let shares: &[f64] = if limits.deadline.is_some() {
        &[0.75, 0.5, 0.25, 0.0]
    } else {
        &[]
    };
    let simulate = |candidate: &AutoMarket| {
        let mut plan = spot_plan.clone();
        plan.auto_market = Some(candidate.clone());
        spot_trials(workflow, &plan, limits)
    };
    let exposure = auto.exposure;
    let mut spot = simulate(&auto);
    let mut auto = auto;
    for &share in shares {
        let mut candidate = auto.clone();
        candidate.exposure = share * exposure;
        let candidate_spot = simulate(&candidate);
        if meets(&candidate_spot) && (!meets(&spot) || candidate_spot.cost < spot.cost) {
            (auto, spot) = (candidate, candidate_spot);
        }
    }
    (auto, spot)
}

/// The choice before the run: on demand when the deadline rule says so, or when even
/// on demand cannot meet the deadline; otherwise what [`decide`] says.
fn choose(
    workflow: &Workflow,
    auto: &AutoMarket,
    whole: &MarketSituation,
    spot: &Expectation,
    on_demand: &Expectation,
) -> MarketDecision {
    let deadline = workflow.cluster.fallback.deadline.map(|d| d.as_secs_f64());
    let decision = match deadline_risk(auto, &workflow.cluster.fallback, whole, 0.0) {
        Some(reason) => MarketDecision {
            market: Market::OnDemand,
            reason,
        },
        None => decide(spot, on_demand, deadline, &workflow.cost.currency),
    };
    match deadline {
        Some(d) if on_demand.makespan > d => MarketDecision {
            market: Market::OnDemand,
            reason: format!(
                "no market meets the deadline {}: even on-demand without interruptions takes {}, \
                 so the fastest, on-demand, is chosen ({})",
                format_seconds(d),
                format_seconds(on_demand.makespan),
                decision.reason
            ),
        },
        _ => decision,
    }
}

/// What stops the spot trials early.
struct Limits {
    /// A trial is stopped at this makespan (its cost so far is a lower bound).
    time: f64,
    on_demand_cost: f64,
    deadline: Option<f64>,
}

/// Whether a spot expectation meets the deadline often enough (always without one).
fn meets(spot: &Expectation) -> bool {
    crate::plan::market::meets_deadline(spot)
}

/// `plan` simulated on spot in batches, until the choice is clear or the trials are spent.
fn spot_trials(workflow: &Workflow, plan: &Plan, limits: &Limits) -> Expectation {
    let n = workflow.stages.len().max(1);
    let most = (STAGE_TRIALS / n).clamp(BATCH, 4 * BATCH);
    let met = |o: &TrialOutcome| !o.censored && limits.deadline.is_none_or(|d| o.makespan <= d);
    let interruptions = Interruptions::planning(workflow, plan.mtti);
    let mut outcomes: Vec<TrialOutcome> = Vec::with_capacity(most);
    let mut batch = 0;
    while outcomes.len() < most {
        let options = SimOptions {
            trials: BATCH as u32,
            seed: SEED.wrapping_add(batch),
            mtti: None,
            traces: None,
            threads: std::thread::available_parallelism().map_or(1, |t| t.get()),
            partial: 0.0,
            capacity: None,
        };
        outcomes.extend(run_trials(
            workflow,
            plan,
            &interruptions,
            &options,
            limits.time,
        ));
        batch += 1;
        // Far from the on-demand cost either way, more trials cannot change the choice.
        let mean_cost = outcomes.iter().map(|o| o.cost).sum::<f64>() / outcomes.len() as f64;
        let all_met = outcomes.iter().all(met);
        if mean_cost > CLEAR * limits.on_demand_cost
            || (mean_cost * CLEAR < limits.on_demand_cost && all_met)
        {
            break;
        }
    }
    let count = outcomes.len().max(1) as f64;
    Expectation {
        makespan: outcomes.iter().map(|o| o.makespan).sum::<f64>() / count,
        cost: outcomes.iter().map(|o| o.cost).sum::<f64>() / count,
        deadline_share: limits
            .deadline
            .map(|_| outcomes.iter().filter(|o| met(o)).count() as f64 / count),
        trials: outcomes.len() as u32,
    }
}
