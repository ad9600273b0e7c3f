//! The HTTP transport (PROTOCOL.md §4): the same frames and the same event
//! stack as the WebSocket, over plain HTTP requests and Server-Sent Events.

mod asyncapi;
mod client_assets;
mod config;
mod openapi;
mod query;
mod respond;
mod route;
mod service;
mod sse;
mod typescript;

pub use asyncapi::asyncapi_document;
pub use client_assets::{CLIENT_DTS, CLIENT_MJS, REACT_MJS};
pub use config::HttpConfig;
pub use openapi::openapi_document;
pub use service::{HttpApi, console_html};
pub use typescript::typescript_declarations;
