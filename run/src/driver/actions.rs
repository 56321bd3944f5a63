//! Carrying out the machine's actions: provision a cluster, launch an attempt (its command
//! rendered, its environment, its log), back off before a retry, terminate, finish. The
//! transfers (persist, restore, publish) are in [`super::transfers`].

use super::command::{env_name, shell_quote};
use super::{Driver, Msg};
use crate::cluster::{Cluster, ClusterNews, Notify, Output, StageCommand, StepEnd};
use crate::ledger::{MarketChange, timestamp};
use crate::store::Store;
use rand::Rng;
use respawn_core::contract::event::RunEvent;
use respawn_core::machine::{Action, Outcome};
use respawn_core::plan::calendar::IntervalValues;
use respawn_core::workflow::template::{Bindings, Template};
use respawn_core::workflow::{Market, StageId};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

impl Driver {
    pub(super) async fn execute(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Provision {
                    market,
                    generation,
                    reason,
                } => self.provision(market, generation, reason),
                Action::Restore { stage, generation } => self.restore(stage, generation),
                Action::Launch { stage, attempt } => self.launch(stage, attempt),
                Action::Persist { stage, attempt } => self.persist(stage, attempt),
                Action::Publish { stage } => self.publish(stage),
                Action::RetryAfter { stage, delay } => self.retry_after(stage, delay),
                Action::MarketChosen { market, reason } => self.emit(RunEvent::MarketChosen {
                    market,
                    reason,
                    interruptions: self.machine.interruptions(),
                    model: self.settings.model.clone(),
                }),
                Action::DeadlineAtRisk { reason } => self.emit(RunEvent::DeadlineAtRisk { reason }),
                Action::Terminate => self.terminate().await,
                Action::Abandon { generation, reason } => {
                    let cause = format!("respawn left the spot cluster: {reason}");
                    let _ = self.tx.send(Msg::Leave { generation, cause });
                }
                Action::Release { generation, reason } => {
                    self.release_replacement(generation, reason).await
                }
                Action::Finish(outcome) => {
                    if let Outcome::Failed { stage, .. } = &outcome {
                        self.failed_stage = Some(*stage);
                    }
                    self.outcome = Some(outcome);
                    self.sync_record();
                }
            }
        }
    }

    /// Waits `delay` (jittered by 0.5x to 1.5x) before the machine may launch `stage` again.
    fn retry_after(&mut self, stage: StageId, delay: Duration) {
        let factor = 0.5 + self.jitter.random::<f64>();
        let delay = delay.mul_f64(factor);
        let name = self.workflow.stages[stage].name.clone();
        self.emit(RunEvent::Retry {
            stage: name,
            delay_s: super::handle::seconds(delay),
        });
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(Msg::RetryDue { stage });
        });
    }

    fn provision(&mut self, market: Market, generation: u32, reason: String) {
        let wait = if generation == self.first_generation || !self.clusters.simulates_provisioning()
        {
            Duration::ZERO
        } else {
            self.chaos
                .as_ref()
                .and_then(|c| c.chaos.provision)
                .unwrap_or(self.workflow.cluster.provision_time)
        };
        let now = timestamp(self.clock.now());
        self.with_record(|record| {
            record.generations = record.generations.max(generation);
            if record.markets.last().map(|m| m.market.as_str()) != Some(market.as_str()) {
                record.markets.push(MarketChange {
                    market: market.as_str().into(),
                    at: now,
                    reason: reason.clone(),
                });
            }
        });
        self.emit(RunEvent::Provision {
            generation,
            market,
            reason,
            wait_s: wait.as_secs_f64(),
        });
        let clusters = self.clusters.clone();
        let tx = self.tx.clone();
        let notify = self.notify();
        self.tasks.spawn(async move {
            tokio::time::sleep(wait).await;
            let result = clusters.create(generation, market, notify).await;
            let _ = tx.send(Msg::Ready { generation, result });
        });
    }

    fn launch(&mut self, stage: StageId, machine_attempt: u32) {
        let Some((generation, market)) =
            self.cluster.as_ref().map(|c| (c.generation(), c.market()))
        else {
            return;
        };
        self.adopt_attempt(stage, machine_attempt);
        let attempt = self.base_attempt[stage] + machine_attempt;
        let Some((output, line)) = self.render(stage, attempt) else {
            return;
        };
        let name = self.workflow.stages[stage].name.clone();
        let log = self.clusters.scratch().log_path(&name, attempt);
        let command = StageCommand {
            line: line.clone(),
            env: self.environment(stage, attempt, &output),
            cwd: self.settings.cwd.clone(),
            log: log.clone(),
        };
        let header = format!(
            "# respawn: run {} stage {name} attempt {attempt} on {} cluster {generation} ({})\n# $ {line}\n",
            self.run_id,
            market.as_str(),
            self.cluster
                .as_ref()
                .map(Cluster::describe)
                .unwrap_or_default(),
        );
        let _ = std::fs::create_dir_all(log.parent().unwrap_or(Path::new(".")))
            .and_then(|()| std::fs::write(&log, header));
        let log_object = self
            .store
            .locate(&self.layout.log(&self.run_id, &name, attempt));
        let fingerprint = self.fingerprints[stage].clone();
        self.launched_at[stage] = super::handle::seconds(self.started.elapsed());
        self.with_record(|record| {
            let entry = record.stages.entry(name.clone()).or_default();
            entry.market = Some(market.as_str().into());
            entry.log = Some(log_object.clone());
            entry.fingerprint = Some(fingerprint);
        });
        self.emit(RunEvent::Launch {
            stage: name.clone(),
            attempt,
            market,
            generation,
            log: log_object,
        });
        self.sync_stage(stage);
        let notify = self.notify();
        let launched = self
            .cluster
            .as_mut()
            .map(|cluster| cluster.launch(stage, &name, attempt, &output, &command, notify));
        if let Some(Err(error)) = launched {
            let detail = format!("respawn: cannot start the stage: {error}");
            self.not_started(generation, stage, attempt, detail);
        }
    }

    /// An attempt (or one of its checks) that could not start ends as failed, through the
    /// channel as any end does.
    pub(super) fn not_started(
        &self,
        generation: u32,
        stage: StageId,
        attempt: u32,
        detail: String,
    ) {
        let _ = self.tx.send(Msg::News(ClusterNews::Exited {
            generation,
            stage,
            attempt,
            end: StepEnd::Failed {
                code: 1,
                detail: Some(detail),
            },
        }));
    }

    /// The stage's environment: the template values, by name.
    pub(super) fn environment(
        &self,
        stage: StageId,
        attempt: u32,
        output: &Output,
    ) -> Vec<(String, String)> {
        let spec = &self.workflow.stages[stage];
        let mut env = vec![
            ("RESPAWN_OUTPUT".to_string(), output.location()),
            ("RESPAWN_RUN_ID".into(), self.run_id.clone()),
            ("RESPAWN_BATCH".into(), self.batch.clone()),
            ("RESPAWN_ATTEMPT".into(), attempt.to_string()),
            ("RESPAWN_WORKFLOW".into(), self.workflow.name.clone()),
            ("RESPAWN_STAGE".into(), spec.name.clone()),
            (
                "RESPAWN_WORKFLOW_DIR".into(),
                self.settings.workflow_dir.clone(),
            ),
        ];
        for &input in &spec.needs {
            let name = env_name(&self.workflow.stages[input].name);
            env.push((format!("RESPAWN_INPUT_{name}"), self.input_location(input)));
        }
        if let Some(interval) = &self.settings.interval {
            env.extend([
                ("RESPAWN_LOGICAL_DATE".into(), interval.logical_date.clone()),
                (
                    "RESPAWN_INTERVAL_START".into(),
                    interval.interval_start.clone(),
                ),
                ("RESPAWN_INTERVAL_END".into(), interval.interval_end.clone()),
            ]);
        }
        env
    }

    /// On an adopted cluster, a step of this stage that runs (or ran) the very same
    /// command: the attempt takes over its number, so that launching attaches to it.
    /// Any other step found there keeps its number from being used again.
    fn adopt_attempt(&mut self, stage: StageId, machine_attempt: u32) {
        let name = &self.workflow.stages[stage].name;
        let Some(found) = self.cluster.as_ref().and_then(|c| c.adopted_attempt(name)) else {
            return;
        };
        let same = found >= machine_attempt
            && self.render(stage, found).is_some_and(|(_, line)| {
                self.cluster
                    .as_ref()
                    .is_some_and(|c| c.adopted_runs(name, found, &line))
            });
        self.base_attempt[stage] = if same {
            found - machine_attempt
        } else {
            self.base_attempt[stage].max(found)
        };
    }

    /// Where the work-table of `stage` is for the current cluster (empty when it is not).
    pub(super) fn input_location(&self, stage: StageId) -> String {
        self.local[stage]
            .as_ref()
            .map(|(output, _)| output.location())
            .unwrap_or_default()
    }

    /// The output and the rendered `run:` line of an attempt on the current cluster.
    fn render(&self, stage: StageId, attempt: u32) -> Option<(Output, String)> {
        self.render_with(&self.workflow.stages[stage].run, stage, attempt)
    }

    /// The output of an attempt and one of its stage's commands (`run`, or a check's)
    /// rendered for it.
    pub(super) fn render_with(
        &self,
        template: &Template,
        stage: StageId,
        attempt: u32,
    ) -> Option<(Output, String)> {
        let output = self.output_of(stage, attempt)?;
        let quoted_input = |id: StageId| shell_quote(&self.input_location(id));
        let interval = |value: fn(&IntervalValues) -> &String| {
            self.settings
                .interval
                .as_ref()
                .map(|i| shell_quote(value(i)))
                .unwrap_or_default()
        };
        let line = template.render(&Bindings {
            output: &shell_quote(&output.location()),
            inputs: &quoted_input,
            run_id: &self.run_id,
            batch: &self.batch,
            attempt,
            workflow_dir: &shell_quote(&self.settings.workflow_dir),
            logical_date: &interval(|i| &i.logical_date),
            interval_start: &interval(|i| &i.interval_start),
            interval_end: &interval(|i| &i.interval_end),
        });
        Some((output, line))
    }

    /// Where attempt `attempt` of `stage` writes on the current cluster: a checkpointed
    /// stage may write straight to its place in the store (EMR).
    pub(super) fn output_of(&self, stage: StageId, attempt: u32) -> Option<Output> {
        let name = &self.workflow.stages[stage].name;
        let in_store = self.setup.checkpoint[stage].then(|| {
            self.store
                .locate(&self.layout.attempt(&self.run_id, name, attempt))
        });
        self.cluster
            .as_ref()
            .map(|c| c.output(name, attempt, in_store))
    }

    /// What clusters report comes into the driver's channel.
    pub(super) fn notify(&self) -> Notify {
        let tx = self.tx.clone();
        Arc::new(move |news| {
            let _ = tx.send(Msg::News(news));
        })
    }
}
