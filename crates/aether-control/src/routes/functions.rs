//! The function registry: deploy (JSON or raw wasm), list, manifest, show,
//! delete, rollback, blob download.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;

use aether_http::ApiError;
use aether_http::guard::{MissingContentType, media_type, require_json};
use aether_proto::control::{
    DeleteResponse, DeployRequest, FunctionInfo, FunctionKind, FunctionStats, Manifest,
    RollbackRequest,
};
use aether_proto::{ErrorCode, LimitsSpec, validate_function_name};
use aether_store::{DeploySpec, StoreError};

use super::parse_json;
use crate::state::{AppState, Change, Settings};
use crate::wire::{deploy_response, function_info, manifest_entry};

/// Names that would be shadowed by a fixed route under `/api/functions/`.
const RESERVED_NAMES: &[&str] = &["manifest"];

/// Raw-upload media types (`application/wasm` is the registered one).
const WASM_MEDIA_TYPES: &[&str] = &["application/wasm", "application/octet-stream"];

/// Checks a function name from any entry point.
fn check_name(name: &str) -> Result<(), ApiError> {
    validate_function_name(name).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    if RESERVED_NAMES.contains(&name) {
        return Err(ApiError::invalid_request(format!(
            "function name {name:?} is reserved"
        )));
    }
    Ok(())
}

/// The `{name}` path segment, validated.
fn path_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(name) = path?;
    check_name(&name)?;
    Ok(name)
}

/// `POST /api/functions` with `{"name", "wasm_b64", "args"?, "env"?,
/// "limits"?, "allowed_outbound_hosts"?}`.
pub async fn deploy_json(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let parsed = async {
        require_json(&headers, MissingContentType::Refused)?;
        let request: DeployRequest = parse_json(&body?)?;
        check_name(&request.name)?;
        let max = state.settings().max_module_size;
        // The decoded size is at most 3/4 of the text: refuse before decoding.
        if (request.wasm_b64.len() as u64 / 4).saturating_mul(3) > max.saturating_add(3) {
            return Err(ApiError::payload_too_large(max));
        }
        let wasm = base64::engine::general_purpose::STANDARD
            .decode(request.wasm_b64.trim())
            .map_err(|e| ApiError::invalid_request(format!("wasm_b64 is not valid base64: {e}")))?;
        let spec = deploy_spec(
            state.settings(),
            request.args,
            request.env,
            request.limits.unwrap_or_default(),
            request.allowed_outbound_hosts,
        )?;
        Ok((request.name, wasm, spec))
    }
    .await;
    let (name, wasm, spec) =
        parsed.inspect_err(|_| state.metrics().deploys_rejected.increment(1))?;
    deploy(&state, name, wasm.into(), spec).await
}

/// Limits for a raw upload, from the query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeployQuery {
    /// Wall-clock timeout, e.g. `3s`.
    timeout: Option<String>,
    /// Linear-memory limit, e.g. `16MB`.
    memory: Option<String>,
}

/// `PUT /api/functions/{name}` with the module as the raw body
/// (`application/wasm`); limits may be given as `?timeout=&memory=` (args,
/// env and outbound hosts need the JSON deploy).
pub async fn deploy_raw(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<RawDeployQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let parsed = async {
        let name = path_name(path)?;
        let Query(query) = query?;
        match media_type(&headers) {
            None => {}
            Some(t) if WASM_MEDIA_TYPES.contains(&t.as_str()) => {}
            Some(t) => {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!("expected Content-Type: application/wasm, got {t}"),
                ));
            }
        }
        let limits = LimitsSpec {
            timeout: query.timeout,
            memory: query.memory,
        };
        let spec = deploy_spec(
            state.settings(),
            Vec::new(),
            Default::default(),
            limits,
            Vec::new(),
        )?;
        Ok((name, body?, spec))
    }
    .await;
    let (name, wasm, spec) =
        parsed.inspect_err(|_| state.metrics().deploys_rejected.increment(1))?;
    deploy(&state, name, wasm, spec).await
}

