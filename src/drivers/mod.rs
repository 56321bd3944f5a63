//! The only layer that does I/O: the durable [`store`] and the protocol kept in it
//! ([`ledger`]: run records, events, COMMIT manifests, published outputs and the lease),
//! and the [`cluster`] providers where stages run.

pub mod cluster;
pub mod host;
pub mod ledger;
pub mod store;
