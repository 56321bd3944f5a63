//! Claims of logical dates: `<workflow>/schedule/claims/<batch>.json`, created create-only
//! before a scheduled run starts, so that of any number of ticks on any number of machines
//! exactly one runs a given date. A claim also records the dates catch-up decided not to
//! run (`missed`), so that nothing is dropped silently.
//!
//! A claim whose tick died before its run started would block its date forever; the next
//! tick takes it over with If-Match on the version it read ([`take_over`]), so of several
//! ticks taking over at once exactly one wins.

use super::{Holder, Layout, Versioned, timestamp, to_json};
use crate::store::{PutMode, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// What was decided for a date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// The holder runs the date.
    Run,
    /// Catch-up left the date out; `backfill` can still run it.
    Missed,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Run => "run",
            Decision::Missed => "missed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub format: u32,
    pub workflow: String,
    pub batch: String,
    /// The interval's start, RFC 3339 in the schedule's time zone.
    pub logical_date: String,
    pub decision: Decision,
    pub holder: Holder,
    pub claimed_at: String,
    /// `claimed_at` as seconds since the Unix epoch, for comparisons.
    pub claimed_unix: u64,
    /// Why (for `missed`: the catch-up rule that left it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Claim {
    pub fn new(
        layout: &Layout,
        batch: &str,
        logical_date: &str,
        decision: Decision,
        holder: Holder,
        now: SystemTime,
        reason: Option<String>,
    ) -> Claim {
        Claim {
            format: super::FORMAT,
            workflow: layout.workflow().into(),
            batch: batch.into(),
            logical_date: logical_date.into(),
            decision,
            holder,
            claimed_at: timestamp(now),
            claimed_unix: now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            reason,
        }
    }
}

/// How a claim went: won, or already held by the claim returned.
#[derive(Debug)]
pub enum ClaimOutcome {
    Won(Versioned<Claim>),
    Held(Versioned<Claim>),
}

/// Claims a date: create-only, so the first claim wins and the others see it.
pub async fn claim<S: Store>(
    store: &S,
    layout: &Layout,
    claim: Claim,
) -> Result<ClaimOutcome, StoreError> {
    let key = layout.claim(&claim.batch);
    match store.put(&key, to_json(&claim), PutMode::Create).await {
        Ok(etag) => Ok(ClaimOutcome::Won(Versioned { value: claim, etag })),
        Err(StoreError::AlreadyExists { .. }) => held(store, layout, &claim.batch).await,
        Err(other) => Err(other),
    }
}

/// Replaces the claim `stale` (as read) with `claim`, if nobody changed it since.
pub async fn take_over<S: Store>(
    store: &S,
    layout: &Layout,
    stale: &Versioned<Claim>,
    claim: Claim,
) -> Result<ClaimOutcome, StoreError> {
    let key = layout.claim(&claim.batch);
    match store
        .put(&key, to_json(&claim), PutMode::Update(stale.etag.clone()))
        .await
    {
        Ok(etag) => Ok(ClaimOutcome::Won(Versioned { value: claim, etag })),
        Err(StoreError::PreconditionFailed { .. } | StoreError::NotFound { .. }) => {
            held(store, layout, &claim.batch).await
        }
        Err(other) => Err(other),
    }
}

async fn held<S: Store>(
    store: &S,
    layout: &Layout,
    batch: &str,
) -> Result<ClaimOutcome, StoreError> {
    match read_claim(store, layout, batch).await? {
        Some(existing) => Ok(ClaimOutcome::Held(existing)),
        None => Err(StoreError::PreconditionFailed {
            object: store.locate(&layout.claim(batch)),
        }),
    }
}

/// The claim of a date, if there is one.
pub async fn read_claim<S: Store>(
    store: &S,
    layout: &Layout,
    batch: &str,
) -> Result<Option<Versioned<Claim>>, StoreError> {
    super::read_versioned(store, &layout.claim(batch)).await
}

/// Every claim of a workflow, with its version, in key (batch) order.
pub async fn read_claims<S: Store + Clone + 'static>(
    store: &S,
    layout: &Layout,
) -> Result<Vec<Versioned<Claim>>, StoreError> {
    let listed = store.list(&layout.claims()).await?;
    let mut reads = tokio::task::JoinSet::new();
    let mut claims = Vec::with_capacity(listed.len());
    let mut pending = listed.into_iter().filter_map(|object| {
        let name = object.key.rsplit('/').next()?.strip_suffix(".json")?;
        Some(name.to_string())
    });
    loop {
        while reads.len() < 32
            && let Some(batch) = pending.next()
        {
            let (store, layout) = (store.clone(), layout.clone());
            reads.spawn(async move { read_claim(&store, &layout, &batch).await });
        }
        let Some(joined) = reads.join_next().await else {
            break;
        };
        let read = joined.map_err(|e| StoreError::Io {
            object: store.locate(&layout.claims()),
            source: std::io::Error::other(e),
        })?;
        if let Some(found) = read? {
            claims.push(found);
        }
    }
    claims.sort_by(|a, b| a.value.batch.cmp(&b.value.batch));
    Ok(claims)
}
