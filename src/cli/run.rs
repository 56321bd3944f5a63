//! `respawn run FILE`: run, resume, or re-process one batch of a workflow on a local or EMR cluster.

use super::error::ErrorKind;
use super::{CliError, Format, RunArgs, exit, output, store};
use crate::drivers::cluster::{ClusterProvider, EmrClusters, LocalClusters, emr};
use crate::drivers::ledger::{Layout, check_batch};
use crate::drivers::store::{AnyStore, Store, TransferOptions};
use crate::engine::clock::WallClock;
use crate::engine::driver::{RunEnd, RunInput, drive};
use crate::engine::session::{self, Opened, RunRequest};
use crate::plan::{PlanOptions, plan};
use crate::workflow::Provider;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    let workflow_dir = absolute(args.file.parent().unwrap_or(Path::new(".")));
    let cwd = std::env::current_dir()?;
    let scratch = absolute(&args.scratch);
    let runtime = store::start_runtime()?;
    runtime.block_on(async move {
        let store = store::connect(&args.store, workflow.store.as_deref()).await?;
        if workflow.cluster.provider == Provider::Emr && !matches!(store, AnyStore::S3(_)) {
            return Err(CliError::invalid_input(format!(
                "{}: `cluster.provider: emr` needs an S3 store, not {}",
                workflow.file,
                store.describe()
            ))
            .with_hint(
                "EMR steps read and write checkpoints in S3: pass --store s3://bucket/prefix",
            ));
        }
        let layout = Layout::new(&workflow.name);
        let request = RunRequest {
            batch: args.batch.clone(),
            force: args.force,
        };
        let (record, lease, announce) =
            match session::open(&store, &layout, &workflow, &request, &WallClock).await? {
                Opened::Nothing(message) => {
                    output::stdout(&format!("{message}\n"))?;
                    return Ok(exit::SUCCESS);
                }
                Opened::Run(opened) => (opened.record, opened.lease, opened.announce),
            };
        if args.format == Format::Text {
            output::stdout(&format!("{announce}\n"))?;
        }
        let scratch = LocalClusters::new(
            scratch.join(&workflow.name).join(&record.value.run_id),
            &record.value.run_id,
        );
        let clusters = match (&workflow.cluster.provider, &workflow.cluster.emr) {
            (Provider::Emr, Some(spec)) => {
                let client =
                    emr::client(spec.region.as_deref(), args.emr.emr_endpoint_url.as_deref()).await;
                ClusterProvider::Emr {
                    emr: std::sync::Arc::new(EmrClusters::new(
                        client,
                        spec.clone(),
                        &workflow.name,
                        &record.value.run_id,
                        &record.value.batch,
                        &store.describe(),
                        args.emr.emr_poll,
                    )),
                    scratch,
                }
            }
            _ => ClusterProvider::Local(scratch),
        };
        let plan = plan(&workflow, &PlanOptions::default());
        let format = args.format;
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
        let input = RunInput {
            plan,
            store: store.clone(),
            layout,
            record,
            lease,
            clusters,
            workflow_dir,
            cwd,
            chaos: args.chaos.clone(),
            transfer: TransferOptions::default(),
            stop_grace: Duration::from_secs(10),
            clock: std::sync::Arc::new(WallClock),
            listen_for_signals: true,
            sink: Box::new(move |event| super::events::print(format, live.as_ref(), event)),
            workflow,
        };
        match drive(input).await {
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
                    "fix the stage and run the same command again: the run resumes where it failed",
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
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
