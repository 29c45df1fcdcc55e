//! The buffer as the uploader's row source: batches are id ranges after the acknowledged
//! cursor, cut where a match ends; quarantined ranges are recorded and kept. Match summaries
//! wait in their own table, one per match, until delivered (or refused: then kept and marked).

use super::{Store, now_ms};
use polyvision_cloud_sync::summary::MatchSummary;
use polyvision_cloud_sync::uploader::{PendingBatch, RowSource};
use polyvision_cloud_sync::wire::WireRow;
use rusqlite::{OptionalExtension as _, params};

impl Store {
    /// The acknowledged cursor.
    pub fn acknowledged(&self) -> Result<i64, super::StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM sync WHERE key = 'acknowledged'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))
    }

    /// Quarantined ranges: (first row, last row, reason).
    pub fn quarantined(&self) -> Result<Vec<(i64, i64, String)>, super::StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT first_row, last_row, reason FROM quarantine ORDER BY first_row")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Keeps a finished match's summary until the cloud has it (a second one replaces it).
    pub fn save_summary(
        &mut self,
        match_seq: i64,
        summary: &MatchSummary,
    ) -> Result<(), super::StoreError> {
        let body = serde_json::to_string(summary)
            .map_err(|e| super::StoreError::Invalid(format!("match summary: {e}")))?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO summaries (match_seq, body, state) VALUES (?1, ?2, 'pending')",
                params![match_seq, body],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Summaries by state: (match seq, state, reason).
    pub fn summaries(&self) -> Result<Vec<(i64, String, Option<String>)>, super::StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT match_seq, state, reason FROM summaries ORDER BY match_seq")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    fn pending(&self, max_rows: usize) -> Result<Option<PendingBatch>, super::StoreError> {
        let after = self.acknowledged()?;
        let first: Option<(i64,)> = self
            .conn
            .query_row(
                "SELECT match_seq FROM positions WHERE id > ?1 ORDER BY id LIMIT 1",
                params![after],
                |r| Ok((r.get(0)?,)),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        let Some((match_seq,)) = first else {
            return Ok(None);
        };
        let (uuid, started_ms, fps): (Vec<u8>, i64, f64) = self
            .conn
            .query_row(
                "SELECT uuid, started_ms, fps FROM matches WHERE seq = ?1",
                params![match_seq],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| self.sql(e))?;
        let match_id: [u8; 16] = uuid.as_slice().try_into().map_err(|_| {
            super::StoreError::Invalid(format!("match {match_seq} has a malformed id"))
        })?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, frame, track, x_cm, y_cm, class_conf FROM positions
                 WHERE id > ?1 AND match_seq = ?2 ORDER BY id LIMIT ?3",
            )
            .map_err(|e| self.sql(e))?;
        let mut ids = Vec::with_capacity(max_rows);
        let mut rows = Vec::with_capacity(max_rows);
        let mut query = stmt
            .query(params![after, match_seq, max_rows as i64])
            .map_err(|e| self.sql(e))?;
        // Another match's row in between would end the batch; rows are appended per match, so
        // the ids of one match are contiguous and this never happens in practice.
        while let Some(r) = query.next().map_err(|e| self.sql(e))? {
            let cc: i64 = r.get(5).map_err(|e| self.sql(e))?;
            let get = |i| r.get::<_, i64>(i).map_err(|e| self.sql(e));
            ids.push(get(0)?);
            rows.push(WireRow {
                frame: get(1)? as u32,
                track: get(2)? as u32,
                x_cm: get(3)? as i32,
                y_cm: get(4)? as i32,
                class: (cc >> 8) as u8,
                conf: (cc & 255) as u8,
            });
        }
        drop(query);
        let (Some(&first_row), Some(&last_row)) = (ids.first(), ids.last()) else {
            return Ok(None);
        };
        Ok(Some(PendingBatch {
            match_id,
            match_started_ms: started_ms,
            fps_milli: (fps * 1000.0).round().max(1.0) as u32,
            first_row: first_row as u64,
            last_row: last_row as u64,
            rows,
        }))
    }
}

impl RowSource for Store {
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<PendingBatch>, String> {
        self.pending(max_rows).map_err(|e| e.to_string())
    }

    fn acknowledge(&mut self, last_row: u64) -> Result<(), String> {
        Store::acknowledge(self, last_row as i64).map_err(|e| e.to_string())
    }

    fn quarantine(&mut self, batch: &PendingBatch, reason: &str) -> Result<(), String> {
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO quarantine (first_row, last_row, reason, at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![
                batch.first_row as i64,
                batch.last_row as i64,
                reason,
                now_ms()
            ],
        )
        .map_err(|e| e.to_string())?;
        tx.execute(
            "UPDATE sync SET value = max(value, ?1) WHERE key = 'acknowledged'",
            params![batch.last_row as i64],
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())
    }

