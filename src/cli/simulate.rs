//! `respawn simulate FILE`

use super::{CliError, Format, SimulateArgs};
use super::{learned, output};
use respawn_core::planner::{SimReport, simulate};
use respawn_core::sim::{CapacityTrace, SimOptions, parse_capacity_trace, parse_trace};
use respawn_core::workflow::units::format_seconds as fmt;
// Traces are limited to 16 MiB, checked on what is read (a pipe or a device has no size).
use respawn_core::workflow::MAX_TRACE_BYTES;
use serde::Serialize;
use std::collections::BTreeMap;

fn read_trace(path: &std::path::Path) -> Result<String, CliError> {
    use std::io::Read;
    let cannot = |error: std::io::Error| {
        CliError::invalid_input(format!(
            "{}: cannot read the trace: {error}",
            path.display()
        ))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_TRACE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_TRACE_BYTES {
        return Err(CliError::invalid_input(format!(
            "{}: the trace is larger than {MAX_TRACE_BYTES} bytes, the limit",
            path.display()
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        CliError::invalid_input(format!("{}: the trace is not UTF-8 text", path.display()))
    })
}

/// The interruption times of `--trace` (one list per trace), or its capacity trace.
type Traces = (Option<Vec<Vec<f64>>>, Option<CapacityTrace>);

/// A trace file: a capacity trace in the public JSON format (it starts with `{`), or
/// interruption times, one per line.
fn traces(path: &std::path::Path) -> Result<Traces, CliError> {
    let text = read_trace(path)?;
    let bad = |reason: String, hint: &str| {
        CliError::invalid_input(format!("{}: {reason}", path.display())).with_hint(hint)
    };
    if text.trim_start().starts_with('{') {
        let trace = parse_capacity_trace(&text).map_err(|reason| {
            bad(
                reason,
                "a capacity trace is {\"metadata\": {\"gap_seconds\": G}, \"data\": [node counts]}",
            )
        })?;
        return Ok((None, Some(trace)));
    }
    let traces = parse_trace(&text).map_err(|reason| {
        bad(reason, "one interruption time per line, in seconds or like `1h30m`; `trace,time` for several traces")
    })?;
    Ok((Some(traces), None))
}

pub fn run(args: &SimulateArgs) -> Result<(), CliError> {
    let (workflow, history) = args.what_if.load(&args.file, args.mtti.is_some())?;
    let (traces, capacity) = match &args.trace {
        None => (None, None),
        Some(path) => traces(path)?,
    };
    let options = SimOptions {
        trials: args.trials,
        seed: args.seed,
        mtti: args.mtti,
        traces,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        partial: args.partial,
        capacity,
    };
    let report = simulate(&workflow, &options);
    let mtti_source = learned::mtti_source(
        &workflow,
        &history,
        args.mtti.is_some(),
        args.trace.as_deref(),
    );
    match args.format {
        Format::Text => {
            let learned = learned::summary(&history).unwrap_or_default();
            output::stdout(&format!("{learned}{}", text(&report, args.trace.is_some())))?
        }
        Format::Json => {
            let stage_sources = (history.stages.iter())
                .map(|s| {
                    let sources = StageSources {
                        estimate_source: s.estimate.source.describe(),
                        output_size_source: s.output_size.source.describe(),
                    };
                    (s.stage.clone(), sources)
                })
                .collect();
            output::json(&SimJson::new(&report, mtti_source, stage_sources))?
        }
    }
    Ok(())
}

fn text(report: &SimReport, traced: bool) -> String {
    let source = if traced {
        "interruptions replayed from the trace".to_string()
    } else {
        format!("exponential interruptions, mtti {}", fmt(report.mtti))
    };
    let source = match report.notice {
        Some(lead) => format!("{source}, each announced {} ahead", fmt(lead)),
        None => format!("{source}, without notice"),
    };
    let mut out = format!(
        "workflow `{}`: {} trials per policy, seed {}, {source}\n",
        report.workflow, report.trials, report.seed
    );
    out.push_str(&format!(
        "lower bound (failure-free makespan): {}\n",
        fmt(report.lower_bound)
    ));
    out.push_str(&format!(
        "chain optimum (critical path, dynamic program): {}\n",
        fmt(report.chain_optimum)
    ));
    if let Some(choice) = &report.market_choice {
        out.push_str(&format!(
            "market auto: the `auto` row runs as `run` would; before the run it chose {}\n",
            choice.reason
        ));
    }
    out.push('\n');
    let on_demand = on_demand_cost(report);
    let rows: Vec<Vec<String>> = report
        .policies
        .iter()
        .map(|p| {
            let censored = if p.censored_trials > 0 { ">=" } else { "" };
            let mut row = vec![
                p.name.clone(),
                p.checkpoints.to_string(),
                format!("{censored}{}", fmt(p.mean_makespan)),
                format!("{censored}{}", fmt(p.p95_makespan)),
                format!("{censored}{:.2}", p.mean_cost),
                saving_percent(p.mean_cost, on_demand)
                    .map_or("-".into(), |saving| format!("{saving:.0}%")),
                format!("{:.2}", p.mean_interruptions),
                fmt(p.mean_lost_work),
                format!("{:.1}", p.mean_checkpoint_gb_hours),
                format!("{:.0}%", p.fallback_rate * 100.0),
            ];
            if let Some(share) = p.deadline_met_share {
                row.push(format!("{:.1}%", share * 100.0));
            }
            row
        })
        .collect();
    let cost_header = format!("mean cost ({})", report.currency);
    let deadline_header = report.deadline.map(|d| format!("met deadline {}", fmt(d)));
    let mut headers = vec![
        "policy",
        "checkpoints",
        "mean makespan",
        "p95 makespan",
        cost_header.as_str(),
        "saving vs on-demand",
        "interruptions",
        "lost work",
        "storage GB-h",
        "fell back",
    ];
    if let Some(header) = &deadline_header {
        headers.push(header);
    }
    out.push_str(&output::table(&headers, &rows));
    let censored: u32 = report.policies.iter().map(|p| p.censored_trials).sum();
    if censored > 0 {
        out.push_str(&format!(
            "\n>= : some trials hit the simulation's limit ({} interruptions or {}x the lower bound) and were stopped; their makespans are lower bounds\n",
            respawn_core::sim::MAX_INTERRUPTIONS,
            respawn_core::sim::MAX_MAKESPAN_FACTOR
        ));
    }
    out
}

/// The mean cost of the `on-demand` row: what every saving is measured against.
fn on_demand_cost(report: &SimReport) -> Option<f64> {
    report
        .policies
        .iter()
        .find(|p| p.name == "on-demand")
        .map(|p| p.mean_cost)
}

/// How much less than all on-demand a mean cost is, in percent (negative when more).
fn saving_percent(cost: f64, on_demand: Option<f64>) -> Option<f64> {
    on_demand
        .filter(|&od| od > 0.0)
        .map(|od| (od - cost) / od * 100.0)
}

/// `simulate --format json`: the simulation, with where its inputs came from.
#[derive(Serialize)]
struct SimJson<'a> {
    workflow: &'a str,
    trials: u32,
    seed: u64,
    mtti_s: f64,
    notice_s: Option<f64>,
    lower_bound_s: f64,
    chain_optimum_s: f64,
    policies: Vec<PolicyJson<'a>>,
    currency: &'a str,
    deadline_s: Option<f64>,
    market_choice: Option<MarketChoiceJson<'a>>,
    mtti_source: String,
    stage_sources: BTreeMap<String, StageSources>,
}

/// One policy's row of the simulation.
#[derive(Serialize)]
struct PolicyJson<'a> {
    name: &'a str,
    checkpoints: usize,
    mean_makespan_s: f64,
    p95_makespan_s: f64,
    mean_cost: f64,
    mean_interruptions: f64,
    mean_lost_work_s: f64,
    mean_checkpoint_gb_hours: f64,
    fallback_rate: f64,
    censored_trials: u32,
    saving_percent: Option<f64>,
    deadline_met_share: Option<f64>,
}

#[derive(Serialize)]
struct MarketChoiceJson<'a> {
    market: &'static str,
    reason: &'a str,
}

