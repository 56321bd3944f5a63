//! `respawn interrupt WORKFLOW`: lose the current local cluster of a running run, as a
//! spot interruption would. The orchestrator holding the workflow's lease gets SIGUSR1.

use super::{InterruptArgs, exit, output, store};
use crate::drivers::ledger::{Holder, Layout, read_lease, read_run};

pub fn run(args: &InterruptArgs) -> std::io::Result<i32> {
    let (name, file_store) = match store::workflow_target(&args.workflow) {
        Ok(target) => target,
        Err(code) => return Ok(code),
    };
    let runtime = store::runtime()?;
    runtime.block_on(async move {
        let store = match store::open(&args.store, file_store.as_deref()).await {
            Ok(store) => store,
            Err(code) => return Ok(code),
        };
        let layout = Layout::new(&name);
        let lease = match read_lease(&store, &layout).await {
            Ok(lease) => lease,
            Err(error) => return Ok(store::report(&error)),
        };
        let Some(lease) = lease.filter(store::lease_is_live) else {
            output::stderr(&format!(
                "error: no run of workflow `{name}` is in progress (nothing holds its lease)\n"
            ));
            return Ok(exit::INVALID_INPUT);
        };
        let holder = lease.holder;
        if holder.host != Holder::this_process(None).host {
            output::stderr(&format!(
                "error: workflow `{name}` is being run by {holder}; run `respawn interrupt` on that machine\n"
            ));
            return Ok(exit::INVALID_INPUT);
        }
        if let Some(run_id) = &holder.run_id
            && let Ok(record) = read_run(&store, &layout, run_id).await
            && record.value.markets.last().map(|m| m.market.as_str()) == Some("on-demand")
        {
            output::stderr(&format!(
                "error: run {run_id} of workflow `{name}` is on an on-demand cluster; spot interruptions do not reach it\n"
            ));
            return Ok(exit::INVALID_INPUT);
        }
        let command = std::fs::read(format!("/proc/{}/cmdline", holder.pid)).unwrap_or_default();
        if !String::from_utf8_lossy(&command).contains("respawn") {
            output::stderr(&format!(
                "error: {holder} holds the lease of workflow `{name}` but is no longer running respawn; its lease expires at {}\n",
                lease.expires_at
            ));
            return Ok(exit::INVALID_INPUT);
        }
        // SAFETY: kill(2) has no memory-safety preconditions.
        let sent = unsafe { libc::kill(holder.pid as i32, libc::SIGUSR1) };
        if sent != 0 {
            let error = std::io::Error::last_os_error();
            output::stderr(&format!(
                "error: cannot signal {holder}: {error} (its lease expires at {})\n",
                lease.expires_at
            ));
            return Ok(exit::INVALID_INPUT);
        }
        output::stdout(&format!(
            "interrupting the cluster of workflow `{name}` ({holder})\n"
        ))?;
        Ok(exit::SUCCESS)
    })
}
