//! `auth.login` and `auth.logout`: sessions started and ended by events, on
//! a socket (the identity changes in-band) or over HTTP (the reply sets or
//! clears the `HttpOnly` cookie).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use channels_binding_core::auth::{AuthError, AuthErrorKind};
use channels_binding_core::hub::Connection;
use channels_binding_core::protocol::{ErrorCode, EventError};
use channels_binding_core::{ClientAddr, Data, EventRouter, Hub, Identity, Principal, Reply, ReplyHeaders};
use futures_util::future::BoxFuture;
use http::header::SET_COOKIE;
use serde_json::json;

use super::cookie::SessionCookie;
use super::password::{PasswordCheck, PasswordCheckError};
use super::store::SessionStore;
use super::strategy::SessionStrategy;
use super::throttle::LoginThrottle;

/// Checks a username and password: `Ok(Some(principal))` when they match,
/// `Ok(None)` when they do not (unknown user or wrong password alike).
pub type Verifier =
    Arc<dyn Fn(String, String) -> BoxFuture<'static, Result<Option<Principal>, AuthError>> + Send + Sync>;

/// Finds a user by username: who they are and their stored Argon2 PHC
/// string; `Ok(None)` for an unknown username.
pub type UserLookup =
    Arc<dyn Fn(String) -> BoxFuture<'static, Result<Option<(Principal, String)>, AuthError>> + Send + Sync>;

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

/// How credentials are checked.
#[derive(Clone)]
enum Check {
    /// By the application's own function.
    Custom(Verifier),
    /// Against stored Argon2 hashes, in bounded slots.
    Hashes {
        lookup: UserLookup,
        passwords: PasswordCheck,
    },
}

/// Why credentials could not be judged (as opposed to being wrong).
enum Undecided {
    Busy(Duration),
    Unavailable(String),
    Invalid(String),
}

