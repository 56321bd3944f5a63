//! From the located YAML tree to a validated [`Workflow`](super::Workflow), collecting every
//! problem: `reader.rs` is the toolkit (typed accessors that report and go on), and each
//! section of the file has its own reader.

mod checkpoint;
mod cluster;
mod emr;
mod reader;
mod stage;
mod stages;
mod top;

pub use reader::check_name;
pub use top::parse;
