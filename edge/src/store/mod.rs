//! The rig's buffer: tracked positions in SQLite until the cloud has them.
//!
//! One file, WAL journal, `synchronous = FULL` (a committed transaction survives a power cut,
//! not only a crash). Rows are appended in batched transactions; the row id is the sync cursor
//! (batches are id ranges). Rows are compact — positions quantised to centimetres, class and
//! confidence in one integer, no secondary index — which is about 20–25 bytes per row on disk.
//!
//! The schema carries its version in `PRAGMA user_version` and is migrated forward on open; a
//! database written by a newer version is refused and left untouched.
//!
//! When a match ends, the rig's summary of it (every player's metrics, see
//! `polyvision_cloud_sync::summary`) is kept beside it until the cloud has it.
//!
//! Matches are first-class: a match has a UUIDv7 (time-ordered, made on the rig), start and
//! stop times, its frame rate and free metadata. A match still open when the daemon starts
//! (power was cut mid-match) is **closed**, not resumed: it is stopped at its last stored row and
//! marked `"interrupted": true` in its metadata, and recording continues as a new match — a
//! match's rows then never mix two recordings.

mod sync_source;

use crate::track::tracker::Class;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// Schema version this build writes.
pub const SCHEMA_VERSION: i64 = 3;

/// Errors of the buffer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The database was written by a newer version.
    #[error(
        "{path}: schema version {found} is newer than this build's ({SCHEMA_VERSION}); upgrade the software — the database was not changed"
    )]
    Newer {
        /// The database.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// A request that does not fit the data.
    #[error("{0}")]
    Invalid(String),
}

/// One tracked position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionRow {
    /// Frame number within the match.
    pub frame: u32,
    /// Track id.
    pub track: u32,
    /// Pitch position, metres.
    pub x_m: f64,
    /// Pitch position, metres.
    pub y_m: f64,
    /// Class.
    pub class: Class,
    /// Detection confidence 0–1 (0 when the track coasted).
    pub conf: f32,
}

/// A match.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchInfo {
    /// Local number, used by rows.
    pub seq: i64,
    /// UUIDv7.
    pub uuid: [u8; 16],
    /// Start, ms since 1970.
    pub started_ms: i64,
    /// Stop, ms since 1970.
    pub stopped_ms: Option<i64>,
    /// Frames per second.
    pub fps: f64,
    /// JSON metadata.
    pub metadata: String,
}

/// A UUIDv7: 48 bits of Unix milliseconds, version 7, 74 random bits, RFC 9562 variant.
pub fn uuid_v7(unix_ms: u64) -> Result<[u8; 16], StoreError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b[6..])
        .map_err(|e| StoreError::Invalid(format!("no randomness for a match id: {e}")))?;
    b[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    b[6] = 0x70 | (b[6] & 0x0F);
    b[8] = 0x80 | (b[8] & 0x3F);
    Ok(b)
}

