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
    StoreUrl::parse(text)
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
