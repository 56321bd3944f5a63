//! The run's event stream: the only thing the engine reports. Every view consumes it: the
//! text and live views of `respawn run`, its `--format json` lines, and the ledger, which
//! keeps each event under `runs/<run_id>/events/`. Reports and the scheduler read them back
//! with [`StampedEvent`]'s `Deserialize`.
//!
//! On the wire an event is one flat JSON object, `{"event": "<kind>", "at", "elapsed_s",
//! ...fields}`, keys in alphabetical order (`tests/event_contract.rs` holds the fields to the
//! contract; the README documents each event).

pub use crate::contract::InstanceUse;
use crate::contract::RunStatus;
use crate::workflow::Market;
use serde::{Deserialize, Serialize};

/// One thing that happened in a run. Stage and workflow names are as written in the file;
/// attempts are numbered from 1 over the whole run; `generation` numbers the run's clusters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RunEvent {
    /// The orchestrator took the run; `reused` are the stages whose committed work-tables
    /// it found and will not run again.
    RunStarted {
        workflow: String,
        run_id: String,
        batch: String,
        store: String,
        reused: Vec<String>,
    },
    /// `cluster.market: auto` chose the market of the next cluster: before the run
    /// (`interruptions` 0) and after every interruption, with the reason in words.
    MarketChosen {
        market: Market,
        reason: String,
        interruptions: u32,
        /// Where the interruption model the choice rests on came from (`workflow file`,
        /// `history: ...`); absent in events written before it was kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
    },
    /// What is left of the run would end past its deadline (`fallback.deadline`, or the
    /// date's `publish_by`) on the market it is on: at the start, or after a loss.
    DeadlineAtRisk { reason: String },
    /// The date's `publish_by` time (`due`, RFC 3339) passed and its output is not
    /// published yet.
    Late { due: String },
    /// A cluster is being provisioned, ready after about `wait_s` seconds.
    Provision {
        generation: u32,
        market: Market,
        reason: String,
        wait_s: f64,
    },
    ClusterReady {
        generation: u32,
        market: Market,
        provider: String,
        cluster: String,
    },
    /// An attempt of a stage started; its log will be kept at `log`.
    Launch {
        stage: String,
        attempt: u32,
        market: Market,
        generation: u32,
        log: String,
    },
    /// An attempt ended by itself: `code` 0 is success; a failure names its `log`.
    Exit {
        stage: String,
        attempt: u32,
        code: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log: Option<String>,
    },
    /// A check of an attempt's output ended: `code` 0 passed. A failed `error` check
    /// refuses the output (nothing of it is committed or published, and the run fails);
    /// a failed `warn` check is recorded. Its output is in the attempt's `log`.
    Check {
        stage: String,
        attempt: u32,
        check: String,
        severity: String,
        code: i32,
        log: String,
    },
    /// A failed stage runs again after `delay_s` seconds.
    Retry { stage: String, delay_s: f64 },
    /// A work-table was uploaded and its COMMIT created (by this or an earlier attempt).
    Committed {
        stage: String,
        attempt: u32,
        files: usize,
        bytes: u64,
        seconds: f64,
        /// Uploaded in a notice's window, beyond the plan's checkpoints.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        window: bool,
    },
    /// A checkpoint is being brought into cluster `generation`.
    Restore {
        stage: String,
        generation: u32,
        from: String,
    },
    Restored {
        stage: String,
        generation: u32,
        bytes: u64,
        seconds: f64,
    },
    /// A running attempt ended with its cluster (never counted as a failure).
    Interrupted { stage: String, attempt: u32 },
    /// Nodes of cluster `generation` were reclaimed and the cluster works on: `nodes`
    /// lost, `remaining` left (before any replacement); the attempts they ran end with
    /// `interrupted` events.
    CapacityLost {
        generation: u32,
        nodes: u32,
        remaining: u32,
        cause: String,
    },
    /// A cluster was lost; `interruptions` counts the run's losses so far.
    ClusterLost {
        generation: u32,
        market: Market,
        cause: String,
        interruptions: u32,
    },
    /// A final output was published (its `_SUCCESS` written).
    Published {
        stage: String,
        batch: String,
        output: String,
    },
    /// A cluster was terminated (at the end of a run, or after its loss); EMR clusters
    /// report their instance-hours, in all and per fleet, instance type and market as EMR
    /// listed their instances (`instances`, absent in records written before it existed).
    ClusterReleased {
        generation: u32,
        cluster: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance_hours: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instances: Option<Vec<InstanceUse>>,
    },
    /// Cluster `generation` was warned: an `interruption` notice (it goes in about
    /// `lead_s` seconds) or a `rebalance` recommendation; `instances` are the instance ids
    /// the warning named (none for a local cluster).
    Notice {
        generation: u32,
        kind: NoticeKind,
        lead_s: f64,
        instances: Vec<String>,
    },
    /// The interruption announced for cluster `generation` did not come: it works on.
    NoticeLapsed { generation: u32 },
    /// The run ended, as recorded in its run record.
    Finished {
        status: RunStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The run's work-tables were deleted after success.
    Cleaned { deleted: u64, prefix: String },
    /// A committed work-table no longer matches its stage or inputs and will be rebuilt;
    /// `stage` is absent in events written before it was kept.
    Stale {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<String>,
    },
    /// Something a dead orchestrator left behind was cleaned up or adopted.
    Swept { message: String },
    /// Advice about the run (a chaos rate far from the planned MTTI, say).
    Note { message: String },
    /// The run is stopping (Ctrl-C, SIGTERM, or its cluster was stopped).
    Stopping { message: String },
    /// `respawn interrupt` reached a run with no spot cluster to lose.
    InterruptIgnored { message: String },
}

