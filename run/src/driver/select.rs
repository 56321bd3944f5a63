//! The driver's loop: wait for the next message, signal, lease renewal or liveness check,
//! hand it to [`Driver::handle`], until the machine says the run is over.

use super::signals::Signals;
use super::{Driver, Msg, RunEnd};
use crate::cluster::Cluster;
use crate::ledger::LeaseError;
use std::time::Duration;

/// How often a local cluster's scratch directory is checked (deleting it loses the cluster).
const WATCH_EVERY: Duration = Duration::from_millis(200);

impl Driver {
    pub(super) async fn run(&mut self) -> RunEnd {
        if self.settings.listen_for_signals {
            match Signals::new() {
                Ok(signals) => self.signals = Some(signals),
                Err(e) => return RunEnd::Io(format!("cannot listen for signals: {e}")),
            }
        }
        let renew_every = self
            .lease
            .as_ref()
            .map(|l| l.ttl() / 3)
            .unwrap_or(Duration::from_secs(10))
            .max(Duration::from_millis(200));
        let mut renew =
            tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
        let mut watch = tokio::time::interval(WATCH_EVERY);
        loop {
            if let Some(outcome) = self.outcome.take() {
                return self.end_of(outcome);
            }
            let signals = &mut self.signals;
            let signal = async move {
                match signals.as_mut() {
                    Some(signals) => signals.next().await,
                    None => std::future::pending().await,
                }
            };
            let msg = tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(msg) => msg,
                    None => return RunEnd::Io("the driver's channel closed".into()),
                },
                signal = signal => signal,
                _ = renew.tick() => {
                    if let Err(end) = self.renew_lease().await {
                        return end;
                    }
                    continue;
                }
                _ = watch.tick() => match self.vanished() {
                    Some(msg) => msg,
                    None => continue,
                },
            };
            if let Some(end) = self.handle(msg).await {
                return end;
            }
        }
    }

    /// A loss when the current cluster's scratch directory is gone.
    fn vanished(&self) -> Option<Msg> {
        let cluster = self.cluster.as_ref()?;
        let generation = cluster.generation();
        (!self.gone.contains(&generation) && !cluster.is_alive()).then(|| Msg::Lose {
            generation,
            cause: format!(
                "its scratch directory {} vanished",
                Cluster::describe(cluster)
            ),
        })
    }

    /// Renews the lease; a transient store error is tolerated until the lease is about to
    /// expire, anything else ends the run (someone else may own the workflow now).
    pub(super) async fn renew_lease(&mut self) -> Result<(), RunEnd> {
        let now = self.clock.now();
        let Some(lease) = self.lease.as_mut() else {
            return Ok(());
        };
        match lease.renew(&self.store, now).await {
            Ok(()) => Ok(()),
            Err(LeaseError::Store(error)) if error.is_transient() => {
                tracing::warn!("could not renew the lease (will retry): {error}");
                let expires = lease.record.expires_unix;
                let now_unix = now
                    .duration_since(std::time::SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                if now_unix + 2 >= expires {
                    self.lease = None;
                    return Err(RunEnd::Store(error));
                }
                Ok(())
            }
            Err(error) => {
                self.lease = None;
                Err(RunEnd::Lease(error))
            }
        }
    }
}
