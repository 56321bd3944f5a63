//! Notices: what the machine saves, freezes, asks for and releases when a loss is announced.

use super::properties::{Script, chain, drive, random_dag};
use super::{Action, Event, Exit, Machine, NoticeKind, Outcome};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// A chain a -> b -> c -> d (final, checkpointed), with a and b done on cluster 1 and c
/// running: b's work-table is on the cluster only.
fn c_running(lead_write: f64) -> Machine {
    let mut setup = chain(4, vec![false, false, false, true]);
    setup.write_time = vec![lead_write; 4];
    let mut machine = Machine::new(setup);
    machine.apply(Event::Started {
        committed: vec![false; 4],
        published: vec![false; 4],
    });
    machine.apply(Event::ClusterReady { generation: 1 });
    for stage in 0..2 {
        machine.apply(Event::StageExited {
            stage,
            attempt: 1,
            exit: Exit::Success,
        });
    }
    machine
}

fn notice(kind: NoticeKind, lead: f64) -> Event {
    Event::Notice {
        generation: 1,
        kind,
        lead,
        elapsed: 1200.0,
    }
}

#[test]
fn an_interruption_notice_saves_what_a_stage_to_run_needs_and_asks_for_a_replacement() {
    let mut machine = c_running(30.0);
    let actions = machine.apply(notice(NoticeKind::Interruption, 120.0));
    assert!(
        actions.contains(&Action::Persist {
            stage: 1,
            attempt: 1
        }),
        "b is needed by c, which runs: {actions:?}"
    );
    assert!(
        !actions.contains(&Action::Persist {
            stage: 0,
            attempt: 1
        }),
        "a is needed by nothing left to run: {actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Provision { generation: 2, .. })),
        "the replacement is asked for at once: {actions:?}"
    );
    // c ends inside the window: its work-table is saved too, d does not launch there.
    let exited = machine.apply(Event::StageExited {
        stage: 2,
        attempt: 1,
        exit: Exit::Success,
    });
    assert_eq!(
        exited,
        vec![Action::Persist {
            stage: 2,
            attempt: 1
        }]
    );
    machine.apply(Event::Committed {
        stage: 1,
        attempt: 1,
    });
    machine.apply(Event::Committed {
        stage: 2,
        attempt: 1,
    });
    assert!(
        machine
            .apply(Event::ClusterReady { generation: 2 })
            .is_empty()
    );
    // At the loss the replacement, already up, takes over: nothing is provisioned again,
    // c's work-table comes back and d runs.
    let lost = machine.apply(Event::ClusterLost {
        generation: 1,
        cause: "test".into(),
        elapsed: 1320.0,
    });
    assert_eq!(
        lost,
        vec![Action::Restore {
            stage: 2,
            generation: 2
        }]
    );
    let restored = machine.apply(Event::Restored {
        stage: 2,
        generation: 2,
    });
    assert_eq!(
        restored,
        vec![Action::Launch {
            stage: 3,
            attempt: 1
        }]
    );
}

#[test]
fn a_window_too_short_for_an_upload_saves_nothing_and_still_asks_for_the_replacement() {
    let mut machine = c_running(300.0);
    let actions = machine.apply(notice(NoticeKind::Interruption, 120.0));
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Persist { .. })),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Provision { generation: 2, .. }))
    );
}

#[test]
fn a_notice_that_lapses_releases_the_replacement_and_the_cluster_works_on() {
    let mut machine = c_running(30.0);
    machine.apply(notice(NoticeKind::Interruption, 120.0));
    machine.apply(Event::Committed {
        stage: 1,
        attempt: 1,
    });
    let exited = machine.apply(Event::StageExited {
        stage: 2,
        attempt: 1,
        exit: Exit::Success,
    });
    assert!(
        !exited.iter().any(|a| matches!(a, Action::Launch { .. })),
        "{exited:?}"
    );
    machine.apply(Event::Committed {
        stage: 2,
        attempt: 1,
    });
    let lapsed = machine.apply(Event::NoticeLapsed { generation: 1 });
    assert!(
        matches!(
            lapsed.as_slice(),
            [
                Action::Release { generation: 2, .. },
                Action::Launch {
                    stage: 3,
                    attempt: 1
                }
            ]
        ),
        "{lapsed:?}"
    );
    assert_eq!(machine.generation(), 1);
}

#[test]
fn a_rebalance_recommendation_saves_only_cheap_work_tables_and_asks_for_nothing() {
    // b took 20 minutes (a and b: 1200 s to recompute); an upload of 60 s is cheap, 600 s is not.
    for (write, saved) in [(60.0, true), (600.0, false)] {
        let mut machine = c_running(write);
        let actions = machine.apply(notice(NoticeKind::Rebalance, 0.0));
        assert_eq!(
            actions,
            if saved {
                vec![Action::Persist {
                    stage: 1,
                    attempt: 1,
                }]
            } else {
                vec![]
            },
            "write {write}"
        );
        // Launches go on: the recommendation freezes nothing.
        let exited = machine.apply(Event::StageExited {
            stage: 2,
            attempt: 1,
            exit: Exit::Success,
        });
        assert!(
            exited
                .iter()
                .any(|a| matches!(a, Action::Launch { stage: 3, .. })),
            "{exited:?}"
        );
    }
}

#[test]
fn a_run_that_ends_inside_the_window_releases_the_replacement() {
    let mut setup = chain(2, vec![false, true]);
    setup.write_time = vec![10.0; 2];
    let mut machine = Machine::new(setup);
    machine.apply(Event::Started {
        committed: vec![false; 2],
        published: vec![false; 2],
    });
    machine.apply(Event::ClusterReady { generation: 1 });
    machine.apply(Event::StageExited {
        stage: 0,
        attempt: 1,
        exit: Exit::Success,
    });
    machine.apply(notice(NoticeKind::Interruption, 120.0));
    machine.apply(Event::Committed {
        stage: 0,
        attempt: 1,
    });
    machine.apply(Event::StageExited {
        stage: 1,
        attempt: 1,
        exit: Exit::Success,
    });
    let committed = machine.apply(Event::Committed {
        stage: 1,
        attempt: 1,
    });
    assert!(
        committed
            .iter()
            .any(|a| matches!(a, Action::Release { generation: 2, .. })),
        "{committed:?}"
    );
    machine.apply(Event::Published { stage: 1 });
    assert!(machine.is_finished());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random DAGs, losses announced with a notice long enough for every upload: the run
    /// succeeds, publishes every final, never launches on a warned cluster (the harness
    /// checks), and launches no more attempts than the same losses without notice.
    #[test]
    fn notices_never_cost_more_launches_and_lose_nothing(
        setup in random_dag(),
        losses in proptest::collection::btree_set(1usize..30, 0..6),
    ) {
        let n = setup.needs.len();
        let without = Script { lose_after_launch: losses.clone(), ..Script::default() };
        let with = Script { notice: Some(1e9), ..without.clone() };
        let plain = drive(&setup, &without, vec![false; n]);
        let warned = drive(&setup, &with, vec![false; n]);
        prop_assert_eq!(&warned.outcome, &Some(Outcome::Succeeded));
        let finals: BTreeSet<usize> = (0..n).filter(|&s| setup.is_final[s]).collect();
        prop_assert_eq!(warned.published.iter().copied().collect::<BTreeSet<_>>(), finals);
        prop_assert!(
            warned.launches.len() <= plain.launches.len(),
            "with notice {:?}, without {:?}", warned.launches, plain.launches
        );
    }
}
