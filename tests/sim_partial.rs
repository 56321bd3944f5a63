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
        capacity: None,
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

/// A capacity trace of two nodes, a count a minute: a one-node drop after 6 h, the cluster
/// gone at 9 h for an hour with nothing to be had, then back for 2 h, repeating.
const CAPACITY: &str = r#"{"metadata": {"gap_seconds": 60}, "data": [CONTENT]}"#;

fn capacity_trace() -> String {
    let mut counts = vec![2; 360];
    counts.extend(vec![1; 180]);
    counts.extend(vec![0; 60]);
    counts.extend(vec![2; 120]);
    let text: Vec<String> = counts.iter().map(u32::to_string).collect();
    CAPACITY.replace("CONTENT", &text.join(","))
}

#[test]
fn simulate_reads_a_capacity_trace_in_the_public_format_and_plays_its_drops_and_spells() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hours.yaml");
    std::fs::write(&file, WORKFLOW).unwrap();
    let trace = dir.path().join("capacity.json");
    std::fs::write(&trace, capacity_trace()).unwrap();
    let (file, trace) = (file.display().to_string(), trace.display().to_string());
    let run = support::respawn([
        "simulate",
        &file,
        "--trace",
        &trace,
        "--trials",
        "300",
        "--format",
        "json",
        "--no-history",
    ]);
    run.success();
    let report = run.json();
    let none = report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "none")
        .unwrap()
        .clone();
    // Every twelve hours of trace the cluster is lost once and waits an hour for capacity:
    // the 4-hour run on spot meets a loss in some trials and never ends sooner.
    let interruptions = none["mean_interruptions"].as_f64().unwrap();
    assert!(interruptions > 0.1 && interruptions < 3.0, "{none}");
    assert_eq!(none["censored_trials"], 0, "{none}");
    assert!(none["mean_lost_work_s"].as_f64().unwrap() > 0.0);
    assert!(none["mean_makespan_s"].as_f64().unwrap() > report["lower_bound_s"].as_f64().unwrap());
    assert!(
        report["mtti_source"]
            .as_str()
            .unwrap()
            .starts_with("trace ")
    );

    // A malformed trace is exit 2 naming the file and the position.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"metadata": {"gap_seconds": 60}, "data": [2, 1, -3]}"#,
    )
    .unwrap();
    let run = support::respawn(["simulate", &file, "--trace", &bad.display().to_string()]);
    run.invalid_input();
    assert!(
        run.stderr.contains("bad.json") && run.stderr.contains("`data[2]` is -3"),
        "{}",
        run.stderr
    );
}
