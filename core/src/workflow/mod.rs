//! The workflow layer: workflow files to a validated [`Workflow`], with every problem located.
//! Pure, but for [`load`] (`load.rs`), which reads the file.

pub mod capacity;
pub mod defaults;
pub mod diagnostic;
pub mod graph;
mod load;
pub mod model;
pub mod names;
pub mod overrides;
mod read;
pub mod schedule;
pub mod store_url;
pub mod template;
pub mod units;
pub mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use load::{MAX_TRACE_BYTES, load};
pub use model::*;
pub use read::{check_name, parse};
pub use store_url::StoreUrl;
