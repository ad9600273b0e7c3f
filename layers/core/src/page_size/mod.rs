//! Page sizes for `search`: `DEFAULT_PAGE_SIZE` and `MAX_PAGE_SIZE`, set once
//! for a whole stack by a layer, or per binding.
//!
//! ```
//! use channels_binding_core::page_size::{PageSize, PageSizeLayer};
//! use channels_binding_core::EventRouter;
//! use tower::ServiceBuilder;
//!
//! let stack = ServiceBuilder::new()
//!     .layer(PageSizeLayer::new(PageSize::new(50, 200).unwrap()))
//!     .service(EventRouter::new());
//! ```

mod layer;
mod service;
mod size;

pub use layer::PageSizeLayer;
pub use service::PageSizeService;
pub use size::{PageSize, PageSizeError};
