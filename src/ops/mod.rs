//! Operations endpoints: a readiness probe for orchestrators.
//!
//! [`Readiness`] answers `GET /ready` from named dependency checks run
//! concurrently, each with a timeout: `200 {"status":"ready",…}` or
//! `503 {"status":"unavailable",…}`, never an error text. It is an ordinary
//! `Service<http::Request<B>>`: mount it next to the API.
//!
//! ```
//! use channels_binding::ops::Readiness;
//!
//! let ready = Readiness::new().check("database", || async { Ok::<(), std::io::Error>(()) });
//! ```

mod method;
mod readiness;

pub use readiness::Readiness;
