//! The coaches' page in a real browser, on a match whose numbers the rig computed: a procedural
//! match (the simulator's motion, 3 minutes, 22 players, 3 officials, the ball) goes into the
//! rig's buffer, the rig's match end (fragments linked, trajectories smoothed, metrics, teams)
//! writes `metrics.csv` as the demo does and keeps the summary; the uploader sends rows and
//! summary to the cloud service and ClickHouse; then headless Chromium (Debian's, driven by
//! `tests/web/coaches-page.test.mjs`) signs in with a coach token, opens the match, plays the
//! replay, shows heatmaps, sorts the table, compares every number on the page with the rig's
//! `metrics.csv`, and saves screenshots.
//!
//! Needs node and `npm ci` in `tests/web` (scripts/test.sh, group `web`, does both).

mod common;

use polyvision_cloud_api::testing::{ClickHouse, InProcessService, enrol};
use polyvision_cloud_sync::identity::public_key_text;
use polyvision_cloud_sync::uploader::{Uploader, UploaderConfig};
use polyvision_edge::store::{Store, uuid_text};
use polyvision_edge::track::finish::finish;
use polyvision_edge::track::metrics::{CSV_HEADER, MetricsConfig};
use polyvision_edge::track::tracker::Class;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

const ADMIN: &str = "page-test-admin-token-0123456789";
const ORG: &str = "0190a1b2-0000-7000-8000-0000000000c0";

#[test]
fn the_coaches_page_shows_the_rigs_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let artifacts = std::env::var("POLYVISION_ARTIFACTS")
        .map_or_else(|_| root.join("target/test-artifacts"), Into::into);
    std::fs::create_dir_all(&artifacts).expect("artifacts folder");

    // The rig: a match in the buffer, finished the way the daemon finishes one.
    let rows = common::match_rows(26 * 25 * 180);
    let db = dir.path().join("buffer.db");
    let mut store = Store::open(&db).expect("buffer");
    let m = store.start_match(25.0, "{}").expect("match");
    for chunk in rows.chunks(26 * 25) {
        store.append(m.seq, chunk).expect("append");
    }
    store.stop_match().expect("stop");
    let finished = finish(common::track_points(&rows), 25.0, &MetricsConfig::default());
    let match_id = uuid_text(&m.uuid);
    store
        .save_summary(
            m.seq,
            &finished.summary("PV-PAGE", &match_id, m.started_ms, 25.0),
        )
        .expect("summary");
    let metrics_csv = dir.path().join("metrics.csv");
    let mut f = std::fs::File::create(&metrics_csv).expect("metrics.csv");
    writeln!(f, "{CSV_HEADER}").expect("write");
    for r in finished.metrics.iter().filter(|r| r.class != Class::Ball) {
        let team = finished.teams.get(&r.id).map_or("unknown", |t| t.name());
        writeln!(f, "{}", r.csv(team)).expect("write");
    }
    drop(f);

    // The cloud, and the rig's uploader sending everything.
    let ch = ClickHouse::start().expect("ClickHouse");
    let jwks = polyvision_cloud_api::users::new_key(&dir.path().join("keys"), "k1").expect("keys");
    let service = InProcessService::start_with_users(&ch, dir.path(), "page", ADMIN, Some(&jwks))
        .expect("service");
    let (key, _) = polyvision_cloud_sync::identity::load_or_create(&dir.path().join("device.key"))
        .expect("device key");
    let status = enrol(
        &service.url,
        ADMIN,
        "PV-PAGE",
        &public_key_text(&key.verifying_key()),
        ORG,
    )
    .expect("enrol");
    assert_eq!(status, 201);
    let mut uploader =
        Uploader::new(UploaderConfig::new(&service.url, "PV-PAGE"), key).expect("uploader");
    let mut source = Store::open_for_sync(&db).expect("sync connection");
    service
        .runtime()
        .block_on(uploader.sync_all(&mut source))
        .expect("sync");
    assert_eq!(
        uploader.status().lock().expect("status").summaries_sent,
        1,
        "the summary went"
    );

    let pem = std::fs::read(dir.path().join("keys/k1.pem")).expect("pem");
    let coach = polyvision_cloud_api::users::issue(
        &pem,
        "k1",
        "coach@club.example",
        uuid::Uuid::parse_str(ORG).expect("org"),
        polyvision_cloud_api::users::Role::Coach,
        3600,
    )
    .expect("token");

    // The browser.
    let web = root.join("tests/web");
    let out = Command::new("node")
        .args(["--test", "coaches-page.test.mjs"])
        .current_dir(&web)
        .env("POLYVISION_CLOUD", &service.url)
        .env("POLYVISION_TOKEN", &coach)
        .env("POLYVISION_MATCH", &match_id)
        .env("POLYVISION_EDGE_METRICS", &metrics_csv)
        .env("POLYVISION_ARTIFACTS", &artifacts)
        .output()
        .expect("run node (Debian nodejs; `npm ci` in tests/web)");
    // Prefixed, so that the suite's tally counts this test once, not node's lines again.
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("browser: {line}");
    }
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        eprintln!("browser: {line}");
    }
    assert!(out.status.success(), "the browser test failed");
}
