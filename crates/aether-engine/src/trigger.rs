//! The HTTP trigger: any method on `/fn/{name}` and `/fn/{name}/{*path}`
//! runs function `name` with the rest of the path (`/` when there is none)
//! and the query string. A `wasi:http` component answers the request
//! itself, streaming in both directions; a command (a preview-1 module or
//! a preview-2 command component) is run CGI style (see [`crate::cgi`]).
//! Hop-by-hop headers are neither passed in nor out.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use aether_http::ApiError;
use aether_proto::ErrorCode;
use aether_runtime::{GuestResponse, HttpCall, HttpInvocation, Invocation};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::api::{self, Loaded};
use crate::executor::ExecError;
use crate::hop::strip_hop_by_hop;
use crate::registry::FunctionEntry;
use crate::state::AppState;

/// The function's name and the path it sees, from `/fn/{name}[/{path}]`.
fn split_path(path: &str) -> Option<(&str, String)> {
    let rest = path.strip_prefix("/fn/")?;
    Some(match rest.split_once('/') {
        Some((name, tail)) => (name, format!("/{tail}")),
        None => (rest, "/".to_owned()),
    })
}

/// With `[http] domain`: a request whose Host is `{name}.{domain}` is
/// rewritten to `/fn/{name}{path}` before routing, so it runs function
/// `name` with its whole path and query.
pub async fn route_by_host(
    State(domain): State<Arc<str>>,
    mut request: Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(name) = host_function(request.headers(), &domain) {
        let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str());
        if let Ok(uri) = format!("/fn/{name}{path_and_query}").parse() {
            *request.uri_mut() = uri;
        }
    }
    next.run(request).await
}

/// The function a Host header names under `domain`: `hello` for
/// `hello.fn.example.com[:port]` with domain `fn.example.com`.
fn host_function(headers: &HeaderMap, domain: &str) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let host = host.to_ascii_lowercase();
    let name = host.strip_suffix(domain)?.strip_suffix('.')?;
    (!name.is_empty() && !name.contains('.')).then(|| name.to_owned())
}

/// Any method on `/fn/{name}` and `/fn/{name}/{*path}`.
pub async fn function(State(state): State<AppState>, request: Request) -> Response {
    let mut function = None;
    let result = serve(&state, request, &mut function).await;
    match result {
        Ok(response) => response,
        Err(e) => {
            if let Some(metrics) = state.metrics() {
                let labels = function.as_ref().map(|entry: &Arc<FunctionEntry>| {
                    metrics.function(&entry.stats.metrics, &entry.name)
                });
                metrics.error(labels, e.code());
            }
            e.into_response()
        }
    }
}

async fn serve(
    state: &AppState,
    request: Request,
    function: &mut Option<Arc<FunctionEntry>>,
) -> Result<Response, ApiError> {
    let (name, path) = split_path(request.uri().path()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "an HTTP function is called on /fn/{name}/{path}",
        )
    })?;
    aether_proto::validate_function_name(name)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.to_string()))?;
    let name = name.to_owned();
    let max_input = state.config().max_input;
    // Refused before a byte of the body is read.
    if let Some(length) = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > max_input
    {
        return Err(too_large(length, max_input));
    }
    let entry = api::lookup(state, &name).await?;
    *function = Some(entry.clone());
    let (entry, loaded) = api::load(state, entry).await?;
    let (mut parts, body) = request.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    if loaded.0.shape().is_http() {
        parts.uri = Uri::try_from(path_and_query)
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("invalid path: {e}")))?;
        if !parts.headers.contains_key(header::HOST) {
            parts
                .headers
                .insert(header::HOST, header::HeaderValue::from_static("localhost"));
        }
        serve_component(
            state,
            entry,
            loaded,
            axum::http::Request::from_parts(parts, body),
        )
        .await
    } else {
        serve_cgi(state, entry, loaded, parts, body, &path).await
    }
}

fn too_large(length: u64, max_input: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is {length} bytes; the limit is {max_input}"),
    )
}

