//! A standalone S3 protocol server on loopback: the same s3s-fs server the tests start,
//! for trying respawn against S3 on a laptop and for the store benchmark.
//!
//! ```text
//! cargo run --release --example s3-server -- --root /tmp/s3 --port 9000 --bucket demo
//! export AWS_ACCESS_KEY_ID=respawn-test-access AWS_SECRET_ACCESS_KEY=respawn-test-secret-key
//! export AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:9000
//! respawn history quickstart --store s3://demo/respawn
//! ```

#[path = "../tests/support/s3_server.rs"]
mod s3_server;

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Serve a directory over the S3 protocol on loopback (s3s-fs)")]
struct Args {
    /// Directory that holds the buckets (created if missing).
    #[arg(long)]
    root: PathBuf,
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Buckets to create.
    #[arg(long, default_value = "respawn")]
    bucket: Vec<String>,
    /// Serve as s3s-fs alone does: conditional puts checked and then written, not decided
    /// atomically (a server `respawn store check` must fail).
    #[arg(long)]
    non_atomic: bool,
    /// Serve as s3s-fs alone does: no object tagging (`store check` warns).
    #[arg(long)]
    no_tagging: bool,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = std::fs::create_dir_all(&args.root) {
        eprintln!("error: cannot create {}: {e}", args.root.display());
        std::process::exit(2);
    }
    let buckets: Vec<&str> = args.bucket.iter().map(String::as_str).collect();
    let server =
        match s3_server::S3Server::serve(&args.root, &format!("127.0.0.1:{}", args.port), &buckets)
        {
            Ok(server) => server,
            Err(e) => {
                eprintln!("error: cannot serve on 127.0.0.1:{}: {e}", args.port);
                std::process::exit(1);
            }
        };
    let faults = &server.faults;
    let set = std::sync::atomic::Ordering::SeqCst;
    faults.non_atomic.store(args.non_atomic, set);
    faults.no_tagging.store(args.no_tagging, set);
    println!(
        "serving {} at {} (buckets: {}; access key {}, secret key {})",
        args.root.display(),
        server.endpoint(),
        buckets.join(", "),
        s3_server::ACCESS_KEY,
        s3_server::SECRET_KEY
    );
    // Serve until killed.
    loop {
        std::thread::park();
    }
}
