//! Critical-path analysis: earliest and latest starts, slack, and the critical path.

use crate::workflow::StageId;

#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub earliest_start: Vec<f64>,
    pub latest_start: Vec<f64>,
    pub slack: Vec<f64>,
    /// One longest path, from a source to a sink (the earliest stage wins ties).
    pub critical_path: Vec<StageId>,
    pub makespan: f64,
}

impl Schedule {
    /// Slack this small is zero: float sums of durations are not exact.
    pub fn is_critical(&self, stage: StageId) -> bool {
        self.slack[stage] <= 1e-9 * self.makespan.max(1.0)
    }
}

/// Schedules stages (in topological order) with unlimited parallelism.
pub fn schedule(needs: &[Vec<StageId>], duration: &[f64]) -> Schedule {
    let n = needs.len();
    let mut earliest_start = vec![0.0f64; n];
    for stage in 0..n {
        for &input in &needs[stage] {
            earliest_start[stage] =
                earliest_start[stage].max(earliest_start[input] + duration[input]);
        }
    }
    let makespan = (0..n)
        .map(|s| earliest_start[s] + duration[s])
        .fold(0.0, f64::max);
    let mut latest_finish = vec![makespan; n];
    for stage in (0..n).rev() {
        let start = latest_finish[stage] - duration[stage];
        for &input in &needs[stage] {
            latest_finish[input] = latest_finish[input].min(start);
        }
    }
    let latest_start: Vec<f64> = (0..n).map(|s| latest_finish[s] - duration[s]).collect();
    Schedule::of(
        needs,
        duration,
        (earliest_start, latest_start),
        makespan,
        &[],
    )
}

/// Schedules stages (in topological order) on `slots` slots the way the engine launches
/// them: whenever a slot is free, the ready stage first in `order` starts. Earliest starts
/// are the starts of that schedule; latest starts come from a backward pass over both the
/// data edges and the slot edges (the stage that took a slot next must not be delayed),
/// so slack is what a stage can really be late without delaying the end.
pub fn list_schedule(
    needs: &[Vec<StageId>],
    duration: &[f64],
    slots: usize,
    order: &[StageId],
) -> Schedule {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let n = needs.len();
    let slots = slots.max(1);
    let mut rank = vec![0usize; n];
    for (position, &s) in order.iter().enumerate() {
        rank[s] = position;
    }
    let consumers = consumers_of(needs);
    let mut pending: Vec<usize> = needs.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<Reverse<(usize, StageId)>> = (0..n)
        .filter(|&s| pending[s] == 0)
        .map(|s| Reverse((rank[s], s)))
        .collect();
    // (finish, stage, slot) of running stages; free slots, lowest first.
    let mut running: BinaryHeap<Reverse<(Time, StageId, usize)>> = BinaryHeap::new();
    let mut free: BinaryHeap<Reverse<usize>> = (0..slots).map(Reverse).collect();
    let mut last_on_slot: Vec<Option<StageId>> = vec![None; slots];
    let mut slot_next: Vec<Option<StageId>> = vec![None; n];
    let mut slot_previous: Vec<Option<StageId>> = vec![None; n];
    let mut earliest_start = vec![0.0f64; n];
    // When each stage's last input finished.
    let mut ready_at = vec![0.0f64; n];
    let mut now = 0.0f64;
    loop {
        while !free.is_empty() {
            let Some(Reverse((_, s))) = ready.pop() else {
                break;
            };
            let Some(Reverse(slot)) = free.pop() else {
                break;
            };
            earliest_start[s] = now;
            // A slot edge only where the stage waited for the slot: delaying the stage
            // before it would delay this one. Where it did not wait, another slot was free.
            if let Some(previous) = last_on_slot[slot]
                && now > ready_at[s]
            {
                slot_next[previous] = Some(s);
                slot_previous[s] = Some(previous);
            }
            last_on_slot[slot] = Some(s);
            running.push(Reverse((Time(now + duration[s]), s, slot)));
        }
        let Some(Reverse((Time(finish), s, slot))) = running.pop() else {
            break;
        };
        now = finish;
        free.push(Reverse(slot));
        for &c in &consumers[s] {
            pending[c] -= 1;
            if pending[c] == 0 {
                ready_at[c] = now;
                ready.push(Reverse((rank[c], c)));
            }
        }
    }
    let makespan = (0..n)
        .map(|s| earliest_start[s] + duration[s])
        .fold(0.0, f64::max);
    let latest_start = latest_starts(&consumers, &slot_next, duration, &earliest_start, makespan);
    let starts = (earliest_start, latest_start);
    Schedule::of(needs, duration, starts, makespan, &slot_previous)
}

