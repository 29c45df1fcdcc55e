//! The committed fixture (`fixtures/batch-v1.bin`) decodes to the rows in `batch-v1.json`, its
//! signature verifies with the fixture's public key, and its header sits at the offsets the
//! crate doc gives.

use polyvision_cloud_sync::identity::parse_public_key;
use polyvision_cloud_sync::wire::{BatchHeader, SignedBatch};

#[test]
fn the_fixture_decodes_as_documented() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(root.join("fixtures/batch-v1.bin")).expect("fixture");
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("fixtures/batch-v1.json")).expect("json"),
    )
    .expect("json");
    // Offsets of the layout table.
    assert_eq!(&bytes[..4], b"PVSB");
    assert_eq!(bytes[4], 1);
    let header_len = u16::from_le_bytes([bytes[5], bytes[6]]) as usize;
    let serial_len = bytes[7 + 16] as usize;
    assert_eq!(&bytes[7 + 17..7 + 17 + serial_len], b"PV-FIXTURE-01");
    assert_eq!(header_len, 16 + 1 + serial_len + 16 + 8 + 4 + 8 + 8 + 4 + 4);
    let body_len = u32::from_le_bytes(
        bytes[7 + header_len..11 + header_len]
            .try_into()
            .expect("4"),
    );
    assert_eq!(bytes.len(), 11 + header_len + body_len as usize + 64);

    let batch = SignedBatch::parse(&bytes).expect("parse");
    let key = parse_public_key(want["public_key"].as_str().expect("key")).expect("key");
    batch.verify(&key).expect("signature");
    let h = &batch.header;
    assert_eq!(h.serial, want["serial"]);
    assert_eq!(
        h.match_started_ms,
        want["match_started_ms"].as_i64().expect("ms")
    );
    assert_eq!(h.fps_milli as u64, want["fps_milli"].as_u64().expect("fps"));
    assert_eq!((h.first_row, h.last_row), (41, 46));
    assert_eq!(
        h.batch_id,
        BatchHeader::derive_id(&h.serial, &h.match_id, h.first_row, h.last_row)
    );
    let rows: Vec<[i64; 6]> = batch
        .rows()
        .expect("rows")
        .iter()
        .map(|r| {
            [
                r.frame as i64,
                r.track as i64,
                r.x_cm as i64,
                r.y_cm as i64,
                r.class as i64,
                r.conf as i64,
            ]
        })
        .collect();
    let expected: Vec<[i64; 6]> = serde_json::from_value(want["rows"].clone()).expect("rows");
    assert_eq!(rows, expected);
}
