//! `clean` and `gc`: delete work-tables, and only work-tables
//! (`<workflow>/runs/<run_id>/work/`), of runs nobody is at work on. Run records, events,
//! logs and final outputs are never touched. The command line prints what this returns.

use crate::clock::Clock;
use crate::ledger::{Layout, RunRecord};
use crate::read::{at_work, list_runs, workflows};
use crate::store::{AnyStore, Listing, Store, StoreError};
use std::time::{Duration, SystemTime};

/// What was (or, in a dry run, would be) deleted under one run's work prefix.
#[derive(Clone, Debug)]
pub struct Removal {
    /// The prefix, as the store names it.
    pub prefix: String,
    /// In a dry run, every object that would go, as the store names it.
    pub would_delete: Vec<String>,
    pub objects: u64,
    pub bytes: u64,
    pub dry_run: bool,
}

/// A run whose work-tables gc removed.
#[derive(Clone, Debug)]
pub struct Cleaned {
    pub workflow: String,
    pub record: RunRecord,
    pub removal: Removal,
}

/// What gc did, and the objects that kept it off a workflow or a run.
#[derive(Debug, Default)]
pub struct GcReport {
    pub cleaned: Vec<Cleaned>,
    /// A damaged run record keeps gc off its whole workflow (its run's work-tables may be
    /// all that is left of its checkpoints); an unreadable lease keeps gc off its run.
    pub unreadable: Vec<StoreError>,
}

/// Removes the work-tables of run `layout`/`run_id` (or lists them, with `dry_run`).
pub async fn remove_work(
    store: &AnyStore,
    layout: &Layout,
    run_id: &str,
    dry_run: bool,
) -> Result<Removal, StoreError> {
    let prefix = layout.work(run_id);
    // Counted a page at a time: a run's work-tables may hold millions of objects.
    let mut listing = Listing::new(store, &prefix);
    let (mut bytes, mut listed, mut would_delete) = (0u64, 0u64, Vec::new());
    while let Some(page) = listing.next_page().await? {
        bytes += page.iter().map(|o| o.size).sum::<u64>();
        listed += page.len() as u64;
        if dry_run {
            would_delete.extend(page.iter().map(|o| store.locate(&o.key)));
        }
    }
    let count = if dry_run {
        listed
    } else {
        store.delete_prefix(&prefix).await?
    };
    Ok(Removal {
        prefix: store.locate(&prefix),
        would_delete,
        objects: count,
        bytes,
        dry_run,
    })
}

/// Who is at work on the run, if anyone ([`at_work`]), in words.
pub async fn in_progress(
    store: &AnyStore,
    layout: &Layout,
    record: &RunRecord,
    clock: &dyn Clock,
) -> Result<Option<String>, StoreError> {
    let holder = at_work(store, layout, record, clock).await?;
    Ok(holder.map(|lease| lease.holder.to_string()))
}

/// Removes the work-tables of every run of every workflow last updated more than
/// `older_than` ago that nobody is at work on. Other workflows are still collected when
/// one has a damaged record.
pub async fn gc(
    store: &AnyStore,
    older_than: Duration,
    dry_run: bool,
    clock: &dyn Clock,
) -> Result<GcReport, StoreError> {
    let now = clock.now();
    let cutoff = now
        .checked_sub(older_than)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut report = GcReport::default();
    for workflow in workflows(store).await? {
        let layout = Layout::new(&workflow);
        let listing = list_runs(store, &layout).await?;
        for skipped in &listing.without_record {
            tracing::warn!("skipped: {skipped}");
        }
        if !listing.unreadable.is_empty() {
            report.unreadable.extend(listing.unreadable);
            continue;
        }
        for record in listing.records {
            let updated = humantime::parse_rfc3339(&record.updated_at).unwrap_or(now);
            if updated > cutoff {
                continue;
            }
            match in_progress(store, &layout, &record, clock).await {
                Ok(None) => {}
                Ok(Some(_)) => continue,
                Err(error) => {
                    report.unreadable.push(error);
                    continue;
                }
            }
            if Listing::new(store, &layout.work(&record.run_id))
                .is_empty()
                .await?
            {
                continue;
            }
            let removal = remove_work(store, &layout, &record.run_id, dry_run).await?;
            report.cleaned.push(Cleaned {
                workflow: workflow.clone(),
                record,
                removal,
            });
        }
    }
    Ok(report)
}
