//! The simulator plays notices as the engine handles them: with a two-minute warning
//! before each loss, hour-long stages and ten-minute provisioning, less work is lost and
//! runs end sooner than without, on exponential losses and on a public trace's replayed
//! times alike; and `respawn simulate --notice` reports what it played.

mod support;

use respawn_core::plan::{PlanOptions, plan};
use respawn_core::sim::{Interruptions, SimOptions, TrialOutcome, run_trials};
use respawn_core::workflow::{self, CheckpointPolicy, Market, Workflow};
use std::time::Duration;

/// A chain of four hour-long stages beside a two-hour branch, 6 GB work-tables (a minute
/// to write at 100 MB/s), nothing checkpointed but the finals.
const WORKFLOW: &str = "name: hours
cluster:
  provider: local
  market: spot
  mtti: 2h
  provision_time: 10m
  slots: 2
checkpoint:
  policy: none
  write_throughput: 100MB/s
stages:
  a: {run: 'true', estimate: 1h, output_size: 6GB}
  b: {run: 'true', needs: [a], estimate: 1h, output_size: 6GB}
  c: {run: 'true', needs: [b], estimate: 1h, output_size: 6GB}
  d: {run: 'true', needs: [c], estimate: 1h, output_size: 6GB}
  side: {run: 'true', needs: [a], estimate: 2h, output_size: 6GB}
  end: {run: 'true', needs: [d, side], estimate: 1h, output_size: 6GB}
";

fn load(notice: Option<Duration>) -> (tempfile::TempDir, Workflow) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hours.yaml");
    std::fs::write(&file, WORKFLOW).unwrap();
    let mut workflow = workflow::load(&file).unwrap_or_else(|d| panic!("{d}"));
    workflow.cluster.notice = notice;
    (dir, workflow)
}

fn trials(notice: Option<Duration>, interruptions: &Interruptions) -> Vec<TrialOutcome> {
    let (_dir, workflow) = load(notice);
    let plan = plan(
        &workflow,
        &PlanOptions {
            mtti: None,
            policy: Some(CheckpointPolicy::None),
            market: Some(Market::Spot),
        },
    );
    let options = SimOptions {
        trials: 2000,
        seed: 11,
        mtti: None,
        traces: None,
        threads: 2,
        partial: 0.0,
        capacity: None,
    };
    run_trials(&workflow, &plan, interruptions, &options, 1e7)
}

fn mean(outcomes: &[TrialOutcome], f: fn(&TrialOutcome) -> f64) -> f64 {
    outcomes.iter().map(f).sum::<f64>() / outcomes.len() as f64
}

#[test]
fn a_two_minute_notice_loses_less_work_and_ends_sooner() {
    let trace: Vec<f64> = (1..200)
        .map(|k| k as f64 * 5400.0 + (k % 7) as f64 * 600.0)
        .collect();
    for interruptions in [
        Interruptions::Exponential { mtti: 7200.0 },
        Interruptions::Traces(vec![trace]),
    ] {
        let without = trials(None, &interruptions);
        let with = trials(Some(Duration::from_secs(120)), &interruptions);
        let (lost_with, lost_without) = (
            mean(&with, |o| o.lost_work),
            mean(&without, |o| o.lost_work),
        );
        let (span_with, span_without) =
            (mean(&with, |o| o.makespan), mean(&without, |o| o.makespan));
        assert!(
            lost_with < 0.8 * lost_without,
            "{interruptions:?}: lost work {lost_with:.0}s with notice, {lost_without:.0}s without"
        );
        assert!(
            span_with < span_without,
            "{interruptions:?}: makespan {span_with:.0}s with notice, {span_without:.0}s without"
        );
        assert!(with.iter().all(|o| !o.censored));
    }
}

#[test]
fn simulate_reports_the_notice_it_played_and_the_work_lost() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hours.yaml");
    std::fs::write(&file, WORKFLOW).unwrap();
    let file = file.display().to_string();
    let run = |notice: &str| {
        let run = support::respawn([
            "simulate", &file, "--trials", "400", "--notice", notice, "--format", "json",
        ]);
        run.success();
        run.json()
    };
    let with = run("2m");
    assert_eq!(with["notice_s"], 120.0);
    let without = run("0s");
    assert!(without["notice_s"].is_null(), "{without}");
    let lost = |report: &serde_json::Value| {
        report["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "none")
            .unwrap()["mean_lost_work_s"]
            .as_f64()
            .unwrap()
    };
    assert!(lost(&with) < lost(&without), "{with}\n{without}");
    let text = support::respawn(["simulate", &file, "--trials", "50", "--notice", "2m"]);
    text.success();
    assert!(
        text.stdout.contains("each announced 2m ahead"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("lost work"), "{}", text.stdout);
}
