//! Spot clusters of the EMR emulator lost while a stage's step runs, as AWS reclaims them.

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
