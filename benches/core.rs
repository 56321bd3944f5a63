//! Benchmarks of the pure core. Run with `cargo bench --bench core`; it prints the
//! Markdown tables that BENCHMARKS.md keeps. Timings are medians of repeated runs of the
//! real binary; the peer (PyYAML parsing the same file) is measured in the same run.

#[path = "../tests/random_dag/mod.rs"]
mod random_dag;

use respawn_core::planner::simulate;
use respawn_core::sim::SimOptions;
use respawn_core::workflow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bench_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A deterministic layered DAG: `stages` stages in layers of `width`, each needing up to
/// three stages of the layer before.
fn generated_dag(stages: usize, width: usize) -> String {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut text = format!(
        "name: generated-{stages}\ncluster: {{ slots: 8, mtti: 2h, provision_time: 10m }}\ncheckpoint: {{ write_throughput: 200MB/s }}\nstages:\n"
    );
    for i in 0..stages {
        let layer = i / width;
        text.push_str(&format!("  s{i}:\n"));
        if layer > 0 {
            let mut needs: Vec<usize> = (0..1 + next() as usize % 3)
                .map(|_| (layer - 1) * width + next() as usize % width)
                .collect();
            needs.sort();
            needs.dedup();
            let list: Vec<String> = needs.iter().map(|n| format!("s{n}")).collect();
            text.push_str(&format!("    needs: [{}]\n", list.join(", ")));
            let inputs: Vec<String> = needs
                .iter()
                .map(|n| format!("{{{{ inputs.s{n} }}}}"))
                .collect();
            text.push_str(&format!(
                "    run: job --in {} --out {{{{ output }}}}\n",
                inputs.join(",")
            ));
        } else {
            text.push_str("    run: job --out {{ output }}\n");
        }
        text.push_str(&format!(
            "    estimate: {}m\n    output_size: {}GB\n",
            5 + next() % 120,
            1 + next() % 50
        ));
    }
    text
}

fn median_of(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| f()).collect();
    times.sort();
    times[runs / 2]
}

fn time_command(program: &str, args: &[&str]) -> Duration {
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("command runs");
    let elapsed = started.elapsed();
    assert!(status.success(), "{program} {args:?} failed");
    elapsed
}

