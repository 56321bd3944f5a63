//! The run slots of a scheduled workflow: `schedule.max_active` leases shared by every
//! tick and backfill on every machine, so that no more runs go on at once than it allows.

use super::{LEASE_TTL, SessionError};
use crate::clock::Clock;
use crate::host::holder_is_gone;
use crate::ledger::{Holder, Layout, Lease, LeaseError};
use crate::store::AnyStore;
use std::sync::Arc;
use tokio::task::JoinSet;

/// A free run slot of the workflow's `max_active`; while this process's own runs hold
/// them all, waits for one of those to end (handing it to `ended`). `None` when every slot
/// is held by another process.
pub(super) async fn take_slot<T: 'static>(
    store: &AnyStore,
    layout: &Layout,
    slots: u32,
    running: &mut JoinSet<T>,
    clock: &dyn Clock,
    mut ended: impl FnMut(T),
) -> Result<Option<Lease>, SessionError> {
    loop {
        for slot in 0..slots {
            let holder = Holder::this_process(None);
            let taken = Lease::acquire_slot(
                store,
                layout,
                slot,
                holder,
                LEASE_TTL,
                clock.now(),
                &holder_is_gone,
            )
            .await;
            match taken {
                Ok(lease) => return Ok(Some(lease)),
                Err(LeaseError::Held { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        match running.join_next().await {
            Some(Ok(end)) => ended(end),
            Some(Err(_)) => {}
            None => return Ok(None),
        }
    }
}

/// Renews a run slot. One whose object was deleted (by hand) is taken again; one another
/// process holds now is left to it, and the run goes on without it (false: renew no
/// more). A store error is retried at the next renewal.
async fn renew_slot(store: &AnyStore, lease: &mut Lease, clock: &dyn Clock) -> bool {
    match lease.renew(store, clock.now()).await {
        Ok(()) => true,
        Err(LeaseError::Lost { .. }) => match lease.retake(store, clock.now()).await {
            Ok(true) => {
                tracing::warn!(
                    "the run slot {} was deleted; this run took it again",
                    lease.object(store)
                );
                true
            }
            Ok(false) => {
                tracing::warn!(
                    "the run slot {} is another process's now: this run goes on without it, \
                     so more runs than `schedule.max_active` may be active until it ends",
                    lease.object(store)
                );
                false
            }
            Err(error) => {
                tracing::warn!("could not take a deleted run slot again (will retry): {error}");
                true
            }
        },
        Err(error) => {
            tracing::warn!("could not renew a run slot (will retry): {error}");
            true
        }
    }
}

/// A slot lease renewed in the background until released.
pub(super) struct Renewing {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Renewing {
    pub(super) async fn release(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

pub(super) fn keep_renewed(store: AnyStore, mut lease: Lease, clock: Arc<dyn Clock>) -> Renewing {
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let every = lease.ttl() / 3;
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tokio::time::sleep(every) => {
                    if !renew_slot(&store, &mut lease, clock.as_ref()).await {
                        break;
                    }
                }
            }
        }
        let _ = lease.release(&store, clock.now()).await;
    });
    Renewing { stop, task }
}
