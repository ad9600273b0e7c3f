//! A fault-injecting TCP proxy for chaos tests: it sits on a loopback port
//! between the quickstart processes and Redis or PostgreSQL, and plays the
//! network's bad days on command.
//!
//! * [`Fault::Pass`]: forwards both ways.
//! * [`Fault::Delay`]: every reply (server to client) arrives that much later;
//!   requests go out at once, so each round trip is longer by the delay.
//! * [`Fault::Blackhole`]: accepts connections but forwards nothing either way
//!   (bytes wait in the sockets, as with a server that hangs); forwarding
//!   resumes when the fault is lifted.
//! * [`Fault::Drop`]: cuts every connection and cuts new ones at once.
//! * [`ChaosProxy::lose_reply_to`]: the next request holding some bytes (a
//!   change's payload, say) reaches the server, its reply is swallowed and
//!   that connection cut: the command ran, and the client cannot know.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What the proxy does to traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward both ways.
    Pass,
    /// Hold every reply back this long.
    Delay(Duration),
    /// Forward nothing (connections stay open).
    Blackhole,
    /// Cut every connection, old and new.
    Drop,
}

/// The proxy; stops (and cuts its connections) when dropped.
pub struct ChaosProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    lose_reply: Armed,
    task: tokio::task::JoinHandle<()>,
}

/// The bytes whose request loses its reply, until it happened.
type Armed = Arc<Mutex<Option<Vec<u8>>>>;

/// Chunks a connection reads at once.
const CHUNK: usize = 16 * 1024;

impl ChaosProxy {
    /// A proxy on a free loopback port forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (fault, _) = watch::channel(Fault::Pass);
        let lose_reply: Armed = Arc::new(Mutex::new(None));
        let faults = fault.clone();
        let armed = lose_reply.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(connection(client, upstream, faults.subscribe(), armed.clone()));
            }
        });
        Self {
            addr,
            fault,
            lose_reply,
            task,
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Applies `fault` from now on, to open connections and new ones.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// The next request whose bytes hold `marker` is forwarded, its reply
    /// swallowed and its connection cut.
    pub fn lose_reply_to(&self, marker: &[u8]) {
        *self.lose_reply.lock().unwrap() = Some(marker.to_vec());
    }

    /// Whether the armed reply loss happened.
    pub fn reply_lost(&self) -> bool {
        self.lose_reply.lock().unwrap().is_none()
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.fault.send_replace(Fault::Drop);
        self.task.abort();
    }
}

/// Waits while the fault is `Blackhole`; `false` when the connection must be cut.
async fn passable(faults: &mut watch::Receiver<Fault>) -> bool {
    match faults.wait_for(|fault| *fault != Fault::Blackhole).await {
        Ok(fault) => *fault != Fault::Drop,
        Err(_) => false,
    }
}

/// Resolves once the fault becomes `Drop`.
async fn dropped(mut faults: watch::Receiver<Fault>) {
    let _ = faults.wait_for(|fault| *fault == Fault::Drop).await;
}

async fn connection(client: TcpStream, upstream: SocketAddr, mut faults: watch::Receiver<Fault>, lose_reply: Armed) {
    // A blackholed connection is accepted, and only then left hanging.
    if !passable(&mut faults).await {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Set by the request pump when it forwarded the request whose reply is lost.
    let (lose_tx, mut lose_rx) = watch::channel(false);

    let mut request_faults = faults.clone();
    let requests = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            if !passable(&mut request_faults).await {
                return;
            }
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if !passable(&mut request_faults).await {
                return;
            }
            {
                let mut armed = lose_reply.lock().unwrap();
                let hit = armed
                    .as_deref()
                    .is_some_and(|marker| buf[..n].windows(marker.len()).any(|window| window == marker));
                if hit {
                    *armed = None;
                    lose_tx.send_replace(true);
                }
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };

    // Replies go through a queue so that a delay holds each one back by the
    // delay from when it arrived, without slowing the ones behind it further.
    let (queue_tx, mut queue_rx) = mpsc::channel::<(Instant, Vec<u8>)>(1024);
    let mut reply_faults = faults.clone();
    let replies_in = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            if !passable(&mut reply_faults).await {
                return;
            }
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if *lose_rx.borrow_and_update() {
                // The request ran; its reply goes nowhere, and neither does
                // the connection.
                return;
            }
            let delay = match *reply_faults.borrow() {
                Fault::Delay(delay) => delay,
                _ => Duration::ZERO,
            };
            if queue_tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .await
                .is_err()
            {
                return;
            }
        }
    };
    let mut write_faults = faults.clone();
    let replies_out = async move {
        while let Some((due, bytes)) = queue_rx.recv().await {
            tokio::time::sleep_until(due).await;
            if !passable(&mut write_faults).await {
                return;
            }
            if client_write.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    // Whichever side ends first ends the connection (both sockets close on return).
    tokio::select! {
        () = requests => {}
        () = replies_in => {}
        () = replies_out => {}
        () = dropped(faults) => {}
    }
}
