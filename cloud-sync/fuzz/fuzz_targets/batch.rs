//! Parse, verify and decode any bytes: never a panic, and what decodes has the declared rows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyvision_cloud_sync::wire::SignedBatch;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = SignedBatch::parse(data) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
        let _ = batch.verify(&key.verifying_key());
        if let Ok(rows) = batch.rows() {
            assert_eq!(rows.len(), batch.header.row_count as usize);
        }
    }
});
