//! The thin async driver: executes the machine's actions against the store and a local
//! cluster, and turns what happens (processes ending, uploads landing, timers, signals,
//! a vanished scratch directory) back into events.
//!
//! Everything runs on one task that owns the machine; transfers, process waits and
//! timers are spawned and report through one channel. The run record and the event log
//! are written by a second task, in order, coalescing record updates.

use super::fingerprint::fingerprints;
use super::inspect::{Durable, Inspection, inspect};
use super::machine::{Action, Event, Exit, Machine, Outcome, Setup, StageState};
use crate::drivers::cluster::{
    Cluster, ClusterEnd, ClusterNews, ClusterProvider, Notify, Output, ProvisionError,
    StageCommand, StepEnd,
};
use crate::drivers::ledger::{
    CommitManifest, CommitOutcome, EventLog, Interruption, Layout, Lease, LeaseError, MarketChange,
    RunRecord, RunStatus, StageRecord, Versioned, commit, publish_output, timestamp,
};
use crate::drivers::store::{
    AnyStore, Store, StoreError, StoreErrorKind, TransferOptions, download_dir, sum_prefix,
    upload_dir,
};
use crate::plan::Plan;
use crate::workflow::template::Bindings;
use crate::workflow::{Cleanup, Market, StageId, Workflow};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

/// The spot simulator: a spot cluster is lost after an exponential time with mean `mtti`.
#[derive(Clone, Debug, PartialEq)]
pub struct Chaos {
    pub mtti: Duration,
    pub seed: u64,
    /// Overrides `cluster.provision_time` for local clusters.
    pub provision: Option<Duration>,
}

impl std::str::FromStr for Chaos {
    type Err = String;

    /// `mtti=30s,seed=7[,provision=2s]`.
    fn from_str(text: &str) -> Result<Chaos, String> {
        let mut mtti = None;
        let mut seed = 1;
        let mut provision = None;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not KEY=VALUE (e.g. `mtti=30s,seed=7`)"))?;
            match key.trim() {
                "mtti" => {
                    let d = crate::workflow::units::parse_duration(value.trim())?;
                    if d.is_zero() {
                        return Err("mtti must be longer than zero".into());
                    }
                    mtti = Some(d);
                }
                "seed" => {
                    seed = value
                        .trim()
                        .parse()
                        .map_err(|_| format!("seed `{value}` is not a whole number"))?
                }
                "provision" => {
                    provision = Some(crate::workflow::units::parse_duration(value.trim())?)
                }
                other => {
                    return Err(format!(
                        "unknown chaos setting `{other}`; the settings are mtti, seed and provision"
                    ));
                }
            }
        }
        Ok(Chaos {
            mtti: mtti.ok_or("mtti is required, e.g. `mtti=30s,seed=7`")?,
            seed,
            provision,
        })
    }
}

/// Everything a run needs; the caller has chosen the run and holds the lease.
pub struct RunInput {
    pub workflow: Workflow,
    pub plan: Plan,
    pub store: AnyStore,
    pub layout: Layout,
    pub record: Versioned<RunRecord>,
    pub lease: Lease,
    pub clusters: ClusterProvider,
    /// The folder of the workflow file, absolute (`{{ workflow_dir }}`).
    pub workflow_dir: PathBuf,
    /// Where stage commands run.
    pub cwd: PathBuf,
    pub chaos: Option<Chaos>,
    pub transfer: TransferOptions,
    /// How long stages get between SIGTERM and SIGKILL when the run stops.
    pub stop_grace: Duration,
    /// Receives every event as it happens (the CLI prints them).
    pub sink: Box<dyn FnMut(&Value) + Send>,
}

/// How a run ended.
#[derive(Debug)]
pub enum RunEnd {
    Succeeded,
    Failed {
        message: String,
        log_tail: String,
    },
    Stopped,
    Store(StoreError),
    Lease(LeaseError),
    /// A local problem (the scratch directory could not be made, say).
    Io(String),
}

enum Msg {
    Ready {
        generation: u32,
        result: Result<Cluster, ProvisionError>,
    },
    News(ClusterNews),
    Persisted {
        generation: u32,
        stage: StageId,
        attempt: u32,
        result: Result<(CommitManifest, Duration), StoreError>,
    },
    Restored {
        generation: u32,
        stage: StageId,
        result: Result<(u64, Duration), StoreError>,
    },
    Published {
        stage: StageId,
        result: Result<String, StoreError>,
    },
    Lose {
        generation: u32,
        cause: String,
    },
    Interrupt,
    RetryDue {
        stage: StageId,
    },
    Stop,
    Fatal(StoreError),
}

enum LedgerMsg {
    Event(Value),
    /// The shared run record changed.
    Record,
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

/// How often at most the run record is written while a run goes on (events are written
/// as they come; the record is a summary, and a resumed run reads the COMMITs anyway).
const RECORD_EVERY: Duration = Duration::from_millis(250);

/// Runs (or resumes) the run in `input` to its end.
pub async fn drive(input: RunInput) -> RunEnd {
    let mut driver = match Driver::new(input).await {
        Ok(driver) => driver,
        Err(end) => return end,
    };
    let end = driver.run().await;
    driver.finish(end).await
}

struct Driver {
    workflow: Workflow,
    store: AnyStore,
    layout: Layout,
    run_id: String,
    batch: String,
    clusters: ClusterProvider,
    workflow_dir: String,
    cwd: PathBuf,
    chaos: Option<(Chaos, rand_pcg::Pcg64)>,
    transfer: TransferOptions,
    stop_grace: Duration,
    sink: Box<dyn FnMut(&Value) + Send>,
    lease: Option<Lease>,

