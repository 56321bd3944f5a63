//! `run.json` (one record per run, updated with If-Match) and the numbered events.

use super::{Layout, parse_json, to_json};
use crate::store::{ETag, PutMode, Store, StoreError};
use respawn_core::contract::event::{RunEvent, StampedEvent};
use respawn_core::contract::{FORMAT, RunRecord};
use std::time::SystemTime;

/// A value read from the store with the ETag to update it with.
#[derive(Clone, Debug)]
pub struct Versioned<T> {
    pub value: T,
    pub etag: ETag,
}

/// A run id: the start time (sortable) and a random suffix, e.g. `20261121T112243Z-3fa9c1`.
pub fn new_run_id(now: SystemTime) -> String {
    let stamp = respawn_core::contract::timestamp(now).replace(['-', ':'], "");
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64;
    let mixed = (nanos ^ (u64::from(std::process::id()) << 17)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{stamp}-{:06x}", mixed >> 40)
}

fn check_format(object: &str, format: u32) -> Result<(), StoreError> {
    if format > FORMAT {
        return Err(StoreError::Corrupt {
            object: object.into(),
            detail: format!(
                "it has format {format}, newer than this respawn understands ({FORMAT}); upgrade respawn"
            ),
        });
    }
    Ok(())
}

pub async fn read_run<S: Store>(
    store: &S,
    layout: &Layout,
    run_id: &str,
) -> Result<Versioned<RunRecord>, StoreError> {
    let key = layout.run_record(run_id);
    let (bytes, meta) = store.get(&key).await?;
    let record: RunRecord = parse_json(store.locate(&key), &bytes)?;
    check_format(&store.locate(&key), record.format)?;
    if record.run_id != run_id || record.workflow != layout.workflow() {
        return Err(StoreError::Corrupt {
            object: store.locate(&key),
            detail: format!(
                "it describes run `{}` of workflow `{}`, not run `{run_id}` of `{}`",
                record.run_id,
                record.workflow,
                layout.workflow()
            ),
        });
    }
    let etag = meta.etag.ok_or_else(|| StoreError::Corrupt {
        object: store.locate(&key),
        detail: "the store returned no ETag".into(),
    })?;
    Ok(Versioned {
        value: record,
        etag,
    })
}

impl Versioned<RunRecord> {
    /// Creates the record of a new run (create-only: a run id is never reused).
    pub async fn create<S: Store>(
        store: &S,
        layout: &Layout,
        record: RunRecord,
    ) -> Result<Self, StoreError> {
        let etag = store
            .put(
                &layout.run_record(&record.run_id),
                to_json(&record),
                PutMode::Create,
            )
            .await?;
        Ok(Versioned {
            value: record,
            etag,
        })
    }

    /// Applies `change` and writes the record with If-Match. If someone else updated it
    /// meanwhile, re-reads it and applies `change` again (at most a few times).
    pub async fn update<S: Store>(
        &mut self,
        store: &S,
        layout: &Layout,
        now: SystemTime,
        mut change: impl FnMut(&mut RunRecord),
    ) -> Result<(), StoreError> {
        let key = layout.run_record(&self.value.run_id);
        let run_id = self.value.run_id.clone();
        let change = |record: &mut RunRecord| {
            change(record);
            record.updated_at = super::timestamp(now);
        };
        let reread = || read_run(store, layout, &run_id);
        super::update_versioned(store, &key, self, change, reread).await
    }
}

/// How many run records are read at once: listing a workflow's history is bound by the
/// store's latency, not its bandwidth.
const READS_IN_FLIGHT: usize = 32;

/// Every run of a workflow, oldest first; a record that cannot be read is returned as
/// its error (naming the object) so that one bad record does not hide the others.
/// The detail of a run that has objects in the store but no run record.
pub const NO_RUN_RECORD: &str = "the run has objects in the store but no run record";

/// Whether `error`, from [`runs`], is a run without a record (which nothing can resume, so
/// it is skipped) rather than a record that exists and cannot be read (which stops
/// whoever needs it: skipping it would start its batch anew and lose its checkpoints).
pub fn is_missing_record(error: &StoreError) -> bool {
    matches!(error, StoreError::Corrupt { detail, .. } if detail == NO_RUN_RECORD)
}

pub async fn runs<S: Store + Clone + 'static>(
    store: &S,
    layout: &Layout,
) -> Result<Vec<Result<RunRecord, StoreError>>, StoreError> {
    let run_ids = store.list_dirs(&layout.runs()).await?;
    let mut records = Vec::with_capacity(run_ids.len());
    let mut reads = tokio::task::JoinSet::new();
    let mut pending = run_ids.into_iter();
    loop {
        while reads.len() < READS_IN_FLIGHT
            && let Some(run_id) = pending.next()
        {
            let (store, layout) = (store.clone(), layout.clone());
            reads.spawn(async move { read_run(&store, &layout, &run_id).await });
        }
        let Some(joined) = reads.join_next().await else {
            break;
        };
        let read = joined.map_err(|e| StoreError::Io {
            object: store.locate(&layout.runs()),
            source: std::io::Error::other(e),
        })?;
        match read {
            Ok(versioned) => records.push(Ok(versioned.value)),
            // A run whose work is there but whose record is not: left by a crash between
            // creating its first objects, or its record was deleted by hand.
            Err(StoreError::NotFound { object }) => records.push(Err(StoreError::Corrupt {
                object,
                detail: NO_RUN_RECORD.into(),
            })),
            Err(other) => records.push(Err(other)),
        }
    }
    records.sort_by(|a, b| match (a, b) {
        (Ok(a), Ok(b)) => (&a.started_at, &a.run_id).cmp(&(&b.started_at, &b.run_id)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        // Errors name their object, so this is the order of their keys.
        (Err(a), Err(b)) => a.to_string().cmp(&b.to_string()),
    });
    Ok(records)
}

/// The append-only event log of one run. Events are numbered from 0; each is a
/// create-only object, so two writers can never both write the same number.
pub struct EventLog {
    run_id: String,
    next: u64,
}

impl EventLog {
    /// Opens the log, continuing after the last event already in the store. A hole below
    /// the last event (a process writing several events at once stopped on a store error
    /// after a later one landed) is filled with a note stamped `now`, so that the log stays
    /// numbered without a gap.
    pub async fn open<S: Store>(
        store: &S,
        layout: &Layout,
        run_id: &str,
        now: SystemTime,
    ) -> Result<EventLog, StoreError> {
        let prefix = layout.events(run_id);
        let mut seen = Vec::new();
        for object in store.list(&prefix).await? {
            let seq = object
                .key
                .strip_prefix(&prefix)
                .and_then(|name| name.strip_suffix(".json"))
                .and_then(|seq| seq.parse::<u64>().ok());
            seen.extend(seq);
        }
        seen.sort_unstable();
        let next = seen.last().map_or(0, |last| last + 1);
        let mut expected = 0;
        for seq in seen {
            for hole in expected..seq {
                fill_hole(store, layout, run_id, hole, now).await?;
            }
            expected = seq + 1;
        }
        Ok(EventLog {
            run_id: run_id.into(),
            next,
        })
    }

    /// Appends one event and returns its number.
    pub async fn append<S: Store>(
        &mut self,
        store: &S,
        layout: &Layout,
        event: &serde_json::Value,
    ) -> Result<u64, StoreError> {
        let body = to_json(event);
        loop {
            let seq = self.next;
            match store
                .put(
                    &layout.event(&self.run_id, seq),
                    body.clone(),
                    PutMode::Create,
                )
                .await
            {
                Ok(_) => {
                    self.next = seq + 1;
                    return Ok(seq);
                }
                // Written by an earlier process of this run whose listing we did not see.
                Err(StoreError::AlreadyExists { .. }) => self.next = seq + 1,
                Err(other) => return Err(other),
            }
        }
    }
}

impl EventLog {
    /// Appends several events in order, up to 16 writes in flight.
    pub async fn append_all<S: Store + Clone + 'static>(
        &mut self,
        store: &S,
        layout: &Layout,
        events: &[serde_json::Value],
    ) -> Result<(), StoreError> {
        for chunk in events.chunks(16) {
            let mut writes = tokio::task::JoinSet::new();
            for (i, event) in chunk.iter().enumerate() {
                let key = layout.event(&self.run_id, self.next + i as u64);
                let store = store.clone();
                let body = to_json(event);
                writes.spawn(async move { (i, store.put(&key, body, PutMode::Create).await) });
            }
            self.next += chunk.len() as u64;
            let mut taken = Vec::new();
            while let Some(joined) = writes.join_next().await {
                let (i, result) = joined.map_err(|e| StoreError::Io {
                    object: layout.events(&self.run_id),
                    source: std::io::Error::other(e),
                })?;
                match result {
                    Ok(_) => {}
                    // Numbers used by an earlier process of this run: take the next ones.
                    Err(StoreError::AlreadyExists { .. }) => taken.push(i),
                    Err(other) => return Err(other),
                }
            }
            taken.sort_unstable();
            for i in taken {
                self.append(store, layout, &chunk[i]).await?;
            }
        }
        Ok(())
    }
}

