//! What a cluster's fleets actually provisioned: every instance EMR lists for it
//! (ListInstances: fleet, instance type, market, timeline), named by its fleet
//! (ListInstanceFleets), summed per fleet, type and market.

use super::EmrError;
use super::cluster::EmrClusters;
use crate::cluster::usage::{ListedInstance, Usage, now_seconds, usage};
use aws_sdk_emr::types::{Instance, MarketType};
use respawn_core::workflow::Market;
use std::collections::{BTreeMap, BTreeSet};

impl EmrClusters {
    /// The EC2 ids of a cluster's instances, whatever their state.
    pub(super) async fn ec2_ids(&self, id: &str) -> Result<BTreeSet<String>, EmrError> {
        let listed = super::client::again(true, || self.instances(id)).await?;
        Ok(listed
            .iter()
            .filter_map(|i| i.ec2_instance_id().map(String::from))
            .collect())
    }

    /// Every instance EMR lists for a cluster (ListInstances, all pages).
    async fn instances(&self, id: &str) -> Result<Vec<Instance>, EmrError> {
        let mut listed = Vec::new();
        let mut pages = self
            .client
            .list_instances()
            .cluster_id(id)
            .into_paginator()
            .items()
            .send();
        while let Some(instance) = pages.next().await {
            listed.push(instance.map_err(|e| EmrError::from_sdk("ListInstances", e))?);
        }
        Ok(listed)
    }

    /// The instance-hours of a cluster's instances so far, per fleet, type and market.
    pub(super) async fn usage(&self, id: &str) -> Result<Usage, EmrError> {
        super::client::again(true, || self.usage_once(id)).await
    }

    async fn usage_once(&self, id: &str) -> Result<Usage, EmrError> {
        // Fleet id to (name, type): respawn names its fleets `primary` and `core`.
        let mut fleets: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut pages = self
            .client
            .list_instance_fleets()
            .cluster_id(id)
            .into_paginator()
            .items()
            .send();
        while let Some(fleet) = pages.next().await {
            let fleet = fleet.map_err(|e| EmrError::from_sdk("ListInstanceFleets", e))?;
            let fleet_id = fleet.id().unwrap_or_default().to_string();
            let name = fleet.name().unwrap_or(&fleet_id).to_string();
            let kind = fleet
                .instance_fleet_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default();
            fleets.insert(fleet_id, (name, kind));
        }
        let mut listed = Vec::new();
        for instance in self.instances(id).await? {
            let fleet_id = instance
                .instance_fleet_id()
                .or(instance.instance_group_id())
                .unwrap_or_default();
            let (fleet, fleet_type) = fleets
                .get(fleet_id)
                .cloned()
                .unwrap_or_else(|| (fleet_id.to_string(), String::new()));
            let timeline = instance.status().and_then(|s| s.timeline());
            let seconds =
                |t: Option<&aws_sdk_emr::primitives::DateTime>| t.map(|t| t.as_secs_f64());
            listed.push(ListedInstance {
                fleet,
                fleet_type,
                instance_type: instance.instance_type().unwrap_or_default().to_string(),
                market: match instance.market() {
                    Some(MarketType::Spot) => Market::Spot,
                    _ => Market::OnDemand,
                },
                created: seconds(timeline.and_then(|t| t.creation_date_time())),
                ready: seconds(timeline.and_then(|t| t.ready_date_time())),
                ended: seconds(timeline.and_then(|t| t.end_date_time())),
            });
        }
        Ok(usage(&listed, now_seconds()))
    }
}
