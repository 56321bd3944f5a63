//! `respawn history WORKFLOW`: the runs of a workflow, from the ledger.

use super::{Format, HistoryArgs, exit, output, store};
use crate::drivers::ledger::{Layout, RunRecord, runs};
use crate::drivers::store::{Store, StoreError};
use serde_json::json;

pub fn run(args: &HistoryArgs) -> std::io::Result<i32> {
    let (name, file_store) = match store::workflow_target(&args.workflow) {
        Ok(target) => target,
        Err(code) => return Ok(code),
    };
    let runtime = store::runtime()?;
    let outcome = runtime.block_on(async {
        let store = store::open(&args.store, file_store.as_deref()).await?;
        let layout = Layout::new(&name);
        match runs(&store, &layout).await {
            Ok(records) => Ok((store.describe(), records)),
            Err(error) => Err(store::report(&error)),
        }
    });
    let (location, records) = match outcome {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
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
    for error in &bad {
        output::stderr(&format!("error: {error}\n"));
    }
    Ok(if bad.is_empty() {
        exit::SUCCESS
    } else {
        exit::STORE
    })
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
