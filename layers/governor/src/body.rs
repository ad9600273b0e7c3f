//! The response body of the HTTP layer.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;

/// Errors a response body may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body of [`HttpRateLimit`](crate::HttpRateLimit): a boxed
/// body, the same type as the transports' `Body`, so the layer can answer
/// `429` with a JSON body in front of any service, and fits axum and hyper.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;