    setup: Setup,
    machine: Machine,
    fingerprints: Vec<String>,
    base_attempt: Vec<u32>,
    durable: Vec<Option<Durable>>,
    /// Where each work-table is for the current cluster, and the id consumers record for it.
    local: Vec<Option<(Output, String)>>,
    cluster: Option<Cluster>,
    /// Generations lost or terminated: what their processes report is ignored.
    gone: BTreeSet<u32>,
    inspection_notes: Vec<String>,

    /// The run record, shared with the task that writes it.
    record: Arc<Mutex<RunRecord>>,
    ledger: mpsc::UnboundedSender<LedgerMsg>,
    ledger_task: Option<tokio::task::JoinHandle<()>>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    tasks: JoinSet<()>,
    started: Instant,
    jitter: rand_pcg::Pcg64,
    outcome: Option<Outcome>,
    failed_stage: Option<StageId>,
    /// What the run record said of each stage when this invocation started.
    prior: Vec<StageRecord>,
    /// Log uploads, awaited before the run ends (never aborted).
    logs: JoinSet<()>,
}

fn elapsed_s(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// Quotes a value for `sh` when it holds anything but plain path characters.
pub fn shell_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./,:@%+=".contains(c));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

fn env_name(stage: &str) -> String {
    stage.to_ascii_uppercase().replace('-', "_")
}

/// Test hook: `RESPAWN_CRASH_AT=POINT:STAGE` kills the orchestrator with SIGKILL at that
/// point (`before-commit`, `after-commit`, `before-publish`), to test that nothing
/// committed is lost when the orchestrator dies.
fn crash_point(point: &str, stage: &str) {
    if let Ok(spec) = std::env::var("RESPAWN_CRASH_AT")
        && spec == format!("{point}:{stage}")
    {
        // SAFETY: raising a signal at ourselves has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

impl Driver {
    async fn new(input: RunInput) -> Result<Driver, RunEnd> {
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
            transfer,
            stop_grace,
            sink,
        } = input;
        let setup = Setup::new(&workflow, &plan);
        let fingerprints = fingerprints(&workflow);
        let run_id = record.value.run_id.clone();
        let batch = record.value.batch.clone();
        let Inspection {
            durable,
            published,
            attempts,
            notes,
        } = match inspect(&store, &layout, &workflow, &fingerprints, &record.value).await {
            Ok(found) => found,
            Err(error) => return Err(RunEnd::Store(error)),
        };
        let prepared = clusters.prepare().await.map_err(RunEnd::Io)?;
        let (ledger, ledger_rx) = mpsc::unbounded_channel();
        let (tx, rx) = mpsc::unbounded_channel();
        let events = match EventLog::open(&store, &layout, &run_id).await {
            Ok(log) => log,
            Err(error) => return Err(RunEnd::Store(error)),
        };
        let mut initial = record.value.clone();
        initial.status = RunStatus::Running;
        initial.finished_at = None;
        initial.message = None;
        let shared = Arc::new(Mutex::new(initial.clone()));
        let ledger_task = tokio::spawn(write_ledger(
            store.clone(),
            layout.clone(),
            record,
            shared.clone(),
            events,
            ledger_rx,
            tx.clone(),
        ));
        let seed_nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7);
        let mut driver = Driver {
            machine: Machine::new(setup.clone()),
            setup,
            chaos: chaos.map(|c| {
                let rng = rand_pcg::Pcg64::seed_from_u64(c.seed);
                (c, rng)
            }),
            base_attempt: attempts,
            durable,
            local: vec![None; workflow.stages.len()],
            cluster: None,
            gone: BTreeSet::new(),
            inspection_notes: notes,
            record: shared.clone(),
            ledger,
            ledger_task: Some(ledger_task),
            tx,
            rx,
            tasks: JoinSet::new(),
            started: Instant::now(),
            jitter: rand_pcg::Pcg64::seed_from_u64(seed_nanos),
            outcome: None,
            failed_stage: None,
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
            workflow_dir: workflow_dir.display().to_string(),
            cwd,
            transfer,
            stop_grace,
            sink,
            lease: Some(lease),
            fingerprints,
            workflow,
        };
        let kinds: Vec<(String, &str)> = driver
            .workflow
            .stages
            .iter()
            .enumerate()
            .map(|(s, stage)| {
                let kind = if driver.setup.checkpoint[s] {
                    "checkpoint"
                } else {
                    "ephemeral"
                };
                (stage.name.clone(), kind)
            })
            .collect();
        driver.with_record(|record| {
            for (name, kind) in kinds {
                record.stages.entry(name).or_default().work_table = Some(kind.into());
            }
        });
        driver.sync_record();
        let notes = std::mem::take(&mut driver.inspection_notes);
        for note in notes {
            driver.emit(json!({"event": "stale", "message": note}));
        }
        for note in prepared {
            driver.emit(json!({"event": "swept", "message": note}));
        }
        if let Some((chaos, _)) = &driver.chaos {
            let planned = driver.workflow.cluster.mtti;
            // Checkpoints are placed for the file's MTTI; say so when chaos is far from it.
            if chaos.mtti.as_secs_f64() * 2.0 < planned.as_secs_f64()
                || chaos.mtti.as_secs_f64() > planned.as_secs_f64() * 2.0
            {
                let message = format!(
                    "chaos interrupts spot clusters every {} on average, but checkpoints are \
                     planned for cluster.mtti {}; set cluster.mtti to plan for the chaos rate",
                    humantime::format_duration(chaos.mtti),
                    humantime::format_duration(planned)
                );
                driver.emit(json!({"event": "note", "message": message}));
            }
        }
        let committed: Vec<bool> = driver.durable.iter().map(Option::is_some).collect();
        let started = Event::Started {
            committed: committed.clone(),
            published,
        };
        let reused: Vec<&str> = driver
            .workflow
            .stages
            .iter()
            .zip(&committed)
            .filter(|(_, c)| **c)
            .map(|(s, _)| s.name.as_str())
            .collect();
        driver.emit(json!({
            "event": "run-started",
            "workflow": driver.workflow.name,
            "run_id": driver.run_id,
            "batch": driver.batch,
            "store": driver.store.describe(),
            "reused": reused,
        }));
        let actions = driver.machine.apply(started);
        driver.execute(actions).await;
        Ok(driver)
    }

    async fn run(&mut self) -> RunEnd {
        let mut signals = match Signals::new() {
            Ok(signals) => signals,
            Err(e) => return RunEnd::Io(format!("cannot listen for signals: {e}")),
        };
        let renew_every = self
            .lease
            .as_ref()
            .map(|l| l.ttl() / 3)
            .unwrap_or(Duration::from_secs(10))
            .max(Duration::from_millis(200));
        let mut renew =
            tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
        let mut watch = tokio::time::interval(Duration::from_millis(200));
        loop {
            if let Some(outcome) = self.outcome.take() {
                return self.end_of(outcome);
            }
            let msg = tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(msg) => msg,
                    None => return RunEnd::Io("the driver's channel closed".into()),
                },
                signal = signals.next() => signal,
                _ = renew.tick() => {
                    if let Err(end) = self.renew_lease().await {
                        return end;
                    }
                    continue;
                }
                _ = watch.tick() => {
                    match &self.cluster {
                        Some(cluster) if !self.gone.contains(&cluster.generation()) && !cluster.is_alive() => Msg::Lose {
                            generation: cluster.generation(),
                            cause: format!("its scratch directory {} vanished", cluster.describe()),
                        },
                        _ => continue,
                    }
                }
            };
            if let Some(end) = self.handle(msg).await {
                return end;
            }
        }
    }

