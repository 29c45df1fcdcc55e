//! The technician's calibration page and its API, served on the rig's local network.
//!
//! Everything the page needs is compiled into the binary (no CDN: pitch-side there is often no
//! internet). The page logs in with the rig's technician PIN and then:
//!
//! | method | path | what |
//! |---|---|---|
//! | `POST` | `/api/login` | `{"pin"}` → `{"token"}`; 5 wrong PINs lock the sender's address out for a minute |
//! | `GET` | `/api/state` | views, pitch markings, landmarks, saved points, active calibration |
//! | `GET` | `/api/frame/{view}` | the view's still frame (PNG): `left`, `right` or `panorama` |
//! | `POST` | `/api/refresh` | grab the still frames again |
//! | `POST` | `/api/solve` | `{"view","points"}` → fit, per-point errors, pitch overlay |
//! | `POST` | `/api/save` | the same, fitted again and written (the old file is kept) |
//! | `GET` | `/api/history` | earlier versions |
//! | `POST` | `/api/restore` | `{"number"}` makes an earlier version current |
//! | `GET` | `/api/status` | the calibration the pipeline runs with (generation, SHA-256) |
//!
//! All `/api/` routes but login need `Authorization: Bearer TOKEN`. Saving writes the file and
//! reloads it through [`ActiveCalibration`], the same path the file watcher takes, so the
//! pipeline switches to it without a restart.

pub mod auth;

use crate::calibration::{ActiveCalibration, Loaded};
use crate::capture::still::{RgbaFrame, encode_png, grab_frame};
use crate::config::EdgeConfig;
use auth::{Auth, LoginError};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use polyvision_calibration::file::{self, FitRecord, Provenance};
use polyvision_calibration::fit::{FieldFit, FitOptions};
use polyvision_calibration::overlay::pitch_overlay;
use polyvision_calibration::panorama::{PanoramaOptions, plan_panorama};
use polyvision_calibration::points::ClickedPoint;
use polyvision_calibration::seam::{Frame, register_seam};
use polyvision_calibration::{
    CalibrationFile, CameraCalibration, Homography, LensModel, PitchSize, PointsFile,
};
use polyvision_cuda::cpu::stitch::CpuStitcher;
use polyvision_cuda::image::{bytes_of, pixels_of};
use polyvision_cuda::{Rgba, StitchPlan, Stitcher};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Still frames of the cameras, and the panorama stitched from them.
#[derive(Debug, Default)]
struct Stills {
    cameras: BTreeMap<String, Arc<RgbaFrame>>,
    errors: BTreeMap<String, String>,
    /// Panorama PNG for the calibration with this SHA-256.
    panorama_png: Option<(String, Arc<Vec<u8>>)>,
    camera_png: BTreeMap<String, Arc<Vec<u8>>>,
}

/// Shared state of the page.
pub struct AppState {
    config: EdgeConfig,
    active: Arc<ActiveCalibration>,
    auth: Auth,
    stills: Mutex<Stills>,
    /// Serialises saves and restores: one writer of the calibration file at a time.
    writer: tokio::sync::Mutex<()>,
    /// The daemon, when the page runs inside it (`polyvision-edge run`): match control and
    /// metrics.
    daemon: std::sync::OnceLock<Arc<crate::daemon::Shared>>,
}

impl AppState {
    /// State for `config`, following `active`.
    pub fn new(config: EdgeConfig, active: Arc<ActiveCalibration>, pin: String) -> Arc<Self> {
        let state = Arc::new(AppState {
            config,
            active,
            auth: Auth::new(pin),
            stills: Mutex::new(Stills::default()),
            writer: tokio::sync::Mutex::new(()),
            daemon: std::sync::OnceLock::new(),
        });
        state.grab_stills();
        state
    }

    /// Serves the daemon's match control and metrics too.
    pub fn attach_daemon(&self, shared: Arc<crate::daemon::Shared>) {
        let _ = self.daemon.set(shared);
    }

