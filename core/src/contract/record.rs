//! The run record (`run.json`): one per run, kept by the ledger and read by every command
//! that asks what a run did.

use super::timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The format version written into every record; a reader refuses newer ones.
pub const FORMAT: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Running,
    Succeeded,
    /// A stage failed after its retries; a fixed re-run resumes.
    Failed,
    /// The orchestrator was stopped (Ctrl-C); the same command resumes.
    Stopped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Stopped => "stopped",
        }
    }

    pub fn is_finished(self) -> bool {
        self == RunStatus::Succeeded
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarketChange {
    pub market: String,
    pub at: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interruption {
    pub at: String,
    pub market: String,
    pub cause: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// Attempts started in this run (interrupted ones included).
    pub attempts: u32,
    /// Attempts that ended in the stage's own failure (these use up `retries`).
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub interrupted: u32,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_attempt: Option<u32>,
    /// The market of the cluster its last attempt ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<String>,
    /// Whether the plan persists its work-table (`checkpoint`) or leaves it on the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_table: Option<String>,
    /// The store object holding the log of its last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// The stage's fingerprint when this run last ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// How long the attempt that succeeded ran, launch to exit 0, in seconds (what
    /// `plan` learns the stage's estimate from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The size of that attempt's output in bytes, where respawn saw it: a local
    /// cluster's output directory, or the work-table it committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The latest result of each of the stage's checks in this run, by check name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, CheckRecord>,
}

/// How a check of a stage's output last ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// The attempt whose output it checked.
    pub attempt: u32,
    /// `error` or `warn`.
    pub severity: String,
    /// Its exit code: 0 passed.
    pub code: i32,
}

impl CheckRecord {
    pub fn passed(&self) -> bool {
        self.code == 0
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub format: u32,
    pub workflow: String,
    pub batch: String,
    pub run_id: String,
    pub status: RunStatus,
    pub started_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub markets: Vec<MarketChange>,
    #[serde(default)]
    pub interruptions: Vec<Interruption>,
    /// The last cluster generation the run asked for (0 before its first), so that a
    /// resumed run numbers its clusters on.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generations: u32,
    #[serde(default)]
    pub stages: BTreeMap<String, StageRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Instance-hours per market (`spot`, `on-demand`) of the clusters that ended, as the
    /// provider tells them (EMR: provisioned instances times the cluster's lifetime).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instance_hours: BTreeMap<String, f64>,
    /// Hours the run held a ready cluster, per market, counted when each cluster ended
    /// (lost or released): the exposure the learned interruption rate divides by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cluster_hours: BTreeMap<String, f64>,
    /// The kind of cluster the run used (`local`, or `emr`, its region and instance
    /// types): history of one kind says nothing of another's interruptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_kind: Option<String>,
    /// Each cluster the run held, from when it was ready to its end, in the order they
    /// ended: what the learned interruption model replays, losses and quiet spells as
    /// they came, and learns per zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<HeldCluster>,
}

/// A cluster a run held: how long it was up, how it ended, where it ran, and the losses
/// of some of its nodes on the way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldCluster {
    /// `spot` or `on-demand`.
    pub market: String,
    /// Seconds from when it was ready to its end.
    pub seconds: f64,
    /// It ended because the provider took it (a spot loss), not because the run let it go.
    pub lost: bool,
    /// Its availability zone and subnet, where the provider told them (EMR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// Losses of some of its nodes while it worked on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_losses: Vec<NodeLoss>,
}

/// Nodes of a cluster reclaimed while the cluster worked on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeLoss {
    /// Seconds after the cluster was ready.
    pub after: f64,
    /// The share of its nodes taken (above 0, below 1).
    pub share: f64,
}

impl RunRecord {
    pub fn new(
        workflow: &str,
        batch: &str,
        run_id: &str,
        market: &str,
        now: SystemTime,
    ) -> RunRecord {
        let at = timestamp(now);
        RunRecord {
            format: FORMAT,
            workflow: workflow.into(),
            batch: batch.into(),
            run_id: run_id.into(),
            status: RunStatus::Running,
            started_at: at.clone(),
            updated_at: at.clone(),
            finished_at: None,
            markets: vec![MarketChange {
                market: market.into(),
                at,
                reason: "start".into(),
            }],
            interruptions: Vec::new(),
            generations: 0,
            stages: BTreeMap::new(),
            message: None,
            instance_hours: BTreeMap::new(),
            cluster_hours: BTreeMap::new(),
            cluster_kind: None,
            clusters: Vec::new(),
        }
    }

    /// The stage and the `error` check that refused its output, when that failed the run:
    /// the data is suspect, so a re-run of the batch starts anew rather than reuse what
    /// this run committed.
    pub fn refused_by(&self) -> Option<(&str, &str)> {
        if self.status != RunStatus::Failed {
            return None;
        }
        let failed = (self.stages.iter()).filter(|(_, stage)| stage.state == "failed");
        failed.into_iter().find_map(|(name, stage)| {
            let refused = (stage.checks.iter())
                .find(|(_, check)| !check.passed() && check.severity == "error");
            refused.map(|(check, _)| (name.as_str(), check.as_str()))
        })
    }

    /// Attempts of every stage, summed.
    pub fn total_attempts(&self) -> u32 {
        self.stages.values().map(|s| s.attempts).sum()
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