/// The two warnings spot capacity gives before it is reclaimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    /// "EC2 Spot Instance Interruption Warning": the instances go at the end of the lead.
    Interruption,
    /// "EC2 Instance Rebalance Recommendation": a raised risk, often well before a warning.
    Rebalance,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Interruption => "interruption",
            NoticeKind::Rebalance => "rebalance",
        }
    }
}

impl RunEvent {
    /// The stage the event is about, if any.
    pub fn stage(&self) -> Option<&str> {
        match self {
            RunEvent::Launch { stage, .. }
            | RunEvent::Exit { stage, .. }
            | RunEvent::Retry { stage, .. }
            | RunEvent::Committed { stage, .. }
            | RunEvent::Restore { stage, .. }
            | RunEvent::Restored { stage, .. }
            | RunEvent::Interrupted { stage, .. }
            | RunEvent::Published { stage, .. } => Some(stage),
            RunEvent::Stale { stage, .. } => stage.as_deref(),
            _ => None,
        }
    }
}

/// An event with when it happened: `at` (RFC 3339, UTC) and `elapsed_s` since the
/// orchestrator took the run, rounded to the millisecond.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StampedEvent {
    pub at: String,
    pub elapsed_s: f64,
    #[serde(flatten)]
    pub event: RunEvent,
}

impl StampedEvent {
    /// The event as one JSON object, keys in alphabetical order (as stored and printed).
    pub fn to_json(&self) -> serde_json::Value {
        // A struct serializes in declaration order; going through `Value` (a sorted map)
        // gives the order every reader has always seen.
        serde_json::to_value(self).unwrap_or_else(|error| {
            serde_json::json!({"event": "note", "message": format!("unserializable event: {error}")})
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_flat_object_with_sorted_keys_and_reads_back() {
        let stamped = StampedEvent {
            at: "2026-12-01T12:00:00Z".into(),
            elapsed_s: 1.5,
            event: RunEvent::Exit {
                stage: "ingest".into(),
                attempt: 2,
                code: 3,
                log: Some("s3://b/log".into()),
            },
        };
        let text = stamped.to_json().to_string();
        assert_eq!(
            text,
            r#"{"at":"2026-12-01T12:00:00Z","attempt":2,"code":3,"elapsed_s":1.5,"event":"exit","log":"s3://b/log","stage":"ingest"}"#
        );
        let back: StampedEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, stamped);
    }

    #[test]
    fn optional_fields_are_left_out_when_absent() {
        let event = StampedEvent {
            at: "t".into(),
            elapsed_s: 0.0,
            event: RunEvent::Finished {
                status: RunStatus::Succeeded,
                message: None,
            },
        };
        assert_eq!(
            event.to_json().to_string(),
            r#"{"at":"t","elapsed_s":0.0,"event":"finished","status":"succeeded"}"#
        );
    }

    #[test]
    fn markets_are_written_as_in_the_workflow_file() {
        let event = RunEvent::ClusterLost {
            generation: 2,
            market: Market::OnDemand,
            cause: "x".into(),
            interruptions: 1,
        };
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["market"], "on-demand");
        assert_eq!(value["event"], "cluster-lost");
    }

    #[test]
    fn a_cluster_released_event_written_before_instances_were_kept_still_reads() {
        let old = r#"{"at":"t","cluster":"j-1","elapsed_s":1.0,"event":"cluster-released","generation":1,"instance_hours":8.0}"#;
        let read: StampedEvent = serde_json::from_str(old).unwrap();
        assert_eq!(
            read.event,
            RunEvent::ClusterReleased {
                generation: 1,
                cluster: "j-1".into(),
                instance_hours: Some(8.0),
                instances: None,
            }
        );
        let new = r#"{"at":"t","cluster":"j-1","elapsed_s":1.0,"event":"cluster-released","generation":1,"instance_hours":2.0,
            "instances":[{"count":1,"fleet":"core","fleet_type":"CORE","instance_hours":2.0,"market":"spot","type":"r5.2xlarge"}]}"#;
        let read: StampedEvent = serde_json::from_str(new).unwrap();
        let RunEvent::ClusterReleased { instances, .. } = read.event else {
            panic!("{read:?}");
        };
        let instances = instances.unwrap();
        assert_eq!(instances[0].instance_type, "r5.2xlarge");
        assert_eq!(instances[0].market, Market::Spot);
        assert_eq!(instances[0].from, None);
        // Written back, the fields a reader knows come out again, absent times left out.
        let json = serde_json::to_value(&instances[0]).unwrap();
        assert_eq!(json["type"], "r5.2xlarge");
        assert!(json.get("until").is_none());
    }

    #[test]
    fn a_stale_event_written_before_its_stage_was_kept_still_reads() {
        let old =
            r#"{"at":"t","elapsed_s":1.0,"event":"stale","message":"stage `a` runs again: x"}"#;
        let read: StampedEvent = serde_json::from_str(old).unwrap();
        assert_eq!(read.event.stage(), None);
        let new = RunEvent::Stale {
            message: "stage `a` runs again: x".into(),
            stage: Some("a".into()),
        };
        let json = StampedEvent {
            at: "t".into(),
            elapsed_s: 1.0,
            event: new.clone(),
        }
        .to_json();
        assert_eq!(json["stage"], "a");
        let back: StampedEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back.event, new);
        assert_eq!(back.event.stage(), Some("a"));
    }
}
