//! What interruptions and checkpoints wasted, each charged to the cluster it happened on
//! (see the comment of [`super`]).

use super::{GenerationCost, Waste, WasteItem, share, slots};
use crate::plan::prices::{self as rates, Rate};
use crate::report::timeline::{Outcome, Timeline};
use crate::workflow::Workflow;

/// The waste of a run whose clusters cost `generations`; `hourly_of` is what an hour of
/// each cluster cost.
pub(super) fn waste(
    workflow: &Workflow,
    timeline: &Timeline,
    generations: &[GenerationCost],
    hourly_of: &dyn Fn(usize) -> Rate,
) -> Waste {
    let slots = slots(workflow);
    let mut charger = Charger {
        left: generations.iter().map(|g| g.cost).collect(),
        hourly_of,
    };
    let mut waste = Waste::default();
    for attempt in &timeline.attempts {
        // An attempt its orchestrator abandoned (killed, say) is lost work, as one a
        // spot loss interrupted is.
        let item = if matches!(attempt.outcome, Outcome::Interrupted | Outcome::Abandoned) {
            &mut waste.interrupted_attempts
        } else if attempt.recompute && attempt.outcome == Outcome::Succeeded {
            &mut waste.recomputed_producers
        } else {
            continue;
        };
        charger.charge(item, hours(attempt.seconds()), attempt.generation, slots);
    }
    for (index, generation) in timeline.generations.iter().enumerate().skip(1) {
        let seconds = generation.provisioning_seconds();
        charger.charge(&mut waste.provisioning, hours(seconds), index, 1.0);
    }
    transfers(timeline, &mut charger, &mut waste, slots);
    waste.checkpoint_storage = storage(workflow, timeline);
    waste.total = waste.interrupted_attempts.cost
        + waste.recomputed_producers.cost
        + waste.provisioning.cost
        + waste.checkpoint_writes.cost
        + waste.restores.cost
        + waste.checkpoint_storage.cost;
    waste
}

fn hours(seconds: f64) -> f64 {
    seconds / 3600.0
}

/// Charges waste to clusters: the waste on a cluster is a part of what it cost, never
/// more (uploads that overlap each other and the stages would otherwise each be charged a
/// whole slot).
struct Charger<'a> {
    /// What is left of each cluster's cost to charge waste to.
    left: Vec<f64>,
    hourly_of: &'a dyn Fn(usize) -> Rate,
}

impl Charger<'_> {
    fn charge(&mut self, item: &mut WasteItem, hours: f64, generation: usize, slots: f64) {
        let price = (self.hourly_of)(generation);
        let mut cost = hours * price.per_hour / slots;
        if let Some(left) = self.left.get_mut(generation) {
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
    }
}

/// Checkpoint writes and restores, each on the cluster up at that moment, and only for
/// the part of the transfer while that cluster was up.
fn transfers(timeline: &Timeline, charger: &mut Charger, waste: &mut Waste, slots: f64) {
    let generation_at = |t: f64| {
        (timeline.generations.iter())
            .rposition(|g| g.requested <= t)
            .unwrap_or(0)
    };
    let while_up = |generation: usize, end: f64, seconds: f64| {
        timeline.generations.get(generation).map_or(seconds, |g| {
            (end.min(g.end) - (end - seconds).max(g.requested)).max(0.0)
        })
    };
    for commit in &timeline.commits {
        let generation = generation_at(commit.at);
        let seconds = while_up(generation, commit.at, commit.seconds);
        charger.charge(
            &mut waste.checkpoint_writes,
            hours(seconds),
            generation,
            slots,
        );
    }
    for restore in &timeline.restores {
        let seconds = while_up(restore.generation, restore.at, restore.seconds);
        charger.charge(
            &mut waste.restores,
            hours(seconds),
            restore.generation,
            slots,
        );
    }
}

/// Gigabyte-hours of intermediate work-tables, from their commit to the cleanup (or the
/// last event, when none came yet), at the storage price.
fn storage(workflow: &Workflow, timeline: &Timeline) -> WasteItem {
    let finals: Vec<&str> = (workflow.stages.iter())
        .filter(|s| s.is_final)
        .map(|s| s.name.as_str())
        .collect();
    let storage = rates::storage_rate(&workflow.cost);
    let kept_until = timeline.cleaned.unwrap_or(timeline.end);
    let mut item = WasteItem::default();
    for commit in &timeline.commits {
        if finals.contains(&commit.stage.as_str()) {
            continue;
        }
        let gb_hours = commit.bytes as f64 / 1e9 * hours((kept_until - commit.at).max(0.0));
        item.count += 1;
        item.hours += gb_hours;
        item.cost += gb_hours * storage.per_hour;
    }
    item.source = storage.source;
    item
}