/// Sign-in and sign-out events backed by a [`SessionStore`], like the
/// original's `login` / `logout`:
///
/// * `auth.login {username, password}` checks the credentials and starts a
///   session. On a socket, the socket's identity changes at once; over HTTP,
///   the response sets the session cookie (`HttpOnly`, `SameSite`), which
///   later requests and upgrades present.
/// * `auth.logout` ends the caller's session and clears the cookie; on a
///   socket the identity becomes anonymous.
///
/// Wrong credentials are `unauthenticated`, with one message whether the
/// user exists or not. Every attempt goes through a [`LoginThrottle`]
/// (per username and per client IP): a locked one is answered
/// `rate_limited` with `retry_after_ms` at once, before any hashing.
///
/// With [`with_password_hashes`](Self::with_password_hashes) the hashing is
/// done here, bounded by a [`PasswordCheck`] (slots, waiting, memory, and
/// the same work for unknown users): prefer it to a hand-written verifier.
///
/// ```
/// use std::time::Duration;
/// use channels_binding_sqlx::{SessionAuth, SessionStore};
/// use channels_binding_core::{EventRouter, Principal};
///
/// # async fn demo(pool: sqlx::SqlitePool) {
/// let store = SessionStore::new(pool, Duration::from_secs(8 * 3600));
/// let sessions = SessionAuth::with_password_hashes(store, |username| {
///     Box::pin(async move {
///         // Look the user up: who they are and their stored Argon2 hash.
///         let hash = "$argon2id$v=19$m=19456,t=2,p=1$eok8D8N3eaONqwTrIrYO9A$/BkIMtUpQpxnCZBCOI2LZXS2hSQW8u8HAmdKsODrnH4";
///         Ok((username == "demo").then(|| (Principal::new("1"), hash.to_owned())))
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
    check: Check,
    throttle: LoginThrottle,
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
    /// Sessions in `store`, credentials checked by `verify` (which must
    /// bound its own work: see [`with_password_hashes`](Self::with_password_hashes)).
    pub fn new(
        store: SessionStore,
        verify: impl Fn(String, String) -> BoxFuture<'static, Result<Option<Principal>, AuthError>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            store,
            cookie: SessionCookie::default(),
            check: Check::Custom(Arc::new(verify)),
            throttle: LoginThrottle::new(),
        }
    }

    /// Sessions in `store`; `lookup` finds a user and their stored Argon2
    /// hash, which a default [`PasswordCheck`] verifies.
    pub fn with_password_hashes(
        store: SessionStore,
        lookup: impl Fn(String) -> BoxFuture<'static, Result<Option<(Principal, String)>, AuthError>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self {
            store,
            cookie: SessionCookie::default(),
            check: Check::Hashes {
                lookup: Arc::new(lookup),
                passwords: PasswordCheck::new(),
            },
            throttle: LoginThrottle::new(),
        }
    }

    /// Verifies hashes with this [`PasswordCheck`] (slots, waiting, memory).
    /// No effect on a custom verifier given to [`new`](Self::new).
    #[must_use]
    pub fn password_check(mut self, check: PasswordCheck) -> Self {
        if let Check::Hashes { passwords, .. } = &mut self.check {
            *passwords = check;
        }
        self
    }

    /// Throttles attempts with these rules instead of the defaults.
    #[must_use]
    pub fn throttle(mut self, throttle: LoginThrottle) -> Self {
        self.throttle = throttle;
        self
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
                move |Data(credentials): Data<Credentials>,
                      hub: Hub,
                      connection: Option<Connection>,
                      client: Option<ClientAddr>| {
                    let this = login.clone();
                    async move { this.login(credentials, client, &hub, connection.as_ref()).await }
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

    async fn login(
        &self,
        credentials: Credentials,
        client: Option<ClientAddr>,
        hub: &Hub,
        connection: Option<&Connection>,
    ) -> Reply {
        if credentials.username.chars().count() > MAX_USERNAME || credentials.password.len() > MAX_PASSWORD {
            return Reply::error(EventError::validation_field("username", "credentials too long"));
        }
        // PostgreSQL refuses NUL in text outright (an error, not "no such
        // user"), and SQLite would compare a truncated string: refuse it here.
        if credentials.username.contains('\0') || credentials.password.contains('\0') {
            return Reply::error(EventError::validation_field(
                "username",
                "may not contain a NUL character",
            ));
        }
        let attempt = match self.throttle.begin(&credentials.username, client.map(|c| c.0.ip())) {
            Ok(attempt) => attempt,
            Err(throttled) => {
                return Reply::error(retry_later("too many failed sign-ins", throttled.retry_after()));
            }
        };
        let principal = match self.verify(credentials).await {
            Ok(Some(principal)) => {
                attempt.succeeded();
                principal
            }
            // A wrong password stays counted: `attempt` is dropped.
            Ok(None) => return Reply::error(EventError::unauthenticated("invalid username or password")),
            Err(undecided) => {
                attempt.undecided();
                return Reply::error(match undecided {
                    Undecided::Busy(retry_after) => retry_later("too many sign-ins at once", retry_after),
                    Undecided::Unavailable(message) => EventError::unavailable(message),
                    Undecided::Invalid(message) => EventError::unauthenticated(message),
                });
            }
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
            // The session's expiry and sign-out signal travel with the
            // identity, so the socket ends with the session.
            hub.set_identity(connection, Identity::from(session.principal(principal)));
        }
        let cookie = self.cookie.set(&session.token, self.store.ttl().as_secs());
        Reply::ok(data).with_extension(ReplyHeaders::new().with(SET_COOKIE, cookie))
    }

    async fn verify(&self, credentials: Credentials) -> Result<Option<Principal>, Undecided> {
        let from_auth_error = |err: AuthError| match err.kind() {
            AuthErrorKind::Unavailable => Undecided::Unavailable(err.message().to_owned()),
            _ => Undecided::Invalid(err.message().to_owned()),
        };
        match &self.check {
            Check::Custom(verify) => verify(credentials.username, credentials.password)
                .await
                .map_err(from_auth_error),
            Check::Hashes { lookup, passwords } => {
                let user = lookup(credentials.username).await.map_err(from_auth_error)?;
                let (principal, hash) = user.map_or((None, None), |(principal, hash)| (Some(principal), Some(hash)));
                match passwords.verify(credentials.password, hash).await {
                    Ok(true) => Ok(principal),
                    Ok(false) => Ok(None),
                    Err(PasswordCheckError::Busy { retry_after }) => Err(Undecided::Busy(retry_after)),
                    Err(err) => {
                        tracing::warn!(error = %err, "a password could not be checked");
                        Err(Undecided::Unavailable("the password check is unavailable".to_owned()))
                    }
                }
            }
        }
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

/// `rate_limited` with the wait in whole milliseconds, rounded up so that a
/// client retrying on time is never early.
fn retry_later(message: &'static str, retry_after: Duration) -> EventError {
    let millis = u64::try_from(retry_after.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    EventError::new(ErrorCode::RateLimited, message).with_detail("retry_after_ms", millis.max(1))
}
