//! One message at a time: what the cluster, the transfers, the timers and the signals said,
//! turned into the machine's events (and the run's events). Messages about a cluster that
//! is already gone are ignored: its processes were killed with it.

use super::record::{append_log, log_tail};
use super::{Driver, Msg, RunEnd};
use crate::cluster::{Cluster, ClusterEnd, ClusterNews, Output, ProvisionError, StepEnd};
use crate::inspect::Durable;
use crate::ledger::CommitManifest;
use crate::store::{Store, StoreError, local_files};
use respawn_core::contract::event::RunEvent;
use respawn_core::machine::{Event, Exit, Outcome};
use respawn_core::workflow::units::format_seconds;
use respawn_core::workflow::{Market, StageId};
use std::time::Duration;

/// Seconds rounded to the millisecond, as events carry them.
pub(super) fn seconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

impl Driver {
    /// Handles one message; returns the end of the run when it came.
    pub(super) async fn handle(&mut self, msg: Msg) -> Option<RunEnd> {
        let end = match msg {
            Msg::Ready { generation, result } => self.on_ready(generation, result).await,
            Msg::News(news) => self.on_news(news).await,
            Msg::Persisted {
                generation,
                stage,
                attempt,
                result,
            } => self.on_persisted(generation, stage, attempt, result).await,
            Msg::Restored {
                generation,
                stage,
                result,
            } => self.on_restored(generation, stage, result).await,
            Msg::Published { stage, result } => match result {
                Ok(output) => {
                    self.on_published(stage, output).await;
                    None
                }
                Err(error) => Some(RunEnd::Store(error)),
            },
            Msg::Lose { generation, cause } => {
                self.lose(generation, cause, true).await;
                None
            }
            Msg::Leave { generation, cause } => {
                self.lose(generation, cause, false).await;
                None
            }
            Msg::LoseNode { generation } => {
                self.lose_node(generation).await;
                None
            }
            Msg::Notice {
                generation,
                kind,
                lead,
                instances,
            } => {
                // Chaos warns of whole-cluster losses.
                self.on_notice(generation, kind, lead, instances, true)
                    .await;
                None
            }
            Msg::NoticeLapsed { generation } => {
                self.on_notice_lapsed(generation).await;
                None
            }
            Msg::Interrupt => {
                self.on_interrupt().await;
                None
            }
            Msg::Late { due } => {
                self.on_late(due);
                None
            }
            Msg::RetryDue { stage } => {
                self.apply(Event::RetryDue { stage }, None).await;
                None
            }
            Msg::Stop => {
                let message = "stopping: the run will resume with the same command".to_string();
                self.stop(message).await;
                None
            }
            Msg::Fatal(error) => Some(RunEnd::Store(error)),
        };
        end.or_else(|| self.outcome.take().map(|outcome| self.end_of(outcome)))
    }

    /// What a cluster reported: its end, a notice, nodes lost, a note, an attempt's exit.
    async fn on_news(&mut self, news: ClusterNews) -> Option<RunEnd> {
        match news {
            ClusterNews::Ended {
                generation,
                end,
                cause,
            } => return self.on_cluster_ended(generation, end, cause).await,
            ClusterNews::Notice {
                generation,
                kind,
                lead,
                instances,
                whole,
            } => {
                self.on_notice(generation, kind, lead, instances, whole)
                    .await
            }
            ClusterNews::NodesLost {
                generation,
                stage,
                attempt,
                instances,
                remaining,
            } => {
                let cause = format!("EC2 reclaimed {} while the step ran", instances.join(", "));
                let nodes = u32::try_from(instances.len()).unwrap_or(u32::MAX);
                let lost = (nodes > 0).then_some((nodes, remaining, cause));
                self.nodes_lost(generation, vec![(stage, attempt)], lost, false)
                    .await;
            }
            ClusterNews::Note { message } => self.emit(RunEvent::Note { message }),
            ClusterNews::Exited {
                generation,
                stage,
                attempt,
                end,
            } => return self.on_exited(generation, stage, attempt, end).await,
        }
        None
    }

    /// A final stage's output was published.
    async fn on_published(&mut self, stage: StageId, output: String) {
        let name = self.workflow.stages[stage].name.clone();
        let batch = self.batch.clone();
        self.emit(RunEvent::Published {
            stage: name,
            batch,
            output,
        });
        self.apply(Event::Published { stage }, Some(stage)).await;
    }

