//! The uploader: cuts batches from the rig's buffer and delivers them, at least once, until the
//! cloud acknowledges each one.
//!
//! The buffer's cursor moves only after an acknowledgement, so a crash anywhere (rig, link,
//! cloud) means the same batch is sent again — with the same content-derived id, which the cloud
//! recognises. Every answer is classified ([`Outcome`]): network errors, 5xx, 408 and 429 are
//! retried with exponential backoff and full jitter (429/503 wait at least their `Retry-After`);
//! 401 fetches a new device token and retries; any other 4xx means the cloud will never take the
//! batch, so it is **quarantined** — kept in the buffer, counted and reported as an alarm — and
//! the uploader moves on. Nothing is dropped silently. When the rows are drained, the summaries
//! of finished matches ([`crate::summary`]) go the same way.

use crate::identity::{challenge_message, signature_text};
use crate::protocol::{
    BATCH_CONTENT_TYPE, CHALLENGE_PATH, ChallengeRequest, ChallengeResponse, INGEST_PATH,
    IngestResponse, SERIAL_HEADER, SUMMARY_CONTENT_TYPE, SUMMARY_PATH, TOKEN_PATH, TokenRequest,
    TokenResponse,
};
use crate::summary::MatchSummary;
use crate::wire::{BatchMeta, WireRow, encode};
use ed25519_dalek::{Signer as _, SigningKey};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings of the uploader.
#[derive(Debug, Clone)]
pub struct UploaderConfig {
    /// Base URL of the cloud service, e.g. `https://ingest.example.org`.
    pub endpoint: String,
    /// Device serial.
    pub serial: String,
    /// Most rows per batch.
    pub batch_rows: usize,
    /// Extra CA certificate (PEM) to trust, for a private cloud.
    pub ca_file: Option<PathBuf>,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// First retry delay; doubles per failure up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Bandwidth cap in bytes per second (batches are paced to it), if any.
    pub max_bytes_per_s: Option<u64>,
    /// How often to look for new rows when the buffer is drained.
    pub poll_interval: Duration,
}

