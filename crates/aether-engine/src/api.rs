//! HTTP handlers: `POST /execute`, `GET /health`, and JSON answers for
//! unknown routes and methods.

use std::sync::Arc;

use aether_http::ApiError;
use aether_http::guard::MissingContentType;
use aether_proto::control::{ExecutionFailedReport, NotifyAccepted};
use aether_proto::{EdgeHealth, ErrorCode, ExecuteResponse};
use aether_runtime::{CompileError, EgressPolicy, Invocation, InvokeError, ModuleSource};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::executor::ExecError;
use crate::registry::FunctionEntry;
use crate::state::AppState;

/// `POST /execute`.
pub async fn execute(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let mut function = None;
    let result = execute_request(&state, &headers, body, &mut function).await;
    if let (Err(e), Some(metrics)) = (&result, state.metrics()) {
        let labels = function
            .as_ref()
            .map(|entry: &Arc<FunctionEntry>| metrics.function(&entry.stats.metrics, &entry.name));
        metrics.error(labels, e.code());
    }
    result
}

/// `POST /execute` proper; sets `function` once the name is known to be
/// served here (for the error metrics).
async fn execute_request(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    function: &mut Option<Arc<FunctionEntry>>,
) -> Result<Response, ApiError> {
    aether_http::guard::require_json(headers, MissingContentType::Allowed)?;
    let body = body?;
    let request: crate::input::ExecuteBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("invalid request body: {e}"),
        )
    })?;
    aether_proto::validate_function_name(&request.function)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.to_string()))?;
    let stdin = match (request.input, request.stdin) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "give either `input` (JSON) or `stdin` (text), not both",
            ));
        }
        (Some(input), None) => Bytes::from(input),
        (None, Some(text)) => Bytes::from(text),
        (None, None) => Bytes::new(),
    };
    let max_input = state.config().max_input;
    if stdin.len() as u64 > max_input {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("input is {} bytes; the limit is {max_input}", stdin.len()),
        ));
    }
    let entry = lookup(state, &request.function).await?;
    *function = Some(entry.clone());
    let job_state = state.clone();
    // Events name the request's id: the current one (the request context's,
    // with telemetry on), else the client's if it sent an acceptable one.
    let client_id = if !state.config().telemetry {
        aether_http::request_id::RequestId::from_client(headers)
    } else {
        None
    };
    let job = async move { run_function(&job_state, entry, stdin, client_id).await };
    let response = state.executor().run(job).await.map_err(|e| match e {
        ExecError::Overloaded(o) => ApiError::new(ErrorCode::Overloaded, o.to_string()),
        ExecError::Panicked(msg) => ApiError::internal("execution failed", &msg),
    })??;
    let json = serde_json::to_vec(&response)
        .map_err(|e| ApiError::internal("cannot serialise the response", &e))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response())
}

/// Finds a function, looking at `func_dir` when it is not known yet (a
/// file added a moment ago is served without waiting for the next scan).
pub(crate) async fn lookup(state: &AppState, name: &str) -> Result<Arc<FunctionEntry>, ApiError> {
    if let Some(entry) = state.registry().get(name) {
        return Ok(entry);
    }
    let (s, n) = (state.clone(), name.to_owned());
    let found = tokio::task::spawn_blocking(move || s.registry().refresh_one(&n))
        .await
        .map_err(|e| ApiError::internal("function lookup failed", &e))?
        .map_err(|e| ApiError::internal("cannot read the function directory", &e))?;
    if let Some(entry) = found {
        return Ok(entry);
    }
    // The control plane may know it already (a deploy whose notification
    // has not arrived): pull before answering 404.
    if let Some(dist) = state.distribution() {
        crate::distribution::reconcile_on_demand(dist).await;
    }
    state.registry().get(name).ok_or_else(|| not_found(name))
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::FunctionNotFound,
        format!("function {name} not found"),
    )
}

