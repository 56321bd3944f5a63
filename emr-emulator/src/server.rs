//! The wire: HTTP/1.1 on a socket (just what the SDK's client needs: Content-Length bodies,
//! keep-alive, `Expect: 100-continue`), then EMR's awsJson1.1 protocol: the operation from
//! `X-Amz-Target`, the SigV4 `Authorization` header required (not checked), throttling,
//! every request recorded, errors as `{"__type", "message"}`, absent members left out. Also
//! the `/_emulator/` control endpoints. The operations themselves are in `operations.rs`.

use crate::cluster::random_id;
use crate::emulator::{Request, Shared};
use crate::operations::call;
use crate::sns;
use crate::sqs;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) async fn connection(shared: Arc<Shared>, mut socket: tokio::net::TcpStream) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 64 << 10 {
                return;
            }
            match socket.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or("").split(' ');
        let method = request_line.next().unwrap_or("").to_string();
        let path = request_line.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (status, body, content_type) = if header("transfer-encoding").is_some() {
            let error = error_json("SerializationException", "a Content-Length is required");
            (411, error, "application/x-amz-json-1.1")
        } else {
            if length > 16 << 20 {
                return;
            }
            if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
                && socket
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .await
                    .is_err()
            {
                return;
            }
            while buf.len() < head_end + length {
                match socket.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            route(
                &shared,
                &method,
                &path,
                header("x-amz-target"),
                header("authorization"),
                &buf[head_end..head_end + length],
            )
            .await
        };
        buf.drain(..(head_end + length).min(buf.len()));
        // SNS answers in XML, carried as a JSON string.
        let text = match body {
            Value::String(xml) if content_type == XML => xml,
            body => body.to_string(),
        };
        let response = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             x-amzn-RequestId: {}\r\n{}\r\n{text}",
            if status == 200 { "OK" } else { "Error" },
            text.len(),
            random_id("", 16).to_lowercase(),
            if close { "Connection: close\r\n" } else { "" },
        );
        if socket.write_all(response.as_bytes()).await.is_err() || close || status == 411 {
            return;
        }
    }
}

const XML: &str = "text/xml";

fn error_json(kind: &str, message: &str) -> Value {
    json!({ "__type": kind, "message": message })
}

async fn route(
    shared: &Arc<Shared>,
    method: &str,
    path: &str,
    target: Option<&str>,
    authorization: Option<&str>,
    body: &[u8],
) -> (u16, Value, &'static str) {
    const AMZ_JSON: &str = "application/x-amz-json-1.1";
    if let Some(control) = path.strip_prefix("/_emulator/") {
        let (status, body) = control_route(shared, method, control);
        return (status, body, "application/json");
    }
    if let Some(operation) = target.and_then(|t| t.strip_prefix("AmazonSQS.")) {
        let (status, body) = sqs_route(shared, operation, authorization, body).await;
        return (status, body, "application/x-amz-json-1.0");
    }
    let form = std::str::from_utf8(body)
        .map(sns::decode_form)
        .unwrap_or_default();
    if target.is_none() && method == "POST" && form.iter().any(|(k, _)| k == "Action") {
        let (status, xml) = sns_route(shared, authorization, &form);
        return (status, Value::String(xml), XML);
    }
    let Some(operation) = target.and_then(|t| t.strip_prefix("ElasticMapReduce.")) else {
        let error = error_json(
            "UnknownOperationException",
            "no ElasticMapReduce X-Amz-Target",
        );
        return (400, error, AMZ_JSON);
    };
    if method != "POST" || path != "/" {
        let error = error_json("UnknownOperationException", "requests are POST /");
        return (400, error, AMZ_JSON);
    }
    let parsed: Result<Value, _> = if body.is_empty() {
        Ok(json!({}))
    } else {
        serde_json::from_slice(body)
    };
    {
        let mut state = shared.state.lock().unwrap();
        state.requests.push(Request {
            operation: operation.into(),
            body: parsed.as_ref().cloned().unwrap_or(Value::Null),
        });
        let signed = authorization.is_some_and(|a| {
            a.starts_with("AWS4-HMAC-SHA256") && a.contains("/elasticmapreduce/aws4_request")
        });
        if !signed {
            let error = error_json(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            );
            return (400, error, AMZ_JSON);
        }
        if state.throttle > 0 {
            state.throttle -= 1;
            state.throttled += 1;
            return (
                400,
                error_json("ThrottlingException", "Rate exceeded"),
                AMZ_JSON,
            );
        }
    }
    let Ok(body) = parsed else {
        let error = error_json("SerializationException", "the body is not JSON");
        return (400, error, AMZ_JSON);
    };
    match call(shared, operation, &body) {
        Ok(value) => (200, strip_nulls(value), AMZ_JSON),
        Err(e) => (400, error_json(e.kind, &e.message), AMZ_JSON),
    }
}

