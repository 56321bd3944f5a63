//! The machine's running counts: stages per state and, per stage, the inputs missing from
//! the current cluster. Kept up to date on every change, so that an event costs the
//! machine the stages it touches, not a pass over every stage (the simulator applies
//! millions of events per comparison).

use super::StageState;
use crate::workflow::StageId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Clone, Debug)]
pub(super) struct Tally {
    /// Stages `Running`.
    pub running: usize,
    /// Stages `Running`, `Persisting` or in `Backoff`: the run is not idle.
    pub busy: usize,
    /// Stages `Persisting`: uploads in flight.
    pub persisting: usize,
    pub done: usize,
    /// Committed work-tables not on the current cluster: what a restore could bring.
    pub away: usize,
    /// Per stage, its inputs whose work-table is not on the current cluster.
    pub missing: Vec<u32>,
    /// Launch ranks of stages offered as ready (no input missing) since the last pop,
    /// lowest rank (highest priority) first. An entry can be stale: the machine checks
    /// a stage's state and inputs when it pops it.
    pub ready: BinaryHeap<Reverse<usize>>,
}

impl Tally {
    /// Every stage `Waiting`, nothing on a cluster.
    pub fn new(needs: &[Vec<StageId>], rank: &[usize]) -> Tally {
        let mut tally = Tally {
            running: 0,
            busy: 0,
            persisting: 0,
            done: 0,
            away: 0,
            missing: Vec::new(),
            ready: BinaryHeap::new(),
        };
        tally.all_gone(needs, rank);
        tally
    }

    /// `stage` may be ready to launch.
    pub fn offer(&mut self, stage: StageId, rank: &[usize]) {
        if self.missing[stage] == 0 {
            self.ready.push(Reverse(rank[stage]));
        }
    }

    pub fn change(&mut self, from: StageState, to: StageState) {
        self.count(from, usize::wrapping_sub);
        self.count(to, usize::wrapping_add);
    }

    fn count(&mut self, state: StageState, op: fn(usize, usize) -> usize) {
        match state {
            StageState::Running { .. } => {
                self.running = op(self.running, 1);
                self.busy = op(self.busy, 1);
            }
            StageState::Persisting { .. } => {
                self.persisting = op(self.persisting, 1);
                self.busy = op(self.busy, 1);
            }
            StageState::Backoff => self.busy = op(self.busy, 1),
            StageState::Done => self.done = op(self.done, 1),
            StageState::Waiting => {}
        }
    }

    /// A work-table arrived on the cluster: its consumers miss one input less.
    pub fn arrived(&mut self, consumers: &[StageId], rank: &[usize]) {
        for &c in consumers {
            self.missing[c] -= 1;
            self.offer(c, rank);
        }
    }

    /// The cluster is gone with every work-table on it: only stages without inputs can
    /// be ready.
    pub fn all_gone(&mut self, needs: &[Vec<StageId>], rank: &[usize]) {
        self.missing.clear();
        self.missing
            .extend(needs.iter().map(|inputs| inputs.len() as u32));
        self.ready.clear();
        for (stage, inputs) in needs.iter().enumerate() {
            if inputs.is_empty() {
                self.ready.push(Reverse(rank[stage]));
            }
        }
    }
}
