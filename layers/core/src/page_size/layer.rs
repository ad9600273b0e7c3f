//! The layer.

use tower::Layer;

use super::service::PageSizeService;
use super::size::PageSize;

/// Sets the page sizes every binding below it uses, unless a binding
/// declares its own.
#[derive(Debug, Clone, Copy)]
pub struct PageSizeLayer {
    page_size: PageSize,
}

impl PageSizeLayer {
    /// A layer applying these sizes.
    pub fn new(page_size: PageSize) -> Self {
        Self { page_size }
    }
}

impl<S> Layer<S> for PageSizeLayer {
    type Service = PageSizeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PageSizeService::new(inner, self.page_size)
    }
}
