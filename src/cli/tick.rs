//! `respawn tick FILE...`: one idempotent pass of the scheduler. For each workflow, the
//! session layer works out the due logical dates and what to do with each; this prints the
//! decisions and, unless `--dry-run`, has them carried out and prints how each date ended.
//! `respawn schedule` makes the same pass ([`tick_workflow`]) each time a date falls due.

use super::scheduled::{
    DateLine, cost_of_run, cost_text, load_all_scheduled, now_or_wall, prefixed_sink, run_settings,
};
use super::{CliError, Format, RunPlace, TickArgs, exit, output, store};
use respawn_core::contract::{Layout, RunRecord};
use respawn_core::report::Cost;
use respawn_core::workflow::Workflow;
use respawn_run::clock::WallClock;
use respawn_run::driver::{EventSink, stop_requested};
use respawn_run::session::{Action, DatePlan, Outcome, Runner, carry_out, plan_tick};
use respawn_run::store::AnyStore;
use std::path::Path;

pub fn run(args: &TickArgs) -> Result<i32, CliError> {
    let workflows = load_all_scheduled(&args.files, "tick")?;
    let now = now_or_wall(args.now)?;
    let pass = Pass {
        place: &args.place,
        format: args.format,
        dry_run: args.dry_run,
    };
    super::scheduled::prepare_scratch(&args.place.scratch)?;
    let runtime = store::start_runtime()?;
    store::drive_runs(&runtime, async {
        respawn_run::driver::catch_interrupts_early()
            .map_err(|e| CliError::internal(format!("cannot listen for signals: {e}")))?;
        let mut failed = false;
        for (file, workflow) in workflows {
            let store = store::connect_to_run(&args.place.store, workflow.store.as_deref()).await?;
            failed |= tick_workflow(&pass, &store, &file, &workflow, now)
                .await?
                .failed;
        }
        Ok(if stop_requested() {
            exit::STOPPED
        } else if failed {
            exit::RUN_FAILED
        } else {
            exit::SUCCESS
        })
    })
}

/// What a pass needs besides the workflow and its store.
pub(super) struct Pass<'a> {
    pub place: &'a RunPlace,
    pub format: Format,
    /// Print the decisions only.
    pub dry_run: bool,
}

/// How a pass over one workflow went.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Ticked {
    /// A run failed.
    pub failed: bool,
    /// Dates were left to a later tick because every run slot was taken.
    pub busy: bool,
}

/// Ticks one workflow at `now`: prints each decision, carries them out and prints how each
/// date ended. A run stops at SIGINT or SIGTERM, and no run starts after one.
pub(super) async fn tick_workflow(
    pass: &Pass<'_>,
    store: &AnyStore,
    file: &Path,
    workflow: &Workflow,
    now: jiff::Timestamp,
) -> Result<Ticked, CliError> {
    let layout = Layout::new(&workflow.name);
    let plan = plan_tick(store, &layout, workflow, now, !pass.dry_run, &WallClock).await?;
    let name = workflow.name.clone();
    let format = pass.format;
    for date in &plan.dates {
        print_decision(format, &name, file, date)?;
    }
    if format == Format::Text {
        let more = if plan.more {
            "; more dates are due than one tick takes up, the next tick goes on"
        } else {
            ""
        };
        output::stdout(&format!(
            "{name}: {} due date(s) to act on, {} done among those read again, every date before {} taken up{more} (now {now})\n",
            plan.dates.len(),
            plan.done,
            plan.through,
        ))?;
    }
    if pass.dry_run {
        return Ok(Ticked::default());
    }
    let settings = || run_settings(file, pass.place);
    let sink_for = |batch: &str| -> EventSink { prefixed_sink(format, &name, batch) };
    let runner = Runner {
        settings: &settings,
        sink_for: &sink_for,
        stopping: &stop_requested,
    };
    // Dates end while others still run; each is printed with its run's cost, read from
    // the store, as it ends.
    let (sender, mut ended) = tokio::sync::mpsc::unbounded_channel();
    let report = move |date: &DatePlan, outcome: &Outcome| {
        let _ = sender.send((date.clone(), outcome.clone()));
    };
    let printing = async {
        let mut ticked = Ticked::default();
        while let Some((date, outcome)) = ended.recv().await {
            ticked.failed |= outcome.is_failure();
            ticked.busy |= matches!(outcome, Outcome::Busy { .. });
            let cost = cost_of_run(store, workflow, outcome.run_id()).await;
            let _ = print_outcome(format, &name, &date, &outcome, cost.as_ref());
        }
        ticked
    };
    let carried = carry_out(store, &layout, workflow, plan, &runner, &WallClock, report);
    let (carried, ticked) = tokio::join!(carried, printing);
    carried?;
    Ok(ticked)
}

fn print_decision(
    format: Format,
    name: &str,
    file: &Path,
    date: &DatePlan,
) -> Result<(), CliError> {
    if format == Format::Json {
        return Ok(output::json_line(&DateLine::new(name, date))?);
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
        Action::Miss {
            reason,
            last_batch,
            dates,
            ..
        } => {
            let count = dates.map_or("more than 100,000".to_string(), |n| n.to_string());
            let backfill = format!(
                "respawn backfill {} --from {} --to {last_batch}",
                file.display(),
                date.batch
            );
            format!(
                "missed through {last_batch}, {count} date(s) ({reason}); `{backfill}` still runs them"
            )
        }
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
    cost: Option<&Result<(RunRecord, Cost), String>>,
) -> Result<(), CliError> {
    if format == Format::Json {
        let line = DateLine::new(name, outcome).ended(&date.batch, cost);
        return Ok(output::json_line(&line)?);
    }
    let what = match outcome {
        Outcome::Succeeded { .. } => "succeeded".to_string(),
        Outcome::Failed { message, .. } => format!("failed: {message}"),
        Outcome::Stopped { .. } => "stopped; the next tick resumes it".into(),
        Outcome::Missed => "recorded as missed".into(),
        Outcome::Taken { holder } => format!("claimed first by {holder}; left to it"),
        Outcome::Running { holder } => format!("running: {holder} is at work on it"),
        Outcome::Nothing { message } => message.clone(),
        Outcome::Busy { slots } => {
            format!("left to a later tick: the {slots} run(s) `max_active` allows are in progress")
        }
        Outcome::Deferred => "not started: stopping; the next tick runs it".into(),
        Outcome::Left => return Ok(()),
    };
    let prefix = format!("{name} {}", date.batch);
    let mut lines = format!("{prefix}: {what}\n");
    if let Some(cost) = cost {
        lines.push_str(&cost_text(&prefix, cost));
    }
    Ok(output::stdout(&lines)?)
}
