//! Binding the listening sockets and accepting connections, handed to the I/O threads
//! round-robin.

use std::future::poll_fn;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_std::channel::{Receiver, Sender};
use futures::FutureExt;
use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, SockRef, Socket, TcpKeepalive, Type};

use crate::config::Keepalive;
use crate::connection::Slot;
use crate::fault;
use crate::io_thread::NewConnection;
use crate::reactor::{Direction, Registered};
use crate::state::ConnId;

/// Binds `-L`/`-p` with the given backlog: every address the name resolves to, or all
/// IPv4 and IPv6 addresses when no `-L` is given.
pub fn bind(
    listen: Option<&str>,
    port: u16,
    backlog: i32,
) -> anyhow::Result<Vec<std::net::TcpListener>> {
    let addrs: Vec<SocketAddr> = match listen {
        Some(host) => (host, port)
            .to_socket_addrs()
            .map_err(|e| anyhow::anyhow!("cannot resolve {host}: {e}"))?
            .collect(),
        None => vec![
            SocketAddr::from(([0, 0, 0, 0], port)),
            SocketAddr::from(([0u16; 8], port)),
        ],
    };
    let mut listeners = Vec::new();
    let mut last_error = None;
    for addr in addrs {
        match bind_one(addr, backlog) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "cannot listen");
                last_error = Some(anyhow::anyhow!("cannot listen on {addr}: {e}"));
            }
        }
    }
    match (listeners.is_empty(), last_error) {
        (true, Some(e)) => Err(e),
        (true, None) => anyhow::bail!("no address to listen on"),
        _ => Ok(listeners),
    }
}

fn bind_one(addr: SocketAddr, backlog: i32) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(std::net::TcpListener::from(socket))
}

/// Accepts until `stop` fires or closes, spreading connections over `io_threads`.
pub async fn run(
    listeners: Vec<std::net::TcpListener>,
    io_threads: Vec<Sender<NewConnection>>,
    stop: Receiver<()>,
    keepalive: Option<Keepalive>,
    max_connections: usize,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let listeners: Vec<Registered<TcpListener>> = match listeners
        .into_iter()
        .map(|l| Registered::new(TcpListener::from_std(l)))
        .collect::<std::io::Result<_>>()
    {
        Ok(listeners) => listeners,
        Err(e) => {
            tracing::error!(error = %e, "cannot register the listening sockets");
            return;
        }
    };
    let mut next_id = 0u64;
    let mut next_thread = 0usize;
    loop {
        futures::select! {
            accepted = accept(&listeners).fuse() => match accepted {
                Ok(stream) => {
                    let Some(slot) = Slot::take(&open, max_connections) else {
                        tracing::warn!(max_connections, "connection limit reached, refusing a connection");
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    if let Some(keepalive) = &keepalive {
                        if let Err(e) = set_keepalive(&stream, keepalive) {
                            tracing::warn!(error = %e, "cannot enable keepalive");
                        }
                    }
                    next_id += 1;
                    if next_id == 2 && fault::armed(fault::Site::Listener) {
                        fault::fire(fault::Site::Listener);
                    }
                    let target = &io_threads[next_thread % io_threads.len()];
                    next_thread = next_thread.wrapping_add(1);
                    if target.send((ConnId(next_id), stream, slot)).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    // Out of descriptors and similar: back off instead of spinning.
                    tracing::error!(error = %e, "accept failed");
                    crate::reactor::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stop.recv().fuse() => break,
        }
    }
    tracing::info!("no longer accepting connections");
}

/// The next connection from whichever listener has one.
async fn accept(listeners: &[Registered<TcpListener>]) -> std::io::Result<TcpStream> {
    poll_fn(|cx| {
        for listener in listeners {
            if let Poll::Ready(accepted) =
                listener.poll_io(Direction::Read, cx, |l| l.accept().map(|(s, _)| s))
            {
                return Poll::Ready(accepted);
            }
        }
        Poll::Pending
    })
    .await
}

/// `--keepalive`: SO_KEEPALIVE plus whichever of idle/interval/count were given.
fn set_keepalive(stream: &TcpStream, keepalive: &Keepalive) -> std::io::Result<()> {
    let socket = SockRef::from(stream);
    let mut params = TcpKeepalive::new();
    if let Some(idle) = keepalive.idle {
        params = params.with_time(Duration::from_secs(idle));
    }
    if let Some(interval) = keepalive.interval {
        params = params.with_interval(Duration::from_secs(interval));
    }
    if let Some(count) = keepalive.count {
        params = params.with_retries(count);
    }
    socket.set_keepalive(true)?;
    if keepalive.idle.is_some() || keepalive.interval.is_some() || keepalive.count.is_some() {
        socket.set_tcp_keepalive(&params)?;
    }
    Ok(())
}
