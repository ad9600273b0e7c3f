//! Whether the request a store operation serves is still wanted.
//!
//! A model action runs on a task of its own, detached from the connection
//! that asked for it (see [`ModelBinding`](crate::ModelBinding)), so that a
//! client going away never cuts a query short. Once a statement holds a
//! pool connection it runs to the end; before that, while it waits for one,
//! the work is abandoned if its caller is gone: a reset connection leaves no
//! backlog of reads nobody will receive, and a write either never starts or
//! finishes (commit, sequence number and push).

use std::future::Future;

use tokio::sync::watch;

use super::error::StoreError;

tokio::task_local! {
    /// Closed (every sender dropped) when the caller stopped waiting.
    static CALLER: watch::Receiver<()>;
}

/// Held by the caller for as long as it waits for the action's reply.
pub(crate) struct Waiting(#[allow(dead_code, reason = "held for its drop")] watch::Sender<()>);

/// Runs `work` as the action of a caller that holds the returned
/// [`Waiting`]: its pool acquisitions are abandoned once that is dropped.
pub(crate) fn on_behalf_of_caller<F: Future>(work: F) -> (Waiting, impl Future<Output = F::Output>) {
    let (sender, receiver) = watch::channel(());
    (Waiting(sender), CALLER.scope(receiver, work))
}

/// Awaits `acquire` (a pool connection or transaction), unless the caller
/// of the current action goes away first: then nothing was started and
/// [`StoreError::CallerGone`] says so. Outside an action, just awaits it.
pub(crate) async fn acquire<T>(
    acquire: impl Future<Output = Result<T, sqlx::Error>>,
    error: impl FnOnce(sqlx::Error) -> StoreError,
) -> Result<T, StoreError> {
    let Ok(mut caller) = CALLER.try_with(watch::Receiver::clone) else {
        return acquire.await.map_err(error);
    };
    tokio::select! {
        // A connection that is ready is taken: the work then completes.
        biased;
        acquired = acquire => acquired.map_err(error),
        // Nothing is ever sent: `changed` ends only when the caller left.
        _ = caller.changed() => Err(StoreError::CallerGone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_acquisition_is_abandoned_once_the_caller_left() {
        let (waiting, work) = on_behalf_of_caller(acquire(std::future::pending::<Result<(), sqlx::Error>>(), |_| {
            StoreError::CallerGone
        }));
        let task = tokio::spawn(work);
        drop(waiting);
        assert!(matches!(task.await, Ok(Err(StoreError::CallerGone))));
    }

    #[tokio::test]
    async fn a_ready_acquisition_is_taken_even_if_the_caller_left() {
        let (waiting, work) =
            on_behalf_of_caller(acquire(async { Ok::<_, sqlx::Error>(7) }, |_| StoreError::CallerGone));
        drop(waiting);
        assert!(matches!(work.await, Ok(7)));
    }

    #[tokio::test]
    async fn outside_an_action_it_just_acquires() {
        assert!(matches!(
            acquire(async { Ok::<_, sqlx::Error>(1) }, |_| StoreError::CallerGone).await,
            Ok(1)
        ));
    }
}
