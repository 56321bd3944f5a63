//! The arguments of the planning commands: `plan`, `simulate` and `stats`.

use super::{Format, StoreArgs, WhatIf};
use clap::ValueEnum;
use std::path::PathBuf;
use std::time::Duration;

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
    #[command(flatten)]
    pub what_if: WhatIf,
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
    /// The share of losses that take one node of the cluster, not all of it (0 to 1):
    /// the attempt on it runs again on the same cluster.
    #[arg(long, default_value_t = 0.0, value_parser = respawn_core::workflow::units::parse_share, value_name = "SHARE")]
    pub partial: f64,
    #[command(flatten)]
    pub what_if: WhatIf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// The workflow file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
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

impl From<PolicyArg> for respawn_core::workflow::CheckpointPolicy {
    fn from(policy: PolicyArg) -> Self {
        match policy {
            PolicyArg::Auto => Self::Auto,
            PolicyArg::All => Self::All,
            PolicyArg::None => Self::None,
            PolicyArg::Interval => Self::Interval,
        }
    }
}

pub fn parse_mtti(text: &str) -> Result<Duration, String> {
    let duration = respawn_core::workflow::units::parse_duration(text)?;
    if duration.is_zero() {
        return Err("the duration must be longer than zero".into());
    }
    Ok(duration)
}
