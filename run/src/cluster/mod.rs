//! Cluster providers: where stages run and ephemeral work-tables live.
//!
//! [`ClusterProvider`] and [`Cluster`] are the boundary the engine's driver works
//! through; nothing above this module knows which provider runs a workflow.
//!
//! - [`local`]: a scratch directory plus the process groups of the stages running in it.
//!   Losing a cluster kills every process group and deletes the scratch directory; a
//!   stage that ends while the scratch directory is gone was lost, not failed.
//! - [`emr`]: a transient EMR cluster per generation, stages as steps, checkpointed
//!   outputs written straight to the store's S3 prefix and ephemeral ones to HDFS.
//!
//! Both providers keep the run's logs and publishing staging under the run's local
//! scratch directory ([`LocalClusters`]).

mod agent;
pub mod emr;
pub mod local;
pub mod supervisor;
pub mod usage;
pub mod wire;

pub use emr::{EmrCluster, EmrClusters, ProvisionError};
pub use local::{LocalCluster, LocalClusters, StageCommand};
pub use usage::{InstanceUse, Usage};

use respawn_core::contract::event::NoticeKind;
use respawn_core::workflow::{Market, StageId};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How an attempt ended, as its cluster reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum StepEnd {
    Success,
    /// `detail` is what the cluster says of the failure (kept in the attempt's log).
    Failed {
        code: i32,
        detail: Option<String>,
    },
}

/// What a cluster's own end means for the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterEnd {
    /// Capacity or instances went away: an interruption.
    Lost,
    /// Someone terminated it on purpose: the run stops.
    Stopped,
    /// It cannot work as configured: the run fails.
    Broken,
}

/// What clusters report to the driver, from their own tasks.
#[derive(Debug)]
pub enum ClusterNews {
    Exited {
        generation: u32,
        stage: StageId,
        attempt: u32,
        end: StepEnd,
    },
    Ended {
        generation: u32,
        end: ClusterEnd,
        cause: String,
    },
    /// The provider warns that the cluster's (spot) instances will be reclaimed in `lead`.
    Notice {
        generation: u32,
        kind: NoticeKind,
        lead: Duration,
        /// The instances the warning names.
        instances: Vec<String>,
        /// Whether the cluster goes with them (they include its primary node, or all its
        /// core nodes); else only those nodes go and the cluster works on.
        whole: bool,
    },
    /// Instances of the cluster were reclaimed while an attempt ran (numbered over the
    /// run), and its step failed: the attempt was interrupted, not failed. Its `Exited`
    /// follows. `instances` are those not reported before; `remaining` are still running.
    NodesLost {
        generation: u32,
        stage: StageId,
        attempt: u32,
        instances: Vec<String>,
        remaining: u32,
    },
    /// Something the run's events should say (which subnets a cluster was asked in).
    Note { message: String },
}

pub type Notify = Arc<dyn Fn(ClusterNews) + Send + Sync>;

/// Where an attempt writes its work-table.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A local directory: persisting uploads it.
    Dir(PathBuf),
    /// The checkpoint's own place in the store: persisting only commits what is there.
    InStore(String),
    /// Somewhere on the cluster only (HDFS): lost with it.
    OnCluster(String),
}

impl Output {
    pub fn location(&self) -> String {
        match self {
            Output::Dir(path) => path.display().to_string(),
            Output::InStore(url) | Output::OnCluster(url) => url.clone(),
        }
    }
}

/// Makes the clusters of one run.
#[derive(Clone)]
pub enum ClusterProvider {
    Local(LocalClusters),
    Emr {
        emr: Arc<EmrClusters>,
        scratch: LocalClusters,
    },
}

impl ClusterProvider {
    /// The run's local scratch: logs and publishing staging.
    pub fn scratch(&self) -> &LocalClusters {
        match self {
            ClusterProvider::Local(scratch) | ClusterProvider::Emr { scratch, .. } => scratch,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ClusterProvider::Local(_) => "local",
            ClusterProvider::Emr { .. } => "emr",
        }
    }

    /// Local clusters are ready at once, so a new generation waits `provision_time` to
    /// behave like a real one; EMR takes its own time.
    pub fn simulates_provisioning(&self) -> bool {
        matches!(self, ClusterProvider::Local(_))
    }

