//! `respawn history WORKFLOW`: the runs of a workflow, from the ledger.

use super::{CliError, ErrorKind, Format, HistoryArgs, output, store};
use respawn_core::contract::{Layout, RunRecord};
use respawn_core::contract::{MarketChange, StageRecord};
use respawn_core::report::Cost;
use respawn_core::report::page::money;
use respawn_core::workflow::Workflow;
use respawn_run::read as runview;
use respawn_run::read::runs::Damaged;
use respawn_run::store::{AnyStore, Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn run(args: &HistoryArgs) -> Result<(), CliError> {
    let (name, file_store) = store::resolve_workflow(&args.workflow)?;
    let file = std::path::Path::new(&args.workflow);
    let fallback = if file.is_file() {
        Some(output::load(file)?)
    } else {
        None
    };
    let runtime = store::start_runtime()?;
    let (location, records, costs) = runtime.block_on(async {
        let store = store::connect(&args.store, file_store.as_deref()).await?;
        let layout = Layout::new(&name);
        let listing = runview::list_runs(&store, &layout).await?;
        let costs = costs(&store, &layout, listing.records.clone(), fallback).await;
        Ok::<_, CliError>((store.describe(), listing, costs))
    })?;
    // The read side's policy: runs without a record are named and skipped; records that
    // do not read are named, and make the command fail after the others are listed.
    for skipped in &records.without_record {
        output::stderr(&format!("warning: skipped a run: {skipped}\n"));
    }
    let damaged = records.damaged();
    let good = records.records;
    let mut bad: Vec<StoreError> = records.unreadable;
    let costs: Vec<Option<Cost>> = costs
        .into_iter()
        .map(|cost| {
            cost.unwrap_or_else(|error| {
                bad.push(error);
                None
            })
        })
        .collect();
    match args.format {
        Format::Text => {
            if good.is_empty() && bad.is_empty() {
                output::stderr(&format!("no runs of workflow `{name}` in {location}\n"));
            } else if !good.is_empty() {
                output::stdout(&table(&good, &costs))?;
            }
        }
        Format::Json => output::json(&HistoryJson {
            workflow: &name,
            store: &location,
            runs: good.iter().zip(&costs).map(RunJson::of).collect(),
            errors: bad
                .iter()
                .map(|e| Message {
                    message: e.to_string(),
                })
                .collect(),
            damaged: &damaged,
        })?,
    }
    unreadable(bad).map_or(Ok(()), Err)
}

/// Run records that cannot be read, after the readable ones were listed: a store error.
fn unreadable(mut bad: Vec<StoreError>) -> Option<CliError> {
    match bad.len() {
        0 => None,
        1 => bad.pop().map(CliError::from),
        count => {
            let list: Vec<String> = bad.iter().map(|e| format!("  {e}")).collect();
            Some(CliError::new(
                ErrorKind::Store,
                format!("{count} run records cannot be read:\n{}", list.join("\n")),
            ))
        }
    }
}

/// How many runs' events are read at once for their costs.
const COSTS_IN_FLIGHT: usize = 32;

/// The cost of each run, in order, from its events and the workflow kept with it (else
/// the workflow file given); `None` when neither is there.
async fn costs(
    store: &AnyStore,
    layout: &Layout,
    records: Vec<RunRecord>,
    fallback: Option<Workflow>,
) -> Vec<Result<Option<Cost>, StoreError>> {
    let fallback = Arc::new(fallback);
    let mut out: Vec<Option<Result<Option<Cost>, StoreError>>> = Vec::new();
    out.resize_with(records.len(), || None);
    let mut reads = tokio::task::JoinSet::new();
    let mut pending = records.into_iter().enumerate();
    loop {
        while reads.len() < COSTS_IN_FLIGHT
            && let Some((index, record)) = pending.next()
        {
            let (store, layout, fallback) = (store.clone(), layout.clone(), fallback.clone());
            reads.spawn(async move {
                let cost = async {
                    let kept = runview::kept_workflow(&store, &layout, &record.run_id).await?;
                    if kept.is_err() && fallback.is_none() {
                        // No prices: the events are not worth reading.
                        return Ok(None);
                    }
                    let fallback = fallback.as_ref().as_ref();
                    let run =
                        runview::load_with(&store, &layout, record, kept, fallback, false).await?;
                    Ok(run.cost())
                };
                (index, cost.await)
            });
        }
        let Some(joined) = reads.join_next().await else {
            break;
        };
        if let Ok((index, cost)) = joined {
            out[index] = Some(cost);
        }
    }
    out.into_iter().map(|c| c.unwrap_or(Ok(None))).collect()
}

fn table(records: &[RunRecord], costs: &[Option<Cost>]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .zip(costs)
        .map(|(r, cost)| {
            vec![
                r.batch.clone(),
                r.run_id.clone(),
                r.started_at.clone(),
                r.finished_at.clone().unwrap_or_else(|| "-".into()),
                r.status.as_str().into(),
                r.markets
                    .last()
                    .map(|m| m.market.clone())
                    .unwrap_or_default(),
                r.interruptions.len().to_string(),
                r.total_attempts().to_string(),
                cost.as_ref()
                    .map_or("-".into(), |c| money(&c.currency, c.cost)),
                cost.as_ref()
                    .filter(|c| c.complete)
                    .map_or("-".into(), |c| {
                        format!(
                            "{} ({:.0}%)",
                            money(&c.currency, c.saving),
                            c.saving_percent
                        )
                    }),
            ]
        })
        .collect();
    output::table(
        &[
            "BATCH",
            "RUN",
            "STARTED",
            "FINISHED",
            "STATUS",
            "MARKET",
            "INTERRUPTIONS",
            "ATTEMPTS",
            "COST",
            "SAVING",
        ],
        &rows,
    )
}

/// `history --format json`.
#[derive(Serialize)]
struct HistoryJson<'a> {
    workflow: &'a str,
    store: &'a str,
    runs: Vec<RunJson<'a>>,
    errors: Vec<Message>,
    damaged: &'a [Damaged],
}

#[derive(Serialize)]
struct Message {
    message: String,
}

/// One run in `history --format json`.
#[derive(Serialize)]
struct RunJson<'a> {
    batch: &'a str,
    run_id: &'a str,
    started_at: &'a str,
    finished_at: Option<&'a str>,
    status: &'static str,
    markets: &'a [MarketChange],
    interruptions: usize,
    attempts: u32,
    stages: &'a BTreeMap<String, StageRecord>,
    cost: Option<&'a Cost>,
}

impl<'a> RunJson<'a> {
    fn of((r, cost): (&'a RunRecord, &'a Option<Cost>)) -> Self {
        RunJson {
            batch: &r.batch,
            run_id: &r.run_id,
            started_at: &r.started_at,
            finished_at: r.finished_at.as_deref(),
            status: r.status.as_str(),
            markets: &r.markets,
            interruptions: r.interruptions.len(),
            attempts: r.total_attempts(),
            stages: &r.stages,
            cost: cost.as_ref(),
        }
    }
}
