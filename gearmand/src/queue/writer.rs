//! The store's own thread: it takes batches from the processing thread, writes everything
//! that has arrived meanwhile in one transaction (group commit), and reports back which
//! added jobs are now durable.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};

use bytes::Bytes;
use futures::SinkExt;

use super::{QueueStore, StoreOp, StoredJob};
use crate::event::{Event, Events};
use crate::state::StoreBatch;

/// A message for the store thread.
#[derive(Debug)]
pub enum StoreMsg {
    /// Changes in order, and what waits for them.
    Write(StoreBatch),
    /// Finish: write what `--store-queue-on-shutdown` kept, then stop.
    Shutdown,
}

/// The running store thread.
pub struct StoreThread {
    sender: Sender<StoreMsg>,
    handle: JoinHandle<()>,
}

impl StoreThread {
    /// Starts the thread. With `on_shutdown`, added jobs are only kept in memory while
    /// the server runs and written at shutdown (the C server's `--store-queue-on-shutdown`).
    pub fn start(
        store: Box<dyn QueueStore>,
        on_shutdown: bool,
        events: Events,
    ) -> std::io::Result<StoreThread> {
        let (sender, receiver) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("gearmand-store".into())
            .spawn(move || run(store, on_shutdown, receiver, events))?;
        Ok(StoreThread { sender, handle })
    }

    /// Where the processing thread sends its batches.
    pub fn sender(&self) -> Sender<StoreMsg> {
        self.sender.clone()
    }

    /// Asks the thread to finish and waits for it.
    pub fn stop(self) {
        let _ = self.sender.send(StoreMsg::Shutdown);
        if self.handle.join().is_err() {
            tracing::error!("store thread panicked");
        }
    }
}

fn run(
    mut store: Box<dyn QueueStore>,
    on_shutdown: bool,
    receiver: Receiver<StoreMsg>,
    mut events: Events,
) {
    let mut kept: HashMap<(Bytes, Bytes), StoredJob> = HashMap::new();
    let mut stopping = false;
    while !stopping {
        let Ok(first) = receiver.recv() else { break };
        let mut batch = StoreBatch::default();
        let mut absorb = |msg| match msg {
            StoreMsg::Write(mut more) => {
                batch.ops.append(&mut more.ops);
                batch.adds.append(&mut more.adds);
                batch.barriers.append(&mut more.barriers);
                false
            }
            StoreMsg::Shutdown => true,
        };
        stopping = absorb(first);
        while !stopping {
            match receiver.try_recv() {
                Ok(msg) => stopping = absorb(msg),
                Err(_) => break,
            }
        }
        let StoreBatch {
            mut ops,
            adds,
            barriers,
        } = batch;
        if on_shutdown {
            // Adds stay in memory; done still deletes rows an earlier shutdown wrote.
            ops.retain(|op| match op {
                StoreOp::Add(job) => {
                    kept.insert((job.key.clone(), job.function.clone()), job.clone());
                    false
                }
                StoreOp::Done { key, function } => {
                    kept.remove(&(key.clone(), function.clone()));
                    true
                }
            });
        }
        for op in &ops {
            if let StoreOp::Add(job) = op {
                crate::fault::check(crate::fault::Site::Store, &job.function);
            }
        }
        let error = if ops.is_empty() {
            None
        } else {
            store.write(&ops).err().map(|e| e.to_string())
        };
        if let Some(e) = &error {
            tracing::error!(error = %e, ops = ops.len(), "persistent queue write failed");
        }
        let waiting = !adds.is_empty() || !barriers.is_empty();
        let reply = Event::Stored {
            jobs: adds,
            barriers,
            error,
        };
        if waiting && futures::executor::block_on(events.send(reply)).is_err() {
            break;
        }
    }
    if on_shutdown && !kept.is_empty() {
        let ops: Vec<StoreOp> = kept.into_values().map(StoreOp::Add).collect();
        match store.write(&ops) {
            Ok(()) => tracing::info!(jobs = ops.len(), "queue stored on shutdown"),
            Err(e) => tracing::error!(error = %e, "storing the queue on shutdown failed"),
        }
    }
}