    fn stills(&self) -> std::sync::MutexGuard<'_, Stills> {
        self.stills.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Grabs every camera's still frame (blocking: decodes video).
    fn grab_stills(&self) {
        let mut fresh = Stills::default();
        for (name, source) in self.config.capture.cameras() {
            match grab_frame(&source.source, source.still_frame) {
                Ok(frame) => {
                    tracing::info!(
                        camera = name,
                        width = frame.width,
                        height = frame.height,
                        "still frame grabbed"
                    );
                    fresh.cameras.insert(name.to_string(), Arc::new(frame));
                }
                Err(e) => {
                    tracing::error!(camera = name, error = %e, "no still frame");
                    fresh.errors.insert(name.to_string(), e.to_string());
                }
            }
        }
        *self.stills() = fresh;
    }

    fn frame(&self, view: &str) -> Option<Arc<RgbaFrame>> {
        self.stills().cameras.get(view).cloned()
    }

    /// The lens of a camera view: the calibration's, else the configured one.
    fn lens(&self, view: &str, loaded: Option<&Loaded>) -> Option<LensModel> {
        loaded
            .and_then(|l| l.file.camera(view))
            .map(|c| c.lens)
            .or_else(|| {
                self.config
                    .capture
                    .cameras()
                    .into_iter()
                    .find(|(n, _)| *n == view)
                    .and_then(|(_, s)| s.lens)
            })
            .filter(|l| !l.is_pinhole())
    }
}

/// The page's router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route(
            "/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    APP_JS,
                )
            }),
        )
        .route(
            "/app.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS) }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/login", post(login))
        .route("/api/state", get(app_state))
        .route("/api/frame/{view}", get(frame))
        .route("/api/refresh", post(refresh))
        .route("/api/solve", post(solve))
        .route("/api/save", post(save))
        .route("/api/history", get(history))
        .route("/api/restore", post(restore))
        .route("/api/status", get(status))
        .route("/api/match", get(match_status))
        .route("/api/match/start", post(match_start))
        .route("/api/match/stop", post(match_stop))
        .route("/metrics", get(metrics))
        .with_state(state)
}

fn daemon_of(state: &AppState) -> Result<Arc<crate::daemon::Shared>, ApiError> {
    state.daemon.get().cloned().ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "match control needs the daemon (polyvision-edge run)".into(),
        )
    })
}

async fn match_status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorise(&state, &headers)?;
    let daemon = daemon_of(&state)?;
    Ok(Json(json!(daemon.status())))
}

async fn match_start(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorise(&state, &headers)?;
    let daemon = daemon_of(&state)?;
    let uuid = tokio::task::spawn_blocking(move || daemon.start_match("web page"))
        .await
        .map_err(internal)?
        .map_err(|e| ApiError(StatusCode::CONFLICT, e))?;
    Ok(Json(json!({ "match": uuid })))
}

async fn match_stop(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorise(&state, &headers)?;
    let daemon = daemon_of(&state)?;
    let uuid = daemon
        .stop_match("web page")
        .map_err(|e| ApiError(StatusCode::CONFLICT, e))?;
    Ok(Json(json!({ "match": uuid })))
}

/// Prometheus metrics; no PIN (they hold no secrets, and scrapers do not log in).
async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let daemon = daemon_of(&state)?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::daemon::web::metrics_text(&daemon),
    )
        .into_response())
}

/// An API error: status and a message for the technician.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn internal(message: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %message, "calibration page request failed");
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, message.to_string())
}

fn authorise(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if state.auth.check(value) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "log in with the technician PIN".into(),
        ))
    }
}

#[derive(Deserialize)]
struct LoginRequest {
    pin: String,
}

