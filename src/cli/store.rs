//! Opening the store a command names, and reporting store errors.

use super::{StoreArgs, exit, output};
use crate::drivers::store::{AnyStore, S3Options, StoreError, StoreUrl};

/// The default store: a directory in the current one.
pub const DEFAULT_STORE: &str = ".respawn";

/// Which store URL applies: the flag (or `RESPAWN_STORE`), the workflow file's, or the default.
pub fn url(args: &StoreArgs, from_workflow: Option<&str>) -> Result<StoreUrl, StoreError> {
    let text = args
        .store
        .as_deref()
        .or(from_workflow)
        .unwrap_or(DEFAULT_STORE);
    Ok(StoreUrl::parse(text)?)
}

pub fn options(args: &StoreArgs) -> S3Options {
    S3Options {
        endpoint_url: args.endpoint_url.clone(),
        ..S3Options::default()
    }
}

/// A runtime for commands that talk to the store.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

pub async fn open(args: &StoreArgs, from_workflow: Option<&str>) -> Result<AnyStore, i32> {
    let url = url(args, from_workflow).map_err(|e| {
        output::stderr(&format!("error: {e}\n"));
        exit::INVALID_INPUT
    })?;
    AnyStore::open(&url, &options(args))
        .await
        .map_err(|e| report(&e))
}

/// Prints a store error and returns its exit code.
pub fn report(error: &StoreError) -> i32 {
    output::stderr(&format!("error: {error}\n"));
    match error {
        StoreError::InvalidUrl { .. } | StoreError::InvalidKey { .. } => exit::INVALID_INPUT,
        _ => exit::STORE,
    }
}

/// A workflow named on the command line: a workflow file (its name and `store:`), or a
/// bare workflow name. Prints the problem and returns the exit code otherwise.
pub fn workflow_target(text: &str) -> Result<(String, Option<String>), i32> {
    let path = std::path::Path::new(text);
    if path.is_file() {
        let Some(workflow) = output::load_or_report(path) else {
            return Err(exit::INVALID_INPUT);
        };
        return Ok((workflow.name, workflow.store));
    }
    match crate::workflow::check_name(text) {
        Ok(()) => Ok((text.to_string(), None)),
        Err(reason) => {
            output::stderr(&format!(
                "error: `{}` is neither a workflow file nor a workflow name: the name {reason}\n",
                text.escape_default()
            ));
            Err(exit::INVALID_INPUT)
        }
    }
}

/// Whether an orchestrator is at work under this lease (see the session layer).
pub fn lease_is_live(lease: &crate::drivers::ledger::LeaseRecord) -> bool {
    crate::engine::session::lease_is_live(lease, &crate::engine::clock::WallClock)
}
