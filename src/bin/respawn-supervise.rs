//! The supervisor of one local stage, as a program of its own: `respawn-supervise
//! supervise-stage -- LINE` does what `respawn supervise-stage -- LINE` does (see
//! `respawn_run::cluster::supervisor`). Local clusters start one per stage, so it is kept
//! small: it compiles the one supervisor source file of the run crate on its own, so it
//! links neither the AWS SDK (whose C library runs constructors at every start), clap nor
//! tracing, and starts several times faster than the whole `respawn` binary.

// The run crate uses more of the module (`descendants`, for its tests) than this program.
#[allow(dead_code)]
#[path = "../../run/src/cluster/supervisor.rs"]
mod supervisor;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let line = match (args.next(), args.next(), args.next(), args.next()) {
        (Some(command), Some(dashes), Some(line), None)
            if command == "supervise-stage" && dashes == "--" =>
        {
            line
        }
        _ => {
            eprintln!("usage: respawn-supervise supervise-stage -- LINE (started by respawn)");
            std::process::exit(2);
        }
    };
    let Some(line) = line.to_str() else {
        eprintln!("respawn-supervise: the stage's command line is not UTF-8");
        std::process::exit(2);
    };
    std::process::exit(supervisor::supervise(line));
}
