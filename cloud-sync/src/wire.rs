//! The batch wire format, version 1: what a rig sends and the cloud verifies.
//!
//! A batch is the tracked positions of one match, a contiguous range of the rig's buffer rows.
//! All integers are little-endian; `varint` is LEB128 (7 bits per byte, low group first, at most
//! 5 bytes for a `u32`); `zigzag` maps a signed value to unsigned (0, -1, 1, -2, … → 0, 1, 2, 3, …).
//!
//! ```text
//! offset  size  field
//! 0       4     magic "PVSB"
//! 4       1     format version (1)
//! 5       2     header length H (u16)
//! 7       H     header:
//!                 16  batch id (see below)
//!                 1   serial length S (1..=64), then S bytes of UTF-8 serial
//!                 16  match id (UUIDv7 made on the rig)
//!                 8   match start, ms since 1970 (i64)
//!                 4   frame rate, millihertz (u32, > 0)
//!                 8   first buffer row id (u64)
//!                 8   last buffer row id (u64, ≥ first)
//!                 4   row count N (u32, 1..=1 048 576, ≤ last − first + 1)
//!                 4   body length before compression (u32, ≤ 64 bytes × N)
//! 7+H     4     compressed body length B (u32)
//! 11+H    B     body: one zstd frame
//! 11+H+B  64    Ed25519 signature by the device over bytes [0, 11+H+B)
//! ```
//!
//! The body, once decompressed, is six columns of N values each, in this order:
//!
//! 1. frame: the first as `varint`, each next one as the `varint` increase over the previous
//!    (rows travel sorted by frame, then track: the encoder sorts them, since the tracker may
//!    store a frame's rows after a later frame's);
//! 2. track id: `zigzag varint` of the difference to the previous row's track (the first row's
//!    difference is to 0) — tracks are listed in order within a frame, so this is mostly `+1`;
//! 3. x, centimetres: `zigzag varint` of the difference to the same track's previous x in this
//!    batch (the first time a track appears, to 0);
//! 4. y, centimetres: the same, for y;
//! 5. class: one byte each (MOT class: 1 player, 2 goalkeeper, 3 referee, 4 ball);
//! 6. confidence: one byte each (0–255 for 0–1; 0 when the track coasted).
//!
//! Nothing may follow the last column. Columns compress far better than rows: frame and track
//! deltas are nearly constant and positions move a few centimetres per frame, so zstd takes a
//! row to a few bytes.
//!
//! The batch id is the first 16 bytes of SHA-256 over the serial, the match id and the row
//! range, so the same rows cut the same way always have the same id; the cloud keys its
//! idempotence on it. The device signs everything but the signature; the cloud verifies the
//! signature **before** decompressing, so nobody but an enrolled device can make it spend memory
//! on a body, and the declared body length bounds decompression.
//!
//! [`SignedBatch::parse`] and [`SignedBatch::rows`] never panic: anything malformed is a
//! [`WireError`] that says which field and why.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The four bytes every batch starts with.
pub const MAGIC: [u8; 4] = *b"PVSB";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Most rows one batch may carry.
pub const MAX_ROWS: u32 = 1 << 20;
/// Longest device serial.
pub const MAX_SERIAL_LEN: usize = 64;
/// Most uncompressed body bytes per row (six columns, 5-byte varints at worst).
pub const MAX_BODY_BYTES_PER_ROW: u32 = 64;
/// zstd level: 3 is zstd's default, a good ratio at hundreds of MB/s on the rig's cores.
const ZSTD_LEVEL: i32 = 3;
const SIGNATURE_LEN: usize = 64;

/// One tracked position as it travels: integers, the way the rig's buffer stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WireRow {
    /// Frame number within the match.
    pub frame: u32,
    /// Track id.
    pub track: u32,
    /// Pitch x, centimetres.
    pub x_cm: i32,
    /// Pitch y, centimetres.
    pub y_cm: i32,
    /// MOT class (1 player, 2 goalkeeper, 3 referee, 4 ball).
    pub class: u8,
    /// Confidence, 0–255.
    pub conf: u8,
}

/// What a batch says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHeader {
    /// Content-derived id (see the module doc).
    pub batch_id: [u8; 16],
    /// The device that recorded and signed it.
    pub serial: String,
    /// The match.
    pub match_id: [u8; 16],
    /// Match start, ms since 1970.
    pub match_started_ms: i64,
    /// Frame rate in millihertz.
    pub fps_milli: u32,
    /// First buffer row id.
    pub first_row: u64,
    /// Last buffer row id.
    pub last_row: u64,
    /// Number of rows.
    pub row_count: u32,
    /// Body length before compression.
    pub body_len: u32,
}