    async fn renew_lease(&mut self) -> Result<(), RunEnd> {
        let Some(lease) = self.lease.as_mut() else {
            return Ok(());
        };
        match lease.renew(&self.store, SystemTime::now()).await {
            Ok(()) => Ok(()),
            Err(LeaseError::Store(error)) if error.is_transient() => {
                tracing::warn!("could not renew the lease (will retry): {error}");
                let expires = lease.record.expires_unix;
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                if now + 2 >= expires {
                    self.lease = None;
                    return Err(RunEnd::Store(error));
                }
                Ok(())
            }
            Err(error) => {
                self.lease = None;
                Err(RunEnd::Lease(error))
            }
        }
    }

    /// Handles one message; returns the end of the run when it came.
    async fn handle(&mut self, msg: Msg) -> Option<RunEnd> {
        match msg {
            Msg::Ready { generation, result } => {
                let cluster = match result {
                    Ok(cluster) => cluster,
                    Err(ProvisionError::Lost(cause)) => {
                        self.lose_while_provisioning(generation, cause).await;
                        return self.outcome.take().map(|outcome| self.end_of(outcome));
                    }
                    Err(ProvisionError::Broken(message)) => {
                        return Some(RunEnd::Failed {
                            message: format!("cluster {generation} cannot start: {message}"),
                            log_tail: String::new(),
                        });
                    }
                };
                let market = cluster.market();
                self.emit(json!({
                    "event": "cluster-ready",
                    "generation": generation,
                    "market": market.as_str(),
                    "provider": self.clusters.name(),
                    "cluster": cluster.describe(),
                }));
                self.cluster = Some(cluster);
                self.local = vec![None; self.workflow.stages.len()];
                if market == Market::Spot
                    && let Some((chaos, rng)) = self.chaos.as_mut()
                {
                    let u: f64 = rng.random::<f64>();
                    let after = -chaos.mtti.as_secs_f64() * (1.0 - u).ln();
                    let tx = self.tx.clone();
                    self.tasks.spawn(async move {
                        tokio::time::sleep(Duration::from_secs_f64(after)).await;
                        let _ = tx.send(Msg::Lose {
                            generation,
                            cause: format!("spot interruption (chaos, after {after:.1}s)"),
                        });
                    });
                }
                let actions = self.machine.apply(Event::ClusterReady { generation });
                self.execute(actions).await;
            }
            Msg::News(ClusterNews::Ended {
                generation,
                end,
                cause,
            }) => {
                if self.gone.contains(&generation)
                    || self.cluster.as_ref().map(Cluster::generation) != Some(generation)
                {
                    return None;
                }
                match end {
                    ClusterEnd::Lost => self.lose(generation, cause).await,
                    ClusterEnd::Stopped => {
                        self.emit(json!({"event": "stopping", "message": format!("{cause}: stopping; the run will resume with the same command")}));
                        self.tasks.abort_all();
                        let actions = self.machine.apply(Event::Stop);
                        self.execute(actions).await;
                    }
                    ClusterEnd::Broken => {
                        return Some(RunEnd::Failed {
                            message: format!("the cluster cannot work: {cause}"),
                            log_tail: String::new(),
                        });
                    }
                }
            }
            Msg::News(ClusterNews::Exited {
                generation,
                stage,
                attempt,
                end,
            }) => {
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
                    self.lose(generation, cause).await;
                    return self.outcome.take().map(|outcome| self.end_of(outcome));
                }
                let exit = match end {
                    StepEnd::Success => Exit::Success,
                    StepEnd::Failed { code, .. } => Exit::Failed { code },
                };
                let name = self.workflow.stages[stage].name.clone();
                match exit {
                    Exit::Success => {
                        let output = self.output_of(stage, attempt);
                        self.local[stage] =
                            output.map(|o| (o, format!("{}/{name}/{attempt}", self.run_id)));
                        self.emit(
                            json!({"event": "exit", "stage": name, "attempt": attempt, "code": 0}),
                        );
                    }
                    Exit::Failed { code } => {
                        self.emit(json!({
                            "event": "exit", "stage": name, "attempt": attempt, "code": code,
                            "log": self.store.locate(&self.layout.log(&self.run_id, &name, attempt)),
                        }));
                    }
                }
                let machine_attempt = attempt - self.base_attempt[stage];
                let actions = self.machine.apply(Event::StageExited {
                    stage,
                    attempt: machine_attempt,
                    exit,
                });
                self.sync_stage(stage);
                self.execute(actions).await;
            }
            Msg::Persisted {
                generation,
                stage,
                attempt,
                result,
            } => match result {
                Ok((manifest, took)) => {
                    let name = self.workflow.stages[stage].name.clone();
                    self.emit(json!({
                        "event": "committed",
                        "stage": name,
                        "attempt": manifest.attempt,
                        "files": manifest.files.len(),
                        "bytes": manifest.total_size(),
                        "seconds": (took.as_secs_f64() * 1000.0).round() / 1000.0,
                    }));
                    self.durable[stage] = Some(Durable {
                        prefix: self.layout.attempt(&self.run_id, &name, manifest.attempt),
                        files: manifest.files.clone(),
                        commit_id: manifest.commit_id(),
                        manifest: Some(manifest),
                    });
                    let machine_attempt = attempt - self.base_attempt[stage];
                    let actions = self.machine.apply(Event::Committed {
                        stage,
                        attempt: machine_attempt,
                    });
                    self.sync_stage(stage);
                    self.execute(actions).await;
                }
                Err(error) => {
                    let lost = self.gone.contains(&generation)
                        || !self.cluster.as_ref().is_some_and(|c| c.is_alive());
                    if !lost {
                        return Some(RunEnd::Store(error));
                    }
                    self.lose(
                        generation,
                        "its scratch directory vanished during an upload".into(),
                    )
                    .await;
                    let machine_attempt = attempt - self.base_attempt[stage];
                    let actions = self.machine.apply(Event::PersistFailed {
                        stage,
                        attempt: machine_attempt,
                    });
                    self.sync_stage(stage);
                    self.execute(actions).await;
                }
            },
            Msg::Restored {
                generation,
                stage,
                result,
            } => {
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
                        self.emit(json!({
                            "event": "restored", "stage": name, "generation": generation,
                            "bytes": bytes, "seconds": (took.as_secs_f64() * 1000.0).round() / 1000.0,
                        }));
                        let actions = self.machine.apply(Event::Restored { stage, generation });
                        self.execute(actions).await;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        if current && self.cluster.as_ref().is_some_and(|c| c.is_alive()) {
                            return Some(RunEnd::Store(error));
                        }
                        if current {
                            let cause = "its scratch directory vanished during a restore".into();
                            self.lose(generation, cause).await;
                        }
                    }
                }
            }
            Msg::Published { stage, result } => match result {
                Ok(location) => {
                    let name = self.workflow.stages[stage].name.clone();
                    self.emit(json!({"event": "published", "stage": name, "batch": self.batch, "output": location}));
                    let actions = self.machine.apply(Event::Published { stage });
                    self.sync_stage(stage);
                    self.execute(actions).await;
                }
                Err(error) => return Some(RunEnd::Store(error)),
            },
            Msg::Lose { generation, cause } => self.lose(generation, cause).await,
            Msg::Interrupt => match &self.cluster {
                Some(cluster) if cluster.market() == Market::Spot => {
                    let generation = cluster.generation();
                    self.lose(generation, "interrupted by `respawn interrupt`".into())
                        .await;
                }
                Some(_) => self.emit(json!({
                    "event": "interrupt-ignored",
                    "message": "the cluster is on-demand: spot interruptions do not reach it",
                })),
                None => self.emit(json!({
                    "event": "interrupt-ignored",
                    "message": "no cluster is up at the moment",
                })),
            },
            Msg::RetryDue { stage } => {
                let actions = self.machine.apply(Event::RetryDue { stage });
                self.execute(actions).await;
            }
            Msg::Stop => {
                self.emit(json!({"event": "stopping", "message": "stopping: the run will resume with the same command"}));
                self.tasks.abort_all();
                let actions = self.machine.apply(Event::Stop);
                self.execute(actions).await;
            }
            Msg::Fatal(error) => return Some(RunEnd::Store(error)),
        }
        self.outcome.take().map(|outcome| self.end_of(outcome))
    }

    fn end_of(&mut self, outcome: Outcome) -> RunEnd {
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
                RunEnd::Failed {
                    message: format!(
                        "stage `{name}` ({}:{}) failed with exit code {code} after {attempts} attempt(s) in this run; its log is {log}",
                        self.workflow.file, self.workflow.stages[stage].line
                    ),
                    log_tail: tail,
                }
            }
        }
    }
}

