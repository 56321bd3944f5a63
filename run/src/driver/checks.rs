//! A stage's checks: after its attempt exits 0 (and before the machine hears of it, so
//! before anything of it is committed or published), each check runs in turn on the same
//! cluster, as part of the attempt: a loss or a reclaimed node during a check interrupts
//! the attempt like any other. A failed `error` check refuses the output; a failed `warn`
//! check is recorded and the next check runs.

use super::Driver;
use super::record::append_log;
use crate::cluster::{StageCommand, StepEnd};
use crate::store::Store;
use respawn_core::contract::CheckRecord;
use respawn_core::contract::event::RunEvent;
use respawn_core::machine::Exit;
use respawn_core::workflow::{Severity, StageId};
use std::collections::HashMap;

/// The checks in progress, and the one that refused an output.
#[derive(Default)]
pub(super) struct Checks {
    /// Attempt (numbered over the run) to the index of its check that runs.
    running: HashMap<(StageId, u32), usize>,
    /// The stage and check that refused an output, for the run's failure message.
    pub(super) refused: Option<(StageId, String)>,
}

impl Driver {
    /// Whether the attempt's exit is that of one of its checks (which is then no longer
    /// running).
    pub(super) fn check_ended(&mut self, stage: StageId, attempt: u32) -> Option<usize> {
        self.checks.running.remove(&(stage, attempt))
    }

    /// Starts the first check of an attempt that exited 0; false when the stage has none.
    pub(super) fn start_checks(&mut self, stage: StageId, attempt: u32) -> bool {
        if self.workflow.stages[stage].checks.is_empty() {
            return false;
        }
        self.launch_check(stage, attempt, 0);
        true
    }

    /// What check `index` of the attempt ending with `end` means: the next check was
    /// launched (`None`), or the attempt's exit for the machine.
    pub(super) fn on_check_exited(
        &mut self,
        stage: StageId,
        attempt: u32,
        index: usize,
        end: &StepEnd,
    ) -> Option<Exit> {
        let spec = &self.workflow.stages[stage];
        let check = &spec.checks[index];
        let (name, check_name, severity) = (spec.name.clone(), check.name.clone(), check.severity);
        let code = match end {
            StepEnd::Success => 0,
            StepEnd::Failed { code, .. } => (*code).max(1),
        };
        let log = self
            .store
            .locate(&self.layout.log(&self.run_id, &name, attempt));
        self.with_record(|record| {
            let entry = record.stages.entry(name.clone()).or_default();
            let result = CheckRecord {
                attempt,
                severity: severity.as_str().into(),
                code,
            };
            entry.checks.insert(check_name.clone(), result);
        });
        self.emit(RunEvent::Check {
            stage: name,
            attempt,
            check: check_name.clone(),
            severity: severity.as_str().into(),
            code,
            log,
        });
        if code != 0 && severity == Severity::Error {
            self.checks.refused = Some((stage, check_name));
            return Some(Exit::Refused { code });
        }
        if index + 1 < self.workflow.stages[stage].checks.len() {
            self.launch_check(stage, attempt, index + 1);
            return None;
        }
        Some(Exit::Success)
    }

    /// Runs check `index` of the attempt on the current cluster, its output appended to
    /// the attempt's log.
    fn launch_check(&mut self, stage: StageId, attempt: u32, index: usize) {
        let Some(generation) = self.cluster.as_ref().map(|c| c.generation()) else {
            return;
        };
        let spec = &self.workflow.stages[stage];
        let check = &spec.checks[index];
        let Some((output, line)) = self.render_with(&check.run, stage, attempt) else {
            return;
        };
        let log = self.clusters.scratch().log_path(&spec.name, attempt);
        let header = format!(
            "# respawn: check {} ({}) of attempt {attempt}\n# $ {line}",
            check.name,
            check.severity.as_str()
        );
        append_log(&log, &header);
        let mut env = self.environment(stage, attempt, &output);
        env.push(("RESPAWN_CHECK".into(), check.name.clone()));
        let command = StageCommand {
            line,
            env,
            cwd: self.settings.cwd.clone(),
            log,
        };
        let step = format!("{}.check.{}", spec.name, check.name);
        self.checks.running.insert((stage, attempt), index);
        let notify = self.notify();
        let launched = (self.cluster.as_mut())
            .map(|cluster| cluster.launch_check(stage, &step, attempt, &command, notify));
        if let Some(Err(error)) = launched {
            let detail = format!("respawn: cannot start the check: {error}");
            self.not_started(generation, stage, attempt, detail);
        }
    }
}
