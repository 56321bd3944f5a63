//! Opening a run: read what the store already holds (committed work-tables, published
//! outputs, attempts of earlier processes), prepare the cluster provider, start the ledger
//! writer, say what is reused, and hand the machine its first event.

use super::ledger::{Ledger, LedgerLink};
use super::{Driver, RunEnd, RunInput};
use crate::inspect::{Inspection, inspect};
use crate::ledger::{EventLog, RunRecord, RunStatus};
use crate::store::Store;
use rand::SeedableRng;
use respawn_core::contract::event::RunEvent;
use respawn_core::contract::fingerprint::fingerprints;
use respawn_core::machine::{Event, Machine, Setup};
use respawn_core::workflow::Market;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

impl Driver {
    pub(super) async fn new(input: RunInput) -> Result<Driver, RunEnd> {
        let RunInput {
            workflow,
            plan,
            store,
            layout,
            record,
            lease,
            clusters,
            workflow_dir,
            cwd,
            chaos,
            interval,
            transfer,
            stop_grace,
            clock,
            listen_for_signals,
            sink,
            model,
            publish_due,
        } = input;
        let setup = Setup::new(&workflow, &plan);
        let fingerprints = fingerprints(&workflow);
        let run_id = record.value.run_id.clone();
        let batch = record.value.batch.clone();
        let Inspection {
            durable,
            published,
            attempts,
            stale,
        } = inspect(&store, &layout, &workflow, &fingerprints, &record.value)
            .await
            .map_err(RunEnd::Store)?;
        let prepared = clusters.prepare().await.map_err(RunEnd::Io)?;
        let events = EventLog::open(&store, &layout, &run_id, clock.now())
            .await
            .map_err(RunEnd::Store)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut initial = record.value.clone();
        initial.status = RunStatus::Running;
        initial.finished_at = None;
        initial.message = None;
        initial.cluster_kind = Some(respawn_core::learn::cluster_kind(&workflow));
        let ledger = LedgerLink::start(
            Ledger {
                store: store.clone(),
                layout: layout.clone(),
                record,
                shared: Arc::new(Mutex::new(initial.clone())),
                events,
                clock: clock.clone(),
            },
            tx.clone(),
        );
        let mut driver = Driver {
            machine: Machine::new(setup.clone()),
            setup,
            chaos: chaos.map(super::chaos::ChaosDraws::new),
            base_attempt: attempts,
            durable,
            local: vec![None; workflow.stages.len()],
            cluster: None,
            replacement: None,
            gone: BTreeSet::new(),
            first_generation: initial.generations + 1,
            ledger,
            tx,
            rx,
            tasks: JoinSet::new(),
            started: tokio::time::Instant::now(),
            jitter: rand_pcg::Pcg64::seed_from_u64(seed_of(clock.as_ref())),
            outcome: None,
            failed_stage: None,
            launched_at: vec![0.0; workflow.stages.len()],
            held: Default::default(),
            reclaimed: BTreeSet::new(),
            checks: Default::default(),
            prior: workflow
                .stages
                .iter()
                .map(|s| initial.stages.get(&s.name).cloned().unwrap_or_default())
                .collect(),
            logs: JoinSet::new(),
            store,
            layout,
            run_id,
            batch,
            clusters,
            settings: super::Settings {
                workflow_dir: workflow_dir.display().to_string(),
                cwd,
                interval,
                transfer,
                stop_grace,
                listen_for_signals,
                model,
            },
            clock,
            signals: None,
            sink,
            lease: Some(lease),
            fingerprints,
            workflow,
        };
        driver.announce(stale, prepared);
        driver.begin(&initial, published).await;
        if let Some(due) = publish_due {
            driver.watch_publish_due(due);
        }
        Ok(driver)
    }

    /// Says what the run starts from: the work-table kinds in its record, the stages that
    /// run again, what the providers swept, a chaos setting at odds with the workflow, and
    /// the run's start with the stages it reuses.
    fn announce(&mut self, stale: Vec<(String, String)>, prepared: Vec<String>) {
        self.record_work_table_kinds();
        for (stage, message) in stale {
            self.emit(RunEvent::Stale {
                message,
                stage: Some(stage),
            });
        }
        for message in prepared {
            self.emit(RunEvent::Swept { message });
        }
        let mismatch = (self.chaos.as_ref())
            .and_then(|draws| draws.chaos.mismatch(self.workflow.cluster.mtti));
        if let Some(message) = mismatch {
            self.emit(RunEvent::Note { message });
        }
        let reused = (self.workflow.stages.iter().zip(&self.durable))
            .filter(|(_, d)| d.is_some())
            .map(|(s, _)| s.name.clone())
            .collect();
        self.emit(RunEvent::RunStarted {
            workflow: self.workflow.name.clone(),
            run_id: self.run_id.clone(),
            batch: self.batch.clone(),
            store: self.store.describe(),
            reused,
        });
    }

    /// Hands the machine what the earlier processes of the run did and what the store
    /// holds, and carries out what it says first.
    async fn begin(&mut self, initial: &RunRecord, published: Vec<bool>) {
        let market = (initial.markets.last()).and_then(|m| Market::from_name(&m.market));
        let interruptions = u32::try_from(initial.interruptions.len()).unwrap_or(u32::MAX);
        self.machine
            .resume(initial.generations, interruptions, market);
        let committed: Vec<bool> = self.durable.iter().map(Option::is_some).collect();
        let actions = self.machine.apply(Event::Started {
            committed,
            published,
        });
        self.execute(actions).await;
    }

    /// The run record says which work-tables are checkpoints and which are ephemeral.
    fn record_work_table_kinds(&mut self) {
        let kinds: Vec<(String, &str)> = self
            .workflow
            .stages
            .iter()
            .enumerate()
            .map(|(s, stage)| {
                let kind = if self.setup.checkpoint[s] {
                    "checkpoint"
                } else {
                    "ephemeral"
                };
                (stage.name.clone(), kind)
            })
            .collect();
        self.with_record(|record| {
            for (name, kind) in kinds {
                record.stages.entry(name).or_default().work_table = Some(kind.into());
            }
        });
        self.sync_record();
    }
}

/// The seed of the launch jitter: the clock's nanoseconds.
fn seed_of(clock: &dyn crate::clock::Clock) -> u64 {
    clock
        .now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}
