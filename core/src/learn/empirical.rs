//! The empirical interruption model: the spot clusters earlier runs held, laid end to end
//! as a capacity trace, which the planner and the simulator replay as they replay a public
//! trace. Losses come as they came: in bursts, between long quiet spells, with the share
//! of nodes each partial loss took; an exponential model with the same mean smooths all
//! of that away.
//!
//! Each cluster is a spell of capacity as long as it was held; a node loss is a drop by
//! its share, the capacity back at the next count (the provider replaces nodes); a
//! cluster the provider took ends in a drop to zero, one count long. A cluster the run let
//! go (released, or left for on-demand) just ends, and the next one follows: its time
//! counts, its end is no loss.

use crate::contract::HeldCluster;
use crate::workflow::capacity::CapacityTrace;
use std::sync::Arc;

/// How many spot losses (whole clusters) the history needs before it is replayed as it
/// came rather than summed into a rate.
pub const EMPIRICAL_LOSSES: u32 = 8;
/// The count of a full cluster in the trace: node losses are shares of it.
const FULL: u32 = 1000;
/// At most this many counts: a long history is read at a coarser step.
const MAX_COUNTS: f64 = 200_000.0;

/// The clusters `held` (spot, in the order they ended) as a capacity trace, when they
/// lost at least [`EMPIRICAL_LOSSES`] clusters.
pub fn history_trace(held: &[&HeldCluster]) -> Option<Arc<CapacityTrace>> {
    let losses = held.iter().filter(|c| c.lost).count() as u32;
    let total: f64 = held.iter().map(|c| c.seconds.max(0.0)).sum();
    if losses < EMPIRICAL_LOSSES || !total.is_finite() || total <= 0.0 {
        return None;
    }
    // Whole seconds, one where they fit: a step of whole seconds keeps the trial offsets
    // and drop times exact.
    let gap = (total / MAX_COUNTS).ceil().max(1.0);
    let mut counts = Vec::new();
    for cluster in held {
        spell(cluster, gap, &mut counts);
    }
    Some(Arc::new(CapacityTrace { gap, counts }))
}

/// Appends cluster `c`'s spell: full capacity for as long as it was held, its node losses
/// as drops, and a zero when it was lost.
fn spell(c: &HeldCluster, gap: f64, counts: &mut Vec<u32>) {
    // A node loss needs a count before it and one after it.
    let least = if c.node_losses.is_empty() { 1 } else { 3 };
    let steps = ((c.seconds.max(0.0) / gap).round() as usize).max(least);
    let start = counts.len();
    counts.extend(std::iter::repeat_n(FULL, steps));
    for loss in &c.node_losses {
        let share = loss.share.clamp(0.0, 1.0);
        if share <= 0.0 || !loss.after.is_finite() {
            continue;
        }
        let at = ((loss.after.max(0.0) / gap).floor() as usize).clamp(1, steps - 2);
        let slot = &mut counts[start + at];
        let left = f64::from(*slot) * (1.0 - share);
        *slot = (left.round() as u32).clamp(1, FULL - 1);
    }
    if c.lost {
        counts.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::NodeLoss;
    use crate::workflow::capacity::Drop;

    fn held(seconds: f64, lost: bool) -> HeldCluster {
        HeldCluster {
            market: "spot".into(),
            seconds,
            lost,
            zone: None,
            subnet: None,
            node_losses: Vec::new(),
        }
    }

    #[test]
    fn clusters_laid_end_to_end_keep_the_times_between_losses_as_they_came() {
        // A burst (three losses within 30 s), then a long quiet spell, released, then more.
        let mut history: Vec<HeldCluster> = [10.0, 10.0, 10.0]
            .into_iter()
            .map(|s| held(s, true))
            .collect();
        history.push(held(3600.0, false));
        history.extend((0..5).map(|_| held(600.0, true)));
        let refs: Vec<&HeldCluster> = history.iter().collect();
        let trace = history_trace(&refs).expect("eight losses are enough");
        assert_eq!(trace.gap, 1.0);
        // Drops to zero at 10, 21 and 32 s (each spell ends in one count of zero).
        assert_eq!(trace.next_drop(0.0), Some((10.0, Drop::Whole)));
        assert_eq!(trace.next_drop(10.0), Some((21.0, Drop::Whole)));
        assert_eq!(trace.next_drop(21.0), Some((32.0, Drop::Whole)));
        // The released cluster's hour holds no loss: the next is 600 s after it.
        assert_eq!(
            trace.next_drop(32.0),
            Some((33.0 + 3600.0 + 600.0, Drop::Whole))
        );
        // Mean time between losses while held: the clusters' time over their losses.
        let held_time = 30.0 + 3600.0 + 3000.0;
        assert!((trace.mtti().unwrap() - held_time / 8.0).abs() < 1e-9);
    }

    #[test]
    fn a_node_loss_is_a_drop_by_its_share_and_the_capacity_comes_back() {
        let mut with_nodes = held(100.0, true);
        with_nodes.node_losses = vec![NodeLoss {
            after: 40.0,
            share: 0.25,
        }];
        let mut history = vec![with_nodes];
        history.extend((0..7).map(|_| held(50.0, true)));
        let refs: Vec<&HeldCluster> = history.iter().collect();
        let trace = history_trace(&refs).unwrap();
        assert_eq!(trace.next_drop(0.0), Some((40.0, Drop::Share(0.25))));
        assert_eq!(trace.next_drop(40.0), Some((100.0, Drop::Whole)));
    }

    #[test]
    fn too_few_losses_make_no_trace() {
        let history: Vec<HeldCluster> = (0..7).map(|_| held(60.0, true)).collect();
        let refs: Vec<&HeldCluster> = history.iter().collect();
        assert!(history_trace(&refs).is_none());
        assert!(history_trace(&[]).is_none());
    }

    #[test]
    fn a_long_history_is_read_at_a_coarser_step() {
        let history: Vec<HeldCluster> = (0..10).map(|_| held(86_400.0 * 10.0, true)).collect();
        let refs: Vec<&HeldCluster> = history.iter().collect();
        let trace = history_trace(&refs).unwrap();
        assert!(trace.counts.len() <= MAX_COUNTS as usize + 20);
        assert!(trace.gap > 1.0);
    }
}
