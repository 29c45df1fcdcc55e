//! The HTTP service: routes, handlers, limits, metrics.

use crate::auth::{AuthError, DeviceAuth, bearer, constant_time_eq};
use crate::warehouse::{DeviceRecord, Warehouse, batch_id_text};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use polyvision_cloud_sync::identity::{challenge_message, parse_public_key, parse_signature};
use polyvision_cloud_sync::protocol::{
    CHALLENGE_PATH, ChallengeRequest, ChallengeResponse, ErrorResponse, INGEST_PATH,
    IngestResponse, SUMMARY_PATH, TOKEN_PATH, TokenRequest, TokenResponse,
};
use polyvision_cloud_sync::summary::SignedSummary;
use polyvision_cloud_sync::wire::{SignedBatch, WireError};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Parquet exports built at once per instance (CSV streams and is not limited).
pub const MAX_PARQUET_EXPORTS: usize = 2;

/// Largest request body: a full batch of 1 Mi rows compresses to a few MB.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// Largest body of the device requests before a device token (challenge, token: a serial, a
/// nonce and a signature) and of an enrolment.
pub const MAX_AUTH_BODY_BYTES: usize = 4 << 10;

/// How long an authenticated upload's body may take to arrive: a full-size batch at about
/// 300 kB/s; a rig's usual batch is a few tens of kB.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Bearer token of the factory API (enrolment); `None` disables enrolment.
    pub admin_token: Option<String>,
    /// Batch requests per second each device may make (sustained).
    pub device_rate_per_s: f64,
    /// Burst of the per-device limit.
    pub device_burst: f64,
    /// How long a device record is cached (revocation takes effect within this).
    pub device_cache: Duration,
    /// Challenge and token requests per second each client address may make (sustained).
    pub auth_rate_per_s: f64,
    /// Burst of the per-address limit.
    pub auth_burst: f64,
    /// Upload bodies held in memory at once, bytes: past it an upload is answered 429 with
    /// `Retry-After` before its body is read (bodies trickling in cannot exhaust memory).
    pub upload_buffer_bytes: usize,
    /// How long a request may take (for an upload: once its body arrived): a hung ClickHouse
    /// gets the client a 503 to retry after it, instead of holding the request and its
    /// descriptors.
    pub request_timeout: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            admin_token: None,
            device_rate_per_s: 20.0,
            device_burst: 40.0,
            device_cache: Duration::from_secs(60),
            // A rig authenticates once per token lifetime; a club's rigs behind one address
            // stay far below this.
            auth_rate_per_s: 5.0,
            auth_burst: 30.0,
            request_timeout: Duration::from_secs(30),
            upload_buffer_bytes: 256 << 20,
        }
    }
}

#[derive(Default)]
struct Metrics {
    batches_stored: AtomicU64,
    batches_duplicate: AtomicU64,
    batches_rejected: AtomicU64,
    rows_stored: AtomicU64,
    bytes_received: AtomicU64,
    tokens_issued: AtomicU64,
    auth_failures: AtomicU64,
    rate_limited: AtomicU64,
    warehouse_errors: AtomicU64,
    ingest_seconds_total_micros: AtomicU64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    /// The bucket's own refill rate and size (device and address buckets share the map).
    rate: f64,
    burst: f64,
}

impl Bucket {
    fn refilled(&self, now: Instant) -> f64 {
        (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst)
    }
}

/// Shared state of the handlers.
pub struct AppState {
    warehouse: Warehouse,
    auth: DeviceAuth,
    config: ServiceConfig,
    devices: Mutex<HashMap<String, (Option<DeviceRecord>, Instant)>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// The device that sent each match, once known (it never changes).
    match_owners: Mutex<HashMap<(Uuid, Uuid), String>>,
    /// KiB of upload bodies that may be held in memory (`upload_buffer_bytes`).
    upload_budget: Arc<tokio::sync::Semaphore>,
    /// Parquet exports being built (each holds its file in memory, ~45 MiB for a full match).
    parquet_exports: tokio::sync::Semaphore,
    metrics: Metrics,
    ready: AtomicBool,
    users: Option<crate::users::UserKeys>,
}

