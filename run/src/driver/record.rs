//! What the run tells the world: typed events (to the sink and the ledger, stamped with the
//! injected clock), the run record kept in step with the machine, and the attempts' logs.

use super::Driver;
use crate::ledger::{RunRecord, timestamp};
use crate::store::Store;
use respawn_core::contract::event::{RunEvent, StampedEvent};
use respawn_core::contract::{HeldCluster, NodeLoss};
use respawn_core::machine::StageState;
use respawn_core::workflow::{Market, StageId};
use std::path::Path;

impl Driver {
    /// Stamps an event, hands it to the sink, and queues it for the ledger.
    pub(super) fn emit(&mut self, event: RunEvent) {
        let stamped = StampedEvent {
            at: timestamp(self.clock.now()),
            elapsed_s: super::handle::seconds(self.started.elapsed()),
            event,
        };
        (self.sink)(&stamped);
        self.ledger.event(stamped.to_json());
    }

    /// Changes the run record (shared with the writer) and tells the writer.
    pub(super) fn with_record<T>(&self, change: impl FnOnce(&mut RunRecord) -> T) -> T {
        self.ledger.change(change)
    }

    /// Brings every stage of the run record up to date with the machine.
    pub(super) fn sync_record(&mut self) {
        for s in 0..self.workflow.stages.len() {
            self.sync_stage(s);
        }
    }

    /// Brings one stage of the run record up to date with the machine.
    pub(super) fn sync_stage(&mut self, s: StageId) {
        let status = &self.machine.stages()[s];
        let prior = &self.prior[s];
        let attempts = prior.attempts.max(self.base_attempt[s]) + status.attempts;
        let failures = prior.failures + status.failures;
        let interrupted = prior.interrupted + status.interrupted;
        let committed_attempt = self.durable[s].as_ref().and_then(|d| d.committed_attempt);
        let state = match status.state {
            StageState::Waiting if self.failed_stage == Some(s) => "failed",
            StageState::Waiting => "waiting",
            StageState::Running { .. } => "running",
            StageState::Persisting { .. } => "committing",
            StageState::Backoff => "retrying",
            StageState::Done if status.published => "published",
            StageState::Done if status.committed => "committed",
            StageState::Done if status.local => "done",
            StageState::Done => "not-needed",
        };
        let name = &self.workflow.stages[s].name;
        self.with_record(|record| {
            let entry = match record.stages.get_mut(name) {
                Some(entry) => entry,
                None => record.stages.entry(name.clone()).or_default(),
            };
            entry.attempts = attempts;
            entry.failures = failures;
            entry.interrupted = interrupted;
            entry.committed_attempt = committed_attempt;
            if entry.state != state {
                entry.state = state.into();
            }
        });
    }

    /// Adds a cluster's instance-hours (when the provider knows them) to the record.
    pub(super) fn add_hours(&mut self, market: Market, hours: Option<f64>) {
        if let Some(hours) = hours {
            self.with_record(|record| {
                *record
                    .instance_hours
                    .entry(market.as_str().to_string())
                    .or_insert(0.0) += hours;
            });
        }
    }

    /// Cluster `generation` is ready, in this zone and subnet (where known).
    pub(super) fn hold(
        &mut self,
        generation: u32,
        (zone, subnet): (Option<String>, Option<String>),
    ) {
        let ready = super::handle::seconds(self.started.elapsed());
        let holding = Holding {
            ready,
            zone,
            subnet,
            node_losses: Vec::new(),
        };
        self.held.insert(generation, holding);
    }

    /// `nodes` of cluster `generation`'s nodes were reclaimed, `remaining` work on.
    pub(super) fn hold_node_loss(&mut self, generation: u32, nodes: u32, remaining: u32) {
        let now = super::handle::seconds(self.started.elapsed());
        if let Some(holding) = self.held.get_mut(&generation) {
            let share = f64::from(nodes) / f64::from((nodes + remaining).max(1));
            holding.node_losses.push(NodeLoss {
                after: (now - holding.ready).max(0.0),
                share: share.clamp(0.0, 1.0),
            });
        }
    }

