//! The transfers, each in a task of its own that reports back through the channel:
//! persist (upload a work-table and create its COMMIT), restore (bring a checkpoint into a
//! new cluster), publish (copy a committed final output to `outputs/` inside the store,
//! `_SUCCESS` last).

use super::command::crash_point;
use super::{Driver, Msg};
use crate::clock::Clock;
use crate::cluster::emr::Saver;
use crate::cluster::{Cluster, Output};
use crate::ledger::Layout;
use crate::ledger::{
    CommitManifest, CommitOutcome, Committed, PartWriter, commit, commit_parts, publish_output,
    timestamp,
};
use crate::store::{
    AnyStore, Store, StoreError, TransferOptions, download_dir, sum_prefix, upload_dir,
};
use respawn_core::contract::event::RunEvent;
use respawn_core::workflow::StageId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

impl Driver {
    pub(super) fn persist(&mut self, stage: StageId, machine_attempt: u32) {
        let attempt = self.base_attempt[stage] + machine_attempt;
        let Some(generation) = self.cluster.as_ref().map(Cluster::generation) else {
            let _ = self.tx.send(Msg::Persisted {
                generation: 0,
                stage,
                attempt,
                result: Err(StoreError::Io {
                    object: "the lost cluster".into(),
                    source: std::io::Error::other("the cluster is gone"),
                }),
            });
            return;
        };
        let Some((output, _)) = self.local[stage].clone() else {
            return;
        };
        let name = self.workflow.stages[stage].name.clone();
        let job = PersistJob {
            store: self.store.clone(),
            layout: self.layout.clone(),
            transfer: self.settings.transfer.clone(),
            clock: self.clock.clone(),
            saver: self.cluster.as_ref().and_then(Cluster::saver),
            scratch: self.clusters.scratch().staging_dir(&format!("{name}.sum")),
            manifest: self.manifest_of(stage, attempt),
            output,
        };
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            let result = job.run().await;
            let _ = tx.send(Msg::Persisted {
                generation,
                stage,
                attempt,
                result,
            });
        });
    }

    /// The COMMIT of an attempt before its files are listed: the work-tables it read
    /// (the ids of its inputs on this cluster) and its stage's fingerprint.
    fn manifest_of(&self, stage: StageId, attempt: u32) -> CommitManifest {
        let spec = &self.workflow.stages[stage];
        let inputs: BTreeMap<String, String> = spec
            .needs
            .iter()
            .filter_map(|&i| {
                self.local[i]
                    .as_ref()
                    .map(|(_, id)| (self.workflow.stages[i].name.clone(), id.clone()))
            })
            .collect();
        CommitManifest {
            format: crate::ledger::FORMAT,
            workflow: self.workflow.name.clone(),
            run_id: self.run_id.clone(),
            stage: spec.name.clone(),
            attempt,
            fingerprint: self.fingerprints[stage].clone(),
            inputs,
            files: Vec::new(),
            parts: Vec::new(),
            committed_at: String::new(),
        }
    }

    pub(super) fn restore(&mut self, stage: StageId, generation: u32) {
        let Some(durable) = self.durable[stage].clone() else {
            return;
        };
        let Some(cluster) = self.cluster.as_ref() else {
            return;
        };
        let name = self.workflow.stages[stage].name.clone();
        let dir = cluster.restore_dir(&name);
        let from = self.store.locate(&durable.prefix);
        self.emit(RunEvent::Restore {
            stage: name,
            generation,
            from,
        });
        let Some(dir) = dir else {
            // The cluster reads the checkpoint from the store where it is.
            let _ = self.tx.send(Msg::Restored {
                generation,
                stage,
                result: Ok((0, Duration::ZERO)),
            });
            return;
        };
        let store = self.store.clone();
        let layout = self.layout.clone();
        let transfer = self.settings.transfer.clone();
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            let began = Instant::now();
            let result = async {
                empty_dir(&dir).await?;
                let mut chunks = durable.files(&store, &layout).await?.chunks();
                let mut bytes = 0;
                while let Some(files) = chunks.next(&store).await? {
                    bytes += download_dir(&store, &durable.prefix, &files, &dir, &transfer).await?;
                }
                Ok((bytes, began.elapsed()))
            }
            .await;
            let _ = tx.send(Msg::Restored {
                generation,
                stage,
                result,
            });
        });
    }

    pub(super) fn publish(&mut self, stage: StageId) {
        let Some(durable) = self.durable[stage].clone() else {
            return;
        };
        let name = self.workflow.stages[stage].name.clone();
        let store = self.store.clone();
        let layout = self.layout.clone();
        let transfer = self.settings.transfer.clone();
        let batch = self.batch.clone();
        let run_id = self.run_id.clone();
        let clock = self.clock.clone();
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            let result = async {
                crash_point("before-publish", &name);
                // Copied from the committed work-table, inside the store.
                let files = durable.files(&store, &layout).await?;
                let committed = Committed {
                    prefix: &durable.prefix,
                    files: &files,
                    commit_id: &durable.commit_id,
                };
                publish_output(
                    &store,
                    &layout,
                    &name,
                    &batch,
                    &run_id,
                    committed,
                    &transfer,
                    clock.now(),
                )
                .await?;
                Ok(store.locate(&layout.output(&name, &batch)))
            }
            .await;
            let _ = tx.send(Msg::Published { stage, result });
        });
    }
}