/// The canonical text of a UUID.
pub fn uuid_text(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The buffer.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const MIGRATIONS: [&str; 3] = [
    "
    CREATE TABLE matches (
        seq INTEGER PRIMARY KEY,
        uuid BLOB NOT NULL UNIQUE,
        started_ms INTEGER NOT NULL,
        stopped_ms INTEGER,
        fps REAL NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE positions (
        id INTEGER PRIMARY KEY,
        match_seq INTEGER NOT NULL,
        frame INTEGER NOT NULL,
        track INTEGER NOT NULL,
        x_cm INTEGER NOT NULL,
        y_cm INTEGER NOT NULL,
        class_conf INTEGER NOT NULL
    );
    CREATE TABLE sync (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    INSERT INTO sync (key, value) VALUES ('acknowledged', 0);
",
    "
    CREATE TABLE quarantine (
        first_row INTEGER NOT NULL,
        last_row INTEGER NOT NULL,
        reason TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
",
    "
    CREATE TABLE summaries (
        match_seq INTEGER PRIMARY KEY,
        body TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'refused')),
        reason TEXT
    );
",
];

impl Store {
    /// Opens (creating or migrating) the database at `path`, closing a match left open by a
    /// power cut. For the match runner; the uploader uses [`Store::open_for_sync`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut store = Self::open_migrated(path)?;
        store.close_interrupted()?;
        Ok(store)
    }

    /// Opens a second connection to a buffer the daemon is recording into: migrated, but a
    /// running match is left alone.
    pub fn open_for_sync(path: &Path) -> Result<Self, StoreError> {
        Self::open_migrated(path)
    }

    fn open_migrated(path: &Path) -> Result<Self, StoreError> {
        let sql = |source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(sql)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Newer {
                path: path.to_owned(),
                found: version,
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
        };
        for (v, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = store.conn.transaction().map_err(sql)?;
            tx.execute_batch(step).map_err(sql)?;
            tx.pragma_update(None, "user_version", v as i64 + 1)
                .map_err(sql)?;
            tx.commit().map_err(sql)?;
        }
        Ok(store)
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Closes matches left open by a crash or power cut (see the module doc).
    fn close_interrupted(&mut self) -> Result<(), StoreError> {
        let open: Vec<(i64, String)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT seq, metadata FROM matches WHERE stopped_ms IS NULL")
                .map_err(|e| self.sql(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.sql(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))?
        };
        for (seq, metadata) in open {
            let mut meta: serde_json::Value =
                serde_json::from_str(&metadata).unwrap_or_else(|_| serde_json::json!({}));
            if let Some(obj) = meta.as_object_mut() {
                obj.insert("interrupted".into(), serde_json::Value::Bool(true));
            }
            self.conn
                .execute(
                    "UPDATE matches SET stopped_ms = ?2, metadata = ?3 WHERE seq = ?1",
                    params![seq, now_ms(), meta.to_string()],
                )
                .map_err(|e| self.sql(e))?;
            tracing::warn!(
                match_seq = seq,
                "a match was still open at start (power cut?): closed as interrupted"
            );
        }
        Ok(())
    }

    /// Starts a match.
    pub fn start_match(&mut self, fps: f64, metadata: &str) -> Result<MatchInfo, StoreError> {
        if serde_json::from_str::<serde_json::Value>(metadata).is_err() {
            return Err(StoreError::Invalid(format!(
                "match metadata is not JSON: {metadata}"
            )));
        }
        if self.running()?.is_some() {
            return Err(StoreError::Invalid(
                "a match is already running; stop it first".into(),
            ));
        }
        let started_ms = now_ms();
        let uuid = uuid_v7(started_ms as u64)?;
        self.conn
            .execute(
                "INSERT INTO matches (uuid, started_ms, fps, metadata) VALUES (?1, ?2, ?3, ?4)",
                params![uuid.as_slice(), started_ms, fps, metadata],
            )
            .map_err(|e| self.sql(e))?;
        Ok(MatchInfo {
            seq: self.conn.last_insert_rowid(),
            uuid,
            started_ms,
            stopped_ms: None,
            fps,
            metadata: metadata.to_string(),
        })
    }

    /// Stops the running match.
    pub fn stop_match(&mut self) -> Result<Option<MatchInfo>, StoreError> {
        let Some(mut m) = self.running()? else {
            return Ok(None);
        };
        let stopped = now_ms();
        self.conn
            .execute(
                "UPDATE matches SET stopped_ms = ?2 WHERE seq = ?1",
                params![m.seq, stopped],
            )
            .map_err(|e| self.sql(e))?;
        m.stopped_ms = Some(stopped);
        Ok(Some(m))
    }

    /// The match being recorded, if any.
    pub fn running(&self) -> Result<Option<MatchInfo>, StoreError> {
        self.conn
            .query_row(
                "SELECT seq, uuid, started_ms, stopped_ms, fps, metadata FROM matches WHERE stopped_ms IS NULL ORDER BY seq DESC LIMIT 1",
                [],
                |r| {
                    let uuid: Vec<u8> = r.get(1)?;
                    let mut u = [0u8; 16];
                    if uuid.len() == 16 {
                        u.copy_from_slice(&uuid);
                    }
                    Ok(MatchInfo {
                        seq: r.get(0)?,
                        uuid: u,
                        started_ms: r.get(2)?,
                        stopped_ms: r.get(3)?,
                        fps: r.get(4)?,
                        metadata: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Appends rows to match `match_seq` in one transaction; returns the id of the last row.
    pub fn append(&mut self, match_seq: i64, rows: &[PositionRow]) -> Result<i64, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO positions (match_seq, frame, track, x_cm, y_cm, class_conf) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql)?;
            for r in rows {
                let conf = (r.conf.clamp(0.0, 1.0) * 255.0).round() as i64;
                stmt.execute(params![
                    match_seq,
                    r.frame,
                    r.track,
                    (r.x_m * 100.0).round() as i64,
                    (r.y_m * 100.0).round() as i64,
                    (r.class.mot() << 8) | conf,
                ])
                .map_err(sql)?;
            }
        }
        let last = tx.last_insert_rowid();
        tx.commit().map_err(sql)?;
        Ok(last)
    }

    /// Rows after id `after` (at most `limit`), oldest first: what the uploader sends next.
    pub fn unsynced(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, i64, PositionRow)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, match_seq, frame, track, x_cm, y_cm, class_conf FROM positions WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![after, limit as i64], |r| {
                let cc: i64 = r.get(6)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    PositionRow {
                        frame: r.get(2)?,
                        track: r.get(3)?,
                        x_m: r.get::<_, i64>(4)? as f64 / 100.0,
                        y_m: r.get::<_, i64>(5)? as f64 / 100.0,
                        class: Class::from_mot(cc >> 8).unwrap_or(Class::Player),
                        conf: (cc & 255) as f32 / 255.0,
                    },
                ))
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Records that the cloud has every row up to id `upto`.
    pub fn acknowledge(&mut self, upto: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE sync SET value = max(value, ?1) WHERE key = 'acknowledged'",
                params![upto],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Deletes acknowledged rows of matches stopped more than `retention_ms` ago; never a row
    /// the cloud has not acknowledged, nor a quarantined one. Returns how many were deleted.
    pub fn purge(&mut self, retention_ms: i64) -> Result<usize, StoreError> {
        let cutoff = now_ms() - retention_ms;
        self.conn
            .execute(
                "DELETE FROM positions WHERE id <= (SELECT value FROM sync WHERE key = 'acknowledged')
                 AND match_seq IN (SELECT seq FROM matches WHERE stopped_ms IS NOT NULL AND stopped_ms < ?1)
                 AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE positions.id BETWEEN q.first_row AND q.last_row)",
                params![cutoff],
            )
            .map_err(|e| self.sql(e))
    }

    /// Number of rows, and of rows not yet acknowledged.
    pub fn counts(&self) -> Result<(i64, i64), StoreError> {
        self.conn
            .query_row(
                "SELECT count(*), count(*) FILTER (WHERE id > (SELECT value FROM sync WHERE key = 'acknowledged')) FROM positions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.sql(e))
    }

    /// Folds the WAL into the database file (for measuring its size).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(frame: u32, track: u32) -> PositionRow {
        PositionRow {
            frame,
            track,
            x_m: -12.345,
            y_m: 33.3,
            class: Class::Goalkeeper,
            conf: 0.8,
        }
    }

    #[test]
    fn rows_round_trip_and_acknowledged_ones_are_the_only_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("buffer.db");
        let mut s = Store::open(&path).expect("open");
        let m = s.start_match(25.0, r#"{"home":"A"}"#).expect("start");
        assert_eq!(m.uuid[6] >> 4, 7, "UUIDv7");
        assert!(s.start_match(25.0, "{}").is_err(), "one match at a time");
        let last = s
            .append(m.seq, &(0..100).map(|f| row(f, 3)).collect::<Vec<_>>())
            .expect("append");
        assert_eq!(last, 100);
        let back = s.unsynced(0, 10).expect("read");
        assert_eq!(back.len(), 10);
        let r = back[0].2;
        assert_eq!((r.x_m, r.y_m, r.class), (-12.35, 33.3, Class::Goalkeeper));
        assert!((r.conf - 0.8).abs() < 0.003);
        s.stop_match().expect("stop");
        s.acknowledge(40).expect("ack");
        assert_eq!(s.purge(-1000).expect("purge"), 40);
        assert_eq!(s.counts().expect("counts"), (60, 60));
    }

    #[test]
    fn an_open_match_is_closed_as_interrupted_and_newer_databases_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("buffer.db");
        {
            let mut s = Store::open(&path).expect("open");
            s.start_match(25.0, "{}").expect("start");
        }
        let s = Store::open(&path).expect("reopen");
        assert!(s.running().expect("running").is_none());
        let meta: String = s
            .conn
            .query_row("SELECT metadata FROM matches", [], |r| r.get(0))
            .expect("meta");
        assert!(meta.contains("\"interrupted\":true"), "{meta}");
        s.conn
            .pragma_update(None, "user_version", 99)
            .expect("bump");
        drop(s);
        let before = std::fs::read(&path).expect("read");
        let err = Store::open(&path).err().expect("refused");
        assert!(
            err.to_string().contains("schema version 99 is newer"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&path).expect("read"),
            before,
            "the database was changed"
        );
    }
}
