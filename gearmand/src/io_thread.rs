//! An I/O thread's event loop: it owns the connections handed to it and runs them all
//! concurrently on this one thread.

use async_std::channel::Receiver;
use futures::stream::StreamExt;

use crate::connection::{self, Slot};
use crate::reactor;
use crate::state::ConnId;

/// A socket accepted by the listener, on its way to an I/O thread, with its place in
/// the connection count (given back when the connection ends).
pub type NewConnection = (ConnId, mio::net::TcpStream, Slot);

/// Takes in the connections the listener hands over, each a task of this thread's loop
/// ([`connection::serve`]), until the listener is gone; the loop runs the connections
/// until they have ended too.
pub async fn run(mut accepted: Receiver<NewConnection>, context: connection::Context) {
    // `next()` keeps its listener inside the receiver between polls.
    while let Some((conn, stream, slot)) = accepted.next().await {
        reactor::spawn(connection::serve(stream, conn, context.clone(), slot));
    }
}