/// SQS's awsJson1.0: signed for `sqs`, QueueUrl in the body, errors as
/// `com.amazonaws.sqs#<Code>`.
async fn sqs_route(
    shared: &Arc<Shared>,
    operation: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    let signed = authorization
        .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256") && a.contains("/sqs/aws4_request"));
    if !signed {
        return (
            400,
            error_json(
                "com.amazonaws.sqs#MissingAuthenticationToken",
                "Missing Authentication Token",
            ),
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(if body.is_empty() { b"{}" } else { body })
    else {
        return (
            400,
            error_json("com.amazonaws.sqs#InvalidRequest", "the body is not JSON"),
        );
    };
    let result = match operation {
        "ReceiveMessage" => sqs::receive(&shared.queues, &body).await,
        "DeleteMessage" => shared.queues.lock().unwrap().delete(&body),
        _ => Err(sqs::SqsError {
            kind: "UnsupportedOperation",
            message: format!("the emulator does not serve SQS {operation}"),
        }),
    };
    match result {
        Ok(value) => (200, value),
        Err(e) => (
            400,
            error_json(&format!("com.amazonaws.sqs#{}", e.kind), &e.message),
        ),
    }
}

/// SNS's query protocol: signed for `sns`, form fields in, XML out.
fn sns_route(
    shared: &Arc<Shared>,
    authorization: Option<&str>,
    form: &[(String, String)],
) -> (u16, String) {
    let signed = authorization
        .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256") && a.contains("/sns/aws4_request"));
    if !signed {
        let xml = sns::error_xml("MissingAuthenticationToken", "Missing Authentication Token");
        return (403, xml);
    }
    match shared.topics.lock().unwrap().call(form) {
        Ok(xml) => (200, xml),
        Err(e) => (e.status, sns::error_xml(e.code, &e.message)),
    }
}

fn control_route(shared: &Arc<Shared>, method: &str, path: &str) -> (u16, Value) {
    match (method, path.split_once('/').unwrap_or((path, ""))) {
        ("POST", ("lose", id)) => {
            let lost = shared.lose(id);
            (if lost { 200 } else { 404 }, json!({ "lost": lost }))
        }
        ("POST", ("throttle", n)) => match n.parse::<u32>() {
            Ok(n) => {
                shared.state.lock().unwrap().throttle = n;
                (200, json!({ "throttle": n }))
            }
            Err(_) => (
                400,
                json!({ "message": "expected /_emulator/throttle/<n>" }),
            ),
        },
        ("GET", ("clusters", "")) => (200, json!(shared.clusters())),
        ("POST", ("reclaim", rest)) => {
            let (id, lead) = rest.split_once('/').unwrap_or((rest, "120"));
            match lead
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
            {
                Some(lead) => {
                    let warned = shared.reclaim(id, std::time::Duration::from_secs_f64(lead));
                    (
                        if warned.is_empty() { 404 } else { 200 },
                        json!({ "instances": warned }),
                    )
                }
                None => (
                    400,
                    json!({ "message": "expected /_emulator/reclaim/<cluster-id>/<lead seconds>" }),
                ),
            }
        }
        ("POST", ("reclaim-nodes", rest)) => reclaim_nodes(shared, rest),
        ("POST", ("rebalance", id)) => {
            let warned = shared.recommend_rebalance(id);
            (
                if warned.is_empty() { 404 } else { 200 },
                json!({ "instances": warned }),
            )
        }
        _ => (404, json!({ "message": "unknown control endpoint" })),
    }
}

/// Absent members are left out, as EMR does.
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// `reclaim-nodes/<cluster-id>/<MASTER|CORE|TASK>/<count>/<lead seconds or now>`: EC2
/// reclaims that many spot nodes of the fleet, and the steps running then fail.
fn reclaim_nodes(shared: &Shared, rest: &str) -> (u16, Value) {
    let usage = "expected /_emulator/reclaim-nodes/<cluster-id>/<MASTER|CORE|TASK>/<count>/<lead seconds or now>";
    let parts: Vec<&str> = rest.split('/').collect();
    let [id, fleet, count, lead] = parts[..] else {
        return (400, json!({ "message": usage }));
    };
    let lead = match lead {
        "now" => Some(None),
        seconds => seconds
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Some(std::time::Duration::from_secs_f64(s))),
    };
    match (count.parse::<usize>(), lead) {
        (Ok(count), Some(lead)) if ["MASTER", "CORE", "TASK"].contains(&fleet) => {
            let chosen = shared.reclaim_nodes(id, fleet, count, lead, true);
            (
                if chosen.is_empty() { 404 } else { 200 },
                json!({ "instances": chosen }),
            )
        }
        _ => (400, json!({ "message": usage })),
    }
}
