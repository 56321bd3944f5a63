//! The ledger: what a run leaves in the store so that another process (or the same command
//! after a crash) can tell what happened and go on.
//!
//! ```text
//! <workflow>/leases/<batch>                         create-only; renewed with If-Match
//! <workflow>/schedule/claims/<batch>.json           a scheduled date claimed, create-only
//! <workflow>/schedule/backfills/<id>.json           a backfill: its range and the dates done
//! <workflow>/schedule/settled.json                  the tick's watermark and its open dates
//! <workflow>/schedule/missed/<from>.json            a range of dates catch-up left out
//! <workflow>/latest/<batch>.json                    the latest run of a batch
//! <workflow>/latest-index.json                      every run has its `latest` object
//! <workflow>/learned.json                           the latest runs' figures, for plans
//! <workflow>/runs/<run_id>/run.json                 run record, updated with If-Match
//! <workflow>/runs/<run_id>/events/<seq>.json        append-only, create-only, numbered
//! <workflow>/runs/<run_id>/workflow.yaml            the workflow file as the run last ran it
//! <workflow>/runs/<run_id>/work/<stage>/<attempt>/  work-table data of one attempt
//! <workflow>/runs/<run_id>/work/<stage>/COMMIT      create-only manifest
//! <workflow>/runs/<run_id>/work/<stage>/COMMIT.parts/<attempt>/  its file list, if long
//! <workflow>/runs/<run_id>/logs/<stage>/<attempt>.log  stdout and stderr of one attempt
//! <workflow>/outputs/<stage>/<batch>/               final output; `_SUCCESS` written last
//! <workflow>/outputs/<stage>/<batch>/_SUCCESS.parts/  its file list, if long
//! ```

mod backfill;
mod claim;
mod commit;
mod latest;
mod learned;
mod lease;
mod parts;
mod run;
mod settled;

pub use backfill::{BackfillRecord, read_backfill};
pub use claim::{Claim, ClaimOutcome, Decision, claim, read_claim, read_claims, take_over};
pub use commit::{
    CommitManifest, CommitOutcome, CommitState, Committed, SuccessManifest, check_commit, commit,
    commit_parts, output_problem, publish_output, read_commit, read_output, read_success,
    verify_commit,
};
pub use latest::{Latest, LatestIndex, build_index, index_built, read_latest, write_latest};
pub use learned::{LEARNED_RUNS, add_learned, read_learned};
pub use lease::{Holder, Lease, LeaseError, LeaseRecord, read_lease, read_leases};
pub use parts::{
    Chunks, Comparison, Difference, FileList, PART_FILES, PartRef, PartWriter, SUCCESS_PARTS,
};
/// The contracts the ledger keeps, defined in the core so that every layer reads them.
pub use respawn_core::contract::{
    FORMAT, Interruption, Layout, MarketChange, RunRecord, RunStatus, StageRecord, timestamp,
};
pub use run::{
    EventLog, Versioned, find_run, is_missing_record, new_run_id, read_events, read_run, runs,
};
pub use settled::{
    MissedRange, Settled, advance_settled, read_missed, read_settled, record_missed,
};

use super::store::{self, Store, StoreError};

/// The batch-id rule lives in the workflow layer, where schedules make batch ids too.
pub use respawn_core::workflow::names::check_batch;

/// Parses a JSON object of the ledger, naming the object when it is not valid.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    object: String,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        object,
        detail: format!(
            "{e} (hint: it was not written by this version of respawn, or was edited by hand)"
        ),
    })
}

/// An object of the ledger with its ETag, or `None` when there is none.
pub(crate) async fn read_versioned<S: Store, T: serde::de::DeserializeOwned>(
    store: &S,
    key: &str,
) -> Result<Option<Versioned<T>>, StoreError> {
    match store.get(key).await {
        Ok((bytes, meta)) => {
            let value = parse_json(store.locate(key), &bytes)?;
            let etag = meta.etag.ok_or_else(|| StoreError::Corrupt {
                object: store.locate(key),
                detail: "the store returned no ETag".into(),
            })?;
            Ok(Some(Versioned { value, etag }))
        }
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// How many times an update is tried again after a concurrent writer changed the object.
const UPDATE_TRIES: usize = 8;

/// The one read-modify-write loop of the ledger: applies `change` to a copy of `current`
/// and writes it to `key` with If-Match on `current`'s ETag. When another writer changed the
/// object meanwhile, `reread` gives its new version and `change` is applied to that (so
/// `change` must be a function of the value, not of the copy first read). On success
/// `current` is what was written.
pub(crate) async fn update_versioned<S, T, F>(
    store: &S,
    key: &str,
    current: &mut Versioned<T>,
    mut change: impl FnMut(&mut T),
    reread: impl Fn() -> F,
) -> Result<(), StoreError>
where
    S: Store,
    T: Clone + serde::Serialize,
    F: std::future::Future<Output = Result<Versioned<T>, StoreError>>,
{
    for _ in 0..UPDATE_TRIES {
        let mut next = current.value.clone();
        change(&mut next);
        match store
            .put(
                key,
                to_json(&next),
                store::PutMode::Update(current.etag.clone()),
            )
            .await
        {
            Ok(etag) => {
                *current = Versioned { value: next, etag };
                return Ok(());
            }
            Err(StoreError::PreconditionFailed { .. }) => *current = reread().await?,
            Err(other) => return Err(other),
        }
    }
    Err(StoreError::PreconditionFailed {
        object: store.locate(key),
    })
}

/// A manifest's JSON, compact: its file list may hold a million entries, and indenting
/// each made a COMMIT of a million files 120 MB where it is 75.
/// Its buffer is sized exactly (the JSON is counted first): grown by doubling, it held up
/// to twice the manifest.
pub(crate) fn to_compact_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).expect("ledger records always serialize");
    let mut bytes = Vec::with_capacity(count.0 + 1);
    serde_json::to_writer(&mut bytes, value).expect("ledger records always serialize");
    bytes.push(b'\n');
    bytes
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("ledger records always serialize");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_ends_in_a_slash_and_runs_do_not_share_prefixes() {
        let layout = Layout::new("wf");
        for prefix in [
            layout.runs(),
            layout.run("1"),
            layout.events("1"),
            layout.work("1"),
            layout.attempt("1", "s", 2),
            layout.output("s", "b"),
        ] {
            assert!(prefix.ends_with('/'), "{prefix}");
        }
        assert!(!layout.work("10").starts_with(&layout.work("1")));
        assert_eq!(layout.event("r", 7), "wf/runs/r/events/0000000007.json");
    }

    #[test]
    fn work_keys_are_exactly_the_keys_under_a_runs_work_prefix() {
        use crate::store::is_work_key;
        let layout = Layout::new("wf");
        for key in [
            format!("{}part-0.csv", layout.attempt("r1", "s", 2)),
            format!("{}nested/part-1", layout.attempt("r1", "s", 1)),
            layout.commit("r1", "s"),
        ] {
            assert!(is_work_key(&key), "{key}");
        }
        for key in [
            layout.lease("b"),
            layout.run_record("r1"),
            layout.event("r1", 3),
            layout.run_workflow("r1"),
            layout.log("r1", "s", 1),
            layout.success("s", "b"),
            format!("{}part-0", layout.output("s", "b")),
            layout.work("r1"),
            "wf/runs/r1/workers/x".into(),
            "runs/r1/work/s/1/x".into(),
        ] {
            assert!(!is_work_key(&key), "{key}");
        }
    }
}