impl AppState {
    /// New state; `users` checks coaches' and admins' tokens (none: that API is off).
    pub fn new(
        warehouse: Warehouse,
        auth: DeviceAuth,
        config: ServiceConfig,
        users: Option<crate::users::UserKeys>,
    ) -> Self {
        // At least one full-size body, whatever is configured.
        let upload_budget = Arc::new(tokio::sync::Semaphore::new(
            (config.upload_buffer_bytes / 1024).max(MAX_BODY_BYTES / 1024),
        ));
        AppState {
            warehouse,
            auth,
            config,
            users,
            devices: Mutex::default(),
            buckets: Mutex::default(),
            match_owners: Mutex::default(),
            upload_budget,
            parquet_exports: tokio::sync::Semaphore::new(MAX_PARQUET_EXPORTS),
            metrics: Metrics::default(),
            ready: AtomicBool::new(true),
        }
    }

    /// The user keys, when configured.
    pub fn users(&self) -> Option<&crate::users::UserKeys> {
        self.users.as_ref()
    }

    /// The ClickHouse side.
    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    /// A place for one more Parquet export, or a 429 to retry when all are taken.
    pub(crate) fn parquet_export_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.parquet_exports.try_acquire().map_err(|_| {
            self.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
            too_many(
                5,
                format!("{MAX_PARQUET_EXPORTS} Parquet exports are being built; retry shortly"),
            )
        })
    }
}

/// An error answer: status and a JSON `{"error": …}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after_s: Option<u64>,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after_s: None,
        }
    }
    /// 503 with `Retry-After`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            retry_after_s: Some(2),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
            AuthError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            axum::Json(ErrorResponse {
                error: self.message,
            }),
        )
            .into_response();
        if let Some(s) = self.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

/// A ClickHouse failure as a 503 the client retries, counted in `/metrics`.
pub(crate) fn warehouse_error(state: &AppState, e: clickhouse::error::Error) -> ApiError {
    state
        .metrics
        .warehouse_errors
        .fetch_add(1, Ordering::Relaxed);
    // The cause goes to the log only: ClickHouse's text names tables, settings and versions.
    tracing::warn!(error = %e, "ClickHouse failed; the client will retry");
    ApiError::unavailable("storage unavailable, retry later")
}

/// The router with every route.
pub fn router(state: Arc<AppState>) -> Router {
    // Uploads: their bodies may take BODY_TIMEOUT to arrive, then storing has its deadline.
    let uploads = Router::new()
        .route(INGEST_PATH, post(ingest))
        .route(SUMMARY_PATH, post(ingest_summary));
    Router::new()
        .route("/", get(coaches_page))
        .route("/app.js", get(coaches_script))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        // An enrolment is a few hundred bytes: none is buffered large before its token is seen.
        .route(
            "/v1/factory/devices",
            post(enrol).layer(DefaultBodyLimit::max(MAX_AUTH_BODY_BYTES)),
        )
        .route(
            CHALLENGE_PATH,
            post(challenge).layer(DefaultBodyLimit::max(MAX_AUTH_BODY_BYTES)),
        )
        .route(
            TOKEN_PATH,
            post(token).layer(DefaultBodyLimit::max(MAX_AUTH_BODY_BYTES)),
        )
        .route(
            "/v1/matches/{id}/summary",
            get(crate::analytics::match_summary),
        )
        .route("/v1/matches/{id}/export", get(crate::analytics::export))
        .route("/v1/matches", get(crate::analytics::list_matches))
        .route("/v1/matches/{id}/heatmap", get(crate::analytics::heatmap))
        .route(
            "/v1/matches/{id}/trajectories",
            get(crate::analytics::trajectories),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_deadline,
        ))
        .merge(uploads)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Answers 503 for a request still running after the request timeout (dropping its work,
/// ClickHouse's connection included).
async fn request_deadline(
    State(state): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            state
                .metrics
                .warehouse_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%path, after_s = limit.as_secs_f64(), "request timed out");
            ApiError::unavailable("the request took too long, retry later").into_response()
        }
    }
}

/// The coaches' page: one HTML file and one script, built into the binary (no CDN, nothing
/// fetched from elsewhere; the policy forbids it too).
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn page_asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn coaches_page() -> Response {
    page_asset(
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    )
}

async fn coaches_script() -> Response {
    page_asset(
        "text/javascript; charset=utf-8",
        include_str!("../web/app.js"),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if !state.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match state.warehouse.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: ClickHouse unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "storage unreachable\n").into_response()
        }
    }
}

