//! What the same work would have cost on on-demand capacity: each stage's last successful
//! attempt, as long as it took, scheduled on the cluster's slots in dependency order without
//! interruption, after one provisioning, at an on-demand price per cluster-hour.
//!
//! That price is the one the run's own clusters imply when EMR listed their instances: the
//! instance-hours of each type it listed, each at that type's on-demand price plus EMR's
//! fee (`instance_cost`), over those clusters' hours, so that the all-on-demand run has
//! the mix of instances the run had. Without a list (a local cluster, or an EMR record
//! written before the instances were kept) it is the workflow's price for an on-demand
//! cluster (`plan::prices`: an EMR cluster's fleets at their first types), and an EMR
//! `source` says the record lists no instance types.

use super::cost::{GenerationCost, slots};
use super::instance_cost::price_instances;
use super::timeline::{Outcome, Timeline};
use crate::contract::event::InstanceUse;
use crate::plan::prices::{self as rates, Rate};
use crate::plan::{launch_order, list_schedule};
use crate::workflow::{Market, Provider, Workflow};
use std::collections::BTreeMap;

/// The all-on-demand counterfactual.
pub struct OnDemand {
    pub hours: f64,
    pub cost: f64,
    pub source: String,
}

pub fn on_demand(
    workflow: &Workflow,
    timeline: &Timeline,
    generations: &[GenerationCost],
) -> OnDemand {
    let first_provisioning = timeline
        .generations
        .first()
        .map_or(0.0, |g| g.provisioning_seconds());
    let hours = (first_provisioning + failure_free_makespan(workflow, timeline)) / 3600.0;
    let rate = on_demand_rate(workflow, timeline, generations);
    OnDemand {
        hours,
        cost: hours * rate.per_hour,
        source: format!(
            "{} for the failure-free schedule of the stages' successful attempts on {} slots",
            rate.source,
            slots(workflow)
        ),
    }
}

/// An on-demand cluster-hour: from the instances EMR listed when it listed some (see the
/// module's comment), else the workflow's price.
fn on_demand_rate(
    workflow: &Workflow,
    timeline: &Timeline,
    generations: &[GenerationCost],
) -> Rate {
    // The instance-hours of each type over the clusters whose instances were listed.
    let mut by_type: BTreeMap<&str, InstanceUse> = BTreeMap::new();
    let mut cluster_hours = 0.0;
    for (listed, priced) in timeline.generations.iter().zip(generations) {
        let Some(instances) = &listed.instances else {
            continue;
        };
        cluster_hours += priced.hours;
        for used in instances {
            let kind = by_type
                .entry(&used.instance_type)
                .or_insert_with(|| InstanceUse {
                    market: Market::OnDemand,
                    count: 0,
                    instance_hours: 0.0,
                    from: None,
                    until: None,
                    ..used.clone()
                });
            kind.instance_hours += used.instance_hours;
        }
    }
    let configured = rates::cluster_rate(workflow, Market::OnDemand);
    if by_type.is_empty() || cluster_hours <= 0.0 {
        let emr = workflow.cluster.provider == Provider::Emr;
        return Rate {
            source: if emr {
                format!(
                    "{}: the run's records list no instance types",
                    configured.source
                )
            } else {
                configured.source
            },
            ..configured
        };
    }
    let kinds: Vec<InstanceUse> = by_type.into_values().collect();
    let priced = price_instances(workflow, &kinds);
    let cost: f64 = priced.iter().map(|p| p.cost).sum();
    let per_type = priced
        .iter()
        .map(|p| format!("{} instance-h x ({})", p.instance_hours, p.source))
        .collect::<Vec<_>>()
        .join(" + ");
    Rate {
        per_hour: cost / cluster_hours,
        source: format!(
            "the instances EMR listed at on-demand prices, ({per_type}) / {cluster_hours} cluster-hours"
        ),
    }
}

/// The stages' last successful attempts, as long as they took, on the cluster's slots with
/// no interruption, launched as the engine launches them (the planner's one failure-free
/// list schedule, longest remaining path first): when the same work would have ended.
/// Stages that did not run in this run take no time.
fn failure_free_makespan(workflow: &Workflow, timeline: &Timeline) -> f64 {
    let mut took: BTreeMap<&str, f64> = BTreeMap::new();
    for attempt in &timeline.attempts {
        if attempt.outcome == Outcome::Succeeded {
            took.insert(&attempt.stage, attempt.seconds());
        }
    }
    let duration: Vec<f64> = workflow
        .stages
        .iter()
        .map(|s| took.get(s.name.as_str()).copied().unwrap_or(0.0))
        .collect();
    let needs: Vec<Vec<usize>> = workflow.stages.iter().map(|s| s.needs.clone()).collect();
    let order = launch_order(&needs, &duration);
    list_schedule(&needs, &duration, slots(workflow) as usize, &order).makespan
}
