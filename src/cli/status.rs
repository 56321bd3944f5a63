//! `respawn status [WORKFLOW|RUN]`: each stage of a run, from the ledger.

use super::{CliError, Format, StatusArgs, output, store};
use respawn_core::contract::{CheckRecord, RunRecord};
use respawn_run::clock::WallClock;
use respawn_run::read::{self, LeaseRecord};
use respawn_run::store::{AnyStore, Store, StoreError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

struct Found {
    record: RunRecord,
    /// Stage names in the workflow's order when the workflow file was given.
    order: Option<Vec<String>>,
    holder: Option<LeaseRecord>,
}

pub fn run(args: &StatusArgs) -> Result<(), CliError> {
    let file = args
        .target
        .as_deref()
        .map(Path::new)
        .filter(|p| p.is_file());
    let workflow = file.map(output::load).transpose()?;
    let file_store = workflow.as_ref().and_then(|w| w.store.clone());
    let runtime = store::start_runtime()?;
    let (location, found) = runtime.block_on(async {
        let store = store::connect(&args.store, file_store.as_deref()).await?;
        let batch = args.batch.as_deref();
        let found = match (&workflow, args.target.as_deref()) {
            (Some(workflow), _) => {
                let order = workflow.stages.iter().map(|s| s.name.clone()).collect();
                latest(&store, &workflow.name, Some(order), batch).await?
            }
            (None, Some(target)) => latest(&store, target, None, batch).await?,
            (None, None) => {
                let mut all = Vec::new();
                for name in read::workflows(&store).await? {
                    all.extend(latest(&store, &name, None, None).await?);
                }
                all
            }
        };
        Ok::<_, CliError>((store.describe(), found))
    })?;
    if found.is_empty() {
        let what = match &args.target {
            Some(target) => match &args.batch {
                Some(batch) => format!(
                    "no run of batch `{}` of `{}`",
                    batch.escape_default(),
                    target.escape_default()
                ),
                None => format!("no run or workflow `{}`", target.escape_default()),
            },
            None => "no runs".into(),
        };
        return Err(CliError::invalid_input(format!("{what} in {location}")));
    }
    match args.format {
        Format::Json => {
            let runs: Vec<Value> = found.iter().map(to_json).collect();
            if runs.len() == 1 && args.target.is_some() {
                output::json(&runs[0])?;
            } else {
                output::json(&json!({"store": location, "runs": runs}))?;
            }
        }
        Format::Text => {
            let text: Vec<String> = found.iter().map(text).collect();
            output::stdout(&text.join("\n"))?;
        }
    }
    Ok(())
}

/// The run `target` names (the latest of a workflow, of `batch` when given, or a run id)
/// and who is at work on it, as the read side tells.
async fn latest(
    store: &AnyStore,
    target: &str,
    order: Option<Vec<String>>,
    batch: Option<&str>,
) -> Result<Vec<Found>, StoreError> {
    let Some((layout, record)) = read::find(store, target, batch).await? else {
        return Ok(Vec::new());
    };
    let holder = read::at_work(store, &layout, &record, &WallClock).await?;
    Ok(vec![Found {
        record,
        order,
        holder,
    }])
}

fn stage_names(found: &Found) -> Vec<String> {
    match &found.order {
        Some(order) => order.clone(),
        None => found.record.stages.keys().cloned().collect(),
    }
}

fn text(found: &Found) -> String {
    let record = &found.record;
    let market = record
        .markets
        .last()
        .map(|m| m.market.as_str())
        .unwrap_or("-");
    let mut out = format!(
        "workflow `{}`  run {}  batch {}\nstatus {}{}  market {}  interruptions {}  started {}{}\n",
        record.workflow,
        record.run_id,
        record.batch,
        record.status.as_str(),
        match &found.holder {
            Some(lease) if record.status.as_str() == "running" =>
                format!(" (by {}, lease until {})", lease.holder, lease.expires_at),
            None if record.status.as_str() == "running" =>
                " (no orchestrator holds it: it resumes with `respawn run`)".into(),
            _ => String::new(),
        },
        market,
        record.interruptions.len(),
        record.started_at,
        record
            .finished_at
            .as_ref()
            .map(|f| format!("  finished {f}"))
            .unwrap_or_default(),
    );
    if let Some(message) = &record.message {
        out.push_str(&format!("{message}\n"));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = stage_names(found)
        .iter()
        .map(|name| {
            let stage = record.stages.get(name).cloned().unwrap_or_default();
            let work_table = match (stage.work_table.as_deref(), stage.committed_attempt) {
                (_, Some(attempt)) => format!("committed (attempt {attempt})"),
                (Some(kind), None) => kind.to_string(),
                (None, None) => "-".into(),
            };
            vec![
                name.clone(),
                if stage.state.is_empty() {
                    "waiting".into()
                } else {
                    stage.state.clone()
                },
                stage.attempts.to_string(),
                stage.failures.to_string(),
                stage.interrupted.to_string(),
                stage.market.clone().unwrap_or_else(|| "-".into()),
                work_table,
                checks_summary(&stage.checks),
                stage.log.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    out.push_str(&output::table(
        &[
            "STAGE",
            "STATE",
            "ATTEMPTS",
            "FAILED",
            "INTERRUPTED",
            "MARKET",
            "WORK-TABLE",
            "CHECKS",
            "LOG",
        ],
        &rows,
    ));
    out
}

/// `-`, `2 passed`, or the checks that failed (`amounts failed`, `rows warned`).
fn checks_summary(checks: &BTreeMap<String, CheckRecord>) -> String {
    let failed: Vec<String> = (checks.iter())
        .filter(|(_, check)| !check.passed())
        .map(|(name, check)| match check.severity.as_str() {
            "warn" => format!("{name} warned"),
            _ => format!("{name} failed"),
        })
        .collect();
    match (checks.len(), failed.is_empty()) {
        (0, _) => "-".into(),
        (n, true) => format!("{n} passed"),
        _ => failed.join(", "),
    }
}

fn to_json(found: &Found) -> Value {
    let record = &found.record;
    json!({
        "workflow": record.workflow,
        "run_id": record.run_id,
        "batch": record.batch,
        "status": record.status.as_str(),
        "market": record.markets.last().map(|m| m.market.clone()),
        "markets": record.markets,
        "interruptions": record.interruptions,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "message": record.message,
        "holder": found.holder.as_ref().map(|l| l.holder.to_string()),
        "stages": stage_names(found).iter().map(|name| {
            let stage = record.stages.get(name).cloned().unwrap_or_default();
            json!({
                "name": name,
                "state": if stage.state.is_empty() { "waiting".to_string() } else { stage.state.clone() },
                "attempts": stage.attempts,
                "failures": stage.failures,
                "interrupted": stage.interrupted,
                "market": stage.market,
                "checkpoint": stage.work_table.as_deref() == Some("checkpoint"),
                "committed_attempt": stage.committed_attempt,
                "checks": stage.checks,
                "log": stage.log,
            })
        }).collect::<Vec<_>>(),
    })
}