/// Marks the service not ready (load balancers stop sending) before it shuts down.
pub fn set_ready(state: &AppState, ready: bool) {
    state.ready.store(ready, Ordering::Relaxed);
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let m = &state.metrics;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
        ));
    };
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    counter(
        "polyvision_ingest_batches_stored_total",
        "Batches written to ClickHouse.",
        get(&m.batches_stored),
    );
    counter(
        "polyvision_ingest_batches_duplicate_total",
        "Batches received again after being stored (acknowledged, not written).",
        get(&m.batches_duplicate),
    );
    counter(
        "polyvision_ingest_batches_rejected_total",
        "Batches refused as malformed, unsigned or not the device's own.",
        get(&m.batches_rejected),
    );
    counter(
        "polyvision_ingest_rows_stored_total",
        "Detection rows written.",
        get(&m.rows_stored),
    );
    counter(
        "polyvision_ingest_bytes_received_total",
        "Batch bytes received.",
        get(&m.bytes_received),
    );
    counter(
        "polyvision_device_tokens_issued_total",
        "Device tokens issued.",
        get(&m.tokens_issued),
    );
    counter(
        "polyvision_auth_failures_total",
        "Refused tokens, nonces and signatures.",
        get(&m.auth_failures),
    );
    counter(
        "polyvision_rate_limited_total",
        "Requests answered 429.",
        get(&m.rate_limited),
    );
    counter(
        "polyvision_warehouse_errors_total",
        "ClickHouse failures (answered 503).",
        get(&m.warehouse_errors),
    );
    counter(
        "polyvision_ingest_seconds_total_micros",
        "Time spent storing batches, microseconds.",
        get(&m.ingest_seconds_total_micros),
    );
    let cached = state.devices.lock().map_or(0, |c| c.len()) as u64;
    counter(
        "polyvision_connections_refused_total",
        "Connections closed at once because the connection cap was reached.",
        crate::connections::CONNECTIONS_REFUSED.load(Ordering::Relaxed),
    );
    out.push_str(&format!(
        "# HELP polyvision_device_cache_entries Device records cached (enrolled serials only).\n# TYPE polyvision_device_cache_entries gauge\npolyvision_device_cache_entries {cached}\n"
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document().to_string(),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct EnrolRequest {
    serial: String,
    public_key: String,
    organization_id: String,
    #[serde(default)]
    replace: bool,
    #[serde(default)]
    revoke: bool,
}

fn valid_serial(serial: &str) -> Result<(), ApiError> {
    let ok = !serial.is_empty()
        && serial.len() <= polyvision_cloud_sync::wire::MAX_SERIAL_LEN
        && serial
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        return Ok(());
    }
    // Named back only when short: an answer is never larger than its question's limit.
    let shown = if serial.len() <= polyvision_cloud_sync::wire::MAX_SERIAL_LEN {
        format!("serial {serial:?}")
    } else {
        format!("a serial of {} bytes", serial.len())
    };
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("{shown}: 1–64 characters of A–Z, a–z, 0–9, '-', '_', '.'"),
    ))
}

/// The device token of an upload, checked (and the device's rate) before any of the body is
/// read.
fn authenticate_upload(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<crate::auth::DeviceClaims, ApiError> {
    let claims = state.auth.verify(bearer(headers)?).inspect_err(|_| {
        state.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
    })?;
    rate_limit(state, &claims.sub)?;
    Ok(claims)
}

/// Largest refused body read (and dropped, never kept) before the refusal is sent.
const DISCARD_LIMIT: u64 = 1 << 20;
/// How long the service waits for such a body.
const DISCARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads and drops a refused upload's body when it is small, so that a client still sending it
/// reads the refusal (a rig whose token was revoked re-authenticates) instead of a connection
/// reset; a large or slow one is not waited for, and nothing is kept.
async fn discard_small_body(headers: &HeaderMap, body: axum::body::Body) {
    use futures_util::StreamExt as _;
    if content_length(headers).is_some_and(|n| n <= DISCARD_LIMIT) {
        let mut chunks = body.into_data_stream();
        let _ = tokio::time::timeout(DISCARD_TIMEOUT, async {
            while let Some(Ok(_)) = chunks.next().await {}
        })
        .await;
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// An upload's body and its share of the memory budget for bodies, released when dropped.
struct UploadBody {
    bytes: Bytes,
    _budget: tokio::sync::OwnedSemaphorePermit,
}

/// Reads an upload's body once its sender is authenticated: nothing of an unauthenticated
/// request is buffered, and a body that trickles in is cut off after [`BODY_TIMEOUT`].
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<UploadBody, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = content_length(headers);
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    // The bytes this body may take, reserved before it is read (a body without a length may
    // take the most).
    let kib = declared
        .unwrap_or(MAX_BODY_BYTES as u64)
        .div_ceil(1024)
        .max(1) as u32;
    let Ok(budget) = state.upload_budget.clone().try_acquire_many_owned(kib) else {
        state.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
        discard_small_body(headers, body).await;
        return Err(too_many(
            2,
            "too many uploads are being received; retry shortly".into(),
        ));
    };
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => Ok(UploadBody {
            bytes,
            _budget: budget,
        }),
        Ok(Err(_)) if declared.is_none() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("request body: {e}"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            ),
        )),
    }
}