/// The settings of a deploy, checked. Its kind is set once the module has
/// been inspected ([`deploy`]).
fn deploy_spec(
    settings: &Settings,
    args: Vec<String>,
    env: std::collections::BTreeMap<String, String>,
    limits: LimitsSpec,
    allowed_outbound_hosts: Vec<String>,
) -> Result<DeploySpec, ApiError> {
    let parsed = limits
        .parse()
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    if let Some(timeout) = parsed.timeout
        && timeout > settings.max_function_timeout
    {
        return Err(ApiError::invalid_request(format!(
            "limits.timeout {} is above this control plane's maximum of {} (max_function_timeout)",
            humantime::format_duration(timeout),
            humantime::format_duration(settings.max_function_timeout)
        )));
    }
    if let Some(memory) = parsed.memory_bytes
        && memory > settings.max_function_memory
    {
        return Err(ApiError::invalid_request(format!(
            "limits.memory of {memory} bytes is above this control plane's maximum of {} bytes (max_function_memory)",
            settings.max_function_memory
        )));
    }
    if let Some(key) = env
        .keys()
        .find(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
    {
        return Err(ApiError::invalid_request(format!(
            "invalid environment variable name {key:?}"
        )));
    }
    if args.iter().chain(env.values()).any(|s| s.contains('\0')) {
        return Err(ApiError::invalid_request(
            "args and env values must not contain NUL bytes",
        ));
    }
    check_outbound_hosts(&allowed_outbound_hosts)?;
    Ok(DeploySpec {
        kind: FunctionKind::Command,
        allowed_outbound_hosts,
        args,
        env,
        limits,
    })
}

/// Checks the allow-list with the parser the edges enforce it with
/// ([`aether_runtime::EgressPolicy`]); its error names the entry at fault.
fn check_outbound_hosts(entries: &[String]) -> Result<(), ApiError> {
    aether_runtime::EgressPolicy::new(entries)
        .map(drop)
        .map_err(|e| ApiError::invalid_request(format!("allowed_outbound_hosts: {e}")))
}

/// The kind a module of this shape is deployed as: `http` for a
/// `wasi:http` component, else `command` (a preview-1 module, which edges
/// may also call CGI-style through `/fn`, or a command component).
fn kind_of(shape: aether_runtime::WasmShape) -> FunctionKind {
    if shape.is_http() {
        FunctionKind::Http
    } else {
        FunctionKind::Command
    }
}

/// Validates and stores a module with the kind it turns out to be; 201 for
/// a new version, 200 when identical to the current one.
async fn deploy(
    state: &AppState,
    name: String,
    wasm: Bytes,
    mut spec: DeploySpec,
) -> Result<Response, ApiError> {
    let max = state.settings().max_module_size;
    if wasm.len() as u64 > max {
        state.metrics().deploys_rejected.increment(1);
        return Err(ApiError::payload_too_large(max));
    }
    let to_validate = wasm.clone();
    let validation = tokio::task::spawn_blocking(move || aether_runtime::inspect(&to_validate))
        .await
        .map_err(|e| ApiError::internal("validating a module", e))?;
    match validation {
        Ok(shape) => spec.kind = kind_of(shape),
        Err(e) => {
            state.metrics().deploys_rejected.increment(1);
            tracing::debug!(function = %name, "module refused: {e}");
            return Err(ApiError::new(ErrorCode::InvalidWasm, e.to_string()));
        }
    }

    let store_name = name.clone();
    let outcome = state
        .blocking(move |store| store.deploy(&store_name, &wasm, &spec))
        .await?;
    let record = outcome.record();
    let status = if outcome.created() {
        state.metrics().deploys_created.increment(1);
        state.metrics().deploy_bytes.increment(record.size);
        tracing::info!(function = %name, version = record.version, kind = %record.spec.kind, sha256 = %record.sha256, size = record.size, "deployed");
        state.publish(Change::Deployed {
            name: name.clone(),
            version: record.version,
            sha256: record.sha256.clone(),
        });
        StatusCode::CREATED
    } else {
        state.metrics().deploys_unchanged.increment(1);
        tracing::info!(function = %name, version = record.version, "identical redeploy; version kept");
        StatusCode::OK
    };
    Ok((status, Json(deploy_response(&name, record))).into_response())
}

async fn current_manifest(state: &AppState) -> Result<Json<Manifest>, ApiError> {
    let current = state.blocking(|store| store.current_versions()).await?;
    Ok(Json(Manifest {
        functions: current
            .into_iter()
            .map(|(name, v)| manifest_entry(name, v))
            .collect(),
    }))
}

/// `GET /api/functions`: every function with its current version.
pub async fn list(State(state): State<AppState>) -> Result<Json<Manifest>, ApiError> {
    current_manifest(&state).await
}

/// `GET /api/functions/manifest`: what edges should run.
pub async fn manifest(State(state): State<AppState>) -> Result<Json<Manifest>, ApiError> {
    current_manifest(&state).await
}

/// `GET /api/functions/{name}`: metadata with all versions.
pub async fn show(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<FunctionInfo>, ApiError> {
    let name = path_name(path)?;
    let lookup = name.clone();
    match state.blocking(move |store| store.function(&lookup)).await? {
        Some(f) => Ok(Json(function_info(f))),
        None => Err(ApiError::function_not_found(&name)),
    }
}

/// `GET /api/functions/{name}/stats`: execution statistics reported by the
/// edges (see [`crate::stats`]).
pub async fn stats(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<FunctionStats>, ApiError> {
    let name = path_name(path)?;
    let lookup = name.clone();
    match state.blocking(move |store| store.function(&lookup)).await? {
        Some(_) => Ok(Json(state.stats().get(&name, aether_store::now_ms()))),
        None => Err(ApiError::function_not_found(&name)),
    }
}

/// `DELETE /api/functions/{name}`.
pub async fn delete(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<DeleteResponse>, ApiError> {
    let name = path_name(path)?;
    let target = name.clone();
    let removed = state.blocking(move |store| store.delete(&target)).await?;
    state.metrics().deletes.increment(1);
    tracing::info!(function = %name, versions = removed.versions.len(), "deleted");
    state.stats().forget(&name);
    state.publish(Change::Deleted { name: name.clone() });
    Ok(Json(DeleteResponse {
        status: "success".into(),
        function_id: name,
        versions_removed: removed.versions.len(),
    }))
}

/// `POST /api/functions/{name}/rollback` with `{"version": n}`.
pub async fn rollback(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let name = path_name(path)?;
    require_json(&headers, MissingContentType::Refused)?;
    let request: RollbackRequest = parse_json(&body?)?;
    let target = name.clone();
    let record = state
        .blocking(move |store| store.rollback(&target, request.version))
        .await
        .map_err(|e| match e.code {
            // The function exists but not that version: a conflict with the
            // stored history rather than a missing resource.
            ErrorCode::NotFound => ApiError::new(ErrorCode::Conflict, e.message),
            _ => e,
        })?;
    state.metrics().rollbacks.increment(1);
    tracing::info!(function = %name, version = record.version, "rolled back");
    state.publish(Change::RolledBack {
        name: name.clone(),
        version: record.version,
        sha256: record.sha256.clone(),
    });
    Ok(Json(deploy_response(&name, &record)).into_response())
}

/// `?version=n` of a blob download.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmQuery {
    /// The version; the current one when absent.
    version: Option<u64>,
}

/// Whether an `If-None-Match` header matches the entity tag `"sha256"`.
fn etag_matches(headers: &HeaderMap, sha256: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == sha256)
}

/// `GET /api/functions/{name}/wasm?version=n`: the module bytes, with the
/// sha256 as `ETag`; `If-None-Match` answers 304.
pub async fn wasm(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<WasmQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = path_name(path)?;
    let Query(query) = query?;
    let lookup = name.clone();
    let (record, bytes) = state
        .blocking(move |store| {
            let record = store.version(&lookup, query.version)?;
            if etag_matches(&headers, &record.sha256) {
                return Ok((record, None));
            }
            match store.read_blob(&record.sha256) {
                Ok(bytes) => Ok((record, Some(bytes))),
                // Deleted between the lookup and the read: answer as if the
                // lookup had come after the delete.
                Err(StoreError::BlobMissing { .. }) if store.function(&lookup)?.is_none() => {
                    Err(StoreError::FunctionNotFound { name: lookup })
                }
                Err(e) => Err(e),
            }
        })
        .await?;
    let etag = HeaderValue::from_str(&format!("\"{}\"", record.sha256))
        .map_err(|e| ApiError::internal("building the ETag", e))?;
    let version = HeaderValue::from(record.version);
    let Some(bytes) = bytes else {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::HeaderName::from_static("x-aether-version"), version),
            ],
        )
            .into_response());
    };
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/wasm"),
            ),
            (header::ETAG, etag),
            (header::HeaderName::from_static("x-aether-version"), version),
        ],
        Body::from(bytes),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let sha = "ab".repeat(32);
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/\"{sha}\"")).unwrap(),
        );
        assert!(etag_matches(&h, &sha));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(etag_matches(&h, &sha));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!etag_matches(&h, &sha));
    }

    #[test]
    fn limits_above_the_servers_maximum_are_refused_and_say_which() {
        let settings = Settings::from(&crate::Config::default());
        let spec = |timeout: &str, memory: &str| LimitsSpec {
            timeout: Some(timeout.into()),
            memory: Some(memory.into()),
        };
        let deploy_spec =
            |limits| deploy_spec(&settings, vec![], Default::default(), limits, vec![]);
        let ok = deploy_spec(spec("60s", "256MiB"));
        assert!(ok.is_ok(), "{ok:?}");
        let err = deploy_spec(spec("61s", "16MB")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(
            err.message.contains("max_function_timeout") && err.message.contains("1m"),
            "{err}"
        );
        let err = deploy_spec(spec("1s", "257MiB")).unwrap_err();
        assert!(err.message.contains("max_function_memory"), "{err}");
    }

    #[test]
    fn outbound_hosts_are_kept_and_a_bad_one_is_refused_by_name() {
        let settings = Settings::from(&crate::Config::default());
        let hosts = |entries: &[&str]| {
            deploy_spec(
                &settings,
                vec![],
                Default::default(),
                LimitsSpec::default(),
                entries.iter().map(|e| (*e).to_owned()).collect(),
            )
        };
        let ok = hosts(&["https://api.example.com", "https://*.example.com:8443"]).unwrap();
        assert_eq!(ok.allowed_outbound_hosts.len(), 2);
        assert_eq!(
            ok.kind,
            FunctionKind::Command,
            "until the module is inspected"
        );
        let err = hosts(&["https://api.example.com", "gopher://x"]).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(
            err.message.contains("allowed_outbound_hosts")
                && err.message.contains("\"gopher://x\""),
            "{err}"
        );
    }

    #[test]
    fn manifest_is_a_reserved_name() {
        assert!(check_name("manifest").is_err());
        assert!(check_name("hello_world").is_ok());
    }
}
