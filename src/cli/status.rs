//! `respawn status [WORKFLOW|RUN]`: each stage of a run, from the ledger.

use super::{CliError, Format, StatusArgs, output, store};
use respawn_core::contract::{CheckRecord, Interruption, MarketChange, RunRecord};
use respawn_run::clock::WallClock;
use respawn_run::read::{self, LeaseRecord};
use respawn_run::store::{AnyStore, Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

struct Found {
    record: RunRecord,
    /// Stage names: in the workflow's order when the workflow file was given, else the
    /// record's.
    names: Vec<String>,
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
            let mut runs: Vec<RunView> = found.iter().map(RunView::of).collect();
            if runs.len() == 1 && args.target.is_some() {
                output::json(&runs.remove(0))?;
            } else {
                output::json(&AllRuns {
                    store: location,
                    runs,
                })?;
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
    let names = order.unwrap_or_else(|| record.stages.keys().cloned().collect());
    Ok(vec![Found {
        record,
        names,
        holder,
    }])
}

fn text(found: &Found) -> String {
    let run = RunView::of(found);
    let running = run.status == "running";
    let mut out = format!(
        "workflow `{}`  run {}  batch {}\nstatus {}{}  market {}  interruptions {}  started {}{}\n",
        run.workflow,
        run.run_id,
        run.batch,
        run.status,
        match &found.holder {
            Some(lease) if running =>
                format!(" (by {}, lease until {})", lease.holder, lease.expires_at),
            None if running => " (no orchestrator holds it: it resumes with `respawn run`)".into(),
            _ => String::new(),
        },
        run.market.unwrap_or("-"),
        run.interruptions.len(),
        run.started_at,
        run.finished_at
            .map(|f| format!("  finished {f}"))
            .unwrap_or_default(),
    );
    if let Some(message) = run.message {
        out.push_str(&format!("{message}\n"));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = run.stages.iter().map(row).collect();
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

fn row(stage: &StageView) -> Vec<String> {
    let work_table = match (stage.work_table, stage.committed_attempt) {
        (_, Some(attempt)) => format!("committed (attempt {attempt})"),
        (Some(kind), None) => kind.to_string(),
        (None, None) => "-".into(),
    };
    vec![
        stage.name.to_string(),
        stage.state.to_string(),
        stage.attempts.to_string(),
        stage.failures.to_string(),
        stage.interrupted.to_string(),
        stage.market.unwrap_or("-").to_string(),
        work_table,
        checks_summary(stage.checks),
        stage.log.unwrap_or("-").to_string(),
    ]
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

/// `status --format json` of every workflow: the store and each one's latest run.
#[derive(Serialize)]
struct AllRuns<'a> {
    store: String,
    runs: Vec<RunView<'a>>,
}

/// `status --format json` of one run.
#[derive(Serialize)]
struct RunView<'a> {
    workflow: &'a str,
    run_id: &'a str,
    batch: &'a str,
    status: &'a str,
    /// The market it is on now (or ended on).
    market: Option<&'a str>,
    markets: &'a [MarketChange],
    interruptions: &'a [Interruption],
    started_at: &'a str,
    finished_at: Option<&'a str>,
    message: Option<&'a str>,
    /// The orchestrator at work on it, as its lease names it.
    holder: Option<String>,
    stages: Vec<StageView<'a>>,
}

/// One stage of [`RunView`], and a row of the text table.
#[derive(Serialize)]
struct StageView<'a> {
    name: &'a str,
    /// `waiting` before its first attempt.
    state: &'a str,
    attempts: u32,
    failures: u32,
    interrupted: u32,
    market: Option<&'a str>,
    checkpoint: bool,
    committed_attempt: Option<u32>,
    checks: &'a BTreeMap<String, CheckRecord>,
    log: Option<&'a str>,
    #[serde(skip)]
    work_table: Option<&'a str>,
}

static NO_CHECKS: BTreeMap<String, CheckRecord> = BTreeMap::new();

impl<'a> StageView<'a> {
    fn of(record: &'a RunRecord, name: &'a str) -> StageView<'a> {
        let stage = record.stages.get(name);
        let state = stage.map_or("", |s| s.state.as_str());
        StageView {
            name,
            state: if state.is_empty() { "waiting" } else { state },
            attempts: stage.map_or(0, |s| s.attempts),
            failures: stage.map_or(0, |s| s.failures),
            interrupted: stage.map_or(0, |s| s.interrupted),
            market: stage.and_then(|s| s.market.as_deref()),
            checkpoint: stage.and_then(|s| s.work_table.as_deref()) == Some("checkpoint"),
            committed_attempt: stage.and_then(|s| s.committed_attempt),
            checks: stage.map_or(&NO_CHECKS, |s| &s.checks),
            log: stage.and_then(|s| s.log.as_deref()),
            work_table: stage.and_then(|s| s.work_table.as_deref()),
        }
    }
}

impl<'a> RunView<'a> {
    fn of(found: &'a Found) -> RunView<'a> {
        let record = &found.record;
        RunView {
            workflow: &record.workflow,
            run_id: &record.run_id,
            batch: &record.batch,
            status: record.status.as_str(),
            market: record.markets.last().map(|m| m.market.as_str()),
            markets: &record.markets,
            interruptions: &record.interruptions,
            started_at: &record.started_at,
            finished_at: record.finished_at.as_deref(),
            message: record.message.as_deref(),
            holder: found.holder.as_ref().map(|l| l.holder.to_string()),
            stages: (found.names.iter())
                .map(|name| StageView::of(record, name))
                .collect(),
        }
    }
}