/// Makes `dir` an empty directory (a download goes into it).
async fn empty_dir(dir: &Path) -> Result<(), StoreError> {
    let fresh = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_dir_all(&fresh);
        std::fs::create_dir_all(&fresh)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r)
    .map_err(|source| StoreError::Io {
        object: dir.display().to_string(),
        source,
    })
}

/// Persisting one attempt's work-table, away from the driver: its files go into the
/// store (or are summed where a step wrote them), then its COMMIT.
struct PersistJob {
    store: AnyStore,
    layout: Layout,
    transfer: TransferOptions,
    clock: Arc<dyn Clock>,
    saver: Option<Saver>,
    /// Where a table in the store is summed.
    scratch: PathBuf,
    manifest: CommitManifest,
    output: Output,
}

impl PersistJob {
    /// The COMMIT that stands (this one, or the one of a racing attempt that won) and how
    /// long it took.
    async fn run(mut self) -> Result<(CommitManifest, Duration), StoreError> {
        let began = Instant::now();
        let (store, layout) = (&self.store, &self.layout);
        let (name, attempt) = (self.manifest.stage.clone(), self.manifest.attempt);
        let prefix = layout.attempt(&self.manifest.run_id, &name, attempt);
        let parts = commit_parts(layout, &self.manifest.run_id, &name, attempt);
        let mut list = PartWriter::new(store, parts);
        let (scratch, transfer) = (&self.scratch, &self.transfer);
        match &self.output {
            Output::Dir(dir) => upload_dir(store, dir, &prefix, transfer, &mut list).await?,
            Output::InStore(_) => sum_prefix(store, &prefix, scratch, transfer, &mut list).await?,
            Output::OnCluster(url) => {
                // The cluster copies it into the store; then it is committed as a table a
                // step wrote there.
                let failed = |why: String| StoreError::Io {
                    object: url.clone(),
                    source: std::io::Error::other(why),
                };
                let saver =
                    (self.saver.as_ref()).ok_or_else(|| failed("no cluster to copy it".into()))?;
                let to = store.locate(&prefix);
                saver.save(&name, attempt, url, &to).await.map_err(failed)?;
                sum_prefix(store, &prefix, scratch, transfer, &mut list).await?
            }
        };
        let written = list.finish().await?;
        self.manifest.files = written.files;
        self.manifest.parts = written.parts;
        crash_point("before-commit", &name);
        self.manifest.committed_at = timestamp(self.clock.now());
        let committed = match commit(store, layout, &self.manifest).await? {
            CommitOutcome::Committed => self.manifest,
            CommitOutcome::Lost(winner) => winner,
        };
        crash_point("after-commit", &name);
        Ok((committed, began.elapsed()))
    }
}
