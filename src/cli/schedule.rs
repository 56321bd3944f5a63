//! `respawn schedule FILE...`: the long-running scheduler. It ticks at start, then sleeps
//! until the next closing time of any of its workflows' schedules and ticks again, forever.
//! Each tick is the pass `respawn tick` makes ([`super::tick::tick_workflow`]); the claims
//! in the store, not this loop, make each date run once, so a restarted scheduler, or
//! several at once, never run a date twice. Between ticks it holds no lease.
//!
//! SIGINT or SIGTERM stops it: the runs going on stop as with Ctrl-C (their drivers hear
//! the same signal), no new run starts, and it exits 130 once they have stopped; the next
//! tick, from any scheduler, resumes them.

use super::scheduled::{load_all_scheduled, wall_now};
use super::tick::{Pass, tick_workflow};
use super::{CliError, Format, ScheduleArgs, exit, output, store};
use jiff::Timestamp;
use respawn_core::plan::calendar::next_due_after;
use respawn_core::workflow::Workflow;
use respawn_core::workflow::schedule::rfc3339;
use respawn_run::driver::{request_stop, stop_requested};
use respawn_run::store::AnyStore;
use std::path::PathBuf;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// After a tick that could not finish (the store was unreachable, say), or that left dates
/// to a later tick because every run slot was taken, the next tick comes this soon rather
/// than at the next scheduled time.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The longest single sleep: the wall clock is read again after it, so a clock that jumps
/// or a machine that was suspended does not delay a tick by more than this.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);

pub fn run(args: &ScheduleArgs) -> Result<i32, CliError> {
    let workflows = load_all_scheduled(&args.files, "schedule")?;
    let pass = Pass {
        place: &args.place,
        format: args.format,
        dry_run: false,
    };
    super::scheduled::prepare_scratch(&args.place.scratch)?;
    let runtime = store::start_runtime()?;
    store::drive_runs(&runtime, async {
        respawn_run::driver::catch_interrupts_early()
            .map_err(|e| CliError::internal(format!("cannot listen for signals: {e}")))?;
        let mut stopped = listen_for_stop()?;
        let mut stores = Vec::new();
        for (_, workflow) in &workflows {
            stores.push(store::connect_to_run(&args.place.store, workflow.store.as_deref()).await?);
        }
        let mut ticks: u64 = 0;
        loop {
            let now = wall_now()?;
            let (trouble, busy) = tick_all(&pass, &workflows, &stores, now).await;
            ticks += 1;
            if stop_requested() {
                say(
                    args.format,
                    "stopped",
                    "stopped; the next tick resumes what was stopped",
                    None,
                )?;
                return Ok(exit::STOPPED);
            }
            if args.max_ticks.is_some_and(|max| ticks >= max) {
                return Ok(exit::SUCCESS);
            }
            let after = wall_now()?;
            let Some((next, workflow)) = next_tick(&workflows, after) else {
                say(
                    args.format,
                    "ended",
                    "every schedule has ended; nothing is left to run",
                    None,
                )?;
                return Ok(exit::SUCCESS);
            };
            let wake = announce_sleep(args.format, trouble, busy, after, (next, workflow))?;
            if !sleep_until(wake, &mut stopped).await? {
                say(
                    args.format,
                    "stopped",
                    "stopped between ticks; nothing was running",
                    None,
                )?;
                return Ok(exit::STOPPED);
            }
        }
    })
}

/// When the scheduler wakes next, said: at the next tick due (`next`, of `workflow`), or
/// sooner to try again after trouble or when dates waited for a run slot.
fn announce_sleep(
    format: Format,
    trouble: Option<CliError>,
    busy: bool,
    after: Timestamp,
    (next, workflow): (Timestamp, &Workflow),
) -> Result<Timestamp, CliError> {
    let at = rfc3339(
        &workflow.schedule.as_ref().expect("scheduled").timezone,
        next,
    );
    let retry = after
        .checked_add(RETRY_AFTER)
        .map_or(next, |retry| retry.min(next));
    let wake = match trouble {
        Some(error) => {
            output::stderr(&format!(
                "{}the tick is tried again at {retry}\n",
                error.render()
            ));
            retry
        }
        None if busy => retry,
        None => next,
    };
    let text = if wake < next {
        format!(
            "next tick at {wake} (then at {at}, when {} falls due)",
            workflow.name
        )
    } else {
        format!("next tick at {at} ({} falls due)", workflow.name)
    };
    let wake_text = wake.to_string();
    say(
        format,
        "sleeping",
        &text,
        Some(if wake < next { &wake_text } else { &at }),
    )?;
    Ok(wake)
}

/// Ticks every workflow at `now`: the first error, if any (the other workflows still
/// tick), and whether dates were left because every run slot was taken.
async fn tick_all(
    pass: &Pass<'_>,
    workflows: &[(PathBuf, Workflow)],
    stores: &[AnyStore],
    now: Timestamp,
) -> (Option<CliError>, bool) {
    let mut trouble = None;
    let mut busy = false;
    for ((file, workflow), store) in workflows.iter().zip(stores) {
        if stop_requested() {
            break;
        }
        // A failed run is reported on its date's line; the loop goes on regardless.
        match tick_workflow(pass, store, file, workflow, now).await {
            Ok(ticked) => busy |= ticked.busy,
            Err(error) => {
                trouble.get_or_insert(error);
            }
        }
    }
    (trouble, busy)
}

/// The earliest next closing time of any of the schedules, and whose it is.
fn next_tick(workflows: &[(PathBuf, Workflow)], now: Timestamp) -> Option<(Timestamp, &Workflow)> {
    workflows
        .iter()
        .filter_map(|(_, workflow)| {
            let next = next_due_after(workflow.schedule.as_ref()?, now)?;
            Some((next, workflow))
        })
        .min_by_key(|(next, _)| *next)
}

/// A JSON line of the scheduler's own.
#[derive(serde::Serialize)]
struct SchedulerLine<'a> {
    scheduler: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_tick: Option<&'a str>,
}

/// One line of the loop's own (text), or an object with a `scheduler` field (JSON).
fn say(format: Format, event: &str, text: &str, at: Option<&str>) -> Result<(), CliError> {
    match format {
        Format::Text => output::stdout(&format!("{text}\n"))?,
        Format::Json => output::json_line(&SchedulerLine {
            scheduler: event,
            next_tick: at,
        })?,
    }
    Ok(())
}

/// Listens for SIGINT and SIGTERM for the whole life of the loop: the first one is
/// recorded for the process ([`request_stop`]), so that the runs going on stop and no new
/// one starts, and wakes the loop if it sleeps. The runs hear the signal themselves too,
/// and a second one hurries them, as with `respawn run`.
fn listen_for_stop() -> Result<watch::Receiver<bool>, CliError> {
    let cannot = |e: std::io::Error| CliError::internal(format!("cannot listen for signals: {e}"));
    let mut interrupt = signal(SignalKind::interrupt()).map_err(cannot)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(cannot)?;
    let (tell, stopped) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        request_stop();
        let _ = tell.send(true);
    });
    Ok(stopped)
}

/// Sleeps until the wall clock reaches `wake`; `false` when a stop came first.
async fn sleep_until(
    wake: Timestamp,
    stopped: &mut watch::Receiver<bool>,
) -> Result<bool, CliError> {
    loop {
        if stop_requested() {
            return Ok(false);
        }
        let now = wall_now()?;
        if now >= wake {
            return Ok(true);
        }
        let left = Duration::try_from(wake.duration_since(now)).unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(left.min(LONGEST_SLEEP)) => {}
            _ = stopped.changed() => {}
        }
    }
}
