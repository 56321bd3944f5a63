//! The scheduler's decisions from date states alone: no store, no clock.

use super::*;
use respawn_core::plan::calendar::Interval;

fn day(n: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_780_000_000 + n * 86_400).unwrap()
}

fn date(n: i64, state: DateState) -> DateInfo {
    DateInfo {
        batch: format!("d{n:02}"),
        logical_date: day(n).to_string(),
        state,
        interval: Interval {
            start: day(n),
            end: day(n + 1),
        },
        claim: None,
        publish_by: None,
        late: false,
    }
}

fn run(id: &str) -> String {
    id.to_string()
}

/// The batch and action of each plan, in order.
fn decided(plans: &[DatePlan]) -> Vec<(String, Action)> {
    plans
        .iter()
        .map(|p| (p.batch.clone(), p.action.clone()))
        .collect()
}

#[test]
fn a_tick_runs_the_dates_it_took_up_that_never_ran_and_leaves_the_others() {
    let dates = vec![
        date(1, DateState::Missing),
        date(2, DateState::Succeeded { run_id: run("r2") }),
        date(3, DateState::Missing),
        date(
            4,
            DateState::Failed {
                run_id: run("r4"),
                check: None,
            },
        ),
    ];
    // Dates 3 and 4 are due since the watermark; 1 and 2 are older dates read again.
    let decision = tick(dates, |d| d.interval.start >= day(3));
    assert_eq!(
        decided(&decision.plans),
        vec![
            ("d03".into(), Action::Run),
            ("d04".into(), Action::Failed { run_id: run("r4") }),
        ]
    );
    assert_eq!(decision.done, 2);
    assert_eq!(decision.opened, ["d03"]);
    assert_eq!(
        decision.finished,
        ["d01", "d02", "d04"],
        "failed dates leave the open list"
    );
}

#[test]
fn a_tick_resumes_stopped_rebuilds_incomplete_and_leaves_running_failed_and_stale_dates() {
    let dates = vec![
        date(1, DateState::Stopped { run_id: run("r1") }),
        date(
            2,
            DateState::Incomplete {
                run_id: run("r2"),
                stage: "load".into(),
            },
        ),
        date(
            3,
            DateState::Running {
                run_id: run("r3"),
                holder: "pid 7".into(),
            },
        ),
        date(
            4,
            DateState::Failed {
                run_id: run("r4"),
                check: None,
            },
        ),
        date(
            5,
            DateState::Stale {
                run_id: run("r5"),
                stage: "load".into(),
            },
        ),
        date(6, DateState::Missed),
    ];
    let decision = tick(dates, |_| true);
    let (plans, done) = (decision.plans, decision.done);
    assert_eq!(
        decided(&plans),
        vec![
            ("d01".into(), Action::Resume { run_id: run("r1") }),
            ("d02".into(), Action::Rebuild { run_id: run("r2") }),
            (
                "d03".into(),
                Action::Running {
                    holder: "pid 7".into()
                }
            ),
            ("d04".into(), Action::Failed { run_id: run("r4") }),
        ]
    );
    assert_eq!(
        done, 2,
        "the stale and the missed dates are done for a tick"
    );
}

#[test]
fn a_claim_whose_claimer_died_is_taken_over_and_a_live_one_is_left() {
    let dates = vec![
        date(
            1,
            DateState::Claimed {
                holder: "pid 1".into(),
                stale: true,
            },
        ),
        date(
            2,
            DateState::Claimed {
                holder: "pid 2".into(),
                stale: false,
            },
        ),
    ];
    let plans = tick(dates, |_| false).plans;
    assert_eq!(
        decided(&plans),
        vec![
            (
                "d01".into(),
                Action::Retake {
                    holder: "pid 1".into()
                }
            ),
            (
                "d02".into(),
                Action::Claimed {
                    holder: "pid 2".into()
                }
            ),
        ]
    );
}

#[test]
fn a_backfill_selects_dates_by_mode_and_leaves_busy_ones_whatever_the_mode() {
    let stopped = DateState::Stopped { run_id: run("r") };
    let failed = DateState::Failed {
        run_id: run("r"),
        check: None,
    };
    let succeeded = DateState::Succeeded { run_id: run("r") };
    let stale = DateState::Stale {
        run_id: run("r"),
        stage: "s".into(),
    };
    let running = DateState::Running {
        run_id: run("r"),
        holder: "pid 9".into(),
    };
    let busy = Step::Busy {
        holder: "pid 9".into(),
    };
    let cases = [
        (&DateState::Missing, Reprocess::Missing, Step::Run),
        (&DateState::Missed, Reprocess::Missing, Step::Run),
        (&stopped, Reprocess::Missing, Step::Run),
        (&failed, Reprocess::Missing, Step::Run),
        (&succeeded, Reprocess::Missing, Step::Skip),
        (&stale, Reprocess::Missing, Step::Skip),
        (&failed, Reprocess::Failed, Step::Run),
        (&stopped, Reprocess::Failed, Step::Skip),
        (&stale, Reprocess::Stale, Step::Run),
        (&succeeded, Reprocess::Stale, Step::Skip),
        (&succeeded, Reprocess::All, Step::Replace),
        (&stale, Reprocess::All, Step::Replace),
        (&DateState::Missing, Reprocess::All, Step::Run),
        (&running, Reprocess::All, busy.clone()),
        (&running, Reprocess::Missing, busy),
    ];
    for (state, mode, expected) in cases {
        assert_eq!(
            backfill_step(state, mode),
            expected,
            "{state:?} with {mode:?}"
        );
    }
}
