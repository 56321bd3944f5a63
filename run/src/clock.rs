//! Wall time, injected. The driver and the session layer stamp events, records and leases
//! with [`Clock::now`]; durations and timers use tokio's clock, which tests can pause.
//! Nothing else in the engine reads the time of day.

use std::time::{Duration, SystemTime};

pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;

    /// [`Clock::now`] as a timestamp, for the schedule's calendar (the epoch if the clock
    /// is out of jiff's range, which no real clock is).
    fn timestamp(&self) -> jiff::Timestamp {
        jiff::Timestamp::try_from(self.now()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }
}

/// The machine's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock stopped at one time: what a read of many dates at once judges leases by, so
/// that every date is judged at the same instant.
#[derive(Clone, Copy, Debug)]
pub struct Frozen(pub SystemTime);

impl Clock for Frozen {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// A clock that starts at a chosen time and advances with tokio's clock (so a paused tokio
/// runtime stops it too): runs in tests get the same timestamps whenever they run.
#[derive(Clone, Debug)]
pub struct TestClock {
    start: SystemTime,
    since: tokio::time::Instant,
}

impl TestClock {
    /// Starts at `unix_seconds` after the epoch, now.
    pub fn starting_at(unix_seconds: u64) -> TestClock {
        TestClock {
            start: SystemTime::UNIX_EPOCH + Duration::from_secs(unix_seconds),
            since: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        self.start + self.since.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_test_clock_moves_with_tokio_time_only() {
        let clock = TestClock::starting_at(1_800_000_000);
        let first = clock.now();
        assert_eq!(
            first,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
        );
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(
            clock.now().duration_since(first).unwrap(),
            Duration::from_secs(90)
        );
    }
}
