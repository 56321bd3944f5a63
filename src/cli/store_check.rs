//! `respawn store check URL`: the thorough check of a store (`drivers/store/check.rs`),
//! printed as a report; exit 0 when every check passed, 3 when one failed.

use super::{CliError, Format, StoreArgs, StoreCheckArgs, exit, output, store};
use respawn_run::store::check::{BY_COMMAND, CheckOptions, Verdict, check_store};

pub fn run(args: &StoreCheckArgs) -> Result<i32, CliError> {
    let store_args = StoreArgs {
        store: Some(args.url.clone()),
        endpoint_url: args.endpoint_url.clone(),
        // A damaged object read back is a finding: not worth minutes of retries.
        store_outage: Some(
            args.store_outage
                .unwrap_or(std::time::Duration::from_secs(2)),
        ),
    };
    let options = CheckOptions {
        rounds: args.rounds,
        ..CheckOptions::default()
    };
    let runtime = store::start_runtime()?;
    let verdict = runtime.block_on(async {
        let store = store::connect_to_write(&store_args, None).await?;
        let checked_at = jiff::Timestamp::now().to_string();
        Ok::<_, CliError>(check_store(&store, options, checked_at, BY_COMMAND).await?)
    })?;
    match args.format {
        Format::Text => output::stdout(&report(&verdict))?,
        Format::Json => output::json(
            &serde_json::to_value(&verdict)
                .map_err(|e| CliError::internal(format!("cannot render the verdict: {e}")))?,
        )?,
    }
    if verdict.passed {
        return Ok(exit::SUCCESS);
    }
    Err(verdict.refusal().into())
}

fn report(verdict: &Verdict) -> String {
    let mut text = format!("checked {} at {}\n", verdict.store, verdict.checked_at);
    for result in &verdict.results {
        let mark = match (result.passed, result.required) {
            (true, _) => "pass",
            (false, true) => "FAIL",
            (false, false) => "warn",
        };
        text.push_str(&format!(
            "{mark}  {}: {}\n      {}\n",
            result.name, result.detail, result.meaning
        ));
    }
    let warnings = verdict.results.iter().any(|r| !r.passed);
    text.push_str(if verdict.passed && warnings {
        "the store passed, with warnings (optional properties it lacks): respawn will run on it (the verdict is kept in the bucket)\n"
    } else if verdict.passed {
        "the store passed: respawn will run on it (the verdict is kept in the bucket)\n"
    } else {
        "the store failed: `respawn run` refuses it until a new check passes\n"
    });
    text
}