impl UploaderConfig {
    /// Defaults for `endpoint` and `serial`.
    pub fn new(endpoint: &str, serial: &str) -> Self {
        UploaderConfig {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            serial: serial.to_string(),
            batch_rows: 20_000,
            ca_file: None,
            request_timeout: Duration::from_secs(30),
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            max_bytes_per_s: None,
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// Rows of one match waiting to be sent.
#[derive(Debug, Clone)]
pub struct PendingBatch {
    /// Match id.
    pub match_id: [u8; 16],
    /// Match start, ms since 1970.
    pub match_started_ms: i64,
    /// Frame rate, millihertz.
    pub fps_milli: u32,
    /// First buffer row id.
    pub first_row: u64,
    /// Last buffer row id.
    pub last_row: u64,
    /// The rows, in buffer order.
    pub rows: Vec<WireRow>,
}

/// Where the rows come from: the rig's buffer (or anything that keeps a cursor the same way).
pub trait RowSource {
    /// The next unacknowledged rows of one match, at most `max_rows`, oldest first.
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<PendingBatch>, String>;
    /// The cloud has every row up to `last_row`.
    fn acknowledge(&mut self, last_row: u64) -> Result<(), String>;
    /// The cloud refused these rows for good: keep them, mark them, move past them.
    fn quarantine(&mut self, batch: &PendingBatch, reason: &str) -> Result<(), String>;
    /// Rows not yet acknowledged.
    fn backlog(&mut self) -> Result<u64, String>;
    /// The oldest match summary not yet delivered, with the buffer's key for it.
    fn next_summary(&mut self) -> Result<Option<(i64, MatchSummary)>, String> {
        Ok(None)
    }
    /// The summary is delivered (`refused`: the cloud will never take it; keep it, mark it).
    fn summary_done(&mut self, key: i64, refused: Option<&str>) -> Result<(), String> {
        let _ = (key, refused);
        Ok(())
    }
}

/// What an answer means for the batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Stored (or already stored).
    Done {
        /// It had been stored before.
        duplicate: bool,
    },
    /// Try again later.
    Retry {
        /// Why.
        reason: String,
        /// The server's `Retry-After`, if any.
        after: Option<Duration>,
    },
    /// The token was refused: get a new one, then retry.
    Reauthenticate,
    /// The cloud will never take this batch.
    GiveUp {
        /// Why.
        reason: String,
    },
}

/// Classifies an HTTP answer (see the module doc).
pub fn classify(status: u16, retry_after: Option<Duration>, body: &str) -> Outcome {
    let brief: String = body.chars().take(300).collect();
    match status {
        200..=299 => match serde_json::from_str::<IngestResponse>(body) {
            Ok(r) => Outcome::Done {
                duplicate: r.duplicate,
            },
            // A 2xx that is not our answer (a proxy's page): not an acknowledgement.
            Err(_) => Outcome::Retry {
                reason: format!("HTTP {status} without an acknowledgement: {brief}"),
                after: None,
            },
        },
        401 => Outcome::Reauthenticate,
        408 | 425 | 429 | 500..=599 => Outcome::Retry {
            reason: format!("HTTP {status}: {brief}"),
            after: retry_after,
        },
        _ => Outcome::GiveUp {
            reason: format!("HTTP {status}: {brief}"),
        },
    }
}

/// How a delivery ended after its retries.
enum Settled {
    /// Stored (or stored before).
    Done {
        /// It had been stored before.
        duplicate: bool,
    },
    /// The cloud will never take it.
    Refused {
        /// Why.
        reason: String,
    },
}

/// What the uploader reports to the daemon (heartbeat, metrics, page).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncStatus {
    /// Rows not yet acknowledged.
    pub backlog_rows: u64,
    /// Last acknowledgement, ms since 1970.
    pub last_success_ms: Option<i64>,
    /// Batches acknowledged.
    pub batches_sent: u64,
    /// Of those, already stored before (a lost acknowledgement).
    pub batches_duplicate: u64,
    /// Batches (and match summaries) quarantined (an alarm).
    pub batches_quarantined: u64,
    /// Match summaries delivered.
    pub summaries_sent: u64,
    /// Failed attempts that were retried.
    pub retries: u64,
    /// Bytes sent in acknowledged batches.
    pub bytes_sent: u64,
    /// Rows acknowledged.
    pub rows_sent: u64,
    /// The last failure, if the last attempt failed.
    pub last_error: Option<String>,
}

/// Errors that stop a sync pass.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The buffer failed.
    #[error("buffer: {0}")]
    Source(String),
    /// The configuration cannot work (bad CA file, bad URL).
    #[error("uploader configuration: {0}")]
    Config(String),
    /// Encoding failed (a bug or corrupt buffer rows).
    #[error(transparent)]
    Wire(#[from] crate::wire::WireError),
    /// Asked to stop.
    #[error("stopped")]
    Stopped,
}

/// The uploader.
pub struct Uploader {
    config: UploaderConfig,
    key: SigningKey,
    http: reqwest::Client,
    /// Token, when it was asked for, and its lifetime (the device's clock, not the cloud's).
    token: Option<(String, Instant, Duration)>,
    status: Arc<Mutex<SyncStatus>>,
    stop: Arc<AtomicBool>,
}

/// An error with its causes ("error sending request: … : invalid peer certificate: UnknownIssuer"),
/// so a log line says what actually failed.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn jitter(upto: Duration) -> Duration {
    let mut b = [0u8; 8];
    // Without randomness the full delay is still a correct (if less spread) backoff.
    let r = getrandom::fill(&mut b).map_or(u64::MAX, |()| u64::from_le_bytes(b));
    upto.mul_f64(r as f64 / u64::MAX as f64)
}