impl BatchHeader {
    /// The batch id for these rows (see the module doc).
    pub fn derive_id(serial: &str, match_id: &[u8; 16], first_row: u64, last_row: u64) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(b"polyvision-batch-v1\0");
        h.update([serial.len() as u8]);
        h.update(serial.as_bytes());
        h.update(match_id);
        h.update(first_row.to_le_bytes());
        h.update(last_row.to_le_bytes());
        let d = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&d[..16]);
        id
    }

    /// Capture time of a frame of this match, ms since 1970.
    pub fn frame_time_ms(&self, frame: u32) -> i64 {
        // Saturating: a header is range-checked by the service, but this must not wrap before.
        self.match_started_ms
            .saturating_add((frame as i64 * 1_000_000) / self.fps_milli.max(1) as i64)
    }
}

/// Why a batch was refused. Each names the field and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input ended before a field.
    #[error("batch truncated: {field} needs {needed} more bytes at offset {offset}")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Where.
        offset: usize,
        /// Bytes missing.
        needed: usize,
    },
    /// Not a batch at all.
    #[error("not a batch: magic is {found:02x?}, expected \"PVSB\"")]
    Magic {
        /// The first bytes.
        found: [u8; 4],
    },
    /// A format this build does not read.
    #[error("batch format version {0} is not supported (this build reads version 1)")]
    Version(u8),
    /// A header or body field out of its range.
    #[error("batch field {field}: {problem}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// Bytes left after a part that should have ended.
    #[error("batch has {extra} unexpected bytes after the {after}")]
    Trailing {
        /// What should have ended.
        after: &'static str,
        /// How many bytes follow.
        extra: usize,
    },
    /// The signature does not verify with the device's key.
    #[error("batch signature does not verify with the key enrolled for this device")]
    Signature,
    /// The body does not decompress.
    #[error("batch body does not decompress: {0}")]
    Compression(String),
    /// Rows that cannot be encoded.
    #[error("cannot encode batch: {0}")]
    Encode(String),
}

fn field(field: &'static str, problem: impl Into<String>) -> WireError {
    WireError::Field {
        field,
        problem: problem.into(),
    }
}

/// A batch whose layout has been checked; the signature and body are checked on request.
#[derive(Debug, Clone)]
pub struct SignedBatch<'a> {
    /// The parsed header.
    pub header: BatchHeader,
    signed: &'a [u8],
    body: &'a [u8],
    signature: [u8; SIGNATURE_LEN],
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        let rest = self.data.len() - self.pos;
        if rest < n {
            return Err(WireError::Truncated {
                field,
                offset: self.pos,
                needed: n - rest,
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }
    fn u8(&mut self, f: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(f)?[0])
    }
    fn u16(&mut self, f: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array(f)?))
    }
    fn u32(&mut self, f: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array(f)?))
    }
    fn u64(&mut self, f: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array(f)?))
    }
    fn varint(&mut self, f: &'static str) -> Result<u32, WireError> {
        let mut v: u64 = 0;
        for i in 0..5 {
            let b = self.u8(f)?;
            v |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                return u32::try_from(v).map_err(|_| field(f, "varint exceeds 32 bits"));
            }
        }
        Err(field(f, "varint longer than 5 bytes"))
    }
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> Result<u32, WireError> {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    u32::try_from(z).map_err(|_| WireError::Encode(format!("difference {v} does not fit")))
}

fn unzigzag(z: u32) -> i64 {
    (z >> 1) as i64 ^ -((z & 1) as i64)
}

/// Everything needed to cut one batch, besides the rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMeta {
    /// Device serial.
    pub serial: String,
    /// Match id.
    pub match_id: [u8; 16],
    /// Match start, ms since 1970.
    pub match_started_ms: i64,
    /// Frame rate, millihertz.
    pub fps_milli: u32,
    /// First buffer row id.
    pub first_row: u64,
    /// Last buffer row id.
    pub last_row: u64,
}

