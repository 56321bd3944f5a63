//! What spot notices bought a run, from its timeline: how many came (and lapsed), the
//! work-tables uploaded in a window beyond the plan with the stage time they hold (a loss
//! would have recomputed it), and the replacements' provisioning that overlapped the warned
//! cluster's last minutes (time the run was not down).
//!
//! The saved stage time is priced as waste is (`cost.rs`): hours times what an hour of the
//! cluster it ran on cost, divided by its slots. The overlap costs nothing extra (the
//! replacement's provisioning is billed with or without the notice, see `waste.provisioning`):
//! it is shown in hours only.

use super::cost::{WasteItem, share};
use super::timeline::{ClusterEnd, Outcome, Timeline};
use crate::contract::event::NoticeKind;
use crate::plan::prices::Rate;
use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NoticeWindow {
    pub interruption_notices: usize,
    pub rebalance_notices: usize,
    /// Interruption notices no loss followed.
    pub lapsed: usize,
    /// Work-tables uploaded in a window beyond the plan: `hours` of stage time they hold.
    pub saved: WasteItem,
    /// Replacements asked for on a notice and provisioned before the loss: `hours` of
    /// provisioning that overlapped the warned cluster (`cost` 0: no extra charge).
    pub provisioning_overlap: WasteItem,
}

impl NoticeWindow {
    pub fn any(&self) -> bool {
        self.interruption_notices + self.rebalance_notices > 0
    }
}

/// `rate(generation)` is what an hour of that cluster cost; `slots` the stages it runs at once.
pub(super) fn notice_window(
    timeline: &Timeline,
    rate: impl Fn(usize) -> Rate,
    slots: f64,
) -> NoticeWindow {
    let mut window = NoticeWindow::default();
    for notice in &timeline.notices {
        match notice.kind {
            NoticeKind::Interruption => window.interruption_notices += 1,
            NoticeKind::Rebalance => window.rebalance_notices += 1,
        }
        window.lapsed += usize::from(notice.lapsed);
    }
    for commit in timeline.commits.iter().filter(|c| c.window) {
        let Some(attempt) = timeline.attempts.iter().find(|a| {
            a.stage == commit.stage
                && a.attempt == commit.attempt
                && a.outcome == Outcome::Succeeded
        }) else {
            continue;
        };
        let price = rate(attempt.generation);
        let hours = attempt.seconds() / 3600.0;
        add(
            &mut window.saved,
            hours,
            hours * price.per_hour / slots,
            &share(&price, slots),
        );
    }
    for (g, replacement) in timeline.generations.iter().enumerate().skip(1) {
        let warned = &timeline.generations[g - 1];
        let lost_at = match warned.ended {
            ClusterEnd::Lost { .. } => warned.end,
            _ => continue,
        };
        let up_by = replacement.ready.unwrap_or(lost_at).min(lost_at);
        let overlap = up_by - replacement.requested;
        if overlap > 0.0 {
            let source = "asked for at the notice, provisioned while the warned cluster worked";
            add(
                &mut window.provisioning_overlap,
                overlap / 3600.0,
                0.0,
                source,
            );
        }
    }
    window
}

fn add(item: &mut WasteItem, hours: f64, cost: f64, source: &str) {
    item.count += 1;
    item.hours += hours;
    item.cost += cost;
    if item.source.is_empty() {
        item.source = source.to_string();
    } else if !item.source.contains(source) {
        item.source = format!("{}; {source}", item.source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::timeline::{Attempt, Commit, Generation, NoticeMark};
    use crate::workflow::Market;

    fn generation(number: usize, requested: f64, ready: f64, end: f64, lost: bool) -> Generation {
        Generation {
            number,
            market: Market::Spot,
            provider: "local".into(),
            cluster: String::new(),
            requested,
            ready: Some(ready),
            end,
            ended: if lost {
                ClusterEnd::Lost {
                    cause: "spot".into(),
                }
            } else {
                ClusterEnd::Released
            },
            instance_hours: None,
            instances: None,
        }
    }

    #[test]
    fn a_window_saves_the_stage_time_of_what_it_uploaded_and_hides_the_provisioning() {
        let attempt = |stage: &str, start: f64, end: f64| Attempt {
            stage: stage.into(),
            attempt: 1,
            generation: 0,
            market: Market::Spot,
            start,
            end,
            outcome: Outcome::Succeeded,
            log: String::new(),
            code: Some(0),
            recompute: false,
            checks: Vec::new(),
        };
        let commit = |stage: &str, window: bool| Commit {
            stage: stage.into(),
            attempt: 1,
            at: 3700.0,
            files: 1,
            bytes: 1,
            seconds: 1.0,
            window,
        };
        let timeline = Timeline {
            end: 9000.0,
            attempts: vec![attempt("a", 0.0, 3600.0), attempt("b", 0.0, 1800.0)],
            generations: vec![
                generation(1, 0.0, 0.0, 3720.0, true),
                generation(2, 3690.0, 3710.0, 9000.0, false),
            ],
            notices: vec![NoticeMark {
                at: 3690.0,
                generation: 0,
                kind: NoticeKind::Interruption,
                lead: 30.0,
                instances: Vec::new(),
                lapsed: false,
            }],
            // `a` was a planned checkpoint; `b` was saved by the window.
            commits: vec![commit("a", false), commit("b", true)],
            ..Timeline::default()
        };
        let rate = |_| Rate {
            per_hour: 4.0,
            source: "spot 4/h".into(),
        };
        let window = notice_window(&timeline, rate, 2.0);
        assert_eq!((window.interruption_notices, window.lapsed), (1, 0));
        assert_eq!(window.saved.count, 1);
        assert!((window.saved.hours - 0.5).abs() < 1e-9);
        assert!(
            (window.saved.cost - 1.0).abs() < 1e-9,
            "half an hour of a 2-slot 4/h cluster"
        );
        assert_eq!(window.provisioning_overlap.count, 1);
        assert!((window.provisioning_overlap.hours * 3600.0 - 20.0).abs() < 1e-6);
        assert_eq!(window.provisioning_overlap.cost, 0.0);
    }
}
