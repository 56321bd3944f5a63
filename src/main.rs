use clap::Parser;
use std::io::IsTerminal;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = respawn::cli::Cli::parse();
    // Diagnostics of respawn itself go to stderr; `RESPAWN_LOG=debug` (or any
    // tracing-subscriber filter, e.g. `respawn=debug,aws_smithy_runtime=debug`) shows more.
    let filter = tracing_subscriber::EnvFilter::try_from_env("RESPAWN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("respawn=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
    std::process::exit(respawn::cli::run(cli));
}
