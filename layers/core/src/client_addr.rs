//! The network address of the client, as the server saw it.

use std::net::SocketAddr;

/// The peer address of the connection a request or event came from.
///
/// [`serve`](https://docs.rs/channels-binding) inserts it into every HTTP
/// request's extensions, and the WebSocket transport copies it from the
/// upgrade request into every event of the socket, so per-IP rules (rate
/// limits) work at both levels. Behind a proxy, replace it with the address
/// the proxy reports, in a layer of your own.
///
/// ```
/// use channels_binding_core::ClientAddr;
///
/// let addr = ClientAddr("127.0.0.1:5000".parse().unwrap());
/// assert_eq!(addr.0.port(), 5000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub SocketAddr);
