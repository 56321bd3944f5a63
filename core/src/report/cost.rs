//! What a run cost, what the same work would have cost on on-demand capacity, and what
//! interruptions and checkpoints wasted, from its timeline and the workflow's prices.
//!
//! - A cluster generation costs its hours (from its request to its loss or release,
//!   provisioning included) times the price of its market for the whole cluster
//!   (`plan::prices`). An EMR cluster whose instances were listed at its end costs the
//!   instance-hours of each fleet, type and market times that type's price plus EMR's fee
//!   (`instance_cost`); one from an older record that only has its total instance-hours
//!   costs those times its mean instance price (fleets' prices over its instances).
//! - The all-on-demand counterfactual runs the same work without interruptions
//!   (`on_demand`).
//! - Waste that happened on a cluster (lost attempts, recomputed producers, checkpoint
//!   writes and restores) is charged as a share of the cluster: hours times what an hour of
//!   that cluster cost, divided by its slots, for transfers only while their cluster was
//!   up, and never more in all than the cluster cost. Replacement clusters' provisioning is
//!   charged in full. An hour of a cluster whose instances EMR listed costs what the cluster cost
//!   over its hours; of any other cluster, the workflow's price for its market (an EMR
//!   one's `source` says its record lists no instance types).
//!   Checkpoint storage is gigabyte-hours of intermediate work-tables from their commit to
//!   the cleanup (or the last event, when none came yet).
//! - What spot notices bought the run is in `window.rs`.

use super::instance_cost::{InstanceCost, mean_instance_rate, price_instances};
use super::on_demand::{OnDemand, on_demand};
use super::timeline::{Generation, Timeline};
use super::window::{NoticeWindow, notice_window};
use crate::plan::prices::{self as rates, Rate};
use crate::workflow::{Market, Provider, Workflow};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenerationCost {
    pub generation: usize,
    pub market: Market,
    pub hours: f64,
    pub provisioning_hours: f64,
    /// EMR: instance-hours as the provider reported them.
    pub instance_hours: Option<f64>,
    /// The cluster's price per hour: its instances' prices when EMR listed them, else the
    /// workflow's price for its market.
    pub per_hour: f64,
    pub cost: f64,
    pub source: String,
    /// EMR: the cost of each fleet's instances per type and market (empty without a list).
    pub instances: Vec<InstanceCost>,
}

