//! The lease: one orchestrator at a time runs a given batch of a workflow (several
//! batches may run at once, each under its own lease).
//!
//! `<workflow>/leases/<batch>` is created create-only with an expiry, renewed with If-Match, and
//! released by writing it back (If-Match) marked released. An expired or released lease is
//! taken over with If-Match on the version that was read, so of any number of contenders
//! exactly one wins; the others get [`LeaseError::Held`] naming the holder. Clocks of
//! different machines are compared through the expiry, so the time-to-live must be much
//! longer than their skew (minutes, not seconds).

use super::{Layout, parse_json, timestamp, to_json};
use crate::store::{ETag, PutMode, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// Who holds (or wants) the lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Unique per orchestrator process.
    pub id: String,
    pub host: String,
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

impl Holder {
    /// This process, with a fresh id.
    pub fn this_process(run_id: Option<String>) -> Holder {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".into());
        let pid = std::process::id();
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Holder {
            id: format!("{host}-{pid}-{nanos:x}"),
            host,
            pid,
            run_id,
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)?;
        if let Some(run) = &self.run_id {
            write!(f, " (run {run})")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub format: u32,
    pub workflow: String,
    #[serde(default)]
    pub batch: String,
    pub holder: Holder,
    pub acquired_at: String,
    pub renewed_at: String,
    pub expires_at: String,
    /// `expires_at` as seconds since the Unix epoch, for comparisons.
    pub expires_unix: u64,
    #[serde(default)]
    pub released: bool,
}

impl LeaseRecord {
    /// Released, or expired at `now`.
    pub fn is_free(&self, now: SystemTime) -> bool {
        self.released || self.expires_unix <= unix(now)
    }
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Displayed as the message followed by ` (hint: ...)` when there is a hint; the command
/// line prints [`LeaseError::message`] and [`LeaseError::hint`] on lines of their own.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("{} (hint: {})", self.message(), self.hint().unwrap_or_default())]
    Held {
        workflow: String,
        batch: String,
        holder: Holder,
        expires_at: String,
        object: String,
    },
    #[error(
        "lost the lease of workflow `{workflow}` to {holder} ({object}); stopping so that two orchestrators never run it at once"
    )]
    Lost {
        workflow: String,
        holder: String,
        object: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LeaseError {
    /// What went wrong, without the hint.
    pub fn message(&self) -> String {
        match self {
            LeaseError::Held {
                workflow,
                batch,
                holder,
                expires_at,
                object,
            } => format!(
                "batch {batch} of workflow `{workflow}` is being run by {holder} until {expires_at} ({object})"
            ),
            LeaseError::Lost { .. } => self.to_string(),
            LeaseError::Store(error) => error.message(),
        }
    }

    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            LeaseError::Held { expires_at, .. } => Some(format!(
                "wait for that run to finish; if that orchestrator is gone, its lease expires at {expires_at}"
            )),
            LeaseError::Lost { .. } => None,
            LeaseError::Store(error) => error.hint(),
        }
    }
}

/// What a lease is of: its key, its workflow, and what messages call it.
struct Target<'a> {
    key: String,
    workflow: &'a str,
    label: &'a str,
}

/// A held lease. Renew it well before `ttl` runs out.
#[derive(Debug)]
pub struct Lease {
    key: String,
    etag: ETag,
    pub record: LeaseRecord,
    ttl: Duration,
}

