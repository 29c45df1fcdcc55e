//! `polyvision-edge bench-store` and `store-stress`.

use anyhow::{Result, bail};
use polyvision_edge::store::{PositionRow, Store};
use polyvision_edge::track::tracker::Class;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// A plausible row: 25 people over the pitch, frame by frame.
fn row(i: u64) -> PositionRow {
    let (frame, track) = ((i / 25) as u32, (i % 25) as u32 + 1);
    let t = frame as f64 / 25.0;
    PositionRow {
        frame,
        track,
        x_m: 40.0 * (0.05 * t + track as f64).sin(),
        y_m: 25.0 * (0.07 * t + 2.0 * track as f64).cos(),
        class: if track == 23 {
            Class::Referee
        } else {
            Class::Player
        },
        conf: 0.5 + 0.4 * ((i % 7) as f32 / 7.0),
    }
}

/// Stores `rows` rows in batches of one second of a match (25 frames × 25 people); prints the
/// time and the bytes per row on disk.
pub(crate) fn bench(path: &Path, rows: u64) -> Result<()> {
    if path.exists() {
        bail!("{} exists; the benchmark wants a new file", path.display());
    }
    let mut store = Store::open(path)?;
    let m = store.start_match(25.0, "{}")?;
    let batch = 625u64;
    let started = Instant::now();
    let mut buf = Vec::with_capacity(batch as usize);
    let mut i = 0;
    while i < rows {
        buf.clear();
        buf.extend((i..(i + batch).min(rows)).map(row));
        store.append(m.seq, &buf)?;
        i += batch;
    }
    let took = started.elapsed().as_secs_f64();
    store.stop_match()?;
    store.checkpoint()?;
    let bytes = std::fs::metadata(path)?.len();
    println!(
        "{}",
        serde_json::json!({
            "bench": "store",
            "rows": rows,
            "seconds": took,
            "rows_per_s": rows as f64 / took,
            "bytes_on_disk": bytes,
            "bytes_per_row": bytes as f64 / rows as f64,
            "transactions": rows.div_ceil(batch),
        })
    );
    Ok(())
}

/// Appends deterministic rows in small transactions forever (or `batches` of them), printing
/// `committed N` after each commit: the crash test kills it and checks the database.
pub(crate) fn stress(path: &Path, batches: u64, batch: u64) -> Result<()> {
    let mut store = Store::open(path)?;
    let m = match store.running()? {
        Some(m) => m,
        None => store.start_match(25.0, "{}")?,
    };
    let (mut total, _) = store.counts()?;
    let mut out = std::io::stdout().lock();
    for _ in 0..batches {
        let rows: Vec<PositionRow> = (total as u64..total as u64 + batch).map(row).collect();
        store.append(m.seq, &rows)?;
        total += batch as i64;
        writeln!(out, "committed {total}")?;
        out.flush()?;
    }
    Ok(())
}
