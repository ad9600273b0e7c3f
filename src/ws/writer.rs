//! The writing half of a socket: a bounded queue of frames in front of the
//! sink, driven from the socket's loop without ever blocking it.
//!
//! The loop never awaits a write. It queues frames here and polls
//! [`Writer::drive`] as one of its `select!` arms, so that reading, replies,
//! pings and expiry checks go on while a slow peer takes its time; a peer
//! that takes longer than the write timeout for one frame is closed.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Context, Poll, ready};

use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub(crate) struct Writer<S> {
    sink: SplitSink<WebSocketStream<S>, Message>,
    queue: VecDeque<Message>,
    /// Payload bytes of the frames in `queue`.
    queued_bytes: usize,
    /// Frames went into the sink since its last flush.
    unflushed: bool,
    /// When the sink last took a frame or finished a flush: a frame is
    /// accepted only once the previous one is written out, so this is when
    /// the last write completed.
    last_progress: Instant,
}

impl<S> Writer<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    pub(crate) fn new(sink: SplitSink<WebSocketStream<S>, Message>) -> Self {
        Self {
            sink,
            queue: VecDeque::new(),
            queued_bytes: 0,
            unflushed: false,
            last_progress: Instant::now(),
        }
    }

    /// Queues a frame behind the others. When the writer was idle, the write
    /// clock starts now.
    pub(crate) fn queue(&mut self, message: Message) {
        if !self.busy() {
            self.last_progress = Instant::now();
        }
        self.queued_bytes += message.len();
        self.queue.push_back(message);
    }

    /// Asks for a flush without a frame, so that what tungstenite queued on
    /// its own (the answer to a ping or a close) goes out.
    pub(crate) fn flush_soon(&mut self) {
        if !self.busy() {
            self.last_progress = Instant::now();
        }
        self.unflushed = true;
    }

    /// Forgets the frames not handed to the sink yet.
    pub(crate) fn discard_queued(&mut self) {
        self.queue.clear();
        self.queued_bytes = 0;
    }

    /// Frames waiting.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Payload bytes waiting.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Whether something is waiting to be written or flushed.
    pub(crate) fn busy(&self) -> bool {
        !self.queue.is_empty() || self.unflushed
    }

    /// When the write under way started waiting (meaningful while busy).
    pub(crate) fn waiting_since(&self) -> Instant {
        self.last_progress
    }

    /// Writes and flushes until the queue is empty; pending while the peer
    /// does not take the bytes. Cancel-safe: a frame leaves the queue only
    /// when the sink took it.
    pub(crate) async fn drive(&mut self) -> Result<(), WsError> {
        poll_fn(|cx| self.poll_drive(cx)).await
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        while !self.queue.is_empty() {
            ready!(self.sink.poll_ready_unpin(cx))?;
            if let Some(message) = self.queue.pop_front() {
                self.queued_bytes -= message.len();
                self.sink.start_send_unpin(message)?;
                self.unflushed = true;
                self.last_progress = Instant::now();
            }
        }
        if self.unflushed {
            ready!(self.sink.poll_flush_unpin(cx))?;
            self.unflushed = false;
            self.last_progress = Instant::now();
        }
        Poll::Ready(Ok(()))
    }

    /// The sink back, to reunite it with the reading half.
    pub(crate) fn into_sink(self) -> SplitSink<WebSocketStream<S>, Message> {
        self.sink
    }
}
