//! Ingest against a real ClickHouse server and the service as a real process: a match arrives
//! once even when sent twice, and every attack on the device path is refused with nothing
//! written.

mod common;

use common::{ClickHouse, MemoryBuffer, Service, SharedBuffer, enrol};
use ed25519_dalek::{Signer as _, SigningKey};
use polyvision_cloud_sync::identity::{challenge_message, public_key_text, signature_text};
use polyvision_cloud_sync::protocol::{BATCH_CONTENT_TYPE, ChallengeResponse, TokenResponse};
use polyvision_cloud_sync::uploader::{RowSource as _, Uploader, UploaderConfig};
use polyvision_cloud_sync::wire::{BatchMeta, encode};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ORG_A: &str = "0190a1b2-0000-7000-8000-00000000000a";
const ORG_B: &str = "0190a1b2-0000-7000-8000-00000000000b";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn stored(ch: &ClickHouse, db: &str) -> (u64, u64) {
    ch.stored(db).expect("stored rows")
}

fn uploader(url: &str, serial: &str, key: &SigningKey, batch_rows: usize) -> Uploader {
    let mut c = UploaderConfig::new(url, serial);
    c.batch_rows = batch_rows;
    c.min_backoff = Duration::from_millis(20);
    c.max_backoff = Duration::from_millis(500);
    c.request_timeout = Duration::from_secs(10);
    Uploader::new(c, key.clone()).expect("uploader")
}

#[test]
fn a_match_arrives_once_even_when_sent_twice() {
    let ch = ClickHouse::start().expect("ClickHouse");
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = Service::start(&ch, dir.path(), "once", &[]);
    let rt = runtime();
    let key = SigningKey::from_bytes(&[11; 32]);
    let status = rt.block_on(enrol(
        &svc.url(),
        "PV-ONCE-1",
        &public_key_text(&key.verifying_key()),
        ORG_A,
        false,
    ));
    assert_eq!(status, 201);

    // Two matches, 400 frames × 23 objects.
    let buffer = SharedBuffer(Arc::new(Mutex::new(MemoryBuffer::simulated(2, 400, 23, 7))));
    let expected = buffer.0.lock().expect("lock").checksum();
    let mut up = uploader(&svc.url(), "PV-ONCE-1", &key, 1000);
    let mut source = buffer.clone();
    let sent = rt.block_on(up.sync_all(&mut source)).expect("sync");
    assert!(sent >= 19, "{sent} batches");
    assert_eq!(stored(&ch, "once"), expected);
    let status = up.status().lock().expect("lock").clone();
    assert_eq!(status.rows_sent, expected.0);
    assert_eq!(status.batches_duplicate, 0);
    assert!(status.last_success_ms.is_some());
    assert_eq!(source.backlog().expect("backlog"), 0);
    println!(
        "{} rows in {sent} batches, {} bytes on the wire ({:.2} bytes/row)",
        status.rows_sent,
        status.bytes_sent,
        status.bytes_sent as f64 / status.rows_sent as f64
    );

    // The acknowledgements were "lost": the rig sends everything again.
    buffer.0.lock().expect("lock").acknowledged = 0;
    let mut again = uploader(&svc.url(), "PV-ONCE-1", &key, 1000);
    rt.block_on(again.sync_all(&mut source))
        .expect("sync again");
    let status = again.status().lock().expect("lock").clone();
    assert_eq!(status.batches_duplicate, status.batches_sent);
    assert_eq!(stored(&ch, "once"), expected, "nothing stored twice");
    let matches = ch
        .query("SELECT count() FROM once.matches FINAL")
        .expect("query");
    assert_eq!(matches, "2");

    // A different cut of the same rows has other batch ids: the rows still collapse.
    buffer.0.lock().expect("lock").acknowledged = 0;
    let mut recut = uploader(&svc.url(), "PV-ONCE-1", &key, 777);
    rt.block_on(recut.sync_all(&mut source))
        .expect("sync recut");
    assert_eq!(stored(&ch, "once"), expected, "rows collapse by identity");

    // The bandwidth cap paces the batches: ~51 kB at 25 kB/s takes about 2 s.
    buffer.0.lock().expect("lock").acknowledged = 0;
    let mut config = UploaderConfig::new(&svc.url(), "PV-ONCE-1");
    config.batch_rows = 1000;
    config.max_bytes_per_s = Some(25_000);
    let mut capped = Uploader::new(config, key.clone()).expect("uploader");
    let t = std::time::Instant::now();
    rt.block_on(capped.sync_all(&mut source)).expect("capped");
    let secs = t.elapsed().as_secs_f64();
    let bytes = capped.status().lock().expect("lock").bytes_sent;
    println!(
        "capped at 25 kB/s: {bytes} bytes in {secs:.2} s ({:.1} kB/s)",
        bytes as f64 / secs / 1000.0
    );
    assert!(bytes as f64 / secs <= 27_000.0, "{bytes} bytes in {secs} s");

    // Metrics, health, OpenAPI.
    let body = rt.block_on(async {
        let c = reqwest::Client::new();
        let m = c
            .get(format!("{}/metrics", svc.url()))
            .send()
            .await
            .expect("metrics");
        let m = m.text().await.expect("text");
        let o = c
            .get(format!("{}/v1/openapi.json", svc.url()))
            .send()
            .await
            .expect("openapi")
            .json::<serde_json::Value>()
            .await
            .expect("json");
        assert!(o["paths"]["/v1/ingest/batches"]["post"].is_object());
        m
    });
    assert!(
        body.contains("polyvision_ingest_batches_duplicate_total"),
        "{body}"
    );

    // SIGTERM: the service finishes and exits cleanly.
    let mut svc = svc;
    let status = svc.terminate().expect("exited within 20 s");
    assert!(status.success(), "{status}");
}

