//! When and how a trial's spot clusters are lost: drawn (exponential, with a share of
//! one-node losses), replayed (interruption times), or read off a capacity trace (drops
//! lose that share of the nodes, spells of zero hold provisioning back).

use super::{Due, Simulator, World};
use crate::machine::Event;
use crate::sim::Drop;
use crate::sim::TrialInterruptions;
use crate::sim::TrialOutcome;
use crate::workflow::StageId;
use rand::Rng;

impl Simulator<'_> {
    /// Draws the next loss of spot cluster `generation` after `after`: of some nodes (with
    /// chance `partial`, or as a capacity trace drops; unannounced) or of the whole
    /// cluster (announced by its notice).
    pub(super) fn schedule_loss(
        &self,
        generation: u32,
        after: f64,
        interruptions: TrialInterruptions,
        world: &mut World,
        rng: &mut impl Rng,
    ) {
        let (at, nodes) = match interruptions {
            TrialInterruptions::Capacity { trace, offset } => {
                let Some((at, drop)) = trace.next_drop(after + offset) else {
                    return;
                };
                let nodes = match drop {
                    Drop::Whole => None,
                    Drop::Share(share) => {
                        Some((share * self.slots as f64).ceil().max(1.0) as usize)
                    }
                };
                (at - offset, nodes.filter(|&n| n < self.slots))
            }
            _ => {
                let Some(at) =
                    next_interruption(interruptions, after, &mut world.trace_position, rng)
                else {
                    return;
                };
                let one = self.partial > 0.0 && rng.random::<f64>() < self.partial;
                (at, one.then_some(1))
            }
        };
        if let Some(nodes) = nodes {
            world.schedule(at, Due::NodeLost { generation, nodes });
            return;
        }
        if generation == world.generation {
            world.loss_at = Some(at);
        }
        world.schedule(at, Due::Lost { generation });
        if let Some(lead) = self.notice.filter(|lead| *lead > 0.0) {
            let due = Due::Notice {
                generation,
                loss_at: at,
            };
            world.schedule((at - lead).max(world.now), due);
        }
    }

    /// `nodes` nodes of cluster `generation` are reclaimed: the attempts on them, if any,
    /// are lost work and interrupted; the cluster's next loss is drawn.
    pub(super) fn node_lost(
        &self,
        generation: u32,
        nodes: usize,
        interruptions: TrialInterruptions,
        world: &mut World,
        outcome: &mut TrialOutcome,
        rng: &mut impl Rng,
    ) -> Option<Event> {
        let waiting = world.replacement.is_some_and(|r| r.0 == generation);
        let current = generation == world.generation && world.alive;
        if !waiting && !current {
            return None;
        }
        let slots = self.slots.max(1);
        // `nodes` distinct nodes of `slots`: the first of a partial shuffle.
        let mut taken: Vec<usize> = (0..slots).collect();
        for i in 0..nodes.min(slots) {
            let j = rng.random_range(i..slots);
            taken.swap(i, j);
        }
        taken.truncate(nodes.min(slots));
        self.schedule_loss(generation, world.now, interruptions, world, rng);
        if !current {
            return None;
        }
        let running: Vec<StageId> = (0..world.running.len())
            .filter(|&s| world.running[s].is_some())
            .collect();
        let mut attempts = Vec::new();
        for node in taken {
            let Some(&stage) = running.get(node) else {
                continue;
            };
            if let Some((attempt, started)) = world.running[stage].take() {
                outcome.lost_work += world.now - started;
                attempts.push((stage, attempt));
            }
        }
        (!attempts.is_empty()).then_some(Event::AttemptsLost {
            generation,
            attempts,
            elapsed: world.now,
        })
    }

    /// When a spot cluster asked for at `now` gets its capacity: at once, or on a capacity
    /// trace when capacity is there again. `None` when that is more than the spot timeout
    /// away: the request fails then, as an EMR spot fleet's does.
    pub(super) fn capacity_at(&self, now: f64, interruptions: TrialInterruptions) -> Option<f64> {
        let at = match interruptions {
            TrialInterruptions::Capacity { trace, offset } => {
                trace.available_from(now + offset) - offset
            }
            _ => now,
        };
        (at - now <= self.spot_timeout).then_some(at)
    }
}

/// When the spot cluster that is ready at `now` will be lost, if ever.
fn next_interruption(
    interruptions: TrialInterruptions,
    now: f64,
    trace_position: &mut usize,
    rng: &mut impl Rng,
) -> Option<f64> {
    match interruptions {
        TrialInterruptions::Never | TrialInterruptions::Capacity { .. } => None,
        TrialInterruptions::Replay(times) => {
            while *trace_position < times.len() && times[*trace_position] <= now {
                *trace_position += 1;
            }
            times.get(*trace_position).copied()
        }
        TrialInterruptions::Exponential { mtti } => {
            let u: f64 = rng.random();
            Some(now - mtti * (1.0 - u).ln())
        }
    }
}
