//! MQTT: status, heartbeat and remote commands (rumqttc).
//!
//! Topics under `<prefix>/<serial>/`:
//! - `status` (retained): `{"state":"online"}` on every connection, `{"state":"offline"}` as the
//!   last will (and on a clean shutdown);
//! - `heartbeat`: every `heartbeat_s`, the daemon's state (see [`heartbeat`]);
//! - `command`: `{"id":"…","command":"start_match"|"stop_match"|"sync_now"|"snapshot"}`;
//! - `ack`: `{"id":"…","command":"…","ok":true|false,"message":"…"}` for each command.
//!
//! The broker may go away at any time: the event loop keeps polling, rumqttc reconnects, and the
//! subscription and the online status are renewed on every connection. Heartbeats made while
//! the broker is away are dropped, not queued (they would arrive stale).

use super::Shared;
use crate::config::MqttConfig;
use rumqttc::{
    AsyncClient, Event, LastWill, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn topic(shared: &Shared, leaf: &str) -> String {
    format!(
        "{}/{}/{leaf}",
        shared.config.mqtt.topic_prefix, shared.serial
    )
}

/// Client options from the config; errors name the field.
fn options(shared: &Shared, cfg: &MqttConfig, client_id: String) -> Result<MqttOptions, String> {
    let mut o = MqttOptions::new(client_id, cfg.host.clone(), cfg.port);
    o.set_keep_alive(Duration::from_secs(10));
    o.set_last_will(LastWill::new(
        topic(shared, "status"),
        json!({"state": "offline", "serial": shared.serial}).to_string(),
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(user) = &cfg.username {
        let password = match &cfg.password_file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| format!("mqtt.password_file {}: {e}", f.display()))?
                .trim()
                .to_string(),
            None => String::new(),
        };
        o.set_credentials(user.clone(), password);
    }
    if let Some(ca) = &cfg.ca_file {
        let ca = std::fs::read(ca).map_err(|e| format!("mqtt.ca_file {}: {e}", ca.display()))?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth: None,
        }));
    }
    Ok(o)
}

/// Temperatures the board exposes (`/sys/class/thermal`), °C by zone type.
fn temperatures() -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    let Ok(zones) = std::fs::read_dir("/sys/class/thermal") else {
        return out;
    };
    for zone in zones.flatten() {
        let p = zone.path();
        let (Ok(kind), Ok(milli)) = (
            std::fs::read_to_string(p.join("type")),
            std::fs::read_to_string(p.join("temp")),
        ) else {
            continue;
        };
        if let Ok(m) = milli.trim().parse::<f64>() {
            out.insert(kind.trim().to_string(), json!(m / 1000.0));
        }
    }
    out
}

/// The heartbeat document.
pub fn heartbeat(shared: &Shared) -> Value {
    let status = shared.status();
    let counters = shared.counters();
    let fps: serde_json::Map<String, Value> = counters
        .figures()
        .iter()
        .map(|f| (f.name.to_string(), json!((f.fps() * 10.0).round() / 10.0)))
        .collect();
    json!({
        "serial": shared.serial,
        "uptime_s": shared.started.elapsed().as_secs(),
        "match": status.running_match,
        "fps": fps,
        "frames": counters.stages[5].frames.load(Ordering::Relaxed),
        "temperatures_c": temperatures(),
        "disk_free_mb": status.disk_free_mb,
        "disk_alarm": status.disk_alarm,
        "unsynced_rows": status.unsynced_rows,
        "last_sync": status.last_sync,
        "sync_quarantined": status.sync_quarantined,
        "sync_error": status.sync_error,
        "last_match": status.last_match,
    })
}

