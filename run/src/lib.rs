//! respawn's run layer: everything that does I/O. The drivers ([`store`]: a local
//! directory or S3; [`cluster`]: local processes or EMR; [`ledger`]: the contracts of
//! `respawn_core::contract` read from and written to the store), the one [`read`] side
//! every command asks, the async [`driver`]
//! that executes the core's state machine with an injected [`clock`], and the [`session`]
//! (which run to start or resume, leases, claims of scheduled dates).

pub mod clock;
pub mod cluster;
pub mod driver;
pub mod host;
pub mod inspect;
pub mod ledger;
pub mod read;
pub mod session;
pub mod store;
