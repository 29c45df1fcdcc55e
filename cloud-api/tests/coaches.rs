//! The coaches' API against a real ClickHouse server: user tokens (RS256 by key id from a JWKS
//! file, rotation without restart), and a matrix of two organisations × every endpoint showing
//! that no token ever sees the other organisation's data; refused tokens of every kind.

mod common;

use common::{MemoryBuffer, SharedBuffer};
use ed25519_dalek::SigningKey;
use polyvision_cloud_api::testing::{ClickHouse, InProcessService, enrol, http};
use polyvision_cloud_api::users::{Role, issue, new_key};
use polyvision_cloud_sync::identity::public_key_text;
use polyvision_cloud_sync::uploader::{Uploader, UploaderConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

const ADMIN: &str = "coaches-test-admin-token";
const ORG_A: &str = "0190a1b2-0000-7000-8000-0000000000a1";
const ORG_B: &str = "0190a1b2-0000-7000-8000-0000000000b2";

fn get(url: &str, token: &str) -> (u16, serde_json::Value) {
    let (status, body) = http("GET", url, Some(token), b"").expect("request");
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn no_token_ever_sees_another_organisations_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let jwks = new_key(&keys, "k1").expect("key k1");
    let ch = ClickHouse::start().expect("ClickHouse");
    let svc = InProcessService::start_with_users(&ch, dir.path(), "coaches", ADMIN, Some(&jwks))
        .expect("service");
    let base = svc.url.clone();

    // Each organisation has a rig and one recorded match (400 frames × 23 tracks).
    let mut match_of = std::collections::HashMap::new();
    let mut rows_of = std::collections::HashMap::new();
    let mut summary_of = std::collections::HashMap::new();
    for (org, serial, seed) in [(ORG_A, "PV-A1", 1u8), (ORG_B, "PV-B1", 2u8)] {
        let key = SigningKey::from_bytes(&[seed; 32]);
        assert_eq!(
            enrol(
                &base,
                ADMIN,
                serial,
                &public_key_text(&key.verifying_key()),
                org
            )
            .expect("enrol"),
            201
        );
        let mut buffer = MemoryBuffer::simulated(1, 400, 23, seed as u64);
        buffer.summarise(serial);
        let match_id = Uuid::from_bytes(buffer.matches[0].0).to_string();
        rows_of.insert(org, buffer.rows.iter().map(|r| r.2).collect::<Vec<_>>());
        summary_of.insert(org, buffer.summaries[0].0.clone());
        let shared = Arc::new(Mutex::new(buffer));
        let mut source = SharedBuffer(shared.clone());
        let mut up = Uploader::new(UploaderConfig::new(&base, serial), key).expect("uploader");
        svc.runtime()
            .block_on(up.sync_all(&mut source))
            .expect("sync");
        assert_eq!(
            shared.lock().expect("buffer").summaries[0].1.as_deref(),
            Some("sent"),
            "the rig's summary was delivered"
        );
        match_of.insert(org, match_id);
    }
    let pem = std::fs::read(keys.join("k1.pem")).expect("pem");
    let token = |org: &str, role: Role| {
        issue(
            &pem,
            "k1",
            "someone@club",
            Uuid::parse_str(org).expect("uuid"),
            role,
            3600,
        )
        .expect("token")
    };
    let coach_a = token(ORG_A, Role::Coach);
    let coach_b = token(ORG_B, Role::Coach);
    let admin_a = token(ORG_A, Role::Admin);

    // The matrix: every token × every endpoint × both organisations' matches.
    let mut checked = 0;
    for (who, tok, own) in [
        ("coach A", &coach_a, ORG_A),
        ("coach B", &coach_b, ORG_B),
        ("admin A", &admin_a, ORG_A),
    ] {
        let other = if own == ORG_A { ORG_B } else { ORG_A };
        let (status, list) = get(&format!("{base}/v1/matches"), tok);
        assert_eq!(status, 200, "{who}: {list}");
        let ids: Vec<&str> = list["matches"]
            .as_array()
            .expect("matches")
            .iter()
            .filter_map(|m| m["match_id"].as_str())
            .collect();
        assert_eq!(
            ids,
            vec![match_of[own].as_str()],
            "{who} sees exactly its match"
        );
        assert_eq!(list["matches"][0]["frames"], 400);
        assert_eq!(list["matches"][0]["tracks"], 23);
        checked += 1;
        for query in [
            "",
            "?track=1",
            "?class=4&cell_m=5",
            "?from_s=8&to_s=16",
            "?player=1",
            "?team=team_b&from_s=8",
        ] {
            let (status, map) = get(
                &format!("{base}/v1/matches/{}/heatmap{query}", match_of[own]),
                tok,
            );
            assert_eq!(status, 200, "{who} {query}: {map}");
            let (status, _) = get(
                &format!("{base}/v1/matches/{}/heatmap{query}", match_of[other]),
                tok,
            );
            assert_eq!(
                status, 404,
                "{who} must not see the other organisation's match"
            );
            checked += 2;
        }
        for query in ["", "?track=3&every=25", "?from_s=10&to_s=11"] {
            let (status, t) = get(
                &format!("{base}/v1/matches/{}/trajectories{query}", match_of[own]),
                tok,
            );
            assert_eq!(status, 200, "{who} {query}: {t}");
            let (status, _) = get(
                &format!("{base}/v1/matches/{}/trajectories{query}", match_of[other]),
                tok,
            );
            assert_eq!(
                status, 404,
                "{who} must not see the other organisation's paths"
            );
            checked += 2;
        }
        let (_, t) = get(
            &format!(
                "{base}/v1/matches/{}/trajectories?track=3&every=25",
                match_of[own]
            ),
            tok,
        );
        let points = t["tracks"][0]["points"].as_array().expect("points");
        assert_eq!(
            (t["tracks"].as_array().map(Vec::len), points.len()),
            (Some(1), 16)
        );
        assert_eq!(points[1][0], 1.0, "the 25th frame is 1 s in");
        // Exactly the rig's positions.
        let rig = rows_of[own]
            .iter()
            .find(|r| r.track == 3 && r.frame == 25)
            .expect("rig row");
        assert_eq!(
            (points[1][1].as_f64(), points[1][2].as_f64()),
            (Some(rig.x_cm as f64 / 100.0), Some(rig.y_cm as f64 / 100.0))
        );
        // The numbers: one track is on the pitch all 400 frames (16 s at 25 fps).
        let (_, one) = get(
            &format!("{base}/v1/matches/{}/heatmap?track=1", match_of[own]),
            tok,
        );
        assert!(
            (one["total_s"].as_f64().unwrap_or(0.0) - 16.0).abs() < 1e-9,
            "{one}"
        );
        let (_, all) = get(&format!("{base}/v1/matches/{}/heatmap", match_of[own]), tok);
        assert!((all["total_s"].as_f64().unwrap_or(0.0) - 16.0 * 23.0).abs() < 1e-6);
        let (_, half) = get(
            &format!(
                "{base}/v1/matches/{}/heatmap?track=1&from_s=8",
                match_of[own]
            ),
            tok,
        );
        assert!(
            (half["total_s"].as_f64().unwrap_or(0.0) - 8.0).abs() < 1e-9,
            "{half}"
        );
        for path in [
            "summary",
            "export",
            "export?format=csv",
            "export?format=parquet",
        ] {
            let url = |m: &str| format!("{base}/v1/matches/{m}/{path}");
            let (status, _) =
                http("GET", &url(&match_of[own]), Some(tok.as_str()), b"").expect("own");
            assert_eq!(status, 200, "{who} {path}");
            let (status, _) = get(&url(&match_of[other]), tok);
            assert_eq!(
                status, 404,
                "{who} must not read the other organisation's {path}"
            );
            checked += 2;
        }

        // The summary is exactly what the rig sent.
        let (_, answer) = get(&format!("{base}/v1/matches/{}/summary", match_of[own]), tok);
        assert_eq!(answer["complete"], true);
        let rig = &summary_of[own];
        let players = answer["players"].as_array().expect("players");
        assert_eq!(players.len(), rig.players.len());
        for (got, sent) in players.iter().zip(&rig.players) {
            let z = sent.zone_m;
            assert_eq!(got["player"], sent.player);
            assert_eq!(got["team"], sent.team.as_str());
            assert_eq!(got["fragments"], serde_json::json!(sent.fragments));
            for (field, value) in [
                ("distance_m", sent.distance_m),
                ("walking_m", z[0]),
                ("jogging_m", z[1]),
                ("running_m", z[2]),
                ("high_speed_running_m", z[3]),
                ("sprinting_m", z[4]),
                ("high_speed_m", sent.high_speed_m),
                ("top_speed_mps", sent.top_speed_mps),
            ] {
                assert_eq!(got[field].as_f64(), Some(value), "{who}: {field} of {got}");
            }
            assert_eq!(got["sprints"], sent.sprints);
            assert_eq!(got["accelerations"], sent.accelerations);
            assert_eq!(got["decelerations"], sent.decelerations);
        }
        // A player's heatmap covers every fragment of the player (tracks 1 and 2: 2 × 16 s), a
        // team's every fragment of its players.
        let (_, p1) = get(
            &format!("{base}/v1/matches/{}/heatmap?player=1", match_of[own]),
            tok,
        );
        assert!(
            (p1["total_s"].as_f64().unwrap_or(0.0) - 32.0).abs() < 1e-9,
            "{p1}"
        );
        let team_a: usize = rig
            .players
            .iter()
            .filter(|p| p.team == "team_a")
            .map(|p| p.fragments.len())
            .sum();
        let (_, ta) = get(
            &format!("{base}/v1/matches/{}/heatmap?team=team_a", match_of[own]),
            tok,
        );
        assert!(
            (ta["total_s"].as_f64().unwrap_or(0.0) - 16.0 * team_a as f64).abs() < 1e-6,
            "{ta}"
        );
        let (status, _) = get(
            &format!("{base}/v1/matches/{}/heatmap?player=999", match_of[own]),
            tok,
        );
        assert_eq!(status, 404, "a player not in the summary");
        // The export: every row once, with its player.
        let (status, csv) = http(
            "GET",
            &format!("{base}/v1/matches/{}/export", match_of[own]),
            Some(tok.as_str()),
            b"",
        )
        .expect("export");
        assert_eq!(status, 200);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "\"frame\",\"time_s\",\"track\",\"player\",\"class\",\"x_m\",\"y_m\",\"confidence\""
        );
        assert_eq!(lines.len(), 1 + 400 * 23);
        // The same rows as Parquet, written by the service (18.16 cannot), read back.
        let (status, parquet) = svc
            .runtime()
            .block_on(async {
                let r = reqwest::Client::new()
                    .get(format!(
                        "{base}/v1/matches/{}/export?format=parquet",
                        match_of[own]
                    ))
                    .bearer_auth(tok.as_str())
                    .send()
                    .await?;
                Ok::<_, reqwest::Error>((r.status().as_u16(), r.bytes().await?))
            })
            .expect("parquet export");
        assert_eq!(status, 200);
        {
            use parquet::file::reader::{FileReader, SerializedFileReader};
            let reader = SerializedFileReader::new(parquet).expect("a Parquet file");
            assert_eq!(
                reader.metadata().file_metadata().num_rows(),
                400 * 23,
                "{who}: Parquet rows"
            );
            let players: Vec<String> = reader
                .get_row_iter(None)
                .expect("rows")
                .filter_map(Result::ok)
                .map(|r| r.to_string())
                .filter(|r| r.starts_with("{frame: 25,"))
                .collect();
            assert!(
                players.iter().any(|r| r.contains("track: 2, player: 1,")),
                "{who}: {players:?}"
            );
        }
        let rig_row = rows_of[own]
            .iter()
            .find(|r| r.track == 2 && r.frame == 25)
            .expect("rig row");
        let expected = format!(
            "25,1,2,1,1,{},{},",
            rig_row.x_cm as f64 / 100.0,
            rig_row.y_cm as f64 / 100.0
        );
        assert!(
            lines.iter().any(|l| l.starts_with(&expected)),
            "{who}: no export line starts with {expected}"
        );
    }
    println!("isolation matrix: {checked} requests, none crossed organisations");

    // Enrolment: coaches cannot, an admin only into its own organisation.
    let body = |org: &str| {
        serde_json::json!({
            "serial": "PV-NEW", "organization_id": org,
            "public_key": public_key_text(&SigningKey::from_bytes(&[9; 32]).verifying_key()),
        })
        .to_string()
    };
    let enrol_with = |tok: &str, org: &str| {
        http(
            "POST",
            &format!("{base}/v1/factory/devices"),
            Some(tok),
            body(org).as_bytes(),
        )
        .expect("enrol")
        .0
    };
    assert_eq!(enrol_with(&coach_a, ORG_A), 403);
    assert_eq!(enrol_with(&admin_a, ORG_B), 403);
    assert_eq!(enrol_with(&admin_a, ORG_A), 201);

    // Refused tokens.
    let b64 =
        |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
    let claims = coach_a.split('.').nth(1).expect("claims").to_string();
    let other_key_dir = dir.path().join("elsewhere");
    new_key(&other_key_dir, "k1").expect("stranger key");
    let stranger = std::fs::read(other_key_dir.join("k1.pem")).expect("pem");
    let now = polyvision_cloud_api::auth::now_s();
    let expired = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = Some("k1".into());
        jsonwebtoken::encode(
            &h,
            &serde_json::json!({"sub": "x", "org": ORG_A, "role": "coach", "aud": "polyvision-api", "exp": now - 3600}),
            &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("key"),
        )
        .expect("expired")
    };
    let jwk_n =
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&jwks).expect("jwks"))
            .expect("json")["keys"][0]["n"]
            .as_str()
            .expect("n")
            .to_string();
    let hs256 = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some("k1".into());
        jsonwebtoken::encode(
            &h,
            &serde_json::json!({"sub": "x", "org": ORG_A, "role": "coach", "aud": "polyvision-api", "exp": now + 3600}),
            &jsonwebtoken::EncodingKey::from_secret(jwk_n.as_bytes()),
        )
        .expect("hs256")
    };
    let wrong_aud = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = Some("k1".into());
        jsonwebtoken::encode(
            &h,
            &serde_json::json!({"sub": "x", "org": ORG_A, "role": "coach", "aud": "polyvision-ingest", "exp": now + 3600}),
            &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("key"),
        )
        .expect("aud")
    };
    let refused = [
        ("expired", expired),
        (
            "alg none",
            format!("{}.{claims}.", b64(br#"{"alg":"none","kid":"k1"}"#)),
        ),
        ("HS256 keyed with the public key", hs256),
        (
            "signed by a key not in the JWKS under a known kid",
            issue(
                &stranger,
                "k1",
                "x",
                Uuid::parse_str(ORG_A).expect("uuid"),
                Role::Admin,
                3600,
            )
            .expect("t"),
        ),
        (
            "unknown kid",
            issue(
                &pem,
                "k9",
                "x",
                Uuid::parse_str(ORG_A).expect("uuid"),
                Role::Coach,
                3600,
            )
            .expect("t"),
        ),
        ("wrong audience", wrong_aud),
        ("garbage", "not.a.token".into()),
    ];
    for (name, tok) in &refused {
        let (status, body) = get(&format!("{base}/v1/matches"), tok);
        println!(
            "{name:<52} → {status} {}",
            body["error"].as_str().unwrap_or("")
        );
        assert_eq!(status, 401, "{name}");
    }

    // Rotation without a restart: a new key is accepted once added, the old one refused once
    // removed.
    new_key(&keys, "k2").expect("key k2");
    let pem2 = std::fs::read(keys.join("k2.pem")).expect("pem2");
    let coach_a2 = issue(
        &pem2,
        "k2",
        "coach@club",
        Uuid::parse_str(ORG_A).expect("uuid"),
        Role::Coach,
        3600,
    )
    .expect("token k2");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        get(&format!("{base}/v1/matches"), &coach_a2).0,
        200,
        "new key accepted"
    );
    assert_eq!(
        get(&format!("{base}/v1/matches"), &coach_a).0,
        200,
        "old key still accepted"
    );
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&jwks).expect("jwks")).expect("json");
    doc["keys"]
        .as_array_mut()
        .expect("keys")
        .retain(|k| k["kid"] != "k1");
    std::fs::write(&jwks, doc.to_string()).expect("write jwks");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        get(&format!("{base}/v1/matches"), &coach_a).0,
        401,
        "old key retired"
    );
    assert_eq!(get(&format!("{base}/v1/matches"), &coach_a2).0, 200);
}
