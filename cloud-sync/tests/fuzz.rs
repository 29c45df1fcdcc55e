//! A mutation fuzzer for the batch decoder that runs on stable Rust (CI has no nightly, so no
//! libFuzzer; `cloud-sync/fuzz/` holds the cargo-fuzz target for machines that have one). It is
//! not coverage-guided: it mutates the seed corpus in `cloud-sync/fuzz/corpus/` at random —
//! bit flips, byte overwrites, truncation, insertion, splices of two seeds, odd length fields,
//! and structure-aware mutations of the uncompressed columns that are compressed and signed
//! again, so the body decoder sees well-formed, correctly signed frames with hostile contents —
//! and checks that parsing and decoding never panic and that whatever decodes re-encodes to the
//! same rows.
//!
//! `POLYVISION_FUZZ_SECONDS` sets the run length (default 10 s); the seed is printed.

use ed25519_dalek::{Signer as _, SigningKey};
use polyvision_cloud_sync::wire::{BatchMeta, SignedBatch, WireError, WireRow, encode};
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("fuzz/corpus")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 4, "seed corpus missing in {}", dir.display());
    seeds
}

/// Parse, decode and check; must never panic.
fn exercise(data: &[u8], key: &SigningKey) -> Result<usize, WireError> {
    let batch = SignedBatch::parse(data)?;
    let verified = batch.verify(&key.verifying_key()).is_ok();
    let rows = batch.rows()?;
    assert_eq!(rows.len(), batch.header.row_count as usize);
    if verified {
        // A batch that decodes re-encodes to the same rows.
        let h = &batch.header;
        let meta = BatchMeta {
            serial: h.serial.clone(),
            match_id: h.match_id,
            match_started_ms: h.match_started_ms,
            fps_milli: h.fps_milli,
            first_row: h.first_row,
            last_row: h.last_row,
        };
        if let Ok(again) = encode(&meta, &rows, key) {
            // The encoder sorts by frame and track; the same rows come back.
            let back = SignedBatch::parse(&again).expect("own output parses");
            let mut sorted = rows.clone();
            sorted.sort_by_key(|r| (r.frame, r.track));
            assert_eq!(back.rows().expect("own output decodes"), sorted);
        }
    }
    Ok(rows.len())
}

/// `data` with its body replaced by `body` (compressed and signed again).
fn with_body(data: &[u8], body: &[u8], key: &SigningKey) -> Option<Vec<u8>> {
    let header_len = u16::from_le_bytes([*data.get(5)?, *data.get(6)?]) as usize;
    let mut out = data.get(..7 + header_len)?.to_vec();
    let compressed = zstd::bulk::compress(body, 1).ok()?;
    out.extend((compressed.len() as u32).to_le_bytes());
    out.extend(compressed);
    let sig = key.sign(&out);
    out.extend(sig.to_bytes());
    Some(out)
}

