//! Accepting connections on a network that may be hostile: every connection has a deadline for
//! its request headers (so silent, half-sent and idle keep-alive connections close), answers
//! leave without waiting for the client's ACK (TCP_NODELAY), the number of open connections is
//! bounded below the process's open-file limit, and when the bound is reached the oldest
//! connection that never showed the token makes room. Shutdown closes every connection within a
//! deadline, whatever the clients do.
//!
//! hyper does the HTTP; this is only the accept loop around it (axum's `serve` has none of
//! these settings).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Time a client has to send a request's headers, from connecting or from its previous answer.
/// Real clients send them at once; this only ends silent and dribbling connections.
pub const HEADER_DEADLINE: Duration = Duration::from_secs(10);

/// Time a client has to send a whole request body (at most 1 MiB).
pub const BODY_DEADLINE: Duration = Duration::from_secs(30);

/// Time open connections get to finish when the server stops.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);

/// File descriptors kept for the database, logs, webhooks and the process's own use.
const RESERVED_FILES: u64 = 64;

/// The kernel's send buffer for each connection. Linux grows it to megabytes by itself, and
/// copies all of a large answer into it even when the client reads none of it: 500 dashboards
/// that never read cost the server a burst of 500 copies of the whole snapshot (measured: 73%
/// of its CPU in `writev` for three seconds, and tool calls waiting). With a fixed buffer the
/// rest of an answer waits, shared and uncopied, until the client reads; 128 KiB in flight
/// still sends a snapshot across a 50 ms link in under half a second.
const SEND_BUFFER_BYTES: u32 = 64 * 1024;

/// Most connections waiting to be accepted.
const BACKLOG: u32 = 1024;

/// A listener on `address` whose connections inherit [`SEND_BUFFER_BYTES`].
pub fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_send_buffer_size(SEND_BUFFER_BYTES)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// What one connection has shown so far; the access check marks it.
#[derive(Debug, Default)]
pub struct Connection {
    proven: AtomicBool,
    close: CancellationToken,
    /// The person's token it was proved with (its key), once.
    holder: Mutex<Option<String>>,
}

impl Connection {
    /// A request on this connection carried the token (or the server needs none).
    pub fn prove(&self) {
        self.proven.store(true, Ordering::Relaxed);
    }

    /// Closes this connection, and the streams it carries, when `revoked` is cancelled: the
    /// person's token `key` it showed was revoked. Holds `revoked` while the connection is open,
    /// which is how the watcher knows the token still has connections.
    pub fn close_when(&self, key: &str, revoked: Arc<CancellationToken>) {
        let mut bound = self.holder.lock().unwrap_or_else(PoisonError::into_inner);
        if bound.as_deref() == Some(key) {
            return;
        }
        *bound = Some(key.to_owned());
        let close = self.close.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = revoked.cancelled() => close.cancel(),
                () = close.cancelled() => {}
            }
        });
    }
}

/// The open connections, oldest first.
#[derive(Debug)]
struct Open {
    limit: usize,
    next: AtomicU64,
    list: Mutex<VecDeque<(u64, Arc<Connection>)>>,
}

impl Open {
    fn list(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, Arc<Connection>)>> {
        self.list.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Room for one more connection: at the limit, the oldest connection that never showed
    /// the token is closed; `None` when every open connection has shown it.
    fn admit(&self) -> Option<(u64, Arc<Connection>)> {
        let mut list = self.list();
        if list.len() >= self.limit {
            let stranger = list
                .iter()
                .position(|(_, c)| !c.proven.load(Ordering::Relaxed))?;
            if let Some((_, shed)) = list.remove(stranger) {
                shed.close.cancel();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection::default());
        list.push_back((id, connection.clone()));
        Some((id, connection))
    }

    fn closed(&self, id: u64) {
        self.list().retain(|(open, _)| *open != id);
    }
}

/// How many connections may be open at once: `configured`, or three quarters of what the
/// open-file limit leaves after the process's own files.
pub fn connection_limit(configured: Option<usize>) -> usize {
    configured.unwrap_or_else(|| {
        let files = open_file_limit().unwrap_or(1024);
        usize::try_from(files.saturating_sub(RESERVED_FILES) * 3 / 4)
            .unwrap_or(usize::MAX)
            .max(16)
    })
}

/// The soft limit on open files, from /proc (Linux); `None` elsewhere or when unlimited.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then gives open connections
/// [`SHUTDOWN_DEADLINE`] to finish and drops the rest.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limit: usize,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let open = Arc::new(Open {
        limit,
        next: AtomicU64::new(0),
        list: Mutex::default(),
    });
    let tasks = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_DEADLINE);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let Some((id, connection)) = open.admit() else {
            // Full of connections that all showed the token: this one waits its turn in vain.
            drop(stream);
            continue;
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let known = connection.clone();
        let service =
            TowerToHyperService::new(app.map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(known.clone());
                request.map(axum::body::Body::new)
            }));
        let http = http.clone();
        let (open, shutdown) = (open.clone(), shutdown.clone());
        tasks.spawn(async move {
            let served = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(served);
            tokio::select! {
                _ = served.as_mut() => {}
                () = connection.close.cancelled() => {}
                () = shutdown.cancelled() => {
                    served.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_DEADLINE, served).await;
                }
            }
            // Ends what waits to close it (see `Connection::close_when`).
            connection.close.cancel();
            open.closed(id);
        });
    }
    tasks.close();
    // Every connection task ends within the deadline on its own; this only waits for them.
    let _ = tokio::time::timeout(SHUTDOWN_DEADLINE * 2, tasks.wait()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_server_sheds_the_oldest_stranger_and_keeps_proven_clients() {
        let open = Open {
            limit: 3,
            next: AtomicU64::new(0),
            list: Mutex::default(),
        };
        let (_, first) = open.admit().expect("room");
        let (_, second) = open.admit().expect("room");
        let (_, third) = open.admit().expect("room");
        first.prove();
        third.prove();
        let (_, fourth) = open.admit().expect("the stranger makes room");
        assert!(second.close.is_cancelled() && !first.close.is_cancelled());
        fourth.prove();
        assert!(
            open.admit().is_none(),
            "every open connection showed the token"
        );
        assert!(!first.close.is_cancelled() && !third.close.is_cancelled());
    }

    #[test]
    fn the_limit_leaves_room_for_the_process_own_files() {
        assert_eq!(connection_limit(Some(5)), 5);
        let derived = connection_limit(None);
        assert!(derived >= 16, "{derived}");
        if let Some(files) = open_file_limit() {
            assert!((derived as u64) < files, "{derived} of {files}");
        }
    }
}