impl Uploader {
    /// An uploader signing with `key`.
    pub fn new(config: UploaderConfig, key: SigningKey) -> Result<Self, SyncError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("polyvision-edge/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| SyncError::Config(format!("CA file {}: {e}", ca.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| SyncError::Config(format!("CA file {}: {e}", ca.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| SyncError::Config(format!("HTTP client: {e}")))?;
        if !config.endpoint.starts_with("http://") && !config.endpoint.starts_with("https://") {
            return Err(SyncError::Config(format!(
                "cloud endpoint {:?} must start with https:// (or http:// for a local test)",
                config.endpoint
            )));
        }
        Ok(Uploader {
            config,
            key,
            http,
            token: None,
            status: Arc::default(),
            stop: Arc::default(),
        })
    }

    /// The status the daemon shows.
    pub fn status(&self) -> Arc<Mutex<SyncStatus>> {
        self.status.clone()
    }

    /// Setting this flag ends [`Uploader::run`] and any retry wait.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    fn update(&self, f: impl FnOnce(&mut SyncStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    async fn sleep(&self, d: Duration) -> Result<(), SyncError> {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.stop.load(Ordering::Relaxed) {
                return Err(SyncError::Stopped);
            }
            tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(100))).await;
        }
        Ok(())
    }

    /// A valid device token, refreshed a day before it expires (by the device's own clock).
    async fn token(&mut self) -> Result<String, Outcome> {
        if let Some((t, obtained, lifetime)) = &self.token
            && obtained.elapsed() + (*lifetime / 10).min(Duration::from_secs(86_400)) < *lifetime
        {
            return Ok(t.clone());
        }
        let base = &self.config.endpoint;
        let net = |e: reqwest::Error| Outcome::Retry {
            reason: format!("authentication: {}", error_chain(&e)),
            after: None,
        };
        let r = self
            .http
            .post(format!("{base}{CHALLENGE_PATH}"))
            // Lets a load balancer route a device's authentication to one instance (see the
            // cloud service's auth module).
            .header(SERIAL_HEADER, &self.config.serial)
            .json(&ChallengeRequest {
                serial: self.config.serial.clone(),
            })
            .send()
            .await
            .map_err(net)?;
        let challenge: ChallengeResponse = auth_answer(r).await?;
        let signature = self
            .key
            .sign(&challenge_message(&self.config.serial, &challenge.nonce));
        let asked = Instant::now();
        let r = self
            .http
            .post(format!("{base}{TOKEN_PATH}"))
            .header(SERIAL_HEADER, &self.config.serial)
            .json(&TokenRequest {
                serial: self.config.serial.clone(),
                nonce: challenge.nonce,
                signature: signature_text(&signature),
            })
            .send()
            .await
            .map_err(net)?;
        let token: TokenResponse = auth_answer(r).await?;
        self.token = Some((
            token.token.clone(),
            asked,
            Duration::from_secs(token.expires_in_s),
        ));
        tracing::info!(
            serial = %self.config.serial,
            valid_s = token.expires_in_s,
            "device token obtained"
        );
        Ok(token.token)
    }

    async fn send(&mut self, path: &str, content_type: &str, bytes: &[u8]) -> Outcome {
        let token = match self.token().await {
            Ok(t) => t,
            Err(o) => return o,
        };
        let result = self
            .http
            .post(format!("{}{path}", self.config.endpoint))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes.to_vec())
            .send()
            .await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    reason: format!("network: {}", error_chain(&e)),
                    after: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        match response.text().await {
            Ok(body) => classify(status, retry_after, &body),
            // The answer was lost half way: the batch may or may not be stored; send it again.
            Err(e) => Outcome::Retry {
                reason: format!("reading the answer: {e}"),
                after: None,
            },
        }
    }

    /// Keeps a batch that will never be delivered in the buffer, marked, and raises the alarm.
    fn quarantine(
        &self,
        source: &mut (dyn RowSource + Send),
        batch: &PendingBatch,
        reason: String,
    ) -> Result<(), SyncError> {
        tracing::error!(
            first_row = batch.first_row,
            last_row = batch.last_row,
            %reason,
            "batch quarantined in the buffer (kept, not synced); operator action needed"
        );
        source
            .quarantine(batch, &reason)
            .map_err(SyncError::Source)?;
        self.update(|s| {
            s.batches_quarantined += 1;
            s.last_error = Some(reason);
        });
        Ok(())
    }

    /// Delivers one batch: retries until the cloud acknowledges or refuses it for good.
    async fn deliver(
        &mut self,
        source: &mut (dyn RowSource + Send),
        batch: &PendingBatch,
    ) -> Result<(), SyncError> {
        let meta = BatchMeta {
            serial: self.config.serial.clone(),
            match_id: batch.match_id,
            match_started_ms: batch.match_started_ms,
            fps_milli: batch.fps_milli,
            first_row: batch.first_row,
            last_row: batch.last_row,
        };
        let bytes = match encode(&meta, &batch.rows, &self.key) {
            Ok(b) => b,
            // Rows the format cannot carry will never go: keep them, say so, move on.
            Err(e) => return self.quarantine(source, batch, e.to_string()),
        };
        let (settled, started) = self
            .send_until_settled(INGEST_PATH, BATCH_CONTENT_TYPE, &bytes)
            .await?;
        match settled {
            Settled::Done { duplicate } => {
                source
                    .acknowledge(batch.last_row)
                    .map_err(SyncError::Source)?;
                self.update(|s| {
                    s.batches_sent += 1;
                    s.batches_duplicate += duplicate as u64;
                    s.bytes_sent += bytes.len() as u64;
                    s.rows_sent += batch.rows.len() as u64;
                    s.last_success_ms = Some(now_ms());
                    s.last_error = None;
                });
                if let Some(cap) = self.config.max_bytes_per_s.filter(|&c| c > 0) {
                    let budget = Duration::from_secs_f64(bytes.len() as f64 / cap as f64);
                    self.sleep(budget.saturating_sub(started.elapsed())).await?;
                }
                Ok(())
            }
            Settled::Refused { reason } => self.quarantine(source, batch, reason),
        }
    }

    /// Sends `bytes` until the cloud answers for good: retries network errors and retryable
    /// statuses with backoff, renews a refused token. Returns the answer and when its attempt
    /// started (for the bandwidth cap).
    async fn send_until_settled(
        &mut self,
        path: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<(Settled, Instant), SyncError> {
        let mut backoff = self.config.min_backoff;
        loop {
            let started = Instant::now();
            match self.send(path, content_type, bytes).await {
                Outcome::Done { duplicate } => return Ok((Settled::Done { duplicate }, started)),
                Outcome::GiveUp { reason } => return Ok((Settled::Refused { reason }, started)),
                Outcome::Reauthenticate => {
                    self.token = None;
                    self.update(|s| {
                        s.retries += 1;
                        s.last_error = Some("device token refused; authenticating again".into());
                    });
                    // A refused fresh token is not fixed by hammering: back off as well.
                    self.sleep(jitter(backoff)).await?;
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
                Outcome::Retry { reason, after } => {
                    tracing::debug!(%reason, path, "not delivered; retrying");
                    self.update(|s| {
                        s.retries += 1;
                        s.last_error = Some(reason);
                    });
                    let wait = jitter(backoff).max(after.unwrap_or_default());
                    self.sleep(wait).await?;
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    /// Delivers one match summary: retries until the cloud stores or refuses it for good.
    async fn deliver_summary(
        &mut self,
        source: &mut (dyn RowSource + Send),
        key: i64,
        summary: &MatchSummary,
    ) -> Result<(), SyncError> {
        let bytes = match crate::summary::encode(summary, &self.key) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(match_id = %summary.match_id, error = %e, "match summary cannot be sent; kept in the buffer");
                return source
                    .summary_done(key, Some(&e.to_string()))
                    .map_err(SyncError::Source);
            }
        };
        let (settled, _) = self
            .send_until_settled(SUMMARY_PATH, SUMMARY_CONTENT_TYPE, &bytes)
            .await?;
        match settled {
            Settled::Done { .. } => {
                tracing::info!(match_id = %summary.match_id, players = summary.players.len(), "match summary delivered");
                self.update(|s| {
                    s.summaries_sent += 1;
                    s.last_success_ms = Some(now_ms());
                    s.last_error = None;
                });
                source.summary_done(key, None).map_err(SyncError::Source)
            }
            Settled::Refused { reason } => {
                tracing::error!(match_id = %summary.match_id, %reason, "match summary refused by the cloud; kept in the buffer");
                self.update(|s| {
                    s.batches_quarantined += 1;
                    s.last_error = Some(reason.clone());
                });
                source
                    .summary_done(key, Some(&reason))
                    .map_err(SyncError::Source)
            }
        }
    }

    /// Sends every unacknowledged row, then returns how many batches went out.
    pub async fn sync_all(
        &mut self,
        source: &mut (dyn RowSource + Send),
    ) -> Result<u64, SyncError> {
        let mut sent = 0;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Err(SyncError::Stopped);
            }
            let backlog = source.backlog().map_err(SyncError::Source)?;
            self.update(|s| s.backlog_rows = backlog);
            let Some(batch) = source
                .next_batch(self.config.batch_rows.max(1))
                .map_err(SyncError::Source)?
            else {
                // Rows first (coaches can open a match before its summary arrives), then the
                // summaries of finished matches.
                while let Some((key, summary)) = source.next_summary().map_err(SyncError::Source)? {
                    if self.stop.load(Ordering::Relaxed) {
                        return Err(SyncError::Stopped);
                    }
                    self.deliver_summary(source, key, &summary).await?;
                }
                return Ok(sent);
            };
            self.deliver(source, &batch).await?;
            sent += 1;
        }
    }

    /// Runs until the stop flag is set: drains the buffer, then polls for new rows.
    /// `wake` cuts a poll wait short (the operator's "sync now").
    pub async fn run(
        &mut self,
        source: &mut (dyn RowSource + Send),
        wake: Arc<tokio::sync::Notify>,
    ) -> Result<(), SyncError> {
        loop {
            match self.sync_all(source).await {
                Ok(_) => {}
                Err(SyncError::Stopped) => return Ok(()),
                Err(SyncError::Source(e)) => {
                    tracing::warn!(error = %e, "reading the buffer for sync failed; trying again");
                    self.update(|s| s.last_error = Some(e));
                }
                Err(e) => return Err(e),
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.poll_interval) => {}
                () = wake.notified() => {}
            }
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
        }
    }
}

