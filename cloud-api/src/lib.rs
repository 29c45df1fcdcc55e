//! The cloud service: device enrolment and authentication, ingest of the rigs' batches into
//! ClickHouse, and what coaches read (user tokens, matches, heatmaps).
//!
//! # Exactly once
//!
//! A rig sends each batch until it gets an acknowledgement, so the service sees batches twice
//! (a lost acknowledgement, a retry after a timeout, two instances racing) and must still store
//! every row once. ClickHouse does not deduplicate plain MergeTree inserts, so two mechanisms
//! work together:
//!
//! 1. **A ledger of stored batches** (`ingested_batches`, keyed by organisation and the batch's
//!    content-derived id): a batch found there is acknowledged again without writing. The ledger
//!    entry is written *after* the rows, so a crash in between leaves no entry and the retry
//!    writes the rows again.
//! 2. **Rows whose sorting key is their identity**: `detections` is a `ReplacingMergeTree`
//!    ordered by (organisation, match, frame, track), and a row's partition comes from its own
//!    capture time, so copies of a row — from that crash window, or from two requests racing
//!    past the ledger check — always meet in one partition and collapse. Reads that must be
//!    exact use `FINAL` (or aggregate per key); background merges collapse them on disk.
//!
//! The acknowledgement is sent only after both writes returned, so a rig never moves its cursor
//! past rows that are not stored. On a replicated production cluster, insert deduplication
//! (`ReplicatedMergeTree` block hashes) adds a third layer but is not relied on.
//!
//! # Parts
//!
//! [`users`] (coaches' and admins' RS256 tokens), [`analytics`] (matches, the rigs' match
//! summaries, heatmaps, trajectories), [`export`] (a match as CSV or Parquet), [`schema`]
//! (migrations), [`queries`] (the SQL the service runs, in `cloud-api/queries/`), [`auth`]
//! (nonces, device tokens), [`warehouse`] (ClickHouse reads and writes), [`service`] (routes,
//! limits, metrics, the coaches' page from `cloud-api/web/`), [`connections`] (the connection
//! cap and timeouts), [`openapi`]; [`testing`] starts a
//! ClickHouse server of its own for tests and benchmarks.
#![forbid(unsafe_code)]

pub mod analytics;
pub mod auth;
pub mod connections;
pub mod export;
pub mod openapi;
pub mod queries;
pub mod schema;
pub mod service;
pub mod testing;
pub mod users;
pub mod warehouse;

use std::net::SocketAddr;
use std::sync::Arc;

/// Everything the service needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// ClickHouse HTTP URL.
    pub clickhouse_url: String,
    /// ClickHouse user, if not the default.
    pub clickhouse_user: Option<String>,
    /// ClickHouse password.
    pub clickhouse_password: Option<String>,
    /// Database name.
    pub database: String,
    /// The service's Ed25519 key (device tokens, nonces); created on first start.
    pub signing_key: std::path::PathBuf,
    /// Device token lifetime.
    pub token_lifetime: std::time::Duration,
    /// JWKS file with the public keys of user tokens (coaches, admins); none: no user API.
    pub jwks: Option<std::path::PathBuf>,
    /// Handler settings.
    pub service: service::ServiceConfig,
    /// Connection cap and timeouts.
    pub connections: connections::ConnectionLimits,
}

/// A ClickHouse client for `url` that works with 18.16 as well as current servers.
pub fn clickhouse_client(config: &ServerConfig) -> clickhouse::Client {
    let mut c = clickhouse::Client::default()
        .with_url(&config.clickhouse_url)
        // 18.16 knows neither the settings nor the format the validation uses.
        .with_validation(false);
    if let Some(u) = &config.clickhouse_user {
        c = c.with_user(u);
    }
    if let Some(p) = &config.clickhouse_password {
        c = c.with_password(p);
    }
    c
}

/// Migrates the schema, then serves until `shutdown` resolves; in-flight requests finish.
pub async fn serve(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (key, created) = polyvision_cloud_sync::identity::load_or_create(&config.signing_key)?;
    if created {
        tracing::info!(path = %config.signing_key.display(), "service signing key created");
    }
    let client = clickhouse_client(&config);
    let report = schema::migrate(&client, &config.database).await?;
    tracing::info!(server = %report.server, applied = ?report.applied, waiting = ?report.waiting, "schema ready");
    let auth = auth::DeviceAuth::new(&key, config.token_lifetime).map_err(anyhow::Error::msg)?;
    let warehouse = warehouse::Warehouse::new(client.with_database(&config.database));
    let users = config
        .jwks
        .as_deref()
        .map(users::UserKeys::load)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if let Some(u) = &users {
        tracing::info!(keys = ?u.key_ids(), "user tokens accepted");
    }
    let state = Arc::new(service::AppState::new(
        warehouse,
        auth,
        config.service.clone(),
        users,
    ));
    let app = service::router(state.clone());
    tracing::info!(listen = %listener.local_addr()?, "cloud-api serving");
    let st = state.clone();
    connections::serve(listener, app, config.connections.clone(), async move {
        shutdown.await;
        service::set_ready(&st, false);
        tracing::info!("shutting down: closing idle connections, finishing requests in flight");
    })
    .await?;
    Ok(())
}
