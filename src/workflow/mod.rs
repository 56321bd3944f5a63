//! The workflow layer: workflow files to a validated [`Workflow`], with every problem located.

pub mod diagnostic;
pub mod model;
mod read;
pub mod store_url;
pub mod template;
pub mod units;
pub mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use model::*;
pub use read::{check_name, load, parse};
pub use store_url::StoreUrl;
