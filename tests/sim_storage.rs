//! The simulator prices what `respawn cost` prices: a trial's cost is its clusters plus
//! checkpoint storage at `cost.storage_per_gb_month`, so `simulate` and the market choice
//! weigh the same bill the run gets.

use respawn_core::plan::prices::{cluster_rate, storage_rate};
use respawn_core::plan::{PlanOptions, plan};
use respawn_core::sim::{Interruptions, SimOptions, run_trials};
use respawn_core::workflow::{CheckpointPolicy, Market, parse};

/// Storage at 730 per GB-month is 1 per GB-hour: a 10 GB checkpoint kept an hour costs 10.
const WORKFLOW: &str = "name: stored
cluster: {provider: local, market: on-demand, slots: 1}
checkpoint: {policy: all, write_throughput: 1GB/s}
cost: {spot_per_hour: 1.0, on_demand_per_hour: 2.0, storage_per_gb_month: 730}
stages:
  a: {run: 'true', estimate: 1h, output_size: 10GB}
  b: {run: 'true', needs: [a], estimate: 1h, output_size: 1KB}
";

#[test]
fn a_trial_costs_its_clusters_plus_its_checkpoints_storage() {
    let workflow = parse("stored.yaml", WORKFLOW).unwrap_or_else(|d| panic!("{d}"));
    let plan = plan(
        &workflow,
        &PlanOptions {
            mtti: None,
            policy: Some(CheckpointPolicy::All),
            market: Some(Market::OnDemand),
        },
    );
    let options = SimOptions {
        trials: 1,
        seed: 1,
        mtti: None,
        traces: None,
        threads: 1,
        partial: 0.0,
        capacity: None,
    };
    let trial = run_trials(&workflow, &plan, &Interruptions::Never, &options, 1e7)[0];
    let clusters = trial.makespan / 3600.0 * cluster_rate(&workflow, Market::OnDemand).per_hour;
    let storage = trial.checkpoint_gb_hours * storage_rate(&workflow.cost).per_hour;
    assert!(
        trial.checkpoint_gb_hours > 9.0,
        "`a` is kept about an hour: {trial:?}"
    );
    assert!(
        (trial.cost - (clusters + storage)).abs() < 1e-9,
        "cost {} is clusters {clusters} + storage {storage}",
        trial.cost
    );
}
