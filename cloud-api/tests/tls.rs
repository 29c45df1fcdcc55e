//! The uploader over HTTPS: it trusts a private CA given in its configuration, and refuses the
//! same server without it (nothing sent, the failure reported and retried).

use ed25519_dalek::SigningKey;
use polyvision_cloud_api::testing::{ClickHouse, InProcessService, enrol};
use polyvision_cloud_sync::identity::public_key_text;
use polyvision_cloud_sync::uploader::{PendingBatch, RowSource, Uploader, UploaderConfig};
use polyvision_cloud_sync::wire::WireRow;
use rustls_pki_types::pem::PemObject as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const ADMIN: &str = "tls-test-admin-token-0123";

/// A private CA and a server certificate for 127.0.0.1 signed by it (openssl CLI).
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Polyvision test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

/// TLS in front of `upstream`: what a load balancer does for the service.
async fn terminate_tls(dir: &Path, upstream: String) -> u16 {
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_file_iter(dir.join("server.pem"))
        .expect("server.pem")
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("key");
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                }
            });
        }
    });
    port
}

struct OneBatch(Option<PendingBatch>, u64);

impl RowSource for OneBatch {
    fn next_batch(&mut self, _max_rows: usize) -> Result<Option<PendingBatch>, String> {
        Ok(self.0.clone().filter(|b| b.last_row > self.1))
    }
    fn acknowledge(&mut self, last_row: u64) -> Result<(), String> {
        self.1 = last_row;
        Ok(())
    }
    fn quarantine(&mut self, _: &PendingBatch, reason: &str) -> Result<(), String> {
        Err(format!("unexpected quarantine: {reason}"))
    }
    fn backlog(&mut self) -> Result<u64, String> {
        Ok(self
            .0
            .as_ref()
            .map_or(0, |b| b.last_row.saturating_sub(self.1)))
    }
}

#[test]
fn the_uploader_trusts_a_configured_ca_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    certificates(dir.path());
    let ch = ClickHouse::start().expect("ClickHouse");
    let service = InProcessService::start(&ch, dir.path(), "tls", ADMIN).expect("service");
    let key = SigningKey::from_bytes(&[51; 32]);
    assert_eq!(
        enrol(
            &service.url,
            ADMIN,
            "PV-TLS",
            &public_key_text(&key.verifying_key()),
            "0190a1b2-0000-7000-8000-00000000071a"
        )
        .expect("enrol"),
        201
    );
    let rt = service.runtime();
    let upstream = service.url.trim_start_matches("http://").to_string();
    let port = rt.block_on(terminate_tls(dir.path(), upstream));
    let endpoint = format!("https://127.0.0.1:{port}");
    let rows: Vec<WireRow> = (0..50)
        .map(|i| WireRow {
            frame: i / 5,
            track: i % 5 + 1,
            x_cm: 100 * i as i32,
            y_cm: 50,
            class: 1,
            conf: 200,
        })
        .collect();
    let batch = PendingBatch {
        match_id: [9; 16],
        match_started_ms: polyvision_cloud_api::testing::recent_match_start_ms(),
        fps_milli: 25_000,
        first_row: 1,
        last_row: 50,
        rows,
    };

    // Without the CA: the certificate is refused, nothing is sent, the rig keeps retrying.
    let mut config = UploaderConfig::new(&endpoint, "PV-TLS");
    config.min_backoff = Duration::from_millis(50);
    let mut plain = Uploader::new(config.clone(), key.clone()).expect("uploader");
    let mut source = OneBatch(Some(batch.clone()), 0);
    let outcome = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(2), plain.sync_all(&mut source)).await
    });
    assert!(outcome.is_err(), "must still be retrying");
    let status = plain.status().lock().expect("status").clone();
    let error = status.last_error.unwrap_or_default();
    println!("without the CA: {error}");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert!(status.retries > 0 && status.batches_sent == 0);
    assert_eq!(source.1, 0, "nothing acknowledged");
    assert_eq!(ch.stored("tls").expect("stored").0, 0);

    // With the CA: delivered.
    config.ca_file = Some(dir.path().join("ca.pem"));
    let mut trusted = Uploader::new(config, key).expect("uploader");
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), trusted.sync_all(&mut source)).await
    })
    .expect("in time")
    .expect("sync");
    assert_eq!(source.1, 50);
    assert_eq!(ch.stored("tls").expect("stored").0, 50);
}