/// CPU time (user + system) used so far by this process's finished children.
fn children_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Wall time and CPU time of one run of a command. CPU time is less disturbed than wall
/// time when something else on the machine wants the same core.
fn time_and_cpu(program: &str, args: &[&str]) -> (Duration, Duration) {
    let cpu_before = children_cpu();
    let wall = time_command(program, args);
    (wall, children_cpu().saturating_sub(cpu_before))
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn pyyaml_available() -> bool {
    Command::new("python3")
        .args(["-c", "import yaml"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let respawn = env!("CARGO_BIN_EXE_respawn");
    let dir = bench_dir();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load.trim()
    );

    // 1. validate + plan of a 10,000-stage DAG.
    let big = dir.join("dag-10000.yaml");
    std::fs::write(&big, generated_dag(10_000, 100)).unwrap();
    let big = big.to_str().unwrap();
    // The commands take turns, so that a change in the machine's load falls on all of them.
    let mut commands: Vec<(String, String, Vec<String>)> = [
        ("`respawn validate` (read + check)", vec!["validate", big]),
        (
            "`respawn plan` (read + check + plan + print the table)",
            vec!["plan", big],
        ),
        (
            "`respawn plan --format json` (read + check + plan + print)",
            vec!["plan", big, "--format", "json"],
        ),
    ]
    .into_iter()
    .map(|(what, args)| {
        (
            what.to_string(),
            respawn.to_string(),
            args.into_iter().map(String::from).collect(),
        )
    })
    .collect();
    if pyyaml_available() {
        let script = format!(
            "import yaml\nloader = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)\nyaml.load(open('{big}'), Loader=loader)"
        );
        commands.push((
            "peer: Python + PyYAML's C loader, parse only".to_string(),
            "python3".to_string(),
            vec!["-c".to_string(), script],
        ));
    }
    const RUNS: usize = 21;
    let mut walls = vec![Vec::new(); commands.len()];
    let mut cpus = vec![Vec::new(); commands.len()];
    for _ in 0..RUNS {
        for (i, (_, program, args)) in commands.iter().enumerate() {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (wall, cpu) = time_and_cpu(program, &args);
            walls[i].push(wall);
            cpus[i].push(cpu);
        }
    }
    println!(
        "\n## validate + plan, generated 10,000-stage DAG ({} bytes)\n",
        std::fs::metadata(big).unwrap().len()
    );
    println!("| what | wall, median of {RUNS} | CPU (user + system), median of {RUNS} |");
    println!("|---|---|---|");
    let medians: Vec<(Duration, Duration)> = walls
        .into_iter()
        .zip(cpus)
        .map(|(wall, cpu)| (median(wall), median(cpu)))
        .collect();
    for ((what, _, _), (wall, cpu)) in commands.iter().zip(&medians) {
        println!("| {what} | {} | {} |", ms(*wall), ms(*cpu));
    }
    // A regression guard, not a race: every file goes through serde-saphyr, and reading,
    // checking and planning 10,000 stages should stay well under this.
    const TARGET: Duration = Duration::from_millis(400);
    let plan_wall = medians[1].0;
    println!(
        "\ntarget: `respawn plan` under {} -> {} ({})",
        ms(TARGET),
        ms(plan_wall),
        if plan_wall < TARGET { "met" } else { "MISSED" }
    );
    match medians.get(3) {
        Some((peer, _)) => println!(
            "ratio: `respawn plan` takes {:.2}x the time PyYAML needs just to parse the file",
            medians[1].0.as_secs_f64() / peer.as_secs_f64()
        ),
        None => {
            println!("\n(peer skipped: `pip install pyyaml` to measure PyYAML on the same file)")
        }
    }

    // 2. 10,000 simulated trials of a 100-stage workflow.
    let hundred = dir.join("dag-100.yaml");
    std::fs::write(&hundred, generated_dag(100, 10)).unwrap();
    let hundred = hundred.to_str().unwrap();
    let simulate_time = median_of(5, || {
        time_command(respawn, &["simulate", hundred, "--trials", "10000"])
    });
    println!(
        "\n## simulate, generated 100-stage workflow, 10,000 trials per policy (5 policies)\n"
    );
    println!("| what | median of 5 |");
    println!("|---|---|");
    println!(
        "| `respawn simulate --trials 10000` (5 policies, 50,000 simulated runs, 2 threads) | {} |",
        ms(simulate_time)
    );
    let workflow = workflow::load(Path::new(hundred)).unwrap();
    let auto = respawn_core::plan::plan(&workflow, &respawn_core::plan::PlanOptions::default());
    let options = SimOptions {
        trials: 10_000,
        seed: 1,
        mtti: None,
        traces: None,
        threads: 2,
        partial: 0.0,
        capacity: None,
    };
    let interruptions = respawn_core::sim::Interruptions::Exponential { mtti: auto.mtti };
    let one_policy = median_of(5, || {
        let started = Instant::now();
        let outcomes = respawn_core::sim::run_trials(
            &workflow,
            &auto,
            &interruptions,
            &options,
            f64::INFINITY,
        );
        assert_eq!(outcomes.len(), 10_000);
        started.elapsed()
    });
    println!(
        "| 10,000 trials of the `auto` plan alone (library call, 2 threads) | {} |",
        ms(one_policy)
    );

    // 3. auto against the chain optimum and the simple policies.
    println!("\n## auto against the chain optimum (chains) and the simple policies (examples)\n");
    println!(
        "| workflow | mtti | none | all | interval | auto | chain optimum | auto / optimum | auto / best simple |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let fmt = respawn_core::workflow::units::format_seconds;
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    files.sort();
    for file in files {
        let workflow = workflow::load(&file).unwrap();
        let mttis: Vec<u64> = if workflow.name == "spark-chain" {
            vec![1800, 7200, 36_000, 360_000, 3_600_000]
        } else {
            vec![1800, 7200, 36_000, 360_000]
        };
        for mtti in mttis {
            let report = simulate(
                &workflow,
                &SimOptions {
                    trials: 2_000,
                    seed: 1,
                    mtti: Some(Duration::from_secs(mtti)),
                    traces: None,
                    threads: 2,
                    partial: 0.0,
                    capacity: None,
                },
            );
            let mean = |name: &str| report.policies.iter().find(|p| p.name == name).unwrap();
            let cell = |name: &str| {
                let p = mean(name);
                format!(
                    "{}{}",
                    if p.censored_trials > 0 { ">=" } else { "" },
                    fmt(p.mean_makespan)
                )
            };
            let auto = mean("auto").mean_makespan;
            let best = ["none", "all", "interval"]
                .iter()
                .map(|n| mean(n).mean_makespan)
                .fold(f64::INFINITY, f64::min);
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} |",
                workflow.name,
                fmt(mtti as f64),
                cell("none"),
                cell("all"),
                cell("interval"),
                cell("auto"),
                fmt(report.chain_optimum),
                auto / report.chain_optimum,
                auto / best
            );
        }
    }

    // 4. auto on random DAGs (the generator of tests/policy_random_dags.rs).
    println!(
        "\n## auto on random DAGs: mean makespan / best of none, all, interval (2,000 trials)\n"
    );
    println!("| stages | slots | mtti 30m | mtti 2h | mtti 10h | mtti 100h |");
    println!("|---|---|---|---|---|---|");
    let mut worst = 0.0f64;
    for (seed, stages) in [(1u64, 20usize), (2, 60), (3, 200)] {
        for slots in [1u32, 4, 16] {
            let workflow = random_dag::random_dag(seed * 100 + u64::from(slots), stages, slots);
            let mut cells = Vec::new();
            for mtti in [1800u64, 7200, 36_000, 360_000] {
                let report = simulate(
                    &workflow,
                    &SimOptions {
                        trials: 2_000,
                        seed: 1,
                        mtti: Some(Duration::from_secs(mtti)),
                        traces: None,
                        threads: 2,
                        partial: 0.0,
                        capacity: None,
                    },
                );
                let mean = |name: &str| {
                    report
                        .policies
                        .iter()
                        .find(|p| p.name == name)
                        .unwrap()
                        .mean_makespan
                };
                let best = ["none", "all", "interval"]
                    .iter()
                    .map(|n| mean(n))
                    .fold(f64::INFINITY, f64::min);
                let ratio = mean("auto") / best;
                worst = worst.max(ratio);
                cells.push(format!("{ratio:.3}"));
            }
            println!("| {stages} | {slots} | {} |", cells.join(" | "));
        }
    }
    println!("\nworst auto / best: {worst:.3}");
}
