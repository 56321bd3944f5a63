//! What a cluster's instances ran, as the cluster-released event keeps it.

use crate::workflow::Market;
use serde::{Deserialize, Serialize};

/// Instance-hours of one kind of instance (one type on one market) in one fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceUse {
    /// The fleet's name (respawn names them `primary` and `core`), else its id.
    pub fleet: String,
    /// The fleet's role as EMR names it: `MASTER`, `CORE` or `TASK`.
    pub fleet_type: String,
    #[serde(rename = "type")]
    pub instance_type: String,
    pub market: Market,
    /// How many instances of this kind the fleet provisioned.
    pub count: u32,
    /// Summed over those instances, each from its creation to its end (or the moment it
    /// was listed, for one still running).
    pub instance_hours: f64,
    /// When the first of them was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// When the last of them ended, absent while one still ran when listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}
