//! A full match from the rig's SQLite buffer into ClickHouse, end to end on loopback: the
//! buffer, the uploader, the cloud service (in this process) and a real ClickHouse server.
//! Prints the wire size per row next to JSON lines and zstd-compressed JSON lines of the same
//! rows, the end-to-end time against the 10 s goal, the ingest's own rows per second, the rig's
//! match-end work (the summary) and the coaches' query times; fails if ClickHouse does not hold
//! exactly the buffer's rows or the cloud's summary differs from the rig's.
//!
//! `POLYVISION_SYNC_ROWS` changes the match size (default 4.5 million rows).

mod common;

use polyvision_cloud_api::testing::{ClickHouse, InProcessService, enrol, row_hash};
use polyvision_cloud_sync::identity::public_key_text;
use polyvision_cloud_sync::uploader::{Uploader, UploaderConfig};
use polyvision_edge::store::Store;
use polyvision_edge::track::finish::finish;
use polyvision_edge::track::metrics::MetricsConfig;
use polyvision_edge::track::tracker::Class;
use std::time::Instant;

const ADMIN: &str = "bench-admin-token-0123456789";

#[test]
fn a_full_match_goes_from_the_buffer_into_clickhouse() {
    let rows_wanted: usize = std::env::var("POLYVISION_SYNC_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_500_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let rows = common::match_rows(rows_wanted);
    let gen_s = t.elapsed().as_secs_f64();

    // The buffer, written the way the pipeline writes it: one transaction per second of match.
    let db = dir.path().join("buffer.db");
    let mut store = Store::open(&db).expect("buffer");
    let m = store.start_match(25.0, "{}").expect("match");
    let t = Instant::now();
    for chunk in rows.chunks(26 * 25) {
        store.append(m.seq, chunk).expect("append");
    }
    store.stop_match().expect("stop");
    let store_s = t.elapsed().as_secs_f64();

    // The end of the match on the rig: fragments linked, every track smoothed, metrics and
    // teams, kept in the buffer as the match summary (what the daemon does when a match stops).
    let points = common::track_points(&rows);
    let t = Instant::now();
    let finished = finish(points, 25.0, &MetricsConfig::default());
    let finish_s = t.elapsed().as_secs_f64();
    let summary = finished.summary(
        "PV-BENCH",
        &polyvision_edge::store::uuid_text(&m.uuid),
        m.started_ms,
        25.0,
    );
    store.save_summary(m.seq, &summary).expect("summary");

    // What the buffer holds, as it will travel: checksum, JSON lines, zstd of JSON lines.
    let mut source = Store::open_for_sync(&db).expect("sync connection");
    let (mut expected_sum, mut json_bytes, mut n) = (0u64, 0usize, 0u64);
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), 3).expect("zstd");
    let match_text = polyvision_edge::store::uuid_text(&m.uuid);
    let mut after = 0i64;
    loop {
        let chunk = store.unsynced(after, 100_000).expect("read");
        let Some(last) = chunk.last() else { break };
        after = last.0;
        for (_, _, p) in &chunk {
            // The buffer's integers, as the batches carry them.
            let r = polyvision_cloud_sync::wire::WireRow {
                frame: p.frame,
                track: p.track,
                x_cm: (p.x_m * 100.0).round() as i32,
                y_cm: (p.y_m * 100.0).round() as i32,
                class: p.class.mot() as u8,
                conf: (p.conf * 255.0).round() as u8,
            };
            expected_sum = expected_sum.wrapping_add(row_hash(&m.uuid, &r));
            let line = format!(
                "{{\"match_id\":\"{match_text}\",\"frame\":{},\"track\":{},\"class\":{},\"x_cm\":{},\"y_cm\":{},\"confidence\":{}}}\n",
                r.frame, r.track, r.class, r.x_cm, r.y_cm, r.conf
            );
            json_bytes += line.len();
            std::io::Write::write_all(&mut encoder, line.as_bytes()).expect("zstd");
            n += 1;
        }
    }
    let json_zstd_bytes = encoder.finish().expect("zstd").len();
    assert_eq!(n, rows_wanted as u64);

    // The cloud: ClickHouse and the service.
    let ch = ClickHouse::start().expect("ClickHouse");
    let jwks = polyvision_cloud_api::users::new_key(&dir.path().join("keys"), "k1").expect("keys");
    let service = InProcessService::start_with_users(&ch, dir.path(), "bench", ADMIN, Some(&jwks))
        .expect("service");
    let (rt, base) = (service.runtime(), service.url.clone());
    let (key, _) = polyvision_cloud_sync::identity::load_or_create(&dir.path().join("device.key"))
        .expect("device key");
    let org = "0190a1b2-0000-7000-8000-0000000000be";
    let status = enrol(
        &base,
        ADMIN,
        "PV-BENCH",
        &public_key_text(&key.verifying_key()),
        org,
    )
    .expect("enrol");
    assert_eq!(status, 201);

    // End to end: buffer → batches → HTTP → ClickHouse.
    let mut config = UploaderConfig::new(&base, "PV-BENCH");
    config.batch_rows = 100_000;
    let mut uploader = Uploader::new(config, key).expect("uploader");
    let t = Instant::now();
    let batches = rt.block_on(uploader.sync_all(&mut source)).expect("sync");
    let e2e_s = t.elapsed().as_secs_f64();
    let st = uploader.status().lock().expect("status").clone();
    let ingest_s = service.metric("polyvision_ingest_seconds_total_micros") / 1e6;

    let t = Instant::now();
    let stored = ch.stored("bench").expect("stored");
    let check_s = t.elapsed().as_secs_f64();
    let per_row = |b: usize| b as f64 / n as f64;
    println!(
        "match: {n} rows (26 objects × {} frames at 25 fps); generated in {gen_s:.1} s, written to the buffer in {store_s:.1} s",
        n / 26
    );
    println!(
        "wire size per row: batches {:.2} B ({:.1} MB), JSON lines {:.1} B ({:.1} MB), zstd(JSON lines) {:.2} B ({:.1} MB); batches are {:.0}x smaller than JSON, {:.2}x smaller than zstd JSON; goal <= 6 B/row",
        per_row(st.bytes_sent as usize),
        st.bytes_sent as f64 / 1e6,
        per_row(json_bytes),
        json_bytes as f64 / 1e6,
        per_row(json_zstd_bytes),
        json_zstd_bytes as f64 / 1e6,
        json_bytes as f64 / st.bytes_sent as f64,
        json_zstd_bytes as f64 / st.bytes_sent as f64,
    );
    println!(
        "at 10 Mbit/s the match uploads in {:.1} s (goal <= 25 s)",
        st.bytes_sent as f64 * 8.0 / 10e6
    );
    println!(
        "end to end, buffer to ClickHouse on loopback: {e2e_s:.2} s for {batches} batches ({:.0} rows/s; goal <= 10 s); ingest alone (verify, decode, insert): {ingest_s:.2} s ({:.0} rows/s); checksum query {check_s:.2} s",
        n as f64 / e2e_s,
        n as f64 / ingest_s.max(1e-9)
    );
    assert_eq!(
        stored,
        (n, expected_sum),
        "ClickHouse holds exactly the buffer's rows"
    );

    // What a coach asks of this match, timed through the HTTP API (median of 7).
    let pem = std::fs::read(dir.path().join("keys/k1.pem")).expect("pem");
    let coach = polyvision_cloud_api::users::issue(
        &pem,
        "k1",
        "coach@club",
        uuid::Uuid::parse_str(org).expect("org"),
        polyvision_cloud_api::users::Role::Coach,
        3600,
    )
    .expect("token");
    let timed = |path: &str| -> (f64, String) {
        let mut ms = Vec::new();
        let mut body = String::new();
        for _ in 0..7 {
            let t = Instant::now();
            let (status, b) = polyvision_cloud_api::testing::http(
                "GET",
                &format!("{base}{path}"),
                Some(&coach),
                b"",
            )
            .expect("request");
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(status, 200, "{path}: {b}");
            body = b;
        }
        ms.sort_by(f64::total_cmp);
        (ms[3], body)
    };
    let (list_ms, _) = timed("/v1/matches");
    let player = rows
        .iter()
        .find(|r| r.class == Class::Player)
        .map_or(1, |r| r.track);
    let (one_ms, one) = timed(&format!("/v1/matches/{match_text}/heatmap?track={player}"));
    let (all_ms, _) = timed(&format!("/v1/matches/{match_text}/heatmap?class=1"));
    let (player_ms, _) = timed(&format!("/v1/matches/{match_text}/heatmap?player={player}"));
    let (team_ms, team) = timed(&format!("/v1/matches/{match_text}/heatmap?team=team_a"));
    let (summary_ms, answer) = timed(&format!("/v1/matches/{match_text}/summary"));
    let one: serde_json::Value = serde_json::from_str(&one).expect("json");
    let team: serde_json::Value = serde_json::from_str(&team).expect("json");
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("json");
    println!(
        "match end on the rig (link fragments, smooth {} tracks, metrics, teams): {finish_s:.1} s for {n} positions",
        finished.metrics.len()
    );
    println!(
        "coach queries on this match: heatmap of one player {one_ms:.0} ms by track, {player_ms:.0} ms by summary player (goal <= 50 ms; {:.0} s on the pitch), one team {team_ms:.0} ms ({:.0} player-seconds), all outfield players {all_ms:.0} ms, match summary of all {} players {summary_ms:.0} ms (goal <= 200 ms), match list {list_ms:.0} ms",
        one["total_s"].as_f64().unwrap_or(0.0),
        team["total_s"].as_f64().unwrap_or(0.0),
        answer["players"].as_array().map_or(0, Vec::len)
    );
    // The whole match as files (once each: these are large).
    let export = |format: &str| {
        let t = Instant::now();
        let (status, body) = rt
            .block_on(async {
                let r = reqwest::Client::new()
                    .get(format!(
                        "{base}/v1/matches/{match_text}/export?format={format}"
                    ))
                    .bearer_auth(&coach)
                    .send()
                    .await?;
                Ok::<_, reqwest::Error>((r.status().as_u16(), r.bytes().await?))
            })
            .expect("export");
        assert_eq!(status, 200, "{format} export");
        (t.elapsed().as_secs_f64(), body.len())
    };
    let (csv_s, csv_bytes) = export("csv");
    let (parquet_s, parquet_bytes) = export("parquet");
    println!(
        "export of the match: CSV {csv_s:.1} s ({:.0} MB), Parquet {parquet_s:.1} s ({:.0} MB)",
        csv_bytes as f64 / 1e6,
        parquet_bytes as f64 / 1e6
    );
    // The cloud's numbers are the rig's, to the last bit.
    let players = answer["players"].as_array().expect("players");
    assert_eq!(players.len(), summary.players.len());
    for (got, sent) in players.iter().zip(&summary.players) {
        assert_eq!(got["player"], sent.player);
        assert_eq!(got["distance_m"].as_f64(), Some(sent.distance_m));
        assert_eq!(got["top_speed_mps"].as_f64(), Some(sent.top_speed_mps));
        assert_eq!(got["sprints"], sent.sprints);
    }
    // A team's map counts every row of every fragment of its players, once.
    let team_tracks: std::collections::HashSet<u32> = summary
        .players
        .iter()
        .filter(|p| p.team == "team_a")
        .flat_map(|p| p.fragments.iter().copied())
        .collect();
    let team_rows = rows
        .iter()
        .filter(|r| team_tracks.contains(&r.track))
        .count();
    assert!(
        team_rows > 0,
        "no team_a among {} players",
        summary.players.len()
    );
    assert!(
        (team["total_s"].as_f64().unwrap_or(0.0) - team_rows as f64 / 25.0).abs() < 1e-6,
        "team_a: {team} vs {team_rows} rows"
    );
    assert_eq!(st.rows_sent, n);
    let (_, unsynced) = source.counts().expect("counts");
    assert_eq!(unsynced, 0);
}
