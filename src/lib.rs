//! respawn: run long data workflows on spot capacity without losing work.
//!
//! The crates are the layers, top to bottom: this one (the [`cli`]), `respawn_run` (the
//! drivers, the driver of the state machine and the session) and `respawn_core` (pure:
//! the workflow model, the contracts, the planner, the machine, the simulator, reports).

pub mod cli;
