//! `polyvision-cloud-api`: the cloud service binary.

use clap::Parser;
use std::time::Duration;

/// The Polyvision cloud service: enrolment, device authentication, batch ingest, the coaches'
/// API. Without a subcommand it serves.
#[derive(Parser, Debug)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Admin>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Administration of a self-hosted install.
#[derive(clap::Subcommand, Debug)]
enum Admin {
    /// Make an RSA 2048 key pair for user tokens: DIR/KID.pem (private, 0600) and the public
    /// key added to DIR/jwks.json (give that file to `--jwks`).
    Keys {
        /// Folder of the keys.
        #[arg(long)]
        dir: std::path::PathBuf,
        /// Key id (rotate by adding a new id, then removing the old one from jwks.json).
        #[arg(long)]
        kid: String,
    },
    /// Issue a user token (RS256) and print it.
    Token {
        /// The private key (DIR/KID.pem).
        #[arg(long)]
        key: std::path::PathBuf,
        /// Its key id.
        #[arg(long)]
        kid: String,
        /// The user (e-mail or name).
        #[arg(long)]
        sub: String,
        /// Organisation UUID.
        #[arg(long)]
        org: String,
        /// coach or admin.
        #[arg(long, default_value = "coach")]
        role: String,
        /// Days the token stays valid.
        #[arg(long, default_value_t = 7.0)]
        days: f64,
    },
}