fn json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("request body: {e}")))
}

async fn enrol(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // The factory's admin token enrols into any organisation; an admin user token only into
    // its own.
    let given = bearer(&headers)?;
    let factory = state
        .config
        .admin_token
        .as_ref()
        .is_some_and(|admin| constant_time_eq(given.as_bytes(), admin.as_bytes()));
    let admin_of = if factory {
        None
    } else {
        match state.users().map(|u| u.verify(given)) {
            Some(Ok(user)) if user.role == crate::users::Role::Admin => Some(user.org),
            Some(Ok(_)) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "enrolment needs the admin role",
                ));
            }
            _ => {
                state.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "admin token refused",
                ));
            }
        }
    };
    let req: EnrolRequest = json(&body)?;
    valid_serial(&req.serial)?;
    parse_public_key(&req.public_key)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("public_key: {e}")))?;
    let org = Uuid::parse_str(&req.organization_id).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("organization_id is not a UUID: {e}"),
        )
    })?;
    if let Some(own) = admin_of
        && own != org
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("an admin of organisation {own} cannot enrol into {org}"),
        ));
    }
    let existing = state
        .warehouse
        .device(&req.serial)
        .await
        .map_err(|e| warehouse_error(&state, e))?;
    // An organisation's admin re-keys, revokes and restores only its own rigs; moving a rig
    // between organisations is the factory's.
    if let (Some(own), Some(d)) = (admin_of, &existing)
        && d.organization_id != own
    {
        tracing::warn!(serial = %req.serial, admin_org = %own, "enrolment of another organisation's device refused");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "device {} belongs to another organisation; only the factory can move it",
                req.serial
            ),
        ));
    }
    if let Some(d) = &existing
        && (d.public_key != req.public_key || d.organization_id != org)
        && !req.replace
        && !req.revoke
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "device {} is enrolled with another key or organisation; send \"replace\": true to re-enrol it",
                req.serial
            ),
        ));
    }
    let record = DeviceRecord {
        serial: req.serial.clone(),
        organization_id: org,
        public_key: req.public_key.trim().to_string(),
        enrolled_at: crate::auth::now_s() as u32,
        revoked: req.revoke as u8,
    };
    state
        .warehouse
        .enrol(&record)
        .await
        .map_err(|e| warehouse_error(&state, e))?;
    if let Ok(mut cache) = state.devices.lock() {
        cache.remove(&req.serial);
    }
    tracing::info!(serial = %req.serial, org = %org, revoked = req.revoke, "device enrolled");
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "serial": record.serial,
            "organization_id": org.to_string(),
            "revoked": req.revoke,
        })),
    )
        .into_response())
}

/// Device records cached per instance at most.
const MAX_CACHED_DEVICES: usize = 50_000;

async fn device(state: &AppState, serial: &str) -> Result<Option<DeviceRecord>, ApiError> {
    if let Ok(cache) = state.devices.lock()
        && let Some((rec, at)) = cache.get(serial)
        && at.elapsed() < state.config.device_cache
    {
        return Ok(rec.clone());
    }
    let rec = state
        .warehouse
        .device(serial)
        .await
        .map_err(|e| warehouse_error(state, e))?;
    // Only enrolled serials are remembered: unknown ones are anyone's to invent (and are
    // limited per address before they get here).
    if rec.is_some()
        && let Ok(mut cache) = state.devices.lock()
    {
        if cache.len() >= MAX_CACHED_DEVICES {
            let ttl = state.config.device_cache;
            cache.retain(|_, (_, at)| at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED_DEVICES {
                cache.clear();
            }
        }
        cache.insert(serial.to_string(), (rec.clone(), Instant::now()));
    }
    Ok(rec)
}

async fn active_device(state: &AppState, serial: &str) -> Result<DeviceRecord, ApiError> {
    match device(state, serial).await? {
        Some(d) if d.revoked == 0 => Ok(d),
        // Revoked and unknown answer alike: the answer must not tell which serials exist.
        // 401 also makes a rig re-authenticate and keep its rows rather than drop them.
        found => {
            state.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
            tracing::info!(serial, revoked = found.is_some(), "device refused");
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                format!("device {serial} is not enrolled or is revoked"),
            ))
        }
    }
}