    fn backlog(&mut self) -> Result<u64, String> {
        // Ids after the cursor are contiguous (appends only; purges stay below the cursor), so
        // the newest id minus the cursor is the backlog — a lookup, where counting would scan
        // the whole table before every batch.
        let newest: i64 = self
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM positions", [], |r| {
                r.get(0)
            })
            .map_err(|e| e.to_string())?;
        let acknowledged = self.acknowledged().map_err(|e| e.to_string())?;
        Ok((newest - acknowledged).max(0) as u64)
    }

    fn next_summary(&mut self) -> Result<Option<(i64, MatchSummary)>, String> {
        let found: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT match_seq, body FROM summaries WHERE state = 'pending' ORDER BY match_seq LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| e.to_string())?;
        let Some((seq, body)) = found else {
            return Ok(None);
        };
        match serde_json::from_str::<MatchSummary>(&body) {
            Ok(s) => Ok(Some((seq, s))),
            Err(e) => {
                // A damaged row must not block the ones after it: mark it and go on.
                let reason = format!("stored summary of match {seq} is unreadable: {e}");
                tracing::error!(%reason, "match summary not sent");
                self.summary_done(seq, Some(&reason))?;
                self.next_summary()
            }
        }
    }

    fn summary_done(&mut self, key: i64, refused: Option<&str>) -> Result<(), String> {
        self.conn
            .execute(
                "UPDATE summaries SET state = ?2, reason = ?3 WHERE match_seq = ?1",
                params![
                    key,
                    if refused.is_some() { "refused" } else { "sent" },
                    refused
                ],
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PositionRow;
    use crate::track::tracker::Class;

    #[test]
    fn batches_follow_the_cursor_and_stop_at_a_match_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Store::open(&dir.path().join("b.db")).expect("open");
        let row = |frame, track| PositionRow {
            frame,
            track,
            x_m: 12.34,
            y_m: -5.0,
            class: Class::Ball,
            conf: 0.5,
        };
        let m1 = s.start_match(25.0, "{}").expect("m1");
        s.append(m1.seq, &[row(0, 1), row(0, 2), row(1, 1)])
            .expect("rows");
        s.stop_match().expect("stop");
        let m2 = s.start_match(30.0, "{}").expect("m2");
        s.append(m2.seq, &[row(0, 7)]).expect("rows");
        let b = s.next_batch(10).expect("next").expect("a batch");
        assert_eq!((b.first_row, b.last_row, b.rows.len()), (1, 3, 3));
        assert_eq!(b.match_id, m1.uuid);
        assert_eq!(b.fps_milli, 25_000);
        assert_eq!(
            b.rows[0],
            WireRow {
                frame: 0,
                track: 1,
                x_cm: 1234,
                y_cm: -500,
                class: 4,
                conf: 128
            }
        );
        assert_eq!(s.backlog().expect("backlog"), 4);
        RowSource::acknowledge(&mut s, 3).expect("ack");
        let b = s.next_batch(10).expect("next").expect("second");
        assert_eq!((b.first_row, b.last_row, b.fps_milli), (4, 4, 30_000));
        s.quarantine(&b, "HTTP 400: test").expect("quarantine");
        assert!(s.next_batch(10).expect("next").is_none());
        assert_eq!(s.quarantined().expect("q").len(), 1);
        // Quarantined rows survive the purge even when acknowledged and old.
        s.stop_match().expect("stop");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(s.purge(0).expect("purge"), 3);
        assert_eq!(s.counts().expect("counts").0, 1);
    }

    #[test]
    fn summaries_wait_until_delivered_and_a_refused_one_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Store::open(&dir.path().join("b.db")).expect("open");
        let summary = |match_id: &str| MatchSummary {
            serial: "PV-1".into(),
            match_id: match_id.into(),
            match_started_ms: 1,
            fps: 25.0,
            players: vec![],
        };
        s.save_summary(1, &summary("a")).expect("save");
        s.save_summary(2, &summary("b")).expect("save");
        let (k, first) = s.next_summary().expect("next").expect("one");
        assert_eq!((k, first.match_id.as_str()), (1, "a"));
        s.summary_done(1, None).expect("done");
        let (k, _) = s.next_summary().expect("next").expect("two");
        s.summary_done(k, Some("HTTP 400: bad")).expect("refused");
        assert!(s.next_summary().expect("next").is_none());
        assert_eq!(
            s.summaries().expect("list"),
            vec![
                (1, "sent".to_string(), None),
                (2, "refused".to_string(), Some("HTTP 400: bad".to_string()))
            ]
        );
    }
}