/// Loads (from cache, disk artifact or wasm) and runs a function.
async fn run_function(
    state: &AppState,
    entry: Arc<FunctionEntry>,
    stdin: Bytes,
    client_id: Option<aether_http::request_id::RequestId>,
) -> Result<ExecuteResponse, ApiError> {
    let runtime = state.runtime();
    let metrics = state.metrics();
    let (entry, (module, source)) = load(state, entry).await?;
    if module.shape().is_http() {
        return Err(ApiError::new(
            ErrorCode::WrongKind,
            format!(
                "function {} is an HTTP function (a wasi:http component): call it with any method on /fn/{}/…, not POST /execute",
                entry.name, entry.name
            ),
        ));
    }
    let invocation = Invocation {
        name: &entry.name,
        args: &entry.args,
        env: &entry.env,
        stdin,
        limits: entry.limits,
    };
    let function_metrics = metrics.map(|m| m.function(&entry.stats.metrics, &entry.name));
    if let Some(f) = function_metrics {
        f.invoked();
    }
    let egress = egress_policy(&entry)?;
    let result = runtime.execute_with(&module, invocation, egress).await;
    if let (Ok(outcome), Some(metrics)) = (&result, metrics) {
        metrics.outbound(outcome.outbound);
    }
    match &result {
        Ok(outcome) => {
            entry.stats.record(outcome.elapsed, true);
            if let Some(f) = function_metrics {
                f.executed(outcome.elapsed, Some(outcome.peak_memory_bytes));
            }
        }
        Err(failure) => {
            entry.stats.record(failure.elapsed, false);
            if let Some(f) = function_metrics {
                f.executed(failure.elapsed, None);
            }
        }
    }
    match result {
        Ok(outcome) => Ok(ExecuteResponse {
            output: String::from_utf8_lossy(&outcome.stdout).into_owned(),
            exit_code: outcome.exit_code,
            stderr: String::from_utf8_lossy(&outcome.stderr).into_owned(),
            execution_time_ms: outcome.elapsed.as_secs_f64() * 1000.0,
            memory_used_kb: outcome.peak_memory_bytes.div_ceil(1024),
            cache: crate::loader::cache_source(source),
            outbound_requests: outcome.outbound.requests,
            outbound_bytes: outcome.outbound.bytes,
        }),
        Err(failure) => Err(report_failure(
            state,
            &entry,
            &failure,
            aether_http::request_id::current()
                .or_else(|| client_id.as_ref().map(ToString::to_string)),
        )),
    }
}

/// The function's outbound allow-list ([`FunctionEntry::egress`]), or the
/// answer when it cannot be parsed.
pub(crate) fn egress_policy(entry: &FunctionEntry) -> Result<Arc<EgressPolicy>, ApiError> {
    entry.egress().map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("function {}: allowed_outbound_hosts: {e}", entry.name),
        )
    })
}

/// The error code of a failed invocation.
pub(crate) fn failure_code(error: &InvokeError) -> ErrorCode {
    match error {
        InvokeError::Timeout { .. } => ErrorCode::Timeout,
        InvokeError::MemoryLimit { .. } => ErrorCode::MemoryLimitExceeded,
        InvokeError::OutputLimit { .. } => ErrorCode::OutputLimitExceeded,
        InvokeError::StackOverflow | InvokeError::Trap { .. } => ErrorCode::Trap,
        InvokeError::NotCallable { .. } => ErrorCode::WrongKind,
        InvokeError::Instantiate { .. } => ErrorCode::Internal,
    }
}

/// Reports a failed invocation as an event and returns its error answer
/// (with the function's stderr).
pub(crate) fn report_failure(
    state: &AppState,
    entry: &FunctionEntry,
    failure: &aether_runtime::Failure,
    request_id: Option<String>,
) -> ApiError {
    let code = failure_code(&failure.error);
    tracing::debug!(function = %entry.name, error = %failure, "execution failed");
    let stderr = String::from_utf8_lossy(&failure.stderr).into_owned();
    let report = ExecutionFailedReport {
        function: entry.name.clone(),
        version: entry.version,
        code,
        message: failure.error.to_string(),
        stderr: crate::events::stderr_excerpt(&stderr).to_owned(),
        execution_time_ms: failure.elapsed.as_secs_f64() * 1000.0,
        request_id,
    };
    state.events().report(&report);
    ApiError::new(code, format!("function {}: {}", entry.name, failure.error)).with_stderr(stderr)
}