impl Driver {
    fn emit(&mut self, mut event: Value) {
        if let Some(map) = event.as_object_mut() {
            map.insert("at".into(), json!(timestamp(SystemTime::now())));
            map.insert("elapsed_s".into(), json!(elapsed_s(self.started)));
        }
        (self.sink)(&event);
        let _ = self.ledger.send(LedgerMsg::Event(event));
    }

    /// Changes the run record (shared with the writer) and tells the writer.
    fn with_record<T>(&self, change: impl FnOnce(&mut RunRecord) -> T) -> T {
        let result = {
            let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
            change(&mut record)
        };
        let _ = self.ledger.send(LedgerMsg::Record);
        result
    }

    /// Brings every stage of the run record up to date with the machine.
    fn sync_record(&mut self) {
        for s in 0..self.workflow.stages.len() {
            self.sync_stage(s);
        }
    }

    /// Brings one stage of the run record up to date with the machine.
    fn sync_stage(&mut self, s: StageId) {
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

    async fn execute(&mut self, actions: Vec<Action>) {
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
                Action::RetryAfter { stage, delay } => {
                    let factor = 0.5 + self.jitter.random::<f64>();
                    let delay = delay.mul_f64(factor);
                    let name = self.workflow.stages[stage].name.clone();
                    self.emit(json!({"event": "retry", "stage": name, "delay_s": (delay.as_secs_f64() * 1000.0).round() / 1000.0}));
                    let tx = self.tx.clone();
                    self.tasks.spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = tx.send(Msg::RetryDue { stage });
                    });
                }
                Action::Terminate => self.terminate().await,
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

