//! Plain functions as event handlers, async or blocking.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::extract::FromEvent;
use super::states::States;
use crate::event::Event;
use crate::protocol::EventError;
use crate::reply::{IntoReply, Reply};

/// An async function usable as a handler: any `async fn` whose arguments all
/// implement [`FromEvent`] and whose result implements [`IntoReply`].
///
/// `Args` only tells the implementations apart; you never name it.
pub trait Handler<Args>: Clone + Send + Sync + 'static {
    /// Runs the handler on an event.
    fn call(&self, event: Event, states: Arc<States>) -> BoxFuture<'static, Reply>;
}

/// A blocking function usable as a handler: it runs on the blocking thread
/// pool, never on the reactor, like the original's sync consumers.
pub trait BlockingHandler<Args>: Clone + Send + Sync + 'static {
    /// Runs the handler on an event.
    fn call(&self, event: Event, states: Arc<States>) -> BoxFuture<'static, Reply>;
}

macro_rules! extract_or_reply {
    ($event:ident, $states:ident, $($ty:ident),*) => {
        $(
            #[allow(non_snake_case)]
            let $ty = match $ty::from_event(&mut $event, &$states) {
                Ok(value) => value,
                Err(error) => return Box::pin(std::future::ready(Reply::error(error))),
            };
        )*
    };
}

macro_rules! impl_handlers {
    ($($ty:ident),*) => {
        impl<F, Fut, R, $($ty,)*> Handler<($($ty,)*)> for F
        where
            F: Fn($($ty),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoReply,
            $($ty: FromEvent,)*
        {
            #[allow(unused_mut, unused_variables)]
            fn call(&self, mut event: Event, states: Arc<States>) -> BoxFuture<'static, Reply> {
                extract_or_reply!(event, states, $($ty),*);
                let future = (self)($($ty),*);
                Box::pin(async move { future.await.into_reply() })
            }
        }

        impl<F, R, $($ty,)*> BlockingHandler<($($ty,)*)> for F
        where
            F: Fn($($ty),*) -> R + Clone + Send + Sync + 'static,
            R: IntoReply + Send + 'static,
            $($ty: FromEvent,)*
        {
            #[allow(unused_mut, unused_variables)]
            fn call(&self, mut event: Event, states: Arc<States>) -> BoxFuture<'static, Reply> {
                extract_or_reply!(event, states, $($ty),*);
                let handler = self.clone();
                Box::pin(async move {
                    match tokio::task::spawn_blocking(move || handler($($ty),*).into_reply()).await {
                        Ok(reply) => reply,
                        Err(err) => {
                            tracing::error!(error = %err, "blocking handler panicked or was cancelled");
                            Reply::error(EventError::internal())
                        }
                    }
                })
            }
        }
    };
}

impl_handlers!();
impl_handlers!(T1);
impl_handlers!(T1, T2);
impl_handlers!(T1, T2, T3);
impl_handlers!(T1, T2, T3, T4);
impl_handlers!(T1, T2, T3, T4, T5);
impl_handlers!(T1, T2, T3, T4, T5, T6);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8);
