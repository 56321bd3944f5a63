//! Signals to the orchestrator. SIGINT and SIGTERM stop the run: stages get SIGTERM and a
//! grace period; a second SIGINT or SIGTERM during it ends the wait and kills them at once
//! (as nextest does). SIGUSR1, sent by `respawn interrupt`, loses the current spot cluster.

use super::Msg;
use tokio::signal::unix::{Signal, SignalKind, signal};

pub(super) struct Signals {
    interrupt: Signal,
    terminate: Signal,
    user1: Signal,
}

impl Signals {
    pub(super) fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            user1: signal(SignalKind::user_defined1())?,
        })
    }

    /// The next signal, as a message to the driver.
    pub(super) async fn next(&mut self) -> Msg {
        tokio::select! {
            _ = self.interrupt.recv() => Msg::Stop,
            _ = self.terminate.recv() => Msg::Stop,
            _ = self.user1.recv() => Msg::Interrupt,
        }
    }

    /// Resolves at the next SIGINT or SIGTERM (SIGUSR1 is not a reason to hurry).
    pub(super) async fn next_stop(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
