//! respawn's run layer: everything that does I/O. The drivers ([`store`]: a local
//! directory or S3; [`cluster`]: local processes or EMR; [`ledger`]: the contracts of
//! `respawn_core::contract` read from and written to the store), the one [`read`] side
//! every command asks, the async [`driver`]
//! that executes the core's state machine with an injected [`clock`], and the [`session`]
//! (which run to start or resume, leases, claims of scheduled dates), which tells the
//! workflow's [`alerts`] destinations what they should hear of.

pub mod alerts;
pub mod clock;
pub mod cluster;
pub mod driver;
pub mod host;
pub mod inspect;
pub mod ledger;
pub mod read;
pub mod session;
pub mod store;

/// Threads for blocking file work (checksums, local copies, directory walks). Tokio's
/// default (512) is reached by a work-table of many small files, as every short task that
/// finds no idle thread starts one; each thread keeps its own allocator heap.
const BLOCKING_THREADS: usize = 16;

/// The async runtime every command that does I/O runs on: two workers (the machine's
/// cores) and at most [`BLOCKING_THREADS`] threads for blocking file work.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
}
