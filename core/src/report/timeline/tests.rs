//! The timeline read from hand-made events; the helpers build events for the cost tests too.

use super::*;
use crate::contract::event::RunEvent;

/// An event `seconds` after 12:00:00 in one orchestrator process started then.
pub(crate) fn at(seconds: f64, event: RunEvent) -> StampedEvent {
    let whole = seconds.floor() as i64;
    StampedEvent {
        at: jiff::Timestamp::from_second(1_796_126_400 + whole)
            .unwrap()
            .to_string(),
        elapsed_s: seconds,
        event,
    }
}

pub(crate) fn launch(stage: &str, attempt: u32, generation: u32, market: Market) -> RunEvent {
    RunEvent::Launch {
        stage: stage.into(),
        attempt,
        market,
        generation,
        log: format!("logs/{stage}/{attempt}.log"),
    }
}

pub(crate) fn exit(stage: &str, attempt: u32, code: i32) -> RunEvent {
    RunEvent::Exit {
        stage: stage.into(),
        attempt,
        code,
        log: None,
    }
}

pub(crate) fn provision(generation: u32, market: Market) -> RunEvent {
    RunEvent::Provision {
        generation,
        market,
        reason: "start".into(),
        wait_s: 0.0,
    }
}

pub(crate) fn ready(generation: u32, market: Market) -> RunEvent {
    RunEvent::ClusterReady {
        generation,
        market,
        provider: "local".into(),
        cluster: format!("/tmp/c{generation}"),
    }
}

#[test]
fn attempts_end_as_their_events_say_and_a_loss_closes_its_generation() {
    let spot = Market::Spot;
    let events = vec![
        at(0.0, provision(1, spot)),
        at(60.0, ready(1, spot)),
        at(60.0, launch("a", 1, 1, spot)),
        at(660.0, exit("a", 1, 0)),
        at(660.0, launch("b", 2, 1, spot)),
        at(
            960.0,
            RunEvent::Interrupted {
                stage: "b".into(),
                attempt: 2,
            },
        ),
        at(
            960.0,
            RunEvent::ClusterLost {
                generation: 1,
                market: spot,
                cause: "chaos".into(),
                interruptions: 1,
            },
        ),
        at(960.0, provision(2, Market::OnDemand)),
        at(1020.0, ready(2, Market::OnDemand)),
        at(1020.0, launch("b", 3, 2, Market::OnDemand)),
        at(1520.0, exit("b", 3, 0)),
        at(
            1530.0,
            // The run's last event.
            RunEvent::Cleaned {
                deleted: 0,
                prefix: "work/".into(),
            },
        ),
    ];
    let timeline = timeline(&events, false);
    let outcomes: Vec<_> = timeline.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Succeeded, Outcome::Interrupted, Outcome::Succeeded]
    );
    assert_eq!(timeline.attempts[1].seconds(), 300.0);
    assert_eq!(timeline.generations.len(), 2);
    assert_eq!(timeline.generations[0].end, 960.0);
    assert_eq!(timeline.generations[0].provisioning_seconds(), 60.0);
    // Never released: open until the last event.
    assert_eq!(timeline.generations[1].end, 1530.0);
    assert_eq!(timeline.interruptions.len(), 1);
    assert_eq!(timeline.interruptions[0].at, 960.0);
    assert_eq!(timeline.attempts[2].generation, 1);
}

#[test]
fn a_resumed_run_continues_on_the_wall_clock_and_its_dead_attempts_are_abandoned() {
    let spot = Market::Spot;
    let mut second = at(
        100.0,
        RunEvent::Note {
            message: "x".into(),
        },
    );
    // The second process started 100 s after the first, its elapsed_s from 0.
    second.elapsed_s = 0.0;
    let mut second_provision = at(100.0, provision(1, spot));
    second_provision.elapsed_s = 0.0;
    let mut second_launch = at(110.0, launch("a", 2, 1, spot));
    second_launch.elapsed_s = 10.0;
    let events = vec![
        at(0.0, provision(1, spot)),
        at(1.0, ready(1, spot)),
        at(1.0, launch("a", 1, 1, spot)),
        second,
        second_provision,
        second_launch,
    ];
    let timeline = timeline(&events, true);
    assert_eq!(timeline.attempts[0].outcome, Outcome::Abandoned);
    assert_eq!(timeline.attempts[0].end, 1.0);
    assert_eq!(timeline.attempts[1].start, 110.0);
    assert_eq!(timeline.attempts[1].outcome, Outcome::Running);
    assert_eq!(
        timeline.attempts[1].generation, 1,
        "the run's second cluster"
    );
    assert_eq!(timeline.generations.len(), 2);
    // The dead orchestrator's cluster is charged until the next one took over, not to the
    // end of the resumed run.
    assert_eq!(timeline.generations[0].ended, ClusterEnd::Abandoned);
    assert_eq!(timeline.generations[0].end, 100.0);
    assert_eq!(timeline.generations[1].ended, ClusterEnd::Open);
}

