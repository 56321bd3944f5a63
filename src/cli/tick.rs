//! `respawn tick FILE...`: one idempotent pass of the scheduler. For each workflow, the
//! session layer works out the due logical dates and what to do with each; this prints the
//! decisions and, unless `--dry-run`, has them carried out and prints how each date ended.

use super::{CliError, Format, TickArgs, exit, output, store};
use crate::drivers::ledger::Layout;
use crate::engine::clock::{Clock, WallClock};
use crate::engine::driver::EventSink;
use crate::engine::event::StampedEvent;
use crate::engine::session::{
    Action, DatePlan, Outcome, RunSettings, Runner, carry_out, plan_tick,
};
use crate::workflow::Workflow;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub fn run(args: &TickArgs) -> Result<i32, CliError> {
    let mut workflows = Vec::new();
    for file in &args.files {
        let workflow = output::load(file)?;
        if workflow.schedule.is_none() {
            return Err(CliError::invalid_input(format!(
                "{}: workflow `{}` has no `schedule:`; `respawn tick` runs scheduled workflows",
                file.display(),
                workflow.name
            ))
            .with_hint("add a `schedule:` block, or run it with `respawn run`"));
        }
        workflows.push((file.clone(), workflow));
    }
    let now = match args.now {
        Some(now) => now,
        None => jiff::Timestamp::try_from(WallClock.now())
            .map_err(|e| CliError::internal(format!("the clock is out of range: {e}")))?,
    };
    let runtime = store::start_runtime()?;
    runtime.block_on(async {
        let mut failed = false;
        for (file, workflow) in workflows {
            failed |= tick_one(args, &file, workflow, now).await?;
        }
        Ok(if failed {
            exit::RUN_FAILED
        } else {
            exit::SUCCESS
        })
    })
}

/// Ticks one workflow; returns whether a run failed.
async fn tick_one(
    args: &TickArgs,
    file: &Path,
    workflow: Workflow,
    now: jiff::Timestamp,
) -> Result<bool, CliError> {
    let store = store::connect(&args.store, workflow.store.as_deref()).await?;
    let layout = Layout::new(&workflow.name);
    let (plans, done) = plan_tick(&store, &layout, &workflow, now, &WallClock).await?;
    let name = workflow.name.clone();
    for date in &plans {
        print_decision(args.format, &name, file, date)?;
    }
    if args.format == Format::Text {
        output::stdout(&format!(
            "{name}: {} due date(s) to act on, {done} done before (now {now})\n",
            plans.len()
        ))?;
    }
    if args.dry_run {
        return Ok(false);
    }
    let settings = || RunSettings {
        workflow_dir: absolute(file.parent().unwrap_or(Path::new("."))),
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        scratch: absolute(&args.scratch),
        chaos: None,
        emr_endpoint_url: args.emr.emr_endpoint_url.clone(),
        emr_poll: args.emr.emr_poll,
        stop_grace: Duration::from_secs(10),
        clock: Arc::new(WallClock),
        listen_for_signals: true,
    };
    let format = args.format;
    let sink_for = |batch: &str| -> EventSink {
        let prefix = format!("{name} {batch}");
        Box::new(move |event: &StampedEvent| {
            if format == Format::Text
                && let Some(line) = super::events::describe(&event.event)
            {
                let _ = output::stdout(&format!("{prefix}: {line}\n"));
            }
        })
    };
    let runner = Runner {
        settings: &settings,
        sink_for: &sink_for,
    };
    let mut failed = false;
    let mut report = |date: &DatePlan, outcome: &Outcome| {
        failed |= outcome.is_failure();
        let _ = print_outcome(format, &name, date, outcome);
    };
    carry_out(
        &store,
        &layout,
        &workflow,
        plans,
        &runner,
        &WallClock,
        &mut report,
    )
    .await?;
    Ok(failed)
}

fn print_decision(
    format: Format,
    name: &str,
    file: &Path,
    date: &DatePlan,
) -> Result<(), CliError> {
    if format == Format::Json {
        let mut value = serde_json::to_value(date).unwrap_or_default();
        value["workflow"] = json!(name);
        return Ok(output::stdout(&format!("{value}\n"))?);
    }
    let rerun = format!("respawn run {} --batch {}", file.display(), date.batch);
    let what = match &date.action {
        Action::Run => "due: claiming and running it".to_string(),
        Action::Resume { run_id } => {
            format!("resuming run {run_id} (stopped, or its orchestrator is gone)")
        }
        Action::Rebuild { run_id } => {
            format!("rebuilding: a published output of run {run_id} is gone")
        }
        Action::Retake { holder } => {
            format!("taking over the claim of {holder}, which never started the run")
        }
        Action::Miss { reason } => format!("missed ({reason}); `{rerun}` still runs it"),
        Action::Running { holder } => format!("running by {holder}"),
        Action::Claimed { holder } => format!("claimed by {holder}, which is starting it"),
        Action::Failed { run_id } => {
            format!("run {run_id} failed; `{rerun}` resumes it once the stage is fixed")
        }
    };
    Ok(output::stdout(&format!("{name} {}: {what}\n", date.batch))?)
}

fn print_outcome(
    format: Format,
    name: &str,
    date: &DatePlan,
    outcome: &Outcome,
) -> Result<(), CliError> {
    if format == Format::Json {
        let mut value = serde_json::to_value(outcome).unwrap_or_default();
        value["workflow"] = json!(name);
        value["batch"] = json!(date.batch);
        return Ok(output::stdout(&format!("{value}\n"))?);
    }
    let what = match outcome {
        Outcome::Succeeded => "succeeded".to_string(),
        Outcome::Failed { message } => format!("failed: {message}"),
        Outcome::Stopped => "stopped; the next tick resumes it".into(),
        Outcome::Missed => "recorded as missed".into(),
        Outcome::Taken { holder } => format!("claimed first by {holder}; left to it"),
        Outcome::Nothing { message } => message.clone(),
        Outcome::Busy { slots } => {
            format!("left to a later tick: the {slots} run(s) `max_active` allows are in progress")
        }
        Outcome::Left => return Ok(()),
    };
    Ok(output::stdout(&format!("{name} {}: {what}\n", date.batch))?)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