async fn challenge(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    body: Bytes,
) -> Result<axum::Json<ChallengeResponse>, ApiError> {
    auth_rate_limit(&state, peer.ip())?;
    let req: ChallengeRequest = json(&body)?;
    valid_serial(&req.serial)?;
    active_device(&state, &req.serial).await?;
    let nonce = state
        .auth
        .nonce(&req.serial)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(axum::Json(ChallengeResponse {
        nonce,
        expires_in_s: crate::auth::NONCE_LIFETIME_S,
    }))
}

async fn token(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    body: Bytes,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    auth_rate_limit(&state, peer.ip())?;
    let req: TokenRequest = json(&body)?;
    valid_serial(&req.serial)?;
    let dev = active_device(&state, &req.serial).await?;
    let fail = |e: ApiError| {
        state.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
        // Counted in /metrics; one log line each would let a flood fill the disk.
        tracing::debug!(serial = %req.serial, error = %e.message, "device authentication refused");
        e
    };
    state
        .auth
        .redeem_nonce(&req.serial, &req.nonce)
        .map_err(|e| fail(e.into()))?;
    let key = parse_public_key(&dev.public_key).map_err(|e| {
        fail(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("enrolled key of {}: {e}", req.serial),
        ))
    })?;
    let sig = parse_signature(&req.signature)
        .map_err(|e| fail(ApiError::new(StatusCode::BAD_REQUEST, e)))?;
    key.verify_strict(&challenge_message(&req.serial, &req.nonce), &sig)
        .map_err(|_| {
            fail(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "signature does not verify with the enrolled key",
            ))
        })?;
    let (token, expires_in_s) = state
        .auth
        .issue(&req.serial, &dev.organization_id.to_string())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    state.metrics.tokens_issued.fetch_add(1, Ordering::Relaxed);
    Ok(axum::Json(TokenResponse {
        token,
        expires_in_s,
    }))
}

/// Buckets kept before idle ones are forgotten (random serials or addresses must not grow the
/// map without end).
const MAX_BUCKETS: usize = 100_000;

/// Takes one token from bucket `key` (refilled at `rate`/s up to `burst`); the wait in s when
/// there is none.
fn take_token(state: &AppState, key: &str, rate: f64, burst: f64) -> Result<(), u64> {
    let Ok(mut buckets) = state.buckets.lock() else {
        return Ok(());
    };
    let now = Instant::now();
    if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
        // A bucket idle long enough to be full again limits nothing: forget those. If that
        // frees less than a tenth, start over rather than sweep again on the next new key.
        buckets.retain(|_, b| b.refilled(now) < b.burst);
        if buckets.len() > MAX_BUCKETS / 10 * 9 {
            tracing::warn!(
                buckets = buckets.len(),
                "rate-limit buckets full; starting over"
            );
            buckets.clear();
        }
    }
    let b = buckets.entry(key.to_string()).or_insert(Bucket {
        tokens: burst,
        at: now,
        rate,
        burst,
    });
    b.tokens = b.refilled(now);
    b.at = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        Ok(())
    } else {
        state.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
        Err((((1.0 - b.tokens) / rate.max(1e-3)).ceil() as u64).max(1))
    }
}

fn too_many(wait_s: u64, message: String) -> ApiError {
    ApiError {
        retry_after_s: Some(wait_s),
        ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
    }
}

fn rate_limit(state: &AppState, serial: &str) -> Result<(), ApiError> {
    let (rate, burst) = (state.config.device_rate_per_s, state.config.device_burst);
    take_token(state, &format!("device {serial}"), rate, burst)
        .map_err(|wait| too_many(wait, format!("device {serial} is over {rate} batches/s")))
}

