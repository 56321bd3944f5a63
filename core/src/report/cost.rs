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
use super::on_demand::on_demand;
use super::timeline::{Outcome, Timeline};
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
    let rate = |market| rates::cluster_rate(workflow, market);
    let hours = |seconds: f64| seconds / 3600.0;
    let generations: Vec<GenerationCost> = timeline
        .generations
        .iter()
        .map(|g| {
            let price = rate(g.market);
            let mean = mean_instance_rate(workflow, g.market);
            let instances = g
                .instances
                .as_deref()
                .map(|listed| price_instances(workflow, listed))
                .unwrap_or_default();
            let (per_hour, cost, source) = match (&g.instances, g.instance_hours, mean) {
                // EMR listed the instances: each kind at its own price.
                (Some(_), ..) => (
                    instances
                        .iter()
                        .map(|i| f64::from(i.count) * i.price_per_hour)
                        .sum(),
                    instances.iter().map(|i| i.cost).sum(),
                    format!(
                        "instance-hours per fleet and type as EMR listed them, each at its \
                         price (see instances): {}",
                        instances
                            .iter()
                            .map(|i| format!(
                                "{} {} x {} {}",
                                i.fleet,
                                i.count,
                                i.instance_type,
                                i.market.as_str()
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                // An older record: only the total instance-hours, priced at the cluster's
                // mean instance price (its fleets' prices over its instance count).
                (None, Some(instance_hours), Some(mean)) => (
                    price.per_hour,
                    instance_hours * mean.per_hour,
                    format!(
                        "{instance_hours} instance-hours x the mean instance price {}: \
                         this record lists no instance types",
                        mean.source
                    ),
                ),
                _ => (
                    price.per_hour,
                    hours(g.seconds()) * price.per_hour,
                    price.source,
                ),
            };
            GenerationCost {
                generation: g.number,
                market: g.market,
                hours: hours(g.seconds()),
                provisioning_hours: hours(g.provisioning_seconds()),
                instance_hours: g.instance_hours,
                per_hour,
                cost,
                source,
                instances,
            }
        })
        .collect();
    let cluster_cost: f64 = generations.iter().map(|g| g.cost).sum();

    // What an hour of each cluster cost, for the waste that happened on it: its own cost
    // over its hours when EMR listed its instances, else the workflow's price.
    let hourly: Vec<Rate> = timeline
        .generations
        .iter()
        .zip(&generations)
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
        .collect();
    let hourly_of = |generation: usize| {
        hourly
            .get(generation)
            .cloned()
            .unwrap_or_else(|| rate(workflow.cluster.market.planning_market()))
    };
    let notices = notice_window(timeline, hourly_of, slots);
    let mut waste = Waste::default();
    // What is left of each cluster's cost to charge waste to: the waste on a cluster is a
    // part of what it cost, never more (uploads that overlap each other and the stages
    // would otherwise each be charged a whole slot).
    let mut left: Vec<f64> = generations.iter().map(|g| g.cost).collect();
    let mut charge = |item: &mut WasteItem, hours: f64, generation: usize, slots: f64| {
        let price = hourly_of(generation);
        let mut cost = hours * price.per_hour / slots;
        if let Some(left) = left.get_mut(generation) {
            cost = cost.min(*left).max(0.0);
            *left -= cost;
        }
        item.count += 1;
        item.hours += hours;
        item.cost += cost;
        let source = share(&price, slots);
        if item.source.is_empty() {
            item.source = source;
        } else if !item.source.contains(&source) {
            item.source = format!("{}; {source}", item.source);
        }
    };
    for attempt in &timeline.attempts {
        // An attempt its orchestrator abandoned (killed, say) is lost work, as one a
        // spot loss interrupted is.
        if matches!(attempt.outcome, Outcome::Interrupted | Outcome::Abandoned) {
            charge(
                &mut waste.interrupted_attempts,
                hours(attempt.seconds()),
                attempt.generation,
                slots,
            );
        } else if attempt.recompute && attempt.outcome == Outcome::Succeeded {
            charge(
                &mut waste.recomputed_producers,
                hours(attempt.seconds()),
                attempt.generation,
                slots,
            );
        }
    }
    for (index, generation) in timeline.generations.iter().enumerate().skip(1) {
        let seconds = generation.provisioning_seconds();
        charge(&mut waste.provisioning, hours(seconds), index, 1.0);
    }
    // A commit or restore happens on the cluster that is up at that moment.
    let generation_at = |t: f64| {
        timeline
            .generations
            .iter()
            .rposition(|g| g.requested <= t)
            .unwrap_or(0)
    };
    // Only the part of a transfer while its cluster was up cost cluster time.
    let while_up = |generation: usize, end: f64, seconds: f64| {
        timeline.generations.get(generation).map_or(seconds, |g| {
            (end.min(g.end) - (end - seconds).max(g.requested)).max(0.0)
        })
    };
    for commit in &timeline.commits {
        let generation = generation_at(commit.at);
        let seconds = while_up(generation, commit.at, commit.seconds);
        charge(
            &mut waste.checkpoint_writes,
            hours(seconds),
            generation,
            slots,
        );
    }
    for restore in &timeline.restores {
        let seconds = while_up(restore.generation, restore.at, restore.seconds);
        charge(
            &mut waste.restores,
            hours(seconds),
            restore.generation,
            slots,
        );
    }
    let finals: Vec<&str> = workflow
        .stages
        .iter()
        .filter(|s| s.is_final)
        .map(|s| s.name.as_str())
        .collect();
    let storage = rates::storage_rate(&workflow.cost);
    let kept_until = timeline.cleaned.unwrap_or(timeline.end);
    for commit in &timeline.commits {
        if finals.contains(&commit.stage.as_str()) {
            continue;
        }
        let gb_hours = commit.bytes as f64 / 1e9 * hours((kept_until - commit.at).max(0.0));
        let item = &mut waste.checkpoint_storage;
        item.count += 1;
        item.hours += gb_hours;
        item.cost += gb_hours * storage.per_hour;
    }
    waste.checkpoint_storage.source = storage.source.clone();
    let storage_cost = waste.checkpoint_storage.cost;
    waste.total = waste.interrupted_attempts.cost
        + waste.recomputed_producers.cost
        + waste.provisioning.cost
        + waste.checkpoint_writes.cost
        + waste.restores.cost
        + storage_cost;

    let on_demand = on_demand(workflow, timeline, &generations);
    let on_demand_cost = on_demand.cost;
    let cost = cluster_cost + storage_cost;
    let saving = on_demand_cost - cost;
    let complete = workflow
        .stages
        .iter()
        .filter(|s| s.is_final)
        .all(|s| timeline.published.contains(&s.name));
    Cost {
        currency: workflow.cost.currency.clone(),
        cost,
        cluster_cost,
        storage_cost,
        on_demand_cost,
        on_demand_hours: on_demand.hours,
        on_demand_source: on_demand.source,
        saving,
        saving_percent: if complete && on_demand_cost > 0.0 {
            saving / on_demand_cost * 100.0
        } else {
            0.0
        },
        complete,
        waste,
        notices,
        generations,
    }
}

#[cfg(test)]
mod tests;
