//! `respawn history WORKFLOW`: the runs of a workflow, from the ledger.

use super::{CliError, ErrorKind, Format, HistoryArgs, output, store};
use crate::drivers::ledger::{Layout, RunRecord, runs};
use crate::drivers::store::{Store, StoreError};
use serde_json::json;

pub fn run(args: &HistoryArgs) -> Result<(), CliError> {
    let (name, file_store) = store::resolve_workflow(&args.workflow)?;
    let runtime = store::start_runtime()?;
    let (location, records) = runtime.block_on(async {
        let store = store::connect(&args.store, file_store.as_deref()).await?;
        let records = runs(&store, &Layout::new(&name)).await?;
        Ok::<_, CliError>((store.describe(), records))
    })?;
    let (good, bad): (Vec<_>, Vec<_>) = records.into_iter().partition(Result::is_ok);
    let good: Vec<RunRecord> = good.into_iter().filter_map(Result::ok).collect();
    let bad: Vec<StoreError> = bad.into_iter().filter_map(Result::err).collect();
    match args.format {
        Format::Text => {
            if good.is_empty() && bad.is_empty() {
                output::stderr(&format!("no runs of workflow `{name}` in {location}\n"));
            } else if !good.is_empty() {
                output::stdout(&table(&good))?;
            }
        }
        Format::Json => output::json(&json!({
            "workflow": name,
            "store": location,
            "runs": good.iter().map(run_json).collect::<Vec<_>>(),
            "errors": bad.iter().map(|e| json!({"message": e.to_string()})).collect::<Vec<_>>(),
        }))?,
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

fn table(records: &[RunRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
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
        ],
        &rows,
    )
}

fn run_json(r: &RunRecord) -> serde_json::Value {
    json!({
        "batch": r.batch,
        "run_id": r.run_id,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "status": r.status.as_str(),
        "markets": r.markets,
        "interruptions": r.interruptions.len(),
        "attempts": r.total_attempts(),
        "stages": r.stages,
    })
}
