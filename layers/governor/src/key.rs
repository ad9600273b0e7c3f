//! Who a budget belongs to.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use channels_binding_core::{ClientAddr, Event, Identity};

/// The caller a budget belongs to, most specific first.
///
/// * [`Identity`](RateKey::Identity) when the caller is authenticated: the
///   principal's id, whatever socket or address it uses, so one user has one
///   budget over HTTP and WebSocket, and two users behind one NAT have two.
/// * [`Ip`](RateKey::Ip) otherwise, from [`ClientAddr`] (IPv6 masked to the
///   configured prefix, IPv4-mapped IPv6 read as IPv4): anonymous callers on
///   one address share a budget.
/// * [`Connection`](RateKey::Connection) for an event from a connection
///   without a known address.
/// * [`Unknown`](RateKey::Unknown) for everything else: all such callers
///   share one budget. `serve` and the WebSocket transport always provide a
///   [`ClientAddr`], so this only happens in custom set-ups.
///
/// ```
/// use channels_binding_governor::RateKey;
///
/// let a = RateKey::ip("2001:db8::1".parse().unwrap(), 64);
/// let b = RateKey::ip("2001:db8::2".parse().unwrap(), 64);
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), "ip:2001:db8::");
/// assert_eq!(RateKey::ip("::ffff:10.0.0.1".parse().unwrap(), 64).to_string(), "ip:10.0.0.1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateKey {
    /// An authenticated principal, by id.
    Identity(String),
    /// An anonymous client, by address (or IPv6 network).
    Ip(IpAddr),
    /// An anonymous event from a connection without a known address.
    Connection(u64),
    /// Nothing identifies the caller: one shared budget.
    Unknown,
}

impl RateKey {
    /// The key for an address: IPv4 (and IPv4-mapped IPv6) as is, other IPv6
    /// addresses masked to their first `ipv6_prefix` bits (128 and above keep
    /// the whole address).
    pub fn ip(addr: IpAddr, ipv6_prefix: u8) -> Self {
        let addr = match addr.to_canonical() {
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128u32.saturating_sub(u32::from(ipv6_prefix)))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
            v4 => v4,
        };
        RateKey::Ip(addr)
    }

    /// The key of an event: its identity (or an [`Identity`] in its
    /// extensions), else its [`ClientAddr`], else its connection.
    pub(crate) fn for_event(event: &Event, ipv6_prefix: u8) -> Self {
        let identity = Some(event.identity())
            .filter(|identity| !identity.is_anonymous())
            .or_else(|| event.extensions().get::<Identity>());
        if let Some(id) = identity.and_then(Identity::id) {
            return RateKey::Identity(id.to_owned());
        }
        if let Some(ClientAddr(addr)) = event.extensions().get::<ClientAddr>() {
            return RateKey::ip(addr.ip(), ipv6_prefix);
        }
        match event.origin() {
            Some(origin) => RateKey::Connection(origin.connection),
            None => RateKey::Unknown,
        }
    }

    /// The key of an HTTP request: the [`Identity`] an authentication layer
    /// put in its extensions, else its [`ClientAddr`].
    pub(crate) fn for_request<B>(request: &http::Request<B>, ipv6_prefix: u8) -> Self {
        let extensions = request.extensions();
        if let Some(id) = extensions.get::<Identity>().and_then(Identity::id) {
            return RateKey::Identity(id.to_owned());
        }
        match extensions.get::<ClientAddr>() {
            Some(ClientAddr(addr)) => RateKey::ip(addr.ip(), ipv6_prefix),
            None => RateKey::Unknown,
        }
    }
}

impl fmt::Display for RateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateKey::Identity(id) => write!(f, "identity:{id}"),
            RateKey::Ip(addr) => write!(f, "ip:{addr}"),
            RateKey::Connection(id) => write!(f, "connection:{id}"),
            RateKey::Unknown => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use channels_binding_core::hub::Hub;
    use channels_binding_core::protocol::EventName;
    use channels_binding_core::{ClientAddr, Event, Identity, Principal};
    use serde_json::json;

    use super::*;

    fn event() -> Event {
        Event::new(EventName::parse("chat.send").unwrap(), json!({}), Hub::new())
    }

    fn addr(s: &str) -> ClientAddr {
        ClientAddr(s.parse().unwrap())
    }

    #[test]
    fn event_identity_first_then_ip_then_connection_then_unknown() {
        let hub = Hub::new();
        let outbox = hub.connect(Identity::anonymous());

        let mut with_all = Event::new(EventName::parse("chat.send").unwrap(), json!({}), hub.clone())
            .with_connection(outbox.connection().clone(), 1)
            .with_identity(Identity::from(Principal::new("7")));
        with_all.extensions_mut().insert(addr("10.0.0.1:4000"));
        assert_eq!(RateKey::for_event(&with_all, 64), RateKey::Identity("7".into()));

        let mut anonymous = Event::new(EventName::parse("chat.send").unwrap(), json!({}), hub.clone())
            .with_connection(outbox.connection().clone(), 2);
        anonymous.extensions_mut().insert(addr("10.0.0.1:4000"));
        assert_eq!(
            RateKey::for_event(&anonymous, 64),
            RateKey::Ip("10.0.0.1".parse().unwrap())
        );

        let no_addr = Event::new(EventName::parse("chat.send").unwrap(), json!({}), hub)
            .with_connection(outbox.connection().clone(), 3);
        assert_eq!(
            RateKey::for_event(&no_addr, 64),
            RateKey::Connection(outbox.connection().id())
        );

        assert_eq!(RateKey::for_event(&event(), 64), RateKey::Unknown);
    }

    #[test]
    fn event_identity_from_extensions() {
        let mut event = event();
        event.extensions_mut().insert(Identity::from(Principal::new("ext")));
        event.extensions_mut().insert(addr("10.0.0.1:1"));
        assert_eq!(RateKey::for_event(&event, 64), RateKey::Identity("ext".into()));
    }

    #[test]
    fn request_identity_then_ip_then_unknown() {
        let mut request = http::Request::new(());
        assert_eq!(RateKey::for_request(&request, 64), RateKey::Unknown);
        request.extensions_mut().insert(addr("[2001:db8:1:2:3::9]:443"));
        assert_eq!(
            RateKey::for_request(&request, 64),
            RateKey::Ip("2001:db8:1:2::".parse().unwrap())
        );
        request.extensions_mut().insert(Identity::anonymous());
        assert!(matches!(RateKey::for_request(&request, 64), RateKey::Ip(_)));
        request.extensions_mut().insert(Identity::from(Principal::new("u1")));
        assert_eq!(RateKey::for_request(&request, 64), RateKey::Identity("u1".into()));
    }

    #[test]
    fn ipv6_prefixes() {
        let addr: IpAddr = "2001:db8:aaaa:bbbb:cccc::1".parse().unwrap();
        assert_eq!(RateKey::ip(addr, 128), RateKey::Ip(addr));
        assert_eq!(RateKey::ip(addr, 0), RateKey::Ip("::".parse().unwrap()));
        assert_eq!(RateKey::ip(addr, 48), RateKey::Ip("2001:db8:aaaa::".parse().unwrap()));
        assert_eq!(RateKey::ip(addr, 200), RateKey::Ip(addr));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(RateKey::ip(v4, 0), RateKey::Ip(v4));
    }
}
