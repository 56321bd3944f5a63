//! `respawn clean RUN` and `respawn gc --older-than DUR`: delete work-tables, and only
//! work-tables (`<workflow>/runs/<run_id>/work/`). Run records, events, logs and final
//! outputs are never touched; a run an orchestrator is working on is left alone.

use super::error::ErrorKind;
use super::{CleanArgs, CliError, GcArgs, output, store};
use respawn_core::contract::RunStatus;
use respawn_core::workflow::names::check_batch;
use respawn_core::workflow::units::format_size;
use respawn_run::clock::WallClock;
use respawn_run::read;
use respawn_run::session::clean::{self, Removal};
use respawn_run::store::{AnyStore, Store, StoreError};

pub fn clean(args: &CleanArgs) -> Result<(), CliError> {
    if check_batch(&args.run).is_err() {
        return Err(CliError::invalid_input(format!(
            "`{}` is not a run id",
            args.run.escape_default()
        ))
        .with_hint("see `respawn history WORKFLOW`"));
    }
    let runtime = store::start_runtime()?;
    runtime.block_on(async {
        let store = store::connect_existing_to_write(&args.store, None).await?;
        let Some((layout, record)) = read::by_run_id(&store, &args.run).await? else {
            return Err(CliError::invalid_input(format!(
                "no run `{}` in {}",
                args.run,
                store.describe()
            )));
        };
        if let Some(holder) = clean::in_progress(&store, &layout, &record, &WallClock).await? {
            return Err(CliError::busy(format!(
                "run {} is in progress ({holder}); its work-tables are in use",
                args.run
            )));
        }
        let removal = clean::remove_work(&store, &layout, &args.run, args.dry_run).await?;
        output::stdout(&removal_text(&removal))?;
        if record.status != RunStatus::Succeeded && !args.dry_run {
            output::stderr(&format!(
                "note: run {} is {}; resuming it now runs every stage again\n",
                args.run,
                record.status.as_str()
            ));
        }
        Ok(())
    })
}

pub fn gc(args: &GcArgs) -> Result<(), CliError> {
    let runtime = store::start_runtime()?;
    runtime.block_on(async {
        let store = store::connect_existing_to_write(&args.store, None).await?;
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

/// gc's report as text: each run's removal, then the count.
async fn collect(store: &AnyStore, args: &GcArgs) -> Result<(String, Vec<StoreError>), StoreError> {
    let report = clean::gc(store, args.older_than, args.dry_run, &WallClock).await?;
    let mut text = String::new();
    for cleaned in &report.cleaned {
        let record = &cleaned.record;
        text.push_str(&format!(
            "{} run {} ({}, last updated {}):\n",
            cleaned.workflow,
            record.run_id,
            record.status.as_str(),
            record.updated_at
        ));
        text.push_str(&removal_text(&cleaned.removal));
    }
    text.push_str(&format!(
        "{} run(s) {} work-tables older than {}\n",
        report.cleaned.len(),
        if args.dry_run {
            "would lose their"
        } else {
            "lost their"
        },
        humantime::format_duration(args.older_than)
    ));
    Ok((text, report.unreadable))
}

fn removal_text(removal: &Removal) -> String {
    let size = format_size(removal.bytes);
    if !removal.dry_run {
        return format!(
            "deleted {} objects ({size}) under {}\n",
            removal.objects, removal.prefix
        );
    }
    let mut text = String::new();
    for object in &removal.would_delete {
        text.push_str(&format!("  would delete {object}\n"));
    }
    text.push_str(&format!(
        "would delete {} objects ({size}) under {}\n",
        removal.objects, removal.prefix
    ));
    text
}
