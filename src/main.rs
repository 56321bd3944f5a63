use clap::Parser;

fn main() {
    let cli = respawn::cli::Cli::parse();
    std::process::exit(respawn::cli::run(cli));
}
