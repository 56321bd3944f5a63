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

/// Writes events and the run record until the driver drops its sender and all is written.
pub(super) async fn write_ledger(
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