    /// Feeds the machine one event and carries out its actions; `stage`'s record follows.
    pub(super) async fn apply(&mut self, event: Event, stage: Option<StageId>) {
        let actions = self.machine.apply(event);
        if let Some(stage) = stage {
            self.sync_stage(stage);
        }
        self.execute(actions).await;
    }

    async fn stop(&mut self, message: String) {
        self.emit(RunEvent::Stopping { message });
        self.tasks.abort_all();
        self.apply(Event::Stop, None).await;
    }

    async fn on_ready(
        &mut self,
        generation: u32,
        result: Result<Cluster, ProvisionError>,
    ) -> Option<RunEnd> {
        let cluster = match result {
            Ok(cluster) => cluster,
            Err(ProvisionError::Lost { cause, released }) => {
                self.lose_while_provisioning(generation, cause, released)
                    .await;
                return None;
            }
            Err(ProvisionError::Broken(message)) => {
                return Some(RunEnd::Failed {
                    message: format!("cluster {generation} cannot start: {message}"),
                    log_tail: String::new(),
                });
            }
        };
        if self.gone.contains(&generation) {
            // Released before it was up.
            self.end_unused(cluster).await;
            return None;
        }
        let market = cluster.market();
        self.hold(generation, cluster.placement());
        self.emit(RunEvent::ClusterReady {
            generation,
            market,
            provider: self.clusters.name().to_string(),
            cluster: cluster.describe(),
        });
        if let Some(cluster) = self.park_replacement(cluster) {
            self.cluster = Some(cluster);
            self.local = vec![None; self.workflow.stages.len()];
        }
        if market == Market::Spot {
            self.schedule_chaos(generation);
        }
        self.apply(Event::ClusterReady { generation }, None).await;
        None
    }

    async fn on_cluster_ended(
        &mut self,
        generation: u32,
        end: ClusterEnd,
        cause: String,
    ) -> Option<RunEnd> {
        if self.gone.contains(&generation)
            || self.cluster.as_ref().map(Cluster::generation) != Some(generation)
        {
            return None;
        }
        match end {
            ClusterEnd::Lost => self.lose(generation, cause, true).await,
            ClusterEnd::Stopped => {
                let message =
                    format!("{cause}: stopping; the run will resume with the same command");
                self.stop(message).await;
            }
            ClusterEnd::Broken => {
                return Some(RunEnd::Failed {
                    message: format!("the cluster cannot work: {cause}"),
                    log_tail: String::new(),
                });
            }
        }
        None
    }

    async fn on_exited(
        &mut self,
        generation: u32,
        stage: StageId,
        attempt: u32,
        end: StepEnd,
    ) -> Option<RunEnd> {
        let check = self.check_ended(stage, attempt);
        if self.reclaimed.remove(&(stage, attempt)) {
            self.end_reclaimed(stage, attempt);
            return None;
        }
        let (end, bytes) = match check {
            None => {
                self.refuse_bad_output(generation, stage, attempt, end)
                    .await
            }
            Some(_) => (end, None),
        };
        if let StepEnd::Failed {
            detail: Some(detail),
            ..
        } = &end
        {
            let name = &self.workflow.stages[stage].name;
            append_log(&self.clusters.scratch().log_path(name, attempt), detail);
        }
        self.save_log(stage, attempt);
        if let Some(cluster) = self.cluster.as_mut()
            && cluster.generation() == generation
        {
            cluster.forget(stage, attempt);
        }
        if self.gone.contains(&generation) {
            return None;
        }
        let alive = self
            .cluster
            .as_ref()
            .is_some_and(|c| c.generation() == generation && c.is_alive());
        if !alive {
            let cause = "its scratch directory vanished while a stage ran".to_string();
            self.lose(generation, cause, true).await;
            return None;
        }
        let exit = match (check, &end) {
            (Some(index), _) => match self.on_check_exited(stage, attempt, index, &end) {
                Some(exit) => return self.tell_exit(stage, attempt, exit).await,
                None => return None,
            },
            (None, StepEnd::Success) => Exit::Success,
            (None, StepEnd::Failed { code, .. }) => Exit::Failed { code: *code },
        };
        let name = self.workflow.stages[stage].name.clone();
        match exit {
            Exit::Success => {
                self.succeeded(stage, attempt, bytes);
                if self.start_checks(stage, attempt) {
                    return None;
                }
            }
            Exit::Failed { code } | Exit::Refused { code } => {
                let log = self
                    .store
                    .locate(&self.layout.log(&self.run_id, &name, attempt));
                self.emit(RunEvent::Exit {
                    stage: name,
                    attempt,
                    code,
                    log: Some(log),
                });
            }
        }
        self.tell_exit(stage, attempt, exit).await
    }