async fn login(
    State(state): State<Arc<AppState>>,
    axum::extract::ConnectInfo(client): axum::extract::ConnectInfo<std::net::SocketAddr>,
    Json(req): Json<LoginRequest>,
) -> Result<Json<Value>, ApiError> {
    match state.auth.login(client.ip(), &req.pin) {
        Ok(token) => {
            tracing::info!("technician logged in");
            Ok(Json(json!({ "token": token })))
        }
        Err(LoginError::Wrong) => {
            tracing::warn!("wrong technician PIN");
            Err(ApiError(StatusCode::UNAUTHORIZED, "wrong PIN".into()))
        }
        Err(LoginError::Locked(secs)) => Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many wrong PINs; try again in {secs} s"),
        )),
        Err(LoginError::NoRandom) => Err(internal("no randomness for a session token")),
    }
}

fn pitch_of(loaded: Option<&Loaded>) -> PitchSize {
    loaded.map(|l| l.file.pitch).unwrap_or_default()
}

fn saved_points(record: Option<&FitRecord>) -> Value {
    let Some(record) = record else {
        return json!([]);
    };
    Value::Array(
        record
            .points
            .iter()
            .map(|p| {
                // Labels are "points[i] (name)" for landmark clicks.
                let landmark = p
                    .label
                    .split_once(" (")
                    .and_then(|(_, rest)| rest.strip_suffix(')'))
                    .map(str::to_string);
                json!({ "pixel": p.pixel_clicked.unwrap_or(p.pixel), "landmark": landmark, "pitch": p.pitch })
            })
            .collect(),
    )
}

async fn app_state(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorise(&state, &headers)?;
    let snapshot = state.active.current();
    let loaded = snapshot.loaded.as_deref();
    let pitch = pitch_of(loaded);
    let (cameras, errors) = {
        let s = state.stills();
        (s.cameras.clone(), s.errors.clone())
    };
    let mut views = Vec::new();
    for (name, frame) in &cameras {
        let record = loaded
            .and_then(|l| l.file.camera(name))
            .and_then(|c| c.fit.as_ref());
        views.push(json!({
            "name": name,
            "size": [frame.width, frame.height],
            "calibrated": loaded.and_then(|l| l.file.camera(name)).is_some(),
            "lens": state.lens(name, loaded).is_some(),
            "points": saved_points(record),
        }));
    }
    if let (Some(l), true) = (loaded, cameras.len() == 2)
        && let (Some(p), Some(_)) = (&l.file.panorama, &l.table)
    {
        views.push(json!({
            "name": "panorama",
            "size": p.image_size,
            "calibrated": true,
            "lens": false,
            "points": saved_points(p.fit.as_ref()),
        }));
    }
    let markings: Vec<Vec<[f64; 2]>> = pitch.markings().iter().map(|m| m.polyline(0.5)).collect();
    Ok(Json(json!({
        "views": views,
        "frame_errors": errors,
        "pitch": { "length_m": pitch.length_m, "width_m": pitch.width_m, "markings": markings },
        "landmarks": pitch.landmarks(),
        "status": status_json(&state),
    })))
}

fn status_json(state: &AppState) -> Value {
    let snapshot = state.active.current();
    let loaded = snapshot.loaded.as_deref();
    json!({
        "file": state.active.path(),
        "generation": snapshot.generation,
        "sha256": loaded.map(|l| l.sha256.clone()),
        "created": loaded.map(|l| l.file.created.clone()),
        "cameras": loaded.map(|l| l.file.cameras.iter().map(|c| c.name.clone()).collect::<Vec<_>>()),
        "panorama": loaded.and_then(|l| l.file.panorama.as_ref().map(|p| p.image_size)),
        "stitching_table": loaded.is_some_and(|l| l.table.is_some()),
        "last_error": snapshot.last_error,
    })
}

async fn status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorise(&state, &headers)?;
    Ok(Json(status_json(&state)))
}

async fn frame(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    UrlPath(view): UrlPath<String>,
) -> Result<Response, ApiError> {
    authorise(&state, &headers)?;
    let png = tokio::task::spawn_blocking(move || frame_png(&state, &view))
        .await
        .map_err(internal)??;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        png.as_ref().clone(),
    )
        .into_response())
}