/// Encodes and signs a batch (layout in the module doc); rows in any order.
pub fn encode(meta: &BatchMeta, rows: &[WireRow], key: &SigningKey) -> Result<Vec<u8>, WireError> {
    if meta.serial.is_empty() || meta.serial.len() > MAX_SERIAL_LEN {
        return Err(WireError::Encode(format!(
            "serial must be 1–{MAX_SERIAL_LEN} bytes, is {}",
            meta.serial.len()
        )));
    }
    if rows.is_empty() || rows.len() > MAX_ROWS as usize {
        return Err(WireError::Encode(format!(
            "a batch holds 1–{MAX_ROWS} rows, not {}",
            rows.len()
        )));
    }
    if meta.fps_milli == 0 || meta.last_row < meta.first_row {
        return Err(WireError::Encode(
            "frame rate must be > 0 and the row range ordered".into(),
        ));
    }
    if (meta.last_row - meta.first_row) < rows.len() as u64 - 1 {
        return Err(WireError::Encode(format!(
            "{} rows do not fit in row ids {}..={}",
            rows.len(),
            meta.first_row,
            meta.last_row
        )));
    }
    let mut sorted = rows.to_vec();
    sorted.sort_by_key(|r| (r.frame, r.track));
    let rows = sorted.as_slice();
    let mut body = Vec::with_capacity(rows.len() * 8);
    let mut prev_frame = rows[0].frame;
    put_varint(&mut body, prev_frame);
    for r in &rows[1..] {
        let d = r.frame.checked_sub(prev_frame).ok_or_else(|| {
            WireError::Encode(format!("frame {} follows frame {prev_frame}", r.frame))
        })?;
        put_varint(&mut body, d);
        prev_frame = r.frame;
    }
    let mut prev_track = 0i64;
    for r in rows {
        put_varint(&mut body, zigzag(r.track as i64 - prev_track)?);
        prev_track = r.track as i64;
    }
    let coords: [fn(&WireRow) -> i32; 2] = [|r| r.x_cm, |r| r.y_cm];
    for coord in coords {
        let mut last = std::collections::HashMap::<u32, i32>::new();
        for r in rows {
            let prev = last.insert(r.track, coord(r)).unwrap_or(0);
            put_varint(&mut body, zigzag(coord(r) as i64 - prev as i64)?);
        }
    }
    body.extend(rows.iter().map(|r| r.class));
    body.extend(rows.iter().map(|r| r.conf));

    let compressed = zstd::bulk::compress(&body, ZSTD_LEVEL)
        .map_err(|e| WireError::Encode(format!("zstd: {e}")))?;
    let mut header = Vec::with_capacity(80);
    header.extend(BatchHeader::derive_id(
        &meta.serial,
        &meta.match_id,
        meta.first_row,
        meta.last_row,
    ));
    header.push(meta.serial.len() as u8);
    header.extend(meta.serial.as_bytes());
    header.extend(meta.match_id);
    header.extend(meta.match_started_ms.to_le_bytes());
    header.extend(meta.fps_milli.to_le_bytes());
    header.extend(meta.first_row.to_le_bytes());
    header.extend(meta.last_row.to_le_bytes());
    header.extend((rows.len() as u32).to_le_bytes());
    header.extend((body.len() as u32).to_le_bytes());

    let mut out = Vec::with_capacity(11 + header.len() + compressed.len() + SIGNATURE_LEN);
    out.extend(MAGIC);
    out.push(FORMAT_VERSION);
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(&header);
    out.extend((compressed.len() as u32).to_le_bytes());
    out.extend(&compressed);
    let signature = key.sign(&out);
    out.extend(signature.to_bytes());
    Ok(out)
}

impl<'a> SignedBatch<'a> {
    /// Checks the layout and header of `data` (not the signature, not the body).
    pub fn parse(data: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader { data, pos: 0 };
        let magic = r.array::<4>("magic")?;
        if magic != MAGIC {
            return Err(WireError::Magic { found: magic });
        }
        let version = r.u8("format version")?;
        if version != FORMAT_VERSION {
            return Err(WireError::Version(version));
        }
        let header_len = r.u16("header length")? as usize;
        let header_bytes = r.take(header_len, "header")?;
        let header = parse_header(header_bytes)?;
        let body_len = r.u32("body length")? as usize;
        let body = r.take(body_len, "body")?;
        let signed_end = r.pos;
        let signature = r.array::<SIGNATURE_LEN>("signature")?;
        if r.remaining() > 0 {
            return Err(WireError::Trailing {
                after: "signature",
                extra: r.remaining(),
            });
        }
        Ok(SignedBatch {
            header,
            signed: &data[..signed_end],
            body,
            signature,
        })
    }