    /// Clears what an earlier orchestrator of this run left: local processes are killed;
    /// a live EMR cluster is kept for adoption. Returns notes for the user.
    pub async fn prepare(&self) -> Result<Vec<String>, String> {
        let scratch = self.scratch().clone();
        let root = scratch.root().display().to_string();
        let killed = tokio::task::spawn_blocking(move || scratch.sweep())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot clear the scratch directory {root}: {e}"))?;
        let mut notes = Vec::new();
        if killed > 0 {
            notes.push(format!(
                "killed {killed} process(es) left by an earlier orchestrator of this run"
            ));
        }
        if let ClusterProvider::Emr { emr, .. } = self {
            notes.extend(emr.prepare().await.map_err(|e| e.to_string())?);
        }
        Ok(notes)
    }

    /// A new cluster (or the adopted one) for `generation`, once it is up.
    pub async fn create(
        &self,
        generation: u32,
        market: Market,
        notify: Notify,
    ) -> Result<Cluster, ProvisionError> {
        match self {
            ClusterProvider::Local(clusters) => {
                let clusters = clusters.clone();
                tokio::task::spawn_blocking(move || clusters.create(generation, market))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                    .map(Cluster::Local)
                    .map_err(|e| {
                        ProvisionError::Broken(format!("cannot create a local cluster: {e}"))
                    })
            }
            ClusterProvider::Emr { emr, .. } => emr
                .create(generation, market, notify)
                .await
                .map(Cluster::Emr),
        }
    }
}

/// One cluster of the run.
pub enum Cluster {
    Local(LocalCluster),
    Emr(EmrCluster),
}

impl Cluster {
    pub fn generation(&self) -> u32 {
        match self {
            Cluster::Local(c) => c.generation,
            Cluster::Emr(c) => c.generation,
        }
    }

    pub fn market(&self) -> Market {
        match self {
            Cluster::Local(c) => c.market,
            Cluster::Emr(c) => c.market,
        }
    }

    /// Its availability zone and subnet, where the provider told them (EMR).
    pub fn placement(&self) -> (Option<String>, Option<String>) {
        match self {
            Cluster::Local(_) => (None, None),
            Cluster::Emr(c) => (c.placement.zone.clone(), c.placement.subnet.clone()),
        }
    }

    /// The cluster, for messages: its scratch directory or its EMR id.
    pub fn describe(&self) -> String {
        match self {
            Cluster::Local(c) => c.dir().display().to_string(),
            Cluster::Emr(c) => c.id.clone(),
        }
    }

    /// For local clusters, whether the scratch directory is still there; EMR clusters
    /// report their end through their watcher.
    pub fn is_alive(&self) -> bool {
        match self {
            Cluster::Local(c) => c.is_alive(),
            Cluster::Emr(_) => true,
        }
    }

    /// Where attempt `attempt` of `stage` writes; `in_store` is the checkpoint's URL in
    /// the store when the stage is checkpointed.
    pub fn output(&self, stage: &str, attempt: u32, in_store: Option<String>) -> Output {
        match (self, in_store) {
            (Cluster::Local(c), _) => Output::Dir(c.output_dir(stage, attempt)),
            (Cluster::Emr(_), Some(url)) => Output::InStore(url),
            (Cluster::Emr(c), None) => Output::OnCluster(c.hdfs_output(stage, attempt)),
        }
    }

    /// How an ephemeral work-table on the cluster (`Output::OnCluster`) is saved to the
    /// store; `None` where there is none (a local cluster's tables are files).
    pub fn saver(&self) -> Option<emr::Saver> {
        match self {
            Cluster::Local(_) => None,
            Cluster::Emr(c) => Some(c.saver()),
        }
    }

    /// Where a checkpoint is restored to before its consumers run; `None` when the
    /// cluster reads it from the store directly.
    pub fn restore_dir(&self, stage: &str) -> Option<PathBuf> {
        match self {
            Cluster::Local(c) => Some(c.restored_dir(stage)),
            Cluster::Emr(_) => None,
        }
    }

    /// The attempt of a step of `stage` found on an adopted cluster.
    pub fn adopted_attempt(&self, stage: &str) -> Option<u32> {
        match self {
            Cluster::Local(_) => None,
            Cluster::Emr(c) => c.adopted_attempt(stage),
        }
    }

    /// Whether a step found on an adopted cluster is attempt `attempt` of `stage` running
    /// exactly `line`.
    pub fn adopted_runs(&self, stage: &str, attempt: u32, line: &str) -> bool {
        match self {
            Cluster::Local(_) => false,
            Cluster::Emr(c) => c.adopted_runs(stage, attempt, line),
        }
    }