impl Lease {
    /// Takes the lease of `batch`, unless another holder has it and it has not expired.
    pub async fn acquire<S: Store>(
        store: &S,
        layout: &Layout,
        batch: &str,
        holder: Holder,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Lease, LeaseError> {
        Self::acquire_unless_alive(store, layout, batch, holder, ttl, now, &|_| false).await
    }

    /// Like [`Lease::acquire`], but an unexpired lease whose holder `is_gone` (a process of
    /// this machine that no longer exists, say) is taken over as if it had expired.
    pub async fn acquire_unless_alive<S: Store>(
        store: &S,
        layout: &Layout,
        batch: &str,
        holder: Holder,
        ttl: Duration,
        now: SystemTime,
        is_gone: &(dyn Fn(&Holder) -> bool + Sync),
    ) -> Result<Lease, LeaseError> {
        let target = Target {
            key: layout.lease(batch),
            workflow: layout.workflow(),
            label: batch,
        };
        Self::acquire_target(store, target, holder, ttl, now, is_gone).await
    }

    /// Takes run slot `slot` of a scheduled workflow (`schedule.max_active` slots: a tick
    /// holds one while a run it started goes on), on the terms of
    /// [`Lease::acquire_unless_alive`].
    pub async fn acquire_slot<S: Store>(
        store: &S,
        layout: &Layout,
        slot: u32,
        holder: Holder,
        ttl: Duration,
        now: SystemTime,
        is_gone: &(dyn Fn(&Holder) -> bool + Sync),
    ) -> Result<Lease, LeaseError> {
        let label = format!("slot {slot}");
        let target = Target {
            key: layout.slot(slot),
            workflow: layout.workflow(),
            label: &label,
        };
        Self::acquire_target(store, target, holder, ttl, now, is_gone).await
    }

    async fn acquire_target<S: Store>(
        store: &S,
        target: Target<'_>,
        holder: Holder,
        ttl: Duration,
        now: SystemTime,
        is_gone: &(dyn Fn(&Holder) -> bool + Sync),
    ) -> Result<Lease, LeaseError> {
        let Target {
            key,
            workflow,
            label: batch,
        } = target;
        let record = LeaseRecord {
            format: respawn_core::contract::FORMAT,
            workflow: workflow.into(),
            batch: batch.into(),
            holder,
            acquired_at: timestamp(now),
            renewed_at: timestamp(now),
            expires_at: timestamp(now + ttl),
            expires_unix: unix(now + ttl),
            released: false,
        };
        let body = to_json(&record);
        // Each round either wins, or sees a live holder, or lost a race against a
        // contender that has since released or let the lease expire; a few rounds suffice.
        for _ in 0..16 {
            let mode = match lease_at(store, &key).await? {
                None => PutMode::Create,
                Some((existing, etag)) => {
                    if !existing.is_free(now)
                        && existing.holder.id != record.holder.id
                        && !is_gone(&existing.holder)
                    {
                        return Err(held(workflow, batch, existing, store.locate(&key)));
                    }
                    let Some(etag) = etag else {
                        return Err(StoreError::Corrupt {
                            object: store.locate(&key),
                            detail: "the store returned no ETag".into(),
                        }
                        .into());
                    };
                    PutMode::Update(etag)
                }
            };
            match store.put(&key, body.clone(), mode).await {
                Ok(etag) => {
                    return Ok(Lease {
                        key,
                        etag,
                        record,
                        ttl,
                    });
                }
                Err(StoreError::AlreadyExists { .. } | StoreError::PreconditionFailed { .. }) => {
                    continue;
                }
                Err(other) => return Err(other.into()),
            }
        }
        // Contention that never settles: report whoever holds it now.
        let (bytes, _) = store.get(&key).await?;
        let existing: LeaseRecord = parse_json(store.locate(&key), &bytes)?;
        Err(held(workflow, batch, existing, store.locate(&key)))
    }

    /// Extends the expiry. Fails with [`LeaseError::Lost`] if someone took the lease over
    /// (because this process let it expire).
    pub async fn renew<S: Store>(&mut self, store: &S, now: SystemTime) -> Result<(), LeaseError> {
        let mut next = self.record.clone();
        next.renewed_at = timestamp(now);
        next.expires_at = timestamp(now + self.ttl);
        next.expires_unix = unix(now + self.ttl);
        match store
            .put(
                &self.key,
                to_json(&next),
                PutMode::Update(self.etag.clone()),
            )
            .await
        {
            Ok(etag) => {
                self.etag = etag;
                self.record = next;
                Ok(())
            }
            Err(StoreError::PreconditionFailed { object } | StoreError::NotFound { object }) => {
                let holder = match store.get(&self.key).await {
                    Ok((bytes, _)) => parse_json::<LeaseRecord>(object.clone(), &bytes)
                        .map(|r| r.holder.to_string())
                        .unwrap_or_else(|e| e.to_string()),
                    Err(_) => "nobody (the lease object was deleted)".into(),
                };
                Err(LeaseError::Lost {
                    workflow: self.record.workflow.clone(),
                    holder,
                    object,
                })
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Gives the lease up so the next orchestrator need not wait for the expiry.
    pub async fn release<S: Store>(self, store: &S, now: SystemTime) -> Result<(), LeaseError> {
        let mut next = self.record.clone();
        next.released = true;
        next.renewed_at = timestamp(now);
        match store
            .put(&self.key, to_json(&next), PutMode::Update(self.etag))
            .await
        {
            // Already taken over after an expiry: nothing of ours to release.
            Ok(_) | Err(StoreError::PreconditionFailed { .. } | StoreError::NotFound { .. }) => {
                Ok(())
            }
            Err(other) => Err(other.into()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Where the lease is, as the store names it.
    pub fn object<S: Store>(&self, store: &S) -> String {
        store.locate(&self.key)
    }

    /// Takes the lease again after its object was deleted (by hand): writes it create-only.
    /// `Ok(false)` when another holder's lease is there now.
    pub async fn retake<S: Store>(
        &mut self,
        store: &S,
        now: SystemTime,
    ) -> Result<bool, LeaseError> {
        let mut next = self.record.clone();
        next.renewed_at = timestamp(now);
        next.expires_at = timestamp(now + self.ttl);
        next.expires_unix = unix(now + self.ttl);
        match store.put(&self.key, to_json(&next), PutMode::Create).await {
            Ok(etag) => {
                self.etag = etag;
                self.record = next;
                Ok(true)
            }
            Err(StoreError::PreconditionFailed { .. }) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }
}

/// The lease record of a batch, if there is one.
pub async fn read_lease<S: Store>(
    store: &S,
    layout: &Layout,
    batch: &str,
) -> Result<Option<LeaseRecord>, StoreError> {
    let lease = lease_at(store, &layout.lease(batch)).await?;
    Ok(lease.map(|(record, _)| record))
}

/// Every lease record of a workflow (live or not), by batch.
pub async fn read_leases<S: Store>(
    store: &S,
    layout: &Layout,
) -> Result<Vec<LeaseRecord>, StoreError> {
    let mut leases = Vec::new();
    for object in store.list(&layout.leases()).await? {
        match store.get(&object.key).await {
            Ok((bytes, _)) => leases.push(parse_json(store.locate(&object.key), &bytes)?),
            // Released and replaced between the listing and the read: nothing to report.
            Err(StoreError::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(leases)
}

/// The lease at `key` and its ETag, or none.
async fn lease_at<S: Store>(
    store: &S,
    key: &str,
) -> Result<Option<(LeaseRecord, Option<ETag>)>, StoreError> {
    match store.get(key).await {
        Ok((bytes, meta)) => Ok(Some((parse_json(store.locate(key), &bytes)?, meta.etag))),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The lease of `batch` is someone else's: `existing` says whose and until when.
fn held(workflow: &str, batch: &str, existing: LeaseRecord, object: String) -> LeaseError {
    LeaseError::Held {
        workflow: workflow.into(),
        batch: batch.into(),
        holder: existing.holder,
        expires_at: existing.expires_at,
        object,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lease_names_the_holder_and_hints_at_the_expiry() {
        let error = LeaseError::Held {
            workflow: "nightly".into(),
            batch: "2026-11-19".into(),
            holder: Holder {
                id: "x".into(),
                host: "box".into(),
                pid: 42,
                run_id: Some("run-a".into()),
            },
            expires_at: "2026-11-20T03:00:00Z".into(),
            object: "/store/nightly/lease".into(),
        };
        assert_eq!(
            error.to_string(),
            "batch 2026-11-19 of workflow `nightly` is being run by pid 42 on box (run run-a) until \
             2026-11-20T03:00:00Z (/store/nightly/lease) (hint: wait for that run to finish; if \
             that orchestrator is gone, its lease expires at 2026-11-20T03:00:00Z)"
        );
        assert_eq!(
            error.message(),
            "batch 2026-11-19 of workflow `nightly` is being run by pid 42 on box (run run-a) until \
             2026-11-20T03:00:00Z (/store/nightly/lease)"
        );
    }
}
