//! What tests ask of the EMR emulator: spot clusters lost while a stage's step runs (as
//! AWS reclaims them), how many steps of a stage ran, and that every cluster ended.

use respawn_emr_emulator::EmrEmulator;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Calls `run` while a watcher, every `poll`, loses each spot cluster on which a step of
/// `stage` is RUNNING, until `count` clusters are lost or `run` returns. Returns what `run`
/// returned and the ids of the clusters lost, in order.
pub fn lose_spot_clusters_during<T>(
    emr: &EmrEmulator,
    stage: &str,
    count: usize,
    poll: Duration,
    run: impl FnOnce() -> T,
) -> (T, Vec<String>) {
    let done = AtomicBool::new(false);
    let step = format!(":{stage}:");
    std::thread::scope(|scope| {
        let loser = scope.spawn(|| {
            let mut lost: Vec<String> = Vec::new();
            while lost.len() < count && !done.load(Ordering::Relaxed) {
                for cluster in emr.clusters() {
                    let running = cluster
                        .steps
                        .iter()
                        .any(|(name, state)| name.contains(&step) && state == "RUNNING");
                    if cluster.spot
                        && running
                        && !lost.contains(&cluster.id)
                        && emr.lose_cluster(&cluster.id)
                    {
                        lost.push(cluster.id.clone());
                    }
                }
                std::thread::sleep(poll);
            }
            lost
        });
        let result = run();
        done.store(true, Ordering::Relaxed);
        let lost = loser.join().expect("the watcher ends");
        (result, lost)
    })
}

/// How many steps of `stage` ran, over every cluster.
pub fn steps_of(emr: &EmrEmulator, stage: &str) -> usize {
    let needle = format!(":{stage}:");
    emr.clusters()
        .iter()
        .flat_map(|c| c.steps.iter())
        .filter(|(name, _)| name.contains(&needle))
        .count()
}

/// Whether a step of `stage` is in `state` on some cluster.
pub fn step_in_state(emr: &EmrEmulator, stage: &str, state: &str) -> bool {
    let needle = format!(":{stage}:");
    emr.clusters()
        .iter()
        .flat_map(|c| c.steps.iter())
        .any(|(name, s)| name.contains(&needle) && s == state)
}

/// Every cluster the emulator started is terminated (or terminating).
pub fn assert_every_cluster_terminated(emr: &EmrEmulator) {
    for cluster in emr.clusters() {
        assert!(
            cluster.state.starts_with("TERMINAT"),
            "cluster {} is {}",
            cluster.id,
            cluster.state
        );
    }
}
