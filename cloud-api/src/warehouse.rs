//! Reads and writes in ClickHouse: enrolled devices, the batch ledger, detections, matches,
//! the rigs' match summaries.

use clickhouse::{Client, Row};
use polyvision_cloud_sync::summary::MatchSummary;
use polyvision_cloud_sync::wire::{BatchHeader, WireRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Serial.
    pub serial: String,
    /// Organisation.
    #[serde(with = "clickhouse::serde::uuid")]
    pub organization_id: Uuid,
    /// Ed25519 public key, base64url.
    pub public_key: String,
    /// Enrolment time, s since 1970.
    pub enrolled_at: u32,
    /// 1 when revoked.
    pub revoked: u8,
}

#[derive(Debug, Row, Serialize)]
struct DetectionRow {
    #[serde(with = "clickhouse::serde::uuid")]
    organization_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    match_id: Uuid,
    created_at: u32,
    frame: u32,
    track: u32,
    class: u8,
    x_cm: i32,
    y_cm: i32,
    confidence: u8,
}

#[derive(Debug, Row, Serialize)]
struct MatchRow {
    #[serde(with = "clickhouse::serde::uuid")]
    organization_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    match_id: Uuid,
    device_serial: String,
    started_at: u32,
    started_ms: i64,
    fps: f64,
    updated_at: u32,
}

#[derive(Debug, Row, Serialize)]
struct BatchRow {
    #[serde(with = "clickhouse::serde::uuid")]
    organization_id: Uuid,
    batch_id: String,
    device_serial: String,
    #[serde(with = "clickhouse::serde::uuid")]
    match_id: Uuid,
    first_row: u64,
    last_row: u64,
    row_count: u32,
    ingested_at: u32,
}

/// One player's row of a match summary, as stored and as read.
#[derive(Debug, Clone, Row, Serialize, Deserialize, PartialEq)]
pub struct PlayerSummaryRow {
    /// Player id (the linked track's id).
    pub player: u32,
    /// MOT class: 1 player, 2 goalkeeper, 3 referee.
    pub class: u8,
    /// `team_a`, `team_b`, `goalkeeper`, `referee`, `unknown`.
    pub team: String,
    /// The tracker's track ids that make up the player.
    pub fragments: Vec<u32>,
    /// Frames from the first to the last measurement.
    pub frames: u32,
    /// Distance covered, m.
    pub distance_m: f64,
    /// Below 7.2 km/h, m.
    pub walking_m: f64,
    /// 7.2–14.4 km/h, m.
    pub jogging_m: f64,
    /// 14.4–19.8 km/h, m.
    pub running_m: f64,
    /// 19.8–25.2 km/h, m.
    pub high_speed_running_m: f64,
    /// Above 25.2 km/h, m.
    pub sprinting_m: f64,
    /// At or above 19.8 km/h, m.
    pub high_speed_m: f64,
    /// Top speed, m/s.
    pub top_speed_mps: f64,
    /// Sprints (≥ 1 s above 25.2 km/h).
    pub sprints: u32,
    /// Accelerations (≥ 0.5 s above 3 m/s²).
    pub accelerations: u32,
    /// Decelerations.
    pub decelerations: u32,
}

#[derive(Debug, Row, Serialize)]
struct StoredSummaryRow {
    #[serde(with = "clickhouse::serde::uuid")]
    organization_id: Uuid,
    #[serde(with = "clickhouse::serde::uuid")]
    match_id: Uuid,
    player: u32,
    received_ms: u64,
    class: u8,
    team: String,
    fragments: Vec<u32>,
    frames: u32,
    distance_m: f64,
    walking_m: f64,
    jogging_m: f64,
    running_m: f64,
    high_speed_running_m: f64,
    sprinting_m: f64,
    high_speed_m: f64,
    top_speed_mps: f64,
    sprints: u32,
    accelerations: u32,
    decelerations: u32,
}

