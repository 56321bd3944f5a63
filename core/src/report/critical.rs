//! The critical path of a run as it happened: from the final stage that ended last, back
//! through the input that was ready last, each stage's last successful attempt. It is the
//! chain that decided when the run ended (what `plan` predicts from estimates, measured).

use super::timeline::{Outcome, Timeline};
use crate::workflow::Workflow;
use std::collections::BTreeMap;

/// Indexes into `timeline.attempts` of the critical path's attempts, last stage first.
pub fn critical_attempts(workflow: &Workflow, timeline: &Timeline) -> Vec<usize> {
    let mut last_success: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, attempt) in timeline.attempts.iter().enumerate() {
        if attempt.outcome == Outcome::Succeeded {
            last_success.insert(&attempt.stage, index);
        }
    }
    let end_of = |stage: usize| {
        last_success
            .get(workflow.stages[stage].name.as_str())
            .map(|&i| (timeline.attempts[i].end, i))
    };
    let latest = |candidates: &mut dyn Iterator<Item = usize>| {
        candidates
            .filter_map(|s| end_of(s).map(|(end, i)| (end, i, s)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let mut path = Vec::new();
    let mut current = latest(
        &mut workflow
            .stages
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_final)
            .map(|(i, _)| i),
    );
    while let Some((_, attempt, stage)) = current {
        path.push(attempt);
        let start = timeline.attempts[attempt].start;
        // Only inputs made in this run, before this attempt started, held it up.
        current = latest(
            &mut workflow.stages[stage]
                .needs
                .iter()
                .copied()
                .filter(|&need| end_of(need).is_some_and(|(end, _)| end <= start + 1e-9)),
        );
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::timeline::tests::{at, exit, launch};
    use crate::report::timeline::timeline;
    use crate::workflow::Market;

    #[test]
    fn the_path_follows_the_input_that_was_ready_last() {
        let text = "name: w\nstages:\n  slow: {run: 'true'}\n  quick: {run: 'true'}\n  \
                    join: {run: 'true', needs: [slow, quick]}\n";
        let workflow = crate::workflow::parse("w.yaml", text).unwrap();
        let spot = Market::Spot;
        let events = vec![
            at(0.0, launch("slow", 1, 1, spot)),
            at(0.0, launch("quick", 2, 1, spot)),
            at(5.0, exit("quick", 2, 0)),
            at(50.0, exit("slow", 1, 0)),
            at(50.0, launch("join", 3, 1, spot)),
            at(60.0, exit("join", 3, 0)),
        ];
        let timeline = timeline(&events, false);
        let path: Vec<&str> = critical_attempts(&workflow, &timeline)
            .into_iter()
            .map(|i| timeline.attempts[i].stage.as_str())
            .collect();
        assert_eq!(path, ["join", "slow"]);
    }
}
