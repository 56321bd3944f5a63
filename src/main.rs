use clap::Parser;
use std::io::IsTerminal;
use tracing_subscriber::prelude::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = respawn::cli::Cli::parse();
    // Diagnostics of respawn itself go to stderr; `RESPAWN_LOG=debug` (or any
    // tracing-subscriber filter, e.g. `respawn_run=debug,aws_smithy_runtime=debug`) shows more.
    let filter = tracing_subscriber::EnvFilter::try_from_env("RESPAWN_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("respawn=warn,respawn_run=warn,respawn_core=warn")
    });
    // Whatever the filter asks for, the SDK's logs that print credentials are never shown.
    let no_secrets = tracing_subscriber::filter::filter_fn(|meta| {
        respawn::cli::may_log(meta.target(), *meta.level())
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_filter(filter)
        .with_filter(no_secrets);
    tracing_subscriber::registry().with(layer).init();
    std::process::exit(respawn::cli::run(cli));
}
