//! The saving `respawn cost` reports for a chaos run of the e-commerce workflow, against
//! what the simulator expects for the same workflow at the same MTTI: the run's saving must
//! lie within the spread of the simulated trials' savings. The workflow's estimates and
//! sizes are set to what its stages measure here (from a run without chaos), so that the
//! simulator and the real run describe the same work.

mod support;

use respawn_core::plan::{PlanOptions, plan};
use respawn_core::sim::{Interruptions, SimOptions, run_trials};
use respawn_core::workflow::Market;
use std::path::Path;
use support::{respawn, small_ecommerce};

const STAGES: [(&str, &str); 4] = [
    ("ingest", "1h30m"),
    ("purchases", "1h"),
    ("sessions", "2h30m"),
    ("report", "15m"),
];
/// The chaos rate, and the MTTI the workflow plans for.
const MTTI_MS: u64 = 1500;
const PROVISION_MS: u64 = 300;

fn run(dir: &Path, file: &Path, batch: &str, chaos: Option<&str>) -> serde_json::Value {
    let store = dir.join("store");
    let mut args = vec![
        "run".to_string(),
        file.display().to_string(),
        "--batch".into(),
        batch.into(),
        "--store".into(),
        store.display().to_string(),
        "--scratch".into(),
        dir.join("scratch").display().to_string(),
    ];
    if let Some(chaos) = chaos {
        args.extend(["--chaos".into(), chaos.into()]);
    }
    let run = respawn(&args);
    run.success();
    println!("{}", run.stdout.lines().last().unwrap_or_default());
    let cost = respawn([
        "cost",
        "ecommerce-sessions",
        "--batch",
        batch,
        "--format",
        "json",
        "--store",
        &store.display().to_string(),
    ]);
    cost.success();
    cost.json()
}

/// Each stage's successful attempt's duration in a run's events, in milliseconds.
fn measured(dir: &Path) -> Vec<(String, u64)> {
    let runs = dir.join("store/ecommerce-sessions/runs");
    let run = std::fs::read_dir(runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut started = std::collections::BTreeMap::new();
    let mut took = Vec::new();
    let mut events: Vec<_> = std::fs::read_dir(run.join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    events.sort();
    for path in events {
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let stage = event["stage"].as_str().unwrap_or_default().to_string();
        let at = event["elapsed_s"].as_f64().unwrap();
        match event["event"].as_str().unwrap() {
            "launch" => {
                started.insert(stage, at);
            }
            "exit" => took.push((
                stage.clone(),
                ((at - started[&stage]) * 1000.0).ceil() as u64,
            )),
            _ => {}
        }
    }
    took
}

#[test]
fn a_chaos_runs_saving_lies_within_the_simulators_spread_for_the_same_mtti() {
    let dir = tempfile::tempdir().unwrap();
    let base = small_ecommerce(&[
        ("mtti: 2h", &format!("mtti: {MTTI_MS}ms")),
        (
            "provision_time: 1s",
            &format!("provision_time: {PROVISION_MS}ms"),
        ),
    ]);
    let calm = dir.path().join("calm.yaml");
    std::fs::write(&calm, &base).unwrap();
    run(dir.path(), &calm, "calm", None);
    let durations = measured(dir.path());
    // The same workflow, with what its stages measure as estimates and sizes of a few
    // kilobytes (what they write here): the simulator sees the work the run does.
    let mut text = base.clone();
    for (stage, estimate) in STAGES {
        let ms = durations.iter().find(|(s, _)| s == stage).unwrap().1;
        text = text.replace(
            &format!("estimate: {estimate}\n"),
            &format!("estimate: {ms}ms\n"),
        );
    }
    for size in ["60GB", "3GB", "1GB", "10MB"] {
        text = text.replace(&format!("output_size: {size}"), "output_size: 1MB");
    }
    let file = dir.path().join("ecommerce.yaml");
    std::fs::write(&file, &text).unwrap();
    let workflow = respawn_core::workflow::load(&file).unwrap();

    let mut savings = Vec::new();
    for seed in [1, 2, 3] {
        let cost = run(
            dir.path(),
            &file,
            &format!("chaos-{seed}"),
            Some(&format!(
                "mtti={MTTI_MS}ms,seed={seed},provision={PROVISION_MS}ms"
            )),
        );
        savings.push(cost["saving_percent"].as_f64().unwrap());
    }
    let run_mean = savings.iter().sum::<f64>() / savings.len() as f64;

    let mtti = MTTI_MS as f64 / 1000.0;
    let options = SimOptions {
        trials: 4000,
        seed: 11,
        mtti: None,
        traces: None,
        threads: 2,
        partial: 0.0,
        capacity: None,
    };
    let spot_plan = plan(&workflow, &PlanOptions::default());
    let on_demand_plan = plan(
        &workflow,
        &PlanOptions {
            market: Some(Market::OnDemand),
            ..PlanOptions::default()
        },
    );
    let on_demand = run_trials(
        &workflow,
        &on_demand_plan,
        &Interruptions::Never,
        &options,
        1e6,
    )[0]
    .cost;
    let simulated: Vec<f64> = run_trials(
        &workflow,
        &spot_plan,
        &Interruptions::Exponential { mtti },
        &options,
        1e6,
    )
    .iter()
    .map(|t| (1.0 - t.cost / on_demand) * 100.0)
    .collect();
    let mean = simulated.iter().sum::<f64>() / simulated.len() as f64;
    let sd = (simulated.iter().map(|s| (s - mean).powi(2)).sum::<f64>()
        / (simulated.len() - 1) as f64)
        .sqrt();
    // The mean of three runs has a third of one trial's variance; three standard errors
    // (a run as the simulator models it falls outside 0.3% of the time).
    let spread = 3.0 * sd / 3f64.sqrt();
    println!(
        "saving of the chaos runs: {savings:.1?} %, mean {run_mean:.1} %; simulator at MTTI {mtti} s: \
         mean {mean:.1} %, sd {sd:.1} (trials {}), mean of three within {mean:.1} ± {spread:.1}",
        simulated.len()
    );
    assert!(
        (run_mean - mean).abs() <= spread,
        "the runs' mean saving {run_mean:.1} % is outside the simulator's {mean:.1} ± {spread:.1} %"
    );
}
