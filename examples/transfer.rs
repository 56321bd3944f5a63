//! Moves a directory to or from a store with respawn's own transfer code (the code the
//! engine uses for checkpoints), for the store benchmark in BENCHMARKS.md.
//!
//! ```text
//! transfer upload DIR s3://bucket/prefix --manifest files.json
//! transfer download s3://bucket/prefix DIR --manifest files.json
//! transfer delete s3://bucket/prefix
//! ```
//! Credentials and endpoint come from the standard AWS environment.

use clap::{Parser, Subcommand};
use respawn_run::store::{
    AnyStore, FileEntry, S3Options, Store, StoreUrl, download_dir, upload_dir,
};
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Upload {
        dir: PathBuf,
        url: String,
        #[arg(long)]
        manifest: PathBuf,
    },
    Download {
        url: String,
        dir: PathBuf,
        #[arg(long)]
        manifest: PathBuf,
    },
    Delete {
        url: String,
    },
}

async fn open(url: &str) -> Result<AnyStore, String> {
    let url = StoreUrl::parse(url).map_err(|e| e.to_string())?;
    AnyStore::open(&url, &S3Options::default())
        .await
        .map_err(|e| e.to_string())
}

async fn run(args: Args) -> Result<String, String> {
    let options = S3Options::default().transfer;
    match args.command {
        Command::Upload { dir, url, manifest } => {
            let store = open(&url).await?;
            let mut files: Vec<FileEntry> = Vec::new();
            upload_dir(&store, &dir, "", &options, &mut files)
                .await
                .map_err(|e| e.to_string())?;
            let bytes: u64 = files.iter().map(|f| f.size).sum();
            std::fs::write(&manifest, serde_json::to_vec(&files).unwrap())
                .map_err(|e| e.to_string())?;
            Ok(format!("uploaded {} files, {bytes} bytes", files.len()))
        }
        Command::Download { url, dir, manifest } => {
            let store = open(&url).await?;
            let text = std::fs::read(&manifest).map_err(|e| e.to_string())?;
            let files: Vec<FileEntry> = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
            let bytes = download_dir(&store, "", &files, &dir, &options)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "downloaded {} files, {bytes} bytes, checksums verified",
                files.len()
            ))
        }
        Command::Delete { url } => {
            let store = open(&url).await?;
            let count = store.delete_prefix("").await.map_err(|e| e.to_string())?;
            Ok(format!("deleted {count} objects"))
        }
    }
}

fn main() {
    let args = Args::parse();
    let runtime = respawn_run::runtime().expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(message) => println!("{message}"),
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(1);
        }
    }
}
