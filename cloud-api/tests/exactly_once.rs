//! Exactly once under faults, against a real ClickHouse server and the service as a real
//! process: about 1,000 batches go through a proxy that cuts requests in half, loses
//! acknowledgements, delays, duplicates and reorders requests, while the test SIGKILLs and
//! restarts the service and aborts and restarts the uploader. At the end ClickHouse holds
//! exactly the rig's rows: same count, same checksum.

mod common;

use common::{ClickHouse, MemoryBuffer, Service, SharedBuffer};
use ed25519_dalek::SigningKey;
use polyvision_cloud_sync::identity::public_key_text;
use polyvision_cloud_sync::uploader::{Uploader, UploaderConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct FaultCounts {
    passed: AtomicU64,
    cut: AtomicU64,
    lost_ack: AtomicU64,
    duplicated: AtomicU64,
    delayed: AtomicU64,
    upstream_down: AtomicU64,
}

struct Rng(Mutex<u64>);

impl Rng {
    fn next(&self) -> u64 {
        let mut s = self.0.lock().expect("rng");
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }
    fn below(&self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Reads one HTTP message (head and a Content-Length body); `None` at a clean end.
async fn read_message(s: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut byte).await?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(std::io::Error::other("closed mid-head"))
            };
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut byte).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed mid-body"));
        }
        buf.extend_from_slice(&byte[..n]);
    }
    buf.truncate(head_end + len);
    Ok(Some(buf))
}

async fn round_trip(upstream: u16, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).await?;
    up.write_all(request).await?;
    read_message(&mut up)
        .await?
        .ok_or_else(|| std::io::Error::other("no answer"))
}

/// One client connection through the proxy: each request meets a fate.
async fn serve_client(
    mut client: TcpStream,
    upstream: u16,
    rng: Arc<Rng>,
    counts: Arc<FaultCounts>,
) {
    while let Ok(Some(request)) = read_message(&mut client).await {
        let fate = rng.below(100);
        if fate < 8 {
            // Cut the request in half: the service sees a broken body, the rig an error.
            counts.cut.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)).await {
                let _ = up.write_all(&request[..request.len() / 2]).await;
            }
            return;
        }
        if (8..14).contains(&fate) {
            // Hold the request past the rig's timeout: it retries while this one still lands.
            counts.delayed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(800 + rng.below(1200))).await;
        }
        if (14..22).contains(&fate) {
            // Send it again later, on its own connection: a duplicate that arrives out of order.
            counts.duplicated.fetch_add(1, Ordering::Relaxed);
            let copy = request.clone();
            let delay = Duration::from_millis(rng.below(3000));
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = round_trip(upstream, &copy).await;
            });
        }
        let answer = match round_trip(upstream, &request).await {
            Ok(a) => a,
            Err(_) => {
                counts.upstream_down.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if (22..30).contains(&fate) {
            // Stored, but the acknowledgement never reaches the rig.
            counts.lost_ack.fetch_add(1, Ordering::Relaxed);
            return;
        }
        counts.passed.fetch_add(1, Ordering::Relaxed);
        if client.write_all(&answer).await.is_err() {
            return;
        }
    }
}

