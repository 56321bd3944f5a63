//! What the scheduler has already taken up, so that a tick reads only the dates it may
//! still act on, never every date since the schedule's `start`.
//!
//! - `<workflow>/schedule/settled.json`, the **watermark**: every due date whose logical
//!   date is before `through` has been taken up by a tick (run, recorded missed, or left to
//!   whoever claimed it), and those not yet finished are listed in `open`. Updated with
//!   If-Match; `through` only moves forward and `open` merges, so ticks racing each other
//!   lose nothing.
//! - `<workflow>/schedule/missed/<first>-<last>.json`, a **missed range**: the dates from `first`
//!   to `last` that catch-up left out, in one object however many they are. A date with a
//!   claim or a run of its own is whatever that says; the range speaks only for the others.

use super::{Holder, Layout, Versioned, parse_json, read_versioned, timestamp, to_json};
use crate::store::{PutMode, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    pub format: u32,
    pub workflow: String,
    /// The schedule's `batch:` format the dates were taken up under: claims and runs are
    /// kept by batch id, so under another format every date would look new.
    pub batch_format: String,
    /// Every due date before this time (RFC 3339, UTC) was taken up by a tick.
    pub through: String,
    /// Dates before `through` a tick took up that had not finished when it last looked.
    #[serde(default)]
    pub open: Vec<String>,
    pub updated_at: String,
}

impl Settled {
    /// `through` as a time; a value that does not read is the schedule's start (the
    /// object is then rebuilt from the dates themselves, which is slower, never wrong).
    pub fn through(&self) -> Option<jiff::Timestamp> {
        self.through.parse().ok()
    }
}

/// The watermark, if a tick ever wrote one.
pub async fn read_settled<S: Store>(
    store: &S,
    layout: &Layout,
) -> Result<Option<Versioned<Settled>>, StoreError> {
    let found: Option<Versioned<Settled>> = read_versioned(store, &layout.settled()).await?;
    if let Some(found) = &found
        && (found.value.workflow != layout.workflow() || found.value.through().is_none())
    {
        return Err(StoreError::Corrupt {
            object: store.locate(&layout.settled()),
            detail: format!(
                "it is for workflow `{}` with `through: {}`, not a time",
                found.value.workflow, found.value.through
            ),
        });
    }
    Ok(found)
}

/// Moves the watermark to `through` (never back), adds `opened` to its open dates and takes
/// `finished` out of them, creating it if there is none; a concurrent tick's update is read
/// and merged.
pub async fn advance_settled<S: Store>(
    store: &S,
    layout: &Layout,
    batch_format: &str,
    through: jiff::Timestamp,
    opened: &[String],
    finished: &[String],
    now: SystemTime,
) -> Result<(), StoreError> {
    let key = layout.settled();
    let change = |settled: &mut Settled| {
        if settled.through().is_none_or(|t| t < through) {
            settled.through = through.to_string();
        }
        settled.open.retain(|b| !finished.contains(b));
        for batch in opened {
            if !settled.open.contains(batch) && !finished.contains(batch) {
                settled.open.push(batch.clone());
            }
        }
        settled.updated_at = timestamp(now);
    };
    let mut current = match read_settled(store, layout).await? {
        Some(current) => current,
        None => {
            let mut fresh = Settled {
                format: super::FORMAT,
                workflow: layout.workflow().into(),
                batch_format: batch_format.into(),
                through: through.to_string(),
                open: Vec::new(),
                updated_at: timestamp(now),
            };
            change(&mut fresh);
            match store.put(&key, to_json(&fresh), PutMode::Create).await {
                Ok(_) => return Ok(()),
                Err(StoreError::AlreadyExists { .. }) => read_settled(store, layout)
                    .await?
                    .ok_or_else(|| StoreError::NotFound {
                        object: store.locate(&key),
                    })?,
                Err(other) => return Err(other),
            }
        }
    };
    let reread = || async {
        read_settled(store, layout)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                object: store.locate(&key),
            })
    };
    super::update_versioned(store, &key, &mut current, change, reread).await
}

/// Dates catch-up left out, from `first` to `last` (logical dates, inclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissedRange {
    pub format: u32,
    pub workflow: String,
    pub first_batch: String,
    pub last_batch: String,
    /// Logical dates, RFC 3339 on the schedule's wall clock.
    pub first: String,
    pub last: String,
    /// How many dates of the schedule the range holds, when counted.
    #[serde(default)]
    pub dates: Option<u64>,
    pub reason: String,
    pub holder: Holder,
    pub recorded_at: String,
}

impl MissedRange {
    /// The first and last logical dates, when both read as times.
    fn bounds(&self) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
        Some((self.first.parse().ok()?, self.last.parse().ok()?))
    }

    /// Whether the logical date `at` lies in the range.
    pub fn holds(&self, at: jiff::Timestamp) -> bool {
        self.bounds()
            .is_some_and(|(first, last)| first <= at && at <= last)
    }
}

/// The object name of a range starting at `first`: compact UTC, so that names sort by time.
fn range_name(first: jiff::Timestamp) -> String {
    first.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// Records a missed range (create-only: a tick racing this one records the same range
/// under the same name, and one of them wins).
pub async fn record_missed<S: Store>(
    store: &S,
    layout: &Layout,
    range: &MissedRange,
) -> Result<(), StoreError> {
    let bound = |text: &str| {
        text.parse::<jiff::Timestamp>()
            .map(range_name)
            .map_err(|e| StoreError::Corrupt {
                object: store.locate(&layout.missed_ranges()),
                detail: format!("a missed range bound `{text}` is not a time: {e}"),
            })
    };
    let name = format!("{}-{}", bound(&range.first)?, bound(&range.last)?);
    let key = layout.missed_range(&name);
    match store.put(&key, to_json(range), PutMode::Create).await {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

/// Every missed range of the workflow (one per downtime), oldest first. A range that does
/// not read is an error naming it: without it, its dates would look never run.
pub async fn read_missed<S: Store>(
    store: &S,
    layout: &Layout,
) -> Result<Vec<MissedRange>, StoreError> {
    let mut ranges = Vec::new();
    for object in store.list(&layout.missed_ranges()).await? {
        if !object.key.ends_with(".json") {
            continue;
        }
        let (bytes, _) = store.get(&object.key).await?;
        let range: MissedRange = parse_json(store.locate(&object.key), &bytes)?;
        let ordered = range.bounds().is_some_and(|(first, last)| first <= last);
        if range.workflow != layout.workflow() || !ordered {
            return Err(StoreError::Corrupt {
                object: store.locate(&object.key),
                detail: format!(
                    "it is for workflow `{}` from `{}` to `{}`, not two times in order",
                    range.workflow, range.first, range.last
                ),
            });
        }
        ranges.push(range);
    }
    Ok(ranges)
}
