//! Partial losses on local clusters (`--chaos ...,partial=`): a loss that takes one node
//! interrupts only the attempt on it, never charges `retries`, and the cluster works on;
//! the outputs are byte for byte those of a run without faults.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use support::{respawn, small_ecommerce};

/// The small e-commerce workflow with no retries at all and each stage a second longer
/// (so that a node lost can hold an attempt).
fn workflow(dir: &Path) -> String {
    let text = small_ecommerce(&[
        ("retries: 2", "retries: 0"),
        ("    run: python3", "    run: sleep 1; python3"),
    ]);
    let file = dir.join("ecommerce.yaml");
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

/// Runs the batch into `store` and returns its events.
fn run(dir: &Path, store: &str, chaos: Option<&str>) -> Vec<Value> {
    let file = workflow(dir);
    let scratch = dir.join("scratch").display().to_string();
    let mut args = vec!["run", &file, "--batch", "2019-10-01", "--store", store];
    args.extend(["--scratch", &scratch, "--format", "json"]);
    if let Some(chaos) = chaos {
        args.extend(["--chaos", chaos]);
    }
    let run = respawn(&args);
    run.success();
    run.events()
}

fn outputs(store: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut objects = BTreeMap::new();
    support::walk(store, store, &mut objects);
    support::published(objects, "ecommerce-sessions")
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn one_node_losses_interrupt_only_their_attempts_and_charge_no_retries() {
    let reference = tempfile::tempdir().unwrap();
    let store = reference.path().join("store");
    run(reference.path(), &store.display().to_string(), None);
    let want = outputs(&store);
    assert!(!want.is_empty());

    let mut interrupted_somewhere = false;
    for seed in [1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let chaos = format!("mtti=700ms,seed={seed},partial=1,provision=0s");
        let events = run(dir.path(), &store.display().to_string(), Some(&chaos));
        assert_eq!(
            outputs(&store),
            want,
            "seed {seed}: the outputs of a run without faults"
        );
        assert!(
            of(&events, "cluster-lost").is_empty(),
            "partial=1 never takes the cluster"
        );
        let lost = of(&events, "capacity-lost");
        assert!(
            !lost.is_empty(),
            "seed {seed}: chaos took no node, nothing was tested"
        );
        for event in &lost {
            assert_eq!(
                (event["nodes"].as_u64(), event["remaining"].as_u64()),
                (Some(1), Some(1))
            );
        }
        // Each interrupted attempt was on the one cluster, ran again, and no exit failed.
        let interrupted = of(&events, "interrupted");
        interrupted_somewhere |= !interrupted.is_empty();
        assert!(interrupted.len() <= lost.len());
        assert!(
            of(&events, "exit").iter().all(|e| e["code"] == 0),
            "{events:?}"
        );
        for event in &interrupted {
            let (stage, attempt) = (&event["stage"], event["attempt"].as_u64().unwrap());
            assert!(
                of(&events, "exit")
                    .iter()
                    .any(|e| &e["stage"] == stage && e["attempt"].as_u64() > Some(attempt)),
                "{stage} ran again after attempt {attempt}"
            );
        }
        assert_eq!(
            of(&events, "cluster-ready").len(),
            1,
            "one cluster for the whole run"
        );
        let record = run_record(&store);
        for (stage, entry) in record["stages"].as_object().unwrap() {
            assert_eq!(entry["failures"], 0, "{stage}: nothing charged to retries");
        }
        let counted: u64 = record["stages"]
            .as_object()
            .unwrap()
            .values()
            .map(|s| s["interrupted"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(counted, interrupted.len() as u64);
        assert_eq!(record["interruptions"].as_array().unwrap().len(), 0);
    }
    assert!(
        interrupted_somewhere,
        "no node lost held an attempt in three seeds"
    );
}

#[test]
fn a_mix_of_node_and_cluster_losses_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    run(dir.path(), &reference.display().to_string(), None);
    let store = dir.path().join("store");
    let events = run(
        dir.path(),
        &store.display().to_string(),
        Some("mtti=800ms,seed=4,partial=0.5,provision=0s"),
    );
    assert_eq!(outputs(&store), outputs(&reference));
    assert!(!of(&events, "capacity-lost").is_empty() || !of(&events, "cluster-lost").is_empty());
    assert!(of(&events, "exit").iter().all(|e| e["code"] == 0));
}

fn run_record(store: &Path) -> Value {
    let runs = store.join("ecommerce-sessions/runs");
    let dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}
