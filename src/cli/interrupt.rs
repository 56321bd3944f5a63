//! `respawn interrupt WORKFLOW`: lose the current local cluster of a running run, as a
//! spot interruption would (the session layer signals the orchestrator holding the lease).

use super::{InterruptArgs, exit, output, store};
use crate::drivers::ledger::Layout;
use crate::engine::clock::WallClock;
use crate::engine::session::{self, InterruptError};

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
        match session::interrupt(&store, &Layout::new(&name), &WallClock).await {
            Ok(holder) => {
                output::stdout(&format!(
                    "interrupting the cluster of workflow `{name}` ({holder})\n"
                ))?;
                Ok(exit::SUCCESS)
            }
            Err(InterruptError::Store(error)) => Ok(store::report(&error)),
            Err(error) => {
                output::stderr(&format!("error: {error}\n"));
                Ok(exit::INVALID_INPUT)
            }
        }
    })
}
