//! `auth.login` and `auth.logout`: sessions started and ended by events, on
//! a socket (the identity changes in-band) or over HTTP (the reply sets or
//! clears the `HttpOnly` cookie).

use std::fmt;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use channels_binding_core::auth::{AuthError, AuthErrorKind};
use channels_binding_core::hub::Connection;
use channels_binding_core::protocol::EventError;
use channels_binding_core::{Data, EventRouter, Hub, Identity, Principal, Reply, ReplyHeaders};
use futures_util::future::BoxFuture;
use http::header::SET_COOKIE;
use serde_json::json;

use super::cookie::SessionCookie;
use super::store::SessionStore;
use super::strategy::SessionStrategy;

/// Checks a username and password: `Ok(Some(principal))` when they match,
/// `Ok(None)` when they do not (unknown user or wrong password alike).
pub type Verifier =
    Arc<dyn Fn(String, String) -> BoxFuture<'static, Result<Option<Principal>, AuthError>> + Send + Sync>;

/// Longest username accepted, in characters.
const MAX_USERNAME: usize = 150;
/// Longest password accepted, in bytes (bounds the hashing work a request can cause).
const MAX_PASSWORD: usize = 1024;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

/// Sign-in and sign-out events backed by a [`SessionStore`], like the
/// original's `login` / `logout`:
///
/// * `auth.login {username, password}` checks the credentials with your
///   verifier and starts a session. On a socket, the socket's identity
///   changes at once; over HTTP, the response sets the session cookie
///   (`HttpOnly`, `SameSite`), which later requests and upgrades present.
/// * `auth.logout` ends the caller's session and clears the cookie; on a
///   socket the identity becomes anonymous.
///
/// Wrong credentials are `unauthenticated`, with one message whether the
/// user exists or not.
///
/// ```
/// use std::time::Duration;
/// use channels_binding_sqlx::{SessionAuth, SessionStore};
/// use channels_binding_core::{EventRouter, Principal};
///
/// # async fn demo(pool: sqlx::SqlitePool) {
/// let store = SessionStore::new(pool, Duration::from_secs(8 * 3600));
/// let sessions = SessionAuth::new(store, |username, password| {
///     Box::pin(async move {
///         // Look the user up and verify the password hash here.
///         Ok((username == "demo" && password == "demo").then(|| Principal::new("1")))
///     })
/// });
/// let router = sessions.routes(EventRouter::new());
/// let strategy = sessions.strategy(); // for the AuthLayer
/// # let _ = (router, strategy); }
/// ```
#[derive(Clone)]
pub struct SessionAuth {
    store: SessionStore,
    cookie: SessionCookie,
    verify: Verifier,
}

impl fmt::Debug for SessionAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionAuth")
            .field("store", &self.store)
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl SessionAuth {
    /// Sessions in `store`, credentials checked by `verify`.
    pub fn new(
        store: SessionStore,
        verify: impl Fn(String, String) -> BoxFuture<'static, Result<Option<Principal>, AuthError>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            store,
            cookie: SessionCookie::default(),
            verify: Arc::new(verify),
        }
    }

    /// Uses this cookie (name and flags).
    #[must_use]
    pub fn cookie(mut self, cookie: SessionCookie) -> Self {
        self.cookie = cookie;
        self
    }

    /// The strategy that recognises this session cookie, for an `AuthLayer`.
    pub fn strategy(&self) -> SessionStrategy {
        SessionStrategy::new(self.store.clone(), self.cookie.clone())
    }

    /// Adds `auth.login` and `auth.logout` to a router.
    pub fn routes(&self, router: EventRouter) -> EventRouter {
        let login = self.clone();
        let logout = self.clone();
        router
            .on(
                "auth.login",
                move |Data(credentials): Data<Credentials>, hub: Hub, connection: Option<Connection>| {
                    let this = login.clone();
                    async move { this.login(credentials, &hub, connection.as_ref()).await }
                },
            )
            .on(
                "auth.logout",
                move |identity: Identity, hub: Hub, connection: Option<Connection>| {
                    let this = logout.clone();
                    async move { this.logout(&identity, &hub, connection.as_ref()).await }
                },
            )
    }

    async fn login(&self, credentials: Credentials, hub: &Hub, connection: Option<&Connection>) -> Reply {
        if credentials.username.chars().count() > MAX_USERNAME || credentials.password.len() > MAX_PASSWORD {
            return Reply::error(EventError::validation_field("username", "credentials too long"));
        }
        let principal = match (self.verify)(credentials.username, credentials.password).await {
            Ok(Some(principal)) => principal,
            Ok(None) => return Reply::error(EventError::unauthenticated("invalid username or password")),
            Err(err) if err.kind() == AuthErrorKind::Unavailable => {
                return Reply::error(EventError::unavailable(err.message().to_owned()));
            }
            Err(err) => return Reply::error(EventError::unauthenticated(err.message().to_owned())),
        };
        let session = match self.store.create(&principal).await {
            Ok(session) => session,
            Err(err) => {
                tracing::warn!(error = %err, "could not start a session");
                return Reply::error(EventError::unavailable("the session store is unavailable"));
            }
        };
        let expires = session.expires_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let data = json!({ "user": principal.id(), "is_staff": principal.is_staff(), "expires_at": expires });
        if let Some(connection) = connection {
            let identity = principal
                .expires_at(session.expires_at)
                .attribute("session", session.digest.clone());
            hub.set_identity(connection, Identity::from(identity));
        }
        let cookie = self.cookie.set(&session.token, self.store.ttl().as_secs());
        Reply::ok(data).with_extension(ReplyHeaders::new().with(SET_COOKIE, cookie))
    }

    async fn logout(&self, identity: &Identity, hub: &Hub, connection: Option<&Connection>) -> Reply {
        let digest = identity
            .principal()
            .and_then(|p| p.attributes().get("session"))
            .and_then(serde_json::Value::as_str);
        if let Some(digest) = digest
            && let Err(err) = self.store.delete(digest).await
        {
            tracing::warn!(error = %err, "could not end a session");
            return Reply::error(EventError::unavailable("the session store is unavailable"));
        }
        if let Some(connection) = connection {
            hub.set_identity(connection, Identity::anonymous());
        }
        Reply::ok(json!({ "signed_out": true }))
            .with_extension(ReplyHeaders::new().with(SET_COOKIE, self.cookie.clear()))
    }
}
