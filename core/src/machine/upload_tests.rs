//! A loss while a checkpoint's upload is in flight: the machine waits for the upload's end,
//! and what runs again depends on whether its COMMIT landed.

use super::properties::chain;
use super::{Action, Event, Exit, Machine};

/// Runs a chain a -> b (checkpoint) -> c (final) until b's upload is in flight.
fn persisting_b() -> Machine {
    let mut machine = Machine::new(chain(3, vec![false, true, true]));
    machine.apply(Event::Started {
        committed: vec![false; 3],
        published: vec![false; 3],
    });
    machine.apply(Event::ClusterReady { generation: 1 });
    machine.apply(Event::StageExited {
        stage: 0,
        attempt: 1,
        exit: Exit::Success,
    });
    let actions = machine.apply(Event::StageExited {
        stage: 1,
        attempt: 1,
        exit: Exit::Success,
    });
    assert!(actions.contains(&Action::Persist {
        stage: 1,
        attempt: 1
    }));
    machine
}

#[test]
fn a_loss_during_an_upload_waits_for_it_and_a_commit_that_landed_is_not_run_again() {
    let mut machine = persisting_b();
    let lost = machine.apply(Event::ClusterLost {
        generation: 1,
        cause: "test".into(),
        elapsed: 10.0,
    });
    assert!(
        lost.is_empty(),
        "nothing is launched or provisioned while the upload is in flight: {lost:?}"
    );
    let settled = machine.apply(Event::Committed {
        stage: 1,
        attempt: 1,
    });
    assert!(
        matches!(
            settled.as_slice(),
            [Action::Provision { generation: 2, .. }]
        ),
        "{settled:?}"
    );
    let ready = machine.apply(Event::ClusterReady { generation: 2 });
    assert_eq!(
        ready,
        vec![Action::Restore {
            stage: 1,
            generation: 2
        }]
    );
    let restored = machine.apply(Event::Restored {
        stage: 1,
        generation: 2,
    });
    assert_eq!(
        restored,
        vec![Action::Launch {
            stage: 2,
            attempt: 2
        }]
    );
    assert_eq!(machine.stages()[0].attempts, 1, "a is not needed again");
    assert_eq!(machine.stages()[1].attempts, 1, "b is not run again");
}

#[test]
fn a_loss_during_an_upload_that_failed_runs_the_stage_again() {
    let mut machine = persisting_b();
    machine.apply(Event::ClusterLost {
        generation: 1,
        cause: "test".into(),
        elapsed: 10.0,
    });
    let settled = machine.apply(Event::PersistFailed {
        stage: 1,
        attempt: 1,
    });
    assert!(
        matches!(
            settled.as_slice(),
            [Action::Provision { generation: 2, .. }]
        ),
        "{settled:?}"
    );
    let ready = machine.apply(Event::ClusterReady { generation: 2 });
    assert_eq!(
        ready,
        vec![Action::Launch {
            stage: 0,
            attempt: 2
        }],
        "a, then b, run again"
    );
}
