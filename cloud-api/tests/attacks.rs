//! An outside tester's findings against the cloud service, each reproduced with the request the
//! tester sent and kept as a test: a real ClickHouse server, the service in this process, user
//! tokens of two organisations, real device keys.

mod common;

use common::{MemoryBuffer, SharedBuffer};
use ed25519_dalek::{Signer as _, SigningKey};
use polyvision_cloud_api::testing::{ClickHouse, InProcessService, http, recent_match_start_ms};
use polyvision_cloud_api::users::{Role, issue, new_key};
use polyvision_cloud_sync::identity::{challenge_message, public_key_text, signature_text};
use polyvision_cloud_sync::protocol::{ChallengeResponse, TokenResponse};
use polyvision_cloud_sync::uploader::{Uploader, UploaderConfig};
use polyvision_cloud_sync::wire::{BatchMeta, WireRow, encode};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

const ADMIN: &str = "attacks-test-admin-token";
const ORG_A: &str = "0190a1b2-0000-7000-8000-0000000000a1";
const ORG_B: &str = "0190a1b2-0000-7000-8000-0000000000b2";

/// A ClickHouse server, the service with user tokens, and the key that signs them.
struct Setup {
    ch: ClickHouse,
    svc: InProcessService,
    pem: Vec<u8>,
    db: &'static str,
    _dir: tempfile::TempDir,
    jwks: PathBuf,
}

impl Setup {
    fn start(db: &'static str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let jwks = new_key(&keys, "k1").expect("user key");
        let ch = ClickHouse::start().expect("ClickHouse");
        let svc = InProcessService::start_with_users(&ch, dir.path(), db, ADMIN, Some(&jwks))
            .expect("service");
        let pem = std::fs::read(keys.join("k1.pem")).expect("pem");
        Setup {
            ch,
            svc,
            pem,
            db,
            _dir: dir,
            jwks,
        }
    }

    fn url(&self) -> &str {
        &self.svc.url
    }

    fn user(&self, org: &str, role: Role) -> String {
        issue(
            &self.pem,
            "k1",
            "someone@club",
            Uuid::parse_str(org).expect("uuid"),
            role,
            3600,
        )
        .expect("user token")
    }

    /// Enrols with the factory token.
    fn enrol(&self, serial: &str, key: &SigningKey, org: &str) {
        let status = polyvision_cloud_api::testing::enrol(
            self.url(),
            ADMIN,
            serial,
            &public_key_text(&key.verifying_key()),
            org,
        )
        .expect("enrol");
        assert_eq!(status, 201, "enrolling {serial}");
    }

    /// A device token by challenge and signature; the HTTP status and body of the token answer.
    fn device_token(&self, serial: &str, key: &SigningKey) -> (u16, String) {
        let (status, body) = post_json(
            &format!("{}/v1/devices/challenge", self.url()),
            None,
            &serde_json::json!({ "serial": serial }),
        );
        if status != 200 {
            return (status, body);
        }
        let c: ChallengeResponse = serde_json::from_str(&body).expect("nonce");
        let sig = key.sign(&challenge_message(serial, &c.nonce));
        post_json(
            &format!("{}/v1/devices/token", self.url()),
            None,
            &serde_json::json!({"serial": serial, "nonce": c.nonce, "signature": signature_text(&sig)}),
        )
    }

    fn token_of(&self, serial: &str, key: &SigningKey) -> String {
        let (status, body) = self.device_token(serial, key);
        assert_eq!(status, 200, "token of {serial}: {body}");
        serde_json::from_str::<TokenResponse>(&body)
            .expect("token")
            .token
    }

    /// Syncs a small recorded match of `serial` through the real uploader; its match id.
    fn sync_match(&self, serial: &str, key: &SigningKey, seed: u64) -> [u8; 16] {
        let mut buffer = MemoryBuffer::simulated(1, 40, 5, seed);
        buffer.summarise(serial);
        let match_id = buffer.matches[0].0;
        let shared = Arc::new(Mutex::new(buffer));
        let mut source = SharedBuffer(shared.clone());
        let mut config = UploaderConfig::new(self.url(), serial);
        config.min_backoff = Duration::from_millis(20);
        config.max_backoff = Duration::from_millis(200);
        let mut up = Uploader::new(config, key.clone()).expect("uploader");
        self.svc
            .runtime()
            .block_on(up.sync_all(&mut source))
            .expect("sync");
        assert_eq!(
            shared.lock().expect("buffer").summaries[0].1.as_deref(),
            Some("sent")
        );
        match_id
    }

    fn stored(&self) -> (u64, u64) {
        self.ch.stored(self.db).expect("stored")
    }
}

fn post_json(url: &str, token: Option<&str>, body: &serde_json::Value) -> (u16, String) {
    http("POST", url, token, body.to_string().as_bytes()).expect("request")
}

fn post_bytes(url: &str, token: &str, body: &[u8]) -> (u16, String) {
    http("POST", url, Some(token), body).expect("request")
}