/// One kind of waste: how much, what it cost, and from which price.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WasteItem {
    pub count: usize,
    pub hours: f64,
    pub cost: f64,
    pub source: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Waste {
    /// Attempts that ended with their cluster.
    pub interrupted_attempts: WasteItem,
    /// Producers run again because their ephemeral work-table was lost.
    pub recomputed_producers: WasteItem,
    /// Provisioning of the clusters that replaced lost ones.
    pub provisioning: WasteItem,
    pub checkpoint_writes: WasteItem,
    pub restores: WasteItem,
    /// Intermediate checkpoints kept in the store; `hours` are gigabyte-hours.
    pub checkpoint_storage: WasteItem,
    pub total: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cost {
    pub currency: String,
    /// Clusters plus checkpoint storage.
    pub cost: f64,
    pub cluster_cost: f64,
    pub storage_cost: f64,
    pub on_demand_cost: f64,
    pub on_demand_hours: f64,
    pub on_demand_source: String,
    pub saving: f64,
    /// `saving` as a share of `on_demand_cost`; 0 for a run that did not publish all its
    /// final outputs, where the same work on on-demand is only what got done, and the share
    /// would say nothing (a run stopped while its first cluster started: -400000%).
    pub saving_percent: f64,
    /// Whether the run published every final output: only then is it a whole run to
    /// compare with all on-demand.
    pub complete: bool,
    pub waste: Waste,
    /// What spot notices bought the run (`window.rs`).
    pub notices: NoticeWindow,
    pub generations: Vec<GenerationCost>,
}

/// Stages that run at once on one cluster.
pub(super) fn slots(workflow: &Workflow) -> f64 {
    let slots = match (&workflow.cluster.provider, &workflow.cluster.emr) {
        (Provider::Emr, Some(emr)) => emr.step_concurrency,
        _ => workflow.cluster.slots,
    };
    f64::from(slots.max(1))
}

pub(super) fn share(rate: &Rate, slots: f64) -> String {
    match slots > 1.0 {
        true => format!("{} / {slots} slots", rate.source),
        false => rate.source.clone(),
    }
}

pub fn cost(workflow: &Workflow, timeline: &Timeline) -> Cost {
    let slots = slots(workflow);
    let generations: Vec<GenerationCost> = (timeline.generations.iter())
        .map(|g| price_generation(workflow, g))
        .collect();
    let cluster_cost: f64 = generations.iter().map(|g| g.cost).sum();
    let hourly = hourly_rates(workflow, timeline, &generations);
    let fallback = rates::cluster_rate(workflow, workflow.cluster.market.planning_market());
    let hourly_of = |generation: usize| hourly.get(generation).cloned().unwrap_or(fallback.clone());
    let notices = notice_window(timeline, hourly_of, slots);
    let waste = waste::waste(workflow, timeline, &generations, &hourly_of);
    let storage_cost = waste.checkpoint_storage.cost;
    let cost = cluster_cost + storage_cost;
    let on_demand = counterfactual(workflow, timeline, &generations, cost);
    let saving = on_demand.cost - cost;
    let complete = (workflow.stages.iter())
        .filter(|s| s.is_final)
        .all(|s| timeline.published.contains(&s.name));
    Cost {
        currency: workflow.cost.currency.clone(),
        cost,
        cluster_cost,
        storage_cost,
        on_demand_cost: on_demand.cost,
        on_demand_hours: on_demand.hours,
        on_demand_source: on_demand.source,
        saving,
        saving_percent: if complete && on_demand.cost > 0.0 {
            saving / on_demand.cost * 100.0
        } else {
            0.0
        },
        complete,
        waste,
        notices,
        generations,
    }
}

/// The all-on-demand counterfactual: the failure-free schedule at on-demand prices, or,
/// for a run on on-demand throughout, the run itself (the schedule leaves out uploads,
/// restores and publishing, and would make a short on-demand run a loss against itself).
fn counterfactual(
    workflow: &Workflow,
    timeline: &Timeline,
    generations: &[GenerationCost],
    cost: f64,
) -> OnDemand {
    if !generations.is_empty() && generations.iter().all(|g| g.market == Market::OnDemand) {
        return OnDemand {
            hours: generations.iter().map(|g| g.hours).sum(),
            cost,
            source: "the run itself: it was on on-demand throughout".into(),
        };
    }
    on_demand(workflow, timeline, generations)
}

/// What one cluster generation cost: its instances at their prices when EMR listed them,
/// an older record's instance-hours at the mean instance price, else its hours at the
/// workflow's price for its market.
fn price_generation(workflow: &Workflow, g: &Generation) -> GenerationCost {
    let price = rates::cluster_rate(workflow, g.market);
    let hours = g.seconds() / 3600.0;
    let instances = (g.instances.as_deref())
        .map(|listed| price_instances(workflow, listed))
        .unwrap_or_default();
    let mean = mean_instance_rate(workflow, g.market);
    let (per_hour, cost, source) = match (&g.instances, g.instance_hours, mean) {
        // EMR listed the instances: each kind at its own price.
        (Some(_), ..) => {
            let listed: Vec<String> = (instances.iter())
                .map(|i| {
                    let market = i.market.as_str();
                    format!("{} {} x {} {market}", i.fleet, i.count, i.instance_type)
                })
                .collect();
            (
                instances
                    .iter()
                    .map(|i| f64::from(i.count) * i.price_per_hour)
                    .sum(),
                instances.iter().map(|i| i.cost).sum(),
                format!(
                    "instance-hours per fleet and type as EMR listed them, each at its \
                     price (see instances): {}",
                    listed.join(", ")
                ),
            )
        }
        // An older record: only the total instance-hours, priced at the cluster's mean
        // instance price (its fleets' prices over its instance count).
        (None, Some(instance_hours), Some(mean)) => (
            price.per_hour,
            instance_hours * mean.per_hour,
            format!(
                "{instance_hours} instance-hours x the mean instance price {}: \
                 this record lists no instance types",
                mean.source
            ),
        ),
        _ => (price.per_hour, hours * price.per_hour, price.source),
    };
    GenerationCost {
        generation: g.number,
        market: g.market,
        hours,
        provisioning_hours: g.provisioning_seconds() / 3600.0,
        instance_hours: g.instance_hours,
        per_hour,
        cost,
        source,
        instances,
    }
}

/// What an hour of each cluster cost, for the waste that happened on it: its own cost
/// over its hours when EMR listed its instances, else the workflow's price.
fn hourly_rates(
    workflow: &Workflow,
    timeline: &Timeline,
    generations: &[GenerationCost],
) -> Vec<Rate> {
    let rate = |market| rates::cluster_rate(workflow, market);
    (timeline.generations.iter().zip(generations))
        .map(|(g, priced)| match &g.instances {
            Some(_) if priced.hours > 0.0 => Rate {
                per_hour: priced.cost / priced.hours,
                source: format!(
                    "cluster {}'s cost / its hours, {:.4} {}/h (the instances EMR listed)",
                    g.number,
                    priced.cost / priced.hours,
                    workflow.cost.currency
                ),
            },
            _ if workflow.cluster.provider == Provider::Emr => {
                let price = rate(g.market);
                Rate {
                    source: format!(
                        "{}: cluster {}'s record lists no instance types",
                        price.source, g.number
                    ),
                    ..price
                }
            }
            _ => rate(g.market),
        })
        .collect()
}

mod waste;

#[cfg(test)]
mod tests;
