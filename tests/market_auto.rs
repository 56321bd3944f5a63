//! `cluster.market: auto` measured in the simulator (the engine's run loop in virtual
//! time), against the two fixed choices it replaces: all spot with `auto` checkpoints (the
//! workflow's fallback included) and all on-demand. Held to the mean over 2,000 trials on
//! the same interruptions. `benches/market.py` prints the whole table, down to MTTI 15m.

use respawn_core::plan::{PlanOptions, plan};
use respawn_core::planner::chosen_plan;
use respawn_core::sim::{Interruptions, SimOptions, TrialOutcome, run_trials};
use respawn_core::workflow::{self, Market, MarketChoice, Workflow};
use std::path::Path;
use std::time::Duration;

const HOUR: f64 = 3600.0;
const TRIALS: u32 = 2_000;

fn load(name: &str) -> Workflow {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("workflows/{name}.yaml"));
    workflow::load(&path).unwrap_or_else(|d| panic!("{d}"))
}

/// The workflow with this MTTI, market and deadline.
fn variant(
    workflow: &Workflow,
    mtti_h: f64,
    market: MarketChoice,
    deadline: Option<f64>,
) -> Workflow {
    let mut w = workflow.clone();
    w.cluster.mtti = Duration::from_secs_f64(mtti_h * HOUR);
    w.cluster.market = market;
    w.cluster.fallback.deadline = deadline.map(Duration::from_secs_f64);
    w
}

/// The trials of the plan `run` would make of `workflow`, on exponential interruptions
/// (none when it chose on-demand).
fn trials(workflow: &Workflow) -> (Market, Vec<TrialOutcome>) {
    let chosen = chosen_plan(workflow, &PlanOptions::default());
    let interruptions = match chosen.market {
        Market::Spot => Interruptions::Exponential { mtti: chosen.mtti },
        Market::OnDemand => Interruptions::Never,
    };
    let options = SimOptions {
        trials: TRIALS,
        seed: 20261201,
        mtti: None,
        traces: None,
        threads: 2,
        partial: 0.0,
        capacity: None,
    };
    let free = plan(workflow, &PlanOptions::default()).makespan_estimate;
    (
        chosen.market,
        run_trials(workflow, &chosen, &interruptions, &options, 200.0 * free),
    )
}

fn mean_cost(outcomes: &[TrialOutcome]) -> f64 {
    outcomes.iter().map(|o| o.cost).sum::<f64>() / outcomes.len() as f64
}

struct Measured {
    auto: f64,
    spot: f64,
    on_demand: f64,
    chose: Market,
    met_deadline: f64,
}

fn measure(workflow: &Workflow, mtti_h: f64, deadline: Option<f64>) -> Measured {
    let (chose, auto) = trials(&variant(workflow, mtti_h, MarketChoice::Auto, deadline));
    let (_, spot) = trials(&variant(
        workflow,
        mtti_h,
        MarketChoice::Fixed(Market::Spot),
        deadline,
    ));
    let (_, on_demand) = trials(&variant(
        workflow,
        mtti_h,
        MarketChoice::Fixed(Market::OnDemand),
        deadline,
    ));
    let met_deadline = match deadline {
        Some(d) => {
            auto.iter()
                .filter(|o| !o.censored && o.makespan <= d)
                .count() as f64
                / auto.len() as f64
        }
        None => 1.0,
    };
    Measured {
        auto: mean_cost(&auto),
        spot: mean_cost(&spot),
        on_demand: mean_cost(&on_demand),
        chose,
        met_deadline,
    }
}

const WORKFLOWS: [&str; 3] = ["spark-chain", "ecommerce-sessions", "wide-dag"];

#[test]
fn auto_costs_within_3_percent_of_the_cheaper_fixed_market() {
    for name in WORKFLOWS {
        let workflow = load(name);
        for mtti_h in [1.0, 2.0, 5.0, 10.0, 100.0, 1000.0] {
            let m = measure(&workflow, mtti_h, None);
            let cheaper = m.spot.min(m.on_demand);
            assert!(
                m.auto <= 1.03 * cheaper,
                "{name} at mtti {mtti_h}h: auto ({:?}) costs {:.2}, spot {:.2}, on-demand {:.2}",
                m.chose,
                m.auto,
                m.spot,
                m.on_demand
            );
        }
    }
}

#[test]
fn auto_meets_a_tight_deadline_in_99_percent_of_runs() {
    for name in WORKFLOWS {
        let workflow = load(name);
        let free = plan(
            &variant(&workflow, 1.0, MarketChoice::Fixed(Market::OnDemand), None),
            &PlanOptions::default(),
        )
        .makespan_estimate;
        for (mtti_h, factor) in [(1.0, 1.3), (2.0, 1.5), (10.0, 1.2), (100.0, 1.1)] {
            let deadline = factor * free;
            let m = measure(&workflow, mtti_h, Some(deadline));
            assert!(
                m.met_deadline >= 0.99,
                "{name} at mtti {mtti_h}h, deadline {deadline:.0}s: auto ({:?}) met it in {:.1}% of runs",
                m.chose,
                m.met_deadline * 100.0
            );
            let cheaper = m.spot.min(m.on_demand);
            // Against a deadline, spot's cheaper mean may be one it reaches by missing it:
            // auto must still not cost more than on-demand.
            assert!(
                m.auto <= 1.03 * m.on_demand.max(cheaper),
                "{name} at mtti {mtti_h}h with deadline: auto {:.2}, on-demand {:.2}",
                m.auto,
                m.on_demand
            );
        }
    }
}

#[test]
fn auto_keeps_80_percent_of_the_spot_discount_at_mtti_10h_and_more() {
    for name in WORKFLOWS {
        let workflow = load(name);
        // The discount: on-demand's cost against the same work on spot with no interruption.
        let never = variant(&workflow, 1e9, MarketChoice::Fixed(Market::Spot), None);
        let (_, free) = trials(&never);
        for mtti_h in [10.0, 100.0, 1000.0] {
            let m = measure(&workflow, mtti_h, None);
            let discount = m.on_demand - mean_cost(&free);
            let kept = (m.on_demand - m.auto) / discount;
            assert!(
                kept >= 0.8,
                "{name} at mtti {mtti_h}h: auto ({:?}) kept {:.0}% of the spot discount ({:.2} of {:.2})",
                m.chose,
                kept * 100.0,
                m.on_demand - m.auto,
                discount
            );
        }
    }
}

#[test]
fn a_deadline_no_market_can_meet_is_said_so_and_on_demand_the_fastest_is_chosen() {
    let workflow = variant(
        &load("ecommerce-sessions"),
        2.0,
        MarketChoice::Auto,
        Some(1.0),
    );
    let plan = chosen_plan(&workflow, &PlanOptions::default());
    let decision = &plan.auto_market.as_ref().unwrap().decision;
    assert_eq!(decision.market, Market::OnDemand);
    assert!(
        decision
            .reason
            .starts_with("no market meets the deadline 1s"),
        "{}",
        decision.reason
    );
}