    /// Cluster `generation` ended (`lost`: the provider took it): the hours it was held
    /// since it was ready, and the cluster itself, go into the record (once: a cluster
    /// that was never ready, or was counted already, adds nothing).
    pub(super) fn add_held(&mut self, generation: u32, market: Market, lost: bool) {
        let Some(holding) = self.held.remove(&generation) else {
            return;
        };
        let seconds = (super::handle::seconds(self.started.elapsed()) - holding.ready).max(0.0);
        self.with_record(|record| {
            *record
                .cluster_hours
                .entry(market.as_str().to_string())
                .or_insert(0.0) += seconds / 3600.0;
            record.clusters.push(HeldCluster {
                market: market.as_str().into(),
                seconds,
                lost,
                zone: holding.zone,
                subnet: holding.subnet,
                node_losses: holding.node_losses,
            });
        });
    }

    /// Uploads the log of an attempt that ended (in the background).
    pub(super) fn save_log(&mut self, stage: StageId, attempt: u32) {
        let name = &self.workflow.stages[stage].name;
        let path = self.clusters.scratch().log_path(name, attempt);
        let key = self.layout.log(&self.run_id, name, attempt);
        let store = self.store.clone();
        self.logs.spawn(async move {
            let capped = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || super::log_cap::capped(&path)).await
            };
            let upload = match capped {
                Ok(Ok(file)) => store
                    .upload_file(&file, &key)
                    .await
                    .map_err(|e| e.to_string()),
                Ok(Err(error)) => Err(error.to_string()),
                Err(error) => Err(error.to_string()),
            };
            if let Err(error) = upload {
                tracing::warn!("could not keep the log {}: {error}", path.display());
            }
        });
    }
}

/// A cluster the run holds: since when (the events' `elapsed_s`), where, and the losses
/// of some of its nodes so far.
pub(super) struct Holding {
    ready: f64,
    zone: Option<String>,
    subnet: Option<String>,
    node_losses: Vec<NodeLoss>,
}

/// Adds what the cluster said of a failure to the attempt's log.
pub(super) fn append_log(path: &Path, text: &str) {
    use std::io::Write;
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(file, "{text}");
    }
}

/// How much of the end of a log its tail is looked for in.
const TAIL_BYTES: u64 = 64 * 1024;
/// A longer line of a tail is cut (a log with no newline is one line).
const TAIL_LINE_CHARS: usize = 400;

/// The last `lines` lines of a log file, found in its last [`TAIL_BYTES`] only, each cut
/// to [`TAIL_LINE_CHARS`] characters.
pub(super) fn log_tail(path: &Path, lines: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::new();
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let length = file.metadata().map_or(0, |m| m.len());
    let start = length.saturating_sub(TAIL_BYTES);
    if file.seek(SeekFrom::Start(start)).is_err()
        || file.take(TAIL_BYTES).read_to_end(&mut bytes).is_err()
    {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    if start > 0 && all.len() > 1 {
        // The first line read began before the part read.
        all.remove(0);
    }
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|line| {
            let count = line.chars().count();
            if count <= TAIL_LINE_CHARS {
                line.to_string()
            } else {
                let cut: String = line.chars().skip(count - TAIL_LINE_CHARS).collect();
                format!("[{} characters cut] {cut}", count - TAIL_LINE_CHARS)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::log_tail;

    #[test]
    fn item_11_the_failure_tail_of_a_huge_log_without_newlines_is_short() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.log");
        let mut text = "first line\n".repeat(10);
        text.push_str(&"x".repeat(5_000_000));
        std::fs::write(&path, &text).unwrap();
        let tail = log_tail(&path, 20);
        assert!(tail.len() < 1_000, "{} bytes", tail.len());
        assert!(tail.ends_with("xxx"), "{tail}");
        assert!(tail.contains("characters cut"), "{tail}");
    }

    #[test]
    fn item_11_the_failure_tail_keeps_the_last_lines_of_a_long_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.log");
        let text: String = (0..100_000).map(|n| format!("line {n}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail = log_tail(&path, 3);
        assert_eq!(tail, "line 99997\nline 99998\nline 99999");
    }
}
