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
    /// Batches this backfill has run to the end (succeeded), as records before format 2
    /// kept them; kept to be read, never written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<String>,
    /// The dates it has run to the end, as ranges `[first, end)` of their places in the
    /// backfill's order: a few ranges however many dates, where a list of names made each
    /// save of a 100,000-date backfill rewrite megabytes.
    #[serde(default)]
    pub done_positions: Vec<[u64; 2]>,
}

impl BackfillRecord {
    /// Whether the date `batch`, at `position` in the backfill's order, was done.
    pub fn did(&self, batch: &str, position: u64) -> bool {
        self.done_positions
            .iter()
            .any(|[first, end]| (*first..*end).contains(&position))
            || self.done.iter().any(|b| b == batch)
    }

    /// Notes the date at `position` done, merging it into the ranges.
    pub fn mark_done(&mut self, position: u64) {
        let ranges = &mut self.done_positions;
        if ranges
            .iter()
            .any(|[first, end]| (*first..*end).contains(&position))
        {
            return;
        }
        ranges.push([position, position + 1]);
        ranges.sort_unstable();
        let mut merged: Vec<[u64; 2]> = Vec::with_capacity(ranges.len());
        for &[first, end] in ranges.iter() {
            match merged.last_mut() {
                Some(last) if last[1] >= first => last[1] = last[1].max(end),
                _ => merged.push([first, end]),
            }
        }
        *ranges = merged;
    }

    /// Whether run `run_id` started after this backfill did (run ids begin with their
    /// start time, `20261121T112243Z`): a date whose run succeeded since is done, whoever
    /// ran it. A crash between a date's success and the record's save loses only the
    /// record's note, and the date is not run twice.
    pub fn started_before(&self, run_id: &str) -> bool {
        let started = self.started_at.replace(['-', ':'], "");
        let (Some(run), Some(backfill)) = (run_id.get(..16), started.get(..16)) else {
            return false;
        };
        let stamp = |s: &str| s.len() == 16 && s.as_bytes()[8] == b'T' && s.ends_with('Z');
        stamp(run) && stamp(backfill) && run >= backfill
    }

    /// How many dates it has done.
    pub fn done_count(&self) -> u64 {
        let ranges: u64 = self.done_positions.iter().map(|[a, b]| b - a).sum();
        ranges + self.done.len() as u64
    }
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
        let id = self.value.id.clone();
        let change = |record: &mut BackfillRecord| {
            change(record);
            record.updated_at = timestamp(now);
        };
        let reread = || async {
            read_backfill(store, layout, &id)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    object: store.locate(&key),
                })
        };
        super::update_versioned(store, &key, self, change, reread).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_done_in_any_order_are_kept_as_few_ranges() {
        let mut record: BackfillRecord = serde_json::from_str(
            r#"{"format":1,"workflow":"w","id":"i","from":"a","to":"b","reprocess":"missing",
                "order":"oldest","started_at":"t","updated_at":"t","done":["2026-01-01"]}"#,
        )
        .unwrap();
        for position in [3, 1, 2, 0, 7, 5, 6, 2] {
            record.mark_done(position);
        }
        assert_eq!(record.done_positions, [[0, 4], [5, 8]]);
        assert!(record.did("x", 6) && !record.did("x", 4) && record.did("2026-01-01", 99));
        assert_eq!(record.done_count(), 8);
        for position in 0..100_000 {
            record.mark_done(position);
        }
        assert_eq!(record.done_positions, [[0, 100_000]]);
    }

    #[test]
    fn a_run_started_since_the_backfill_started_is_told_apart_from_an_older_one() {
        let record: BackfillRecord = serde_json::from_str(
            r#"{"format":2,"workflow":"w","id":"i","from":"a","to":"b","reprocess":"all",
                "order":"oldest","started_at":"2026-12-06T22:10:05Z","updated_at":"t"}"#,
        )
        .unwrap();
        assert!(record.started_before("20261206T221005Z-3fa9c1"));
        assert!(record.started_before("20261206T230000Z-000001"));
        assert!(!record.started_before("20261206T221004Z-3fa9c1"));
        assert!(!record.started_before("20191006T040000Z-aaaaaa"));
        assert!(!record.started_before("not-a-run-id"));
        let old: BackfillRecord = serde_json::from_str(
            &serde_json::to_string(&record)
                .unwrap()
                .replace("2026-12-06T22:10:05Z", "t"),
        )
        .unwrap();
        assert!(!old.started_before("20261206T230000Z-000001"));
    }
}
