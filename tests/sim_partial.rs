//! The simulator plays partial losses with the machine's own `AttemptsLost`, as a run
//! does: with every loss taking one node, no cluster is lost, nothing falls back, and less
//! work is lost than when each loss takes the whole cluster; `respawn simulate --partial`
//! reads the share and refuses one outside 0 to 1.

mod support;

use respawn_core::plan::{PlanOptions, plan};
use respawn_core::sim::{Interruptions, SimOptions, TrialOutcome, run_trials};
use respawn_core::workflow::{self, CheckpointPolicy, Market};

/// A chain of hour-long stages beside a two-hour branch on two slots, nothing
/// checkpointed but the final.
const WORKFLOW: &str = "name: hours
cluster: {provider: local, market: spot, mtti: 2h, provision_time: 10m, slots: 2}
checkpoint: {policy: none, write_throughput: 100MB/s}
stages:
  a: {run: 'true', estimate: 1h, output_size: 6GB}
  b: {run: 'true', needs: [a], estimate: 1h, output_size: 6GB}
  c: {run: 'true', needs: [b], estimate: 1h, output_size: 6GB}
  side: {run: 'true', needs: [a], estimate: 2h, output_size: 6GB}
  end: {run: 'true', needs: [c, side], estimate: 1h, output_size: 6GB}
";

fn trials(partial: f64) -> Vec<TrialOutcome> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hours.yaml");
    std::fs::write(&file, WORKFLOW).unwrap();
    let workflow = workflow::load(&file).unwrap_or_else(|d| panic!("{d}"));
    let options = PlanOptions {
        mtti: None,
        policy: Some(CheckpointPolicy::None),
        market: Some(Market::Spot),
    };
    let plan = plan(&workflow, &options);
    let options = SimOptions {
        trials: 2000,
        seed: 5,
        mtti: None,
        traces: None,
        threads: 2,
        partial,
    };
    let interruptions = Interruptions::Exponential { mtti: 7200.0 };
    run_trials(&workflow, &plan, &interruptions, &options, 1e7)
}

fn mean(outcomes: &[TrialOutcome], f: fn(&TrialOutcome) -> f64) -> f64 {
    outcomes.iter().map(f).sum::<f64>() / outcomes.len() as f64
}

#[test]
fn one_node_losses_lose_less_work_than_whole_cluster_losses_and_no_cluster() {
    let whole = trials(0.0);
    let nodes = trials(1.0);
    let half = trials(0.5);
    assert!(
        nodes
            .iter()
            .all(|t| t.interruptions == 0 && !t.fell_back && !t.censored)
    );
    let lost = |o: &[TrialOutcome]| mean(o, |t| t.lost_work);
    let makespan = |o: &[TrialOutcome]| mean(o, |t| t.makespan);
    assert!(lost(&nodes) > 0.0, "nodes were lost with attempts on them");
    assert!(
        lost(&nodes) < lost(&half) && lost(&half) < lost(&whole),
        "lost work: {} < {} < {}",
        lost(&nodes),
        lost(&half),
        lost(&whole)
    );
    assert!(makespan(&nodes) < makespan(&whole));
    // The longest path is four hours of stages: nothing ends sooner.
    assert!(nodes.iter().all(|t| t.makespan >= 4.0 * 3600.0 - 1e-6));
}

#[test]
fn simulate_reads_the_partial_share_and_refuses_one_outside_0_to_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hours.yaml");
    std::fs::write(&file, WORKFLOW).unwrap();
    let file = file.display().to_string();
    let run = |share: &str| {
        support::respawn([
            "simulate",
            &file,
            "--partial",
            share,
            "--trials",
            "200",
            "--format",
            "json",
            "--no-history",
        ])
    };
    let all = run("1");
    all.success();
    let report = all.json();
    for policy in report["policies"].as_array().unwrap() {
        if policy["name"] != "on-demand" {
            assert_eq!(policy["mean_interruptions"], 0.0, "{policy}");
        }
    }
    let bad = run("1.5");
    bad.invalid_input();
    assert!(
        bad.stderr.contains("`1.5` is not a share from 0 to 1"),
        "{}",
        bad.stderr
    );
}
