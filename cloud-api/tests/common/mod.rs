//! Shared by the cloud service's tests: a real ClickHouse server, the service as a real process,
//! a buffer kept in memory, and a fault-injecting HTTP proxy.
#![allow(dead_code, unreachable_pub)]

use polyvision_cloud_sync::summary::{MatchSummary, PlayerSummary};
use polyvision_cloud_sync::uploader::{PendingBatch, RowSource};
use polyvision_cloud_sync::wire::WireRow;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use polyvision_cloud_api::testing::{ClickHouse, recent_match_start_ms, row_hash};

pub fn free_port() -> u16 {
    polyvision_cloud_api::testing::free_port().expect("a free port")
}

fn wait_http(url: &str, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = polyvision_cloud_api::testing::http("GET", url, None, b"") {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not answer {url} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The cloud service as a real process (so a test can kill it at any instant).
pub struct Service {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    clickhouse_url: String,
    database: String,
    extra: Vec<String>,
}

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

impl Service {
    pub fn start(ch: &ClickHouse, dir: &Path, database: &str, extra: &[&str]) -> Self {
        std::fs::create_dir_all(dir).expect("dir");
        std::fs::write(dir.join("admin.token"), ADMIN_TOKEN).expect("token");
        let mut s = Service {
            child: None,
            port: free_port(),
            dir: dir.to_owned(),
            clickhouse_url: ch.url.clone(),
            database: database.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the process (again), on the same port, key and database.
    pub fn restart(&mut self) {
        self.kill();
        let log = self.dir.join("service.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_polyvision-cloud-api"))
            .arg(format!("--listen=127.0.0.1:{}", self.port))
            .arg(format!("--clickhouse-url={}", self.clickhouse_url))
            .arg(format!("--database={}", self.database))
            .arg(format!(
                "--signing-key={}",
                self.dir.join("service.key").display()
            ))
            .arg(format!(
                "--admin-token-file={}",
                self.dir.join("admin.token").display()
            ))
            .args(&self.extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("log"),
            )
            .spawn()
            .expect("start polyvision-cloud-api");
        wait_http(
            &format!("{}/readyz", self.url()),
            "cloud-api",
            &mut child,
            &log,
        );
        self.child = Some(child);
    }

    /// SIGTERM; the exit status once the process ended (at most 20 s).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        None
    }

    /// SIGKILL: no graceful anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Enrols a device over the factory API; returns the HTTP status.
pub async fn enrol(base: &str, serial: &str, public_key: &str, org: &str, replace: bool) -> u16 {
    ::reqwest::Client::new()
        .post(format!("{base}/v1/factory/devices"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({
            "serial": serial, "public_key": public_key, "organization_id": org, "replace": replace
        }))
        .send()
        .await
        .expect("enrol request")
        .status()
        .as_u16()
}

/// A rig's buffer in memory: matches of rows with ids, a cursor, quarantined ranges.
#[derive(Debug, Default)]
pub struct MemoryBuffer {
    /// (row id, match index, row)
    pub rows: Vec<(u64, usize, WireRow)>,
    pub matches: Vec<([u8; 16], i64)>,
    pub acknowledged: u64,
    pub quarantined: Vec<(u64, u64, String)>,
    /// Match summaries and what became of them (None: waiting; "sent"; "refused: …").
    pub summaries: Vec<(MatchSummary, Option<String>)>,
}

impl MemoryBuffer {
    /// `matches` matches of `frames` frames with `objects` tracks each, moving smoothly.
    pub fn simulated(matches: usize, frames: u32, objects: u32, seed: u64) -> Self {
        let mut b = MemoryBuffer::default();
        let mut id = 0u64;
        let mut s = seed;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for m in 0..matches {
            let mut mid = [0u8; 16];
            mid[..8].copy_from_slice(&rnd().to_le_bytes());
            mid[8..].copy_from_slice(&(m as u64).to_le_bytes());
            b.matches
                .push((mid, recent_match_start_ms() + m as i64 * 7_200_000));
            let mut pos: Vec<(i32, i32)> = (0..objects)
                .map(|_| ((rnd() % 10_500) as i32, (rnd() % 6_800) as i32))
                .collect();
            for f in 0..frames {
                for (t, p) in pos.iter_mut().enumerate() {
                    p.0 += (rnd() % 21) as i32 - 10;
                    p.1 += (rnd() % 21) as i32 - 10;
                    id += 1;
                    b.rows.push((
                        id,
                        m,
                        WireRow {
                            frame: f,
                            track: t as u32 + 1,
                            x_cm: p.0,
                            y_cm: p.1,
                            class: if t as u32 + 1 == objects { 4 } else { 1 },
                            conf: (rnd() % 256) as u8,
                        },
                    ));
                }
            }
        }
        b
    }

    /// A summary per match, as a rig would send at its end: every track but the ball (the last)
    /// is a person; track 1 and track 2 are one player (track 2 a fragment of 1); odd players
    /// play for team_a, even ones for team_b, the second-last track is a referee. The figures
    /// are made up but distinct per player, so a mix-up shows.
    pub fn summarise(&mut self, serial: &str) {
        for (m, (mid, started)) in self.matches.iter().enumerate() {
            let objects = self
                .rows
                .iter()
                .filter(|r| r.1 == m)
                .map(|r| r.2.track)
                .max()
                .unwrap_or(0);
            let players = (1..objects)
                .filter(|&t| t != 2)
                .map(|t| {
                    let k = t as f64;
                    PlayerSummary {
                        player: t,
                        class: if t + 1 == objects { 3 } else { 1 },
                        team: if t + 1 == objects {
                            "referee"
                        } else if t % 2 == 1 {
                            "team_a"
                        } else {
                            "team_b"
                        }
                        .into(),
                        fragments: if t == 1 { vec![1, 2] } else { vec![t] },
                        frames: 400,
                        distance_m: 100.0 + k * 1.25,
                        zone_m: [50.0 + k, 30.0, 15.0, 4.0, 1.0 + k * 0.25],
                        high_speed_m: 5.0 + k * 0.25,
                        top_speed_mps: 6.0 + k * 0.01,
                        sprints: t % 3,
                        accelerations: t,
                        decelerations: t / 2,
                    }
                })
                .collect();
            self.summaries.push((
                MatchSummary {
                    serial: serial.into(),
                    match_id: uuid::Uuid::from_bytes(*mid).to_string(),
                    match_started_ms: *started,
                    fps: 25.0,
                    players,
                },
                None,
            ));
        }
    }

    /// Row count and a checksum computed the same way as [`checksum_sql`].
    pub fn checksum(&self) -> (u64, u64) {
        let mut sum = 0u64;
        for (_, m, r) in &self.rows {
            let mid = self.matches[*m].0;
            sum = sum.wrapping_add(row_hash(&mid, r));
        }
        (self.rows.len() as u64, sum)
    }
}

/// A buffer shared between uploader incarnations.
#[derive(Clone)]
pub struct SharedBuffer(pub Arc<Mutex<MemoryBuffer>>);

impl RowSource for SharedBuffer {
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<PendingBatch>, String> {
        let b = self.0.lock().map_err(|e| e.to_string())?;
        let start = b.rows.partition_point(|(id, _, _)| *id <= b.acknowledged);
        let Some(&(_, m, _)) = b.rows.get(start) else {
            return Ok(None);
        };
        let take: Vec<_> = b.rows[start..]
            .iter()
            .take(max_rows)
            .take_while(|(_, mm, _)| *mm == m)
            .collect();
        let (mid, started) = b.matches[m];
        Ok(Some(PendingBatch {
            match_id: mid,
            match_started_ms: started,
            fps_milli: 25_000,
            first_row: take[0].0,
            last_row: take[take.len() - 1].0,
            rows: take.iter().map(|r| r.2).collect(),
        }))
    }
    fn acknowledge(&mut self, last_row: u64) -> Result<(), String> {
        let mut b = self.0.lock().map_err(|e| e.to_string())?;
        b.acknowledged = b.acknowledged.max(last_row);
        Ok(())
    }
    fn quarantine(&mut self, batch: &PendingBatch, reason: &str) -> Result<(), String> {
        let mut b = self.0.lock().map_err(|e| e.to_string())?;
        b.quarantined
            .push((batch.first_row, batch.last_row, reason.to_string()));
        b.acknowledged = b.acknowledged.max(batch.last_row);
        Ok(())
    }
    fn backlog(&mut self) -> Result<u64, String> {
        let b = self.0.lock().map_err(|e| e.to_string())?;
        Ok(b.rows.iter().filter(|r| r.0 > b.acknowledged).count() as u64)
    }
    fn next_summary(&mut self) -> Result<Option<(i64, MatchSummary)>, String> {
        let b = self.0.lock().map_err(|e| e.to_string())?;
        Ok(b.summaries
            .iter()
            .position(|s| s.1.is_none())
            .map(|i| (i as i64, b.summaries[i].0.clone())))
    }
    fn summary_done(&mut self, key: i64, refused: Option<&str>) -> Result<(), String> {
        let mut b = self.0.lock().map_err(|e| e.to_string())?;
        let entry = b
            .summaries
            .get_mut(key as usize)
            .ok_or_else(|| format!("no summary {key}"))?;
        entry.1 = Some(refused.map_or("sent".to_string(), |r| format!("refused: {r}")));
        Ok(())
    }
}