/// A `wasi:http` component, inside an execution slot: the guest runs in
/// this request's task until its response head is set, then (if it is
/// still writing its body) as a task of its own.
async fn serve_component(
    state: &AppState,
    entry: Arc<FunctionEntry>,
    (module, _source): Loaded,
    request: axum::http::Request<Body>,
) -> Result<Response, ApiError> {
    let egress = api::egress_policy(&entry)?;
    let call = state
        .runtime()
        .http_call(
            &module,
            HttpInvocation {
                env: &entry.env,
                request,
                https: state.tls().is_some(),
                limits: entry.limits,
                max_request_body: state.config().max_input,
                egress,
            },
        )
        .map_err(|f| ApiError::new(api::failure_code(&f.error), f.error.to_string()))?;
    let HttpCall { guest, response } = call;
    let cut = response.cut_flag();
    let request_id = aether_http::request_id::current();
    let task_state = state.clone();
    let task_entry = entry.clone();
    let function_metrics = state
        .metrics()
        .map(|m| m.function(&entry.stats.metrics, &entry.name));
    if let Some(f) = function_metrics {
        f.invoked();
    }
    // The guest, with its bookkeeping once it ends.
    let guest = async move {
        let state = task_state;
        let entry = task_entry;
        let outcome = state.executor().run(guest).await?;
        let ok = outcome.result.is_ok();
        entry.stats.record(outcome.elapsed, ok);
        if let Some(metrics) = state.metrics() {
            let f = metrics.function(&entry.stats.metrics, &entry.name);
            f.executed(outcome.elapsed, ok.then_some(outcome.peak_memory_bytes));
            metrics.outbound(outcome.outbound);
            if cut.load(Ordering::Relaxed) {
                metrics.error(Some(f), ErrorCode::OutputLimitExceeded);
            } else if let (Err(failure), true) = (&outcome.result, outcome.responded) {
                // After the head was out the client sees a broken body;
                // the error still counts (before it, the answer counts).
                metrics.error(Some(f), api::failure_code(&failure.error));
            }
        }
        Ok::<_, ExecError>(
            outcome
                .result
                .map_err(|failure| api::report_failure(&state, &entry, &failure, request_id)),
        )
    };
    // Run inside this request's task (the executor polls the guest here
    // first, as for /execute): a guest that sets its response and writes
    // its body in one go ends before the head is handed on, with no task
    // spawned and no wake-up across threads. A guest still running when
    // its response arrives (a body larger than the channel holds, a slow
    // one) goes on as a task of its own while the body streams.
    let mut guest = Box::pin(guest);
    let mut response = Box::pin(response.recv());
    let (ended, answer) = tokio::select! {
        biased;
        ended = &mut guest => (ended, response.await),
        answer = &mut response => match answer {
            GuestResponse::None => (guest.await, GuestResponse::None),
            answer => {
                tokio::spawn(guest);
                return answer_of(&entry, answer);
            }
        },
    };
    if !matches!(answer, GuestResponse::None) {
        return answer_of(&entry, answer);
    }
    match ended {
        Ok(Ok(())) => Err(ApiError::new(
            ErrorCode::BadResponse,
            format!(
                "function {} returned without setting a response (wasi:http ResponseOutparam::set)",
                entry.name
            ),
        )),
        Ok(Err(e)) => Err(e),
        Err(ExecError::Overloaded(o)) => Err(ApiError::new(ErrorCode::Overloaded, o.to_string())),
        Err(ExecError::Panicked(msg)) => Err(ApiError::internal("execution failed", &msg)),
    }
}

/// The answer to the client when the guest set a response (or an error).
fn answer_of(entry: &FunctionEntry, answer: GuestResponse) -> Result<Response, ApiError> {
    match answer {
        GuestResponse::Response(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, Body::new(body)))
        }
        GuestResponse::Error(code) => Err(ApiError::new(
            ErrorCode::BadResponse,
            format!("function {} answered with the error {code}", entry.name),
        )),
        GuestResponse::None => Err(ApiError::internal(
            "execution failed",
            "no response and no outcome",
        )),
    }
}

