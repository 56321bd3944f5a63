//! A run's stored events read back as a timeline: attempts with their outcomes, cluster
//! generations, interruptions, checkpoint commits and restores, all in seconds since the
//! run was first taken. Pure: the caller reads the events from the store.
//!
//! `elapsed_s` counts from the start of each orchestrator process (a resumed run starts
//! again at 0) and `at` is to the second, so each process's start is placed at the latest
//! `at - elapsed_s` among its events, and every event at that start plus its `elapsed_s`.

use crate::contract::event::{InstanceUse, NoticeKind, StampedEvent};
use crate::workflow::Market;
use serde::Serialize;

mod build;
pub use build::timeline;

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Succeeded,
    /// The stage's own failure (a non-zero exit).
    Failed,
    /// Ended with its cluster.
    Interrupted,
    /// Succeeded, but its work-table was later found stale and rebuilt.
    Stale,
    /// Still running at the last event of a live run.
    Running,
    /// Its orchestrator stopped or died before the attempt ended.
    Abandoned,
    /// It exited 0, but an `error` check refused its output.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Stale => "stale",
            Outcome::Running => "running",
            Outcome::Abandoned => "abandoned",
            Outcome::Refused => "refused",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attempt {
    pub stage: String,
    pub attempt: u32,
    /// Index into [`Timeline::generations`].
    pub generation: usize,
    pub market: Market,
    pub start: f64,
    pub end: f64,
    pub outcome: Outcome,
    pub log: String,
    pub code: Option<i32>,
    /// A successful attempt of a stage that had already succeeded in this run: its
    /// ephemeral work-table was lost with a cluster and a consumer still needed it.
    pub recompute: bool,
    /// The checks that ran on its output, in order (they run after it exits 0, and the
    /// attempt lasts until the last has ended).
    pub checks: Vec<CheckMark>,
}

/// How one check of an attempt's output ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckMark {
    pub name: String,
    pub severity: String,
    pub code: i32,
}

impl Attempt {
    pub fn seconds(&self) -> f64 {
        (self.end - self.start).max(0.0)
    }
}

/// How a cluster generation ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ClusterEnd {
    Lost {
        cause: String,
    },
    Released,
    /// Its orchestrator died without a word; charged until another took the run over.
    Abandoned,
    /// Still up at the last event, or its orchestrator stopped without a word.
    Open,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Generation {
    /// Numbered from 1 over the whole run (each orchestrator process numbers its own).
    pub number: usize,
    pub market: Market,
    pub provider: String,
    pub cluster: String,
    pub requested: f64,
    pub ready: Option<f64>,
    pub end: f64,
    pub ended: ClusterEnd,
    /// EMR: instance-hours as the provider reported them at release.
    pub instance_hours: Option<f64>,
    /// EMR: the instances it listed at release, per fleet, type and market (`None` in
    /// records written before respawn kept them).
    pub instances: Option<Vec<InstanceUse>>,
}

impl Generation {
    pub fn seconds(&self) -> f64 {
        (self.end - self.requested).max(0.0)
    }

    /// Time spent waiting for the cluster to come up.
    pub fn provisioning_seconds(&self) -> f64 {
        (self.ready.unwrap_or(self.end) - self.requested).max(0.0)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Interruption {
    pub at: f64,
    pub generation: usize,
    pub market: Market,
    pub cause: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Commit {
    pub stage: String,
    pub attempt: u32,
    pub at: f64,
    pub files: usize,
    pub bytes: u64,
    pub seconds: f64,
    /// Uploaded in a notice's window, beyond the plan.
    pub window: bool,
}

/// A warning that a cluster would be reclaimed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NoticeMark {
    pub at: f64,
    /// Index into [`Timeline::generations`].
    pub generation: usize,
    pub kind: NoticeKind,
    pub lead: f64,
    pub instances: Vec<String>,
    /// No loss came (an interruption notice only).
    pub lapsed: bool,
}

/// Nodes of a cluster reclaimed while the cluster worked on (`capacity-lost`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CapacityMark {
    pub at: f64,
    /// Index into [`Timeline::generations`].
    pub generation: usize,
    pub nodes: u32,
    pub remaining: u32,
    pub cause: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Restore {
    pub stage: String,
    pub generation: usize,
    pub at: f64,
    pub bytes: u64,
    pub seconds: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timeline {
    /// When second 0 is (RFC 3339), if any event was read.
    pub origin: Option<String>,
    /// Seconds from the first to the last event.
    pub end: f64,
    pub attempts: Vec<Attempt>,
    pub generations: Vec<Generation>,
    pub interruptions: Vec<Interruption>,
    pub notices: Vec<NoticeMark>,
    /// Nodes lost while their cluster worked on.
    pub capacity: Vec<CapacityMark>,
    pub commits: Vec<Commit>,
    pub restores: Vec<Restore>,
    pub published: Vec<String>,
    /// When the run's work-tables were deleted.
    pub cleaned: Option<f64>,
    /// Events that could not be read, by number, and why.
    pub problems: Vec<String>,
}

/// Reads stored events (as JSON) into stamped events; one that does not read is named in
/// the returned problems and left out.
pub fn parse_events(values: &[serde_json::Value]) -> (Vec<StampedEvent>, Vec<String>) {
    let mut events = Vec::with_capacity(values.len());
    let mut problems = Vec::new();
    for (seq, value) in values.iter().enumerate() {
        match serde_json::from_value::<StampedEvent>(value.clone()) {
            Ok(event) => events.push(event),
            Err(error) => problems.push(format!("event {seq} cannot be read: {error}")),
        }
    }
    (events, problems)
}

fn epoch_seconds(at: &str) -> Option<f64> {
    let timestamp: jiff::Timestamp = at.parse().ok()?;
    Some(timestamp.as_millisecond() as f64 / 1000.0)
}

/// Seconds since the epoch of every event (see the module's comment on sessions).
fn absolute_times(events: &[StampedEvent]) -> Vec<f64> {
    let mut times = vec![0.0; events.len()];
    let mut start = 0;
    while start < events.len() {
        let mut end = start + 1;
        while end < events.len() && events[end].elapsed_s >= events[end - 1].elapsed_s {
            end += 1;
        }
        let base = events[start..end]
            .iter()
            .filter_map(|e| epoch_seconds(&e.at).map(|at| at - e.elapsed_s))
            .fold(f64::NEG_INFINITY, f64::max);
        let base = if base.is_finite() { base } else { 0.0 };
        for i in start..end {
            times[i] = base + events[i].elapsed_s;
        }
        start = end;
    }
    times
}

#[cfg(test)]
pub(crate) mod tests;
