//! What coaches read: their organisation's matches, each player's metrics as the rig measured
//! them (the match summary), where players were (heatmaps per player, team or time range),
//! their paths, and a match's positions for export — scoped by the organisation in the user
//! token, never by anything in the request.

use crate::service::{ApiError, AppState, warehouse_error};
use crate::users::User;
use crate::warehouse::PlayerSummaryRow;
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

#[derive(Debug, Row, Deserialize)]
struct PositionRow {
    track: u32,
    class: u8,
    frame: u32,
    x_cm: i32,
    y_cm: i32,
}

/// Most positions one trajectories answer carries (ask for a shorter range or every Nth frame).
pub const MAX_POSITIONS: u64 = 500_000;

/// Trajectory parameters.
#[derive(Debug, Deserialize)]
pub struct TrajectoryQuery {
    /// One track (default: all).
    #[serde(default)]
    pub track: Option<u32>,
    /// From this time, seconds since the match start.
    #[serde(default)]
    pub from_s: Option<f64>,
    /// Up to this time.
    #[serde(default)]
    pub to_s: Option<f64>,
    /// Keep every Nth frame (default 1: all; 25 at 25 fps is one position per second).
    #[serde(default)]
    pub every: Option<u32>,
}

/// One track's path.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Trajectory {
    /// Track id.
    pub track: u32,
    /// MOT class.
    pub class: u8,
    /// `[seconds since the match start, x m, y m]`.
    pub points: Vec<(f64, f64, f64)>,
}

/// `GET /v1/matches/{id}/trajectories` answer.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Trajectories {
    /// Frames per second of the match.
    pub fps: f64,
    /// True when [`MAX_POSITIONS`] cut the answer short.
    pub truncated: bool,
    /// Paths by track.
    pub tracks: Vec<Trajectory>,
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
    /// One of the tracker's tracks (default: all).
    #[serde(default)]
    pub track: Option<u32>,
    /// One player of the match summary (all the tracks linked into them).
    #[serde(default)]
    pub player: Option<u32>,
    /// One team of the match summary: `team_a`, `team_b`, `goalkeeper`, `referee`.
    #[serde(default)]
    pub team: Option<String>,
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
    /// Cells `[column, row, seconds]` in pitch coordinates (metres from the centre spot, x along
    /// the touchline, y away from the rig): column `i` spans x in `[i·cell_m, (i+1)·cell_m)`,
    /// row `j` spans y likewise, so cells left of or nearer than the centre spot are negative.
    pub cells: Vec<(i32, i32, f64)>,
    /// Seconds in all cells.
    pub total_s: f64,
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
        .map_err(|e| warehouse_error(&state, e))?;
    Ok(axum::Json(MatchList { matches }))
}

/// The frame rate of an organisation's match; 404 for anything else.
async fn match_fps(state: &AppState, org: &str, match_id: &str) -> Result<(Uuid, f64), ApiError> {
    let id = Uuid::parse_str(match_id).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("match id {match_id:?} is not a UUID"),
        )
    })?;
    let m = state
        .warehouse()
        .client()
        .query(&crate::queries::MATCH_OF_ORG.sql())
        .bind(org)
        .bind(id.to_string())
        .fetch_optional::<FpsRow>()
        .await
        .map_err(|e| warehouse_error(state, e))?
        // Another organisation's match is answered exactly like a missing one.
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no match {id}")))?;
    Ok((id, m.fps.max(1e-3)))
}

fn frame_range(from_s: Option<f64>, to_s: Option<f64>, fps: f64) -> (u64, u64) {
    let frame_of = |s: Option<f64>, default: u64| {
        s.filter(|v| v.is_finite()).map_or(default, |v| {
            (v.max(0.0) * fps).round().min(u32::MAX as f64) as u64
        })
    };
    (frame_of(from_s, 0), frame_of(to_s, u32::MAX as u64))
}

