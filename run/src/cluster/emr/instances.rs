//! What a cluster's fleets actually provisioned: every instance EMR lists for it
//! (ListInstances: fleet, instance type, market, timeline), named by its fleet
//! (ListInstanceFleets), summed per fleet, type and market.

use super::EmrError;
use super::cluster::EmrClusters;
use crate::cluster::usage::{ListedInstance, Usage, now_seconds, usage};
use aws_sdk_emr::types::{Instance, InstanceState, InstanceStateChangeReasonCode, MarketType};
use respawn_core::workflow::Market;
use std::collections::{BTreeMap, BTreeSet};

impl EmrClusters {
    /// The EC2 ids of a cluster's instances, whatever their state, with the type of the
    /// fleet each is in (`MASTER`, `CORE` or `TASK`).
    pub(super) async fn ec2_ids(&self, id: &str) -> Result<BTreeMap<String, String>, EmrError> {
        let fleets = super::client::again(true, || self.fleets(id)).await?;
        let listed = super::client::again(true, || self.instances(id)).await?;
        Ok(listed
            .iter()
            .filter_map(|i| {
                let fleet = i.instance_fleet_id().or(i.instance_group_id())?;
                let kind = fleets.get(fleet).map(|f| f.1.clone()).unwrap_or_default();
                Some((i.ec2_instance_id()?.to_string(), kind))
            })
            .collect())
    }

    /// The EC2 ids of a cluster's instances that ended while it lived, at or after
    /// `since` (seconds since the epoch), and how many of its instances still run.
    pub(super) async fn reclaimed_since(
        &self,
        id: &str,
        since: f64,
    ) -> Result<(BTreeSet<String>, u32), EmrError> {
        let listed = super::client::again(true, || self.instances(id)).await?;
        let mut ended = BTreeSet::new();
        let mut running = 0;
        for instance in &listed {
            let status = instance.status();
            match status.and_then(|s| s.state()) {
                Some(InstanceState::Running) => running += 1,
                Some(InstanceState::Terminated) => {
                    let code = status
                        .and_then(|s| s.state_change_reason())
                        .and_then(|r| r.code());
                    let at = status
                        .and_then(|s| s.timeline())
                        .and_then(|t| t.end_date_time())
                        .map(|t| t.as_secs_f64());
                    if code != Some(&InstanceStateChangeReasonCode::ClusterTerminated)
                        && at.is_some_and(|at| at >= since)
                        && let Some(ec2) = instance.ec2_instance_id()
                    {
                        ended.insert(ec2.to_string());
                    }
                }
                _ => {}
            }
        }
        Ok((ended, running))
    }

    /// Fleet (or group) id to its name and type.
    async fn fleets(&self, id: &str) -> Result<BTreeMap<String, (String, String)>, EmrError> {
        let mut fleets = BTreeMap::new();
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
        Ok(fleets)
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
        let fleets = self.fleets(id).await?;
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
