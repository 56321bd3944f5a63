//! Sending one alert to one destination, with retries and backoff: a webhook gets a JSON
//! POST (2xx is delivered; a connection error, a timeout, 408, 429 and 5xx are tried
//! again), an SNS topic gets it published ([`super::sns`]), a command gets it on its
//! standard input (exit 0 is delivered; anything else is tried again). At most [`TRIES`]
//! tries over about half a minute.

use super::Payload;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use respawn_core::workflow::AlertSink;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Tries of one alert to one destination.
pub const TRIES: u32 = 5;
/// How long one try may take.
pub(super) const TRY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a try failed, and whether another may succeed.
pub(super) struct Failure {
    message: String,
    again: bool,
}

/// What a destination needs set up once for all its tries.
enum Ready {
    Https(Box<HttpsClient>),
    Sns(aws_sdk_sns::Client),
    Nothing,
}

/// Delivers `payload` to `sink`; returns how it ended and how many tries it took.
pub async fn deliver(sink: &AlertSink, payload: &Payload, cwd: &Path) -> (Result<(), String>, u32) {
    let body = serde_json::to_vec(payload).unwrap_or_default();
    let tries = AtomicU32::new(0);
    let ready = match sink {
        AlertSink::Webhook(_) => match https_client() {
            Ok(client) => Ready::Https(Box::new(client)),
            Err(error) => return (Err(error), 0),
        },
        AlertSink::Sns(topic) => Ready::Sns(super::sns::client(topic).await),
        AlertSink::Command(_) => Ready::Nothing,
    };
    let attempt = || async {
        tries.fetch_add(1, Ordering::Relaxed);
        match (sink, &ready) {
            (AlertSink::Webhook(url), Ready::Https(client)) => post(client, url, &body).await,
            (AlertSink::Sns(topic), Ready::Sns(client)) => {
                super::sns::publish(client, topic, payload, &body).await
            }
            (AlertSink::Command(line), _) => run(line, &body, payload, cwd).await,
            _ => Err(failure("no client for the destination", false)),
        }
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(8))
        .with_max_times(TRIES as usize - 1)
        .with_jitter()
        .with_jitter_seed(seed());
    let result = attempt.retry(backoff).when(|f: &Failure| f.again).await;
    (result.map_err(|f| f.message), tries.load(Ordering::Relaxed))
}

/// backon's jitter is seeded the same in every process unless told otherwise.
fn seed() -> u64 {
    let nanos = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH))
        .map_or(7, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id())
}

pub(super) fn failure(message: impl Into<String>, again: bool) -> Failure {
    Failure {
        message: message.into(),
        again,
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

fn https_client() -> Result<HttpsClient, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| format!("no TLS roots for webhooks: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

async fn post(client: &HttpsClient, url: &str, body: &[u8]) -> Result<(), Failure> {
    let request = hyper::Request::post(url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("respawn/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| failure(format!("not a request: {e}"), false))?;
    let call = tokio::time::timeout(TRY_TIMEOUT, client.request(request)).await;
    let response = match call {
        Err(_) => return Err(failure("timed out", true)),
        Ok(Err(error)) => return Err(failure(format!("cannot reach it: {error}"), true)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let again = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
    Err(failure(format!("it answered {status}"), again))
}

async fn run(line: &str, body: &[u8], payload: &Payload, cwd: &Path) -> Result<(), Failure> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(cwd)
        .env("RESPAWN_ALERT", payload.event)
        .env("RESPAWN_WORKFLOW", &payload.workflow)
        .env("RESPAWN_BATCH", &payload.batch)
        .env("RESPAWN_RUN_ID", &payload.run_id)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failure(format!("cannot start `{line}`: {e}"), false))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is no failure.
        let _ = stdin.write_all(body).await;
    }
    let waited = tokio::time::timeout(TRY_TIMEOUT, child.wait_with_output()).await;
    match waited {
        Err(_) => Err(failure("timed out", true)),
        Ok(Err(error)) => Err(failure(format!("cannot wait for `{line}`: {error}"), true)),
        Ok(Ok(output)) if output.status.success() => Ok(()),
        Ok(Ok(output)) => {
            let said = String::from_utf8_lossy(&output.stderr);
            let said = said.lines().last().unwrap_or("").trim();
            Err(failure(
                format!("`{line}` exited with {}: {said}", output.status),
                true,
            ))
        }
    }
}