#[test]
fn a_thousand_batches_arrive_exactly_once_through_every_fault() {
    let ch = ClickHouse::start().expect("ClickHouse");
    let dir = tempfile::tempdir().expect("tempdir");
    let service = Arc::new(Mutex::new(Service::start(
        &ch,
        dir.path(),
        "faults",
        &["--device-rate=200"],
    )));
    let upstream = service.lock().expect("service").port;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let key = SigningKey::from_bytes(&[31; 32]);
    let base = service.lock().expect("service").url();
    let status = polyvision_cloud_api::testing::enrol(
        &base,
        common::ADMIN_TOKEN,
        "PV-FAULTS",
        &public_key_text(&key.verifying_key()),
        "0190a1b2-0000-7000-8000-0000000000fa",
    )
    .expect("enrol");
    assert_eq!(status, 201);

    // 4 matches × 1,087 frames × 23 objects, 100 rows per batch: about 1,000 batches.
    let buffer = SharedBuffer(Arc::new(Mutex::new(MemoryBuffer::simulated(
        4, 1087, 23, 99,
    ))));
    let expected = buffer.0.lock().expect("buffer").checksum();

    let rng = Arc::new(Rng(Mutex::new(0x5eed_1234_abcd_0001)));
    let counts = Arc::new(FaultCounts::default());
    let proxy_port = polyvision_cloud_api::testing::free_port().expect("port");
    {
        let (rng, counts) = (rng.clone(), counts.clone());
        rt.spawn(async move {
            let listener = TcpListener::bind(("127.0.0.1", proxy_port))
                .await
                .expect("proxy");
            loop {
                if let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(serve_client(client, upstream, rng.clone(), counts.clone()));
                }
            }
        });
    }

    // The service is killed (SIGKILL) and restarted every few seconds.
    let done = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let killer = {
        let (service, done, kills, rng) =
            (service.clone(), done.clone(), kills.clone(), rng.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1500 + rng.below(2000)));
                if done.load(Ordering::Relaxed) {
                    break;
                }
                let mut s = service.lock().expect("service");
                s.kill();
                kills.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(rng.below(700)));
                s.restart();
            }
        })
    };

    // The uploader is aborted mid-flight and started afresh (new process, same buffer).
    let started = Instant::now();
    let mut uploader_restarts = 0u64;
    let mut retries = 0u64;
    let mut duplicates = 0u64;
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    loop {
        let mut config = UploaderConfig::new(&proxy, "PV-FAULTS");
        config.batch_rows = 100;
        config.min_backoff = Duration::from_millis(20);
        config.max_backoff = Duration::from_millis(400);
        config.request_timeout = Duration::from_secs(1);
        let mut uploader = Uploader::new(config, key.clone()).expect("uploader");
        let status = uploader.status();
        let mut source = buffer.clone();
        let life = Duration::from_millis(2000 + rng.below(3000));
        let finished =
            rt.block_on(async { tokio::time::timeout(life, uploader.sync_all(&mut source)).await });
        let s = status.lock().expect("status").clone();
        retries += s.retries;
        duplicates += s.batches_duplicate;
        match finished {
            Ok(Ok(_)) => break,
            Ok(Err(e)) => panic!("uploader failed: {e}"),
            Err(_) => uploader_restarts += 1,
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "not drained after 10 minutes"
        );
    }
    done.store(true, Ordering::Relaxed);
    killer.join().expect("killer");
    // Let delayed duplicates land before counting.
    std::thread::sleep(Duration::from_secs(4));

    let b = buffer.0.lock().expect("buffer");
    assert!(b.quarantined.is_empty(), "quarantined: {:?}", b.quarantined);
    let batches = ch
        .query("SELECT count() FROM faults.ingested_batches FINAL")
        .expect("batches");
    let raw_rows = ch
        .query("SELECT count() FROM faults.detections")
        .expect("rows");
    let stored = ch.stored("faults").expect("stored");
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "rows {} (expected {}), batches {batches}, {:.1} s; faults: {} requests passed, {} cut, {} acks lost, {} delayed, {} duplicated, {} while the service was down; service killed {} times, uploader restarted {uploader_restarts} times; uploader retries {retries}, duplicates acknowledged {duplicates}; row copies before collapsing {raw_rows}",
        stored.0,
        expected.0,
        started.elapsed().as_secs_f64(),
        c(&counts.passed),
        c(&counts.cut),
        c(&counts.lost_ack),
        c(&counts.delayed),
        c(&counts.duplicated),
        c(&counts.upstream_down),
        c(&kills),
    );
    assert_eq!(stored, expected, "ClickHouse holds exactly the rig's rows");
    assert_eq!(b.acknowledged, b.rows.last().map_or(0, |r| r.0));
    assert!(
        batches.parse::<u64>().unwrap_or(0) >= 1000,
        "{batches} batches"
    );
    // Every fault happened, several times.
    for (name, n) in [
        ("cut", c(&counts.cut)),
        ("lost ack", c(&counts.lost_ack)),
        ("duplicated", c(&counts.duplicated)),
        ("delayed", c(&counts.delayed)),
        ("service kills", c(&kills)),
        ("uploader restarts", uploader_restarts),
    ] {
        assert!(n >= 3, "too few {name}: {n}");
    }
}