/// `GET /v1/matches/{id}/trajectories`.
pub async fn trajectories(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(match_id): Path<String>,
    Query(q): Query<TrajectoryQuery>,
) -> Result<axum::Json<Trajectories>, ApiError> {
    let user = user(&state, &headers)?;
    let org = user.org.to_string();
    let (id, fps) = match_fps(&state, &org, &match_id).await?;
    let every = q.every.unwrap_or(1);
    if every == 0 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "every must be at least 1",
        ));
    }
    let (from, to) = frame_range(q.from_s, q.to_s, fps);
    let track = q.track.unwrap_or(0);
    let rows = state
        .warehouse()
        .client()
        .query(&crate::queries::TRAJECTORIES.sql())
        .bind(&org)
        .bind(id.to_string())
        .bind(track)
        .bind(track)
        .bind(from)
        .bind(to)
        .bind(every)
        .bind(MAX_POSITIONS + 1)
        .fetch_all::<PositionRow>()
        .await
        .map_err(|e| warehouse_error(&state, e))?;
    let truncated = rows.len() as u64 > MAX_POSITIONS;
    let mut tracks: Vec<Trajectory> = Vec::new();
    for r in rows.iter().take(MAX_POSITIONS as usize) {
        let point = (
            r.frame as f64 / fps,
            r.x_cm as f64 / 100.0,
            r.y_cm as f64 / 100.0,
        );
        match tracks.last_mut() {
            Some(t) if t.track == r.track => t.points.push(point),
            _ => tracks.push(Trajectory {
                track: r.track,
                class: r.class,
                points: vec![point],
            }),
        }
    }
    Ok(axum::Json(Trajectories {
        fps,
        truncated,
        tracks,
    }))
}

/// Which of the tracker's tracks a heatmap reads.
enum Tracks {
    /// Ids in `[low, high]`.
    Range(u32, u32),
    /// These ids.
    List(Vec<u32>),
}

#[derive(Debug, Row, Deserialize)]
struct FragmentRow {
    track: u32,
}

/// The tracker's track ids behind a player (0: any) and a team ("": any) of a match summary.
async fn fragments(
    state: &AppState,
    org: &str,
    match_id: Uuid,
    player: u32,
    team: &str,
) -> Result<Vec<u32>, ApiError> {
    let rows = state
        .warehouse()
        .client()
        .query(&crate::queries::FRAGMENTS.sql())
        .bind(org)
        .bind(match_id.to_string())
        .bind(player)
        .bind(player)
        .bind(team)
        .bind(team)
        .fetch_all::<FragmentRow>()
        .await
        .map_err(|e| warehouse_error(state, e))?;
    Ok(rows.into_iter().map(|r| r.track).collect())
}

/// `GET /v1/matches/{id}/summary` answer.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct MatchSummaryAnswer {
    /// Frames per second of the match.
    pub fps: f64,
    /// False until the rig's summary of the match arrived (after the match ended).
    pub complete: bool,
    /// One row per player, as the rig measured them.
    pub players: Vec<PlayerSummaryRow>,
}

/// `GET /v1/matches/{id}/summary`: each player's distance, speed zones, top speed, sprints and
/// accelerations, exactly as the rig computed them from its smoothed trajectories.
pub async fn match_summary(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(match_id): Path<String>,
) -> Result<axum::Json<MatchSummaryAnswer>, ApiError> {
    let user = user(&state, &headers)?;
    let org = user.org.to_string();
    let (id, fps) = match_fps(&state, &org, &match_id).await?;
    let players = state
        .warehouse()
        .client()
        .query(&crate::queries::PLAYER_SUMMARIES.sql())
        .bind(&org)
        .bind(id.to_string())
        .fetch_all::<PlayerSummaryRow>()
        .await
        .map_err(|e| warehouse_error(&state, e))?;
    Ok(axum::Json(MatchSummaryAnswer {
        fps,
        complete: !players.is_empty(),
        players,
    }))
}

/// Export parameters.
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    /// `csv` (default) or `parquet`.
    #[serde(default)]
    pub format: Option<String>,
}

