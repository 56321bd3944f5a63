//! Checks: a stage whose output a check refused is not retried, and the run fails once
//! what runs has ended, without committing or publishing what was refused.

use super::partial_tests::diamond_with_a_done;
use super::{Action, Event, Exit, Outcome};

#[test]
fn a_refused_output_is_not_retried_and_fails_the_run_after_the_running_stages_end() {
    let (mut machine, persist) = diamond_with_a_done(vec![true, false, false, true]);
    assert!(persist.contains(&Action::Persist {
        stage: 0,
        attempt: 1
    }));
    let refused = machine.apply(Event::StageExited {
        stage: 1,
        attempt: 1,
        exit: Exit::Refused { code: 3 },
    });
    assert!(
        !refused.iter().any(|a| matches!(
            a,
            Action::RetryAfter { .. } | Action::Persist { stage: 1, .. }
        )),
        "{refused:?}"
    );
    // c still runs (it ran beside b): the run ends once it has and a's checkpoint upload
    // has landed; d never starts.
    let last = machine.apply(Event::StageExited {
        stage: 2,
        attempt: 1,
        exit: Exit::Success,
    });
    assert!(!last.iter().any(|a| matches!(a, Action::Launch { .. })));
    // ... and a's checkpoint upload has landed.
    let last = machine.apply(Event::Committed {
        stage: 0,
        attempt: 1,
    });
    assert_eq!(
        last.last(),
        Some(&Action::Finish(Outcome::Failed {
            stage: 1,
            code: 3,
            attempts: 1
        }))
    );
    assert_eq!(machine.stages()[1].attempts, 1);
    assert!(!machine.stages()[1].committed && !machine.stages()[3].published);
}
