//! `respawn batches FILE`: the logical dates of a scheduled workflow and the state of each
//! (succeeded, failed, running, stopped, missing, missed, claimed, stale, incomplete), with
//! their runs, and which are late for their `publish_by`.

use super::scheduled::{load_scheduled, now_or_wall};
use super::{BatchesArgs, CliError, Format, output, store};
use jiff::Timestamp;
use respawn_core::contract::Layout;
use respawn_core::plan::calendar::{self, Interval};
use respawn_core::workflow::{ScheduleSpec, Workflow};
use respawn_run::clock::WallClock;
use respawn_run::session::{DateInfo, DateReader, DateState, date_bound, date_states};
use std::collections::BTreeMap;

pub fn run(args: &BatchesArgs) -> Result<(), CliError> {
    let workflow = load_scheduled(&args.file, "batches")?;
    let now = now_or_wall(args.now)?;
    let Some(schedule) = workflow.schedule.as_ref() else {
        return Ok(());
    };
    // A page of dates, never every date since the schedule's start unless asked for.
    let limit = if args.limit == 0 {
        usize::MAX
    } else {
        args.limit
    };
    let intervals = page(args, &workflow, schedule, now, limit)?;
    let runtime = store::start_runtime()?;
    runtime.block_on(async {
        let store = store::connect(&args.store, workflow.store.as_deref()).await?;
        let layout = Layout::new(&workflow.name);
        let reader = DateReader::open(&store, &layout, &workflow, false, &WallClock).await?;
        let reader = std::sync::Arc::new(reader);
        let dates =
            date_states(&store, &layout, &workflow, &reader, &intervals, &WallClock).await?;
        match args.format {
            Format::Json => Ok(output::json(&dates)?),
            Format::Text => Ok(output::stdout(&text(&dates, now, limit))?),
        }
    })
}

/// The intervals shown: from `--from` (or the schedule's start) onwards when only
/// `--from` is given, else the latest `limit` due by `--to` (or now).
fn page(
    args: &BatchesArgs,
    workflow: &Workflow,
    schedule: &ScheduleSpec,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Interval>, CliError> {
    let bound = |text: &Option<String>| {
        text.as_deref()
            .map(|t| date_bound(workflow, t).map_err(CliError::invalid_input))
            .transpose()
    };
    let from = bound(&args.from)?.unwrap_or(schedule.start);
    let to = bound(&args.to)?;
    if let Some(to) = to
        && to < from
    {
        return Err(CliError::invalid_input(format!(
            "--to ({to}) is before --from ({from})"
        )));
    }
    Ok(if args.from.is_some() && to.is_none() {
        calendar::intervals_from(schedule, from)
            .take_while(|i| i.end <= now)
            .take(limit)
            .collect()
    } else {
        let upper = to
            .and_then(|to| schedule.next_time(to, false))
            .map_or(now, |upper| upper.min(now));
        calendar::latest_due(schedule, from, upper, limit)
    })
}

/// The table of dates, with a line of counts (and, on a full page, how to see more).
fn text(dates: &[DateInfo], now: Timestamp, limit: usize) -> String {
    let rows: Vec<Vec<String>> = dates.iter().map(row).collect();
    let mut text = output::table(&["BATCH", "STATE", "RUN", "DETAIL"], &rows);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for date in dates {
        *counts.entry(date.state.name()).or_default() += 1;
    }
    let mut summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let late = dates.iter().filter(|d| d.late).count();
    if late > 0 {
        summary.push(format!("{late} late"));
    }
    text.push_str(&format!(
        "{} date(s) due at {now} shown: {}\n",
        dates.len(),
        summary.join(", ")
    ));
    if dates.len() == limit {
        text.push_str(&format!(
            "there may be more: --from, --to and --limit {} show others (--limit 0 shows all)\n",
            limit
        ));
    }
    text
}

/// One date's row: batch, state, run and what more there is to say.
fn row(date: &DateInfo) -> Vec<String> {
    let detail = match &date.state {
        DateState::Claimed { holder, stale } => {
            format!("by {holder}{}", if *stale { ", never started" } else { "" })
        }
        DateState::Running { holder, .. } => format!("by {holder}"),
        DateState::Stale { stage, .. } => format!("stage `{stage}` changed since"),
        DateState::Incomplete { stage, .. } => {
            format!("the output of `{stage}` is gone")
        }
        DateState::Failed {
            check: Some(check), ..
        } => {
            let (stage, check) = check.split_once('/').unwrap_or((check, ""));
            format!("check `{check}` refused the output of `{stage}`")
        }
        _ => String::new(),
    };
    let detail = match (&date.publish_by, date.late) {
        (Some(due), true) if detail.is_empty() => format!("late (due {due})"),
        (Some(due), true) => format!("{detail}; late (due {due})"),
        _ => detail,
    };
    vec![
        date.batch.clone(),
        date.state.name().to_string(),
        date.state.run_id().unwrap_or("-").to_string(),
        detail,
    ]
}
