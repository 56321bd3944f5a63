//! Signals to the orchestrator. SIGINT and SIGTERM stop the run: stages get SIGTERM and a
//! grace period; a second SIGINT or SIGTERM during it ends the wait and kills them at once
//! (as nextest does). SIGUSR1, sent by `respawn interrupt`, loses the current spot cluster.
//!
//! A stop is also remembered for the whole process ([`request_stop`]): a process that runs
//! several runs one after another (`respawn tick`, `respawn schedule`) must stop a run that
//! starts after the signal came, which its own listener, made later, never hears.

use super::Msg;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use tokio::signal::unix::{Signal, SignalKind, signal};

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

/// SIGUSR1s that came while no run listened, and how many runs listen.
static PENDING_INTERRUPTS: AtomicU32 = AtomicU32::new(0);
static RUNS_LISTENING: AtomicU32 = AtomicU32::new(0);

/// Catches SIGUSR1 from now on (its default action kills the process). An orchestrator
/// calls it first thing: its lease names it to `respawn interrupt` well before its run
/// listens (listing hundreds of run records takes seconds). An interrupt that came while
/// no run listened goes to the next run that listens. Needs a tokio runtime.
pub fn catch_interrupts_early() -> std::io::Result<()> {
    let mut user1 = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        while user1.recv().await.is_some() {
            if RUNS_LISTENING.load(Ordering::SeqCst) == 0 {
                PENDING_INTERRUPTS.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    Ok(())
}

/// Records that this process was asked to stop (SIGINT or SIGTERM): every run listening
/// for signals stops, including those that start later.
pub fn request_stop() {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether this process was asked to stop.
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::SeqCst)
}

pub(super) struct Signals {
    interrupt: Signal,
    terminate: Signal,
    user1: Signal,
    /// Whether this run has stopped already (a second signal then hurries it).
    stopping: bool,
}

impl Signals {
    pub(super) fn new() -> std::io::Result<Signals> {
        let signals = Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            user1: signal(SignalKind::user_defined1())?,
            stopping: false,
        };
        RUNS_LISTENING.fetch_add(1, Ordering::SeqCst);
        Ok(signals)
    }

    /// The next signal, as a message to the driver; a stop requested before this run
    /// listened comes first.
    pub(super) async fn next(&mut self) -> Msg {
        if !self.stopping && stop_requested() {
            self.stopping = true;
            return Msg::Stop;
        }
        if PENDING_INTERRUPTS
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Msg::Interrupt;
        }
        let msg = tokio::select! {
            _ = self.interrupt.recv() => Msg::Stop,
            _ = self.terminate.recv() => Msg::Stop,
            _ = self.user1.recv() => Msg::Interrupt,
        };
        if matches!(msg, Msg::Stop) {
            request_stop();
            self.stopping = true;
        }
        msg
    }

    /// Resolves at the next SIGINT or SIGTERM (SIGUSR1 is not a reason to hurry).
    pub(super) async fn next_stop(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        RUNS_LISTENING.fetch_sub(1, Ordering::SeqCst);
    }
}
