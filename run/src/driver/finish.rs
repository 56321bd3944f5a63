//! Closing a run: record how it ended, keep the logs, clean up the work-tables after
//! success, remove the scratch directory, release the lease.

use super::{Driver, RunEnd};
use crate::ledger::{RunStatus, timestamp};
use crate::store::{Store, StoreError};
use respawn_core::contract::event::RunEvent;
use respawn_core::machine::StageState;
use respawn_core::workflow::Cleanup;

impl Driver {
    /// Attempts still running when the run stopped (their processes are gone by now): their
    /// logs are kept, and their stages recorded as stopped rather than running.
    fn keep_stopped_attempts(&mut self) {
        let running: Vec<(usize, u32)> = self
            .machine
            .stages()
            .iter()
            .enumerate()
            .filter_map(|(s, status)| match status.state {
                StageState::Running { attempt } => Some((s, self.base_attempt[s] + attempt)),
                _ => None,
            })
            .collect();
        for (stage, attempt) in running {
            self.save_log(stage, attempt);
            let name = self.workflow.stages[stage].name.clone();
            self.with_record(|record| {
                record.stages.entry(name).or_default().state = "stopped".into();
            });
        }
    }

    /// Records how the run ended, cleans up, and releases the lease.
    pub(super) async fn finish(mut self, end: RunEnd) -> RunEnd {
        // A run ends as this orchestrator's only while it holds the lease: one paused while
        // another took the batch over (before its next renewal was due) reports the lost
        // lease and records nothing.
        let end = match end {
            RunEnd::Succeeded | RunEnd::Failed { .. } | RunEnd::Stopped => {
                match self.renew_lease().await {
                    Err(lost @ RunEnd::Lease(_)) => lost,
                    _ => end,
                }
            }
            other => other,
        };
        match &end {
            RunEnd::Lease(_) => {
                // Someone else owns the workflow now: touch nothing of theirs.
                if let Some(cluster) = self.cluster.take() {
                    cluster.abandon().await;
                }
                return end;
            }
            RunEnd::Store(_) | RunEnd::Io(_) => {
                self.tasks.abort_all();
                self.kill_everything().await;
            }
            RunEnd::Stopped => self.tasks.abort_all(),
            RunEnd::Succeeded | RunEnd::Failed { .. } => {}
        }
        if !matches!(end, RunEnd::Succeeded | RunEnd::Failed { .. }) {
            self.keep_stopped_attempts();
        }
        // Logs of attempts that ended are wanted in every case.
        while self.logs.join_next().await.is_some() {}
        self.record_finished(&end);
        let mut end = end;
        if let Err(error) = self.flush().await
            && matches!(end, RunEnd::Succeeded)
        {
            end = RunEnd::Store(error);
        }
        if matches!(end, RunEnd::Succeeded) && self.workflow.cleanup == Cleanup::OnSuccess {
            end = self.clean_up().await;
        }
        let _ = self.flush().await;
        self.let_go(&end).await;
        end
    }

    /// Records how the run ended (and, when it succeeded, the fingerprints its outputs
    /// were made with) and says so.
    fn record_finished(&mut self, end: &RunEnd) {
        let (status, message) = match end {
            RunEnd::Succeeded => (RunStatus::Succeeded, None),
            RunEnd::Failed { message, .. } => (RunStatus::Failed, Some(message.clone())),
            RunEnd::Stopped => (
                RunStatus::Stopped,
                Some("stopped; the same command resumes it".to_string()),
            ),
            RunEnd::Store(error) => (RunStatus::Failed, Some(error.to_string())),
            RunEnd::Io(error) => (RunStatus::Failed, Some(error.clone())),
            RunEnd::Lease(_) => return,
        };
        let finished_at = timestamp(self.clock.now());
        self.with_record(|record| {
            if status == RunStatus::Succeeded {
                for (stage, print) in self.workflow.stages.iter().zip(&self.fingerprints) {
                    let entry = record.stages.entry(stage.name.clone()).or_default();
                    entry.fingerprint = Some(print.clone());
                }
            }
            record.status = status;
            record.message = message.clone();
            record.finished_at = Some(finished_at);
        });
        self.emit(RunEvent::Finished { status, message });
    }

    /// Deletes the work-tables of a run that succeeded (its outputs are published); a
    /// store that fails the deletion fails the run.
    async fn clean_up(&mut self) -> RunEnd {
        let work = self.layout.work(&self.run_id);
        match self.store.delete_prefix(&work).await {
            Ok(deleted) => {
                let prefix = self.store.locate(&work);
                self.emit(RunEvent::Cleaned { deleted, prefix });
                RunEnd::Succeeded
            }
            Err(error) => RunEnd::Store(error),
        }
    }

    /// What the run leaves behind: what it measured, for the plans of the next ones (a
    /// copy: losing it loses nothing the run records do not hold), no ledger writer, no
    /// scratch, and no lease.
    async fn let_go(&mut self, end: &RunEnd) {
        let measured = self.ledger.record();
        if !matches!(end, RunEnd::Store(_))
            && let Err(error) =
                crate::ledger::add_learned(&self.store, &self.layout, &measured).await
        {
            tracing::warn!("later plans will not learn from this run: {error}");
        }
        self.ledger.close().await;
        let scratch = self.clusters.scratch().clone();
        let _ = tokio::task::spawn_blocking(move || scratch.remove_all()).await;
        if let Some(lease) = self.lease.take()
            && let Err(error) = lease.release(&self.store, self.clock.now()).await
        {
            tracing::warn!("could not release the lease (it expires on its own): {error}");
        }
    }

    /// Waits until every event and the latest run record are in the store.
    async fn flush(&mut self) -> Result<(), StoreError> {
        self.ledger.flush().await
    }
}