struct Attack {
    name: &'static str,
    status: u16,
}

#[test]
fn attacks_on_the_device_path_are_refused_and_write_nothing() {
    let ch = ClickHouse::start().expect("ClickHouse");
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = Service::start(&ch, dir.path(), "attacks", &[]);
    let rt = runtime();
    let base = svc.url();
    let key_a = SigningKey::from_bytes(&[21; 32]);
    let key_b = SigningKey::from_bytes(&[22; 32]);
    let stranger = SigningKey::from_bytes(&[23; 32]);
    rt.block_on(async {
        assert_eq!(
            enrol(
                &base,
                "PV-A",
                &public_key_text(&key_a.verifying_key()),
                ORG_A,
                false
            )
            .await,
            201
        );
        assert_eq!(
            enrol(
                &base,
                "PV-B",
                &public_key_text(&key_b.verifying_key()),
                ORG_B,
                false
            )
            .await,
            201
        );
        // Re-enrolling with another key needs "replace".
        assert_eq!(
            enrol(
                &base,
                "PV-A",
                &public_key_text(&stranger.verifying_key()),
                ORG_A,
                false
            )
            .await,
            409
        );
    });
    // A connection per request: the service closes one after refusing an oversized body
    // unread (413), and a pooled client would send the next request into it.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let token_for = |serial: &'static str, key: SigningKey| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let c: ChallengeResponse = http
                .post(format!("{base}/v1/devices/challenge"))
                .json(&serde_json::json!({"serial": serial}))
                .send()
                .await
                .expect("challenge")
                .json()
                .await
                .expect("nonce");
            let sig = key.sign(&challenge_message(serial, &c.nonce));
            let r = http
                .post(format!("{base}/v1/devices/token"))
                .json(&serde_json::json!({"serial": serial, "nonce": c.nonce, "signature": signature_text(&sig)}))
                .send()
                .await
                .expect("token");
            (
                r.status().as_u16(),
                r.text().await.expect("body"),
                c.nonce,
                sig,
            )
        }
    };
    let batch = |serial: &str, key: &SigningKey| {
        let rows = MemoryBuffer::simulated(1, 10, 5, 3)
            .rows
            .iter()
            .map(|r| r.2)
            .collect::<Vec<_>>();
        encode(
            &BatchMeta {
                serial: serial.into(),
                match_id: [5; 16],
                match_started_ms: common::recent_match_start_ms(),
                fps_milli: 25_000,
                first_row: 1,
                last_row: rows.len() as u64,
            },
            &rows,
            key,
        )
        .expect("encode")
    };
    let summary = |serial: &str, key: &SigningKey| {
        let mut b = MemoryBuffer::simulated(1, 10, 5, 3);
        b.summarise(serial);
        polyvision_cloud_sync::summary::encode(&b.summaries[0].0, key).expect("summary")
    };
    let post_summary = |token: String, body: Vec<u8>| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r = http
                .post(format!("{base}/v1/ingest/summaries"))
                .bearer_auth(token)
                .body(body)
                .send()
                .await
                .expect("summary");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };
    let post = |token: String, body: Vec<u8>| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r = http
                .post(format!("{base}/v1/ingest/batches"))
                .bearer_auth(token)
                .header("content-type", BATCH_CONTENT_TYPE)
                .body(body)
                .send()
                .await
                .expect("ingest");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };

    let mut results: Vec<(Attack, u16, String)> = Vec::new();
    rt.block_on(async {
        // Unknown device.
        let r = http
            .post(format!("{base}/v1/devices/challenge"))
            .json(&serde_json::json!({"serial": "PV-NOBODY"}))
            .send()
            .await
            .expect("challenge");
        results.push((Attack { name: "unknown device asks for a nonce", status: 401 }, r.status().as_u16(), r.text().await.unwrap_or_default()));
        // A stranger's key answering PV-A's challenge.
        let (s, b, _, _) = token_for("PV-A", stranger.clone()).await;
        results.push((Attack { name: "challenge signed with a key not enrolled", status: 401 }, s, b));
        // The genuine device, then a replay of its nonce and signature.
        let (s, body, nonce, sig) = token_for("PV-A", key_a.clone()).await;
        assert_eq!(s, 200, "{body}");
        let token_a = serde_json::from_str::<TokenResponse>(&body).expect("token").token;
        let r = http
            .post(format!("{base}/v1/devices/token"))
            .json(&serde_json::json!({"serial": "PV-A", "nonce": nonce, "signature": signature_text(&sig)}))
            .send()
            .await
            .expect("replay");
        results.push((Attack { name: "replayed nonce", status: 401 }, r.status().as_u16(), r.text().await.unwrap_or_default()));
        // A batch signed by another key, with PV-A's valid token.
        let (s, b) = post(token_a.clone(), batch("PV-A", &stranger)).await;
        results.push((Attack { name: "batch with a bad signature", status: 401 }, s, b));
        // PV-A's token carrying PV-B's batch (organisation B).
        let (s, b) = post(token_a.clone(), batch("PV-B", &key_b)).await;
        results.push((Attack { name: "token of organisation A writing a batch of organisation B", status: 403 }, s, b));
        // The same two on match summaries, and a malformed one.
        let (s, b) = post_summary(token_a.clone(), summary("PV-A", &stranger)).await;
        results.push((Attack { name: "match summary with a bad signature", status: 401 }, s, b));
        let (s, b) = post_summary(token_a.clone(), summary("PV-B", &key_b)).await;
        results.push((Attack { name: "token of A sending a match summary of B", status: 403 }, s, b));
        let (s, b) = post_summary(token_a.clone(), b"PVMS\x01{}".to_vec()).await;
        results.push((Attack { name: "malformed match summary", status: 400 }, s, b));
        // alg: none.
        let claims = token_a.split('.').nth(1).expect("claims").to_string();
        let none_header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
        let (s, b) = post(format!("{none_header}.{claims}."), batch("PV-A", &key_a)).await;
        results.push((Attack { name: "alg: none", status: 401 }, s, b));
        // HS256 made with the service's public key as the HMAC secret.
        let service_key = std::fs::read_to_string(dir.path().join("service.key")).expect("key");
        let service_key = <SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&service_key).expect("pem");
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims_json("PV-A", ORG_A, 0, 3600),
            &jsonwebtoken::EncodingKey::from_secret(service_key.verifying_key().as_bytes()),
        )
        .expect("hs256");
        let (s, b) = post(hs, batch("PV-A", &key_a)).await;
        results.push((Attack { name: "HS256 token keyed with the public key", status: 401 }, s, b));
        // Expired (beyond the 60 s leeway), properly signed by the service key.
        let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&service_key).expect("der");
        let expired = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
            &claims_json("PV-A", ORG_A, -7200, -3600),
            &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        )
        .expect("expired");
        let (s, b) = post(expired, batch("PV-A", &key_a)).await;
        results.push((Attack { name: "expired token", status: 401 }, s, b));
        // A token signed by the service for organisation B, while PV-A is enrolled in A.
        let forged_org = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
            &claims_json("PV-A", ORG_B, 0, 3600),
            &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        )
        .expect("org b");
        let (s, b) = post(forged_org, batch("PV-A", &key_a)).await;
        results.push((Attack { name: "token claims organisation B for a device of A", status: 401 }, s, b));
        // No token at all.
        let r = http
            .post(format!("{base}/v1/ingest/batches"))
            .body(batch("PV-A", &key_a))
            .send()
            .await
            .expect("no token");
        results.push((Attack { name: "no token", status: 401 }, r.status().as_u16(), r.text().await.unwrap_or_default()));
        // Garbage body with a valid token.
        let (s, b) = post(token_a.clone(), b"PVSB\x01garbage".to_vec()).await;
        results.push((Attack { name: "malformed batch", status: 400 }, s, b));
        // Oversized body: refused on its declared length, before any of it is read (so the
        // request sends its head only and reads the answer).
        let (s, b) = declare_body(&base, &token_a, 17 << 20);
        results.push((Attack { name: "body over 16 MiB", status: 413 }, s, b));
        // Enrolment without the admin token.
        let r = http
            .post(format!("{base}/v1/factory/devices"))
            .bearer_auth("not-the-admin")
            .json(&serde_json::json!({"serial": "PV-X", "public_key": public_key_text(&stranger.verifying_key()), "organization_id": ORG_A}))
            .send()
            .await
            .expect("enrol");
        results.push((Attack { name: "enrolment with a wrong admin token", status: 401 }, r.status().as_u16(), r.text().await.unwrap_or_default()));
    });
    let mut failed = Vec::new();
    for (attack, got, body) in &results {
        println!(
            "{:<58} → {got} {}",
            attack.name,
            body.chars().take(100).collect::<String>()
        );
        if *got != attack.status {
            failed.push(format!(
                "{}: expected {}, got {got} ({body})",
                attack.name, attack.status
            ));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(stored(&ch, "attacks").0, 0, "nothing written");
    assert_eq!(
        ch.query("SELECT count() FROM attacks.player_summaries")
            .expect("query"),
        "0",
        "no summary written"
    );
    assert_eq!(
        ch.query("SELECT count() FROM attacks.devices FINAL WHERE serial = 'PV-X'")
            .expect("query"),
        "0"
    );

    // The genuine device still gets through.
    let mut up = uploader(&base, "PV-A", &key_a, 5000);
    let mut src = SharedBuffer(Arc::new(Mutex::new(MemoryBuffer::simulated(1, 20, 5, 9))));
    rt.block_on(up.sync_all(&mut src)).expect("genuine");
    assert_eq!(stored(&ch, "attacks").0, 100);

    // A rig that floods the service is slowed down, not shut out: 429 with Retry-After.
    let (limited, retry_after, secs) = rt.block_on(async {
        let (s, body, _, _) = token_for("PV-A", key_a.clone()).await;
        assert_eq!(s, 200, "{body}");
        let token = serde_json::from_str::<TokenResponse>(&body)
            .expect("token")
            .token;
        let good = batch("PV-A", &key_a);
        // Back to back: far faster than 20 batches/s, past the burst of 40.
        let started = std::time::Instant::now();
        let mut answers = Vec::new();
        for _ in 0..80 {
            answers.push(
                http.post(format!("{base}/v1/ingest/batches"))
                    .bearer_auth(&token)
                    .body(good.clone())
                    .send()
                    .await,
            );
        }
        let limited: Vec<_> = answers
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|r| r.status().as_u16() == 429)
            .collect();
        let retry_after = limited
            .first()
            .and_then(|r| r.headers().get("retry-after"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (limited.len(), retry_after, started.elapsed().as_secs_f64())
    });
    // The bucket admits at most its burst plus the rate over the time the loop took, however
    // slow the machine: the bound is measured, not assumed.
    let admitted_at_most = (40.0 + 20.0 * secs).floor() as usize + 1;
    println!(
        "80 requests back to back in {secs:.2} s: {limited} answered 429 (at least {} expected), Retry-After {retry_after:?}",
        80usize.saturating_sub(admitted_at_most)
    );
    assert!(limited >= 1, "no request was rate-limited");
    assert!(
        limited >= 80usize.saturating_sub(admitted_at_most),
        "{limited} rate-limited answers in {secs:.2} s"
    );
    assert!(retry_after.is_some());
}

/// A batch upload that declares a body of `len` bytes and sends none of it; the answer.
fn declare_body(base: &str, token: &str, len: usize) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let addr = base.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        c,
        "POST /v1/ingest/batches HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: {BATCH_CONTENT_TYPE}\r\nContent-Length: {len}\r\n\r\n"
    )
    .expect("head");
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn base64_url(b: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b)
}

fn claims_json(serial: &str, org: &str, iat_offset: i64, exp_offset: i64) -> serde_json::Value {
    let now = polyvision_cloud_api::auth::now_s() as i64;
    serde_json::json!({
        "sub": serial, "org": org, "kind": "device",
        "aud": polyvision_cloud_api::auth::DEVICE_AUDIENCE,
        "iss": polyvision_cloud_api::auth::ISSUER,
        "iat": now + iat_offset, "nbf": now + iat_offset, "exp": now + exp_offset,
    })
}
