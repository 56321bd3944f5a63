//! Backfill records: `<workflow>/schedule/backfills/<id>.json`, one per backfill command
//! (its range, mode and order make its id), with the dates it has finished. The same
//! command after a crash finds its unfinished record and goes on from it.

use super::{Layout, Versioned, timestamp, to_json};
use crate::store::{PutMode, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackfillRecord {
    pub format: u32,
    pub workflow: String,
    pub id: String,
    pub from: String,
    pub to: String,
    pub reprocess: String,
    pub order: String,
    pub started_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub finished: bool,
    /// Batches this backfill has run to the end (succeeded), in the order they ended.
    #[serde(default)]
    pub done: Vec<String>,
}

/// The record of backfill `id`, if there is one.
pub async fn read_backfill<S: Store>(
    store: &S,
    layout: &Layout,
    id: &str,
) -> Result<Option<Versioned<BackfillRecord>>, StoreError> {
    super::read_versioned(store, &layout.backfill(id)).await
}

impl Versioned<BackfillRecord> {
    /// Writes a new record, or replaces `previous` (a finished backfill of the same id).
    pub async fn start<S: Store>(
        store: &S,
        layout: &Layout,
        record: BackfillRecord,
        previous: Option<&Versioned<BackfillRecord>>,
    ) -> Result<Self, StoreError> {
        let mode = match previous {
            Some(previous) => PutMode::Update(previous.etag.clone()),
            None => PutMode::Create,
        };
        let etag = store
            .put(&layout.backfill(&record.id), to_json(&record), mode)
            .await?;
        Ok(Versioned {
            value: record,
            etag,
        })
    }

    /// Applies `change` and writes it with If-Match, re-reading after a concurrent update.
    pub async fn update<S: Store>(
        &mut self,
        store: &S,
        layout: &Layout,
        now: SystemTime,
        mut change: impl FnMut(&mut BackfillRecord),
    ) -> Result<(), StoreError> {
        let key = layout.backfill(&self.value.id);
        for _ in 0..8 {
            let mut next = self.value.clone();
            change(&mut next);
            next.updated_at = timestamp(now);
            match store
                .put(&key, to_json(&next), PutMode::Update(self.etag.clone()))
                .await
            {
                Ok(etag) => {
                    *self = Versioned { value: next, etag };
                    return Ok(());
                }
                Err(StoreError::PreconditionFailed { .. }) => {
                    match read_backfill(store, layout, &self.value.id).await? {
                        Some(current) => *self = current,
                        None => {
                            return Err(StoreError::NotFound {
                                object: store.locate(&key),
                            });
                        }
                    }
                }
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::PreconditionFailed {
            object: store.locate(&key),
        })
    }
}