fn rows(n: u32, frame_step: u32) -> Vec<WireRow> {
    (0..n)
        .map(|i| WireRow {
            frame: i * frame_step,
            track: 1,
            class: 1,
            x_cm: 100,
            y_cm: 200,
            conf: 200,
        })
        .collect()
}

fn batch(
    serial: &str,
    key: &SigningKey,
    match_id: [u8; 16],
    meta: impl Fn(&mut BatchMeta),
) -> Vec<u8> {
    let rows = rows(10, 1);
    let mut m = BatchMeta {
        serial: serial.into(),
        match_id,
        match_started_ms: recent_match_start_ms(),
        fps_milli: 25_000,
        first_row: 1,
        last_row: rows.len() as u64,
    };
    meta(&mut m);
    encode(&m, &rows, key).expect("encode")
}

/// One test per finding, named after what must hold (`--skip finding::` leaves them to the
/// suite's cloud group).
mod finding {
    use super::*;

    /// Finding 1: `POST /v1/factory/devices` with an organisation-A admin token and B's rig's serial,
    /// an attacker's key, `"organization_id": A` and `"replace": true` answered 201 (and so did
    /// `"revoke": true`); the attacker then held a token for B's rig and B's rig was shut out.
    #[test]
    fn an_admin_cannot_take_over_or_revoke_another_organisations_rig() {
        let s = Setup::start("takeover");
        let rig_b = SigningKey::from_bytes(&[0xb1; 32]);
        let attacker = SigningKey::from_bytes(&[0xee; 32]);
        s.enrol("PV-B1", &rig_b, ORG_B);
        s.sync_match("PV-B1", &rig_b, 1);
        let before = s.stored();
        let admin_a = s.user(ORG_A, Role::Admin);
        let factory = |extra: serde_json::Value| {
            let mut body = serde_json::json!({
                "serial": "PV-B1",
                "public_key": public_key_text(&attacker.verifying_key()),
                "organization_id": ORG_A,
            });
            for (k, v) in extra.as_object().expect("object") {
                body[k] = v.clone();
            }
            post_json(
                &format!("{}/v1/factory/devices", s.url()),
                Some(&admin_a),
                &body,
            )
        };
        let (status, body) = factory(serde_json::json!({"replace": true}));
        println!("admin of A re-keys B's rig into A → {status} {body}");
        assert_eq!(status, 403, "{body}");
        let (status, body) = factory(serde_json::json!({"revoke": true}));
        println!("admin of A revokes B's rig → {status} {body}");
        assert_eq!(status, 403, "{body}");
        // Naming B as the organisation does not help either.
        let (status, body) =
            factory(serde_json::json!({"replace": true, "organization_id": ORG_B}));
        assert_eq!(status, 403, "{body}");

        // The attacker's key gets no token; the real rig still does and still uploads.
        let (status, _) = s.device_token("PV-B1", &attacker);
        assert_eq!(status, 401);
        let _ = s.token_of("PV-B1", &rig_b);
        s.sync_match("PV-B1", &rig_b, 2);
        assert!(
            s.stored().0 > before.0,
            "B's rig uploads after the attempts"
        );

        // An admin still manages its own organisation's rigs.
        let rig_a = SigningKey::from_bytes(&[0xa1; 32]);
        s.enrol("PV-A1", &rig_a, ORG_A);
        let old_token = s.token_of("PV-A1", &rig_a);
        let new_key = SigningKey::from_bytes(&[0xa2; 32]);
        let (status, body) = post_json(
            &format!("{}/v1/factory/devices", s.url()),
            Some(&admin_a),
            &serde_json::json!({"serial": "PV-A1", "public_key": public_key_text(&new_key.verifying_key()),
            "organization_id": ORG_A, "replace": true}),
        );
        assert_eq!(status, 201, "{body}");
        let _ = s.token_of("PV-A1", &new_key);
        // The rig still signing with its old key and token is told to authenticate again
        // (401), never that its rows are refused for good (403: the uploader would quarantine).
        let (status, body) = post_bytes(
            &format!("{}/v1/ingest/batches", s.url()),
            &old_token,
            &batch("PV-A1", &rig_a, [0xa1; 16], |_| ()),
        );
        println!("a re-keyed rig's batch under its old key → {status} {body}");
        assert_eq!(status, 401, "{body}");
    }

