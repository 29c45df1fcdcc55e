//! `polyvision-edge`: the rig daemon's command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use polyvision_edge::calibration::ActiveCalibration;
use polyvision_edge::config::{DEFAULT_CONFIG, EdgeConfig};
use polyvision_edge::web::{AppState, router};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod cli;
use cli::track;

#[derive(Parser)]
#[command(name = "polyvision-edge", version, about = "The Polyvision rig daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: the technician's page, match control (page, MQTT, --start-match),
    /// the pipeline, the buffer, the disk alarm, systemd notify and watchdog, `/metrics`.
    Run {
        /// Configuration file (TOML); fields left out take the defaults (`print-config`).
        #[arg(long)]
        config: PathBuf,
        /// Start a match as soon as the daemon is up.
        #[arg(long)]
        start_match: bool,
        /// Exit (cleanly, as on SIGTERM) once a match has ended: camera files that end, or a
        /// stop from the page or MQTT. For recordings processed unattended.
        #[arg(long)]
        exit_after_match: bool,
    },
    /// Check a configuration file: every field, the camera sources, the model and its card,
    /// the calibration; prints what the daemon would run with.
    CheckConfig {
        /// Configuration file (TOML).
        config: PathBuf,
    },
    /// Load the detector as the daemon will: with TensorRT, build its engine into
    /// `[detect] engine_cache` now if the cache has none for this model, TensorRT and GPU (first
    /// boot runs this, so a match never waits minutes for it).
    PrepareDetector {
        /// Configuration file (TOML).
        config: PathBuf,
    },
    /// Print the rig's serial and Ed25519 public key for enrolment in the cloud (the key file
    /// of `[cloud] key_file` is created, mode 0600, if it does not exist yet).
    DeviceKey {
        /// Configuration file (TOML); fields left out take the defaults (`print-config`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The whole pipeline on a rendered sample match (rendered first if missing) with the CPU
    /// backends; prints frames, detections, tracks, distances and where to look next.
    Demo(cli::demo::DemoArgs),
    /// A two-camera recording of your own through the same pipeline, with your rig's
    /// calibration: the cameras' offset found (or given), stitched, detected with the model
    /// trained on real footage, tracked; writes the buffer, tracks, metrics and a preview.
    Process(cli::process::ProcessArgs),
    /// Serve the technician's calibration page (and follow the calibration file).
    Calibrate {
        /// Configuration file (TOML); fields left out take the defaults (`print-config`).
        #[arg(long)]
        config: PathBuf,
    },
    /// Track MOTChallenge detections offline; write MOTChallenge tracks and per-track metrics.
    Track(track::TrackArgs),
    /// Detect people and the ball in one panorama image (MOTChallenge rows with class).
    Detect(cli::detect::DetectArgs),
    /// Score the detector on panoramas with true boxes (`rig-sim dataset`): AP@0.5,
    /// AP@0.5:0.95, recall and precision per class.
    DetectEval(cli::detect::DetectEvalArgs),
    /// Time the detector on one panorama: milliseconds per tile and per panorama.
    BenchDetect(cli::detect::BenchDetectArgs),
    /// Time storing rows in the SQLite buffer; prints seconds and bytes per row.
    BenchStore {
        /// A new database file.
        #[arg(long)]
        db: PathBuf,
        /// Rows (one 90-minute match is about 4.5 million).
        #[arg(long, default_value_t = 4_500_000)]
        rows: u64,
    },
    /// Append rows in small transactions, printing each commit (for crash tests).
    #[command(hide = true)]
    StoreStress {
        /// Database file.
        #[arg(long)]
        db: PathBuf,
        /// Transactions to write.
        #[arg(long, default_value_t = u64::MAX)]
        batches: u64,
        /// Rows per transaction.
        #[arg(long, default_value_t = 25)]
        batch: u64,
    },
    /// Time the tracker on synthetic players (one core); prints frames per second.
    BenchTrack {
        /// People per frame.
        #[arg(long, default_value_t = 25)]
        objects: usize,
        /// Frames.
        #[arg(long, default_value_t = 100_000)]
        frames: u64,
    },
    /// Print the default configuration.
    PrintConfig,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        // Logs on stderr: stdout carries data (print-config, summaries).
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("polyvision-edge: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::PrintConfig => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
        Command::Track(args) => track::run(&args),
        Command::BenchTrack { objects, frames } => track::bench(objects, frames),
        Command::BenchStore { db, rows } => cli::store::bench(&db, rows),
        Command::StoreStress { db, batches, batch } => cli::store::stress(&db, batches, batch),
        Command::Demo(args) => cli::demo::run_demo(&args),
        Command::Process(args) => cli::process::run(&args),
        Command::Detect(args) => cli::detect::run(&args),
        Command::DetectEval(args) => cli::detect::run_eval(&args),
        Command::BenchDetect(args) => cli::detect::run_bench(&args),
        Command::Run {
            config,
            start_match,
            exit_after_match,
        } => {
            let config = EdgeConfig::load(&config)?;
            let pin = config.technician_pin()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(run_daemon(config, pin, start_match, exit_after_match))
        }
        Command::CheckConfig { config } => check_config(&config),
        Command::PrepareDetector { config } => {
            let config = EdgeConfig::load(&config)?;
            let (_, card) =
                polyvision_edge::detect::card::ModelCard::for_model(&config.detect.model)
                    .map_err(|e| anyhow::anyhow!("detect.model: {e}"))?;
            let started = std::time::Instant::now();
            let backend = polyvision_edge::detect::backend::load(&config.detect, &card)
                .map_err(|e| anyhow::anyhow!("detector: {e}"))?;
            println!(
                "detector ready: {} (batch {}) in {:.1} s",
                backend.name(),
                backend.batch(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::DeviceKey { config } => {
            let config = match config {
                Some(p) => EdgeConfig::load(&p)?,
                None => EdgeConfig::from_toml("", Path::new("(defaults)"), Path::new("."))?,
            };
            let path = &config.cloud.key_file;
            let (key, created) = polyvision_cloud_sync::identity::load_or_create(path)?;
            println!("serial: {}", config.serial());
            println!(
                "public_key: {}",
                polyvision_cloud_sync::identity::public_key_text(&key.verifying_key())
            );
            println!(
                "key_file: {} ({})",
                path.display(),
                if created { "created now" } else { "existing" }
            );
            Ok(())
        }
        Command::Calibrate { config } => {
            let config = EdgeConfig::load(&config)?;
            let pin = config.technician_pin()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(calibrate(config, pin))
        }
    }
}

/// Waits for SIGTERM (systemd's stop) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no SIGTERM handler; Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}

async fn run_daemon(
    config: EdgeConfig,
    pin: String,
    start_match: bool,
    exit_after_match: bool,
) -> Result<()> {
    use polyvision_edge::daemon;
    // The port first: a daemon that cannot serve its page must stop before it creates the
    // buffer or opens a camera.
    let listen = config.web.listen.clone();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let active = Arc::new(ActiveCalibration::open(
        &config.calibration.file,
        config.calibration.band_px,
    ));
    let _watcher = active.watch(Duration::from_secs(1));
    let (shared, runner) = {
        let (config, active) = (config.clone(), active.clone());
        tokio::task::spawn_blocking(move || daemon::start(config, active))
            .await
            .context("starting the match runner")??
    };
    daemon::disk::watch(shared.clone(), Duration::from_secs(2));
    let _schedule = daemon::schedule::run(shared.clone(), shared.config.schedule_windows());
    // The first match may build a TensorRT engine before its first frame: minutes.
    let _watchdog = daemon::watchdog::watch(shared.clone(), Duration::from_secs(900));
    let state = {
        let active = active.clone();
        tokio::task::spawn_blocking(move || AppState::new(config, active, pin))
            .await
            .context("grabbing the still frames")?
    };
    state.attach_daemon(shared.clone());
    let mqtt = tokio::spawn(daemon::mqtt::run(shared.clone()));
    let uploader = daemon::sync::start(shared.clone()).context("starting the uploader")?;
    tracing::info!(
        serial = %shared.serial,
        address = %listener.local_addr().map_or(listen.clone(), |a| a.to_string()),
        buffer = %shared.config.storage.database.display(),
        "daemon ready"
    );
    daemon::watchdog::ready();
    if start_match {
        let s = shared.clone();
        let failed = match tokio::task::spawn_blocking(move || s.start_match("command line")).await
        {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e),
            Err(e) => Some(e.to_string()),
        };
        if let Some(e) = failed {
            tracing::warn!(error = %e, "--start-match: no match started");
            if exit_after_match {
                shared.shutdown();
                anyhow::bail!("--start-match --exit-after-match: no match started: {e}");
            }
        }
    }
    let ended = shared.clone();
    let stop_when = async move {
        if exit_after_match {
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = ended.match_ended.notified() => {
                    tracing::info!("the match ended: exiting (--exit-after-match)");
                }
            }
        } else {
            shutdown_signal().await;
        }
    };
    let served = axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(stop_when)
    .await;
    daemon::watchdog::stopping();
    shared.shutdown();
    // The runner flushes the last rows and closes the match.
    let joined = tokio::task::spawn_blocking(move || runner.join());
    if tokio::time::timeout(Duration::from_secs(60), joined)
        .await
        .is_err()
    {
        tracing::error!(
            "the match runner did not finish within 60 s; its last second of rows may be lost"
        );
    }
    daemon::sync::stop(&shared);
    if let Some(u) = uploader
        && tokio::time::timeout(Duration::from_secs(10), u)
            .await
            .is_err()
    {
        tracing::warn!(
            "the uploader did not stop within 10 s; its batch in flight is sent again at the next start"
        );
    }
    daemon::mqtt::goodbye(&shared).await;
    mqtt.abort();
    served.context("serving the web page")?;
    if exit_after_match
        && shared
            .last_match_failed
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        anyhow::bail!(
            "the match did not end cleanly: {}",
            shared.status().last_match.unwrap_or_default()
        );
    }
    Ok(())
}