/// Hex text of a batch id.
pub fn batch_id_text(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The ClickHouse side of the service.
#[derive(Clone)]
pub struct Warehouse {
    client: Client,
}

type Result<T> = std::result::Result<T, clickhouse::error::Error>;

impl Warehouse {
    /// Uses `client` (database set).
    pub fn new(client: Client) -> Self {
        Warehouse { client }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The newest record of `serial`, if enrolled.
    pub async fn device(&self, serial: &str) -> Result<Option<DeviceRecord>> {
        self.client
            .query(&crate::queries::DEVICE.sql())
            .bind(serial)
            .fetch_optional()
            .await
    }

    /// Enrols (or re-enrols) a device.
    pub async fn enrol(&self, record: &DeviceRecord) -> Result<()> {
        let mut insert = self.client.insert::<DeviceRecord>("devices").await?;
        insert.write(record).await?;
        insert.end().await
    }

    /// The serial of the device that sent match `match_id` of `org`, if any did.
    pub async fn match_owner(&self, org: Uuid, match_id: Uuid) -> Result<Option<String>> {
        self.client
            .query(&crate::queries::MATCH_OWNER.sql())
            .bind(org.to_string())
            .bind(match_id.to_string())
            .fetch_optional()
            .await
    }

    /// Whether organisation `org` already stored batch `batch_id`.
    pub async fn batch_stored(&self, org: Uuid, batch_id: &str) -> Result<bool> {
        let n: u64 = self
            .client
            .query(&crate::queries::BATCH_STORED.sql())
            .bind(org.to_string())
            .bind(batch_id)
            .fetch_one()
            .await?;
        Ok(n > 0)
    }

    /// Writes a batch: detections first, then the match row, then the ledger entry. A crash in
    /// between leaves no ledger entry, so the device sends the batch again, and the detections
    /// written twice collapse (their sorting key is their identity).
    pub async fn store_batch(
        &self,
        org: Uuid,
        header: &BatchHeader,
        rows: &[WireRow],
    ) -> Result<()> {
        let match_id = Uuid::from_bytes(header.match_id);
        let mut insert = self.client.insert::<DetectionRow>("detections").await?;
        for r in rows {
            let ms = header.frame_time_ms(r.frame);
            insert
                .write(&DetectionRow {
                    organization_id: org,
                    match_id,
                    created_at: (ms.max(0) / 1000) as u32,
                    frame: r.frame,
                    track: r.track,
                    class: r.class,
                    x_cm: r.x_cm,
                    y_cm: r.y_cm,
                    confidence: r.conf,
                })
                .await?;
        }
        insert.end().await?;
        let now = crate::auth::now_s() as u32;
        let mut m = self.client.insert::<MatchRow>("matches").await?;
        m.write(&MatchRow {
            organization_id: org,
            match_id,
            device_serial: header.serial.clone(),
            started_at: (header.match_started_ms.max(0) / 1000) as u32,
            started_ms: header.match_started_ms,
            fps: header.fps_milli as f64 / 1000.0,
            updated_at: now,
        })
        .await?;
        m.end().await?;
        let mut b = self.client.insert::<BatchRow>("ingested_batches").await?;
        b.write(&BatchRow {
            organization_id: org,
            batch_id: batch_id_text(&header.batch_id),
            device_serial: header.serial.clone(),
            match_id,
            first_row: header.first_row,
            last_row: header.last_row,
            row_count: header.row_count,
            ingested_at: now,
        })
        .await?;
        b.end().await
    }

    /// Writes a match summary: one row per player, replacing an earlier summary of the match.
    pub async fn store_summary(
        &self,
        org: Uuid,
        match_id: Uuid,
        summary: &MatchSummary,
    ) -> Result<()> {
        let received_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut insert = self
            .client
            .insert::<StoredSummaryRow>("player_summaries")
            .await?;
        for p in &summary.players {
            let z = p.zone_m;
            insert
                .write(&StoredSummaryRow {
                    organization_id: org,
                    match_id,
                    player: p.player,
                    received_ms,
                    class: p.class,
                    team: p.team.clone(),
                    fragments: p.fragments.clone(),
                    frames: p.frames,
                    distance_m: p.distance_m,
                    walking_m: z[0],
                    jogging_m: z[1],
                    running_m: z[2],
                    high_speed_running_m: z[3],
                    sprinting_m: z[4],
                    high_speed_m: p.high_speed_m,
                    top_speed_mps: p.top_speed_mps,
                    sprints: p.sprints,
                    accelerations: p.accelerations,
                    decelerations: p.decelerations,
                })
                .await?;
        }
        insert.end().await
    }

    /// Answers `SELECT 1`.
    pub async fn ping(&self) -> Result<()> {
        let _: u8 = self.client.query("SELECT 1").fetch_one().await?;
        Ok(())
    }
}
