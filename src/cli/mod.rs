//! The command line: clap types in one place, one file per command, exit codes.

mod backfill;
mod batches;
mod clean;
mod clusters;
mod error;
mod events;
mod history;
mod interrupt;
mod learned;
mod live;
mod output;
mod plan;
mod planning;
mod report;
mod run;
mod schedule;
mod scheduled;
mod simulate;
mod stats;
mod status;
mod store;
mod store_check;
mod tick;
mod ui;
mod validate;
mod what_if;

pub use error::{CliError, ErrorKind};
pub use planning::{PlanArgs, PlanFormat, PolicyArg, SimulateArgs, StatsArgs, parse_mtti};
pub use what_if::{MarketArg, WhatIf};

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Exit codes, documented in the README; one [`ErrorKind`] for each failure.
pub mod exit {
    /// Everything went as asked.
    pub const SUCCESS: i32 = 0;
    /// Something unexpected went wrong in respawn itself (a bug, or output that could not be written).
    pub const INTERNAL: i32 = 1;
    /// Bad input: a workflow file, a trace file or a command-line flag. Nothing was run.
    pub const INVALID_INPUT: i32 = 2;
    /// The store could not be used: unreachable, no credentials, no bucket, access denied,
    /// conditional writes not enforced, or an object in it is damaged (the message names it).
    pub const STORE: i32 = 3;
    /// A stage failed after its retries; the run keeps its work and resumes when re-run.
    pub const RUN_FAILED: i32 = 4;
    /// Another orchestrator holds the workflow's lease (the message names it), or this one
    /// lost the lease while it ran.
    pub const BUSY: i32 = 5;
    /// The cluster provider's API (EMR) could not be used: `respawn clusters` only; a run
    /// that loses its cluster's API fails with 4.
    pub const CLUSTER: i32 = 6;
    /// Stopped by Ctrl-C or SIGTERM; the same command resumes the run.
    pub const STOPPED: i32 = 130;
}

#[derive(Debug, Parser)]
#[command(
    name = "respawn",
    version,
    about = "Run long data workflows on spot capacity without losing work",
    long_about = "respawn runs workflows of stages on spot capacity: it checkpoints the work-tables \
                  its planner chooses, resumes from them when the cluster is lost, falls back to \
                  on-demand, and cleans up after itself. It also plans, simulates and checks workflow files."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check workflow files and print every problem, located at file:line:column.
    Validate(ValidateArgs),
    /// Show the critical path, slack and where each work-table is checkpointed, and why.
    Plan(PlanArgs),
    /// Simulate runs under spot interruptions and compare checkpoint policies.
    Simulate(SimulateArgs),
    /// Run a workflow on a local cluster: a new batch, or resume an unfinished one.
    Run(RunArgs),
    /// One pass of the scheduler: claim and run the due logical dates of scheduled workflows.
    Tick(TickArgs),
    /// Run the logical dates of a range that need it (missing, failed, stale, or all).
    Backfill(BackfillArgs),
    /// The logical dates of a scheduled workflow and the state of each.
    Batches(BatchesArgs),
    /// The long-running scheduler: tick at start and at each scheduled time, until SIGTERM.
    Schedule(ScheduleArgs),
    /// Show each stage of a run: state, attempts, market, checkpoint and log.
    Status(StatusArgs),
    /// Lose the current local cluster of a running run, as a spot interruption would.
    Interrupt(InterruptArgs),
    /// Delete the work-tables of one run (never anything else).
    Clean(CleanArgs),
    /// Delete the work-tables of abandoned runs older than a given age.
    Gc(GcArgs),
    /// List the runs of a workflow recorded in the store.
    History(HistoryArgs),
    /// What runs measured against what the workflow file says: each stage's time and
    /// output size, and the spot interruption rate.
    Stats(StatsArgs),
    /// List the EMR clusters respawn started that are up; find and end orphans.
    Clusters(ClustersArgs),
    /// Check a store before trusting it with runs.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Write one self-contained HTML report of a run: a Gantt of attempts, cost and waste.
    Report(ReportArgs),
    /// What a run cost, what the same work would have cost on-demand, and what was wasted.
    Cost(CostArgs),
    /// A read-only web view of the store on loopback: workflows, batches, run reports.
    Ui(UiArgs),
    /// Supervises a local cluster's stages, on requests from its orchestrator (used by
    /// `run` when `respawn-supervise` is not beside this program).
    #[command(hide = true)]
    SuperviseCluster,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Race conditional writes, look for torn objects, list after writing, upload in parts
    /// and tag; report what passed and what it means, and remember the verdict in the
    /// store (`run` refuses a store whose last check failed).
    Check(StoreCheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct StoreCheckArgs {
    /// Store URL: `s3://bucket/prefix`, `file:///path` or a path.
    #[arg(value_name = "URL")]
    pub url: String,
    /// S3 endpoint for S3-compatible servers (else `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// How long a failing request is tried again (as for every command's `--store-outage`).
    #[arg(long, env = "RESPAWN_STORE_OUTAGE", value_name = "DURATION", value_parser = parse_outage)]
    pub store_outage: Option<Duration>,
    /// Rounds of each race (16 writers each).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A run id, or a workflow file or name (its latest run).
    #[arg(value_name = "RUN|WORKFLOW")]
    pub target: String,
    /// The latest run of this batch (with a workflow).
    #[arg(long, value_name = "ID")]
    pub batch: Option<String>,
    /// Where to write the report (default: respawn-report-<run>.html here).
    #[arg(short = 'o', long = "output", value_name = "FILE.html")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, clap::Args)]
pub struct CostArgs {
    /// A run id, or a workflow file or name (its latest run).
    #[arg(value_name = "RUN|WORKFLOW")]
    pub target: String,
    /// The latest run of this batch (with a workflow).
    #[arg(long, value_name = "ID")]
    pub batch: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct UiArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8650)]
    pub port: u16,
    /// Listen on this address instead of loopback (anyone who reaches it can read the store).
    #[arg(long, value_name = "ADDRESS")]
    pub bind: Option<std::net::IpAddr>,
    /// Answer requests to any host name, and allow a --bind address that is not loopback.
    #[arg(long)]
    pub allow_remote: bool,
}