fn frame_png(state: &AppState, view: &str) -> Result<Arc<Vec<u8>>, ApiError> {
    if view == "panorama" {
        let snapshot = state.active.current();
        let loaded = snapshot.loaded.as_ref().ok_or_else(|| {
            bad_request("the rig is not calibrated yet: calibrate both cameras first")
        })?;
        if let Some((sha, png)) = &state.stills().panorama_png
            && *sha == loaded.sha256
        {
            return Ok(png.clone());
        }
        let table = loaded
            .table
            .as_ref()
            .ok_or_else(|| bad_request("no panorama yet: calibrate both cameras first"))?;
        let (l, r) = (state.frame("left"), state.frame("right"));
        let (Some(l), Some(r)) = (l, r) else {
            return Err(bad_request(
                "both cameras' frames are needed for the panorama",
            ));
        };
        // The page is not the pipeline: the CPU stitch is quick enough for one still.
        let plan = StitchPlan::new(table.clone()).map_err(internal)?;
        let (lp, rp) = (pixels_of(&l.rgba), pixels_of(&r.rgba));
        let [width, height] = table.panorama_size;
        let mut pano = vec![0u32; width as usize * height as usize];
        CpuStitcher::new(plan, None)
            .stitch_rgba(
                &Rgba::packed(l.width, l.height, &lp),
                &Rgba::packed(r.width, r.height, &rp),
                &mut pano,
            )
            .map_err(|e| bad_request(e.to_string()))?;
        let rgba = bytes_of(&pano).to_vec();
        let png = Arc::new(
            encode_png(&RgbaFrame {
                width,
                height,
                rgba,
            })
            .map_err(internal)?,
        );
        state.stills().panorama_png = Some((loaded.sha256.clone(), png.clone()));
        return Ok(png);
    }
    if let Some(png) = state.stills().camera_png.get(view) {
        return Ok(png.clone());
    }
    let frame = state
        .frame(view)
        .ok_or_else(|| bad_request(format!("no frame for view `{view}`")))?;
    let png = Arc::new(encode_png(&frame).map_err(internal)?);
    state
        .stills()
        .camera_png
        .insert(view.to_string(), png.clone());
    Ok(png)
}

async fn refresh(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorise(&state, &headers)?;
    let s = state.clone();
    tokio::task::spawn_blocking(move || s.grab_stills())
        .await
        .map_err(internal)?;
    Ok(Json(
        json!({ "ok": true, "frame_errors": state.stills().errors.clone() }),
    ))
}

#[derive(Deserialize)]
struct SolveRequest {
    view: String,
    points: Vec<ClickedPoint>,
    #[serde(default)]
    note: Option<String>,
}

/// The fit of a request, and what it was fitted on.
struct Solved {
    fit: FieldFit,
    points: PointsFile,
}

fn fit_request(
    state: &AppState,
    req: &SolveRequest,
    loaded: Option<&Loaded>,
) -> Result<Solved, ApiError> {
    let size = if req.view == "panorama" {
        loaded
            .and_then(|l| l.file.panorama.as_ref())
            .map(|p| p.image_size)
            .ok_or_else(|| bad_request("no panorama yet: calibrate both cameras first"))?
    } else {
        let frame = state
            .frame(&req.view)
            .ok_or_else(|| bad_request(format!("no camera `{}`", req.view)))?;
        [frame.width, frame.height]
    };
    let points = PointsFile {
        image_size: size,
        points: req.points.clone(),
        pitch_size: Some(pitch_of(loaded)),
        lens: if req.view == "panorama" {
            None
        } else {
            state.lens(&req.view, loaded)
        },
        camera: Some(req.view.clone()),
    };
    let fit = points
        .solve(&FitOptions::for_image(size))
        .map_err(bad_request)?;
    Ok(Solved { fit, points })
}

