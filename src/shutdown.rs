//! Graceful shutdown of long-lived connections.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Tells every open socket to close (code 1001, "going away") and waits for
/// them to finish.
///
/// HTTP servers stop accepting on their own; upgraded sockets are invisible
/// to them, so the transports register each socket task here.
///
/// ```
/// use channels_binding::Shutdown;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let shutdown = Shutdown::new();
/// // ... hand clones to the transports, serve ...
/// shutdown.trigger();
/// assert!(shutdown.wait(std::time::Duration::from_secs(1)).await);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tasks: TaskTracker,
}

impl Shutdown {
    /// A handle that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every socket to close.
    pub fn trigger(&self) {
        self.token.cancel();
        self.tasks.close();
    }

    /// Whether shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when shutdown is triggered.
    pub async fn triggered(&self) {
        self.token.cancelled().await;
    }

    /// Waits up to `timeout` for every socket task to end after [`trigger`](Self::trigger).
    /// Returns whether they all did.
    pub async fn wait(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.tasks.wait()).await.is_ok()
    }

    /// Open sockets being tracked.
    pub fn open_sockets(&self) -> usize {
        self.tasks.len()
    }

    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }
}
