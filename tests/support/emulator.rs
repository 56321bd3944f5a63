//! What tests ask of the EMR emulator: a lab (a workspace on the S3 test server beside an
//! emulator on the same server), spot clusters lost while a stage's step runs (as AWS
//! reclaims them), how many steps of a stage ran, and that every cluster ended.

use super::s3_server::{BUCKET, S3Server};
use super::workspace::Workspace;
use super::{Run, respawn_env};
use respawn_emr_emulator::{EmrEmulator, EmulatorConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The workflow `shop-emr.yaml` in a [`Workspace`] whose store is `s3://BUCKET/team` on
/// the S3 test server, and an EMR emulator whose clusters use that server.
pub struct Lab {
    pub ws: Workspace,
    pub emr: EmrEmulator,
    /// The workflow file, as an argument.
    pub file: String,
}

impl Lab {
    /// Starts the lab: the files of `code` that `keep` accepts are the bucket's `code/`
    /// (the stage programs the workflow names), and `configure` adjusts the emulator.
    pub fn start(
        text: &str,
        code: &Path,
        keep: fn(&Path) -> bool,
        configure: impl FnOnce(&mut EmulatorConfig),
    ) -> Lab {
        let ws = Workspace::on("shop-emr", text, true);
        let s3 = ws.s3.as_ref().expect("the lab's store is on S3");
        let bucket_code = s3.root().join(BUCKET).join("code");
        std::fs::create_dir_all(&bucket_code).unwrap();
        for entry in std::fs::read_dir(code).unwrap() {
            let path = entry.unwrap().path();
            if keep(&path) {
                std::fs::copy(&path, bucket_code.join(path.file_name().unwrap())).unwrap();
            }
        }
        let mut config = EmulatorConfig::new(s3.endpoint(), ws.path("emr"));
        config.start_delay = Duration::from_millis(300);
        configure(&mut config);
        let emr = EmrEmulator::start(config).expect("the EMR emulator starts");
        let file = ws.file_arg();
        Lab { ws, emr, file }
    }

    pub fn s3(&self) -> &S3Server {
        self.ws.s3.as_ref().expect("the lab's store is on S3")
    }

    /// The workspace's environment, with EMR's and SQS's endpoints on the emulator and a
    /// quick poll of EMR.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.ws.env();
        env.push(("AWS_ENDPOINT_URL_EMR", self.emr.endpoint().to_string()));
        env.push(("AWS_ENDPOINT_URL_SQS", self.emr.endpoint().to_string()));
        env.push(("RESPAWN_EMR_POLL", "150ms".into()));
        env
    }

    /// `respawn ARGS... --store STORE` in the lab's environment.
    pub fn respawn(&self, args: &[&str]) -> Run {
        respawn_env(self.ws.args(args), &self.env(), &[])
    }

    /// `respawn run FILE --batch BATCH --store STORE` in the lab's environment, to start.
    pub fn run_command(&self, batch: &str) -> Command {
        let mut command = super::command();
        command.args(self.ws.args(&["run", &self.file, "--batch", batch]));
        for (name, value) in self.env() {
            command.env(name, value);
        }
        command
    }

    pub fn store_root(&self) -> PathBuf {
        self.ws.store_root()
    }

    pub fn steps_of(&self, stage: &str) -> usize {
        steps_of(&self.emr, stage)
    }

    pub fn assert_every_cluster_terminated(&self) {
        assert_every_cluster_terminated(&self.emr);
    }
}

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
