//! What coaches read: their organisation's matches and where players were (heatmaps), scoped by
//! the organisation in the user token — never by anything in the request.

use crate::service::{ApiError, AppState};
use crate::users::User;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// One match in the list.
#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq)]
pub struct MatchSummaryRow {
    /// Match id.
    pub match_id: String,
    /// The rig that recorded it.
    pub device_serial: String,
    /// Start, ms since 1970.
    pub started_ms: i64,
    /// Frames per second.
    pub fps: f64,
    /// Frames stored (last frame + 1).
    pub frames: u64,
    /// Distinct tracks.
    pub tracks: u64,
}

#[derive(Debug, Row, Deserialize)]
struct FpsRow {
    fps: f64,
}

#[derive(Debug, Row, Deserialize)]
struct CellRow {
    gx: i32,
    gy: i32,
    frames: u64,
}

/// `GET /v1/matches` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct MatchList {
    /// Newest first.
    pub matches: Vec<MatchSummaryRow>,
}

/// Heatmap parameters.
#[derive(Debug, Deserialize)]
pub struct HeatmapQuery {
    /// Cell size, metres (0.5–20; default 2).
    #[serde(default)]
    pub cell_m: Option<f64>,
    /// One track (default: all).
    #[serde(default)]
    pub track: Option<u32>,
    /// One class: 1 player, 2 goalkeeper, 3 referee, 4 ball (default: all).
    #[serde(default)]
    pub class: Option<u8>,
    /// From this time, seconds since the match start (e.g. the second half).
    #[serde(default)]
    pub from_s: Option<f64>,
    /// Up to this time, seconds since the match start.
    #[serde(default)]
    pub to_s: Option<f64>,
}

/// A heatmap: seconds spent per cell.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Heatmap {
    /// Cell size, metres.
    pub cell_m: f64,
    /// Cells `[column, row, seconds]`; column `i` spans `[i·cell_m, (i+1)·cell_m)` along the
    /// touchline from the pitch's left goal line, row `j` likewise across.
    pub cells: Vec<(i32, i32, f64)>,
    /// Seconds in all cells.
    pub total_s: f64,
}

fn warehouse(e: clickhouse::error::Error) -> ApiError {
    tracing::warn!(error = %e, "ClickHouse failed answering a coach");
    ApiError::unavailable(format!("storage unavailable: {e}"))
}

fn user(state: &AppState, headers: &HeaderMap) -> Result<User, ApiError> {
    let token = crate::auth::bearer(headers)?;
    let keys = state.users().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "user tokens are not configured on this service (--jwks)",
        )
    })?;
    Ok(keys.verify(token)?)
}

/// `GET /v1/matches`: the organisation's matches.
pub async fn list_matches(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<axum::Json<MatchList>, ApiError> {
    let user = user(&state, &headers)?;
    let org = user.org.to_string();
    let matches = state
        .warehouse()
        .client()
        .query(&crate::queries::MATCHES.sql())
        .bind(&org)
        .bind(&org)
        .fetch_all::<MatchSummaryRow>()
        .await
        .map_err(warehouse)?;
    Ok(axum::Json(MatchList { matches }))
}

/// `GET /v1/matches/{id}/heatmap`.
pub async fn heatmap(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(match_id): Path<String>,
    Query(q): Query<HeatmapQuery>,
) -> Result<axum::Json<Heatmap>, ApiError> {
    let user = user(&state, &headers)?;
    let match_id = Uuid::parse_str(&match_id).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("match id {match_id:?} is not a UUID"),
        )
    })?;
    let cell_m = q.cell_m.unwrap_or(2.0);
    if !(0.5..=20.0).contains(&cell_m) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("cell_m {cell_m} is outside 0.5–20"),
        ));
    }
    if let Some(c) = q.class
        && !(1..=4).contains(&c)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("class {c}: 1 player, 2 goalkeeper, 3 referee, 4 ball"),
        ));
    }
    let client = state.warehouse().client();
    let org = user.org.to_string();
    let m = client
        .query(&crate::queries::MATCH_OF_ORG.sql())
        .bind(&org)
        .bind(match_id.to_string())
        .fetch_optional::<FpsRow>()
        .await
        .map_err(warehouse)?
        // Another organisation's match is answered exactly like a missing one.
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no match {match_id}")))?;
    let fps = m.fps.max(1e-3);
    let frame_of = |s: Option<f64>, default: u64| {
        s.filter(|v| v.is_finite()).map_or(default, |v| {
            (v.max(0.0) * fps).round().min(u32::MAX as f64) as u64
        })
    };
    let (from, to) = (frame_of(q.from_s, 0), frame_of(q.to_s, u32::MAX as u64));
    let cell_cm = (cell_m * 100.0).round() as u32;
    let track = q.track.unwrap_or(0);
    let class = q.class.unwrap_or(0);
    let rows = client
        .query(&crate::queries::HEATMAP.sql())
        .bind(cell_cm)
        .bind(cell_cm)
        .bind(&org)
        .bind(match_id.to_string())
        .bind(track)
        .bind(track)
        .bind(class)
        .bind(class)
        .bind(from)
        .bind(to)
        .fetch_all::<CellRow>()
        .await
        .map_err(warehouse)?;
    let cells: Vec<(i32, i32, f64)> = rows
        .iter()
        .map(|c| (c.gx, c.gy, c.frames as f64 / fps))
        .collect();
    let total_s = cells.iter().map(|c| c.2).sum();
    Ok(axum::Json(Heatmap {
        cell_m,
        cells,
        total_s,
    }))
}
