//! `respawn stats FILE`: what runs measured against what the workflow file says.

use super::{CliError, Format, StatsArgs, learned, output};
use respawn_core::learn::{Figure, History, InterruptionModel, StageFigures, ZoneFigures};
use respawn_core::workflow::units::{format_seconds as fmt, format_size};
use serde::ser::{Serialize, SerializeMap, Serializer};

pub fn run(args: &StatsArgs) -> Result<(), CliError> {
    let workflow = output::load(&args.file)?;
    let history = learned::read(&args.store, &workflow)?;
    match args.format {
        Format::Text => output::stdout(&text(&workflow.name, &history))?,
        Format::Json => output::json(&StatsJson::of(&workflow.name, &history))?,
    }
    Ok(())
}

/// `+25%`: how far what runs measured is from the file's value.
fn drift(figure: &Figure) -> Option<f64> {
    let median = figure.median?;
    (figure.file > 0.0).then(|| median / figure.file - 1.0)
}

fn percent(value: Option<f64>) -> String {
    value.map_or("-".into(), |d| format!("{:+.0}%", d * 100.0))
}

fn text(name: &str, history: &History) -> String {
    let mut out = format!(
        "workflow `{name}`: {} run{} in the history\n\n",
        history.runs,
        if history.runs == 1 { "" } else { "s" }
    );
    let seconds = |v: Option<f64>| v.map_or("-".into(), fmt);
    let bytes = |v: Option<f64>| v.map_or("-".into(), |b| format_size(b.round() as u64));
    let rows: Vec<Vec<String>> = history
        .stages
        .iter()
        .map(|s: &StageFigures| {
            let (e, o) = (&s.estimate, &s.output_size);
            vec![
                s.stage.clone(),
                fmt(e.file),
                seconds(e.median),
                seconds(e.p90),
                percent(drift(e)),
                format_size(o.file as u64),
                bytes(o.median),
                percent(drift(o)),
                e.source.describe(),
            ]
        })
        .collect();
    let header = [
        "stage",
        "estimate",
        "median",
        "p90",
        "drift",
        "size",
        "median",
        "drift",
        "plans use",
    ];
    out.push_str(&output::table(&header, &rows));
    let model = &history.interruptions;
    out.push_str(&format!(
        "\nspot interruptions on `{}`: the file's mtti {}; {} spot loss{} in {:.2} h of spot held over {} run{}",
        model.kind,
        fmt(model.file.as_secs_f64()),
        model.losses,
        if model.losses == 1 { "" } else { "es" },
        model.hours,
        model.runs,
        if model.runs == 1 { "" } else { "s" },
    ));
    match model.interval() {
        Some((low, high)) => out.push_str(&format!(
            "; plans use mtti {} (90% between {} and {})\n",
            fmt(model.mtti.as_secs_f64()),
            fmt(low.as_secs_f64()),
            fmt(high.as_secs_f64())
        )),
        None => out.push_str("; plans use the file's mtti\n"),
    }
    if let Some(trace) = &model.empirical {
        out.push_str(&format!(
            "plans replay the spot clusters held, laid end to end ({:.2} h), bursts and quiet spells as they came\n",
            trace.span() / 3600.0
        ));
    }
    if !model.by_zone.is_empty() {
        out.push_str(&zone_table(model));
    }
    out
}

/// Spot losses per zone, and the zones the plan learns from.
fn zone_table(model: &respawn_core::learn::InterruptionModel) -> String {
    let rows: Vec<Vec<String>> = (model.by_zone.iter())
        .map(|z| {
            let mtti = (z.losses > 0).then(|| fmt(z.hours * 3600.0 / f64::from(z.losses)));
            let used = model.zones.is_empty() || model.zones.contains(&z.zone);
            vec![
                z.zone.clone(),
                z.clusters.to_string(),
                z.losses.to_string(),
                format!("{:.2}", z.hours),
                mtti.unwrap_or_else(|| "-".into()),
                if used { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    let header = [
        "zone",
        "clusters",
        "losses",
        "spot h",
        "mtti seen",
        "plans use",
    ];
    format!("\n{}", output::table(&header, &rows))
}

/// `stats --format json`.
#[derive(serde::Serialize)]
struct StatsJson<'a> {
    workflow: &'a str,
    runs: usize,
    stages: Vec<StageJson<'a>>,
    interruptions: InterruptionsJson<'a>,
}

#[derive(serde::Serialize)]
struct StageJson<'a> {
    stage: &'a str,
    estimate: FigureJson<'a>,
    output_size: FigureJson<'a>,
}

/// A learned figure with its unit in its keys (`file_s`, `median_bytes`, ...).
struct FigureJson<'a> {
    figure: &'a Figure,
    unit: &'static str,
}

impl Serialize for FigureJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (figure, unit) = (self.figure, self.unit);
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry(&format!("file_{unit}"), &figure.file)?;
        map.serialize_entry(&format!("median_{unit}"), &figure.median)?;
        map.serialize_entry(&format!("p90_{unit}"), &figure.p90)?;
        map.serialize_entry(&format!("planned_{unit}"), &figure.value)?;
        map.serialize_entry("drift", &drift(figure))?;
        map.serialize_entry("source", &figure.source.describe())?;
        map.end()
    }
}

#[derive(serde::Serialize)]
struct InterruptionsJson<'a> {
    cluster_kind: &'a str,
    file_mtti_s: f64,
    mtti_s: f64,
    mtti_90_low_s: Option<f64>,
    mtti_90_high_s: Option<f64>,
    losses: u32,
    spot_hours: f64,
    runs: usize,
    source: String,
    empirical: bool,
    zones: &'a [String],
    by_zone: Vec<ZoneJson<'a>>,
}

#[derive(serde::Serialize)]
struct ZoneJson<'a> {
    zone: &'a str,
    clusters: usize,
    losses: u32,
    spot_hours: f64,
}

impl<'a> StatsJson<'a> {
    fn of(name: &'a str, history: &'a History) -> Self {
        StatsJson {
            workflow: name,
            runs: history.runs,
            stages: history
                .stages
                .iter()
                .map(|s| StageJson {
                    stage: &s.stage,
                    estimate: FigureJson {
                        figure: &s.estimate,
                        unit: "s",
                    },
                    output_size: FigureJson {
                        figure: &s.output_size,
                        unit: "bytes",
                    },
                })
                .collect(),
            interruptions: InterruptionsJson::of(&history.interruptions),
        }
    }
}

impl<'a> InterruptionsJson<'a> {
    fn of(model: &'a InterruptionModel) -> Self {
        let interval = model.interval();
        InterruptionsJson {
            cluster_kind: &model.kind,
            file_mtti_s: model.file.as_secs_f64(),
            mtti_s: model.mtti.as_secs_f64(),
            mtti_90_low_s: interval.map(|(low, _)| low.as_secs_f64()),
            mtti_90_high_s: interval.map(|(_, high)| high.as_secs_f64()),
            losses: model.losses,
            spot_hours: model.hours,
            runs: model.runs,
            source: model.describe(),
            empirical: model.empirical.is_some(),
            zones: &model.zones,
            by_zone: model.by_zone.iter().map(ZoneJson::of).collect(),
        }
    }
}

impl<'a> ZoneJson<'a> {
    fn of(z: &'a ZoneFigures) -> Self {
        ZoneJson {
            zone: &z.zone,
            clusters: z.clusters,
            losses: z.losses,
            spot_hours: z.hours,
        }
    }
}
