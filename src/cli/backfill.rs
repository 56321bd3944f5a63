//! `respawn backfill FILE --from DATE --to DATE`: runs the logical dates of a range that
//! need it. The session layer decides which and runs them; this prints the plan (with an
//! estimate from the planner in a dry run) and how each date ended.

use super::scheduled::{
    DateLine, cost_of_run, cost_text, load_scheduled, prefixed_sink, run_settings,
};
use super::{BackfillArgs, CliError, Format, OrderArg, ReprocessArg, exit, output, store};
use respawn_core::contract::{Layout, RunRecord};
use respawn_core::plan::PlanOptions;
use respawn_core::report::Cost;
use respawn_core::workflow::Workflow;
use respawn_run::clock::WallClock;
use respawn_run::driver::{EventSink, stop_requested};
use respawn_run::session::{
    BackfillDate, BackfillRequest, Outcome, Reprocess, Runner, Step, carry_out_backfill,
    date_bound, plan_backfill,
};
use respawn_run::store::AnyStore;

pub fn run(args: &BackfillArgs) -> Result<i32, CliError> {
    let workflow = load_scheduled(&args.file, "backfill")?;
    let request = request_of(args, &workflow)?;
    let max_active = request.max_active;
    super::scheduled::prepare_scratch(&args.place.scratch)?;
    let runtime = store::start_runtime()?;
    store::drive_runs(&runtime, async {
        respawn_run::driver::catch_interrupts_early()
            .map_err(|e| CliError::internal(format!("cannot listen for signals: {e}")))?;
        let store = store::connect_to_run(&args.place.store, workflow.store.as_deref()).await?;
        let layout = Layout::new(&workflow.name);
        let plan = plan_backfill(
            &store,
            &layout,
            &workflow,
            &request,
            !args.dry_run,
            &WallClock,
        )
        .await?;
        let resumed = (plan.record.as_ref())
            .map(|r| {
                let (id, done) = (&r.value.id, r.value.done_count());
                format!(" (resuming backfill {id}, {done} date(s) done)")
            })
            .unwrap_or_default();
        let tally = std::cell::Cell::new((0usize, 0usize));
        let planned = |date: &BackfillDate| {
            let (all, to_run) = tally.get();
            let runs = matches!(date.step, Step::Run | Step::Replace) as usize;
            tally.set((all + 1, to_run + runs));
            let _ = print_date(args.format, &workflow.name, date);
        };
        let summary = |tally| summary(args, &workflow, max_active, &resumed, tally);
        if args.dry_run {
            let mut plan = plan;
            while let Some(page) = plan
                .next_page(&store, &layout, &workflow, &request, &WallClock)
                .await?
            {
                page.iter().for_each(planned);
            }
            return summary(tally.get());
        }
        let settings = || run_settings(&args.file, &args.place);
        let format = args.format;
        let name = workflow.name.clone();
        let sink_for = |batch: &str| -> EventSink { prefixed_sink(format, &name, batch) };
        let runner = Runner {
            settings: &settings,
            sink_for: &sink_for,
            stopping: &stop_requested,
        };
        // Each date is printed with its run's cost, read from the store, as it ends.
        let (sender, mut ended) = tokio::sync::mpsc::unbounded_channel();
        let report = move |date: &BackfillDate, outcome: &Outcome| {
            let _ = sender.send((date.clone(), outcome.clone()));
        };
        let printing = print_ended(&store, &workflow, format, &mut ended);
        let carried = carry_out_backfill(
            &store, &layout, &workflow, &request, plan, &runner, &WallClock, planned, report,
        );
        let (carried, failed) = tokio::join!(carried, printing);
        carried?;
        summary(tally.get())?;
        // As `tick` and `run`: a stop by Ctrl-C or SIGTERM is exit 130, whatever ended.
        Ok(if stop_requested() {
            exit::STOPPED
        } else if failed {
            exit::RUN_FAILED
        } else {
            exit::SUCCESS
        })
    })
}

/// The line after the plan: how many dates run, how many at a time, and the estimate; an
/// error when the range holds no date.
fn summary(
    args: &BackfillArgs,
    workflow: &Workflow,
    max_active: u32,
    resumed: &str,
    (all, to_run): (usize, usize),
) -> Result<i32, CliError> {
    if all == 0 {
        return Err(CliError::invalid_input(format!(
            "no logical date of workflow `{}` lies between {} and {}",
            workflow.name, args.from, args.to
        )));
    }
    if args.format == Format::Text {
        output::stdout(&format!(
            "{}: {to_run} of {all} date(s) to run, {max_active} at a time{resumed}; {}\n",
            workflow.name,
            estimate(workflow, to_run, max_active)
        ))?;
    }
    Ok(exit::SUCCESS)
}

