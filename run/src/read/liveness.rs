//! Whether an orchestrator is at work on a run: the one answer `status`, `clusters
//! --orphans`, `gc`, `batches`, `tick` and the session give.

use crate::clock::Clock;
use crate::host::holder_is_gone;
use crate::ledger::{Layout, LeaseRecord, RunRecord, read_lease};
use crate::store::{AnyStore, StoreError};

/// Who is at work on a run, or why nobody is.
#[derive(Clone, Debug)]
pub enum Liveness {
    /// This orchestrator holds the batch's lease for the run and renews it.
    AtWork(Box<LeaseRecord>),
    /// The batch has no lease, or it was released.
    NoLease,
    /// The batch's lease is held for another run of the batch.
    OtherRun,
    /// The lease ran out without being renewed.
    Expired,
    /// The lease's holder was a process of this machine that no longer exists.
    HolderGone,
}

impl Liveness {
    pub fn at_work(self) -> Option<LeaseRecord> {
        match self {
            Liveness::AtWork(lease) => Some(*lease),
            _ => None,
        }
    }

    /// Why nobody is at work on run `run_id`, in words (`None` when someone is).
    pub fn why_nobody(&self, run_id: &str) -> Option<String> {
        Some(match self {
            Liveness::AtWork(_) => return None,
            Liveness::NoLease | Liveness::OtherRun => {
                format!("no orchestrator holds run {run_id}")
            }
            Liveness::Expired => format!("the lease of run {run_id} expired"),
            Liveness::HolderGone => {
                format!("the orchestrator of run {run_id} is gone (its lease is left)")
            }
        })
    }
}

/// Whether an orchestrator is at work under this lease: not released, not expired, and
/// not a process of this machine that has died.
pub fn lease_is_live(lease: &LeaseRecord, clock: &dyn Clock) -> bool {
    !lease.is_free(clock.now()) && !holder_is_gone(&lease.holder)
}

/// Who is at work on `record`'s run, or why nobody is.
pub async fn liveness(
    store: &AnyStore,
    layout: &Layout,
    record: &RunRecord,
    clock: &dyn Clock,
) -> Result<Liveness, StoreError> {
    let Some(lease) = read_lease(store, layout, &record.batch).await? else {
        return Ok(Liveness::NoLease);
    };
    Ok(if lease.holder.run_id.as_deref() != Some(&record.run_id) {
        Liveness::OtherRun
    } else if lease.released {
        Liveness::NoLease
    } else if lease.is_free(clock.now()) {
        Liveness::Expired
    } else if holder_is_gone(&lease.holder) {
        Liveness::HolderGone
    } else {
        Liveness::AtWork(Box::new(lease))
    })
}

/// The live lease of the orchestrator at work on `record`'s run, or `None` when nobody
/// is ([`liveness`] says why).
pub async fn at_work(
    store: &AnyStore,
    layout: &Layout,
    record: &RunRecord,
    clock: &dyn Clock,
) -> Result<Option<LeaseRecord>, StoreError> {
    Ok(liveness(store, layout, record, clock).await?.at_work())
}
