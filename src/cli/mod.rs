//! The command line: clap types in one place, one file per command, exit codes.

mod history;
mod output;
mod plan;
mod simulate;
mod store;
mod validate;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Exit codes, documented in the README.
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
}

#[derive(Debug, Parser)]
#[command(
    name = "respawn",
    version,
    about = "Run long data workflows on spot capacity without losing work",
    long_about = "respawn plans where a workflow of stages should checkpoint its work-tables, \
                  simulates what spot interruptions cost under each policy, and checks workflow files."
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
    /// List the runs of a workflow recorded in the store.
    History(HistoryArgs),
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

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The workflow file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Mean time to interruption on spot (overrides `cluster.mtti`), e.g. `2h`.
    #[arg(long, value_parser = parse_mtti, value_name = "DURATION")]
    pub mtti: Option<Duration>,
    /// Checkpoint policy (overrides `checkpoint.policy`).
    #[arg(long, value_enum)]
    pub policy: Option<PolicyArg>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The workflow file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Mean time to interruption on spot (overrides `cluster.mtti`), e.g. `2h`.
    #[arg(long, value_parser = parse_mtti, value_name = "DURATION")]
    pub mtti: Option<Duration>,
    /// Simulated runs per policy.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub trials: u32,
    /// Seed of the interruption draws: the same seed gives the same numbers.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Replay interruption times from a CSV file (one time per line, or `trace,time`).
    #[arg(long, value_name = "CSV")]
    pub trace: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Dot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    Auto,
    All,
    None,
    Interval,
}

impl From<PolicyArg> for crate::spec::CheckpointPolicy {
    fn from(policy: PolicyArg) -> Self {
        match policy {
            PolicyArg::Auto => Self::Auto,
            PolicyArg::All => Self::All,
            PolicyArg::None => Self::None,
            PolicyArg::Interval => Self::Interval,
        }
    }
}

fn parse_mtti(text: &str) -> Result<Duration, String> {
    let duration = crate::spec::units::parse_duration(text)?;
    if duration.is_zero() {
        return Err("the mean time to interruption must be longer than zero".into());
    }
    Ok(duration)
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::History(args) => history::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => exit::SUCCESS,
        Err(error) => {
            eprintln!("error: cannot write output: {error}");
            exit::INTERNAL
        }
    }
}
