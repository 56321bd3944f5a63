//! The lease as the session layer holds it: taken over from a holder of this machine that
//! has died, and told apart from a live one.

use crate::clock::Clock;
use crate::host::holder_is_gone;
use crate::ledger::{Holder, Layout, Lease, LeaseError};
use crate::store::AnyStore;
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
