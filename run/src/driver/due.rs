//! A date's publish-by time (`schedule.publish_by`): `late` when it passes while a final
//! output is still to be published. A run that starts after it is late at once.

use super::{Driver, Msg};
use crate::ledger::timestamp;
use respawn_core::contract::event::RunEvent;
use std::time::{Duration, SystemTime};

impl Driver {
    /// Wakes the driver with [`Msg::Late`] at `due`.
    pub(super) fn watch_publish_due(&mut self, due: SystemTime) {
        let wait = due
            .duration_since(self.clock.now())
            .unwrap_or(Duration::ZERO);
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = tx.send(Msg::Late { due });
        });
    }

    /// The publish-by time passed: late, unless every final output is published.
    pub(super) fn on_late(&mut self, due: SystemTime) {
        let stages = self.machine.stages();
        let unpublished = (self.workflow.stages.iter())
            .zip(stages)
            .any(|(spec, status)| spec.is_final && !status.published);
        if unpublished && !self.machine.is_finished() {
            self.emit(RunEvent::Late {
                due: timestamp(due),
            });
        }
    }
}