fn solve_json(solved: &Solved) -> Value {
    let fit = &solved.fit;
    let view = solved.points.view();
    let overlay = pitch_overlay(
        &solved.points.pitch(),
        &fit.pitch_from_image,
        view.lens.as_ref(),
        view.size,
    );
    // The uncertainty grid, placed in the image.
    let image_from_pitch = fit.pitch_from_image.inverse();
    let grid: Vec<Value> = fit
        .uncertainty
        .cells
        .iter()
        .filter_map(|c| {
            let u = image_from_pitch.apply(c.pitch)?;
            let px = view.lens.map_or(u, |l| l.distort_pixel(u));
            Some(json!({ "pixel": px, "error_cm": c.error_cm }))
        })
        .collect();
    let points: Vec<Value> = fit
        .points
        .iter()
        .zip(&solved.points.points)
        .map(|(r, clicked)| {
            json!({
                "pixel": clicked.pixel,
                "landmark": clicked.landmark,
                "inlier": r.inlier,
                "error_px": r.error_px,
                "error_cm": r.error_cm,
                "left_out": r.left_out,
                "note": r.note,
            })
        })
        .collect();
    json!({
        "pitch_from_image": fit.pitch_from_image,
        "points": points,
        "inliers": fit.inliers,
        "rms_px": fit.rms_px,
        "sigma_px": fit.sigma_px,
        "expected_error_cm": {
            "median": fit.uncertainty.median_cm,
            "p95": fit.uncertainty.p95_cm,
            "max": fit.uncertainty.max_cm,
        },
        "held_out_cm": fit.held_out.as_ref().map(|h| json!({
            "median": 100.0 * h.median_m,
            "p90": 100.0 * h.p90_m,
            "expected_median": 100.0 * h.expected_median_m,
            "expected_p90": 100.0 * h.expected_p90_m,
        })),
        "overlay": overlay,
        "uncertainty_grid": grid,
    })
}

async fn solve(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(req): Json<SolveRequest>,
) -> Result<Json<Value>, ApiError> {
    authorise(&state, &headers)?;
    let snapshot = state.active.current();
    let solved = fit_request(&state, &req, snapshot.loaded.as_deref())?;
    Ok(Json(solve_json(&solved)))
}

/// The record kept in the file: per-point reports with the pixels as clicked.
fn record_of(solved: &Solved) -> FitRecord {
    let mut record = FitRecord::from(&solved.fit);
    for (r, clicked) in record.points.iter_mut().zip(&solved.points.points) {
        r.pixel_clicked = Some(clicked.pixel);
    }
    record
}

async fn save(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(req): Json<SolveRequest>,
) -> Result<Json<Value>, ApiError> {
    authorise(&state, &headers)?;
    let _writer = state.writer.lock().await;
    let st = state.clone();
    let result = tokio::task::spawn_blocking(move || save_blocking(&st, &req))
        .await
        .map_err(internal)??;
    Ok(Json(result))
}

