//! The ledger writer: a task of its own that keeps the run's events (in order, several
//! writes in flight) and its run record (coalesced, at most every [`RECORD_EVERY`], and at
//! every flush) in the store. A write that fails is fatal to the run: the driver is told.

use super::Msg;
use crate::clock::Clock;
use crate::ledger::{EventLog, Layout, RunRecord, Versioned};
use crate::store::{AnyStore, Store, StoreError, StoreErrorKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How often at most the run record is written while a run goes on (events are written
/// as they come; the record is a summary, and a resumed run reads the COMMITs anyway).
const RECORD_EVERY: Duration = Duration::from_millis(250);

pub(super) enum LedgerMsg {
    Event(serde_json::Value),
    /// The shared run record changed.
    Record,
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

/// What the writer works on.
pub(super) struct Ledger {
    pub store: AnyStore,
    pub layout: Layout,
    pub record: Versioned<RunRecord>,
    pub shared: Arc<Mutex<RunRecord>>,
    pub events: EventLog,
    pub clock: Arc<dyn Clock>,
}

/// The driver's end of the writer: the run record they share, the queue to the writer,
/// and the writer's task.
pub(super) struct LedgerLink {
    record: Arc<Mutex<RunRecord>>,
    queue: Option<mpsc::UnboundedSender<LedgerMsg>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl LedgerLink {
    /// Starts the writer on `ledger`; a write that fails is told to `driver`.
    pub fn start(ledger: Ledger, driver: mpsc::UnboundedSender<Msg>) -> LedgerLink {
        let (queue, rx) = mpsc::unbounded_channel();
        let record = ledger.shared.clone();
        let task = tokio::spawn(write_ledger(ledger, rx, driver));
        LedgerLink {
            record,
            queue: Some(queue),
            task: Some(task),
        }
    }

    fn send(&self, msg: LedgerMsg) -> bool {
        self.queue.as_ref().is_some_and(|q| q.send(msg).is_ok())
    }

    /// Queues an event.
    pub fn event(&self, event: serde_json::Value) {
        self.send(LedgerMsg::Event(event));
    }

    /// Changes the shared run record and tells the writer.
    pub fn change<T>(&self, change: impl FnOnce(&mut RunRecord) -> T) -> T {
        let result = change(&mut self.record.lock().unwrap_or_else(|e| e.into_inner()));
        self.send(LedgerMsg::Record);
        result
    }

    /// A copy of the run record as it is now.
    pub fn record(&self) -> RunRecord {
        self.record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until every event and the latest run record are in the store.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        if !self.send(LedgerMsg::Flush(done)) {
            return Ok(());
        }
        wait.await.unwrap_or(Ok(()))
    }

    /// Lets the writer finish what is queued, and waits for it.
    pub async fn close(&mut self) {
        self.queue.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Writes events and the run record until the driver drops its sender and all is written.
async fn write_ledger(
    ledger: Ledger,
    mut rx: mpsc::UnboundedReceiver<LedgerMsg>,
    driver: mpsc::UnboundedSender<Msg>,
) {
    let Ledger {
        store,
        layout,
        mut record,
        shared,
        mut events,
        clock,
    } = ledger;
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
                    .update(&store, &layout, clock.now(), |r| *r = latest.clone())
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