    fn provision(&mut self, market: Market, generation: u32, reason: String) {
        let wait = if generation == 1 || !self.clusters.simulates_provisioning() {
            Duration::ZERO
        } else {
            self.chaos
                .as_ref()
                .and_then(|(c, _)| c.provision)
                .unwrap_or(self.workflow.cluster.provision_time)
        };
        self.with_record(|record| {
            if record.markets.last().map(|m| m.market.as_str()) != Some(market.as_str()) {
                record.markets.push(MarketChange {
                    market: market.as_str().into(),
                    at: timestamp(SystemTime::now()),
                    reason: reason.clone(),
                });
            }
        });
        self.emit(json!({
            "event": "provision", "generation": generation, "market": market.as_str(),
            "reason": reason, "wait_s": wait.as_secs_f64(),
        }));
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
        let generation;
        let market;
        {
            let Some(cluster) = self.cluster.as_ref() else {
                return;
            };
            generation = cluster.generation();
            market = cluster.market();
        }
        self.adopt_attempt(stage, machine_attempt);
        let attempt = self.base_attempt[stage] + machine_attempt;
        let Some((output, line)) = self.render(stage, attempt) else {
            return;
        };
        let spec = &self.workflow.stages[stage];
        let name = spec.name.clone();
        let output_text = output.location();
        let mut env = vec![
            ("RESPAWN_OUTPUT".to_string(), output_text.clone()),
            ("RESPAWN_RUN_ID".into(), self.run_id.clone()),
            ("RESPAWN_BATCH".into(), self.batch.clone()),
            ("RESPAWN_ATTEMPT".into(), attempt.to_string()),
            ("RESPAWN_WORKFLOW".into(), self.workflow.name.clone()),
            ("RESPAWN_STAGE".into(), name.clone()),
            ("RESPAWN_WORKFLOW_DIR".into(), self.workflow_dir.clone()),
        ];
        for &input in &spec.needs {
            env.push((
                format!(
                    "RESPAWN_INPUT_{}",
                    env_name(&self.workflow.stages[input].name)
                ),
                self.input_location(input),
            ));
        }
        let log = self.clusters.scratch().log_path(&name, attempt);
        let command = StageCommand {
            line: line.clone(),
            env,
            cwd: self.cwd.clone(),
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
        self.with_record(|record| {
            let entry = record.stages.entry(name.clone()).or_default();
            entry.market = Some(market.as_str().into());
            entry.log = Some(log_object.clone());
            entry.fingerprint = Some(self.fingerprints[stage].clone());
        });
        self.emit(json!({
            "event": "launch", "stage": name, "attempt": attempt, "market": market.as_str(),
            "generation": generation, "log": log_object,
        }));
        self.sync_stage(stage);
        let notify = self.notify();
        let launched = self
            .cluster
            .as_mut()
            .map(|cluster| cluster.launch(stage, &name, attempt, &output, &command, notify));
        if let Some(Err(error)) = launched {
            let _ = self.tx.send(Msg::News(ClusterNews::Exited {
                generation,
                stage,
                attempt,
                end: StepEnd::Failed {
                    code: 1,
                    detail: Some(format!("respawn: cannot start the stage: {error}")),
                },
            }));
        }
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
    fn input_location(&self, stage: StageId) -> String {
        self.local[stage]
            .as_ref()
            .map(|(output, _)| output.location())
            .unwrap_or_default()
    }

    /// The output and the rendered `run:` line of an attempt on the current cluster.
    fn render(&self, stage: StageId, attempt: u32) -> Option<(Output, String)> {
        let output = self.output_of(stage, attempt)?;
        let quoted_input = |id: StageId| shell_quote(&self.input_location(id));
        let line = self.workflow.stages[stage].run.render(&Bindings {
            output: &shell_quote(&output.location()),
            inputs: &quoted_input,
            run_id: &self.run_id,
            batch: &self.batch,
            attempt,
            workflow_dir: &shell_quote(&self.workflow_dir),
        });
        Some((output, line))
    }

    /// Where attempt `attempt` of `stage` writes on the current cluster: a checkpointed
    /// stage may write straight to its place in the store (EMR).
    fn output_of(&self, stage: StageId, attempt: u32) -> Option<Output> {
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
    fn notify(&self) -> Notify {
        let tx = self.tx.clone();
        Arc::new(move |news| {
            let _ = tx.send(Msg::News(news));
        })
    }

    fn persist(&mut self, stage: StageId, machine_attempt: u32) {
        let attempt = self.base_attempt[stage] + machine_attempt;
        let Some(generation) = self.cluster.as_ref().map(Cluster::generation) else {
            let _ = self.tx.send(Msg::Persisted {
                generation: 0,
                stage,
                attempt,
                result: Err(StoreError::Io {
                    object: "the lost cluster".into(),
                    source: std::io::Error::other("the cluster is gone"),
                }),
            });
            return;
        };
        let spec = &self.workflow.stages[stage];
        let name = spec.name.clone();
        let Some((output, _)) = self.local[stage].clone() else {
            return;
        };
        let scratch = self.clusters.scratch().staging_dir(&format!("{name}.sum"));
        let inputs: BTreeMap<String, String> = spec
            .needs
            .iter()
            .filter_map(|&i| {
                self.local[i]
                    .as_ref()
                    .map(|(_, id)| (self.workflow.stages[i].name.clone(), id.clone()))
            })
            .collect();
        let mut manifest = CommitManifest {
            format: crate::drivers::ledger::FORMAT,
            workflow: self.workflow.name.clone(),
            run_id: self.run_id.clone(),
            stage: name.clone(),
            attempt,
            fingerprint: self.fingerprints[stage].clone(),
            inputs,
            files: Vec::new(),
            committed_at: String::new(),
        };
        let store = self.store.clone();
        let layout = self.layout.clone();
        let transfer = self.transfer.clone();
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            let began = Instant::now();
            let result = async {
                let prefix = layout.attempt(&manifest.run_id, &name, attempt);
                manifest.files = match &output {
                    Output::Dir(dir) => upload_dir(&store, dir, &prefix, &transfer).await?,
                    Output::InStore(_) => sum_prefix(&store, &prefix, &scratch, &transfer).await?,
                    Output::OnCluster(url) => {
                        return Err(StoreError::Io {
                            object: url.clone(),
                            source: std::io::Error::other(
                                "an ephemeral work-table cannot be committed",
                            ),
                        });
                    }
                };
                crash_point("before-commit", &name);
                manifest.committed_at = timestamp(SystemTime::now());
                let committed = match commit(&store, &layout, &manifest).await? {
                    CommitOutcome::Committed => manifest,
                    CommitOutcome::Lost(winner) => winner,
                };
                crash_point("after-commit", &name);
                Ok((committed, began.elapsed()))
            }
            .await;
            let _ = tx.send(Msg::Persisted {
                generation,
                stage,
                attempt,
                result,
            });
        });
    }

    fn restore(&mut self, stage: StageId, generation: u32) {
        let Some(durable) = self.durable[stage].clone() else {
            return;
        };
        let Some(cluster) = self.cluster.as_ref() else {
            return;
        };
        let name = self.workflow.stages[stage].name.clone();
        let dir = cluster.restore_dir(&name);
        self.emit(json!({"event": "restore", "stage": name, "generation": generation, "from": self.store.locate(&durable.prefix)}));
        let store = self.store.clone();
        let transfer = self.transfer.clone();
        let tx = self.tx.clone();
        let Some(dir) = dir else {
            // The cluster reads the checkpoint from the store where it is.
            let _ = tx.send(Msg::Restored {
                generation,
                stage,
                result: Ok((0, Duration::ZERO)),
            });
            return;
        };
        self.tasks.spawn(async move {
            let began = Instant::now();
            let result = async {
                empty_dir(&dir).await?;
                let bytes =
                    download_dir(&store, &durable.prefix, &durable.files, &dir, &transfer).await?;
                Ok((bytes, began.elapsed()))
            }
            .await;
            let _ = tx.send(Msg::Restored {
                generation,
                stage,
                result,
            });
        });
    }

    fn publish(&mut self, stage: StageId) {
        let Some(durable) = self.durable[stage].clone() else {
            return;
        };
        let name = self.workflow.stages[stage].name.clone();
        let staging = self.clusters.scratch().staging_dir(&name);
        let store = self.store.clone();
        let layout = self.layout.clone();
        let transfer = self.transfer.clone();
        let batch = self.batch.clone();
        let run_id = self.run_id.clone();
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            let result = async {
                empty_dir(&staging).await?;
                // Published from the store, so the output is exactly what was committed.
                download_dir(&store, &durable.prefix, &durable.files, &staging, &transfer).await?;
                crash_point("before-publish", &name);
                publish_output(
                    &store,
                    &layout,
                    &name,
                    &batch,
                    &run_id,
                    &durable.commit_id,
                    &staging,
                    &transfer,
                    SystemTime::now(),
                )
                .await?;
                let _ = tokio::fs::remove_dir_all(&staging).await;
                Ok(store.locate(&layout.output(&name, &batch)))
            }
            .await;
            let _ = tx.send(Msg::Published { stage, result });
        });
    }

    /// The cluster of `generation` is gone: kill what runs on it, delete its scratch,
    /// and tell the machine.
    async fn lose(&mut self, generation: u32, cause: String) {
        match &self.cluster {
            Some(cluster)
                if cluster.generation() == generation && !self.gone.contains(&generation) => {}
            _ => return,
        }
        self.gone.insert(generation);
        let Some(cluster) = self.cluster.take() else {
            return;
        };
        let market = cluster.market();
        let hours = cluster.lose().await;
        self.add_hours(market, hours);
        self.settle_lost(generation, market, cause).await;
    }

    /// A cluster ended before it was up (EMR could not find the capacity, say).
    async fn lose_while_provisioning(&mut self, generation: u32, cause: String) {
        if self.gone.contains(&generation) {
            return;
        }
        self.gone.insert(generation);
        let market = self.machine.market();
        self.settle_lost(generation, market, cause).await;
    }

    fn add_hours(&mut self, market: Market, hours: Option<f64>) {
        if let Some(hours) = hours {
            self.with_record(|record| {
                *record
                    .instance_hours
                    .entry(market.as_str().to_string())
                    .or_insert(0.0) += hours;
            });
        }
    }

    /// Tells the machine that cluster `generation` is gone, and records it.
    async fn settle_lost(&mut self, generation: u32, market: Market, cause: String) {
        let interrupted: Vec<Value> = self
            .machine
            .stages()
            .iter()
            .enumerate()
            .filter_map(|(s, status)| match status.state {
                StageState::Running { attempt } => Some(json!({
                    "event": "interrupted",
                    "stage": self.workflow.stages[s].name,
                    "attempt": self.base_attempt[s] + attempt,
                })),
                _ => None,
            })
            .collect();
        for event in interrupted {
            self.emit(event);
        }
        self.with_record(|record| {
            record.interruptions.push(Interruption {
                at: timestamp(SystemTime::now()),
                market: market.as_str().into(),
                cause: cause.clone(),
            })
        });
        self.local = vec![None; self.workflow.stages.len()];
        let elapsed = self.started.elapsed().as_secs_f64();
        let actions = self.machine.apply(Event::ClusterLost {
            cause: cause.clone(),
            elapsed,
        });
        self.emit(json!({
            "event": "cluster-lost", "generation": generation, "market": market.as_str(),
            "cause": cause, "interruptions": self.machine.interruptions(),
        }));
        self.sync_record();
        self.execute(actions).await;
    }

    /// Ends every process of the cluster (SIGTERM, then SIGKILL after the grace period)
    /// and deletes its scratch directory.
    async fn terminate(&mut self) {
        let Some(cluster) = self.cluster.take() else {
            return;
        };
        let generation = cluster.generation();
        let market = cluster.market();
        let described = cluster.describe();
        self.gone.insert(generation);
        let hours = cluster.terminate(self.stop_grace).await;
        self.add_hours(market, hours);
        let mut event =
            json!({"event": "cluster-released", "generation": generation, "cluster": described});
        if let Some(hours) = hours {
            event["instance_hours"] = json!((hours * 1000.0).round() / 1000.0);
        }
        self.emit(event);
    }

    /// Uploads the log of an attempt that ended (in the background).
    fn save_log(&mut self, stage: StageId, attempt: u32) {
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

    /// Records how the run ended, cleans up, and releases the lease.
    async fn finish(mut self, end: RunEnd) -> RunEnd {
        let now = SystemTime::now();
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
        // Logs of attempts that ended are wanted in every case.
        while self.logs.join_next().await.is_some() {}
        let (status, message) = match &end {
            RunEnd::Succeeded => (RunStatus::Succeeded, None),
            RunEnd::Failed { message, .. } => (RunStatus::Failed, Some(message.clone())),
            RunEnd::Stopped => (
                RunStatus::Stopped,
                Some("stopped; the same command resumes it".to_string()),
            ),
            RunEnd::Store(error) => (RunStatus::Failed, Some(error.to_string())),
            RunEnd::Io(error) => (RunStatus::Failed, Some(error.clone())),
            RunEnd::Lease(_) => unreachable!("returned above"),
        };
        self.with_record(|record| {
            if status == RunStatus::Succeeded {
                for (stage, print) in self.workflow.stages.iter().zip(&self.fingerprints) {
                    let entry = record.stages.entry(stage.name.clone()).or_default();
                    entry.fingerprint = Some(print.clone());
                }
            }
            record.status = status;
            record.message = message.clone();
            record.finished_at = Some(timestamp(now));
        });
        let mut event = json!({"event": "finished", "status": status.as_str()});
        if let Some(message) = &message {
            event["message"] = json!(message);
        }
        self.emit(event);
        let flushed = self.flush().await;
        let mut end = end;
        if let Err(error) = flushed
            && matches!(end, RunEnd::Succeeded)
        {
            end = RunEnd::Store(error);
        }
        if matches!(end, RunEnd::Succeeded) && self.workflow.cleanup == Cleanup::OnSuccess {
            match self
                .store
                .delete_prefix(&self.layout.work(&self.run_id))
                .await
            {
                Ok(deleted) => {
                    let event = json!({
                        "event": "cleaned", "deleted": deleted,
                        "prefix": self.store.locate(&self.layout.work(&self.run_id)),
                    });
                    self.emit(event);
                }
                Err(error) => end = RunEnd::Store(error),
            }
        }
        let _ = self.flush().await;
        drop(self.ledger);
        if let Some(task) = self.ledger_task.take() {
            let _ = task.await;
        }
        let scratch = self.clusters.scratch().clone();
        let _ = tokio::task::spawn_blocking(move || scratch.remove_all()).await;
        if let Some(lease) = self.lease.take()
            && let Err(error) = lease.release(&self.store, SystemTime::now()).await
        {
            tracing::warn!("could not release the lease (it expires on its own): {error}");
        }
        end
    }

    async fn kill_everything(&mut self) {
        if let Some(cluster) = self.cluster.take() {
            let market = cluster.market();
            let hours = cluster.lose().await;
            self.add_hours(market, hours);
        }
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        if self.ledger.send(LedgerMsg::Flush(done)).is_err() {
            return Ok(());
        }
        wait.await.unwrap_or(Ok(()))
    }
}

