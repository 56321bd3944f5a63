//! A fault-injecting HTTP proxy for S3 traffic, between respawn and the S3 test server
//! ([`super::s3_server`]), for tests of what a run does when its store misbehaves.
//!
//! Every request gets one decision, drawn in arrival order from a seeded generator
//! ([`FaultPlan::seed`]): pass it on, or one of these faults:
//! - **503 SlowDown**, not passed on (S3's answer under load);
//! - **500 InternalError**, passed on or not (a seeded coin): S3 says a 500 may or may not
//!   have been applied, and a client must cope with both;
//! - **reset before the response head**: the request is passed on and applied, then the
//!   client's connection is closed before any byte of the answer (the client cannot know
//!   whether its write happened);
//! - **reset inside the body**: the answer's head and half its body are sent, then the
//!   connection is closed;
//! - **a delay** of up to [`FaultPlan::max_delay`] before the request is passed on;
//! - **an outage**: from the request numbered [`Outage::at_request`], for
//!   [`Outage::length`], every connection is closed as it comes and every request on an
//!   open one is dropped unanswered.
//!
//! Requests are passed on with their headers unchanged (SigV4 signs the `Host` header the
//! client sent, which the server checks as given), each on a new connection to the server.
//! Faults are injected only while the proxy is armed ([`FaultProxy::arm`]), so that a test
//! can set up its bucket first. Each fault is counted by kind.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use rand::{Rng, SeedableRng};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A stretch of time when the store answers nothing.
#[derive(Clone, Debug)]
pub struct Outage {
    /// It starts when the armed proxy sees this request (counted from 0).
    pub at_request: u64,
    pub length: Duration,
}

/// What to inject, and how often (each a probability per request, drawn in this order).
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    pub seed: u64,
    pub slow_down: f64,
    pub internal_error: f64,
    pub reset_before_head: f64,
    pub reset_in_body: f64,
    pub delay: f64,
    pub max_delay: Duration,
    pub outages: Vec<Outage>,
}

/// The kinds of fault, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    SlowDown,
    InternalError,
    ResetBeforeHead,
    ResetInBody,
    Delay,
    Outage,
}

const KINDS: [Fault; 6] = [
    Fault::SlowDown,
    Fault::InternalError,
    Fault::ResetBeforeHead,
    Fault::ResetInBody,
    Fault::Delay,
    Fault::Outage,
];

struct State {
    plan: FaultPlan,
    upstream: String,
    armed: AtomicBool,
    rng: Mutex<rand_pcg::Pcg64>,
    requests: AtomicU64,
    counts: [AtomicU64; 6],
    /// When the current outage ends, if one is going on; and the outages not yet started.
    outage_until: Mutex<Option<Instant>>,
    pending: Mutex<Vec<Outage>>,
}

/// What the proxy does with one request.
enum Decision {
    Pass,
    Fault(Fault, bool),
}

impl State {
    fn count(&self, fault: Fault) {
        self.counts[fault as usize].fetch_add(1, Ordering::SeqCst);
    }

    fn in_outage(&self) -> bool {
        let mut until = self.outage_until.lock().unwrap();
        match *until {
            Some(end) if Instant::now() < end => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    fn decide(&self) -> Decision {
        if !self.armed.load(Ordering::SeqCst) {
            return Decision::Pass;
        }
        let number = self.requests.fetch_add(1, Ordering::SeqCst);
        {
            let mut pending = self.pending.lock().unwrap();
            if let Some(i) = pending.iter().position(|o| o.at_request <= number) {
                let outage = pending.remove(i);
                *self.outage_until.lock().unwrap() = Some(Instant::now() + outage.length);
            }
        }
        if self.in_outage() {
            return Decision::Fault(Fault::Outage, false);
        }
        let mut rng = self.rng.lock().unwrap();
        let plan = &self.plan;
        let draws = [
            (plan.slow_down, Fault::SlowDown),
            (plan.internal_error, Fault::InternalError),
            (plan.reset_before_head, Fault::ResetBeforeHead),
            (plan.reset_in_body, Fault::ResetInBody),
            (plan.delay, Fault::Delay),
        ];
        for (probability, fault) in draws {
            if probability > 0.0 && rng.random_bool(probability.min(1.0)) {
                let coin = rng.random_bool(0.5);
                return Decision::Fault(fault, coin);
            }
        }
        Decision::Pass
    }
}

/// A running proxy; stopped when dropped.
pub struct FaultProxy {
    endpoint: String,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type ProxyBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// A body that sends its first half and then fails, which makes the server cut the
/// connection inside the body (its `Content-Length` promised more).
struct CutBody {
    data: Option<Bytes>,
}

impl Body for CutBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.data.take() {
            Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
            None => Poll::Ready(Some(Err(std::io::Error::other("injected: body cut")))),
        }
    }
}

fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

fn error_response(status: u16, code: &str) -> hyper::Response<ProxyBody> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>injected by the fault proxy</Message><RequestId>fault</RequestId></Error>"
    );
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("content-length", body.len())
        .body(full(Bytes::from(body)))
        .expect("a valid response")
}