/// A command, CGI style: the body is read whole (up to `max_input`), the
/// program runs like `POST /execute` runs it, and its stdout is parsed as a
/// CGI response.
async fn serve_cgi(
    state: &AppState,
    entry: Arc<FunctionEntry>,
    (module, _source): Loaded,
    parts: axum::http::request::Parts,
    body: Body,
    path: &str,
) -> Result<Response, ApiError> {
    let max_input = state.config().max_input;
    let body = http_body_util::Limited::new(body, usize::try_from(max_input).unwrap_or(usize::MAX))
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body is over the limit of {max_input} bytes"),
                )
            } else {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("cannot read the request body: {e}"),
                )
            }
        })?
        .to_bytes();
    let mut env = entry.env.clone();
    env.extend(crate::cgi::environment(&crate::cgi::CgiRequest {
        name: &entry.name,
        method: &parts.method,
        path_info: path,
        query: parts.uri.query().unwrap_or(""),
        version: parts.version,
        headers: &parts.headers,
        content_length: body.len(),
    }));
    let egress = api::egress_policy(&entry)?;
    let request_id = aether_http::request_id::current();
    let job_state = state.clone();
    let job = async move {
        let state = job_state;
        let invocation = Invocation {
            name: &entry.name,
            args: &entry.args,
            env: &env,
            stdin: body,
            limits: entry.limits,
        };
        let function_metrics = state
            .metrics()
            .map(|m| m.function(&entry.stats.metrics, &entry.name));
        if let Some(f) = function_metrics {
            f.invoked();
        }
        let result = state
            .runtime()
            .execute_with(&module, invocation, egress)
            .await;
        if let (Ok(outcome), Some(metrics)) = (&result, state.metrics()) {
            metrics.outbound(outcome.outbound);
        }
        let elapsed = match &result {
            Ok(o) => o.elapsed,
            Err(f) => f.elapsed,
        };
        entry.stats.record(elapsed, result.is_ok());
        if let Some(f) = function_metrics {
            f.executed(elapsed, result.as_ref().ok().map(|o| o.peak_memory_bytes));
        }
        match result {
            Ok(outcome) => crate::cgi::parse(outcome.stdout).map_err(|reason| {
                ApiError::new(
                    ErrorCode::BadResponse,
                    format!("function {}: {reason}", entry.name),
                )
            }),
            Err(failure) => Err(api::report_failure(&state, &entry, &failure, request_id)),
        }
    };
    let cgi = state.executor().run(job).await.map_err(|e| match e {
        ExecError::Overloaded(o) => ApiError::new(ErrorCode::Overloaded, o.to_string()),
        ExecError::Panicked(msg) => ApiError::internal("execution failed", &msg),
    })??;
    let mut response = Response::new(Body::from(cgi.body));
    *response.status_mut() = cgi.status;
    *response.headers_mut() = cgi.headers;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_sees_the_path_after_its_name() {
        assert_eq!(split_path("/fn/hello"), Some(("hello", "/".into())));
        assert_eq!(split_path("/fn/hello/"), Some(("hello", "/".into())));
        assert_eq!(split_path("/fn/hello/a/b"), Some(("hello", "/a/b".into())));
        assert_eq!(split_path("/execute"), None);
    }

    #[test]
    fn a_host_under_the_domain_names_the_function() {
        let host = |h: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, h.parse().unwrap());
            host_function(&headers, "fn.example.com")
        };
        assert_eq!(host("hello.fn.example.com"), Some("hello".into()));
        assert_eq!(host("Hello.FN.example.com:9091"), Some("hello".into()));
        assert_eq!(host("fn.example.com"), None);
        assert_eq!(host("a.b.fn.example.com"), None);
        assert_eq!(host("hello.fn.example.org"), None);
        assert_eq!(host("evilfn.example.com"), None);
    }
}
