//! The service.

use std::task::{Context, Poll};

use tower::Service;

use super::size::PageSize;
use crate::event::Event;

/// Inserts [`PageSize`] into each event's extensions, then calls the inner service.
#[derive(Debug, Clone)]
pub struct PageSizeService<S> {
    inner: S,
    page_size: PageSize,
}

impl<S> PageSizeService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, page_size: PageSize) -> Self {
        Self { inner, page_size }
    }
}

impl<S> Service<Event> for PageSizeService<S>
where
    S: Service<Event>,
{
    type Response = S::Response;
    type Error = S::Error;
    // Nothing to do after the call: the inner future is returned as is.
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut event: Event) -> Self::Future {
        event.extensions_mut().insert(self.page_size);
        self.inner.call(event)
    }
}
