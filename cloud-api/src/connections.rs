//! Accepting connections: a cap on how many are open, in all and per client address, a deadline
//! for each request head (which also closes idle keep-alive connections), and a shutdown that
//! closes idle clients at once and gives requests in flight a bounded time to finish.
//!
//! `axum::serve` has none of these: an idle or slowloris client held its connection (and a file
//! descriptor) for ever, and a shutdown waited for idle clients to leave.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// How connections are admitted and closed.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once; one more is closed as soon as it is accepted (so the service
    /// keeps descriptors for ClickHouse and its own files under the process's limit).
    pub max_connections: usize,
    /// Connections open at once from one client address, so that one client cannot take the
    /// whole cap. Behind a load balancer every connection comes from its address: set this to
    /// `max_connections` there and let the balancer limit its clients.
    pub max_per_address: usize,
    /// Time for a request head to arrive, from the connection's start or the end of the
    /// previous answer: an idle keep-alive or a head sent a byte at a time is closed after it.
    pub header_timeout: Duration,
    /// At shutdown, how long requests in flight may take before their connections are dropped.
    pub drain_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 768,
            max_per_address: 64,
            header_timeout: Duration::from_secs(15),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Connections refused at either cap, for `/metrics`.
pub static CONNECTIONS_REFUSED: AtomicU64 = AtomicU64::new(0);

/// Open connections per client address.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One open connection of an address; counted down when dropped.
struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The client an address stands for in per-client limits: an IPv4 address, or an IPv6 /64
/// (one host commonly holds a whole /64 and could otherwise take a new address per request).
pub fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

fn refused(why: &str, limit: usize) {
    let refused = CONNECTIONS_REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
    // A flood logs a line at 1, 2, 4, 8, … refusals, not one per connection.
    if refused.is_power_of_two() {
        tracing::warn!(limit, refused, "{why}; closing new connections");
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, within `limits`. Handlers see the
/// peer's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset while queued: not fatal.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = per_address.take(client_of(peer.ip()), limits.max_per_address) else {
            refused(
                "an address reached its connection cap",
                limits.max_per_address,
            );
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused("the connection cap was reached", limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection closed");
            }
            drop((permit, slot));
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("every connection closed"),
        () = tokio::time::sleep(limits.drain_timeout) => tracing::warn!(
            after_s = limits.drain_timeout.as_secs(),
            "requests still in flight at shutdown were cut off"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("address");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("address");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("address");
        assert_eq!(client_of(a), client_of(b));
        assert_ne!(client_of(a), client_of(other));
        let v4: IpAddr = "192.0.2.7".parse().expect("address");
        assert_eq!(client_of(v4), v4);
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("address");
        assert_eq!(client_of(mapped), v4);
    }
}
