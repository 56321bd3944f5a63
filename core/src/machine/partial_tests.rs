//! Partial losses: nodes reclaimed take only the attempts on them; the cluster works on.

use super::properties::chain;
use super::{Action, Event, Exit, Machine, Setup};

/// A diamond a -> (b, c) -> d on two slots, with a done and b and c running on cluster 1.
fn b_and_c_running() -> (Machine, Vec<Action>) {
    diamond_with_a_done(vec![false, false, false, true])
}

/// The diamond a -> (b, c) -> d on two slots, `checkpoint` as given, after a's attempt 1
/// exited 0 on cluster 1; with the actions that exit brought.
pub(super) fn diamond_with_a_done(checkpoint: Vec<bool>) -> (Machine, Vec<Action>) {
    a_done(diamond(checkpoint))
}

/// The diamond a -> (b, c) -> d on two slots.
fn diamond(checkpoint: Vec<bool>) -> Setup {
    let mut setup = chain(4, checkpoint);
    setup.needs = vec![vec![], vec![0], vec![0], vec![1, 2]];
    setup
}

/// `setup` started, cluster 1 up, a's attempt 1 exited 0; with the actions that exit brought.
fn a_done(setup: Setup) -> (Machine, Vec<Action>) {
    let mut machine = Machine::new(setup);
    machine.apply(Event::Started {
        committed: vec![false; 4],
        published: vec![false; 4],
    });
    machine.apply(Event::ClusterReady { generation: 1 });
    let launched = machine.apply(Event::StageExited {
        stage: 0,
        attempt: 1,
        exit: Exit::Success,
    });
    (machine, launched)
}

#[test]
fn a_node_loss_interrupts_only_the_attempt_on_it_and_runs_it_again_on_the_same_cluster() {
    let (mut machine, launched) = b_and_c_running();
    assert!(launched.contains(&Action::Launch {
        stage: 1,
        attempt: 1
    }));
    assert!(launched.contains(&Action::Launch {
        stage: 2,
        attempt: 1
    }));
    let actions = machine.apply(Event::AttemptsLost {
        generation: 1,
        attempts: vec![(1, 1)],
        elapsed: 0.0,
    });
    assert_eq!(
        actions,
        vec![Action::Launch {
            stage: 1,
            attempt: 2
        }]
    );
    let status = &machine.stages()[1];
    assert_eq!((status.interrupted, status.failures), (1, 0));
    assert_eq!(machine.stages()[2].interrupted, 0, "c ran on another node");
    assert_eq!(machine.interruptions(), 0, "the cluster was not lost");
    // The lost attempt's own end is no news; c and the new b finish the run.
    let late = machine.apply(Event::StageExited {
        stage: 1,
        attempt: 1,
        exit: Exit::Failed { code: 137 },
    });
    assert!(late.is_empty(), "{late:?}");
    for (stage, attempt) in [(2, 1), (1, 2)] {
        machine.apply(Event::StageExited {
            stage,
            attempt,
            exit: Exit::Success,
        });
    }
    assert_eq!(machine.stages()[1].failures, 0);
    assert!(machine.stages()[3].attempts == 1, "d launched once");
}

#[test]
fn a_node_loss_on_another_generation_or_an_attempt_that_ended_changes_nothing() {
    let (mut machine, _) = b_and_c_running();
    for event in [
        Event::AttemptsLost {
            generation: 7,
            attempts: vec![(1, 1)],
            elapsed: 0.0,
        },
        Event::AttemptsLost {
            generation: 1,
            attempts: vec![(1, 5), (3, 1)],
            elapsed: 0.0,
        },
    ] {
        assert!(machine.apply(event).is_empty());
    }
    assert_eq!(machine.stages()[1].interrupted, 0);
}

/// The diamond on spot with a deadline of `deadline` seconds, b and c running on cluster 1.
fn b_and_c_running_with_a_deadline(deadline: f64) -> Machine {
    let mut setup = diamond(vec![false, false, false, true]);
    setup.fallback.deadline = Some(std::time::Duration::from_secs_f64(deadline));
    a_done(setup).0
}

#[test]
fn a_node_loss_that_puts_the_deadline_at_risk_leaves_spot_for_on_demand() {
    // 10-minute stages: b, c and d are 20 minutes of work on two slots; the deadline
    // leaves room for that on spot at 10 minutes in, not at 80.
    let lose_b_at = |elapsed: f64| {
        let mut machine = b_and_c_running_with_a_deadline(2.0 * 3600.0);
        let actions = machine.apply(Event::AttemptsLost {
            generation: 1,
            attempts: vec![(1, 1)],
            elapsed,
        });
        (machine, actions)
    };
    let (_, early) = lose_b_at(600.0);
    assert!(
        !early.iter().any(|a| matches!(a, Action::Abandon { .. })),
        "{early:?}"
    );
    let (mut machine, late) = lose_b_at(4800.0);
    let abandon = late
        .iter()
        .find_map(|a| match a {
            Action::Abandon { generation, reason } => Some((*generation, reason.clone())),
            _ => None,
        })
        .expect("the run leaves the spot cluster");
    assert_eq!(abandon.0, 1);
    assert!(abandon.1.contains("deadline 2h at risk"), "{}", abandon.1);
    assert!(
        !late.iter().any(|a| matches!(a, Action::Launch { .. })),
        "nothing more is launched on the cluster it leaves: {late:?}"
    );
    // The cluster it left is reported lost: c is interrupted too, and the next cluster
    // is on demand.
    let next = machine.apply(Event::ClusterLost {
        generation: 1,
        cause: abandon.1,
        elapsed: 4800.0,
    });
    assert!(
        next.iter().any(|a| matches!(
            a,
            Action::Provision {
                market: crate::workflow::Market::OnDemand,
                ..
            }
        )),
        "{next:?}"
    );
}
