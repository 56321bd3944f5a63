//! Whether an orchestrator is at work on a run: the one answer `status`, `clusters
//! --orphans`, `batches`, `tick` and the session give.

use crate::clock::Clock;
use crate::host::holder_is_gone;
use crate::ledger::{Layout, LeaseRecord, RunRecord, read_lease};
use crate::store::{AnyStore, StoreError};

/// Whether an orchestrator is at work under this lease: not released, not expired, and
/// not a process of this machine that has died.
pub fn lease_is_live(lease: &LeaseRecord, clock: &dyn Clock) -> bool {
    !lease.is_free(clock.now()) && !holder_is_gone(&lease.holder)
}

/// The live lease of the orchestrator at work on `record`'s run, or `None` when nobody
/// is (its batch's lease is free, expired, held by a dead process of this machine, or
/// held for another run).
pub async fn at_work(
    store: &AnyStore,
    layout: &Layout,
    record: &RunRecord,
    clock: &dyn Clock,
) -> Result<Option<LeaseRecord>, StoreError> {
    Ok(read_lease(store, layout, &record.batch)
        .await?
        .filter(|lease| {
            lease_is_live(lease, clock) && lease.holder.run_id.as_deref() == Some(&record.run_id)
        }))
}