impl Schedule {
    /// The schedule of these earliest and latest starts: each stage's slack, and the
    /// critical path (through the slot edges `slot_previous`, where there are any).
    fn of(
        needs: &[Vec<StageId>],
        duration: &[f64],
        (earliest_start, latest_start): (Vec<f64>, Vec<f64>),
        makespan: f64,
        slot_previous: &[Option<StageId>],
    ) -> Schedule {
        let slack: Vec<f64> = (earliest_start.iter().zip(&latest_start))
            .map(|(early, late)| (late - early).max(0.0))
            .collect();
        let critical_path =
            critical_path(needs, duration, &earliest_start, makespan, slot_previous);
        Schedule {
            earliest_start,
            latest_start,
            slack,
            critical_path,
            makespan,
        }
    }
}

/// The stages that read each stage's output.
fn consumers_of(needs: &[Vec<StageId>]) -> Vec<Vec<StageId>> {
    let mut consumers: Vec<Vec<StageId>> = vec![Vec::new(); needs.len()];
    for (s, inputs) in needs.iter().enumerate() {
        for &input in inputs {
            consumers[input].push(s);
        }
    }
    consumers
}

/// How late each stage can start without delaying the end: before its consumers and the
/// stage that waited for its slot start. Computed backward, latest start first, so every
/// successor's latest start is known before.
fn latest_starts(
    consumers: &[Vec<StageId>],
    slot_next: &[Option<StageId>],
    duration: &[f64],
    earliest_start: &[f64],
    makespan: f64,
) -> Vec<f64> {
    let n = consumers.len();
    let mut by_start: Vec<StageId> = (0..n).collect();
    by_start.sort_by(|&a, &b| {
        earliest_start[b]
            .total_cmp(&earliest_start[a])
            .then(b.cmp(&a))
    });
    let mut latest_start = vec![0.0f64; n];
    for &s in &by_start {
        let successors = consumers[s].iter().chain(slot_next[s].iter());
        let latest_finish = successors
            .map(|&c| latest_start[c])
            .fold(makespan, f64::min);
        latest_start[s] = latest_finish - duration[s];
    }
    latest_start
}

