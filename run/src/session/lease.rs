//! The lease as the session layer holds it: taken over from a holder of this machine that
//! has died, and told apart from a live one.

use crate::clock::Clock;
use crate::host::holder_is_gone;
use crate::ledger::{Holder, Layout, Lease, LeaseError, LeaseRecord, read_lease};
use crate::store::{AnyStore, StoreError};
use std::time::Duration;

/// How long a lease lasts without renewal (the driver renews it every third of it).
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// Takes the lease of `batch` for this process. A lease held by a process of this machine
/// that no longer exists is taken over at once; any other live holder is an error that
/// names it ([`LeaseError::Held`]).
pub async fn take_lease(
    store: &AnyStore,
    layout: &Layout,
    batch: &str,
    clock: &dyn Clock,
) -> Result<Lease, LeaseError> {
    Lease::acquire_unless_alive(
        store,
        layout,
        batch,
        Holder::this_process(None),
        LEASE_TTL,
        clock.now(),
        &holder_is_gone,
    )
    .await
}

/// Whether an orchestrator is at work under this lease: not released, not expired, and
/// not a process of this machine that has died.
pub fn lease_is_live(lease: &LeaseRecord, clock: &dyn Clock) -> bool {
    !lease.is_free(clock.now()) && !holder_is_gone(&lease.holder)
}

/// The live lease of the orchestrator running `run_id` (of `batch`), if one is at work on it.
pub async fn live_holder_of(
    store: &AnyStore,
    layout: &Layout,
    batch: &str,
    run_id: &str,
    clock: &dyn Clock,
) -> Result<Option<LeaseRecord>, StoreError> {
    Ok(read_lease(store, layout, batch).await?.filter(|lease| {
        lease_is_live(lease, clock) && lease.holder.run_id.as_deref() == Some(run_id)
    }))
}
