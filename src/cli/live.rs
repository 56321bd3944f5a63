//! The live view of `respawn run` on a terminal: event lines scroll above a status block
//! that shows the cluster, interruptions and checkpoints so far, and each running stage
//! with its elapsed time against its estimate. Redrawn twice a second by indicatif.

use crate::workflow::units::format_seconds;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    cluster: String,
    interruptions: u64,
    checkpoints: u64,
    /// Running attempts: stage -> (attempt, since).
    running: BTreeMap<String, (u64, Instant)>,
    done: bool,
}

pub struct Live {
    bar: ProgressBar,
    state: Arc<Mutex<State>>,
    estimates: Arc<BTreeMap<String, f64>>,
}

impl Live {
    /// Starts the view; `estimates` are each stage's estimated seconds.
    pub fn start(estimates: BTreeMap<String, f64>) -> Live {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout_with_hz(4));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let state = Arc::new(Mutex::new(State {
            cluster: "no cluster yet".into(),
            ..State::default()
        }));
        let estimates = Arc::new(estimates);
        let live = Live {
            bar,
            state,
            estimates,
        };
        let (bar, state, estimates) =
            (live.bar.clone(), live.state.clone(), live.estimates.clone());
        std::thread::spawn(move || {
            loop {
                let message = {
                    let state = state.lock().unwrap_or_else(|e| e.into_inner());
                    if state.done {
                        break;
                    }
                    render(&state, &estimates)
                };
                bar.set_message(message);
                bar.tick();
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        live
    }

    /// Takes one event: updates the status block and prints `line` above it.
    pub fn event(&self, event: &Value, line: Option<String>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let stage = event["stage"].as_str().unwrap_or("").to_string();
        match event["event"].as_str().unwrap_or("") {
            "cluster-ready" => {
                state.cluster = format!(
                    "{} cluster {}",
                    event["market"].as_str().unwrap_or("?"),
                    event["generation"]
                )
            }
            "provision" => {
                state.cluster = format!(
                    "provisioning {} cluster {}",
                    event["market"].as_str().unwrap_or("?"),
                    event["generation"]
                )
            }
            "cluster-lost" => {
                state.interruptions = event["interruptions"].as_u64().unwrap_or(0);
                state.running.clear();
            }
            "launch" => {
                let attempt = event["attempt"].as_u64().unwrap_or(0);
                state.running.insert(stage, (attempt, Instant::now()));
            }
            "exit" | "interrupted" => {
                state.running.remove(&stage);
            }
            "committed" => state.checkpoints += 1,
            "finished" => state.done = true,
            _ => {}
        }
        let message = render(&state, &self.estimates);
        let done = state.done;
        drop(state);
        if let Some(line) = line {
            self.bar.println(line);
        }
        self.bar.set_message(message);
        if done {
            self.bar.finish_and_clear();
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).done = true;
        self.bar.finish_and_clear();
    }
}

fn render(state: &State, estimates: &BTreeMap<String, f64>) -> String {
    let mut text = format!(
        "{} · interruptions {} · checkpoints written {}",
        state.cluster, state.interruptions, state.checkpoints
    );
    for (stage, (attempt, since)) in &state.running {
        let estimate = estimates.get(stage).copied().unwrap_or(0.0);
        text.push_str(&format!(
            "\n    {stage} (attempt {attempt}): {} of ~{}",
            format_seconds(since.elapsed().as_secs_f64().floor()),
            format_seconds(estimate)
        ));
    }
    text
}