/// Where a stage's estimate and output size came from.
#[derive(Serialize)]
struct StageSources {
    estimate_source: String,
    output_size_source: String,
}

impl<'a> SimJson<'a> {
    fn new(
        report: &'a SimReport,
        mtti_source: String,
        stage_sources: BTreeMap<String, StageSources>,
    ) -> SimJson<'a> {
        let on_demand = on_demand_cost(report);
        let policies = (report.policies.iter())
            .map(|p| PolicyJson {
                name: &p.name,
                checkpoints: p.checkpoints,
                mean_makespan_s: p.mean_makespan,
                p95_makespan_s: p.p95_makespan,
                mean_cost: p.mean_cost,
                mean_interruptions: p.mean_interruptions,
                mean_lost_work_s: p.mean_lost_work,
                mean_checkpoint_gb_hours: p.mean_checkpoint_gb_hours,
                fallback_rate: p.fallback_rate,
                censored_trials: p.censored_trials,
                saving_percent: saving_percent(p.mean_cost, on_demand),
                deadline_met_share: p.deadline_met_share,
            })
            .collect();
        SimJson {
            workflow: &report.workflow,
            trials: report.trials,
            seed: report.seed,
            mtti_s: report.mtti,
            notice_s: report.notice,
            lower_bound_s: report.lower_bound,
            chain_optimum_s: report.chain_optimum,
            policies,
            currency: &report.currency,
            deadline_s: report.deadline,
            market_choice: (report.market_choice.as_ref()).map(|c| MarketChoiceJson {
                market: c.market.as_str(),
                reason: &c.reason,
            }),
            mtti_source,
            stage_sources,
        }
    }
}
