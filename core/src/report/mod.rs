//! Reports: a run's stored record and events, the workflow it ran and its prices (`plan::prices`), turned
//! into a timeline, a cost with its waste, and self-contained HTML pages (`respawn report`,
//! `respawn cost`, `respawn ui`). Pure: the command line reads the store and hands the
//! objects over; nothing here does I/O or reads the clock.

mod chart;
pub mod cost;
pub mod critical;
pub mod instance_cost;
mod markers;
pub mod on_demand;
pub mod page;
pub mod render;
pub mod timeline;
pub mod window;

pub use cost::{Cost, cost};
pub use page::{ReportInput, RunSummary, page};
pub use timeline::{Timeline, parse_events, timeline};
