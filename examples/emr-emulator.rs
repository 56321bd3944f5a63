//! A standalone EMR protocol emulator on loopback: the one the tests start, for trying the
//! EMR provider on a laptop. Steps run as local processes against an S3 server (for example
//! `cargo run --example s3-server`).
//!
//! ```text
//! cargo run --example s3-server -- --root /tmp/s3 --port 9000 --bucket respawn
//! cargo run --example emr-emulator -- --port 8900 --s3-endpoint http://127.0.0.1:9000 --work-dir /tmp/emr
//!     [--spark-submit .venv/bin/spark-submit]   # real PySpark in local mode
//! export AWS_ENDPOINT_URL_EMR=http://127.0.0.1:8900 ...   (printed at start)
//! curl -X POST http://127.0.0.1:8900/_emulator/lose/j-XXXXXXXXXXXXX     # a spot loss
//! curl -X POST http://127.0.0.1:8900/_emulator/throttle/3               # throttle 3 requests
//! curl http://127.0.0.1:8900/_emulator/clusters
//! ```

use clap::Parser;
use respawn_emr_emulator::{EmrEmulator, EmulatorConfig};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Emulate Amazon EMR's API on loopback, running steps as local processes")]
struct Args {
    #[arg(long, default_value_t = 8900)]
    port: u16,
    /// The S3 server steps read from and write to.
    #[arg(long)]
    s3_endpoint: String,
    /// Where step processes run and each cluster's HDFS lives (created if missing).
    #[arg(long)]
    work_dir: PathBuf,
    /// STARTING to WAITING.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    start_delay: Duration,
    /// Scale of auto-termination idle timeouts (0.01: IdleTimeout 60 s lasts 0.6 s).
    #[arg(long, default_value_t = 1.0)]
    idle_timeout_scale: f64,
    /// S3 access key id (default: the test S3 server's).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", requires = "s3_secret_key")]
    s3_access_key: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    s3_secret_key: Option<String>,
    /// Run steps' PySpark applications with this spark-submit in local mode (pyspark's,
    /// e.g. `.venv/bin/spark-submit`); without it they run as `python3 app.py`.
    #[arg(long, env = "RESPAWN_SPARK_SUBMIT")]
    spark_submit: Option<PathBuf>,
    /// An SQS queue EC2's spot warnings reach (`POST /_emulator/reclaim/<id>/<seconds>`
    /// puts them there): its URL is printed, for `cluster.emr.notice_queue`.
    #[arg(long, value_name = "NAME")]
    notice_queue: Option<String>,
}

fn main() {
    let args = Args::parse();
    let mut config = EmulatorConfig::new(&args.s3_endpoint, &args.work_dir);
    config.start_delay = args.start_delay;
    config.idle_timeout_scale = args.idle_timeout_scale;
    config.s3_credentials = args.s3_access_key.zip(args.s3_secret_key);
    config.spark_submit = args.spark_submit.clone();
    let emulator = match EmrEmulator::serve(config, &format!("127.0.0.1:{}", args.port)) {
        Ok(emulator) => emulator,
        Err(e) => {
            eprintln!("error: cannot serve on 127.0.0.1:{}: {e}", args.port);
            std::process::exit(1);
        }
    };
    println!(
        "EMR emulator at {} (steps in {}, S3 at {})",
        emulator.endpoint(),
        args.work_dir.display(),
        args.s3_endpoint
    );
    println!("a client needs:");
    println!("  export AWS_ENDPOINT_URL_EMR={}", emulator.endpoint());
    println!("  export AWS_ENDPOINT_URL_S3={}", args.s3_endpoint);
    if let Some(name) = &args.notice_queue {
        println!("  export AWS_ENDPOINT_URL_SQS={}", emulator.endpoint());
        println!(
            "  and in the workflow: cluster.emr.notice_queue: {}",
            emulator.create_queue(name)
        );
    }
    println!("  export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true");
    println!(
        "  export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...   (any, for EMR; S3's, for S3)"
    );
    // Serve until killed.
    loop {
        std::thread::park();
    }
}
