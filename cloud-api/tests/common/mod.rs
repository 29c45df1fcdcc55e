//! Shared by the cloud service's tests: a real ClickHouse server, the service as a real process,
//! a buffer kept in memory, and a fault-injecting HTTP proxy.
#![allow(dead_code, unreachable_pub)]

use polyvision_cloud_sync::uploader::{PendingBatch, RowSource};
use polyvision_cloud_sync::wire::WireRow;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_http(url: &str, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::blocking_get(url)
            && r
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "{what} did not answer {url} within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Minimal blocking GET used while waiting for servers (no async runtime needed).
mod reqwest {
    use super::*;
    pub fn blocking_get(url: &str) -> std::io::Result<bool> {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut s = TcpStream::connect(host)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200"))
    }
}

/// A ClickHouse server of its own, on free ports, in a temporary directory.
pub struct ClickHouse {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl ClickHouse {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let http = free_port();
        let tcp = free_port();
        let users = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/clickhouse-users.xml");
        let log = d.join("stderr.log");
        let mut child = Command::new("/usr/sbin/clickhouse-server")
            .arg("--config-file=/etc/clickhouse-server/config.xml")
            .arg("--")
            .arg("--listen_host=127.0.0.1")
            .arg(format!("--http_port={http}"))
            .arg(format!("--tcp_port={tcp}"))
            .arg("--interserver_http_port=0")
            .arg(format!("--path={}/", d.join("data").display()))
            .arg(format!("--tmp_path={}/", d.join("tmp").display()))
            .arg(format!("--user_files_path={}/", d.join("user_files").display()))
            .arg(format!("--format_schema_path={}/", d.join("format_schemas").display()))
            .arg(format!("--users_config={}", users.display()))
            .arg(format!("--logger.log={}", d.join("server.log").display()))
            .arg(format!("--logger.errorlog={}", d.join("server.err.log").display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start /usr/sbin/clickhouse-server (Debian package clickhouse-server; scripts/setup.sh --test installs it)");
        let url = format!("http://127.0.0.1:{http}");
        wait_http(&format!("{url}/ping"), "ClickHouse", &mut child, &log);
        ClickHouse {
            child,
            url,
            _dir: dir,
        }
    }

    /// Runs a query over HTTP and returns its text output.
    pub fn query(&self, sql: &str) -> String {
        let host = self.url.trim_start_matches("http://");
        let mut s = TcpStream::connect(host).expect("connect ClickHouse");
        write!(
            s,
            "POST / HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n{sql}",
            sql.len()
        )
        .expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        assert!(head.contains(" 200 "), "query {sql}: {out}");
        body.trim().to_string()
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
            .arg(format!("--signing-key={}", self.dir.join("service.key").display()))
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
        wait_http(&format!("{}/readyz", self.url()), "cloud-api", &mut child, &log);
        self.child = Some(child);
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
            b.matches.push((mid, 1_790_000_000_000 + m as i64 * 7_200_000));
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

/// A row's contribution to the checksum; [`checksum_sql`] computes the same in ClickHouse.
pub fn row_hash(match_id: &[u8; 16], r: &WireRow) -> u64 {
    // A simple polynomial mix that ClickHouse can compute with integer arithmetic.
    let m = u64::from_le_bytes(match_id[..8].try_into().expect("8 bytes"));
    let mut h = m % 1_000_003;
    for v in [
        r.frame as u64,
        r.track as u64,
        (r.x_cm as i64 + 100_000) as u64,
        (r.y_cm as i64 + 100_000) as u64,
        r.class as u64,
        r.conf as u64,
    ] {
        h = (h * 1_000_033 + v) % 4_294_967_311;
    }
    h
}

/// Rows and checksum of everything stored, each row counted once (`FINAL`).
pub fn checksum_sql(db: &str) -> String {
    let mut h = "(reinterpretAsUInt64(unhex(substring(replaceAll(toString(match_id), '-', ''), 1, 16))) % 1000003)".to_string();
    for col in [
        "frame",
        "track",
        "toUInt64(x_cm + 100000)",
        "toUInt64(y_cm + 100000)",
        "class",
        "confidence",
    ] {
        h = format!("(({h} * 1000033 + {col}) % 4294967311)");
    }
    format!("SELECT count(), sum({h}) FROM {db}.detections FINAL FORMAT TabSeparated")
}

/// A buffer shared between uploader incarnations.
#[derive(Clone)]
pub struct SharedBuffer(pub Arc<Mutex<MemoryBuffer>>);

impl RowSource for SharedBuffer {
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<PendingBatch>, String> {
        let b = self.0.lock().map_err(|e| e.to_string())?;
        let start = b.rows.partition_point(|(id, _, _)| *id <= b.acknowledged);
        let Some(&(_, m, _)) = b.rows.get(start).map(|r| r) else {
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
}
