//! The demo's authentication, on either database:
//! * HS256 bearer tokens when `CHANNELS_BINDING_JWT_SECRET` is set (`sub` is
//!   a user id of `auth_user`, whose staff flag is read at connection time);
//! * sessions: `auth.login {username, password}` (every demo user's password
//!   is `demo`) starts one, in-band on a socket or as an `HttpOnly` cookie
//!   over HTTP; `auth.logout` ends it.

use std::time::Duration;

use channels_binding::Principal;
use channels_binding::Settings;
use channels_binding::auth::{AuthError, AuthStrategies};
use channels_binding::jwt::{JwtConfig, JwtStrategy};
use channels_binding::models::{Database, SessionAuth, SessionCookie, SessionStore};

use super::BoxError;

/// How long a session lasts.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// `(id, is_staff, password_hash)` of a user, by id or by username.
async fn find_user(
    database: &Database,
    by_username: Option<&str>,
    by_id: Option<i64>,
) -> Result<Option<(i64, bool, String)>, AuthError> {
    let unavailable = |_| AuthError::unavailable("the user store is unavailable");
    match database {
        Database::Sqlite(pool) => {
            sqlx::query_as("SELECT id, is_staff, password_hash FROM auth_user WHERE username = ? OR id = ?")
                .bind(by_username)
                .bind(by_id)
                .fetch_optional(pool)
                .await
                .map_err(unavailable)
        }
        Database::Postgres(pool) => {
            sqlx::query_as("SELECT id, is_staff, password_hash FROM auth_user WHERE username = $1 OR id = $2")
                .bind(by_username)
                .bind(by_id)
                .fetch_optional(pool)
                .await
                .map_err(unavailable)
        }
        _ => Err(AuthError::unavailable("unsupported database")),
    }
}

/// Sign-in and sign-out events backed by the demo's database. Passwords are
/// checked in bounded slots (one per core), unknown users against a dummy
/// hash, and attempts are throttled per username and per IP. The cookie is
/// `Secure` unless the demo listens on a loopback address.
pub async fn sessions(database: &Database, settings: &Settings) -> Result<SessionAuth, BoxError> {
    let store = SessionStore::new(database.clone(), SESSION_TTL);
    store.install().await?;
    let database = database.clone();
    let cookie = SessionCookie::default().secure_unless_loopback(settings.bind, false);
    Ok(SessionAuth::with_password_hashes(store, move |username| {
        let database = database.clone();
        Box::pin(async move {
            let user = find_user(&database, Some(&username), None).await?;
            Ok(user.map(|(id, is_staff, hash)| (Principal::new(id.to_string()).staff(is_staff), hash)))
        })
    })
    .cookie(cookie))
}

/// The strategies the settings ask for: sessions always, JWT when a secret is set.
pub fn strategies(
    settings: &Settings,
    database: &Database,
    sessions: &SessionAuth,
) -> Result<AuthStrategies, BoxError> {
    let mut strategies = AuthStrategies::new().with(sessions.strategy());
    if let Some(secret) = &settings.jwt_secret {
        let config = JwtConfig::hs256(secret.expose().as_bytes())?;
        let database = database.clone();
        let jwt = JwtStrategy::new(config).with_resolver(move |claims| {
            let database = database.clone();
            let subject = claims.subject().to_owned();
            let subject_id = claims.subject_id();
            let expires = claims.expires_at();
            Box::pin(async move {
                // A token for a user id that is not ours, or no longer
                // exists, is an invalid token. Only the canonical spelling
                // names a user: `+5763` or `05763` would be the same user
                // under another name (and another rate-limit budget).
                let Some(id) = subject_id else {
                    return Ok(None);
                };
                let user = find_user(&database, None, Some(id)).await?;
                Ok(user.map(|(_, is_staff, _)| Principal::new(subject).staff(is_staff).expires_at(expires)))
            })
        });
        strategies = strategies.with(jwt);
    }
    Ok(strategies)
}
