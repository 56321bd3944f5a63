//! Adoption: an orchestrator restarted while its cluster lives finds it by its tags and
//! attaches to the steps it finds there by name instead of submitting them again.

use super::client::again;
use super::steps::parse_step_name;
use super::{EmrClusters, EmrError, TAG_GENERATION, TAG_RUN, terminate};
use aws_sdk_emr::Client;
use aws_sdk_emr::types::{ClusterState, StepState};
use respawn_core::workflow::Market;
use std::collections::BTreeMap;

/// Cluster states in which a cluster still costs money and can be adopted.
pub const LIVE_STATES: [ClusterState; 4] = [
    ClusterState::Starting,
    ClusterState::Bootstrapping,
    ClusterState::Running,
    ClusterState::Waiting,
];

/// A live cluster of this run found by its tags.
#[derive(Clone, Debug)]
pub struct Found {
    pub id: String,
    pub market: Market,
    pub generation: u32,
}

/// A step seen on an adopted cluster.
#[derive(Clone, Debug)]
pub(super) struct SeenStep {
    pub(super) id: String,
    pub(super) attempt: u32,
    pub(super) args: Vec<String>,
}

/// What a user of `respawn clusters` sees of one cluster.
#[derive(Clone, Debug)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub state: String,
    pub tags: BTreeMap<String, String>,
    pub created: Option<String>,
}

impl EmrClusters {
    /// Finds the live clusters of this run. One is kept for adoption (the newest); any
    /// other is terminated, so that a run never has two. Returns what it did, in words.
    pub async fn prepare(&self) -> Result<Vec<String>, EmrError> {
        let mut found = find_live(&self.client, Some(&self.run_id)).await?;
        found.sort_by_key(|(f, _)| f.generation);
        let mut notes = Vec::new();
        if self.unannounced {
            notes.push(
                "no `cluster.emr.notice_queue`: EC2's interruption warnings are not read, so \
                 spot losses come unannounced (docs/aws.md, \"Spot notices\")"
                    .to_string(),
            );
        }
        let newest = found.pop();
        for (extra, _) in found {
            terminate(&self.client, &extra.id).await?;
            notes.push(format!(
                "terminated {} (an older cluster of this run that was still up)",
                extra.id
            ));
        }
        if let Some((cluster, _)) = newest {
            notes.push(format!(
                "found {} ({}) of this run still up: adopting it",
                cluster.id,
                cluster.market.as_str()
            ));
            *self.adoptable.lock().unwrap_or_else(|e| e.into_inner()) = Some(cluster);
        }
        Ok(notes)
    }

    pub(super) async fn steps_of(
        &self,
        cluster: &str,
    ) -> Result<BTreeMap<String, Vec<SeenStep>>, EmrError> {
        again(true, || self.steps_of_once(cluster)).await
    }

    async fn steps_of_once(
        &self,
        cluster: &str,
    ) -> Result<BTreeMap<String, Vec<SeenStep>>, EmrError> {
        let mut steps: BTreeMap<String, Vec<SeenStep>> = BTreeMap::new();
        let mut pages = self
            .client
            .list_steps()
            .cluster_id(cluster)
            .step_states(StepState::Pending)
            .step_states(StepState::Running)
            .step_states(StepState::Completed)
            .into_paginator()
            .items()
            .send();
        while let Some(step) = pages.next().await {
            let step = step.map_err(|e| EmrError::from_sdk("ListSteps", e))?;
            let Some((stage, attempt)) = step
                .name()
                .and_then(|name| parse_step_name(name, &self.run_id))
            else {
                continue;
            };
            steps.entry(stage).or_default().push(SeenStep {
                id: step.id().unwrap_or_default().to_string(),
                attempt,
                args: step.config().map(|c| c.args().to_vec()).unwrap_or_default(),
            });
        }
        Ok(steps)
    }
}

/// Live clusters started by respawn (of one run when given), with their tags.
pub async fn find_live(
    client: &Client,
    run_id: Option<&str>,
) -> Result<Vec<(Found, Listed)>, EmrError> {
    again(true, || find_live_once(client, run_id)).await
}

async fn find_live_once(
    client: &Client,
    run_id: Option<&str>,
) -> Result<Vec<(Found, Listed)>, EmrError> {
    let mut out = Vec::new();
    for id in live_ids(client, run_id).await? {
        let described = match client.describe_cluster().cluster_id(&id).send().await {
            Ok(described) => described,
            Err(error) => {
                let error = EmrError::from_sdk("DescribeCluster", error);
                // The orchestrator's policy only lets it see clusters tagged as respawn's.
                if error.code.as_deref() == Some("AccessDeniedException") {
                    continue;
                }
                return Err(error);
            }
        };
        let Some(cluster) = described.cluster() else {
            continue;
        };
        let tags: BTreeMap<String, String> = cluster
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect();
        match (tags.get(TAG_RUN), run_id) {
            (None, _) => continue,
            (Some(tagged), Some(run)) if tagged != run => continue,
            _ => {}
        }
        let found = Found {
            id: id.clone(),
            market: market_of(client, &id).await?,
            generation: (tags.get(TAG_GENERATION))
                .and_then(|g| g.parse().ok())
                .unwrap_or(0),
        };
        out.push((found, listed(&id, cluster, tags)));
    }
    Ok(out)
}

/// The ids of the live clusters respawn named (`respawn:<workflow>:<run>:<generation>`),
/// of run `run_id` when given.
async fn live_ids(client: &Client, run_id: Option<&str>) -> Result<Vec<String>, EmrError> {
    let mut pages = client
        .list_clusters()
        .set_cluster_states(Some(LIVE_STATES.to_vec()))
        .into_paginator()
        .items()
        .send();
    let mut ids = Vec::new();
    while let Some(summary) = pages.next().await {
        let summary = summary.map_err(|e| EmrError::from_sdk("ListClusters", e))?;
        let name = summary.name().unwrap_or_default();
        let this_run = run_id.is_none_or(|run| name.split(':').nth(2) == Some(run));
        if name.starts_with("respawn:")
            && this_run
            && let Some(id) = summary.id()
        {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}

/// Spot when one of the cluster's fleets asks for spot capacity.
async fn market_of(client: &Client, id: &str) -> Result<Market, EmrError> {
    let mut spot = false;
    let mut fleets = client
        .list_instance_fleets()
        .cluster_id(id)
        .into_paginator()
        .items()
        .send();
    while let Some(fleet) = fleets.next().await {
        let fleet = fleet.map_err(|e| EmrError::from_sdk("ListInstanceFleets", e))?;
        spot |= fleet.target_spot_capacity().unwrap_or(0) > 0;
    }
    Ok(if spot { Market::Spot } else { Market::OnDemand })
}

/// What `respawn clusters` shows of a cluster.
fn listed(
    id: &str,
    cluster: &aws_sdk_emr::types::Cluster,
    tags: BTreeMap<String, String>,
) -> Listed {
    let status = cluster.status();
    Listed {
        id: id.to_string(),
        name: cluster.name().unwrap_or_default().to_string(),
        state: (status.and_then(|s| s.state()))
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        created: (status.and_then(|s| s.timeline()))
            .and_then(|t| t.creation_date_time())
            .and_then(|t| {
                t.fmt(aws_sdk_emr::primitives::DateTimeFormat::DateTime)
                    .ok()
            }),
        tags,
    }
}