/// The limit on challenge and token requests, per client address (they come before any
/// identity is proven, so the address is all there is; an IPv6 client by its /64).
fn auth_rate_limit(state: &AppState, peer: std::net::IpAddr) -> Result<(), ApiError> {
    let (rate, burst) = (state.config.auth_rate_per_s, state.config.auth_burst);
    let client = crate::connections::client_of(peer);
    take_token(state, &format!("address {client}"), rate, burst).map_err(|wait| {
        too_many(
            wait,
            format!("over {rate} authentication requests/s from this address"),
        )
    })
}

/// The organisation and enrolled key for an upload (`what`: batch or summary) signed as device
/// `serial`, sent with the token of device `token_serial` in organisation `token_org`: the
/// serials must agree, the device be active, and its enrolment in the token's organisation (the
/// organisation always comes from the token).
async fn signer_key(
    state: &AppState,
    token_serial: &str,
    token_org: &str,
    serial: &str,
    what: &str,
    reject: &impl Fn(StatusCode, String) -> ApiError,
) -> Result<(Uuid, ed25519_dalek::VerifyingKey), ApiError> {
    if serial != token_serial {
        return Err(reject(
            StatusCode::FORBIDDEN,
            format!("the token of device {token_serial} cannot send a {what} of device {serial}"),
        ));
    }
    let dev = active_device(state, token_serial).await?;
    let org = Uuid::parse_str(token_org).map_err(|_| {
        reject(
            StatusCode::FORBIDDEN,
            "token organisation is not a UUID".into(),
        )
    })?;
    // 401, not 403: the enrolment changed under a token still valid (moved by the factory,
    // re-keyed); the rig authenticates again and keeps its rows instead of dropping them.
    if dev.organization_id != org {
        return Err(reject(
            StatusCode::UNAUTHORIZED,
            format!(
                "device {token_serial} is not enrolled in organisation {org}; authenticate again"
            ),
        ));
    }
    let key = parse_public_key(&dev.public_key)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok((org, key))
}

/// How far back a match may have started, by the server's clock: a rig offline for a season
/// still syncs; rows older than the warehouse keeps are deleted on arrival anyway.
const MAX_MATCH_AGE_MS: i64 = 400 * 24 * 3600 * 1000;
/// How far ahead of the server's clock a rig's clock may be.
const MAX_CLOCK_AHEAD_MS: i64 = 24 * 3600 * 1000;
/// The longest a match may run: frame times past this are not a match's.
const MAX_MATCH_SPAN_MS: i64 = 24 * 3600 * 1000;
/// Frame rates a camera rig records at, millihertz.
const FPS_MILLI: std::ops::RangeInclusive<u32> = 1_000..=240_000;
/// Matches whose owner is remembered per instance before the memory is cleared.
const MAX_REMEMBERED_MATCHES: usize = 100_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A match start within a plausible window of the server's clock; the field is named.
fn plausible_start(field: &str, started_ms: i64, now_ms: i64) -> Result<(), String> {
    let earliest = now_ms.saturating_sub(MAX_MATCH_AGE_MS);
    let latest = now_ms.saturating_add(MAX_CLOCK_AHEAD_MS);
    if (earliest..=latest).contains(&started_ms) {
        Ok(())
    } else {
        Err(format!(
            "{field} {started_ms} is not within {} days before and one day after the server's clock ({now_ms} ms)",
            MAX_MATCH_AGE_MS / (24 * 3600 * 1000)
        ))
    }
}

/// A batch header and rows that can be stored: a real frame rate, a plausible start, and every
/// frame within a match's length of it (which also bounds the partitions one batch touches).
fn plausible_batch(
    header: &polyvision_cloud_sync::wire::BatchHeader,
    rows: &[polyvision_cloud_sync::wire::WireRow],
    now_ms: i64,
) -> Result<(), String> {
    if !FPS_MILLI.contains(&header.fps_milli) {
        return Err(format!(
            "fps_milli {} is outside {}–{} (1–240 frames per second)",
            header.fps_milli,
            FPS_MILLI.start(),
            FPS_MILLI.end()
        ));
    }
    plausible_start("match_started_ms", header.match_started_ms, now_ms)?;
    if let Some(last) = rows.iter().map(|r| r.frame).max() {
        let span_ms = i64::from(last) * 1_000_000 / i64::from(header.fps_milli);
        if span_ms > MAX_MATCH_SPAN_MS {
            return Err(format!(
                "frame {last} is {} h after the match start at {} fps: over a match's {} h",
                span_ms / 3_600_000,
                f64::from(header.fps_milli) / 1000.0,
                MAX_MATCH_SPAN_MS / 3_600_000
            ));
        }
    }
    Ok(())
}