    /// Finding 2: 48 connections each sent 15 MiB of a 16 MiB `POST /v1/ingest/batches` without a
    /// token and went silent; the service buffered every byte and waited for ever.
    #[test]
    fn an_unauthenticated_upload_is_refused_before_its_body_is_read() {
        let s = Setup::start("early_refusal");
        let addr = s.url().trim_start_matches("http://").to_string();
        let upload = |auth: &str, body_part: usize| {
            let mut c = TcpStream::connect(&addr).expect("connect");
            c.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            write!(
            c,
            "POST /v1/ingest/batches HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/vnd.polyvision.batch\r\nContent-Length: {}\r\n\r\n",
            16 << 20
        )
        .expect("headers");
            // A part of the body (or none), then silence.
            c.write_all(&vec![0u8; body_part])
                .expect("part of the body");
            let mut answer = [0u8; 256];
            match c.read(&mut answer) {
                Ok(n) => Ok(String::from_utf8_lossy(&answer[..n]).into_owned()),
                Err(e) => Err(e),
            }
        };
        for (what, auth) in [
            ("without a token", ""),
            (
                "with a forged token",
                "Authorization: Bearer not.a.token\r\n",
            ),
        ] {
            // Headers only: the answer comes while the 16 MiB are still to be sent.
            let head = upload(auth, 0).expect("an answer before the body (the read timed out)");
            println!(
                "16 MiB upload {what}, headers sent: {}",
                head.lines().next().unwrap_or("")
            );
            assert!(head.starts_with("HTTP/1.1 401"), "{head}");
            // A small body (a rig's usual batch) is read and dropped first, so a client that
            // writes all of it before reading still gets the 401 (a revoked rig re-authenticates).
            let (status, text) = s.svc.runtime().block_on(async {
                let mut r = reqwest::Client::new()
                    .post(format!("{}/v1/ingest/batches", s.url()))
                    .body(vec![0u8; 200 << 10]);
                if !auth.is_empty() {
                    r = r.bearer_auth("not.a.token");
                }
                let r = r.send().await.expect("a small upload gets an answer");
                (r.status().as_u16(), r.text().await.unwrap_or_default())
            });
            assert_eq!(status, 401, "{text}");
            // With a quarter MiB sent: the answer, or the connection reset because the service
            // closed it with those bytes unread; never a wait for the rest.
            match upload(auth, 256 << 10) {
                Ok(head) => assert!(head.starts_with("HTTP/1.1 401"), "{head}"),
                Err(e) => assert_eq!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset,
                    "the service waited for the body: {e}"
                ),
            }
        }
    }

    /// Finding 6: with a table gone, rigs and coaches were answered ClickHouse's own text
    /// (`Code: 60, e.displayText() = DB::Exception: Table polyvision.player_summaries doesn't exist`).
    #[test]
    fn storage_failures_are_answered_without_clickhouses_text() {
        let s = Setup::start("hidden_errors");
        let rig = SigningKey::from_bytes(&[0x61; 32]);
        s.enrol("PV-H1", &rig, ORG_A);
        let match_id = Uuid::from_bytes(s.sync_match("PV-H1", &rig, 3));
        s.ch.query("DROP TABLE hidden_errors.player_summaries")
            .expect("drop");
        s.ch.query("DROP TABLE hidden_errors.devices")
            .expect("drop");
        let coach = s.user(ORG_A, Role::Coach);
        let answers = [
            http(
                "GET",
                &format!("{}/v1/matches/{match_id}/summary", s.url()),
                Some(&coach),
                b"",
            )
            .expect("summary"),
            post_json(
                &format!("{}/v1/devices/challenge", s.url()),
                None,
                &serde_json::json!({"serial": "PV-NEVER-SEEN"}),
            ),
        ];
        for (status, body) in answers {
            println!("→ {status} {body}");
            assert_eq!(status, 503, "{body}");
            for leak in [
                "DB::Exception",
                "Code:",
                "doesn't exist",
                "hidden_errors",
                "player_summaries",
                "devices",
            ] {
                assert!(!body.contains(leak), "the answer names {leak:?}: {body}");
            }
        }
    }

    /// Finding 8: a batch signed by rig A2 carrying rig A1's `match_id` replaced A1's rows and the
    /// match's `device_serial`; a summary from A2 replaced A1's players.
    #[test]
    fn a_rig_cannot_write_into_another_rigs_match() {
        let s = Setup::start("match_owner");
        let a1 = SigningKey::from_bytes(&[0x81; 32]);
        let a2 = SigningKey::from_bytes(&[0x82; 32]);
        s.enrol("PV-A1", &a1, ORG_A);
        s.enrol("PV-A2", &a2, ORG_A);
        let match_id = s.sync_match("PV-A1", &a1, 4);
        let before = s.stored();
        let token_a2 = s.token_of("PV-A2", &a2);
        let forged = batch("PV-A2", &a2, match_id, |m| {
            m.first_row = 1_000_000;
            m.last_row = 1_000_009;
        });
        let (status, body) = post_bytes(
            &format!("{}/v1/ingest/batches", s.url()),
            &token_a2,
            &forged,
        );
        println!("A2's batch into A1's match → {status} {body}");
        assert_eq!(status, 403, "{body}");
        let mut theirs = MemoryBuffer::simulated(1, 40, 5, 4);
        theirs.summarise("PV-A2");
        let summary =
            polyvision_cloud_sync::summary::encode(&theirs.summaries[0].0, &a2).expect("summary");
        let (status, body) = post_bytes(
            &format!("{}/v1/ingest/summaries", s.url()),
            &token_a2,
            &summary,
        );
        println!("A2's summary of A1's match → {status} {body}");
        assert_eq!(status, 403, "{body}");
        assert_eq!(s.stored(), before, "A1's rows untouched");
        let owner = s
        .ch
        .query(&format!(
            "SELECT groupUniqArray(device_serial) FROM match_owner.matches WHERE match_id = '{}'",
            Uuid::from_bytes(match_id)
        ))
        .expect("owner");
        assert_eq!(owner.trim(), "['PV-A1']");
        // A2's own matches are its own.
        s.sync_match("PV-A2", &a2, 5);
    }

    /// Finding 10: a 10 MiB serial sent to `/v1/devices/challenge` got a 10 MiB error body.
    #[test]
    fn oversized_input_is_not_echoed_back() {
        let s = Setup::start("no_echo");
        // The head declares the 10 MiB body; 64 KiB of it are sent, the rest never is: the
        // answer must come on what was sent (and a client that stops writing reads it).
        let addr = s.url().trim_start_matches("http://").to_string();
        let mut c = TcpStream::connect(&addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let declared = 10 << 20;
        write!(
            c,
            "POST /v1/devices/challenge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n{{\"serial\":\""
        )
        .expect("head");
        c.write_all(&vec![b'S'; 64 << 10])
            .expect("part of the serial");
        let mut answer = Vec::new();
        let _ = c.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        println!(
            "10 MiB serial to the challenge → {status}, {} bytes of answer",
            body.len()
        );
        assert_eq!(status, 413);
        assert!(body.len() < 1024, "{} bytes of answer", body.len());
        // Within the auth limit but not a serial; and at enrolment, whose body limit is larger.
        let long = "x".repeat(3000);
        for (url, token) in [
            (format!("{}/v1/devices/challenge", s.url()), None),
            (format!("{}/v1/factory/devices", s.url()), Some(ADMIN)),
        ] {
            let (status, body) = post_json(
                &url,
                token,
                &serde_json::json!({"serial": long, "public_key": "x", "organization_id": ORG_A}),
            );
            assert_eq!(status, 400, "{body}");
            assert!(body.len() < 300 && body.contains("3000 bytes"), "{body}");
        }
    }

    /// Finding 11: enrolment took a small-order Ed25519 point (32 zero bytes) as a device's key,
    /// under which forged signatures verify.
    #[test]
    fn weak_device_keys_are_refused() {
        let s = Setup::start("weak_keys");
        let zero =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [0u8; 32]);
        let (status, body) = post_json(
            &format!("{}/v1/factory/devices", s.url()),
            Some(ADMIN),
            &serde_json::json!({"serial": "PV-W1", "public_key": zero, "organization_id": ORG_A}),
        );
        println!("32 zero bytes as a device key → {status} {body}");
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("weak"), "{body}");
    }

    /// Finding 12: `match_started_ms` = i64::MAX, fps 4,294,967.295 and a batch spread over 150
    /// monthly partitions were stored.
    #[test]
    fn absurd_batch_headers_are_refused_naming_the_field() {
        let s = Setup::start("headers");
        let rig = SigningKey::from_bytes(&[0x12; 32]);
        s.enrol("PV-R1", &rig, ORG_A);
        let token = s.token_of("PV-R1", &rig);
        let url = format!("{}/v1/ingest/batches", s.url());
        let cases: [(&str, Vec<u8>); 4] = [
            (
                "match_started_ms",
                batch("PV-R1", &rig, [1; 16], |m| m.match_started_ms = i64::MAX),
            ),
            (
                "match_started_ms",
                batch("PV-R1", &rig, [2; 16], |m| m.match_started_ms = 0),
            ),
            (
                "fps_milli",
                batch("PV-R1", &rig, [3; 16], |m| m.fps_milli = u32::MAX),
            ),
            ("frame", {
                // Ten rows a month apart at 1 fps: one batch over 150 monthly partitions' worth.
                let rows = rows(10, 40_000_000);
                let meta = BatchMeta {
                    serial: "PV-R1".into(),
                    match_id: [4; 16],
                    match_started_ms: recent_match_start_ms(),
                    fps_milli: 1_000,
                    first_row: 1,
                    last_row: 10,
                };
                encode(&meta, &rows, &rig).expect("encode")
            }),
        ];
        for (field, body) in cases {
            let (status, answer) = post_bytes(&url, &token, &body);
            println!("{field} out of range → {status} {answer}");
            assert_eq!(status, 400, "{answer}");
            assert!(
                answer.contains(field),
                "the answer does not name {field}: {answer}"
            );
        }
        assert_eq!(s.stored().0, 0, "nothing stored");
        let matches =
            s.ch.query("SELECT count() FROM headers.matches")
                .expect("count");
        assert_eq!(matches.trim(), "0");
    }

    /// Finding 13: the challenge told enrolled, revoked and unknown serials apart (200 / 403
    /// "is revoked" / 401 "not enrolled").
    #[test]
    fn revoked_and_unknown_serials_answer_alike() {
        let s = Setup::start("alike");
        let rig = SigningKey::from_bytes(&[0x13; 32]);
        s.enrol("PV-GONE", &rig, ORG_A);
        let (status, body) = post_json(
            &format!("{}/v1/factory/devices", s.url()),
            Some(ADMIN),
            &serde_json::json!({"serial": "PV-GONE", "public_key": public_key_text(&rig.verifying_key()),
            "organization_id": ORG_A, "revoke": true}),
        );
        assert_eq!(status, 201, "{body}");
        let ask = |serial: &str| {
            post_json(
                &format!("{}/v1/devices/challenge", s.url()),
                None,
                &serde_json::json!({ "serial": serial }),
            )
        };
        let (revoked, revoked_body) = ask("PV-GONE");
        let (unknown, unknown_body) = ask("PV-NONE");
        println!("revoked → {revoked} {revoked_body}; unknown → {unknown} {unknown_body}");
        assert_eq!(revoked, unknown);
        assert_eq!(revoked_body.replace("PV-GONE", "PV-NONE"), unknown_body);
    }

    /// Finding 14: an array `aud` (RFC 7519 §4.1.3) was refused, an unknown `crit` header (RFC 7515
    /// §4.1.11) accepted, and the lowercase scheme `bearer` refused.
    #[test]
    fn standard_jwt_forms_are_read_as_the_rfcs_say() {
        let s = Setup::start("jwt_forms");
        let now = polyvision_cloud_api::auth::now_s();
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&s.pem).expect("key");
        let b64 =
            |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
        let sign = |header: serde_json::Value, claims: serde_json::Value| {
            let message = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let sig = jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &key,
                jsonwebtoken::Algorithm::RS256,
            )
            .expect("sign");
            format!("{message}.{sig}")
        };
        let claims = |aud: serde_json::Value| serde_json::json!({"sub": "coach@club", "org": ORG_A, "role": "coach", "aud": aud, "exp": now + 3600});
        let matches = |auth: &str| {
            let mut c = TcpStream::connect(s.url().trim_start_matches("http://")).expect("connect");
            write!(c, "GET /v1/matches HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n")
            .expect("request");
            let mut answer = String::new();
            c.read_to_string(&mut answer).expect("answer");
            answer
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(0)
        };
        let array_aud = sign(
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}),
            claims(serde_json::json!(["polyvision-api", "another-api"])),
        );
        let wrong_array_aud = sign(
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}),
            claims(serde_json::json!(["another-api"])),
        );
        let critical = sign(
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "k1", "crit": ["x-unknown"], "x-unknown": 1}),
            claims(serde_json::json!("polyvision-api")),
        );
        let plain = s.user(ORG_A, Role::Coach);
        let cases = [
            (
                "an array aud naming the service",
                format!("Bearer {array_aud}"),
                200,
            ),
            (
                "an array aud not naming it",
                format!("Bearer {wrong_array_aud}"),
                401,
            ),
            (
                "an unknown critical header",
                format!("Bearer {critical}"),
                401,
            ),
            ("the scheme in lowercase", format!("bearer {plain}"), 200),
            ("the scheme in capitals", format!("BEARER {plain}"), 200),
        ];
        for (name, auth, want) in cases {
            let got = matches(&auth);
            println!("{name:<36} → {got}");
            assert_eq!(got, want, "{name}");
        }
        // The same refusal of `crit` on device tokens.
        let rig = SigningKey::from_bytes(&[0x14; 32]);
        s.enrol("PV-J1", &rig, ORG_A);
        let token = s.token_of("PV-J1", &rig);
        let mut parts = token.split('.');
        let (header, claims_part) = (parts.next().expect("header"), parts.next().expect("claims"));
        let mut h: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
                .expect("b64"),
        )
        .expect("json");
        h["crit"] = serde_json::json!(["x-unknown"]);
        let service_key =
            std::fs::read_to_string(s._dir.path().join("service.key")).expect("service key");
        let service_key =
            <SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&service_key)
                .expect("pem");
        let message = format!("{}.{claims_part}", b64(h.to_string().as_bytes()));
        let forged = format!(
            "{message}.{}",
            b64(&service_key.sign(message.as_bytes()).to_bytes())
        );
        let body = batch("PV-J1", &rig, [7; 16], |_| ());
        let (status, answer) =
            post_bytes(&format!("{}/v1/ingest/batches", s.url()), &forged, &body);
        assert_eq!(status, 401, "device token with crit: {answer}");
        let (status, answer) = post_bytes(&format!("{}/v1/ingest/batches", s.url()), &token, &body);
        assert_eq!(status, 200, "the same batch with the real token: {answer}");
        let _ = &s.jwks;
    }

    /// PyJWT, the platform's own JWT library: its RS256 user tokens with the documented claims are
    /// accepted (`aud` as a string and as an array), and it verifies the service's device tokens
    /// (EdDSA) and our user tokens (RS256, by the JWKS).
    #[test]
    fn tokens_interoperate_with_pyjwt() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = std::env::var_os("POLYVISION_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".venv/bin/python"));
        assert!(
            python.exists(),
            "{}: no Python with PyJWT (scripts/test.sh makes .venv from scripts/requirements-test.txt; or set POLYVISION_PYTHON)",
            python.display()
        );
        let script = root.join("scripts/jwt-interop.py");
        let pyjwt = |args: &[&str]| {
            let out = std::process::Command::new(&python)
                .arg(&script)
                .args(args)
                .output()
                .expect("run scripts/jwt-interop.py");
            assert!(
                out.status.success(),
                "jwt-interop.py {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let s = Setup::start("pyjwt");
        let key = s._dir.path().join("keys/k1.pem");
        let key = key.to_str().expect("path");
        for aud_array in [false, true] {
            let mut args = vec![
                "mint", "--key", key, "--kid", "k1", "--org", ORG_A, "--role", "coach",
            ];
            if aud_array {
                args.push("--aud-array");
            }
            let token = pyjwt(&args);
            let (status, body) = http("GET", &format!("{}/v1/matches", s.url()), Some(&token), b"")
                .expect("matches");
            println!(
                "PyJWT user token (aud as {}) → {status}",
                if aud_array { "an array" } else { "a string" }
            );
            assert_eq!(status, 200, "{body}");
        }
        let ours = s.user(ORG_A, Role::Admin);
        let claims: serde_json::Value = serde_json::from_str(&pyjwt(&[
            "user",
            "--jwks",
            s.jwks.to_str().expect("path"),
            "--token",
            &ours,
        ]))
        .expect("claims");
        assert_eq!(
            (claims["org"].as_str(), claims["role"].as_str()),
            (Some(ORG_A), Some("admin"))
        );
        let rig = SigningKey::from_bytes(&[0x15; 32]);
        s.enrol("PV-PY1", &rig, ORG_A);
        let device = s.token_of("PV-PY1", &rig);
        let service_key = s._dir.path().join("service.key");
        let claims: serde_json::Value = serde_json::from_str(&pyjwt(&[
            "device",
            "--service-key",
            service_key.to_str().expect("path"),
            "--token",
            &device,
        ]))
        .expect("claims");
        assert_eq!(claims["sub"].as_str(), Some("PV-PY1"));
        assert_eq!(claims["org"].as_str(), Some(ORG_A));
        println!("PyJWT verified the service's device token and a user token");
    }

    /// Waits until every thread of `pid` is stopped (state `T`): `kill` returns before a busy
    /// thread has taken the signal, and it may still answer a request meanwhile.
    fn wait_until_stopped(pid: u32) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let stopped = std::fs::read_dir(format!("/proc/{pid}/task"))
                .expect("threads")
                .filter_map(Result::ok)
                .all(|t| {
                    std::fs::read_to_string(t.path().join("stat"))
                        .ok()
                        .and_then(|stat| {
                            stat.rsplit_once(") ")
                                .and_then(|(_, rest)| rest.chars().next())
                        })
                        .is_none_or(|state| state == 'T' || state == 't')
                });
            if stopped {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "ClickHouse did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the service closed `c` (EOF or reset) within `within`.
    fn closed_within(mut c: &TcpStream, within: Duration) -> bool {
        c.set_read_timeout(Some(within)).expect("timeout");
        let mut b = [0u8; 64];
        match c.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }

    /// Finding 3: 500 idle or slowloris connections were never closed; with the common 1,024 file
    /// limit, 1,100 idle connections made every legitimate request time out; after SIGTERM the
    /// service waited 41.7 s for idle clients.
    #[test]
    fn idle_slow_and_surplus_connections_are_closed() {
        let ch = ClickHouse::start().expect("ClickHouse");
        let dir = tempfile::tempdir().expect("tempdir");
        let svc = common::Service::start(
            &ch,
            &dir.path().join("capped"),
            "connections",
            &[
                "--max-connections=100",
                "--max-connections-per-address=40",
                "--header-timeout-s=2",
            ],
        );
        let addr = format!("127.0.0.1:{}", svc.port);
        let started = std::time::Instant::now();
        let idle: Vec<TcpStream> = (0..60)
            .map(|_| TcpStream::connect(&addr).expect("connect"))
            .collect();
        // A head sent a byte every 300 ms never completes within the head timeout.
        let mut slow = TcpStream::connect(&addr).expect("connect");
        let slow_closed = std::thread::spawn(move || {
            for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaa" {
                if slow.write_all(&[*b]).is_err() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            closed_within(&slow, Duration::from_secs(1))
        });
        // Another client, while the flood holds its 40: answered at once.
        let (status, secs) = from_another_address(&addr);
        println!(
            "/healthz from 127.0.0.2 during the flood: {status} in {:.1} ms",
            secs * 1e3
        );
        assert_eq!(status, 200);
        let closed = idle
            .iter()
            .filter(|c| closed_within(c, Duration::from_secs(8)))
            .count();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "60 idle connections over a per-address cap of 40 with a 2 s head timeout: {closed} closed within {secs:.1} s"
        );
        assert_eq!(closed, 60, "idle connections left open");
        assert!(
            slow_closed.join().expect("slow client"),
            "a byte-at-a-time head kept its connection"
        );
        let refused = svc_metric(&svc.url(), "polyvision_connections_refused_total");
        println!("refused at the cap: {refused}");
        assert!(refused >= 20.0, "{refused} connections refused at the cap");
        assert_eq!(
            http("GET", &format!("{}/healthz", svc.url()), None, b"")
                .expect("healthz")
                .0,
            200,
            "a legitimate request after the flood"
        );

        // SIGTERM with idle clients connected: they are closed, the process exits at once.
        let mut svc = common::Service::start(&ch, &dir.path().join("term"), "connections", &[]);
        let addr = format!("127.0.0.1:{}", svc.port);
        let _idle: Vec<TcpStream> = (0..20)
            .map(|_| TcpStream::connect(&addr).expect("connect"))
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let t = std::time::Instant::now();
        let status = svc.terminate();
        let secs = t.elapsed().as_secs_f64();
        println!("SIGTERM with 20 idle connections: exited in {secs:.2} s ({status:?})");
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
        assert!(secs < 11.0, "{secs:.1} s to exit");
    }

    /// `GET /healthz` from source address 127.0.0.2 to `addr` (loopback); status and seconds.
    fn from_another_address(addr: &str) -> (u16, f64) {
        let t = std::time::Instant::now();
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let source: std::net::SocketAddr = "127.0.0.2:0".parse().expect("address");
        socket.bind(&source.into()).expect("bind 127.0.0.2");
        let target: std::net::SocketAddr = addr.parse().expect("address");
        socket.connect(&target.into()).expect("connect");
        let mut c = TcpStream::from(socket);
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        c.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
            .expect("request");
        let mut answer = Vec::new();
        let _ = c.read_to_end(&mut answer);
        let status = String::from_utf8_lossy(&answer)
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, t.elapsed().as_secs_f64())
    }

    fn svc_metric(base: &str, name: &str) -> f64 {
        let (_, body) = http("GET", &format!("{base}/metrics"), None, b"").expect("metrics");
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} is not in /metrics"))
    }

    /// Finding 5: 5,000 requests to `/v1/devices/challenge` and `/v1/devices/token` got no 429.
    /// Finding 4: 400,000 random serials grew the device cache by 179 bytes each, for ever.
    #[test]
    fn challenges_are_rate_limited_per_address_and_unknown_serials_are_not_cached() {
        let ch = ClickHouse::start().expect("ClickHouse");
        let dir = tempfile::tempdir().expect("tempdir");
        let svc = common::Service::start(&ch, dir.path(), "auth_limits", &[]);
        let started = std::time::Instant::now();
        let mut statuses = Vec::new();
        for i in 0..120 {
            let path = if i % 2 == 0 { "challenge" } else { "token" };
            statuses.push(
            post_json(
                &format!("{}/v1/devices/{path}", svc.url()),
                None,
                &serde_json::json!({"serial": format!("PV-RANDOM-{i}"), "nonce": "x", "signature": "y"}),
            )
            .0,
        );
        }
        let secs = started.elapsed().as_secs_f64();
        let limited = statuses.iter().filter(|&&s| s == 429).count();
        // 5/s, burst 30 (the defaults): at most this many got through, however slow the loop.
        let admitted_at_most = (30.0 + 5.0 * secs).floor() as usize + 1;
        println!(
            "120 challenge/token requests in {secs:.2} s from one address: {limited} answered 429"
        );
        assert!(limited >= 1, "no request was rate-limited");
        assert!(
            limited >= 120usize.saturating_sub(admitted_at_most),
            "{limited} answered 429 in {secs:.2} s"
        );
        assert!(
            statuses.iter().all(|&s| s == 429 || s == 401 || s == 400),
            "{statuses:?}"
        );
        let cached = svc_metric(&svc.url(), "polyvision_device_cache_entries");
        println!(
            "device records cached after {} unknown serials: {cached}",
            120 - limited
        );
        assert_eq!(cached, 0.0, "unknown serials are cached");
    }

    /// Finding 7: with ClickHouse hung (SIGSTOP), `/readyz`, challenges and ingest hung past 40 s.
    #[test]
    fn a_hung_clickhouse_is_answered_503_in_bounded_time() {
        let ch = ClickHouse::start().expect("ClickHouse");
        let dir = tempfile::tempdir().expect("tempdir");
        let svc = common::Service::start(&ch, dir.path(), "hung", &["--request-timeout-s=2"]);
        let rig = SigningKey::from_bytes(&[0x17; 32]);
        let status = polyvision_cloud_api::testing::enrol(
            &svc.url(),
            common::ADMIN_TOKEN,
            "PV-HUNG",
            &public_key_text(&rig.verifying_key()),
            ORG_A,
        )
        .expect("enrol");
        assert_eq!(status, 201);
        let token = {
            let (s, body) = post_json(
                &format!("{}/v1/devices/challenge", svc.url()),
                None,
                &serde_json::json!({"serial": "PV-HUNG"}),
            );
            assert_eq!(s, 200, "{body}");
            let c: ChallengeResponse = serde_json::from_str(&body).expect("nonce");
            let sig = rig.sign(&challenge_message("PV-HUNG", &c.nonce));
            let (s, body) = post_json(
                &format!("{}/v1/devices/token", svc.url()),
                None,
                &serde_json::json!({"serial": "PV-HUNG", "nonce": c.nonce, "signature": signature_text(&sig)}),
            );
            assert_eq!(s, 200, "{body}");
            serde_json::from_str::<TokenResponse>(&body)
                .expect("token")
                .token
        };
        struct Continue(u32);
        impl Drop for Continue {
            fn drop(&mut self) {
                let _ = std::process::Command::new("kill")
                    .args(["-CONT", &self.0.to_string()])
                    .status();
            }
        }
        let stopped = std::process::Command::new("kill")
            .args(["-STOP", &ch.pid().to_string()])
            .status()
            .expect("kill -STOP");
        assert!(stopped.success());
        let _resume = Continue(ch.pid());
        wait_until_stopped(ch.pid());
        let batch = batch("PV-HUNG", &rig, [0x17; 16], |_| ());
        type Request<'a> = Box<dyn Fn() -> (u16, String) + 'a>;
        let requests: [(&str, Request<'_>); 3] = [
            (
                "/readyz",
                Box::new(|| {
                    http("GET", &format!("{}/readyz", svc.url()), None, b"").expect("readyz")
                }),
            ),
            (
                "challenge of an unknown serial",
                Box::new(|| {
                    post_json(
                        &format!("{}/v1/devices/challenge", svc.url()),
                        None,
                        &serde_json::json!({"serial": "PV-UNSEEN"}),
                    )
                }),
            ),
            (
                "a batch",
                Box::new(|| {
                    post_bytes(&format!("{}/v1/ingest/batches", svc.url()), &token, &batch)
                }),
            ),
        ];
        for (name, request) in &requests {
            let t = std::time::Instant::now();
            let (status, body) = request();
            let secs = t.elapsed().as_secs_f64();
            println!(
                "ClickHouse stopped: {name} → {status} in {secs:.1} s {}",
                body.trim()
            );
            assert_eq!(status, 503, "{name}: {body}");
            assert!(secs < 10.0, "{name}: {secs:.1} s");
        }
    }

    /// Finding 2, with a token: bodies that trickle in are bounded by a memory budget (here
    /// 16 MiB): an upload past it is answered 429 before its body is read, small ones still pass.
    #[test]
    fn upload_bodies_in_memory_are_bounded() {
        let ch = ClickHouse::start().expect("ClickHouse");
        let dir = tempfile::tempdir().expect("tempdir");
        let svc = common::Service::start(&ch, dir.path(), "budget", &["--upload-buffer-mib=16"]);
        let rig = SigningKey::from_bytes(&[0x18; 32]);
        let status = polyvision_cloud_api::testing::enrol(
            &svc.url(),
            common::ADMIN_TOKEN,
            "PV-BUDGET",
            &public_key_text(&rig.verifying_key()),
            ORG_A,
        )
        .expect("enrol");
        assert_eq!(status, 201);
        let (s, body) = post_json(
            &format!("{}/v1/devices/challenge", svc.url()),
            None,
            &serde_json::json!({"serial": "PV-BUDGET"}),
        );
        assert_eq!(s, 200, "{body}");
        let c: ChallengeResponse = serde_json::from_str(&body).expect("nonce");
        let sig = rig.sign(&challenge_message("PV-BUDGET", &c.nonce));
        let (s, body) = post_json(
            &format!("{}/v1/devices/token", svc.url()),
            None,
            &serde_json::json!({"serial": "PV-BUDGET", "nonce": c.nonce, "signature": signature_text(&sig)}),
        );
        assert_eq!(s, 200, "{body}");
        let token = serde_json::from_str::<TokenResponse>(&body)
            .expect("token")
            .token;
        let addr = format!("127.0.0.1:{}", svc.port);
        let head = |len: usize| {
            format!(
                "POST /v1/ingest/batches HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {len}\r\n\r\n"
            )
        };
        // 15 MiB declared, 1 MiB sent, then silence: its 15 MiB are reserved.
        let mut slow = TcpStream::connect(&addr).expect("connect");
        slow.write_all(head(15 << 20).as_bytes()).expect("head");
        slow.write_all(&vec![0u8; 1 << 20]).expect("part");
        std::thread::sleep(Duration::from_millis(300));
        let mut second = TcpStream::connect(&addr).expect("connect");
        second
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        second.write_all(head(15 << 20).as_bytes()).expect("head");
        let mut answer = [0u8; 512];
        let n = second.read(&mut answer).expect("an answer before the body");
        let answer = String::from_utf8_lossy(&answer[..n]);
        println!(
            "a second 15 MiB upload while one trickles in: {}",
            answer.lines().next().unwrap_or("")
        );
        assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("retry-after"),
            "{answer}"
        );
        let small = batch("PV-BUDGET", &rig, [0x18; 16], |_| ());
        let (status, body) =
            post_bytes(&format!("{}/v1/ingest/batches", svc.url()), &token, &small);
        println!("a {} B batch meanwhile → {status}", small.len());
        assert_eq!(status, 200, "{body}");
        drop(slow);
    }
}
