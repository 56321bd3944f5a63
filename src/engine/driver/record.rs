//! What the run tells the world: typed events (to the sink and the ledger, stamped with the
//! injected clock), the run record kept in step with the machine, and the attempts' logs.

use super::Driver;
use super::ledger::LedgerMsg;
use crate::drivers::ledger::{RunRecord, timestamp};
use crate::drivers::store::Store;
use crate::engine::event::{RunEvent, StampedEvent};
use crate::engine::machine::StageState;
use crate::workflow::{Market, StageId};
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
        let _ = self.ledger.send(LedgerMsg::Event(stamped.to_json()));
    }

    /// Changes the run record (shared with the writer) and tells the writer.
    pub(super) fn with_record<T>(&self, change: impl FnOnce(&mut RunRecord) -> T) -> T {
        let result = {
            let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
            change(&mut record)
        };
        let _ = self.ledger.send(LedgerMsg::Record);
        result
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
        let committed_attempt = self.durable[s]
            .as_ref()
            .and_then(|d| d.manifest.as_ref())
            .map(|m| m.attempt);
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

    /// Uploads the log of an attempt that ended (in the background).
    pub(super) fn save_log(&mut self, stage: StageId, attempt: u32) {
        let name = &self.workflow.stages[stage].name;
        let path = self.clusters.scratch().log_path(name, attempt);
        let key = self.layout.log(&self.run_id, name, attempt);
        let store = self.store.clone();
        self.logs.spawn(async move {
            if let Err(error) = store.upload_file(&path, &key).await {
                tracing::warn!("could not keep the log {}: {error}", path.display());
            }
        });
    }
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

/// The last `lines` lines of a log file.
pub(super) fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
