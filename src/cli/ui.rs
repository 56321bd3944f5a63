//! `respawn ui`: a read-only web view of the store on loopback. Workflows, each one's
//! batches as a grid and its runs, and each run's report (reloading while it runs). It reads
//! the store and nothing else, answers GET and HEAD only, and never writes.

use super::{CliError, UiArgs, exit, output, store};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode, header};
use respawn_core::contract::Layout;
use respawn_core::report::page;
use respawn_core::report::render::{self, Link, RunRow, WorkflowRow, escape};
use respawn_core::workflow::names::check_batch;
use respawn_run::read as runview;
use respawn_run::store::{AnyStore, Store, StoreError};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Seconds between reloads of a live run's pages.
const REFRESH_SECONDS: u32 = 5;

pub fn run(args: &UiArgs) -> Result<i32, CliError> {
    let ip = args.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if !ip.is_loopback() && !args.allow_remote {
        return Err(CliError::invalid_input(format!(
            "--bind {ip} is not a loopback address: anyone who reaches it could read the store"
        ))
        .with_hint("add --allow-remote to mean it"));
    }
    let runtime = store::start_runtime()?;
    runtime.block_on(async {
        let store = Arc::new(store::connect(&args.store, None).await?);
        let rendering = Arc::new(tokio::sync::Semaphore::new(RENDERS_AT_ONCE));
        let allow_remote = args.allow_remote;
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, args.port))
            .await
            .map_err(|e| {
                CliError::invalid_input(format!("cannot listen on {ip}:{}: {e}", args.port))
            })?;
        let address = listener
            .local_addr()
            .map_err(|e| CliError::internal(e.to_string()))?;
        output::stdout(&format!("http://{address}/\n"))?;
        output::stderr(&format!(
            "serving {} read-only; Ctrl-C stops\n",
            store.describe()
        ));
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = tokio::signal::ctrl_c() => return Ok(exit::SUCCESS),
            };
            let Ok((socket, _)) = accepted else { continue };
            let (store, rendering) = (store.clone(), rendering.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let (store, rendering) = (store.clone(), rendering.clone());
                    async move {
                        if !allow_remote && !from_loopback_name(&request) {
                            return Ok::<_, Infallible>(foreign_host());
                        }
                        // Pages are rendered a few at a time, so that many views of a large
                        // run wait for each other rather than each hold a copy of it.
                        let _permit = rendering.acquire().await;
                        Ok(answer(&store, &request).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
            });
        }
    })
}

/// How many pages are rendered at once; others wait.
const RENDERS_AT_ONCE: usize = 2;

/// Whether the request names the server by a loopback name (`localhost`, `127.x.y.z`,
/// `[::1]`, with any port). A page of another site that rebinds its own name to 127.0.0.1
/// (DNS rebinding) sends that name, so it is refused and cannot read the store.
fn from_loopback_name<B>(request: &Request<B>) -> bool {
    let host = match request.headers().get(header::HOST) {
        Some(value) => value.to_str().unwrap_or_default(),
        None => request.uri().host().unwrap_or_default(),
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn foreign_host() -> Response<Full<Bytes>> {
    respond(
        StatusCode::FORBIDDEN,
        message_page(
            "respawn ui answers only requests to a loopback name (localhost, 127.0.0.1, [::1]); \
             start it with --allow-remote to serve other names",
        ),
        false,
    )
}

async fn answer<B>(store: &AnyStore, request: &Request<B>) -> Response<Full<Bytes>> {
    let head = request.method() == Method::HEAD;
    if request.method() != Method::GET && !head {
        let mut response = respond(
            StatusCode::METHOD_NOT_ALLOWED,
            message_page("respawn ui is read-only: only GET and HEAD are answered"),
            false,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = request.uri().path();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (status, body) = match parts.as_slice() {
        [""] => (StatusCode::OK, index(store).await),
        ["w", name] if respawn_core::workflow::check_name(name).is_ok() => {
            (StatusCode::OK, workflow(store, name).await)
        }
        ["w", name, "r", run_id]
            if respawn_core::workflow::check_name(name).is_ok() && check_batch(run_id).is_ok() =>
        {
            run_page(store, name, run_id).await
        }
        _ => (
            StatusCode::NOT_FOUND,
            message_page(&format!("nothing at {path}")),
        ),
    };
    respond(status, body, head)
}

fn respond(status: StatusCode, body: String, head: bool) -> Response<Full<Bytes>> {
    let length = body.len();
    let body = if head { String::new() } else { body };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(length));
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    // The pages load nothing: a browser is told so, and refuses anything else.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

fn message_page(text: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><meta charset=\"utf-8\"><title>respawn ui</title>\
         <p><a href=\"/\">all workflows</a></p><p class=\"problems\">{}</p></html>",
        escape(text)
    )
}

async fn index(store: &AnyStore) -> String {
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    let names = match runview::workflows(store).await {
        Ok(names) => names,
        Err(error) => {
            problems.push(error.to_string());
            Vec::new()
        }
    };
    for name in names {
        match runview::list_runs(store, &Layout::new(&name)).await {
            Ok(listing) => {
                problems.extend(listing.damaged().into_iter().map(|d| d.problem));
                let good = &listing.records;
                let latest = good.last();
                rows.push(WorkflowRow {
                    href: format!("/w/{name}"),
                    runs: good.len(),
                    latest_batch: latest.map(|r| r.batch.clone()).unwrap_or_default(),
                    latest_status: latest
                        .map(|r| r.status.as_str().to_string())
                        .unwrap_or_default(),
                    name,
                });
            }
            Err(error) => problems.push(error.to_string()),
        }
    }
    render::index_html(&store.describe(), &rows, &problems)
}

async fn workflow(store: &AnyStore, name: &str) -> String {
    let (rows, problems) = match runview::list_runs(store, &Layout::new(name)).await {
        Ok(listing) => {
            let rows = listing
                .records
                .iter()
                .map(|r| RunRow {
                    batch: r.batch.clone(),
                    run_id: r.run_id.clone(),
                    href: format!("/w/{name}/r/{}", r.run_id),
                    started_at: r.started_at.clone(),
                    finished_at: r.finished_at.clone().unwrap_or_default(),
                    status: r.status.as_str().into(),
                    interruptions: r.interruptions.len(),
                    attempts: r.total_attempts(),
                })
                .collect();
            let problems = listing.damaged().into_iter().map(|d| d.problem).collect();
            (rows, problems)
        }
        Err(error) => (Vec::new(), vec![error.to_string()]),
    };
    render::workflow_html(name, &rows, &problems, REFRESH_SECONDS)
}

async fn run_page(store: &AnyStore, name: &str, run_id: &str) -> (StatusCode, String) {
    let layout = Layout::new(name);
    let loaded = match runview::record(store, &layout, run_id).await {
        Ok(record) => runview::load(store, &layout, record, None, true).await,
        Err(error) => Err(error),
    };
    match loaded {
        Ok(run) => {
            let nav = [
                Link {
                    href: "/".into(),
                    label: "all workflows".into(),
                },
                Link {
                    href: format!("/w/{name}"),
                    label: format!("workflow {name}"),
                },
            ];
            let html = render::report_html(&page(&run.input()), &nav, Some(REFRESH_SECONDS));
            (StatusCode::OK, html)
        }
        Err(StoreError::NotFound { object }) => (
            StatusCode::NOT_FOUND,
            message_page(&format!(
                "no run {run_id} of workflow {name}: {object} is not in the store"
            )),
        ),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            message_page(&format!(
                "run {run_id} of workflow {name} cannot be shown: {error}"
            )),
        ),
    }
}
