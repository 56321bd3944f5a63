//! `respawn run FILE`: run, resume, or re-process one batch of a workflow on a local or EMR
//! cluster. The session layer decides which run and drives it; this prints its events.

use super::error::ErrorKind;
use super::scheduled::run_settings;
use super::{CliError, Format, RunArgs, exit, output, store};
use respawn_core::contract::Layout;
use respawn_core::workflow::names::check_batch;
use respawn_run::clock::WallClock;
use respawn_run::driver::RunEnd;
use respawn_run::session::{self, Opened, RunRequest, RunSettings};
use std::io::IsTerminal;
use std::time::Duration;

/// How long stages get between SIGTERM and SIGKILL when the run stops.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(10);

/// The run's cost as its last line, read back from the store as `respawn cost` reads it.
async fn print_cost(
    store: &respawn_run::store::AnyStore,
    layout: &Layout,
    run_id: &str,
    workflow: &respawn_core::workflow::Workflow,
) {
    let line = match respawn_run::read::run_cost(store, layout, run_id, workflow).await {
        Ok((_, cost)) => super::report::cost_line(&cost),
        Err(reason) => format!("cost: {reason}"),
    };
    let _ = output::stdout(&format!("{line}\n"));
}

/// Runs the workflow; returns the exit code (0, or 130 when stopped) or the error.
pub fn run(args: &RunArgs) -> Result<i32, CliError> {
    let workflow = output::load(&args.file)?;
    if let Some(batch) = &args.batch
        && let Err(reason) = check_batch(batch)
    {
        return Err(CliError::invalid_input(format!(
            "--batch `{}` {reason}",
            batch.escape_default()
        )));
    }
    let settings = RunSettings {
        chaos: args.chaos.clone(),
        ..run_settings(&args.file, &args.place)
    };
    let request = RunRequest {
        batch: args.batch.clone(),
        force: args.force,
        allow_future: args.allow_future,
    };
    super::scheduled::prepare_scratch(&args.place.scratch)?;
    let runtime = store::start_runtime()?;
    store::drive_runs(&runtime, async move {
        respawn_run::driver::catch_interrupts_early()
            .map_err(|e| CliError::internal(format!("cannot listen for signals: {e}")))?;
        let store = store::connect_to_run(&args.place.store, workflow.store.as_deref()).await?;
        let layout = Layout::new(&workflow.name);
        let opened = match session::open(&store, &layout, &workflow, &request, &WallClock).await? {
            Opened::Nothing(message) => {
                output::stdout(&format!("{message}\n"))?;
                return Ok(exit::SUCCESS);
            }
            Opened::Run(opened) => *opened,
        };
        let format = args.format;
        if format == Format::Text {
            output::stdout(&format!("{}\n", opened.announce))?;
        }
        // On a terminal, text output gets a live status block below the event lines.
        let live = (format == Format::Text && std::io::stdout().is_terminal()).then(|| {
            super::live::Live::start(
                workflow
                    .stages
                    .iter()
                    .map(|s| (s.name.clone(), s.estimate.as_secs_f64()))
                    .collect(),
            )
        });
        let sink = Box::new(move |event: &_| super::events::print(format, live.as_ref(), event));
        let (run_id, kept_store, kept_workflow) = (
            opened.record.value.run_id.clone(),
            store.clone(),
            workflow.clone(),
        );
        let end = session::drive_opened(workflow, store, opened, settings, sink).await;
        if format == Format::Text && !matches!(end, RunEnd::Store(_) | RunEnd::Lease(_)) {
            print_cost(&kept_store, &layout, &run_id, &kept_workflow).await;
        }
        exit_of(end)
    })
}

/// The command's exit: 0 for a run that succeeded, 130 for one stopped, and the error of
/// one that failed (with the last lines of its log).
fn exit_of(end: RunEnd) -> Result<i32, CliError> {
    match end {
        RunEnd::Succeeded => Ok(exit::SUCCESS),
        RunEnd::Failed { message, log_tail } => {
            let mut message = message;
            if !log_tail.is_empty() {
                message.push_str("\nthe last lines of the log:");
                for line in log_tail.lines() {
                    message.push_str(&format!("\n  | {line}"));
                }
            }
            Err(CliError::new(ErrorKind::RunFailed, message).with_hint(
                "fix the stage (or the data its check refused; a new `version` runs a stage again) and run the same command again: the run resumes where it failed",
            ))
        }
        RunEnd::Stopped => {
            // Not an error: the run is recorded as stopped and resumes.
            output::stderr("stopped; run the same command again to resume\n");
            Ok(exit::STOPPED)
        }
        RunEnd::Store(error) => Err(error.into()),
        RunEnd::Lease(error) => Err(error.into()),
        RunEnd::Io(message) => Err(CliError::internal(message)),
    }
}