    /// Starts an attempt; its end is reported through `notify`.
    pub fn launch(
        &mut self,
        stage: StageId,
        name: &str,
        attempt: u32,
        output: &Output,
        command: &StageCommand,
        notify: Notify,
    ) -> std::io::Result<()> {
        let generation = self.generation();
        match self {
            Cluster::Local(cluster) => {
                let Output::Dir(dir) = output else {
                    return Err(std::io::Error::other(
                        "a local cluster writes to directories",
                    ));
                };
                let child = cluster.spawn(stage, attempt, Some(dir), command)?;
                report_exit(child, generation, stage, attempt, notify);
                Ok(())
            }
            Cluster::Emr(cluster) => {
                cluster.launch(stage, name, attempt, &command.line, notify);
                Ok(())
            }
        }
    }

    /// Starts a check of an attempt that exited 0, on its output as it is; its end is
    /// reported through `notify` as the attempt's. On EMR it is a step named `step`.
    pub fn launch_check(
        &mut self,
        stage: StageId,
        step: &str,
        attempt: u32,
        command: &StageCommand,
        notify: Notify,
    ) -> std::io::Result<()> {
        let generation = self.generation();
        match self {
            Cluster::Local(cluster) => {
                let child = cluster.spawn(stage, attempt, None, command)?;
                report_exit(child, generation, stage, attempt, notify);
            }
            Cluster::Emr(cluster) => cluster.launch(stage, step, attempt, &command.line, notify),
        }
        Ok(())
    }

    /// Ends one attempt's processes, as the loss of the node it ran on would (local
    /// clusters; an EMR step's node is reclaimed by EC2, not by respawn).
    pub fn kill_attempt(&mut self, stage: StageId, attempt: u32) {
        if let Cluster::Local(c) = self {
            c.kill(stage, attempt);
        }
    }

    /// The attempt's processes have ended.
    pub fn forget(&mut self, stage: StageId, attempt: u32) {
        if let Cluster::Local(c) = self {
            c.forget(stage, attempt);
        }
    }

    /// The cluster is gone (or must go at once): nothing of it survives. Returns its
    /// instances' hours when the provider lists them.
    pub async fn lose(self) -> Option<Usage> {
        match self {
            Cluster::Local(mut cluster) => {
                cluster.end_all(true).await;
                let _ = tokio::task::spawn_blocking(move || cluster.wipe()).await;
                None
            }
            Cluster::Emr(cluster) => cluster.terminate().await,
        }
    }

    /// Ends the cluster at the end of a run: stages get SIGTERM, then SIGKILL after
    /// `grace`. Returns its instances' hours when the provider lists them.
    /// `hurry` resolving (a second Ctrl-C) ends the grace period at once.
    pub async fn terminate(
        self,
        grace: Duration,
        hurry: impl std::future::Future<Output = ()>,
    ) -> Option<Usage> {
        match self {
            Cluster::Local(mut cluster) => {
                if cluster.running() > 0 {
                    cluster.signal_all(libc::SIGTERM);
                    let gone = async {
                        while !cluster.groups_gone() {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    };
                    tokio::select! {
                        () = gone => {}
                        () = tokio::time::sleep(grace) => {}
                        () = hurry => {}
                    }
                }
                cluster.end_all(true).await;
                let _ = tokio::task::spawn_blocking(move || cluster.wipe()).await;
                None
            }
            Cluster::Emr(cluster) => cluster.terminate().await,
        }
    }

    /// Another orchestrator owns the run now: this one's local stages end, and nothing
    /// else is touched (the new owner may use the same scratch directory, and its stages
    /// carry the same run id); an EMR cluster is left for the new owner to adopt.
    pub async fn abandon(self) {
        match self {
            Cluster::Local(mut cluster) => cluster.end_all(false).await,
            Cluster::Emr(cluster) => cluster.abandon(),
        }
    }
}

/// Waits for a local attempt's process and reports how it ended.
fn report_exit(
    child: local::StageProcess,
    generation: u32,
    stage: StageId,
    attempt: u32,
    notify: Notify,
) {
    tokio::spawn(async move {
        let end = match child.wait().await {
            Ok(0) => StepEnd::Success,
            Ok(code) => StepEnd::Failed { code, detail: None },
            Err(error) => StepEnd::Failed {
                code: 1,
                detail: Some(format!("cannot wait for the process: {error}")),
            },
        };
        notify(ClusterNews::Exited {
            generation,
            stage,
            attempt,
            end,
        });
    });
}
