//! The supervisor of a local cluster's stages, as a program of its own:
//! `respawn-supervise supervise-cluster` does what `respawn supervise-cluster` does (see
//! `respawn_run::cluster::supervisor`). It compiles the one supervisor source file of the
//! run crate on its own, so it links neither the AWS SDK (whose C library runs
//! constructors at every start), clap nor tracing: it starts fast and stays small, and
//! each stage's keeper is a fork of it.

// The run crate uses more of these modules (the requests' encoding) than this program.
#[allow(dead_code)]
#[path = "../../run/src/cluster/supervisor.rs"]
mod supervisor;
#[allow(dead_code)]
#[path = "../../run/src/cluster/wire.rs"]
mod wire;

fn main() {
    let mut args = std::env::args_os().skip(1);
    match (args.next(), args.next()) {
        (Some(command), None) if command == supervisor::COMMAND => {
            std::process::exit(supervisor::supervise_cluster())
        }
        _ => {
            eprintln!(
                "usage: respawn-supervise {} (started by respawn)",
                supervisor::COMMAND
            );
            std::process::exit(2);
        }
    }
}