    /// An attempt whose node was reclaimed ended: its log says so, and it is no news (its
    /// stage runs again).
    fn end_reclaimed(&mut self, stage: StageId, attempt: u32) {
        let name = &self.workflow.stages[stage].name;
        let note = "respawn: the node this attempt ran on was reclaimed; it runs again";
        append_log(&self.clusters.scratch().log_path(name, attempt), note);
        self.save_log(stage, attempt);
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.forget(stage, attempt);
        }
    }

    /// An attempt exited 0: its time and output size go into the record, and its
    /// work-table is where the cluster's consumers will read it.
    fn succeeded(&mut self, stage: StageId, attempt: u32, bytes: Option<u64>) {
        let name = self.workflow.stages[stage].name.clone();
        let ran = seconds(self.started.elapsed()) - self.launched_at[stage];
        self.with_record(|record| {
            let entry = record.stages.entry(name.clone()).or_default();
            entry.seconds = Some(ran.max(0.0));
            entry.bytes = bytes;
        });
        self.note_overrun(stage, ran);
        let output = self.output_of(stage, attempt);
        self.local[stage] = output.map(|o| (o, format!("{}/{name}/{attempt}", self.run_id)));
        self.emit(RunEvent::Exit {
            stage: name,
            attempt,
            code: 0,
            log: None,
        });
    }

    /// Tells the machine how an attempt (numbered over the run) ended.
    async fn tell_exit(&mut self, stage: StageId, attempt: u32, exit: Exit) -> Option<RunEnd> {
        let machine_attempt = attempt - self.base_attempt[stage];
        let event = Event::StageExited {
            stage,
            attempt: machine_attempt,
            exit,
        };
        self.apply(event, Some(stage)).await;
        None
    }

    /// Says so when an attempt that succeeded ran more than twice its stage's estimate
    /// (as planned: the file's, or what earlier runs taught).
    fn note_overrun(&mut self, stage: StageId, ran: f64) {
        let estimate = self.workflow.stages[stage].estimate.as_secs_f64();
        if estimate > 0.0 && ran > 2.0 * estimate {
            let name = &self.workflow.stages[stage].name;
            let message = format!(
                "stage `{name}` ran {}, more than twice its estimate of {}; later plans learn from the runs (`respawn stats` compares them)",
                format_seconds(ran),
                format_seconds(estimate)
            );
            self.emit(RunEvent::Note { message });
        }
    }

    /// A stage that exits 0 but leaves what a work-table may not hold (a symbolic link, a
    /// FIFO, a name that is no store key: see `local_files`) failed, with the reason
    /// naming the file in its log. Otherwise the size of a local output, when it has one.
    async fn refuse_bad_output(
        &mut self,
        generation: u32,
        stage: StageId,
        attempt: u32,
        end: StepEnd,
    ) -> (StepEnd, Option<u64>) {
        let current = !self.gone.contains(&generation)
            && self
                .cluster
                .as_ref()
                .is_some_and(|c| c.generation() == generation && c.is_alive());
        let Some(Output::Dir(dir)) = self.output_of(stage, attempt) else {
            return (end, None);
        };
        if end != StepEnd::Success || !current {
            return (end, None);
        }
        let checked = tokio::task::spawn_blocking(move || {
            local_files(&dir).try_fold(0u64, |total, file| {
                let size = std::fs::metadata(dir.join(file?)).map_or(0, |m| m.len());
                Ok::<u64, std::io::Error>(total + size)
            })
        })
        .await;
        match checked {
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::InvalidData => {
                let detail =
                    format!("respawn: the stage exited 0, but its output is refused: {error}");
                let refused = StepEnd::Failed {
                    code: 0,
                    detail: Some(detail),
                };
                (refused, None)
            }
            Ok(Ok(bytes)) => (end, Some(bytes)),
            _ => (end, None),
        }
    }

    async fn on_persisted(
        &mut self,
        generation: u32,
        stage: StageId,
        attempt: u32,
        result: Result<(CommitManifest, Duration), StoreError>,
    ) -> Option<RunEnd> {
        let machine_attempt = attempt - self.base_attempt[stage];
        match result {
            Ok((manifest, took)) => {
                let name = self.workflow.stages[stage].name.clone();
                self.emit(RunEvent::Committed {
                    stage: name.clone(),
                    attempt: manifest.attempt,
                    files: manifest.file_count() as usize,
                    bytes: manifest.total_size(),
                    seconds: seconds(took),
                    window: !self.setup.checkpoint[stage] && !self.setup.is_final[stage],
                });
                if manifest.attempt == attempt {
                    let bytes = manifest.total_size();
                    self.with_record(|record| {
                        let entry = record.stages.entry(name.clone()).or_default();
                        entry.bytes.get_or_insert(bytes);
                    });
                }
                self.durable[stage] = Some(Durable::committed(&self.layout, &manifest));
                let event = Event::Committed {
                    stage,
                    attempt: machine_attempt,
                };
                self.apply(event, Some(stage)).await;
            }
            Err(error) => {
                let lost = self.gone.contains(&generation)
                    || !self.cluster.as_ref().is_some_and(|c| c.is_alive());
                if !lost {
                    return Some(RunEnd::Store(error));
                }
                let cause = "its scratch directory vanished during an upload".to_string();
                self.lose(generation, cause, true).await;
                let event = Event::PersistFailed {
                    stage,
                    attempt: machine_attempt,
                };
                self.apply(event, Some(stage)).await;
            }
        }
        None
    }

    async fn on_restored(
        &mut self,
        generation: u32,
        stage: StageId,
        result: Result<(u64, Duration), StoreError>,
    ) -> Option<RunEnd> {
        let current = self.cluster.as_ref().map(Cluster::generation) == Some(generation)
            && !self.gone.contains(&generation);
        match result {
            Ok((bytes, took)) if current => {
                let name = self.workflow.stages[stage].name.clone();
                let restored = self.cluster.as_ref().and_then(|c| c.restore_dir(&name));
                if let Some(durable) = &self.durable[stage] {
                    let output = match restored {
                        Some(dir) => Output::Dir(dir),
                        None => Output::InStore(self.store.locate(&durable.prefix)),
                    };
                    self.local[stage] = Some((output, durable.commit_id.clone()));
                }
                self.emit(RunEvent::Restored {
                    stage: name,
                    generation,
                    bytes,
                    seconds: seconds(took),
                });
                self.apply(Event::Restored { stage, generation }, None)
                    .await;
            }
            Ok(_) => {}
            Err(error) => {
                if current && self.cluster.as_ref().is_some_and(|c| c.is_alive()) {
                    return Some(RunEnd::Store(error));
                }
                if current {
                    let cause = "its scratch directory vanished during a restore".into();
                    self.lose(generation, cause, true).await;
                }
            }
        }
        None
    }

    /// `respawn interrupt`: lose the cluster if it is spot, say why not otherwise.
    async fn on_interrupt(&mut self) {
        let message = match &self.cluster {
            Some(cluster) if cluster.market() == Market::Spot => {
                let generation = cluster.generation();
                let cause = "interrupted by `respawn interrupt`".to_string();
                self.lose(generation, cause, true).await;
                return;
            }
            Some(_) => "the cluster is on-demand: spot interruptions do not reach it",
            None => "no cluster is up at the moment",
        };
        self.emit(RunEvent::InterruptIgnored {
            message: message.into(),
        });
    }

    pub(super) fn end_of(&mut self, outcome: Outcome) -> RunEnd {
        match outcome {
            Outcome::Succeeded => RunEnd::Succeeded,
            Outcome::Stopped => RunEnd::Stopped,
            Outcome::Failed {
                stage,
                code,
                attempts,
            } => {
                let name = &self.workflow.stages[stage].name;
                let attempt = self.base_attempt[stage] + attempts;
                let log = self
                    .store
                    .locate(&self.layout.log(&self.run_id, name, attempt));
                let tail = log_tail(&self.clusters.scratch().log_path(name, attempt), 20);
                let refused_by = (self.checks.refused.as_ref())
                    .filter(|(refused, _)| *refused == stage)
                    .map(|(_, check)| check.clone());
                let place = format!(
                    "{}:{}",
                    self.workflow.file, self.workflow.stages[stage].line
                );
                let message = match refused_by {
                    Some(check) => format!(
                        "stage `{name}` ({place}): its check `{check}` refused the output of attempt {attempt} (exit code {code}); nothing of it was committed or published, and a refused output is not retried; the log is {log}"
                    ),
                    // An exit code of 0 is a failure only when its output was refused.
                    None if code == 0 => format!(
                        "stage `{name}` ({place}) wrote an output that is not a valid work-table after {attempts} attempt(s) in this run; its log is {log}"
                    ),
                    None => format!(
                        "stage `{name}` ({place}) failed with exit code {code} after {attempts} attempt(s) in this run; its log is {log}"
                    ),
                };
                RunEnd::Failed {
                    message,
                    log_tail: tail,
                }
            }
        }
    }
}
