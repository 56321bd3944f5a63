//! `respawn clean RUN` and `respawn gc --older-than DUR`: delete work-tables, and only
//! work-tables (`<workflow>/runs/<run_id>/work/`). Run records, events, logs and final
//! outputs are never touched; a run an orchestrator is working on is left alone.

use super::error::ErrorKind;
use super::{CleanArgs, CliError, GcArgs, output, store};
use respawn_core::workflow::units::format_size;
use respawn_run::clock::WallClock;
use respawn_run::ledger::{Layout, RunRecord, RunStatus, find_run, is_missing_record, runs};
use respawn_run::session;
use respawn_run::store::{AnyStore, Store, StoreError};
use std::time::SystemTime;

pub fn clean(args: &CleanArgs) -> Result<(), CliError> {
    if respawn_run::ledger::check_batch(&args.run).is_err() {
        return Err(CliError::invalid_input(format!(
            "`{}` is not a run id",
            args.run.escape_default()
        ))
        .with_hint("see `respawn history WORKFLOW`"));
    }
    let runtime = store::start_runtime()?;
    runtime.block_on(async {
        let store = store::connect(&args.store, None).await?;
        let Some((layout, record)) = find_run(&store, &args.run).await? else {
            return Err(CliError::invalid_input(format!(
                "no run `{}` in {}",
                args.run,
                store.describe()
            )));
        };
        if let Some(holder) = in_progress(&store, &layout, &record.value).await? {
            return Err(CliError::busy(format!(
                "run {} is in progress ({holder}); its work-tables are in use",
                args.run
            )));
        }
        let text = remove_work(&store, &layout, &args.run, args.dry_run).await?;
        output::stdout(&text)?;
        if record.value.status != RunStatus::Succeeded && !args.dry_run {
            output::stderr(&format!(
                "note: run {} is {}; resuming it now runs every stage again\n",
                args.run,
                record.value.status.as_str()
            ));
        }
        Ok(())
    })
}

pub fn gc(args: &GcArgs) -> Result<(), CliError> {
    let runtime = store::start_runtime()?;
    runtime.block_on(async {
        let store = store::connect(&args.store, None).await?;
        let (text, unreadable) = collect(&store, args).await?;
        output::stdout(&text)?;
        if unreadable.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = unreadable.iter().map(|e| e.message()).collect();
        Err(CliError::new(
            ErrorKind::Store,
            format!(
                "gc left untouched what depends on {} unreadable object(s):\n  {}",
                names.len(),
                names.join("\n  ")
            ),
        )
        .with_hint("repair or remove the named objects by hand, then run gc again"))
    })
}

/// The report, and the objects that could not be read. A damaged run record keeps gc off
/// its whole workflow (its run's work-tables may be all that is left of its checkpoints);
/// an unreadable lease keeps gc off its run. The other workflows are still collected.
async fn collect(store: &AnyStore, args: &GcArgs) -> Result<(String, Vec<StoreError>), StoreError> {
    let now = SystemTime::now();
    let cutoff = now
        .checked_sub(args.older_than)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut text = String::new();
    let mut cleaned = 0;
    let mut unreadable = Vec::new();
    for workflow in store.list_dirs("").await? {
        if respawn_core::workflow::check_name(&workflow).is_err() {
            continue;
        }
        let layout = Layout::new(&workflow);
        let mut records = Vec::new();
        let mut damaged = false;
        for record in runs(store, &layout).await? {
            match record {
                Ok(record) => records.push(record),
                Err(error) if is_missing_record(&error) => {
                    output::stderr(&format!("warning: skipped: {error}\n"));
                }
                Err(error) => {
                    unreadable.push(error);
                    damaged = true;
                }
            }
        }
        if damaged {
            continue;
        }
        for record in records {
            let updated = humantime::parse_rfc3339(&record.updated_at).unwrap_or(now);
            if updated > cutoff {
                continue;
            }
            match in_progress(store, &layout, &record).await {
                Ok(None) => {}
                Ok(Some(_)) => continue,
                Err(error) => {
                    unreadable.push(error);
                    continue;
                }
            }
            if store.list(&layout.work(&record.run_id)).await?.is_empty() {
                continue;
            }
            text.push_str(&format!(
                "{} run {} ({}, last updated {}):\n",
                workflow,
                record.run_id,
                record.status.as_str(),
                record.updated_at
            ));
            text.push_str(&remove_work(store, &layout, &record.run_id, args.dry_run).await?);
            cleaned += 1;
        }
    }
    text.push_str(&format!(
        "{cleaned} run(s) {} work-tables older than {}\n",
        if args.dry_run {
            "would lose their"
        } else {
            "lost their"
        },
        humantime::format_duration(args.older_than)
    ));
    Ok((text, unreadable))
}

/// Who is working on the run, if an orchestrator holds a live lease for it.
async fn in_progress(
    store: &AnyStore,
    layout: &Layout,
    record: &RunRecord,
) -> Result<Option<String>, StoreError> {
    let holder =
        session::live_holder_of(store, layout, &record.batch, &record.run_id, &WallClock).await?;
    Ok(holder.map(|lease| lease.holder.to_string()))
}

async fn remove_work(
    store: &AnyStore,
    layout: &Layout,
    run_id: &str,
    dry_run: bool,
) -> Result<String, StoreError> {
    let prefix = layout.work(run_id);
    let objects = store.list(&prefix).await?;
    let bytes: u64 = objects.iter().map(|o| o.size).sum();
    let mut text = String::new();
    if dry_run {
        for object in &objects {
            text.push_str(&format!("  would delete {}\n", store.locate(&object.key)));
        }
        text.push_str(&format!(
            "would delete {} objects ({}) under {}\n",
            objects.len(),
            format_size(bytes),
            store.locate(&prefix)
        ));
    } else {
        let deleted = store.delete_prefix(&prefix).await?;
        text.push_str(&format!(
            "deleted {deleted} objects ({}) under {}\n",
            format_size(bytes),
            store.locate(&prefix)
        ));
    }
    Ok(text)
}