fn save_blocking(state: &AppState, req: &SolveRequest) -> Result<Value, ApiError> {
    let snapshot = state.active.current();
    let loaded = snapshot.loaded.as_deref();
    let solved = fit_request(state, req, loaded)?;
    let mut notes = Vec::new();
    let mut cal = match loaded {
        Some(l) => l.file.clone(),
        None => CalibrationFile::new(pitch_of(None), Vec::new()),
    };
    if req.view == "panorama" {
        // The panorama was stitched with the running calibration: its new field homography
        // corrects the pitch side of every camera by the same map, and the stitching stays.
        let pano = cal
            .panorama
            .as_mut()
            .ok_or_else(|| bad_request("no panorama to refine"))?;
        let correction: Homography = solved
            .fit
            .pitch_from_image
            .compose(&pano.pitch_from_image.inverse());
        pano.pitch_from_image = solved.fit.pitch_from_image;
        pano.fit = Some(record_of(&solved));
        for camera in &mut cal.cameras {
            camera.pitch_from_image = correction.compose(&camera.pitch_from_image);
        }
    } else {
        let frame = state
            .frame(&req.view)
            .ok_or_else(|| bad_request(format!("no camera `{}`", req.view)))?;
        let [w, h] = [frame.width as f64, frame.height as f64];
        let entry = CameraCalibration {
            name: req.view.clone(),
            image_size: [frame.width, frame.height],
            lens: solved
                .points
                .lens
                .unwrap_or_else(|| LensModel::pinhole(w.max(h), w.max(h), w / 2.0, h / 2.0)),
            pitch_from_image: solved.fit.pitch_from_image,
            fit: Some(record_of(&solved)),
        };
        match cal.cameras.iter_mut().find(|c| c.name == req.view) {
            Some(c) => *c = entry,
            None => cal.cameras.push(entry),
        }
        cal.cameras.sort_by_key(|c| c.name != "left");
        let both = cal.camera("left").is_some() && cal.camera("right").is_some();
        if both {
            let options = PanoramaOptions {
                width: state.config.calibration.panorama_width,
                ..PanoramaOptions::default()
            };
            let view = plan_panorama(&cal, &options).map_err(|e| bad_request(e.to_string()))?;
            cal.panorama = Some(view.calibration());
            match (state.frame("left"), state.frame("right")) {
                (Some(l), Some(r)) => {
                    let left = Frame {
                        size: [l.width, l.height],
                        rgba: &l.rgba,
                    };
                    let right = Frame {
                        size: [r.width, r.height],
                        rgba: &r.rgba,
                    };
                    match register_seam(&mut cal, &left, &right) {
                        Ok(report) => notes.push(format!(
                            "seam registered: shift of {:.1}, {:.1} px removed",
                            report.shift_px[0], report.shift_px[1]
                        )),
                        Err(e) => notes.push(format!("seam not registered: {e}")),
                    }
                }
                _ => notes.push("seam not registered: a camera frame is missing".into()),
            }
            // The panorama's own clicks belong to the old framing.
            if let Some(p) = cal.panorama.as_mut() {
                p.fit = None;
            }
        }
    }
    let note = req
        .note
        .clone()
        .unwrap_or_else(|| format!("{} calibrated on the technician page", req.view));
    cal.created = Provenance::now(
        concat!(
            "polyvision-edge ",
            env!("CARGO_PKG_VERSION"),
            " technician page"
        ),
        Some(note),
    );
    let path = state.active.path().to_owned();
    let kept = cal
        .save_with_history(&path)
        .map_err(|e| internal(e.to_string()))?;
    state.active.reload();
    let status = status_json(state);
    if let Some(err) = status["last_error"].as_str() {
        return Err(internal(format!("saved, but the daemon refused it: {err}")));
    }
    tracing::info!(view = %req.view, file = %path.display(), "calibration saved from the technician page");
    Ok(json!({
        "saved": path,
        "previous_version": kept,
        "notes": notes,
        "status": status,
        "fit": solve_json(&solved),
    }))
}

async fn history(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorise(&state, &headers)?;
    let entries = file::history(state.active.path()).map_err(|e| internal(e.to_string()))?;
    let list: Vec<Value> = entries
        .iter()
        .rev()
        .map(|h| {
            let created = CalibrationFile::load(&h.path)
                .map(|c| json!(c.created))
                .unwrap_or_else(|e| json!({ "note": format!("unreadable: {e}") }));
            json!({
                "number": h.number,
                "replaced_at": file::rfc3339_utc(h.replaced_at_unix),
                "created": created,
            })
        })
        .collect();
    Ok(Json(json!({ "versions": list })))
}

#[derive(Deserialize)]
struct RestoreRequest {
    number: u32,
}

async fn restore(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(req): Json<RestoreRequest>,
) -> Result<Json<Value>, ApiError> {
    authorise(&state, &headers)?;
    let _writer = state.writer.lock().await;
    let path = state.active.path().to_owned();
    file::restore(&path, req.number).map_err(|e| bad_request(e.to_string()))?;
    state.active.reload();
    tracing::info!(
        version = req.number,
        "calibration restored from the technician page"
    );
    Ok(Json(json!({ "status": status_json(&state) })))
}