/// Sends one request to the server on a new connection and reads the whole answer.
async fn forward(
    upstream: &str,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> std::io::Result<(hyper::http::response::Parts, Bytes)> {
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = hyper::Request::from_parts(parts, Full::new(body));
    // The proxy has read the whole body already; the server need not ask for it.
    request.headers_mut().remove(hyper::header::EXPECT);
    let response = sender
        .send_request(request)
        .await
        .map_err(std::io::Error::other)?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok((parts, body))
}

async fn handle(
    state: Arc<State>,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<ProxyBody>, std::io::Error> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let fault = match state.decide() {
        Decision::Pass => None,
        Decision::Fault(fault, coin) => Some((fault, coin)),
    };
    // Each fault is counted where it is injected.
    let counted = |fault| {
        state.count(fault);
    };
    match fault {
        Some((Fault::Outage, _)) => {
            counted(Fault::Outage);
            return Err(std::io::Error::other("injected: outage"));
        }
        Some((Fault::SlowDown, _)) => {
            counted(Fault::SlowDown);
            return Ok(error_response(503, "SlowDown"));
        }
        Some((Fault::InternalError, false)) => {
            counted(Fault::InternalError);
            return Ok(error_response(500, "InternalError"));
        }
        Some((Fault::Delay, _)) => {
            counted(Fault::Delay);
            let nanos = state.plan.max_delay.as_nanos() as u64;
            let wait = state.rng.lock().unwrap().random_range(0..=nanos);
            tokio::time::sleep(Duration::from_nanos(wait)).await;
        }
        _ => {}
    }
    let (head, answer) = match forward(&state.upstream, parts, body).await {
        Ok(answered) => answered,
        // The server is the test's own: failing to reach it is not an injected fault.
        Err(e) => return Ok(error_response(502, &format!("ProxyUpstream {e}"))),
    };
    match fault {
        Some((Fault::InternalError, true)) => {
            counted(Fault::InternalError);
            Ok(error_response(500, "InternalError"))
        }
        Some((Fault::ResetBeforeHead, _)) => {
            counted(Fault::ResetBeforeHead);
            Err(std::io::Error::other("injected: reset"))
        }
        // An answer without a body (most writes) cannot be cut inside it.
        Some((Fault::ResetInBody, _)) if answer.len() >= 2 => {
            counted(Fault::ResetInBody);
            let half = answer.slice(..answer.len() / 2);
            Ok(hyper::Response::from_parts(
                head,
                CutBody { data: Some(half) }.boxed(),
            ))
        }
        _ => Ok(hyper::Response::from_parts(head, full(answer))),
    }
}

impl FaultProxy {
    /// A proxy on a free loopback port in front of `upstream` (`http://host:port`), not armed.
    pub fn start(upstream: &str, plan: FaultPlan) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .to_string();
        let state = Arc::new(State {
            rng: Mutex::new(rand_pcg::Pcg64::seed_from_u64(plan.seed)),
            pending: Mutex::new(plan.outages.clone()),
            plan,
            upstream,
            armed: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            counts: Default::default(),
            outage_until: Mutex::new(None),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the proxy");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let http = hyper::server::conn::http1::Builder::new();
                loop {
                    let socket = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((socket, _)) => socket,
                            Err(_) => continue,
                        },
                        _ = &mut stop => break,
                    };
                    if serving.armed.load(Ordering::SeqCst) && serving.in_outage() {
                        serving.count(Fault::Outage);
                        drop(socket);
                        continue;
                    }
                    let _ = socket.set_nodelay(true);
                    let state = serving.clone();
                    let service =
                        hyper::service::service_fn(move |request| handle(state.clone(), request));
                    let connection =
                        http.serve_connection(hyper_util::rt::TokioIo::new(socket), service);
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                }
            });
            runtime.shutdown_background();
        });
        FaultProxy {
            endpoint,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Starts (or stops) injecting faults.
    pub fn arm(&self, armed: bool) {
        self.state.armed.store(armed, Ordering::SeqCst);
    }

    /// How many faults of this kind were injected.
    pub fn count(&self, fault: Fault) -> u64 {
        self.state.counts[fault as usize].load(Ordering::SeqCst)
    }

    /// Every fault injected, delays included.
    pub fn injected(&self) -> u64 {
        KINDS.iter().map(|k| self.count(*k)).sum()
    }

    /// Requests seen while armed.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// "503 SlowDown 12, 500 InternalError 7, ..." for a test's output.
    pub fn summary(&self) -> String {
        KINDS
            .iter()
            .map(|k| format!("{k:?} {}", self.count(*k)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
