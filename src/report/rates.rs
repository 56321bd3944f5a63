//! Prices as the report uses them: one price per cluster-hour of a market, and one per
//! GB-hour of checkpoint storage, each with where it came from in words.
//!
//! The names and shapes are those of `plan::prices` (prices per instance type for EMR);
//! until it is in the tree they read the workflow's `cost:` section as it is today, so
//! switching is this file becoming a re-export.

use crate::workflow::{Market, Workflow};
use serde::Serialize;

/// A price per hour and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rate {
    pub per_hour: f64,
    pub source: String,
}

/// Checkpoint storage when the workflow names no price: S3 Standard's first tier in
/// us-east-1, per GB-month.
const DEFAULT_STORAGE_PER_GB_MONTH: f64 = 0.023;
/// Hours in a month, as AWS bills storage.
const HOURS_PER_MONTH: f64 = 730.0;

/// The whole cluster, per hour, on `market`.
pub fn cluster_rate(wf: &Workflow, market: Market) -> Rate {
    let (per_hour, key) = match market {
        Market::Spot => (wf.cost.spot_per_hour, "spot_per_hour"),
        Market::OnDemand => (wf.cost.on_demand_per_hour, "on_demand_per_hour"),
    };
    Rate {
        per_hour,
        source: format!("{}: cost.{key} {per_hour} per cluster-hour", wf.file),
    }
}

/// One GB of checkpoints kept for an hour.
pub fn storage_rate(_wf: &Workflow) -> Rate {
    Rate {
        per_hour: DEFAULT_STORAGE_PER_GB_MONTH / HOURS_PER_MONTH,
        source: format!(
            "default {DEFAULT_STORAGE_PER_GB_MONTH} per GB-month (S3 Standard), {HOURS_PER_MONTH} hours a month"
        ),
    }
}

/// The currency prices are written in.
pub fn currency(_wf: &Workflow) -> String {
    "USD".into()
}