    /// Verifies the device's signature over header and body.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), WireError> {
        key.verify_strict(self.signed, &Signature::from_bytes(&self.signature))
            .map_err(|_| WireError::Signature)
    }

    /// Decompresses and decodes the rows. Call after [`SignedBatch::verify`].
    pub fn rows(&self) -> Result<Vec<WireRow>, WireError> {
        let n = self.header.row_count as usize;
        let expected = self.header.body_len as usize;
        let body = zstd::bulk::decompress(self.body, expected)
            .map_err(|e| WireError::Compression(e.to_string()))?;
        if body.len() != expected {
            return Err(field(
                "body length before compression",
                format!("header says {expected} bytes, body has {}", body.len()),
            ));
        }
        let mut r = Reader {
            data: &body,
            pos: 0,
        };
        let mut rows = vec![
            WireRow {
                frame: 0,
                track: 0,
                x_cm: 0,
                y_cm: 0,
                class: 0,
                conf: 0,
            };
            n
        ];
        let mut frame = 0u32;
        for (i, row) in rows.iter_mut().enumerate() {
            let v = r.varint("frame column")?;
            frame = if i == 0 {
                v
            } else {
                frame
                    .checked_add(v)
                    .ok_or_else(|| field("frame column", format!("frame overflows at row {i}")))?
            };
            row.frame = frame;
        }
        let mut track = 0i64;
        for (i, row) in rows.iter_mut().enumerate() {
            track += unzigzag(r.varint("track column")?);
            row.track = u32::try_from(track)
                .map_err(|_| field("track column", format!("track id {track} at row {i}")))?;
        }
        for (name, is_x) in [("x column", true), ("y column", false)] {
            let mut last = std::collections::HashMap::<u32, i64>::new();
            for (i, row) in rows.iter_mut().enumerate() {
                let prev = last.get(&row.track).copied().unwrap_or(0);
                let v = prev + unzigzag(r.varint(name)?);
                let v32 = i32::try_from(v)
                    .map_err(|_| field(name, format!("coordinate {v} cm at row {i}")))?;
                last.insert(row.track, v);
                if is_x {
                    row.x_cm = v32;
                } else {
                    row.y_cm = v32;
                }
            }
        }
        let classes = r.take(n, "class column")?;
        for (i, (row, &c)) in rows.iter_mut().zip(classes).enumerate() {
            if !(1..=4).contains(&c) {
                return Err(field("class column", format!("class {c} at row {i}")));
            }
            row.class = c;
        }
        let confs = r.take(n, "confidence column")?;
        for (row, &c) in rows.iter_mut().zip(confs) {
            row.conf = c;
        }
        if r.remaining() > 0 {
            return Err(WireError::Trailing {
                after: "confidence column",
                extra: r.remaining(),
            });
        }
        Ok(rows)
    }

    /// The compressed body's size in bytes.
    pub fn compressed_len(&self) -> usize {
        self.body.len()
    }
}