fn mutate(seed: &[u8], other: &[u8], rng: &mut Rng, key: &SigningKey) -> Vec<u8> {
    let mut d = seed.to_vec();
    match rng.below(8) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = rng.below(d.len());
            d[i] = [0, 0xFF, 0x7F, 0x80, 1][rng.below(5)];
        }
        2 => d.truncate(rng.below(d.len())),
        3 => {
            let i = rng.below(d.len());
            let extra: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
            d.splice(i..i, extra);
        }
        4 => {
            let cut = rng.below(d.len());
            let from = rng.below(other.len());
            d.truncate(cut);
            d.extend_from_slice(&other[from..]);
        }
        5 => {
            // A length or count field set to something odd.
            let header_len = u16::from_le_bytes([d[5], d[6]]) as usize;
            let targets = [
                5usize,
                7 + header_len,
                7 + header_len - 8,
                7 + header_len - 4,
            ];
            let at = targets[rng.below(targets.len())];
            if at + 4 <= d.len() {
                let v = [0u32, 1, u32::MAX, (rng.next() as u32) & 0xFFFF][rng.below(4)];
                d[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        _ => {
            // Structure-aware: mutate the uncompressed columns, compress and sign again.
            if let Ok(b) = SignedBatch::parse(seed) {
                let header_len = u16::from_le_bytes([seed[5], seed[6]]) as usize;
                let body = &seed[11 + header_len..seed.len() - 64];
                if let Ok(mut body) = zstd::bulk::decompress(body, b.header.body_len as usize) {
                    for _ in 0..1 + rng.below(6) {
                        if body.is_empty() {
                            break;
                        }
                        let i = rng.below(body.len());
                        match rng.below(3) {
                            0 => body[i] = rng.next() as u8,
                            1 => body[i] |= 0x80,
                            _ => {
                                body.remove(i);
                            }
                        }
                    }
                    if let Some(v) = with_body(seed, &body, key) {
                        d = v;
                    }
                }
            }
        }
    }
    d
}

#[test]
fn the_decoder_survives_mutated_batches() {
    let seconds: u64 = std::env::var("POLYVISION_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    println!("fuzz seed {seed}");
    let key = SigningKey::from_bytes(&[0x42; 32]);
    let seeds = corpus();
    for s in &seeds {
        exercise(s, &key).expect("every seed is a valid batch");
    }
    let mut rng = Rng(seed);
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut runs = 0u64;
    let mut decoded = 0u64;
    let mut errors = std::collections::BTreeMap::<String, u64>::new();
    while Instant::now() < until {
        for _ in 0..256 {
            let a = &seeds[rng.below(seeds.len())];
            let b = &seeds[rng.below(seeds.len())];
            let input = mutate(a, b, &mut rng, &key);
            match std::panic::catch_unwind(|| exercise(&input, &key)) {
                Ok(Ok(_)) => decoded += 1,
                Ok(Err(e)) => {
                    let kind = format!("{e:?}");
                    let kind = kind.split([' ', '(', '{']).next().unwrap_or("").to_string();
                    *errors.entry(kind).or_insert(0) += 1;
                }
                Err(_) => panic!("the decoder panicked (seed {seed}) on input {input:02x?}"),
            }
            runs += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{runs} mutated batches in {secs:.0} s ({:.0}/s): {decoded} decoded, refused by kind: {errors:?}",
        runs as f64 / secs
    );
    assert!(
        errors.len() >= 5,
        "mutations reach too few error kinds: {errors:?}"
    );
}

fn fixture_rows(n: usize, objects: u32) -> Vec<WireRow> {
    (0..n)
        .map(|i| {
            let frame = i as u32 / objects;
            let track = i as u32 % objects + 1;
            WireRow {
                frame,
                track,
                x_cm: 500 + track as i32 * 350 + frame as i32 * (track as i32 % 5 - 2),
                y_cm: 3400 - track as i32 * 120 + frame as i32 * (track as i32 % 3 - 1),
                class: if track == objects {
                    4
                } else if track == 1 {
                    2
                } else {
                    1
                },
                conf: if i % 17 == 0 {
                    0
                } else {
                    180 + (i * 7 % 70) as u8
                },
            }
        })
        .collect()
}

fn fixture_meta(first: u64, n: usize) -> BatchMeta {
    BatchMeta {
        serial: "PV-FIXTURE-01".into(),
        match_id: *b"\x01\x93\x6b\x2e\x4a\x10\x7c\x3d\x8e\x55\x21\x90\xab\xcd\xef\x01",
        match_started_ms: 1_796_000_400_000,
        fps_milli: 25_000,
        first_row: first,
        last_row: first + n as u64 - 1,
    }
}

/// Writes the seed corpus and the fixture; run with `--ignored` after a format change.
#[test]
#[ignore]
fn write_seed_corpus_and_fixture() {
    let key = SigningKey::from_bytes(&[0x42; 32]);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let write = |name: &str, meta: BatchMeta, rows: &[WireRow]| {
        let bytes = encode(&meta, rows, &key).expect("encode");
        std::fs::write(root.join("fuzz/corpus").join(name), bytes).expect("write");
    };
    write("one-row.bin", fixture_meta(1, 1), &fixture_rows(1, 1));
    write("one-frame.bin", fixture_meta(2, 26), &fixture_rows(26, 26));
    write("second.bin", fixture_meta(100, 650), &fixture_rows(650, 26));
    let mut far = fixture_rows(40, 4);
    for r in &mut far {
        r.x_cm = -r.x_cm * 1000;
        r.track += 1_000_000;
    }
    write("far-tracks.bin", fixture_meta(5000, 40), &far);
    // The documented fixture: its bytes and what they decode to.
    let rows = fixture_rows(6, 3);
    let bytes = encode(&fixture_meta(41, 6), &rows, &key).expect("encode");
    std::fs::write(root.join("fixtures/batch-v1.bin"), &bytes).expect("write");
    let json = serde_json::json!({
        "comment": "cloud-sync/fixtures/batch-v1.bin: signed with the Ed25519 key whose seed is 32 bytes of 0x42; rows are [frame, track, x_cm, y_cm, class, confidence]",
        "public_key": polyvision_cloud_sync::identity::public_key_text(&key.verifying_key()),
        "serial": "PV-FIXTURE-01",
        "match_id": "01936b2e-4a10-7c3d-8e55-2190abcdef01",
        "match_started_ms": 1_796_000_400_000i64,
        "fps_milli": 25_000,
        "first_row": 41,
        "last_row": 46,
        "rows": rows
            .iter()
            .map(|r| [r.frame as i64, r.track as i64, r.x_cm as i64, r.y_cm as i64, r.class as i64, r.conf as i64])
            .collect::<Vec<_>>(),
    });
    std::fs::write(
        root.join("fixtures/batch-v1.json"),
        serde_json::to_string_pretty(&json).expect("json") + "\n",
    )
    .expect("write");
}