/// Carries out one command; `(ok, message)`.
async fn execute(shared: &Arc<Shared>, command: &str) -> (bool, String) {
    let s = shared.clone();
    let outcome = match command {
        "start_match" => tokio::task::spawn_blocking(move || s.start_match("mqtt")).await,
        "stop_match" => tokio::task::spawn_blocking(move || s.stop_match("mqtt")).await,
        "sync_now" => return shared.sync_now().map_or_else(|e| (false, e), |m| (true, m)),
        "snapshot" => tokio::task::spawn_blocking(move || super::web::snapshot(&s)).await,
        other => return (false, format!("unknown command {other:?}")),
    };
    match outcome {
        Ok(Ok(m)) => (true, m),
        Ok(Err(e)) => (false, e),
        Err(e) => (false, format!("the command failed: {e}")),
    }
}

/// Runs the MQTT client until the process ends; returns at once when no broker is configured.
pub async fn run(shared: Arc<Shared>) {
    let cfg = shared.config.mqtt.clone();
    if cfg.host.trim().is_empty() {
        tracing::info!("no MQTT broker configured");
        return;
    }
    let opts = match options(&shared, &cfg, format!("polyvision-edge-{}", shared.serial)) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "MQTT not started");
            return;
        }
    };
    let (client, mut events) = AsyncClient::new(opts, 64);
    let online = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let beat = {
        let (client, shared, online) = (client.clone(), shared.clone(), online.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(cfg.heartbeat_s));
            loop {
                tick.tick().await;
                // Not queued while the broker is away: a stale heartbeat says nothing.
                if !online.load(Ordering::Relaxed) {
                    continue;
                }
                let doc = heartbeat(&shared).to_string();
                let _ =
                    client.try_publish(topic(&shared, "heartbeat"), QoS::AtMostOnce, false, doc);
            }
        })
    };
    let mut connected = false;
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                tracing::info!(host = %cfg.host, port = cfg.port, "MQTT connected");
                connected = true;
                online.store(true, Ordering::Relaxed);
                // Subscribed before "online" goes out: whoever sees it can send commands.
                let _ = client
                    .subscribe(topic(&shared, "command"), QoS::AtLeastOnce)
                    .await;
                let status = json!({"state": "online", "serial": shared.serial}).to_string();
                let _ = client
                    .publish(topic(&shared, "status"), QoS::AtLeastOnce, true, status)
                    .await;
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == topic(&shared, "command") => {
                let (client, shared) = (client.clone(), shared.clone());
                tokio::spawn(async move {
                    let request: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    let id = request.get("id").cloned().unwrap_or(Value::Null);
                    let command = request
                        .get("command")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let (ok, message) = if command.is_empty() {
                        (false, "expected {\"id\":…,\"command\":…}".to_string())
                    } else {
                        execute(&shared, &command).await
                    };
                    tracing::info!(%command, ok, %message, "MQTT command");
                    let ack = json!({"id": id, "command": command, "ok": ok, "message": message});
                    let _ = client
                        .publish(
                            topic(&shared, "ack"),
                            QoS::AtLeastOnce,
                            false,
                            ack.to_string(),
                        )
                        .await;
                });
            }
            Ok(_) => {}
            Err(e) => {
                online.store(false, Ordering::Relaxed);
                if connected {
                    tracing::warn!(error = %e, "MQTT connection lost; reconnecting");
                    connected = false;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if beat.is_finished() {
            return;
        }
    }
}

/// Publishes the offline status before a clean shutdown (the last will covers the rest).
pub async fn goodbye(shared: &Shared) {
    let cfg = &shared.config.mqtt;
    if cfg.host.trim().is_empty() {
        return;
    }
    // A second, short-lived session: the main one may be mid-reconnect.
    let Ok(opts) = options(
        shared,
        cfg,
        format!("polyvision-edge-{}-bye", shared.serial),
    ) else {
        return;
    };
    let (client, mut events) = AsyncClient::new(opts, 4);
    let offline = json!({"state": "offline", "serial": shared.serial}).to_string();
    let _ = client
        .publish(topic(shared, "status"), QoS::AtLeastOnce, true, offline)
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => break,
            Ok(Ok(_)) => {}
            _ => break,
        }
    }
    let _ = client.disconnect().await;
}