#[derive(Debug, clap::Args)]
pub struct ClustersArgs {
    /// Only clusters whose run is finished, or whose run no orchestrator holds.
    #[arg(long)]
    pub orphans: bool,
    /// Terminate the clusters listed (only with --orphans).
    #[arg(long, requires = "orphans")]
    pub terminate: bool,
    /// The AWS region (else the standard chain: AWS_REGION, the profile).
    #[arg(long)]
    pub region: Option<String>,
    /// EMR endpoint, e.g. the emulator's.
    #[arg(long, env = "AWS_ENDPOINT_URL_EMR", value_name = "URL")]
    pub emr_endpoint_url: Option<String>,
    /// Options for the stores named by the clusters' `respawn:store` tags.
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The workflow file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The batch (a logical date or any id): the same batch again resumes it, or does
    /// nothing once it succeeded. Default: resume the latest unfinished run, or start a
    /// new batch.
    #[arg(long, value_name = "ID")]
    pub batch: Option<String>,
    /// Reprocess the batch even though it succeeded, replacing its outputs.
    #[arg(long, requires = "batch")]
    pub force: bool,
    /// Run a logical date of the schedule whose interval has not closed yet (its data may
    /// not all be there); refused without it.
    #[arg(long, requires = "batch")]
    pub allow_future: bool,
    /// Interrupt spot clusters at random: `mtti=30s,seed=7` (and optionally `provision=2s`).
    #[arg(long, value_name = "SPEC")]
    pub chaos: Option<respawn_run::driver::Chaos>,
    #[command(flatten)]
    pub place: RunPlace,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct TickArgs {
    /// Workflow files with a `schedule:`.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The time the tick takes as now (RFC 3339, e.g. `2026-11-30T03:00:00Z`), to check
    /// what a tick would do or to test a schedule.
    #[arg(long, env = "RESPAWN_NOW", value_name = "RFC3339", value_parser = parse_now)]
    pub now: Option<jiff::Timestamp>,
    /// Print the decision for each due date; claim and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub place: RunPlace,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    /// Workflow files with a `schedule:`.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub place: RunPlace,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// For tests: exit (0) after this many ticks.
    #[arg(long, hide = true, value_name = "N")]
    pub max_ticks: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// A workflow file with a `schedule:`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The first logical date: a batch id, a date (2026-11-01) or an RFC 3339 time.
    #[arg(long, value_name = "DATE")]
    pub from: String,
    /// The last logical date (inclusive), written as `--from` is.
    #[arg(long, value_name = "DATE")]
    pub to: String,
    /// Which dates of the range run.
    #[arg(long, value_enum, default_value_t = ReprocessArg::Missing)]
    pub reprocess: ReprocessArg,
    /// Runs of this backfill at once (default: the schedule's `max_active`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_active: Option<u32>,
    #[arg(long, value_enum, default_value_t = OrderArg::Oldest)]
    pub order: OrderArg,
    /// Run logical dates whose interval has not closed yet (their data may not all be
    /// there); a range that reaches one is refused without it.
    #[arg(long)]
    pub allow_future: bool,
    /// Print each date, its state, what would happen and an estimate; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub place: RunPlace,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReprocessArg {
    /// Dates never run or never finished (failed, stopped, missed, an output gone).
    Missing,
    /// Dates whose run failed.
    Failed,
    /// Dates that succeeded before a stage's definition changed.
    Stale,
    /// Every date, replacing its outputs.
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OrderArg {
    Oldest,
    Newest,
}

#[derive(Debug, clap::Args)]
pub struct BatchesArgs {
    /// A workflow file with a `schedule:`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The first logical date shown (default: the schedule's start).
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// The last logical date shown (default: the latest due one).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// How many dates: the range's latest, or its first when only `--from` is given; 0: all.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
    /// The time taken as now (RFC 3339): which dates are due.
    #[arg(long, env = "RESPAWN_NOW", value_name = "RFC3339", value_parser = parse_now)]
    pub now: Option<jiff::Timestamp>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}
fn parse_now(text: &str) -> Result<jiff::Timestamp, String> {
    text.parse::<jiff::Timestamp>()
        .map_err(|e| format!("`{text}` is not an RFC 3339 time such as 2026-11-30T03:00:00Z: {e}"))
}

/// Where runs happen (`run`, `tick`, `schedule`, `backfill`): the store, the local
/// clusters' scratch directories, and how EMR is reached.
#[derive(Debug, clap::Args)]
pub struct RunPlace {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Where local clusters keep their scratch directories.
    #[arg(long, env = "RESPAWN_SCRATCH", value_name = "DIR", default_value_os_t = default_scratch())]
    pub scratch: PathBuf,
    #[command(flatten)]
    pub emr: EmrArgs,
    /// Plan from the workflow file alone, not from what earlier runs measured.
    #[arg(long)]
    pub no_history: bool,
}

/// How respawn reaches EMR (`cluster.provider: emr`).
#[derive(Debug, Clone, clap::Args)]
pub struct EmrArgs {
    /// EMR endpoint, e.g. the emulator's (else AWS itself for the workflow's region).
    #[arg(long, env = "AWS_ENDPOINT_URL_EMR", value_name = "URL")]
    pub emr_endpoint_url: Option<String>,
    /// How often cluster and step states are polled (jittered by ±20%).
    #[arg(long, env = "RESPAWN_EMR_POLL", value_parser = parse_poll, default_value = "15s", value_name = "DURATION")]
    pub emr_poll: Duration,
}

fn parse_poll(text: &str) -> Result<Duration, String> {
    let value = respawn_core::workflow::units::parse_duration(text)?;
    if value < Duration::from_millis(50) {
        return Err("the poll interval must be at least 50ms".into());
    }
    Ok(value)
}

fn default_scratch() -> PathBuf {
    std::env::temp_dir().join("respawn")
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A workflow file or name (its latest run), or a run id. Default: every workflow in the store.
    #[arg(value_name = "WORKFLOW|RUN")]
    pub target: Option<String>,
    /// The latest run of this batch (with a workflow), rather than the latest run.
    #[arg(long, value_name = "ID", requires = "target")]
    pub batch: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct InterruptArgs {
    /// A workflow file or name.
    #[arg(value_name = "WORKFLOW")]
    pub workflow: String,
    /// The batch whose run to interrupt (needed when several batches are in progress).
    #[arg(long, value_name = "ID")]
    pub batch: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, clap::Args)]
pub struct CleanArgs {
    /// The run id (see `respawn history`).
    #[arg(value_name = "RUN")]
    pub run: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// List what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Runs not updated for this long, e.g. `7d`.
    #[arg(long, value_parser = parse_age, value_name = "DURATION")]
    pub older_than: Duration,
    #[command(flatten)]
    pub store: StoreArgs,
    /// List what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_age(text: &str) -> Result<Duration, String> {
    respawn_core::workflow::units::parse_duration(text)
}

/// Where the store is: `--store`, else `RESPAWN_STORE`, else the workflow file's `store:`,
/// else `.respawn` in the current directory.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Store URL: `s3://bucket/prefix`, `file:///path` or a path.
    #[arg(long, env = "RESPAWN_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// S3 endpoint for S3-compatible servers such as MinIO (else `AWS_ENDPOINT_URL_S3`,
    /// `AWS_ENDPOINT_URL`, or AWS itself).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The longest store outage a command rides out: once an S3 store is open, a request
    /// that keeps failing (throttled, a server error, a cut connection) is tried again for
    /// this long, then the command stops with exit 3 (default 2m).
    #[arg(long, env = "RESPAWN_STORE_OUTAGE", value_name = "DURATION", value_parser = parse_outage)]
    pub store_outage: Option<Duration>,
}

fn parse_outage(text: &str) -> Result<Duration, String> {
    respawn_core::workflow::units::parse_duration(text)
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// A workflow file, or the name of a workflow.
    #[arg(value_name = "WORKFLOW")]
    pub workflow: String,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Workflow files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Whether a log event of `target` at `level` may be printed: never the AWS SDK's signing
/// logs (the canonical request holds the session token) nor its request dumps at trace
/// level (every header, the signature and the session token among them).
pub fn may_log(target: &str, level: tracing::Level) -> bool {
    let signing = target.starts_with("aws_sigv4");
    let request_dump = level == tracing::Level::TRACE
        && (target.starts_with("aws_smithy_runtime::client::orchestrator")
            || target.starts_with("aws_smithy_runtime_api::client::orchestrator")
            || target.starts_with("aws_smithy_runtime::client::http"));
    !signing && !request_dump
}

/// Runs a parsed command line and returns the process exit code. The one place where a
/// command's error is printed.
pub fn run(cli: Cli) -> i32 {
    let result: Result<i32, CliError> = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args).map(|()| exit::SUCCESS),
        Command::Simulate(args) => simulate::run(&args).map(|()| exit::SUCCESS),
        Command::History(args) => history::run(&args).map(|()| exit::SUCCESS),
        Command::Stats(args) => stats::run(&args).map(|()| exit::SUCCESS),
        Command::Run(args) => run::run(&args),
        Command::Tick(args) => tick::run(&args),
        Command::Schedule(args) => schedule::run(&args),
        Command::Backfill(args) => backfill::run(&args),
        Command::Batches(args) => batches::run(&args).map(|()| exit::SUCCESS),
        Command::Status(args) => status::run(&args).map(|()| exit::SUCCESS),
        Command::Interrupt(args) => interrupt::run(&args).map(|()| exit::SUCCESS),
        Command::Clean(args) => clean::clean(&args).map(|()| exit::SUCCESS),
        Command::Gc(args) => clean::gc(&args).map(|()| exit::SUCCESS),
        Command::Clusters(args) => clusters::run(&args).map(|()| exit::SUCCESS),
        Command::Store(StoreCommand::Check(args)) => store_check::run(&args),
        Command::Report(args) => report::report(&args).map(|()| exit::SUCCESS),
        Command::Cost(args) => report::cost(&args).map(|()| exit::SUCCESS),
        Command::Ui(args) => ui::run(&args),
        Command::SuperviseCluster => Ok(respawn_run::cluster::supervisor::supervise_cluster()),
    };
    match result {
        Ok(code) => code,
        Err(error) if error.is_broken_pipe() => exit::SUCCESS,
        Err(error) => {
            output::stderr(&error.render());
            error.exit_code()
        }
    }
}