/// Serving.
#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "POLYVISION_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// ClickHouse HTTP URL.
    #[arg(
        long,
        env = "POLYVISION_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:8123"
    )]
    clickhouse_url: String,
    /// ClickHouse user.
    #[arg(long, env = "POLYVISION_CLICKHOUSE_USER")]
    clickhouse_user: Option<String>,
    /// ClickHouse password.
    #[arg(long, env = "POLYVISION_CLICKHOUSE_PASSWORD", hide_env_values = true)]
    clickhouse_password: Option<String>,
    /// Database (created if missing).
    #[arg(long, env = "POLYVISION_DATABASE", default_value = "polyvision")]
    database: String,
    /// The service's Ed25519 key (PKCS#8 PEM, mode 0600); created on first start. Every
    /// instance behind one load balancer uses the same key.
    #[arg(long, env = "POLYVISION_SIGNING_KEY", default_value = "cloud-api.key")]
    signing_key: std::path::PathBuf,
    /// File holding the admin token of the factory API (enrolment disabled without one).
    #[arg(long, env = "POLYVISION_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<std::path::PathBuf>,
    /// Device token lifetime, days.
    #[arg(long, default_value_t = 30)]
    token_days: u64,
    /// Batches per second each device may send (sustained; the burst is twice that).
    #[arg(long, default_value_t = 20.0)]
    device_rate: f64,
    /// Connections open at once; more are closed when accepted. Keep it under the process's
    /// file limit (`ulimit -n`) less what ClickHouse connections and files need.
    #[arg(long, default_value_t = 768)]
    max_connections: usize,
    /// Connections open at once from one client address. Behind a load balancer, set it to
    /// --max-connections (every connection comes from the balancer).
    #[arg(long, default_value_t = 64)]
    max_connections_per_address: usize,
    /// Seconds a request head may take to arrive (also how long an idle connection stays open).
    #[arg(long, default_value_t = 15)]
    header_timeout_s: u64,
    /// MiB of upload bodies held in memory at once (at least 16, one full-size body); past it
    /// uploads get 429 before their body is read.
    #[arg(long, default_value_t = 256)]
    upload_buffer_mib: usize,
    /// Seconds a request may take (an upload: once its body arrived) before it is answered 503.
    #[arg(long, default_value_t = 30)]
    request_timeout_s: u64,
    /// Challenge and token requests per second from one client address (the burst is six
    /// times that).
    #[arg(long, default_value_t = 5.0)]
    auth_rate: f64,
    /// JWKS file with the public keys of user tokens (`keys` makes one); without it the
    /// coaches' API answers 401.
    #[arg(long, env = "POLYVISION_JWKS")]
    jwks: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Args { command, serve } = Args::parse();
    match command {
        Some(Admin::Keys { dir, kid }) => {
            let jwks = polyvision_cloud_api::users::new_key(&dir, &kid)?;
            println!("private key: {}", dir.join(format!("{kid}.pem")).display());
            println!("public keys: {}", jwks.display());
            return Ok(());
        }
        Some(Admin::Token {
            key,
            kid,
            sub,
            org,
            role,
            days,
        }) => {
            let role = match role.as_str() {
                "coach" => polyvision_cloud_api::users::Role::Coach,
                "admin" => polyvision_cloud_api::users::Role::Admin,
                other => anyhow::bail!("--role {other:?}: coach or admin"),
            };
            let org = uuid::Uuid::parse_str(&org)
                .map_err(|e| anyhow::anyhow!("--org {org:?} is not a UUID: {e}"))?;
            anyhow::ensure!(days > 0.0 && days <= 366.0, "--days must be within 0–366");
            let pem =
                std::fs::read(&key).map_err(|e| anyhow::anyhow!("key {}: {e}", key.display()))?;
            let token = polyvision_cloud_api::users::issue(
                &pem,
                &kid,
                &sub,
                org,
                role,
                (days * 86_400.0) as u64,
            )?;
            println!("{token}");
            return Ok(());
        }
        None => {}
    }
    let args = serve;
    let admin_token = match &args.admin_token_file {
        Some(p) => {
            let t = std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("admin token file {}: {e}", p.display()))?;
            let t = t.trim().to_string();
            anyhow::ensure!(
                t.len() >= 16,
                "admin token file {}: the token must be at least 16 characters",
                p.display()
            );
            Some(t)
        }
        None => None,
    };
    anyhow::ensure!(
        args.device_rate > 0.0 && args.device_rate.is_finite(),
        "--device-rate must be a positive number"
    );
    anyhow::ensure!(
        args.auth_rate > 0.0 && args.auth_rate.is_finite(),
        "--auth-rate must be a positive number"
    );
    anyhow::ensure!(
        (1..=3600).contains(&args.request_timeout_s),
        "--request-timeout-s must be within 1–3600"
    );
    anyhow::ensure!(
        args.max_connections > 0 && args.max_connections_per_address > 0,
        "--max-connections and --max-connections-per-address must be at least 1"
    );
    anyhow::ensure!(
        (1..=3600).contains(&args.header_timeout_s),
        "--header-timeout-s must be within 1–3600"
    );
    let config = polyvision_cloud_api::ServerConfig {
        listen: args.listen,
        clickhouse_url: args.clickhouse_url,
        clickhouse_user: args.clickhouse_user,
        clickhouse_password: args.clickhouse_password,
        database: args.database,
        signing_key: args.signing_key,
        token_lifetime: Duration::from_secs(args.token_days * 86_400),
        jwks: args.jwks,
        service: polyvision_cloud_api::service::ServiceConfig {
            admin_token,
            device_rate_per_s: args.device_rate,
            device_burst: args.device_rate * 2.0,
            auth_rate_per_s: args.auth_rate,
            auth_burst: args.auth_rate * 6.0,
            request_timeout: Duration::from_secs(args.request_timeout_s),
            upload_buffer_bytes: args.upload_buffer_mib.saturating_mul(1 << 20),
            ..Default::default()
        },
        connections: polyvision_cloud_api::connections::ConnectionLimits {
            max_connections: args.max_connections,
            max_per_address: args.max_connections_per_address,
            header_timeout: Duration::from_secs(args.header_timeout_s),
            ..Default::default()
        },
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("listening on {}: {e}", config.listen))?;
        polyvision_cloud_api::serve(config, listener, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
