//! `respawn interrupt WORKFLOW`: lose the current local cluster of a running run, as a
//! spot interruption would (the session layer signals the orchestrator holding the lease).

use super::{CliError, InterruptArgs, output, store};
use respawn_core::contract::Layout;
use respawn_run::clock::WallClock;
use respawn_run::session;

pub fn run(args: &InterruptArgs) -> Result<(), CliError> {
    let (name, file_store) = store::resolve_workflow(&args.workflow)?;
    let runtime = store::start_runtime()?;
    runtime.block_on(async move {
        let store = store::connect_existing_to_write(&args.store, file_store.as_deref()).await?;
        let holder = session::interrupt(
            &store,
            &Layout::new(&name),
            args.batch.as_deref(),
            &WallClock,
        )
        .await?;
        output::stdout(&format!(
            "interrupting the cluster of workflow `{name}` ({holder})\n"
        ))?;
        Ok(())
    })
}
