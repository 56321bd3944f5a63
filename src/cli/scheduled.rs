//! What the commands of scheduled workflows share (`tick`, `schedule`, `backfill`,
//! `batches`; `run` takes its settings from here too): loading a workflow that must have a
//! schedule, the time taken as now, the settings of the runs they start, and the lines
//! their runs print.

use super::error::ErrorKind;
use super::report::CostJson;
use super::{CliError, Format, RunPlace, output};
use respawn_core::contract::event::StampedEvent;
use respawn_core::contract::{Layout, RunRecord};
use respawn_core::report::Cost;
use respawn_core::workflow::Workflow;
use respawn_run::clock::{Clock, WallClock};
use respawn_run::driver::EventSink;
use respawn_run::session::RunSettings;
use respawn_run::store::AnyStore;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Loads a workflow file that must have a `schedule:`; `command` names who needs it.
pub fn load_scheduled(file: &Path, command: &str) -> Result<Workflow, CliError> {
    let workflow = output::load(file)?;
    if workflow.schedule.is_none() {
        return Err(CliError::invalid_input(format!(
            "{}: workflow `{}` has no `schedule:`; `respawn {command}` runs scheduled workflows",
            file.display(),
            workflow.name
        ))
        .with_hint("add a `schedule:` block, or run it with `respawn run`"));
    }
    Ok(workflow)
}

/// [`load_scheduled`] for each file.
pub fn load_all_scheduled(
    files: &[PathBuf],
    command: &str,
) -> Result<Vec<(PathBuf, Workflow)>, CliError> {
    files
        .iter()
        .map(|file| Ok((file.clone(), load_scheduled(file, command)?)))
        .collect()
}

/// The wall clock as a timestamp.
pub fn wall_now() -> Result<jiff::Timestamp, CliError> {
    jiff::Timestamp::try_from(WallClock.now())
        .map_err(|e| CliError::internal(format!("the clock is out of range: {e}")))
}

/// `--now` when given, else the wall clock.
pub fn now_or_wall(now: Option<jiff::Timestamp>) -> Result<jiff::Timestamp, CliError> {
    match now {
        Some(now) => Ok(now),
        None => wall_now(),
    }
}

/// The settings of a run started for the workflow in `file` (by `run`, `tick`, `schedule`
/// or `backfill`); stage commands run in the current directory.
pub fn run_settings(file: &Path, place: &RunPlace) -> RunSettings {
    let (scratch, emr) = (&place.scratch, &place.emr);
    RunSettings {
        workflow_dir: absolute(folder_of(file)),
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        scratch: absolute(scratch),
        chaos: None,
        emr_endpoint_url: emr.emr_endpoint_url.clone(),
        emr_poll: emr.emr_poll,
        stop_grace: super::run::STOP_GRACE,
        clock: Arc::new(WallClock),
        listen_for_signals: true,
        supervisor: supervisor(),
        history: !place.no_history,
    }
}

/// The program local stages run under: `respawn-supervise` beside this binary when it is
/// there (cargo builds and installs both; starting it is several times cheaper), else this
/// binary itself, whose hidden `supervise-cluster` command does the same.
fn supervisor() -> Option<PathBuf> {
    let this = std::env::current_exe().ok()?;
    let small = this.with_file_name("respawn-supervise");
    Some(if small.is_file() { small } else { this })
}

/// Makes sure the scratch directory (`--scratch`, `RESPAWN_SCRATCH`) can be used before a
/// run starts: created if needed and writable. Otherwise an error naming it (exit 3), not a
/// stage or cluster failure.
pub fn prepare_scratch(scratch: &Path) -> Result<(), CliError> {
    let probe = scratch.join(format!(".respawn-check-{}", std::process::id()));
    std::fs::create_dir_all(scratch)
        .and_then(|()| std::fs::create_dir(&probe))
        .and_then(|()| std::fs::remove_dir(&probe))
        .map_err(|e| {
            CliError::new(
                ErrorKind::Store,
                format!(
                    "the scratch directory {} cannot be used: {e}",
                    scratch.display()
                ),
            )
            .with_hint("pass --scratch DIR (or set RESPAWN_SCRATCH) to a directory respawn can create and write")
        })
}

/// Where the events of one date's run go: in text, a line each, prefixed with the workflow
/// and the batch (runs of several dates go on at once); in JSON, nowhere (they are in the
/// store, and the command prints one object per date).
pub fn prefixed_sink(format: Format, workflow: &str, batch: &str) -> EventSink {
    let prefix = format!("{workflow} {batch}");
    Box::new(move |event: &StampedEvent| {
        if format == Format::Text
            && let Some(line) = super::events::describe(&event.event)
        {
            let _ = output::stdout(&format!("{prefix}: {line}\n"));
        }
    })
}

/// The cost of a run that `tick`, `schedule` or `backfill` drove, read from the store as
/// `respawn run` reads it for its last line; `None` when no run was opened.
pub async fn cost_of_run(
    store: &AnyStore,
    workflow: &Workflow,
    run_id: Option<&str>,
) -> Option<Result<(RunRecord, Cost), String>> {
    let layout = Layout::new(&workflow.name);
    Some(respawn_run::read::run_cost(store, &layout, run_id?, workflow).await)
}

/// A run's cost as `respawn run`'s last line, after the line of how its date ended.
pub fn cost_text(prefix: &str, cost: &Result<(RunRecord, Cost), String>) -> String {
    match cost {
        Ok((_, cost)) => format!("{prefix}: {}\n", super::report::cost_line(cost)),
        Err(reason) => format!("{prefix}: cost: {reason}\n"),
    }
}

/// One JSON line about a date of a workflow: what was decided for it or how it ended
/// (`what`), with the workflow's name, and the batch and the run's cost when given.
#[derive(Serialize)]
pub struct DateLine<'a, T: Serialize> {
    pub workflow: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<&'a str>,
    #[serde(flatten)]
    pub what: &'a T,
    /// `respawn cost --format json`'s object, or `null` with why in `cost_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Option<CostJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_error: Option<&'a str>,
}

impl<'a, T: Serialize> DateLine<'a, T> {
    pub fn new(workflow: &'a str, what: &'a T) -> DateLine<'a, T> {
        DateLine {
            workflow,
            batch: None,
            what,
            cost: None,
            cost_error: None,
        }
    }

    /// The date's run ended: its batch, and its cost as far as it could be read.
    pub fn ended(
        mut self,
        batch: &'a str,
        cost: Option<&'a Result<(RunRecord, Cost), String>>,
    ) -> DateLine<'a, T> {
        self.batch = Some(batch);
        match cost {
            Some(Ok((record, cost))) => self.cost = Some(Some(CostJson::new(cost, record))),
            Some(Err(reason)) => {
                self.cost = Some(None);
                self.cost_error = Some(reason);
            }
            None => {}
        }
        self
    }
}

/// The folder a file is in: `.` for a bare file name (whose parent is the empty path).
fn folder_of(file: &Path) -> &Path {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
