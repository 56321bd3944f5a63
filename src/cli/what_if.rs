//! The "what if" flags of `plan` and `simulate`: the workflow file as if it named another
//! market, prices, deadline or notice.

use super::{CliError, output, parse_mtti};
use clap::ValueEnum;
use respawn_core::learn::History;
use std::time::Duration;

/// "What if" flags of `plan` and `simulate`: the workflow file as if it said otherwise.
#[derive(Debug, clap::Args)]
pub struct WhatIf {
    /// The market (overrides `cluster.market`).
    #[arg(long, value_enum)]
    pub market: Option<MarketArg>,
    /// A price of the `cost:` section by its path, e.g. `spot_per_hour=0.35` or
    /// `instances.m5.xlarge.spot=0.07`; repeat for several.
    #[arg(long = "price", value_parser = respawn_core::workflow::overrides::parse_price, value_name = "PATH=VALUE")]
    pub prices: Vec<respawn_core::workflow::overrides::PriceOverride>,
    /// The deadline (overrides `cluster.fallback.deadline`), e.g. `20h`.
    #[arg(long, value_parser = parse_mtti, value_name = "DURATION")]
    pub deadline: Option<Duration>,
    /// The warning before each spot loss (overrides `cluster.notice`), e.g. `2m`; `0s`
    /// for none.
    #[arg(long, value_parser = respawn_core::workflow::units::parse_duration, value_name = "DURATION")]
    pub notice: Option<Duration>,
    #[command(flatten)]
    pub history: super::learned::HistoryFlags,
}

impl WhatIf {
    /// The workflow `FILE` with the figures its history taught (unless `--no-history`),
    /// then as the flags say; a price path that names nothing is an error.
    pub fn load(
        &self,
        file: &std::path::Path,
        mtti_flag: bool,
    ) -> Result<(respawn_core::workflow::Workflow, History), CliError> {
        let mut workflow = output::load(file)?;
        let history = super::learned::for_plan(&self.history, &workflow);
        history.apply(&mut workflow);
        if mtti_flag {
            // `--mtti` asks for exponential losses: the history's clusters are not replayed.
            workflow.cluster.learned_trace = None;
        }
        if let Some(market) = self.market {
            workflow.cluster.market = market.into();
        }
        if let Some(deadline) = self.deadline {
            workflow.cluster.fallback.deadline = Some(deadline);
        }
        if let Some(notice) = self.notice {
            workflow.cluster.notice = (!notice.is_zero()).then_some(notice);
        }
        for price in &self.prices {
            respawn_core::workflow::overrides::apply_price(&mut workflow.cost, price)
                .map_err(CliError::invalid_input)?;
        }
        Ok((workflow, history))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MarketArg {
    Spot,
    OnDemand,
    Auto,
}

impl From<MarketArg> for respawn_core::workflow::MarketChoice {
    fn from(market: MarketArg) -> Self {
        use respawn_core::workflow::{Market, MarketChoice};
        match market {
            MarketArg::Spot => MarketChoice::Fixed(Market::Spot),
            MarketArg::OnDemand => MarketChoice::Fixed(Market::OnDemand),
            MarketArg::Auto => MarketChoice::Auto,
        }
    }
}
