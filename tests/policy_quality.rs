//! The planner's `auto` placement measured in the simulator: near the chain optimum on
//! chains, and never clearly worse than the simple policies on the example workflows.

use respawn_core::plan::PlanOptions;
use respawn_core::planner::simulate;
use respawn_core::sim::SimOptions;
use respawn_core::workflow::{self, Workflow};
use std::path::Path;
use std::time::Duration;

const HOUR: u64 = 3600;

fn load(path: &str) -> Workflow {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    workflow::load(&path).unwrap_or_else(|d| panic!("{d}"))
}

fn options(trials: u32, mtti: Duration) -> SimOptions {
    SimOptions {
        trials,
        seed: 20261121,
        mtti: Some(mtti),
        traces: None,
        threads: 2,
        partial: 0.0,
        capacity: None,
    }
}

fn mean_of(report: &respawn_core::planner::SimReport, name: &str) -> f64 {
    report
        .policies
        .iter()
        .find(|p| p.name == name)
        .unwrap()
        .mean_makespan
}

const MTTIS: [u64; 5] = [HOUR / 2, 2 * HOUR, 10 * HOUR, 100 * HOUR, 1000 * HOUR];

fn assert_auto_near_chain_optimum(workflow: &Workflow) {
    for mtti in MTTIS {
        let mtti = Duration::from_secs(mtti);
        let report = simulate(workflow, &options(3000, mtti));
        let auto = mean_of(&report, "auto");
        let optimum = report.chain_optimum;
        let ratio = auto / optimum;
        // The engine uploads a checkpoint while the next stage already runs; the dynamic
        // program charges every write in full. So auto may beat the chain optimum (by 7%
        // on the uniform chain at MTTI 2h), and must never trail it by more than 5%.
        assert!(
            ratio <= 1.05,
            "{} at mtti {:?}: auto {auto:.0}s vs chain optimum {optimum:.0}s (ratio {ratio:.3})",
            workflow.name,
            mtti
        );
        let censored: u32 = report
            .policies
            .iter()
            .filter(|p| p.name == "auto")
            .map(|p| p.censored_trials)
            .sum();
        assert_eq!(censored, 0);
    }
}

#[test]
fn auto_is_never_five_percent_slower_than_the_chain_optimum_on_the_spark_chain() {
    assert_auto_near_chain_optimum(&load("workflows/spark-chain.yaml"));
}

#[test]
fn auto_is_never_five_percent_slower_than_the_chain_optimum_on_a_uniform_chain() {
    let stages: String = (0..12)
        .map(|i| {
            let needs = if i == 0 {
                String::new()
            } else {
                format!("    needs: [s{}]\n", i - 1)
            };
            format!("  s{i}:\n{needs}    run: \"true\"\n    estimate: 45m\n    output_size: 30GB\n")
        })
        .collect();
    let text = format!(
        "name: uniform-chain\ncluster: {{ slots: 1, provision_time: 5m }}\ncheckpoint: {{ write_throughput: 100MB/s }}\nstages:\n{stages}"
    );
    let workflow = workflow::parse("uniform-chain.yaml", &text).unwrap_or_else(|d| panic!("{d}"));
    assert_auto_near_chain_optimum(&workflow);
}

#[test]
fn auto_is_never_more_than_two_percent_slower_than_the_best_fixed_policy_on_every_example() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3);
    let mut failures = Vec::new();
    for file in files {
        let workflow = workflow::load(&file).unwrap_or_else(|d| panic!("{d}"));
        for mtti in [HOUR / 2, 2 * HOUR, 10 * HOUR, 100 * HOUR] {
            let report = simulate(&workflow, &options(2000, Duration::from_secs(mtti)));
            let auto = mean_of(&report, "auto");
            let best = ["none", "all", "interval"]
                .iter()
                .map(|name| mean_of(&report, name))
                .fold(f64::INFINITY, f64::min);
            if auto > best * 1.02 {
                failures.push(format!(
                    "{} at mtti {}h: auto {auto:.0}s > best fixed policy {best:.0}s + 2%",
                    file.display(),
                    mtti as f64 / HOUR as f64
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn same_seed_same_numbers_different_seed_different_numbers() {
    let workflow = load("workflows/wide-dag.yaml");
    let a = simulate(&workflow, &options(500, Duration::from_secs(2 * HOUR)));
    let b = simulate(&workflow, &options(500, Duration::from_secs(2 * HOUR)));
    assert_eq!(a, b);
    let mut other = options(500, Duration::from_secs(2 * HOUR));
    other.seed += 1;
    other.threads = 1;
    let c = simulate(&workflow, &other);
    assert_ne!(mean_of(&a, "auto"), mean_of(&c, "auto"));
    // The number of threads never changes the numbers.
    let mut single = options(500, Duration::from_secs(2 * HOUR));
    single.threads = 1;
    assert_eq!(a, simulate(&workflow, &single));
}

#[test]
fn without_interruptions_every_policy_meets_the_lower_bound_and_on_demand_costs_more() {
    let workflow = load("workflows/ecommerce-sessions.yaml");
    let report = simulate(
        &workflow,
        &options(200, Duration::from_secs(1_000_000 * HOUR)),
    );
    let none = mean_of(&report, "none");
    assert!((none - report.lower_bound).abs() < 1.0);
    for policy in &report.policies {
        assert!(
            policy.mean_makespan + 1e-6 >= report.lower_bound,
            "{}",
            policy.name
        );
    }
    let spot_cost = report
        .policies
        .iter()
        .find(|p| p.name == "none")
        .unwrap()
        .mean_cost;
    let on_demand_cost = report
        .policies
        .iter()
        .find(|p| p.name == "on-demand")
        .unwrap()
        .mean_cost;
    assert!(on_demand_cost > spot_cost);
}

#[test]
fn the_plan_the_simulator_runs_is_the_plan_command_shows() {
    let workflow = load("workflows/wide-dag.yaml");
    let shown = respawn_core::planner::chosen_plan(&workflow, &PlanOptions::default());
    let simulated = respawn_core::planner::policy_plans(&workflow, None);
    let auto = &simulated
        .iter()
        .find(|(name, _)| *name == "auto")
        .unwrap()
        .1;
    assert_eq!(&shown, auto);
}