/// Refuses an upload for a match that another rig of the organisation sent first: a match
/// belongs to the device that first sent it.
async fn check_match_owner(
    state: &AppState,
    org: Uuid,
    match_id: Uuid,
    serial: &str,
    reject: &impl Fn(StatusCode, String) -> ApiError,
) -> Result<(), ApiError> {
    let remembered = state
        .match_owners
        .lock()
        .ok()
        .and_then(|m| m.get(&(org, match_id)).cloned());
    let owner = match remembered {
        Some(owner) => Some(owner),
        None => {
            let owner = state
                .warehouse
                .match_owner(org, match_id)
                .await
                .map_err(|e| warehouse_error(state, e))?;
            if let (Some(o), Ok(mut m)) = (&owner, state.match_owners.lock()) {
                if m.len() >= MAX_REMEMBERED_MATCHES {
                    m.clear();
                }
                m.insert((org, match_id), o.clone());
            }
            owner
        }
    };
    match owner {
        Some(owner) if owner != serial => Err(reject(
            StatusCode::FORBIDDEN,
            format!("match {match_id} belongs to another device of the organisation"),
        )),
        _ => Ok(()),
    }
}

/// Runs the storing part of an upload (everything after its body arrived) within the request
/// timeout: a hung ClickHouse gets the rig a 503 to retry, not a request held open.
async fn within_store_deadline<T>(
    state: &AppState,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let limit = state.config.request_timeout;
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        state
            .metrics
            .warehouse_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(after_s = limit.as_secs_f64(), "storing an upload timed out");
        Err(ApiError::unavailable(
            "storage did not answer in time, retry later",
        ))
    })
}

