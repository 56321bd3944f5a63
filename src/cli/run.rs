//! `respawn run FILE`: run, resume, or re-process one batch of a workflow on a local or EMR cluster.

use super::{Format, RunArgs, exit, output, store};
use crate::drivers::cluster::{ClusterProvider, EmrClusters, LocalClusters, emr};
use crate::drivers::ledger::{Layout, LeaseError, check_batch};
use crate::drivers::store::{AnyStore, Store, TransferOptions};
use crate::engine::clock::WallClock;
use crate::engine::driver::{RunEnd, RunInput, drive};
use crate::engine::session::{self, Opened, RunRequest, SessionError};
use crate::plan::{PlanOptions, plan};
use crate::workflow::Provider;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn run(args: &RunArgs) -> std::io::Result<i32> {
    let Some(workflow) = output::load_or_report(&args.file) else {
        return Ok(exit::INVALID_INPUT);
    };
    if let Some(batch) = &args.batch
        && let Err(reason) = check_batch(batch)
    {
        output::stderr(&format!(
            "error: --batch `{}` {reason}\n",
            batch.escape_default()
        ));
        return Ok(exit::INVALID_INPUT);
    }
    let workflow_dir = absolute(args.file.parent().unwrap_or(Path::new(".")));
    let cwd = std::env::current_dir()?;
    let scratch = absolute(&args.scratch);
    let runtime = store::runtime()?;
    runtime.block_on(async move {
        let store = match store::open(&args.store, workflow.store.as_deref()).await {
            Ok(store) => store,
            Err(code) => return Ok(code),
        };
        if workflow.cluster.provider == Provider::Emr && !matches!(store, AnyStore::S3(_)) {
            output::stderr(&format!(
                "error: {}: `cluster.provider: emr` needs an S3 store, not {} \
                 (hint: EMR steps read and write checkpoints in S3: pass --store s3://bucket/prefix)\n",
                workflow.file,
                store.describe()
            ));
            return Ok(exit::INVALID_INPUT);
        }
        let layout = Layout::new(&workflow.name);
        let request = RunRequest {
            batch: args.batch.clone(),
            force: args.force,
        };
        let (record, lease, announce) =
            match session::open(&store, &layout, &workflow, &request, &WallClock).await {
                Ok(Opened::Nothing(message)) => {
                    output::stdout(&format!("{message}\n"))?;
                    return Ok(exit::SUCCESS);
                }
                Ok(Opened::Run(opened)) => (opened.record, opened.lease, opened.announce),
                Err(SessionError::Lease(error)) => return Ok(lease_error(&error)),
                Err(SessionError::Store(error)) => return Ok(store::report(&error)),
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
                let client = emr::client(
                    spec.region.as_deref(),
                    args.emr.emr_endpoint_url.as_deref(),
                )
                .await;
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
        Ok(match drive(input).await {
            RunEnd::Succeeded => exit::SUCCESS,
            RunEnd::Failed { message, log_tail } => {
                let mut text = format!("error: {message}\n");
                if !log_tail.is_empty() {
                    text.push_str("the last lines of the log:\n");
                    for line in log_tail.lines() {
                        text.push_str(&format!("  | {line}\n"));
                    }
                }
                text.push_str("hint: fix the stage and run the same command again: the run resumes where it failed\n");
                output::stderr(&text);
                exit::RUN_FAILED
            }
            RunEnd::Stopped => {
                output::stderr("stopped; run the same command again to resume\n");
                exit::STOPPED
            }
            RunEnd::Store(error) => store::report(&error),
            RunEnd::Lease(error) => lease_error(&error),
            RunEnd::Io(message) => {
                output::stderr(&format!("error: {message}\n"));
                exit::INTERNAL
            }
        })
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn lease_error(error: &LeaseError) -> i32 {
    output::stderr(&format!("error: {error}\n"));
    match error {
        LeaseError::Held { .. } | LeaseError::Lost { .. } => exit::BUSY,
        LeaseError::Store(error) => store::report(error),
    }
}
