//! The demo's authentication: HS256 bearer tokens when
//! `CHANNELS_BINDING_JWT_SECRET` is set; `sub` is a user id of `auth_user`,
//! whose staff flag is read from the database at connection time.

use channels_binding::auth::{AuthError, AuthStrategies};
use channels_binding::jwt::{JwtConfig, JwtStrategy};
use channels_binding::{Principal, Settings};
use sqlx::SqlitePool;

use super::BoxError;

/// The strategies the settings ask for (none: everyone is anonymous).
pub fn strategies(settings: &Settings, pool: &SqlitePool) -> Result<AuthStrategies, BoxError> {
    let mut strategies = AuthStrategies::new();
    if let Some(secret) = &settings.jwt_secret {
        let config = JwtConfig::hs256(secret.expose().as_bytes())?;
        let pool = pool.clone();
        let jwt = JwtStrategy::new(config).with_resolver(move |claims| {
            let pool = pool.clone();
            let subject = claims.subject().to_owned();
            let expires = claims.expires_at();
            Box::pin(async move {
                // A token for a user id that is not ours, or no longer
                // exists, is an invalid token.
                let Ok(id) = subject.parse::<i64>() else {
                    return Ok(None);
                };
                let row: Option<(bool,)> = sqlx::query_as("SELECT is_staff FROM auth_user WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&pool)
                    .await
                    .map_err(|_| AuthError::unavailable("the user store is unavailable"))?;
                Ok(row.map(|(is_staff,)| Principal::new(subject).staff(is_staff).expires_at(expires)))
            })
        });
        strategies = strategies.with(jwt);
    }
    Ok(strategies)
}