/// Writes the note that stands for event `seq`, which was never recorded (create-only: a
/// writer that filled it first wins).
async fn fill_hole<S: Store>(
    store: &S,
    layout: &Layout,
    run_id: &str,
    seq: u64,
    now: SystemTime,
) -> Result<(), StoreError> {
    let note = StampedEvent {
        at: super::timestamp(now),
        elapsed_s: 0.0,
        event: RunEvent::Note {
            message: format!(
                "event {seq} of this run was not recorded: the process writing it stopped on a store error"
            ),
        },
    };
    let body = to_json(&note.to_json());
    match store
        .put(&layout.event(run_id, seq), body, PutMode::Create)
        .await
    {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

/// The most one event object may hold. respawn's largest events (a cluster's instances at
/// release, a long note) are a few kilobytes; a bigger object is not one of its events and
/// is never read whole.
pub const MAX_EVENT_BYTES: u64 = 1 << 20;

/// The events of a run, in order. An event object over [`MAX_EVENT_BYTES`] is damaged.
pub async fn read_events<S: Store>(
    store: &S,
    layout: &Layout,
    run_id: &str,
) -> Result<Vec<serde_json::Value>, StoreError> {
    let mut events = Vec::new();
    for object in store.list(&layout.events(run_id)).await? {
        if object.size > MAX_EVENT_BYTES {
            return Err(StoreError::Corrupt {
                object: store.locate(&object.key),
                detail: format!(
                    "an event object of {} bytes, over the {MAX_EVENT_BYTES} bytes an event \
                     can be: it was not written by respawn",
                    object.size
                ),
            });
        }
        let (bytes, _) = store.get(&object.key).await?;
        events.push(parse_json(store.locate(&object.key), &bytes)?);
    }
    Ok(events)
}

/// Finds run `run_id` among every workflow of the store.
pub async fn find_run<S: Store>(
    store: &S,
    run_id: &str,
) -> Result<Option<(Layout, Versioned<RunRecord>)>, StoreError> {
    for workflow in store.list_dirs("").await? {
        if respawn_core::workflow::check_name(&workflow).is_err() {
            continue;
        }
        let layout = Layout::new(&workflow);
        match read_run(store, &layout, run_id).await {
            Ok(record) => return Ok(Some((layout, record))),
            Err(StoreError::NotFound { .. }) => continue,
            Err(other) => return Err(other),
        }
    }
    Ok(None)
}
