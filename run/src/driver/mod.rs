//! The thin async driver: executes the machine's actions against the store and a cluster
//! provider, and turns what happens (processes ending, uploads landing, timers, signals,
//! a vanished scratch directory) back into the machine's events. What it reports is a
//! stream of typed [`RunEvent`]s.
//!
//! Everything runs on one task that owns the machine; transfers, process waits and timers
//! are spawned and report through one channel ([`Msg`]). The run record and the event log
//! are written by a second task, in order, coalescing record updates ([`ledger`]).
//!
//! Where to look: [`setup`] opens a run, [`select`] is the loop, [`handle`] takes one
//! message, [`actions`] and [`transfers`] carry out the machine's actions, [`loss`] deals
//! with clusters that end, [`record`] keeps the run record and emits events, [`finish`]
//! closes the run; [`chaos`], [`signals`] and [`command`] are small pieces they use.

mod actions;
mod chaos;
mod checks;
mod command;
mod due;
mod finish;
mod handle;
mod ledger;
mod log_cap;
mod loss;
mod notice;
mod record;
mod select;
mod setup;
mod signals;
mod transfers;

#[cfg(test)]
mod tests;

pub use chaos::Chaos;
pub use command::shell_quote;
pub use signals::{catch_interrupts_early, request_stop, stop_requested};

use super::clock::Clock;
use super::inspect::Durable;
use crate::cluster::{Cluster, ClusterNews, ClusterProvider, Output, ProvisionError};
use crate::ledger::{CommitManifest, Layout, Lease, LeaseError, RunRecord, StageRecord, Versioned};
use crate::store::{AnyStore, StoreError, TransferOptions};
use respawn_core::contract::event::StampedEvent;
use respawn_core::machine::{Machine, Outcome, Setup};
use respawn_core::plan::Plan;
use respawn_core::plan::calendar::IntervalValues;
use respawn_core::workflow::{StageId, Workflow};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Receives every event as it happens (the CLI prints them).
pub type EventSink = Box<dyn FnMut(&StampedEvent) + Send>;

/// Everything a run needs; the caller (the session layer) has chosen the run and holds
/// the lease.
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
    /// The run's interval, for a scheduled workflow (`{{ logical_date }}`, ...).
    pub interval: Option<IntervalValues>,
    pub transfer: TransferOptions,
    /// How long stages get between SIGTERM and SIGKILL when the run stops.
    pub stop_grace: Duration,
    /// Wall time, for timestamps and the lease (a fixed clock in tests).
    pub clock: Arc<dyn Clock>,
    /// Whether SIGINT, SIGTERM and SIGUSR1 reach this run (off in unit tests).
    pub listen_for_signals: bool,
    pub sink: EventSink,
    /// Where the plan's interruption model came from, for the `market-chosen` events.
    pub model: Option<String>,
    /// When the date's output is due (`schedule.publish_by`): `late` after it.
    pub publish_due: Option<std::time::SystemTime>,
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

/// What the spawned tasks, the cluster provider and the signals tell the driver.
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
    /// respawn leaves spot cluster `generation` (the deadline is at risk): handled as a
    /// loss, but the provider did not take it.
    Leave {
        generation: u32,
        cause: String,
    },
    /// One node of cluster `generation` is reclaimed (chaos `partial=`).
    LoseNode {
        generation: u32,
    },
    /// `respawn interrupt` (SIGUSR1): lose the current spot cluster.
    Interrupt,
    /// A warning that cluster `generation` will be reclaimed in about `lead`.
    Notice {
        generation: u32,
        kind: respawn_core::machine::NoticeKind,
        lead: Duration,
        instances: Vec<String>,
    },
    /// The lead of an interruption notice for `generation` passed twice over.
    NoticeLapsed {
        generation: u32,
    },
    RetryDue {
        stage: StageId,
    },
    /// The date's publish-by time passed.
    Late {
        due: std::time::SystemTime,
    },
    /// Ctrl-C or SIGTERM.
    Stop,
    Fatal(StoreError),
}

/// Runs (or resumes) the run in `input` to its end.
pub async fn drive(input: RunInput) -> RunEnd {
    let mut driver = match Driver::new(input).await {
        Ok(driver) => driver,
        Err(end) => return end,
    };
    let end = driver.run().await;
    driver.finish(end).await
}

/// How this run goes, as it was asked for: fixed for the whole run.
struct Settings {
    /// The workflow file's folder (`RESPAWN_WORKFLOW_DIR`, `{{ workflow_dir }}`).
    workflow_dir: String,
    /// Where stages run.
    cwd: PathBuf,
    /// The logical date's interval, for scheduled workflows.
    interval: Option<IntervalValues>,
    transfer: TransferOptions,
    /// How long stages get after SIGTERM when the run stops.
    stop_grace: Duration,
    listen_for_signals: bool,
    /// Where the plan's interruption model came from.
    model: Option<String>,
}

struct Driver {
    workflow: Workflow,
    store: AnyStore,
    layout: Layout,
    run_id: String,
    batch: String,
    clusters: ClusterProvider,
    settings: Settings,
    chaos: Option<chaos::ChaosDraws>,
    clock: Arc<dyn Clock>,
    signals: Option<signals::Signals>,
    sink: EventSink,
    lease: Option<Lease>,

    setup: Setup,
    machine: Machine,
    fingerprints: Vec<String>,
    base_attempt: Vec<u32>,
    durable: Vec<Option<Durable>>,
    /// Where each work-table is for the current cluster, and the id consumers record for it.
    local: Vec<Option<(Output, String)>>,
    cluster: Option<Cluster>,
    /// A cluster asked for on a notice, up before the loss it is to replace.
    replacement: Option<Cluster>,
    /// Generations lost or terminated: what their processes report is ignored.
    gone: BTreeSet<u32>,
    /// The generation of this process's first cluster (a resumed run numbers on from the
    /// clusters of the processes before): it starts without simulated provisioning.
    first_generation: u32,

    /// The run record, shared with the task that writes it and its events.
    ledger: ledger::LedgerLink,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    tasks: JoinSet<()>,
    started: tokio::time::Instant,
    jitter: rand_pcg::Pcg64,
    outcome: Option<Outcome>,
    failed_stage: Option<StageId>,
    /// What the run record said of each stage when this invocation started.
    prior: Vec<StageRecord>,
    /// Log uploads, awaited before the run ends (never aborted).
    logs: JoinSet<()>,
    /// When each stage's latest attempt was launched, as the events' `elapsed_s`.
    launched_at: Vec<f64>,
    /// Each cluster still held, from when it became ready (for the run record).
    held: std::collections::BTreeMap<u32, record::Holding>,
    /// Attempts whose node was reclaimed: their end is no news.
    reclaimed: BTreeSet<(StageId, u32)>,
    /// The checks of attempts that exited 0.
    checks: checks::Checks,
}