#[test]
fn a_stage_succeeding_twice_is_a_recompute_the_second_time() {
    let spot = Market::Spot;
    let events = vec![
        at(0.0, provision(1, spot)),
        at(0.0, launch("a", 1, 1, spot)),
        at(5.0, exit("a", 1, 0)),
        at(6.0, launch("a", 2, 1, spot)),
        at(9.0, exit("a", 2, 0)),
    ];
    let timeline = timeline(&events, false);
    assert!(!timeline.attempts[0].recompute);
    assert!(timeline.attempts[1].recompute);
}

#[test]
fn an_unreadable_event_is_named_and_the_others_still_read() {
    let good = at(0.0, provision(1, Market::Spot)).to_json();
    let values = vec![good.clone(), serde_json::json!({"event": "launch"}), good];
    let (events, problems) = parse_events(&values);
    assert_eq!(events.len(), 2);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("event 1 cannot be read"),
        "{problems:?}"
    );
}

#[test]
fn a_stale_event_marks_the_last_success_of_the_stage_it_names_in_its_field() {
    let spot = Market::Spot;
    let stale = |message: &str, stage: Option<&str>| RunEvent::Stale {
        message: message.into(),
        stage: stage.map(Into::into),
    };
    let events = vec![
        at(0.0, provision(1, spot)),
        at(0.0, launch("a", 1, 1, spot)),
        at(5.0, exit("a", 1, 0)),
        at(5.0, launch("b", 2, 1, spot)),
        at(9.0, exit("b", 2, 0)),
        // The message is free text: it names `a`, the field names `b`.
        at(10.0, stale("rebuilt after `a` changed", Some("b"))),
    ];
    let outcomes: Vec<_> = timeline(&events, false)
        .attempts
        .iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, [Outcome::Succeeded, Outcome::Stale]);

    // An event written before the field existed names its stage where its message begins.
    let mut old = events.clone();
    old[5] = at(10.0, stale("stage `b` runs again: input `a` changed", None));
    let outcomes: Vec<_> = timeline(&old, false)
        .attempts
        .iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, [Outcome::Succeeded, Outcome::Stale]);
}

fn check(stage: &str, attempt: u32, name: &str, severity: &str, code: i32) -> RunEvent {
    RunEvent::Check {
        stage: stage.into(),
        attempt,
        check: name.into(),
        severity: severity.into(),
        code,
        log: format!("logs/{stage}/{attempt}.log"),
    }
}

#[test]
fn an_attempt_lasts_through_its_checks_and_is_refused_or_interrupted_during_them() {
    let spot = Market::Spot;
    let events = vec![
        at(0.0, provision(1, spot)),
        at(0.0, ready(1, spot)),
        at(0.0, launch("a", 1, 1, spot)),
        at(10.0, exit("a", 1, 0)),
        at(12.0, check("a", 1, "rows", "warn", 1)),
        at(15.0, check("a", 1, "amounts", "error", 0)),
        at(15.0, launch("b", 1, 1, spot)),
        at(20.0, exit("b", 1, 0)),
        at(
            25.0,
            RunEvent::Interrupted {
                stage: "b".into(),
                attempt: 1,
            },
        ),
        at(25.0, launch("b", 2, 1, spot)),
        at(30.0, exit("b", 2, 0)),
        at(31.0, check("b", 2, "amounts", "error", 3)),
    ];
    let timeline = timeline(&events, false);
    let [a, b1, b2] = &timeline.attempts[..] else {
        panic!("{:?}", timeline.attempts)
    };
    assert_eq!(
        (a.outcome, a.end),
        (Outcome::Succeeded, 15.0),
        "a warn passes"
    );
    assert_eq!(a.checks.len(), 2);
    assert_eq!(
        (b1.outcome, b1.end),
        (Outcome::Interrupted, 25.0),
        "lost while its check ran"
    );
    assert_eq!((b2.outcome, b2.end), (Outcome::Refused, 31.0));
}

#[test]
fn nodes_lost_while_a_cluster_works_on_are_marked_on_it_with_what_was_left() {
    let spot = Market::Spot;
    let events = vec![
        at(0.0, provision(1, spot)),
        at(60.0, ready(1, spot)),
        at(60.0, launch("a", 1, 1, spot)),
        at(
            400.0,
            RunEvent::CapacityLost {
                generation: 1,
                nodes: 1,
                remaining: 5,
                cause: "EC2 reclaimed i-0abc while the step ran".into(),
            },
        ),
        at(400.0, launch("a", 2, 1, spot)),
        at(900.0, exit("a", 2, 0)),
    ];
    let timeline = timeline(&events, false);
    assert_eq!(timeline.generations.len(), 1, "the cluster worked on");
    let mark = &timeline.capacity[..];
    assert_eq!(mark.len(), 1);
    assert_eq!((mark[0].at, mark[0].generation), (400.0, 0));
    assert_eq!((mark[0].nodes, mark[0].remaining), (1, 5));
    let markers = crate::report::markers::capacity(&timeline, |t| t, |t| format!("+{t}"));
    assert_eq!(
        markers[0].title,
        "capacity lost at +400: cluster 1 lost 1 node(s), 5 left (EC2 reclaimed i-0abc while the step ran)"
    );
}