/// Prints each date with its run's cost (read from the store) as it ends; true when one
/// did not succeed.
async fn print_ended(
    store: &AnyStore,
    workflow: &Workflow,
    format: Format,
    ended: &mut tokio::sync::mpsc::UnboundedReceiver<(BackfillDate, Outcome)>,
) -> bool {
    let mut failed = false;
    while let Some((date, outcome)) = ended.recv().await {
        failed |= matches!(
            outcome,
            Outcome::Failed { .. } | Outcome::Stopped { .. } | Outcome::Deferred
        );
        let cost = cost_of_run(store, workflow, outcome.run_id()).await;
        let _ = print_outcome(format, &workflow.name, &date, &outcome, cost.as_ref());
    }
    failed
}

/// The dates to run and how, from the flags. `schedule.max_active` binds every process
/// (its run slots are shared with the ticks); `--max-active` can only ask for fewer.
fn request_of(args: &BackfillArgs, workflow: &Workflow) -> Result<BackfillRequest, CliError> {
    let from = date_bound(workflow, &args.from).map_err(CliError::invalid_input)?;
    let to = date_bound(workflow, &args.to).map_err(CliError::invalid_input)?;
    if to < from {
        return Err(CliError::invalid_input(format!(
            "--to {} is before --from {}",
            args.to, args.from
        )));
    }
    let schedule_max = (workflow.schedule.as_ref()).map_or(1, |s| s.max_active.max(1));
    Ok(BackfillRequest {
        from,
        to,
        reprocess: match args.reprocess {
            ReprocessArg::Missing => Reprocess::Missing,
            ReprocessArg::Failed => Reprocess::Failed,
            ReprocessArg::Stale => Reprocess::Stale,
            ReprocessArg::All => Reprocess::All,
        },
        newest_first: args.order == OrderArg::Newest,
        max_active: args
            .max_active
            .map_or(schedule_max, |n| n.min(schedule_max)),
        allow_future: args.allow_future,
    })
}

/// The planner's failure-free estimate of the runs, and their cost at the workflow's prices.
fn estimate(workflow: &Workflow, runs: usize, max_active: u32) -> String {
    let plan = respawn_core::planner::chosen_plan(workflow, &PlanOptions::default());
    let hours = plan.makespan_estimate / 3600.0;
    let waves = runs.div_ceil(max_active.max(1) as usize);
    let rate = respawn_core::plan::prices::cluster_rate(workflow, plan.market);
    format!(
        "estimate without interruptions: {} of cluster time per date, about {} in all; {} {:.2} at {} (from the workflow file)",
        respawn_core::workflow::units::format_seconds(plan.makespan_estimate),
        respawn_core::workflow::units::format_seconds(plan.makespan_estimate * waves as f64),
        workflow.cost.currency,
        hours * runs as f64 * rate.per_hour,
        rate.source
    )
}

fn print_date(format: Format, name: &str, date: &BackfillDate) -> Result<(), CliError> {
    if format == Format::Json {
        return Ok(output::json_line(&DateLine::new(name, date))?);
    }
    let what = match &date.step {
        Step::Run => "run".to_string(),
        Step::Replace => "run again, replacing its outputs".to_string(),
        Step::Skip => "skip".to_string(),
        Step::Done => "done earlier by this backfill".to_string(),
        Step::Busy { holder } => format!("left alone: {holder} is at work on it"),
    };
    let run = date
        .date
        .state
        .run_id()
        .map(|r| format!(", run {r}"))
        .unwrap_or_default();
    Ok(output::stdout(&format!(
        "{name} {}: {}{run}: {what}\n",
        date.date.batch,
        date.date.state.name()
    ))?)
}

fn print_outcome(
    format: Format,
    name: &str,
    date: &BackfillDate,
    outcome: &Outcome,
    cost: Option<&Result<(RunRecord, Cost), String>>,
) -> Result<(), CliError> {
    if format == Format::Json {
        let line = DateLine::new(name, outcome).ended(&date.date.batch, cost);
        return Ok(output::json_line(&line)?);
    }
    let what = match outcome {
        Outcome::Succeeded { .. } => "succeeded".to_string(),
        Outcome::Failed { message, .. } => format!("failed: {message}"),
        Outcome::Stopped { .. } => "stopped; the same command resumes the backfill".into(),
        Outcome::Nothing { message } => message.clone(),
        Outcome::Running { holder } => {
            format!("running: {holder} is at work on it; the same command goes on later")
        }
        Outcome::Taken { holder } => {
            format!("claimed first by {holder}; left to it, the same command goes on later")
        }
        Outcome::Deferred => "not started: stopping; the same command resumes the backfill".into(),
        Outcome::Missed | Outcome::Left | Outcome::Busy { .. } => return Ok(()),
    };
    let prefix = format!("{name} {}", date.date.batch);
    let mut lines = format!("{prefix}: {what}\n");
    if let Some(cost) = cost {
        lines.push_str(&cost_text(&prefix, cost));
    }
    Ok(output::stdout(&lines)?)
}
