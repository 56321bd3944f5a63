//! [`EmrClusters`], the EMR side of one run, and [`EmrCluster`], one cluster of it:
//! starting or adopting a cluster, launching attempts as steps, terminating it.

use super::adopt::{Found, SeenStep};
use super::client::again;
use super::notices::{NoticeQueue, listen};
use super::watch::{Placement, watch};
use super::zones::Zones;
use super::{EmrError, ProvisionError, step_args, step_name};
use crate::cluster::{ClusterNews, Notify, StepEnd, Usage};
use aws_sdk_emr::Client;
use respawn_core::workflow::{EmrSpec, Market, StageId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The EMR side of one run.
pub struct EmrClusters {
    pub(super) client: Client,
    pub(super) spec: EmrSpec,
    pub(super) workflow: String,
    pub(super) run_id: String,
    pub(super) batch: String,
    pub(super) store_url: String,
    pub(super) poll: Duration,
    /// A live cluster of this run found at start, adopted by the first provision.
    pub(super) adoptable: Mutex<Option<Found>>,
    /// Where EC2's spot warnings arrive, when configured.
    pub(super) notices: Option<NoticeQueue>,
    /// Spot without a notice queue: the first provision says so once.
    pub(super) unannounced: bool,
    /// Subnets' zones, and where capacity was reclaimed.
    pub(super) zones: Mutex<Zones>,
}

impl EmrClusters {
    pub fn new(
        client: Client,
        spec: EmrSpec,
        workflow: &str,
        run_id: &str,
        batch: &str,
        store_url: &str,
        poll: Duration,
    ) -> EmrClusters {
        EmrClusters {
            client,
            spec,
            workflow: workflow.into(),
            run_id: run_id.into(),
            batch: batch.into(),
            store_url: store_url.into(),
            poll,
            adoptable: Mutex::new(None),
            notices: None,
            unannounced: false,
            zones: Mutex::new(Zones::default()),
        }
    }

    /// Listens for EC2's spot warnings on `queue` for every spot cluster of the run; a
    /// run that may use spot without a queue says so when it starts.
    pub fn with_notices(mut self, queue: Option<NoticeQueue>, spot: bool) -> EmrClusters {
        self.unannounced = spot && queue.is_none();
        self.notices = queue;
        self
    }

    pub fn spec(&self) -> &EmrSpec {
        &self.spec
    }

    /// A cluster for `generation`: the adoptable one when its market fits, else a new
    /// one, waited for until it is up. Starts its watcher.
    pub async fn create(
        self: &Arc<Self>,
        generation: u32,
        market: Market,
        notify: Notify,
    ) -> Result<EmrCluster, ProvisionError> {
        let adopt = self
            .adoptable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let (id, market, steps) = match adopt {
            Some(found) if found.market == market => {
                let steps = self
                    .steps_of(&found.id)
                    .await
                    .map_err(|e| ProvisionError::Broken(e.to_string()))?;
                (found.id, found.market, steps)
            }
            other => {
                if let Some(found) = other {
                    terminate(&self.client, &found.id)
                        .await
                        .map_err(|e| ProvisionError::Broken(e.to_string()))?;
                }
                let (subnets, note) = self.zones.lock().unwrap_or_else(|e| e.into_inner()).choose(
                    &self.spec.subnets,
                    self.spec.avoid_reclaimed_zone,
                    std::time::Instant::now(),
                );
                if let Some(note) = note {
                    notify(ClusterNews::Note {
                        message: format!("cluster {generation}: {note}"),
                    });
                }
                let id = self
                    .start(generation, market, subnets)
                    .await
                    .map_err(|e| ProvisionError::Broken(e.to_string()))?;
                (id, market, BTreeMap::new())
            }
        };
        let placement = match self.wait_until_up(&id).await {
            Ok(placement) => placement,
            Err(error) => return Err(self.not_up(&id, error).await),
        };
        let watched = Arc::new(Mutex::new(BTreeMap::new()));
        let listener = (self.notices.is_some() && market == Market::Spot)
            .then(|| tokio::spawn(listen(self.clone(), id.clone(), generation, notify.clone())));
        let watcher = tokio::spawn(watch(
            self.clone(),
            id.clone(),
            generation,
            watched.clone(),
            notify,
        ));
        Ok(EmrCluster {
            id,
            generation,
            market,
            placement,
            adopted: steps,
            watched,
            watcher,
            listener,
            owner: self.clone(),
        })
    }
}

impl EmrClusters {
    /// What a cluster that did not come up is: lost (its zone avoided a while, and what
    /// its instances used before the loss kept, since it was billed) or broken.
    async fn not_up(&self, id: &str, error: ProvisionError) -> ProvisionError {
        match error {
            ProvisionError::Lost { cause, .. } => {
                self.reclaimed_in(id).await;
                let released = match self.usage(id).await {
                    Ok(usage) => Some((id.to_string(), usage)),
                    Err(error) => {
                        tracing::warn!("{error}");
                        None
                    }
                };
                ProvisionError::Lost { cause, released }
            }
            broken => broken,
        }
    }
}

/// Requests the end of a cluster (already ended is fine).
pub async fn terminate(client: &Client, id: &str) -> Result<(), EmrError> {
    again(true, || terminate_once(client, id)).await
}

async fn terminate_once(client: &Client, id: &str) -> Result<(), EmrError> {
    client
        .terminate_job_flows()
        .job_flow_ids(id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| EmrError::from_sdk("TerminateJobFlows", e))
}

/// One EMR cluster of the run.
pub struct EmrCluster {
    pub id: String,
    pub generation: u32,
    pub market: Market,
    /// Its zone and subnet, as EMR told them when it was up.
    pub placement: Placement,
    /// Steps found on the cluster when it was adopted, by stage.
    adopted: BTreeMap<String, Vec<SeenStep>>,
    /// Steps the watcher follows: step id to (stage, attempt).
    watched: Arc<Mutex<BTreeMap<String, (StageId, u32)>>>,
    watcher: tokio::task::JoinHandle<()>,
    /// Reads the notice queue for this cluster's instances (spot, with a queue).
    listener: Option<tokio::task::JoinHandle<()>>,
    owner: Arc<EmrClusters>,
}

impl EmrCluster {
    /// The attempt of the newest step of `stage` found on an adopted cluster.
    pub fn adopted_attempt(&self, stage: &str) -> Option<u32> {
        self.adopted
            .get(stage)
            .and_then(|steps| steps.iter().map(|s| s.attempt).max())
    }

    /// Whether a step found at adoption is attempt `attempt` of `stage` running `line`.
    pub fn adopted_runs(&self, stage: &str, attempt: u32, line: &str) -> bool {
        let args = step_args(line);
        self.adopted
            .get(stage)
            .is_some_and(|steps| steps.iter().any(|s| s.attempt == attempt && s.args == args))
    }

    /// How a persist task saves this cluster's ephemeral work-tables to the store.
    pub fn saver(&self) -> super::Saver {
        super::Saver {
            owner: self.owner.clone(),
            cluster: self.id.clone(),
        }
    }

    /// Where an ephemeral work-table goes on this cluster.
    pub fn hdfs_output(&self, stage: &str, attempt: u32) -> String {
        format!(
            "hdfs://{}/{}/{stage}/{attempt}",
            self.owner.spec.hdfs_dir, self.owner.run_id
        )
    }

    /// Runs an attempt as a step, or attaches to the same step found on an adopted
    /// cluster; the watcher reports its end.
    pub fn launch(&mut self, stage: StageId, name: &str, attempt: u32, line: &str, notify: Notify) {
        let args = step_args(line);
        let existing = self.adopted.get_mut(name).and_then(|steps| {
            let at = steps
                .iter()
                .position(|s| s.attempt == attempt && s.args == args)?;
            Some(steps.remove(at))
        });
        let generation = self.generation;
        if let Some(step) = existing {
            self.watched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(step.id, (stage, attempt));
            return;
        }
        let owner = self.owner.clone();
        let cluster = self.id.clone();
        let watched = self.watched.clone();
        let step_name = step_name(&owner.run_id, name, attempt);
        let line = line.to_string();
        tokio::spawn(async move {
            match owner.submit(&cluster, &step_name, &line).await {
                Ok(step) => {
                    watched
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(step, (stage, attempt));
                }
                Err(error) => notify(ClusterNews::Exited {
                    generation,
                    stage,
                    attempt,
                    end: StepEnd::Failed {
                        code: 1,
                        detail: Some(format!("respawn could not add the step: {error}")),
                    },
                }),
            }
        });
    }

    /// Ends the cluster; returns its instances' hours when EMR lists them.
    pub async fn terminate(self) -> Option<Usage> {
        self.stop_watching();
        if let Err(error) = terminate(&self.owner.client, &self.id).await {
            tracing::warn!("{error}");
        }
        match self.owner.usage(&self.id).await {
            Ok(usage) => Some(usage),
            Err(error) => {
                tracing::warn!("{error}");
                None
            }
        }
    }

    /// Leaves the cluster running (another orchestrator owns the run now).
    pub fn abandon(self) {
        self.stop_watching();
    }

    fn stop_watching(&self) {
        self.watcher.abort();
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}