/// `GET /v1/matches/{id}/export`: every position of the match (frame, seconds, track, player,
/// class, x, y, confidence): CSV with a header row streamed as ClickHouse writes it, or Parquet
/// written by [`crate::export`].
pub async fn export(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(match_id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<axum::response::Response, ApiError> {
    let user = user(&state, &headers)?;
    let parquet = match q.format.as_deref().unwrap_or("csv") {
        "csv" => false,
        "parquet" => true,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("format {other:?}: csv or parquet"),
            ));
        }
    };
    let org = user.org.to_string();
    let (id, fps) = match_fps(&state, &org, &match_id).await?;
    let query = state
        .warehouse()
        .client()
        .query(&crate::queries::EXPORT.sql())
        .bind(fps)
        .bind(&org)
        .bind(id.to_string())
        .bind(&org)
        .bind(id.to_string());
    let (content_type, ext, body) = if parquet {
        // Built in memory before it is sent: a bounded number at once.
        let _slot = state.parquet_export_slot()?;
        let mut rows = query
            .fetch::<crate::export::ExportRow>()
            .map_err(|e| warehouse_error(&state, e))?;
        let internal = |e: parquet::errors::ParquetError| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("writing Parquet: {e}"),
            )
        };
        let mut file = crate::export::ParquetExport::new().map_err(internal)?;
        while let Some(row) = rows.next().await.map_err(|e| warehouse_error(&state, e))? {
            file.push(row).map_err(internal)?;
        }
        let (bytes, _) = file.finish().map_err(internal)?;
        (
            "application/vnd.apache.parquet",
            "parquet",
            axum::body::Body::from(bytes),
        )
    } else {
        let mut cursor = query
            .fetch_bytes("CSVWithNames")
            .map_err(|e| warehouse_error(&state, e))?;
        // The first chunk decides between an answer and an error; the rest streams.
        let first = cursor
            .next()
            .await
            .map_err(|e| warehouse_error(&state, e))?;
        let head = futures_util::stream::iter(first.map(Ok::<_, clickhouse::error::Error>));
        (
            "text/csv; charset=utf-8",
            "csv",
            axum::body::Body::from_stream(futures_util::StreamExt::chain(head, cursor)),
        )
    };
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, content_type)
        .header(
            axum::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"match-{id}.{ext}\""),
        )
        .body(body)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// `GET /v1/matches/{id}/heatmap`.
pub async fn heatmap(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(match_id): Path<String>,
    Query(q): Query<HeatmapQuery>,
) -> Result<axum::Json<Heatmap>, ApiError> {
    let user = user(&state, &headers)?;
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
    let org = user.org.to_string();
    let (match_id, fps) = match_fps(&state, &org, &match_id).await?;
    let client = state.warehouse().client();
    let (from, to) = frame_range(q.from_s, q.to_s, fps);
    let cell_cm = (cell_m * 100.0).round() as u32;
    let class = q.class.unwrap_or(0);
    let selected = match (q.track, q.player, q.team.as_deref()) {
        (Some(t), None, None) => Tracks::Range(t, t),
        (None, None, None) => Tracks::Range(0, u32::MAX),
        (None, player, team) => {
            if let Some(t) = team
                && !polyvision_cloud_sync::summary::TEAMS.contains(&t)
            {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("team {t:?}: one of team_a, team_b, goalkeeper, referee, unknown"),
                ));
            }
            let list = fragments(
                &state,
                &org,
                match_id,
                player.unwrap_or(0),
                team.unwrap_or(""),
            )
            .await?;
            if list.is_empty() {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "no such player or team in this match's summary (it arrives when the match ends)",
                ));
            }
            Tracks::List(list)
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "track cannot be combined with player or team",
            ));
        }
    };
    let (low, high, flag, list) = match selected {
        Tracks::Range(a, b) => (a, b, 0u8, vec![0u32]),
        Tracks::List(l) => (
            l.iter().copied().min().unwrap_or(0),
            l.iter().copied().max().unwrap_or(0),
            1,
            l,
        ),
    };
    let rows = client
        .query(&crate::queries::HEATMAP.sql())
        .bind(cell_cm)
        .bind(cell_cm)
        .bind(&org)
        .bind(match_id.to_string())
        .bind(low)
        .bind(high)
        .bind(flag)
        .bind(list)
        .bind(class)
        .bind(class)
        .bind(from)
        .bind(to)
        .fetch_all::<CellRow>()
        .await
        .map_err(|e| warehouse_error(&state, e))?;
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
