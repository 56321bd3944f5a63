//! Opening the store a command names, and finding the workflow it names.

use super::{CliError, StoreArgs, output};
use respawn_run::store::{AnyStore, S3Options, StoreError, StoreUrl};

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
    let defaults = S3Options::default();
    S3Options {
        endpoint_url: args.endpoint_url.clone(),
        outage: args.store_outage.unwrap_or(defaults.outage),
        ..defaults
    }
}

/// The runtime for commands that talk to the store ([`respawn_run::runtime`]), failing as
/// a [`CliError`].
pub fn start_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    respawn_run::runtime()
        .map_err(|e| CliError::internal(format!("cannot start the async runtime: {e}")))
}

/// How long a command that drove runs waits, before it exits, for their alerts still
/// being delivered (the tries of one alert take at most about half a minute).
const ALERTS_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(40);

/// Runs a command that drives runs (`run`, `tick`, `backfill`, `schedule`) on `runtime`,
/// then waits for the alerts of those runs ([`respawn_run::alerts::drain`]).
pub fn drive_runs<T>(runtime: &tokio::runtime::Runtime, command: impl Future<Output = T>) -> T {
    let result = runtime.block_on(command);
    runtime.block_on(respawn_run::alerts::drain(ALERTS_AT_EXIT));
    result
}

/// Opens the store that applies ([`url`]) for reading: nothing is written to it, and a local
/// store directory that does not exist is a store error naming it, never created. A bad URL is invalid input; a store that
/// cannot be used is a store error.
pub async fn connect(args: &StoreArgs, from_workflow: Option<&str>) -> Result<AnyStore, CliError> {
    let url = url(args, from_workflow)?;
    Ok(AnyStore::open_existing(&url, &options(args)).await?)
}

/// [`connect`] for a command that changes what a store holds (clean, interrupt): the store
/// must exist, and an S3 server must enforce conditional writes.
pub async fn connect_existing_to_write(
    args: &StoreArgs,
    from_workflow: Option<&str>,
) -> Result<AnyStore, CliError> {
    let url = url(args, from_workflow)?;
    Ok(AnyStore::open_existing_to_write(&url, &options(args)).await?)
}

/// [`connect`] for a command that writes to the store: a local store directory is created
/// if it does not exist (reading commands never create one).
pub async fn connect_to_write(
    args: &StoreArgs,
    from_workflow: Option<&str>,
) -> Result<AnyStore, CliError> {
    let url = url(args, from_workflow)?;
    Ok(AnyStore::open(&url, &options(args)).await?)
}

/// [`connect`] for a command that starts runs: a store whose last `respawn store check`
/// failed is refused, with the reasons; an S3 endpoint other than AWS S3 that was never
/// checked is checked first (once: the verdict is kept in the bucket).
pub async fn connect_to_run(
    args: &StoreArgs,
    from_workflow: Option<&str>,
) -> Result<AnyStore, CliError> {
    use respawn_run::store::check::{FirstUse, check_on_first_use};
    let store = connect_to_write(args, from_workflow).await?;
    let started = std::time::Instant::now();
    let now = jiff::Timestamp::now().to_string();
    if let FirstUse::Checked(verdict) = check_on_first_use(&store, now).await? {
        let warnings = verdict.warnings();
        let warnings = match warnings.is_empty() {
            true => String::new(),
            false => format!("; warnings: {warnings}"),
        };
        output::stderr(&format!(
            "respawn: first use of {}: checked that it decides conditional writes atomically (as `respawn store check` does) in {:.1} s: passed{warnings}\n",
            verdict.store,
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(store)
}

/// A workflow named on the command line: a workflow file (its name and `store:`), or a
/// bare workflow name.
pub fn resolve_workflow(text: &str) -> Result<(String, Option<String>), CliError> {
    let path = std::path::Path::new(text);
    if path.is_file() {
        let workflow = output::load(path)?;
        return Ok((workflow.name, workflow.store));
    }
    match respawn_core::workflow::check_name(text) {
        Ok(()) => Ok((text.to_string(), None)),
        Err(reason) => Err(CliError::invalid_input(format!(
            "`{}` is neither a workflow file nor a workflow name: the name {reason}",
            text.escape_default()
        ))),
    }
}