fn parse_header(bytes: &[u8]) -> Result<BatchHeader, WireError> {
    let mut r = Reader {
        data: bytes,
        pos: 0,
    };
    let batch_id = r.array::<16>("batch id")?;
    let serial_len = r.u8("serial length")? as usize;
    if serial_len == 0 || serial_len > MAX_SERIAL_LEN {
        return Err(field(
            "serial length",
            format!("{serial_len}, expected 1–{MAX_SERIAL_LEN}"),
        ));
    }
    let serial = std::str::from_utf8(r.take(serial_len, "serial")?)
        .map_err(|_| field("serial", "not UTF-8"))?
        .to_string();
    let match_id = r.array::<16>("match id")?;
    let match_started_ms = i64::from_le_bytes(r.array("match start")?);
    let fps_milli = r.u32("frame rate")?;
    if fps_milli == 0 {
        return Err(field("frame rate", "0 millihertz"));
    }
    let first_row = r.u64("first row id")?;
    let last_row = r.u64("last row id")?;
    if last_row < first_row {
        return Err(field(
            "last row id",
            format!("{last_row} is before the first row id {first_row}"),
        ));
    }
    let row_count = r.u32("row count")?;
    if row_count == 0 || row_count > MAX_ROWS {
        return Err(field(
            "row count",
            format!("{row_count}, expected 1–{MAX_ROWS}"),
        ));
    }
    if (last_row - first_row) < row_count as u64 - 1 {
        return Err(field(
            "row count",
            format!("{row_count} rows do not fit in row ids {first_row}..={last_row}"),
        ));
    }
    let body_len = r.u32("body length before compression")?;
    if body_len > row_count * MAX_BODY_BYTES_PER_ROW || body_len < row_count * 6 {
        return Err(field(
            "body length before compression",
            format!("{body_len} bytes for {row_count} rows"),
        ));
    }
    if r.remaining() > 0 {
        return Err(WireError::Trailing {
            after: "header",
            extra: r.remaining(),
        });
    }
    let header = BatchHeader {
        batch_id,
        serial,
        match_id,
        match_started_ms,
        fps_milli,
        first_row,
        last_row,
        row_count,
        body_len,
    };
    if BatchHeader::derive_id(&header.serial, &match_id, first_row, last_row) != batch_id {
        return Err(field(
            "batch id",
            "does not match the serial, match and row range",
        ));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_rows(n: usize) -> Vec<WireRow> {
        (0..n)
            .map(|i| {
                let frame = (i / 23) as u32;
                let track = (i % 23) as u32 + 1;
                WireRow {
                    frame,
                    track,
                    x_cm: 1000 + track as i32 * 300 + frame as i32 * 3,
                    y_cm: 500 + track as i32 * 200 - frame as i32 * 2,
                    class: if track == 23 { 4 } else { 1 },
                    conf: (200 + (i % 50)) as u8,
                }
            })
            .collect()
    }

    fn meta(n: usize) -> BatchMeta {
        BatchMeta {
            serial: "PV-TEST-0001".into(),
            match_id: [7; 16],
            match_started_ms: 1_790_000_000_000,
            fps_milli: 25_000,
            first_row: 101,
            last_row: 100 + n as u64,
        }
    }

    #[test]
    fn round_trip_keeps_every_row_and_verifies() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let rows = sample_rows(2300);
        let bytes = encode(&meta(rows.len()), &rows, &key).expect("encode");
        let batch = SignedBatch::parse(&bytes).expect("parse");
        batch.verify(&key.verifying_key()).expect("verify");
        assert_eq!(batch.rows().expect("rows"), rows);
        assert_eq!(batch.header.row_count, 2300);
        assert_eq!(batch.header.frame_time_ms(25), 1_790_000_000_000 + 1000);
        // Compact: a few bytes per row.
        assert!(bytes.len() < rows.len() * 4, "{} bytes", bytes.len());
    }

    #[test]
    fn a_changed_byte_breaks_the_signature() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let rows = sample_rows(100);
        let mut bytes = encode(&meta(rows.len()), &rows, &key).expect("encode");
        let n = bytes.len();
        bytes[n - 70] ^= 1;
        let batch = SignedBatch::parse(&bytes).expect("layout still fine");
        assert_eq!(
            batch.verify(&key.verifying_key()),
            Err(WireError::Signature)
        );
        let other = SigningKey::from_bytes(&[4; 32]);
        let good = encode(&meta(rows.len()), &rows, &key).expect("encode");
        let batch = SignedBatch::parse(&good).expect("parse");
        assert_eq!(
            batch.verify(&other.verifying_key()),
            Err(WireError::Signature)
        );
    }

    #[test]
    fn malformed_input_names_the_problem() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let rows = sample_rows(50);
        let good = encode(&meta(rows.len()), &rows, &key).expect("encode");
        let err = |b: &[u8]| SignedBatch::parse(b).expect_err("must fail").to_string();
        assert!(err(b"").contains("magic"));
        assert!(err(b"GIF89a-----").contains("not a batch"));
        let mut v = good.clone();
        v[4] = 2;
        assert!(err(&v).contains("version 2"));
        assert!(err(&good[..good.len() - 1]).contains("signature"));
        let mut long = good.clone();
        long.push(0);
        assert!(err(&long).contains("after the signature"));
        let mut serial0 = good.clone();
        serial0[7 + 16] = 0;
        assert!(err(&serial0).contains("serial length"));
        let mut id = good.clone();
        id[7] ^= 0xFF;
        assert!(err(&id).contains("batch id"));
    }

    #[test]
    fn rows_in_any_order_travel_sorted_by_frame_and_track() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let rows = sample_rows(50);
        let mut shuffled = rows.clone();
        shuffled.reverse();
        shuffled.swap(3, 17);
        let bytes = encode(&meta(50), &shuffled, &key).expect("encode");
        let back = SignedBatch::parse(&bytes)
            .expect("parse")
            .rows()
            .expect("rows");
        assert_eq!(back, rows);
    }
}