/// Makes `dir` an empty directory (a download goes into it).
async fn empty_dir(dir: &Path) -> Result<(), StoreError> {
    let fresh = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_dir_all(&fresh);
        std::fs::create_dir_all(&fresh)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r)
    .map_err(|source| StoreError::Io {
        object: dir.display().to_string(),
        source,
    })
}

/// Adds what the cluster said of a failure to the attempt's log.
fn append_log(path: &Path, text: &str) {
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
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Writes events (in order, several in flight) and the run record (at most every
/// [`RECORD_EVERY`], and at every flush).
async fn write_ledger(
    store: AnyStore,
    layout: Layout,
    mut record: Versioned<RunRecord>,
    shared: Arc<Mutex<RunRecord>>,
    mut events: EventLog,
    mut rx: mpsc::UnboundedReceiver<LedgerMsg>,
    driver: mpsc::UnboundedSender<Msg>,
) {
    // The first write that failed: its kind and message.
    let mut failed: Option<(StoreErrorKind, String)> = None;
    let mut dirty = false;
    let mut last_write = tokio::time::Instant::now() - RECORD_EVERY;
    let mut open = true;
    while open || dirty {
        let mut batch = Vec::new();
        let due = last_write + RECORD_EVERY;
        tokio::select! {
            msg = rx.recv(), if open => match msg {
                Some(msg) => batch.push(msg),
                None => open = false,
            },
            _ = tokio::time::sleep_until(due), if dirty => {}
        }
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let mut pending = Vec::new();
        let mut flushes = Vec::new();
        for msg in batch {
            match msg {
                LedgerMsg::Event(event) => pending.push(event),
                LedgerMsg::Record => dirty = true,
                LedgerMsg::Flush(done) => flushes.push(done),
            }
        }
        if failed.is_none()
            && !pending.is_empty()
            && let Err(error) = events.append_all(&store, &layout, &pending).await
        {
            failed = Some((error.kind(), error.to_string()));
        }
        let now = tokio::time::Instant::now();
        if dirty && (now >= due || !flushes.is_empty() || !open) {
            dirty = false;
            last_write = now;
            let latest = shared.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if failed.is_none()
                && let Err(error) = record
                    .update(&store, &layout, SystemTime::now(), |r| *r = latest.clone())
                    .await
            {
                failed = Some((error.kind(), error.to_string()));
            }
        }
        let error = |(kind, detail): &(StoreErrorKind, String)| StoreError::Service {
            operation: "write the run's ledger",
            object: store.locate(&layout.run(&record.value.run_id)),
            detail: detail.clone(),
            kind: *kind,
        };
        if let Some(failure) = &failed {
            let _ = driver.send(Msg::Fatal(error(failure)));
        }
        for done in flushes {
            let _ = done.send(match &failed {
                None => Ok(()),
                Some(failure) => Err(error(failure)),
            });
        }
    }
}

/// SIGINT and SIGTERM stop the run; SIGUSR1 (sent by `respawn interrupt`) loses the
/// current spot cluster.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    user1: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            user1: signal(SignalKind::user_defined1())?,
        })
    }

    async fn next(&mut self) -> Msg {
        tokio::select! {
            _ = self.interrupt.recv() => Msg::Stop,
            _ = self.terminate.recv() => Msg::Stop,
            _ = self.user1.recv() => Msg::Interrupt,
        }
    }
}

impl Setup {
    /// The machine's view of a workflow and its plan.
    pub fn new(workflow: &Workflow, plan: &Plan) -> Setup {
        Setup {
            needs: crate::plan::needs_of(workflow),
            checkpoint: plan.checkpointed(),
            is_final: workflow.stages.iter().map(|s| s.is_final).collect(),
            estimate: workflow
                .stages
                .iter()
                .map(|s| s.estimate.as_secs_f64())
                .collect(),
            slots: workflow.cluster.slots as usize,
            retries: workflow.retries,
            market: workflow.cluster.market,
            fallback: workflow.cluster.fallback.clone(),
            mtti: plan.mtti,
            provision_time: plan.provision_time,
            checkpoint_cost: plan.typical_checkpoint_cost(),
        }
    }
}
