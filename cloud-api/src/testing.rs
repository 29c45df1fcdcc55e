//! Helpers for tests and benchmarks of the cloud path (here and in the edge crate): a real
//! ClickHouse server of their own, plain HTTP calls, and a checksum of stored rows that the
//! rig's side computes the same way.

use polyvision_cloud_sync::wire::WireRow;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()
        .map(|a| a.port())
}

/// One HTTP/1.0 request to `url` (`http://host:port/path`); the status and body.
pub fn http(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} /{path} HTTP/1.0\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let out = String::from_utf8_lossy(&out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head}")))?;
    Ok((status, body.to_string()))
}

/// A match start the service accepts: ten days ago, at a whole day (the service refuses
/// starts far from its clock, so fixed dates in tests would expire).
pub fn recent_match_start_ms() -> i64 {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let now = crate::auth::now_s() as i64 * 1000;
    now / DAY_MS * DAY_MS - 10 * DAY_MS
}

/// Enrols a device through the factory API; the HTTP status.
pub fn enrol(
    base: &str,
    admin_token: &str,
    serial: &str,
    public_key: &str,
    org: &str,
) -> std::io::Result<u16> {
    let body = serde_json::json!({
        "serial": serial, "public_key": public_key, "organization_id": org
    });
    http(
        "POST",
        &format!("{base}/v1/factory/devices"),
        Some(admin_token),
        body.to_string().as_bytes(),
    )
    .map(|r| r.0)
}

/// A ClickHouse server of its own (Debian's `clickhouse-server`), on free ports, in a
/// temporary directory; killed when dropped.
pub struct ClickHouse {
    child: Child,
    /// HTTP URL.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl ClickHouse {
    /// The server's process id (for tests that stop it with SIGSTOP).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts one and waits until it answers.
    pub fn start() -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let http_port = free_port()?;
        let tcp_port = free_port()?;
        let users = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/clickhouse-users.xml");
        let log = d.join("stderr.log");
        let mut child = Command::new("/usr/sbin/clickhouse-server")
            .arg("--config-file=/etc/clickhouse-server/config.xml")
            .arg("--")
            .arg("--listen_host=127.0.0.1")
            .arg(format!("--http_port={http_port}"))
            .arg(format!("--tcp_port={tcp_port}"))
            .arg("--interserver_http_port=0")
            .arg(format!("--path={}/", d.join("data").display()))
            .arg(format!("--tmp_path={}/", d.join("tmp").display()))
            .arg(format!("--user_files_path={}/", d.join("user_files").display()))
            .arg(format!(
                "--format_schema_path={}/",
                d.join("format_schemas").display()
            ))
            .arg(format!("--users_config={}", users.display()))
            .arg(format!("--logger.log={}", d.join("server.log").display()))
            .arg(format!(
                "--logger.errorlog={}",
                d.join("server.err.log").display()
            ))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .map_err(|e| {
                std::io::Error::other(format!(
                    "starting /usr/sbin/clickhouse-server (Debian package clickhouse-server; scripts/setup.sh --test installs it): {e}"
                ))
            })?;
        let url = format!("http://127.0.0.1:{http_port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = http("GET", &format!("{url}/ping"), None, b"") {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(std::io::Error::other(format!(
                    "ClickHouse exited with {status}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(std::io::Error::other(
                    "ClickHouse did not answer within 30 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(ClickHouse {
            child,
            url,
            _dir: dir,
        })
    }

    /// Runs a query; its text output (trimmed), or the server's error.
    pub fn query(&self, sql: &str) -> std::io::Result<String> {
        let (status, body) = http("POST", &format!("{}/", self.url), None, sql.as_bytes())?;
        if status != 200 {
            return Err(std::io::Error::other(format!(
                "{sql}: HTTP {status}: {body}"
            )));
        }
        Ok(body.trim().to_string())
    }

    /// Stored detections of database `db`: (rows, checksum), each row once (`FINAL`).
    pub fn stored(&self, db: &str) -> std::io::Result<(u64, u64)> {
        let out = self.query(&checksum_sql(db))?;
        let mut it = out.split('\t');
        let n = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        let s = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((n, s))
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A row's part of the checksum (sum over rows, wrapping); [`checksum_sql`] computes the same
/// in ClickHouse from the stored columns.
pub fn row_hash(match_id: &[u8; 16], r: &WireRow) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&match_id[..8]);
    let mut h = u64::from_le_bytes(first) % 1_000_003;
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

/// `SELECT count(), sum(row hash)` over `db.detections FINAL`.
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

/// The cloud service running in this process on its own runtime, for tests and benchmarks.
pub struct InProcessService {
    /// Base URL.
    pub url: String,
    runtime: tokio::runtime::Runtime,
}

impl InProcessService {
    /// Serves database `database` of `clickhouse` with admin token `admin_token`, its signing
    /// key in `dir`; waits until it is ready.
    pub fn start(
        clickhouse: &ClickHouse,
        dir: &Path,
        database: &str,
        admin_token: &str,
    ) -> anyhow::Result<Self> {
        Self::start_with_users(clickhouse, dir, database, admin_token, None)
    }

    /// [`InProcessService::start`], accepting user tokens of the keys in `jwks`.
    pub fn start_with_users(
        clickhouse: &ClickHouse,
        dir: &Path,
        database: &str,
        admin_token: &str,
        jwks: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let config = crate::ServerConfig {
            listen: addr,
            clickhouse_url: clickhouse.url.clone(),
            clickhouse_user: None,
            clickhouse_password: None,
            database: database.into(),
            signing_key: dir.join("service.key"),
            token_lifetime: Duration::from_secs(86_400),
            jwks: jwks.map(Path::to_path_buf),
            service: crate::service::ServiceConfig {
                admin_token: Some(admin_token.into()),
                device_rate_per_s: 1000.0,
                device_burst: 1000.0,
                auth_rate_per_s: 1000.0,
                auth_burst: 1000.0,
                ..Default::default()
            },
            connections: Default::default(),
        };
        let server = runtime.spawn(crate::serve(config, listener, std::future::pending()));
        let url = format!("http://{addr}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(
            http("GET", &format!("{url}/readyz"), None, b""),
            Ok((200, _))
        ) {
            anyhow::ensure!(!server.is_finished(), "the service stopped while starting");
            anyhow::ensure!(
                Instant::now() < deadline,
                "the service was not ready in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(InProcessService { url, runtime })
    }

    /// The service's runtime (run clients on it too).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// A counter from `/metrics` (0 when absent).
    pub fn metric(&self, name: &str) -> f64 {
        http("GET", &format!("{}/metrics", self.url), None, b"")
            .map(|(_, body)| {
                body.lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.rsplit(' ').next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0)
            })
            .unwrap_or(0.0)
    }
}
