//! Crash safety of the SQLite buffer: a writer is killed with SIGKILL at 50 random moments;
//! after each kill the database opens, every row whose commit was reported is there, and no row
//! is stored twice.

use polyvision_edge::store::Store;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn killing_the_writer_never_loses_or_duplicates_a_committed_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("buffer.db");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random_ms = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        5 + seed % 120
    };
    let mut reported = 0i64;
    for round in 0..50 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_polyvision-edge"))
            .args(["store-stress", "--db"])
            .arg(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the writer");
        let stdout = child.stdout.take().expect("stdout");
        let deadline = Instant::now() + Duration::from_millis(random_ms());
        // Read commits on another thread so the kill comes at the chosen moment, not between
        // lines.
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line
                    .strip_prefix("committed ")
                    .and_then(|n| n.parse::<i64>().ok())
                {
                    last = Some(n);
                }
            }
            last
        });
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        if let Some(n) = reader.join().expect("reader") {
            reported = reported.max(n);
        }
        let store = Store::open(&db)
            .unwrap_or_else(|e| panic!("round {round}: the database does not open: {e}"));
        let (rows, _) = store.counts().expect("counts");
        assert!(
            rows >= reported,
            "round {round}: {rows} rows stored, {reported} reported committed"
        );
        drop(store);
        let conn = rusqlite::Connection::open(&db).expect("open");
        let (n, max_id, distinct): (i64, i64, i64) = conn
            .query_row(
                "SELECT count(*), coalesce(max(id), 0), count(DISTINCT frame * 1000 + track) FROM positions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("query");
        assert_eq!(n, max_id, "round {round}: row ids have gaps");
        assert_eq!(n, distinct, "round {round}: a row was stored twice");
        reported = reported.max(n);
    }
    assert!(reported > 0, "the writer never committed");
    println!("50 kills: {reported} rows, none lost, none duplicated");
}
