//! Interrupting a running run, as a spot interruption would: the orchestrator that holds
//! the workflow's lease, on this machine, gets SIGUSR1 and loses its current spot cluster.

use crate::clock::Clock;
use crate::host::{runs_respawn, send_interrupt, this_host};
use crate::ledger::{Holder, Layout, read_leases, read_run};
use crate::read::lease_is_live;
use crate::store::{AnyStore, StoreError};

/// Why a run could not be interrupted.
#[derive(Debug, thiserror::Error)]
pub enum InterruptError {
    #[error("no run of workflow `{workflow}`{} is in progress (nothing holds its lease)", batch.as_ref().map(|b| format!(", batch {b},")).unwrap_or_default())]
    NotRunning {
        workflow: String,
        batch: Option<String>,
    },
    #[error(
        "several batches of workflow `{workflow}` are in progress ({}); name one with --batch",
        batches.join(", ")
    )]
    Several {
        workflow: String,
        batches: Vec<String>,
    },
    #[error(
        "workflow `{workflow}` is being run by {holder}; run `respawn interrupt` on that machine"
    )]
    OtherHost { workflow: String, holder: Holder },
    #[error(
        "run {run_id} of workflow `{workflow}` is on an on-demand cluster; spot interruptions do not reach it"
    )]
    OnDemand { workflow: String, run_id: String },
    #[error(
        "{holder} holds the lease of workflow `{workflow}` but is no longer running respawn; its lease expires at {expires_at}"
    )]
    NotRespawn {
        workflow: String,
        holder: Holder,
        expires_at: String,
    },
    #[error("cannot signal {holder}: {source} (its lease expires at {expires_at})")]
    Signal {
        holder: Holder,
        expires_at: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sends the interrupt to the orchestrator at work on `layout`'s workflow (on `batch`, or
/// on the one batch in progress); returns who got it.
pub async fn interrupt(
    store: &AnyStore,
    layout: &Layout,
    batch: Option<&str>,
    clock: &dyn Clock,
) -> Result<Holder, InterruptError> {
    let workflow = layout.workflow().to_string();
    let mut live: Vec<_> = read_leases(store, layout)
        .await?
        .into_iter()
        .filter(|lease| lease_is_live(lease, clock))
        .filter(|lease| batch.is_none_or(|b| lease.batch == b))
        .collect();
    if live.len() > 1 {
        let mut batches: Vec<String> = live.into_iter().map(|l| l.batch).collect();
        batches.sort();
        return Err(InterruptError::Several { workflow, batches });
    }
    let Some(lease) = live.pop() else {
        return Err(InterruptError::NotRunning {
            workflow,
            batch: batch.map(str::to_string),
        });
    };
    let holder = lease.holder;
    if holder.host != this_host() {
        return Err(InterruptError::OtherHost { workflow, holder });
    }
    if let Some(run_id) = &holder.run_id
        && let Ok(record) = read_run(store, layout, run_id).await
        && record.value.markets.last().map(|m| m.market.as_str()) == Some("on-demand")
    {
        return Err(InterruptError::OnDemand {
            workflow,
            run_id: run_id.clone(),
        });
    }
    if !runs_respawn(holder.pid) {
        return Err(InterruptError::NotRespawn {
            workflow,
            holder,
            expires_at: lease.expires_at,
        });
    }
    match send_interrupt(holder.pid) {
        Ok(()) => Ok(holder),
        Err(source) => Err(InterruptError::Signal {
            holder,
            expires_at: lease.expires_at,
            source,
        }),
    }
}
