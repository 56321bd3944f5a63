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
    let slack: Vec<f64> = (0..n)
        .map(|s| (latest_start[s] - earliest_start[s]).max(0.0))
        .collect();

    let mut critical_path = Vec::new();
    let finish = |s: usize| earliest_start[s] + duration[s];
    let mut current = (0..n).find(|&s| finish(s) >= makespan - 1e-9 * makespan.max(1.0));
    while let Some(stage) = current {
        critical_path.push(stage);
        let tolerance = 1e-9 * makespan.max(1.0);
        current = needs[stage]
            .iter()
            .copied()
            .filter(|&p| finish(p) >= earliest_start[stage] - tolerance)
            .min();
    }
    critical_path.reverse();
    Schedule {
        earliest_start,
        latest_start,
        slack,
        critical_path,
        makespan,
    }
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
}
