//! An I/O thread's event loop: it owns the connections handed to it and runs them all
//! concurrently on this one thread.

use async_std::channel::Receiver;
use async_std::net::TcpStream;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;

use crate::connection;
use crate::event::ConnId;

/// A socket accepted by the listener, on its way to an I/O thread.
pub type NewConnection = (ConnId, TcpStream);

/// Runs connections until the listener is gone and every connection has ended.
pub async fn run(accepted: Receiver<NewConnection>, context: connection::Context) {
    let mut connections = FuturesUnordered::new();
    loop {
        futures::select! {
            next = accepted.recv().fuse() => match next {
                Ok((conn, stream)) => {
                    connections.push(connection::serve(stream, conn, context.clone()))
                }
                Err(_) => break,
            },
            () = connections.select_next_some() => {}
        }
    }
    while connections.next().await.is_some() {}
}
