//! Alerts: the run's events that someone should hear of (a failed run, an output a check
//! refused, a fallback to on-demand, a batch that recovered) sent to the workflow's
//! `alerts:` destinations while the run goes on.
//!
//! The driver's event sink is wrapped ([`Alerting::watch`]): it forwards every event and
//! hands the ones an alert is about to a task of their own, so that the run never waits
//! for a destination. Each alert to each destination is claimed first with a create-only
//! object under the run (`runs/<run>/alerts/<key>.json`), so a resumed or second
//! orchestrator of the run never sends it again; the object then says whether it was
//! delivered, after how many tries, or why not. Delivery retries with backoff
//! ([`deliver`]); a destination that stays down is recorded and the run goes on.

mod deliver;
mod sns;
mod watch;

pub use watch::{Alert, Watch};

use crate::driver::EventSink;
use crate::ledger::{Layout, timestamp};
use crate::store::{AnyStore, PutMode, Store, StoreError};
use respawn_core::workflow::{AlertSpec, Workflow};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// What a destination gets: one JSON object per alert.
#[derive(Clone, Debug, Serialize)]
pub struct Payload {
    /// The same for every delivery of one alert to one destination: a receiver that got
    /// it twice (a crash between sending and recording) can tell.
    pub id: String,
    pub workflow: String,
    pub batch: String,
    pub run_id: String,
    /// `failed`, `check-failed`, `fallback`, `deadline-at-risk`, `late` or `recovered`.
    pub event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    pub message: String,
    /// One line without links: workflow, batch, what happened.
    pub summary: String,
    /// When it happened (RFC 3339, UTC).
    pub at: String,
}

/// Which run the alerts are about.
#[derive(Clone, Debug)]
pub struct RunIdentity {
    pub workflow: String,
    pub batch: String,
    pub run_id: String,
}

/// The alerts of one run: the watcher's channel and the task that delivers.
pub struct Alerting {
    tx: mpsc::UnboundedSender<Alert>,
    task: tokio::task::JoinHandle<()>,
    watch: Watch,
}

impl Alerting {
    /// Starts delivering the alerts of run `run` of `workflow`; `None` when it has none.
    /// `recovering` names the failed run of the batch this run follows (it fires
    /// `recovered` if it succeeds). Commands run in `cwd`.
    pub fn start(
        workflow: &Workflow,
        store: AnyStore,
        run: RunIdentity,
        recovering: Option<String>,
        cwd: PathBuf,
    ) -> Option<Alerting> {
        if workflow.alerts.is_empty() {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let context = Arc::new(Context {
            specs: workflow.alerts.clone(),
            layout: Layout::new(&workflow.name),
            store,
            run: run.clone(),
            cwd,
        });
        let task = tokio::spawn(dispatch(context, rx));
        let watch = Watch::new(run, recovering);
        Some(Alerting { tx, task, watch })
    }

    /// A sink that forwards every event to `inner` and queues the alerts they make.
    pub fn watch(&self, mut inner: EventSink) -> EventSink {
        let tx = self.tx.clone();
        let mut watch = self.watch.clone();
        Box::new(move |event| {
            inner(event);
            if let Some(alert) = watch.alert_of(event) {
                let _ = tx.send(alert);
            }
        })
    }

    /// The run ended: the alerts it queued go on being delivered in the background, so
    /// that the next date of a tick or a backfill does not wait for a slow destination;
    /// [`drain`] waits for them before the process exits.
    pub fn finish(self) {
        drop(self.tx);
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|task| !task.is_finished());
        pending.push(self.task);
    }
}

/// The deliveries of runs that ended, still going.
static PENDING: Mutex<Vec<tokio::task::JoinHandle<()>>> = Mutex::new(Vec::new());

/// Waits, at most `budget` in all, for the alerts of every run this process drove (their
/// tries take at most about half a minute); what is still going then is left, its claim
/// saying `sending`. Called by each command that drives runs before it exits.
pub async fn drain(budget: Duration) {
    let tasks = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|e| e.into_inner()));
    let all = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    if tokio::time::timeout(budget, all).await.is_err() {
        tracing::warn!("alerts still being delivered after {budget:?} were left");
    }
}

struct Context {
    specs: Vec<AlertSpec>,
    layout: Layout,
    store: AnyStore,
    run: RunIdentity,
    cwd: PathBuf,
}

/// Hands each alert to the destinations that take its kind. Each destination gets its
/// alerts one at a time, in the order they came (a command that appends to a file never
/// sees two at once); destinations do not wait for each other.
async fn dispatch(context: Arc<Context>, mut rx: mpsc::UnboundedReceiver<Alert>) {
    let mut destinations = JoinSet::new();
    let queues: Vec<mpsc::UnboundedSender<Alert>> = (0..context.specs.len())
        .map(|index| {
            let (tx, mut queue) = mpsc::unbounded_channel::<Alert>();
            let context = context.clone();
            destinations.spawn(async move {
                while let Some(alert) = queue.recv().await {
                    send_once(&context, index, &alert).await;
                }
            });
            tx
        })
        .collect();
    while let Some(alert) = rx.recv().await {
        for (spec, queue) in context.specs.iter().zip(&queues) {
            if spec.on.contains(&alert.kind) {
                let _ = queue.send(alert.clone());
            }
        }
    }
    drop(queues);
    while destinations.join_next().await.is_some() {}
}

/// What the claim object of an alert says.
#[derive(Serialize)]
struct Claim<'a> {
    state: &'a str,
    destination: String,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Claims alert `alert` for destination `index`, delivers it, records how that went.
async fn send_once(context: &Context, index: usize, alert: &Alert) {
    let spec = &context.specs[index];
    let key = context
        .layout
        .alert(&context.run.run_id, &format!("{}.{index}", alert.key()));
    let claim = |state, tries, error| {
        let claim = Claim {
            state,
            destination: spec.sink.describe(),
            at: timestamp(SystemTime::now()),
            tries,
            error,
        };
        serde_json::to_vec_pretty(&claim).unwrap_or_default()
    };
    match (context.store)
        .put(&key, claim("sending", None, None), PutMode::Create)
        .await
    {
        Ok(_) => {}
        Err(StoreError::AlreadyExists { .. }) => return,
        // Better twice than never: without the store, the alert still goes.
        Err(error) => tracing::warn!("alert {key} could not be claimed: {error}"),
    }
    let payload = alert.payload(&context.run, &key);
    let (result, tries) = deliver::deliver(&spec.sink, &payload, &context.cwd).await;
    let body = match &result {
        Ok(()) => claim("delivered", Some(tries), None),
        Err(error) => {
            tracing::warn!(
                "alert {} to {} failed: {error}",
                payload.event,
                spec.sink.describe()
            );
            claim("failed", Some(tries), Some(error.clone()))
        }
    };
    if let Err(error) = context.store.put(&key, body, PutMode::Overwrite).await {
        tracing::warn!("alert {key} was not recorded: {error}");
    }
}