/// A time that sorts totally (schedule times are never NaN).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Time(f64);
impl Eq for Time {}
impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Time {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The chain that sets the end: from a stage that ends the schedule, back through the input
/// that finished as it started (the earliest stage wins ties) or, when it waited for a
/// slot, the stage that held its slot before it (`slot_previous`, empty without slots).
fn critical_path(
    needs: &[Vec<StageId>],
    duration: &[f64],
    earliest_start: &[f64],
    makespan: f64,
    slot_previous: &[Option<StageId>],
) -> Vec<StageId> {
    let n = needs.len();
    let tolerance = 1e-9 * makespan.max(1.0);
    let finish = |s: usize| earliest_start[s] + duration[s];
    let mut path = Vec::new();
    let mut current = (0..n).find(|&s| finish(s) >= makespan - tolerance);
    while let Some(stage) = current {
        path.push(stage);
        let waited_for = |p: &StageId| finish(*p) >= earliest_start[stage] - tolerance;
        current = needs[stage]
            .iter()
            .copied()
            .filter(waited_for)
            .min()
            .or_else(|| {
                slot_previous
                    .get(stage)
                    .copied()
                    .flatten()
                    .filter(waited_for)
            });
    }
    path.reverse();
    path
}

/// Each stage's bottom level: the longest path from its start to the end of the DAG,
/// its own duration included (stages are in topological order).
pub fn bottom_levels(needs: &[Vec<StageId>], duration: &[f64]) -> Vec<f64> {
    let n = needs.len();
    let mut tail = vec![0.0f64; n];
    let mut level = vec![0.0f64; n];
    for s in (0..n).rev() {
        level[s] = duration[s] + tail[s];
        for &input in &needs[s] {
            tail[input] = tail[input].max(level[s]);
        }
    }
    level
}

/// The launch priority the engine (and so the simulator) uses: stages by longest remaining
/// path first (bottom level of the estimates), the earlier stage first on ties.
pub fn launch_order(needs: &[Vec<StageId>], estimate: &[f64]) -> Vec<StageId> {
    let level = bottom_levels(needs, estimate);
    let mut order: Vec<StageId> = (0..needs.len()).collect();
    order.sort_by(|&a, &b| level[b].total_cmp(&level[a]).then(a.cmp(&b)));
    order
}

/// The longest failure-free path through the stages still to run (`to_run`), in seconds.
/// `consumers` lists each stage's direct consumers; stages are in topological order.
pub fn remaining_critical(consumers: &[Vec<StageId>], work: &[f64], to_run: &[bool]) -> f64 {
    let mut longest = vec![0.0f64; to_run.len()];
    let mut best = 0.0f64;
    for s in (0..to_run.len()).rev() {
        if to_run[s] {
            let tail = consumers[s].iter().map(|&c| longest[c]).fold(0.0, f64::max);
            longest[s] = work[s] + tail;
            best = best.max(longest[s]);
        }
    }
    best
}

/// A lower bound on the failure-free time of the stages in `to_run`: the longer of their
/// critical path and their work spread evenly over `slots`.
pub fn remaining_time(
    consumers: &[Vec<StageId>],
    work: &[f64],
    to_run: &[bool],
    slots: usize,
) -> f64 {
    let spread: f64 = (0..to_run.len())
        .filter(|&s| to_run[s])
        .map(|s| work[s])
        .sum::<f64>()
        / slots.max(1) as f64;
    remaining_critical(consumers, work, to_run).max(spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diamond_has_slack_on_the_short_branch() {
        // a -> b (3) -> d, a -> c (1) -> d
        let needs = vec![vec![], vec![0], vec![0], vec![1, 2]];
        let s = schedule(&needs, &[1.0, 3.0, 1.0, 1.0]);
        assert_eq!(s.makespan, 5.0);
        assert_eq!(s.critical_path, vec![0, 1, 3]);
        assert_eq!(s.slack[2], 2.0);
        assert_eq!(s.earliest_start[3], 4.0);
        assert!(s.is_critical(1) && !s.is_critical(2));
    }

    #[test]
    fn on_one_slot_independent_stages_have_no_slack() {
        // Three sources of 1, 2 and 3 hours feeding one sink: unlimited slots give the
        // short ones slack; one slot runs them back to back, and none can be late.
        let needs = vec![vec![], vec![], vec![], vec![0, 1, 2]];
        let duration = [1.0, 2.0, 3.0, 1.0];
        let free = schedule(&needs, &duration);
        assert_eq!(free.slack[0], 2.0);
        let order = launch_order(&needs, &duration);
        assert_eq!(order, vec![2, 1, 0, 3]);
        let one = list_schedule(&needs, &duration, 1, &order);
        assert_eq!(one.makespan, 7.0);
        assert_eq!(one.earliest_start, vec![5.0, 3.0, 0.0, 6.0]);
        assert!(one.slack.iter().all(|&s| s == 0.0), "{:?}", one.slack);
        assert_eq!(one.critical_path, vec![2, 1, 0, 3]);
    }

    #[test]
    fn with_enough_slots_the_list_schedule_is_the_unlimited_one() {
        let needs = vec![vec![], vec![0], vec![0], vec![1, 2]];
        let duration = [1.0, 3.0, 1.0, 1.0];
        let order = launch_order(&needs, &duration);
        let listed = list_schedule(&needs, &duration, 4, &order);
        assert_eq!(listed, schedule(&needs, &duration));
    }

    #[test]
    fn a_slot_that_is_not_full_adds_no_slot_edge() {
        // a (2h) and b (1h) on two slots, c needs b: c takes b's slot without waiting for
        // it, so b keeps the slack of its path.
        let needs = vec![vec![], vec![], vec![1]];
        let duration = [4.0, 1.0, 1.0];
        let order = launch_order(&needs, &duration);
        let listed = list_schedule(&needs, &duration, 2, &order);
        assert_eq!(listed.slack, vec![0.0, 2.0, 2.0]);
    }
}