/// The function's module, from memory (linked, or held and linked now)
/// or else (on a blocking thread: reading and compiling block) from its
/// disk artifact or its wasm.
pub(crate) async fn load(
    state: &AppState,
    entry: Arc<FunctionEntry>,
) -> Result<(Arc<FunctionEntry>, Loaded), ApiError> {
    match state.runtime().load_cached(&entry.hash) {
        Some(module) => Ok((entry, (module, ModuleSource::Memory))),
        None => {
            let s = state.clone();
            tokio::task::spawn_blocking(move || load_blocking(&s, entry))
                .await
                .map_err(|e| ApiError::internal("module load failed", &e))?
        }
    }
}

/// A module ready to run, and where it came from.
pub(crate) type Loaded = (Arc<aether_runtime::LoadedModule>, ModuleSource);

/// A module not in memory: from the disk artifact or compiled (blocking).
fn load_blocking(
    state: &AppState,
    entry: Arc<FunctionEntry>,
) -> Result<(Arc<FunctionEntry>, Loaded), ApiError> {
    let load = |entry: &FunctionEntry| {
        crate::loader::load_module(state.runtime(), state.metrics(), entry.hash, &entry.path)
    };
    match load(&entry) {
        Ok(loaded) => Ok((entry, loaded)),
        // The file changed since it was registered: look again, once.
        Err(CompileError::HashMismatch { .. }) => {
            let fresh = state
                .registry()
                .refresh_one(&entry.name)
                .map_err(|e| ApiError::internal("cannot read the function directory", &e))?
                .ok_or_else(|| not_found(&entry.name))?;
            let loaded = load(&fresh).map_err(|e| compile_error(&fresh.name, e))?;
            Ok((fresh, loaded))
        }
        Err(e) => Err(compile_error(&entry.name, e)),
    }
}

fn compile_error(name: &str, e: CompileError) -> ApiError {
    match e {
        CompileError::InvalidWasm { .. } | CompileError::NotCommand { .. } => ApiError::new(
            ErrorCode::InvalidWasm,
            format!("function {name} cannot be loaded: {e}"),
        ),
        CompileError::Read { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            not_found(name)
        }
        CompileError::OverBudget { .. } => ApiError::new(
            ErrorCode::MemoryBudgetExceeded,
            format!("function {name} cannot be loaded: {e}"),
        ),
        other => ApiError::internal(&format!("cannot load function {name}"), &other),
    }
}

/// `GET /health`.
pub async fn health(State(state): State<AppState>) -> Response {
    let (held_modules, module_memory_bytes) = state.runtime().held_modules();
    axum::Json(EdgeHealth {
        status: "ok".into(),
        node_id: state.node_id().to_owned(),
        functions: state.registry().len(),
        cached_modules: state.runtime().cached_modules(),
        held_modules,
        module_memory_bytes,
        module_memory_budget_bytes: state.runtime().config().module_memory_budget,
        uptime_s: state.uptime().as_secs(),
        events_dropped: state.events().dropped(),
    })
    .into_response()
}

/// `POST /notify` from the control plane (with this edge's notify secret:
/// [`crate::distribution::Distribution::notify_token`]): reconcile now.
pub async fn notify(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(dist) = state.distribution() else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "this edge runs standalone (no control plane configured)",
        ));
    };
    if let Some(expected) = dist.notify_token() {
        let given = aether_http::auth::bearer_token(&headers)?;
        if !expected.matches(given) {
            return Err(ApiError::unauthorized("wrong notify secret"));
        }
    }
    dist.wake();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(NotifyAccepted {
            status: "reconciling".into(),
        }),
    )
        .into_response())
}

/// `GET /metrics`, Prometheus text format (404 with telemetry off).
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let metrics = state
        .metrics()
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "metrics are disabled"))?;
    Ok(aether_http::metrics::text_response(
        metrics.render(&state.gauges()),
    ))
}

/// Any unknown route.
pub async fn not_found_route() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no such route; see GET /health and POST /execute",
    )
}

/// A known route with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}