async fn ingest(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<axum::Json<IngestResponse>, ApiError> {
    let started = Instant::now();
    let claims = match authenticate_upload(&state, &headers) {
        Ok(c) => c,
        Err(e) => {
            discard_small_body(&headers, body).await;
            return Err(e);
        }
    };
    let body = read_body(&state, &headers, body).await?;
    within_store_deadline(
        &state,
        store_batch_upload(&state, &claims, &body.bytes, started),
    )
    .await
}

async fn store_batch_upload(
    state: &AppState,
    claims: &crate::auth::DeviceClaims,
    body: &Bytes,
    started: Instant,
) -> Result<axum::Json<IngestResponse>, ApiError> {
    state
        .metrics
        .bytes_received
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    let reject = |status: StatusCode, e: String| {
        state
            .metrics
            .batches_rejected
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(serial = %claims.sub, error = %e, "batch refused");
        ApiError::new(status, e)
    };
    let batch =
        SignedBatch::parse(body).map_err(|e| reject(StatusCode::BAD_REQUEST, e.to_string()))?;
    let (org, key) = signer_key(
        state,
        &claims.sub,
        &claims.org,
        &batch.header.serial,
        "batch",
        &reject,
    )
    .await?;
    // Not the enrolled key (re-keyed since the token was issued): authenticate again.
    batch.verify(&key).map_err(|e| {
        state.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
        reject(StatusCode::UNAUTHORIZED, e.to_string())
    })?;
    let match_id = Uuid::from_bytes(batch.header.match_id);
    check_match_owner(state, org, match_id, &batch.header.serial, &reject).await?;
    let batch_id = batch_id_text(&batch.header.batch_id);
    let rows_n = batch.header.row_count;
    if state
        .warehouse
        .batch_stored(org, &batch_id)
        .await
        .map_err(|e| warehouse_error(state, e))?
    {
        state
            .metrics
            .batches_duplicate
            .fetch_add(1, Ordering::Relaxed);
        return Ok(axum::Json(IngestResponse {
            batch_id,
            rows: rows_n,
            duplicate: true,
        }));
    }
    let rows = batch
        .rows()
        .map_err(|e: WireError| reject(StatusCode::BAD_REQUEST, e.to_string()))?;
    plausible_batch(&batch.header, &rows, now_ms())
        .map_err(|e| reject(StatusCode::BAD_REQUEST, format!("batch header: {e}")))?;
    state
        .warehouse
        .store_batch(org, &batch.header, &rows)
        .await
        .map_err(|e| warehouse_error(state, e))?;
    let m = &state.metrics;
    m.batches_stored.fetch_add(1, Ordering::Relaxed);
    m.rows_stored
        .fetch_add(rows.len() as u64, Ordering::Relaxed);
    m.ingest_seconds_total_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    tracing::debug!(serial = %claims.sub, batch = %batch_id, rows = rows.len(), "batch stored");
    Ok(axum::Json(IngestResponse {
        batch_id,
        rows: rows_n,
        duplicate: false,
    }))
}

/// `POST /v1/ingest/summaries`: a rig's summary of a finished match (each player's metrics).
/// Authenticated like a batch: device token, serial equal to the token's, enrolment in the
/// token's organisation, signature by the enrolled key.
async fn ingest_summary(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<axum::Json<IngestResponse>, ApiError> {
    let claims = match authenticate_upload(&state, &headers) {
        Ok(c) => c,
        Err(e) => {
            discard_small_body(&headers, body).await;
            return Err(e);
        }
    };
    let body = read_body(&state, &headers, body).await?;
    within_store_deadline(&state, store_summary_upload(&state, &claims, &body.bytes)).await
}

async fn store_summary_upload(
    state: &AppState,
    claims: &crate::auth::DeviceClaims,
    body: &Bytes,
) -> Result<axum::Json<IngestResponse>, ApiError> {
    let reject = |status: StatusCode, e: String| {
        tracing::warn!(serial = %claims.sub, error = %e, "match summary refused");
        ApiError::new(status, e)
    };
    let signed =
        SignedSummary::parse(body).map_err(|e| reject(StatusCode::BAD_REQUEST, e.to_string()))?;
    let summary = &signed.summary;
    let (org, key) = signer_key(
        state,
        &claims.sub,
        &claims.org,
        &summary.serial,
        "summary",
        &reject,
    )
    .await?;
    let match_id = Uuid::parse_str(&summary.match_id).map_err(|_| {
        reject(
            StatusCode::BAD_REQUEST,
            format!(
                "match summary: match_id {:?} is not a UUID",
                summary.match_id
            ),
        )
    })?;
    signed.verify(&key).map_err(|e| {
        state.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
        reject(StatusCode::UNAUTHORIZED, e.to_string())
    })?;
    plausible_start("match_started_ms", summary.match_started_ms, now_ms())
        .map_err(|e| reject(StatusCode::BAD_REQUEST, format!("match summary: {e}")))?;
    check_match_owner(state, org, match_id, &summary.serial, &reject).await?;
    state
        .warehouse
        .store_summary(org, match_id, summary)
        .await
        .map_err(|e| warehouse_error(state, e))?;
    tracing::info!(serial = %claims.sub, %match_id, players = summary.players.len(), "match summary stored");
    Ok(axum::Json(IngestResponse {
        batch_id: match_id.to_string(),
        rows: summary.players.len() as u32,
        duplicate: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> AppState {
        let auth = DeviceAuth::new(
            &ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
            Duration::from_secs(60),
        )
        .expect("auth");
        // The client connects on first use only: these tests never query.
        let warehouse = Warehouse::new(clickhouse::Client::default());
        AppState::new(warehouse, auth, ServiceConfig::default(), None)
    }

    /// Also worth a look (the outside test): concurrent Parquet exports each held ~43 MiB.
    #[test]
    fn parquet_exports_are_bounded() {
        let state = state();
        let first = state.parquet_export_slot().expect("first");
        let _second = state.parquet_export_slot().expect("second");
        let refused = state.parquet_export_slot().expect_err("a third at once");
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.retry_after_s.is_some());
        drop(first);
        let _third = state.parquet_export_slot().expect("once one finished");
    }

    #[test]
    fn batch_headers_outside_the_plausible_window_name_their_field() {
        let now = 1_800_000_000_000;
        assert!(plausible_start("match_started_ms", now - 3_600_000, now).is_ok());
        for bad in [i64::MAX, i64::MIN, 0, now + 2 * MAX_CLOCK_AHEAD_MS] {
            let e = plausible_start("match_started_ms", bad, now).expect_err("refused");
            assert!(e.starts_with("match_started_ms"), "{e}");
        }
    }
}