/// `check-config`: everything the daemon needs at start, checked without starting it.
fn check_config(path: &std::path::Path) -> Result<()> {
    let config = EdgeConfig::load(path)?;
    config.technician_pin()?;
    let (card_path, card) =
        polyvision_edge::detect::card::ModelCard::for_model(&config.detect.model)
            .map_err(|e| anyhow::anyhow!("detect.model: {e}"))?;
    if !config.detect.model.is_file() {
        anyhow::bail!(
            "detect.model: {} does not exist",
            config.detect.model.display()
        );
    }
    println!("{}: ok", path.display());
    println!("  serial          {}", config.serial());
    for (name, camera) in config.capture.cameras() {
        let spec =
            polyvision_edge::capture::video::SourceSpec::parse(&camera.source.to_string_lossy())
                .map_err(anyhow::Error::msg)?;
        println!("  camera {name:<8} {}", spec.describe());
    }
    println!(
        "  model           {} ({}, card {})",
        config.detect.model.display(),
        card.name,
        card_path.display()
    );
    let cal = &config.calibration.file;
    match polyvision_calibration::CalibrationFile::load(cal) {
        Ok(c) if c.panorama.is_some() => {
            println!("  calibration     {} (with panorama)", cal.display())
        }
        Ok(_) => println!(
            "  calibration     {} (no panorama yet: calibrate both cameras)",
            cal.display()
        ),
        Err(e) => println!("  calibration     not usable yet: {e}"),
    }
    println!(
        "  camera sync     {}",
        match config.pipeline.camera_offset_ms {
            Some(ms) =>
                format!("left {ms:+} ms ahead of right, as configured (checked, not changed)"),
            None => "offset found from the cameras' overlap while a match runs".to_string(),
        }
    );
    println!(
        "  pitch mask      detections more than {} m off the pitch left out",
        config.tracking.pitch_margin_m
    );
    println!("  buffer          {}", config.storage.database.display());
    println!(
        "  mqtt            {}",
        if config.mqtt.host.is_empty() {
            "off".to_string()
        } else {
            format!(
                "{}:{} ({}/{}/…)",
                config.mqtt.host,
                config.mqtt.port,
                config.mqtt.topic_prefix,
                config.serial()
            )
        }
    );
    println!("  web             {}", config.web.listen);
    Ok(())
}

async fn calibrate(config: EdgeConfig, pin: String) -> Result<()> {
    let active = Arc::new(ActiveCalibration::open(
        &config.calibration.file,
        config.calibration.band_px,
    ));
    let _watcher = active.watch(Duration::from_secs(1));
    let listen = config.web.listen.clone();
    let state = {
        let active = active.clone();
        tokio::task::spawn_blocking(move || AppState::new(config, active, pin))
            .await
            .context("grabbing the still frames")?
    };
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(
        address = %listener.local_addr().map_or(listen.clone(), |a| a.to_string()),
        calibration = %active.path().display(),
        "technician page ready"
    );
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await
    .context("serving the technician page")
}
