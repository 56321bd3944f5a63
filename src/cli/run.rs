//! `respawn run FILE`: run, resume, or re-process one batch of a workflow on a local or EMR cluster.

use super::{Format, RunArgs, exit, output, store};
use crate::drivers::cluster::{ClusterProvider, EmrClusters, LocalClusters, emr};
use crate::drivers::ledger::{
    Holder, Layout, Lease, LeaseError, RunRecord, RunStatus, Versioned, check_batch, new_run_id,
    read_output, read_run, runs,
};
use crate::drivers::store::{AnyStore, Store, StoreError, TransferOptions};
use crate::engine::clock::WallClock;
use crate::engine::driver::{RunEnd, RunInput, drive};
use crate::engine::fingerprint::fingerprints;
use crate::plan::{PlanOptions, plan};
use crate::workflow::{Provider, Workflow};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long a lease lasts without renewal (renewed every third of it).
pub const LEASE_TTL: Duration = Duration::from_secs(60);

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
        let mut lease = match Lease::acquire_unless_alive(
            &store,
            &layout,
            Holder::this_process(None),
            LEASE_TTL,
            SystemTime::now(),
            &store::holder_is_gone,
        )
        .await
        {
            Ok(lease) => lease,
            Err(error) => return Ok(lease_error(&error)),
        };
        let chosen = match choose(&store, &layout, &workflow, args).await {
            Ok(chosen) => chosen,
            Err(error) => {
                let _ = lease.release(&store, SystemTime::now()).await;
                return Ok(store::report(&error));
            }
        };
        let (record, announce) = match chosen {
            Choice::Nothing(message) => {
                let _ = lease.release(&store, SystemTime::now()).await;
                output::stdout(&format!("{message}\n"))?;
                return Ok(exit::SUCCESS);
            }
            Choice::Run { record, announce } => (*record, announce),
        };
        lease.record.holder.run_id = Some(record.value.run_id.clone());
        if let Err(error) = lease.renew(&store, SystemTime::now()).await {
            return Ok(lease_error(&error));
        }
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

enum Choice {
    Nothing(String),
    Run {
        record: Box<Versioned<RunRecord>>,
        announce: String,
    },
}

/// Which run this command is about: resume, reopen, start anew, or nothing to do.
async fn choose(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    args: &RunArgs,
) -> Result<Choice, StoreError> {
    let mut records = Vec::new();
    for record in runs(store, layout).await? {
        match record {
            Ok(record) => records.push(record),
            Err(error) => tracing::warn!("skipping a run that cannot be read: {error}"),
        }
    }
    let latest = match &args.batch {
        Some(batch) => records.iter().rev().find(|r| &r.batch == batch),
        None => records
            .iter()
            .rev()
            .find(|r| r.status != RunStatus::Succeeded),
    };
    let start = |batch: String, why: String| async move {
        let now = SystemTime::now();
        let run_id = new_run_id(now);
        let record = RunRecord::new(
            &workflow.name,
            &batch,
            &run_id,
            workflow.cluster.market.as_str(),
            now,
        );
        let record = Versioned::create(store, layout, record).await?;
        Ok::<Choice, StoreError>(Choice::Run {
            record: Box::new(record),
            announce: format!(
                "{why}: run {run_id} of workflow `{}`, batch {batch}, store {}",
                workflow.name,
                store.describe()
            ),
        })
    };
    let Some(latest) = latest else {
        return match &args.batch {
            Some(batch) => start(batch.clone(), "starting batch".into()).await,
            None => {
                let batch = new_run_id(SystemTime::now());
                start(batch, "starting a new batch".into()).await
            }
        };
    };
    let run_id = latest.run_id.clone();
    if args.force {
        let why = format!(
            "reprocessing batch {} (--force; it replaces the outputs of run {run_id})",
            latest.batch
        );
        return start(latest.batch.clone(), why).await;
    }
    let record = read_run(store, layout, &run_id).await?;
    if record.value.status == RunStatus::Succeeded {
        match changed_since(store, layout, workflow, &record.value).await? {
            None => {
                let mut message = format!(
                    "batch {} of workflow `{}` already succeeded in run {run_id}; nothing to do (use --force to reprocess it)",
                    record.value.batch, workflow.name
                );
                if workflow.cleanup == crate::workflow::Cleanup::OnSuccess {
                    let left = store.delete_prefix(&layout.work(&run_id)).await?;
                    if left > 0 {
                        message.push_str(&format!(
                            "\nfinished its cleanup: deleted {left} leftover work-table object(s)"
                        ));
                    }
                }
                return Ok(Choice::Nothing(message));
            }
            Some(reason) => {
                let announce = format!(
                    "reopening run {run_id} of workflow `{}`, batch {}: {reason}",
                    workflow.name, record.value.batch
                );
                return Ok(Choice::Run {
                    record: Box::new(record),
                    announce,
                });
            }
        }
    }
    let announce = format!(
        "resuming run {run_id} of workflow `{}`, batch {} ({} before), store {}",
        workflow.name,
        record.value.batch,
        record.value.status.as_str(),
        store.describe()
    );
    Ok(Choice::Run {
        record: Box::new(record),
        announce,
    })
}

/// Why a succeeded run is no longer complete: a stage changed, or a final output is gone.
async fn changed_since(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    record: &RunRecord,
) -> Result<Option<String>, StoreError> {
    let prints = fingerprints(workflow);
    for (stage, print) in workflow.stages.iter().zip(&prints) {
        let recorded = record
            .stages
            .get(&stage.name)
            .and_then(|s| s.fingerprint.as_ref());
        if recorded != Some(print) {
            return Ok(Some(format!(
                "the definition of stage `{}` changed since",
                stage.name
            )));
        }
    }
    for stage in workflow.stages.iter().filter(|s| s.is_final) {
        if read_output(store, layout, &stage.name, &record.batch)
            .await?
            .is_none()
        {
            return Ok(Some(format!(
                "the output of stage `{}` ({}) is gone",
                stage.name,
                store.locate(&layout.output(&stage.name, &record.batch))
            )));
        }
    }
    Ok(None)
}