async fn auth_answer<T: serde::de::DeserializeOwned>(r: reqwest::Response) -> Result<T, Outcome> {
    let status = r.status().as_u16();
    let body = r.text().await.map_err(|e| Outcome::Retry {
        reason: format!("authentication: {e}"),
        after: None,
    })?;
    if (200..300).contains(&status) {
        return serde_json::from_str(&body).map_err(|e| Outcome::Retry {
            reason: format!("authentication answer: {e}"),
            after: None,
        });
    }
    let brief: String = body.chars().take(300).collect();
    // An unknown or refused device is not fixed by retrying fast, but it may be enrolled later:
    // retry with backoff rather than quarantining data over an authentication problem.
    Err(Outcome::Retry {
        reason: format!("authentication: HTTP {status}: {brief}"),
        after: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        let ok = r#"{"batch_id":"ab","rows":3,"duplicate":true}"#;
        assert_eq!(classify(200, None, ok), Outcome::Done { duplicate: true });
        assert!(matches!(
            classify(200, None, "<html>"),
            Outcome::Retry { .. }
        ));
        assert_eq!(classify(401, None, ""), Outcome::Reauthenticate);
        assert_eq!(
            classify(429, Some(Duration::from_secs(7)), ""),
            Outcome::Retry {
                reason: "HTTP 429: ".into(),
                after: Some(Duration::from_secs(7))
            }
        );
        assert!(matches!(classify(503, None, ""), Outcome::Retry { .. }));
        assert!(matches!(classify(400, None, "bad"), Outcome::GiveUp { .. }));
        assert!(matches!(classify(413, None, ""), Outcome::GiveUp { .. }));
    }

    #[test]
    fn jitter_stays_within_the_backoff() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_secs(2)) <= Duration::from_secs(2));
        }
    }
}
