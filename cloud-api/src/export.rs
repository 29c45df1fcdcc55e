//! A match's positions as a file for coaches' own tools: CSV straight from ClickHouse, Parquet
//! written here (ClickHouse writes Parquet only from 19.x on; Debian ships 18.16), so both
//! formats work on every supported server and carry the same columns.

use axum::body::Bytes;
use clickhouse::Row;
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{DoubleType, Int32Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde::Deserialize;
use std::sync::Arc;

/// One exported position (the columns of `queries/export.sql`).
#[derive(Debug, Clone, Row, Deserialize, PartialEq)]
pub struct ExportRow {
    /// Frame number.
    pub frame: u32,
    /// Seconds since the match start.
    pub time_s: f64,
    /// The tracker's track id.
    pub track: u32,
    /// The player the track belongs to (0 before the rig's summary arrives, and for the ball).
    pub player: u32,
    /// MOT class: 1 player, 2 goalkeeper, 3 referee, 4 ball.
    pub class: u8,
    /// Pitch position, metres from the centre spot along the touchline.
    pub x_m: f64,
    /// Pitch position, metres from the centre spot away from the rig.
    pub y_m: f64,
    /// Detection confidence 0–1 (0 when the track coasted).
    pub confidence: f64,
}

/// The Parquet schema of an export; unsigned integers are annotated as such.
const SCHEMA: &str = "
message match_export {
    REQUIRED INT32 frame (INTEGER(32, false));
    REQUIRED DOUBLE time_s;
    REQUIRED INT32 track (INTEGER(32, false));
    REQUIRED INT32 player (INTEGER(32, false));
    REQUIRED INT32 class (INTEGER(8, false));
    REQUIRED DOUBLE x_m;
    REQUIRED DOUBLE y_m;
    REQUIRED DOUBLE confidence;
}";

/// Rows per row group: a few tens of MB of column buffers, a match in a handful of groups.
pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// Writes Parquet (zstd-compressed columns) one row group at a time.
pub struct ParquetExport {
    writer: SerializedFileWriter<Vec<u8>>,
    pending: Vec<ExportRow>,
    rows: u64,
}

impl ParquetExport {
    /// An empty file.
    pub fn new() -> parquet::errors::Result<Self> {
        let schema = Arc::new(parse_message_type(SCHEMA)?);
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_created_by(format!(
                "polyvision-cloud-api {}",
                env!("CARGO_PKG_VERSION")
            ))
            .build();
        Ok(ParquetExport {
            writer: SerializedFileWriter::new(Vec::new(), schema, Arc::new(props))?,
            pending: Vec::new(),
            rows: 0,
        })
    }

    /// Adds a row; a full row group is written out.
    pub fn push(&mut self, row: ExportRow) -> parquet::errors::Result<()> {
        self.pending.push(row);
        if self.pending.len() >= ROW_GROUP_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> parquet::errors::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        let ints = |f: fn(&ExportRow) -> i32| rows.iter().map(f).collect::<Vec<i32>>();
        let doubles = |f: fn(&ExportRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
        let mut group = self.writer.next_row_group()?;
        let mut index = 0;
        while let Some(mut column) = group.next_column()? {
            // Unsigned values travel in INT32 bit for bit, as the annotation says.
            match index {
                0 => column.typed::<Int32Type>().write_batch(
                    &ints(|r| r.frame as i32),
                    None,
                    None,
                )?,
                1 => {
                    column
                        .typed::<DoubleType>()
                        .write_batch(&doubles(|r| r.time_s), None, None)?
                }
                2 => column.typed::<Int32Type>().write_batch(
                    &ints(|r| r.track as i32),
                    None,
                    None,
                )?,
                3 => column.typed::<Int32Type>().write_batch(
                    &ints(|r| r.player as i32),
                    None,
                    None,
                )?,
                4 => column.typed::<Int32Type>().write_batch(
                    &ints(|r| r.class as i32),
                    None,
                    None,
                )?,
                5 => column
                    .typed::<DoubleType>()
                    .write_batch(&doubles(|r| r.x_m), None, None)?,
                6 => column
                    .typed::<DoubleType>()
                    .write_batch(&doubles(|r| r.y_m), None, None)?,
                _ => column.typed::<DoubleType>().write_batch(
                    &doubles(|r| r.confidence),
                    None,
                    None,
                )?,
            };
            column.close()?;
            index += 1;
        }
        group.close()?;
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// The finished file, and its row count.
    pub fn finish(mut self) -> parquet::errors::Result<(Bytes, u64)> {
        self.flush()?;
        let rows = self.rows;
        Ok((Bytes::from(self.writer.into_inner()?), rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor as _;

    #[test]
    fn rows_written_are_read_back() {
        let mut out = ParquetExport::new().expect("writer");
        for i in 0..10u32 {
            out.push(ExportRow {
                frame: u32::MAX - i,
                time_s: i as f64 / 25.0,
                track: i % 3,
                player: 7,
                class: 1,
                x_m: -52.5 + i as f64,
                y_m: 34.0,
                confidence: 0.5,
            })
            .expect("push");
        }
        let (bytes, rows) = out.finish().expect("finish");
        assert_eq!(rows, 10);
        assert_eq!(&bytes[..4], b"PAR1");
        let reader = SerializedFileReader::new(bytes).expect("reader");
        assert_eq!(reader.metadata().file_metadata().num_rows(), 10);
        let first = reader
            .get_row_iter(None)
            .expect("rows")
            .next()
            .expect("a row")
            .expect("row");
        assert_eq!(first.get_uint(0).expect("frame"), u32::MAX);
        assert_eq!(first.get_double(5).expect("x_m"), -52.5);
        assert_eq!(first.get_uint(3).expect("player"), 7);
    }
}
