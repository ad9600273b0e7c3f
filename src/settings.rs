//! The original's settings, typed: from code, a TOML file, or
//! `CHANNELS_BINDING_*` environment variables (which win over the file).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use channels_binding_core::page_size::PageSize;

use crate::http::HttpConfig;
use crate::serve::ServeConfig;

/// The environment variable naming a TOML settings file.
pub const CONFIG_FILE_VAR: &str = "CHANNELS_BINDING_CONFIG";

/// The prefix of every settings variable.
pub const ENV_PREFIX: &str = "CHANNELS_BINDING_";

/// A secret string: compared and used, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret's bytes, for the code that needs them.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Every setting of a channels-binding server.
///
/// Keys keep the original's names: `DEFAULT_PAGE_SIZE`, `MAX_PAGE_SIZE`,
/// `ANONYMOUS_CONNECTION_ALLOWED`, … In TOML they may be written in any case;
/// as environment variables they take the `CHANNELS_BINDING_` prefix.
///
/// ```
/// use channels_binding::Settings;
///
/// let settings = Settings::from_sources(
///     Some("DEFAULT_PAGE_SIZE = 10\nallowed_origins = [\"https://app.example.com\"]"),
///     [("CHANNELS_BINDING_MAX_PAGE_SIZE", "50")],
/// )
/// .unwrap();
/// assert_eq!(settings.page_size.default_size(), 10);
/// assert_eq!(settings.page_size.max_size(), 50);
/// assert_eq!(settings.allowed_origins.as_deref(), Some(&["https://app.example.com".to_owned()][..]));
///
/// let err = Settings::from_sources(None, [("CHANNELS_BINDING_MAX_PAGE_SIZE", "lots")]).unwrap_err();
/// assert_eq!(err.key(), "CHANNELS_BINDING_MAX_PAGE_SIZE");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// `BIND`: where to listen (default `127.0.0.1:8000`; port 0 picks one).
    pub bind: SocketAddr,
    /// `DATABASE_URL`: `sqlite::memory:` (default), `sqlite://file.db`, `postgres://…`.
    pub database_url: String,
    /// `CHANNEL_LAYER`: `memory` (default), `redis://…` or `postgres://…`.
    pub channel_layer: String,
    /// `CHANNEL_PREFIX` (default `channels_binding`): the namespace of the
    /// Redis channel layer's keys and channel. Processes that share one
    /// deployment's streams use the same prefix; other deployments (or test
    /// runs) on the same Redis use their own.
    pub channel_prefix: String,
    /// `JWT_SECRET`: when set, HS256 bearer tokens are accepted.
    pub jwt_secret: Option<Secret>,
    /// `ANONYMOUS_CONNECTION_ALLOWED` (default `true`).
    pub anonymous_connection_allowed: bool,
    /// `ALLOWED_ORIGINS`: comma-separated (or a TOML array); unset means any.
    pub allowed_origins: Option<Vec<String>>,
    /// `DEFAULT_PAGE_SIZE` (25) and `MAX_PAGE_SIZE` (100).
    pub page_size: PageSize,
    /// `RATE_LIMIT_PER_SECOND`: per identity, else per IP; unset means no limit.
    pub rate_limit_per_second: Option<NonZeroU32>,
    /// `RATE_LIMIT_BURST`: the burst allowed above the rate (defaults to the rate).
    pub rate_limit_burst: Option<NonZeroU32>,
    /// `HEADER_TIMEOUT`: longest wait for a request's head (default `10s`).
    /// Durations are written `500ms`, `10s` or a bare number of seconds.
    pub header_timeout: Duration,
    /// `BODY_TIMEOUT`: longest time to receive a request body (default `30s`).
    pub body_timeout: Duration,
    /// `KEEP_ALIVE_TIMEOUT`: longest idle time between two requests on one
    /// connection (default `60s`).
    pub keep_alive_timeout: Duration,
    /// `MAX_CONNECTIONS`: most plain HTTP connections at once (default 10000).
    pub max_connections: NonZeroU32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database_url: "sqlite::memory:".to_owned(),
            channel_layer: "memory".to_owned(),
            channel_prefix: "channels_binding".to_owned(),
            jwt_secret: None,
            anonymous_connection_allowed: true,
            allowed_origins: None,
            page_size: PageSize::DEFAULT,
            rate_limit_per_second: None,
            rate_limit_burst: None,
            header_timeout: ServeConfig::default().header_timeout,
            body_timeout: HttpConfig::default().body_timeout,
            keep_alive_timeout: ServeConfig::default().keep_alive_timeout,
            max_connections: NonZeroU32::new(10_000).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// A setting that could not be used; names the key and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {key}: {message}")]
pub struct SettingsError {
    key: String,
    message: String,
}

impl SettingsError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The key, as the user wrote it (`CHANNELS_BINDING_MAX_PAGE_SIZE`, or the TOML key).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What was wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

const KEYS: [&str; 15] = [
    "BIND",
    "DATABASE_URL",
    "CHANNEL_LAYER",
    "CHANNEL_PREFIX",
    "JWT_SECRET",
    "ANONYMOUS_CONNECTION_ALLOWED",
    "ALLOWED_ORIGINS",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "RATE_LIMIT_PER_SECOND",
    "RATE_LIMIT_BURST",
    "HEADER_TIMEOUT",
    "BODY_TIMEOUT",
    "KEEP_ALIVE_TIMEOUT",
    "MAX_CONNECTIONS",
];

/// A raw value and the name it was given under, for error messages.
struct Raw {
    value: String,
    source: String,
}

impl Settings {
    /// Reads the file named by `CHANNELS_BINDING_CONFIG` (if set), then the
    /// `CHANNELS_BINDING_*` environment variables.
    ///
    /// # Errors
    ///
    /// A [`SettingsError`] naming the first key that is unknown, unreadable
    /// or of the wrong form.
    pub fn from_env() -> Result<Self, SettingsError> {
        let file = match std::env::var_os(CONFIG_FILE_VAR) {
            Some(path) => Some(std::fs::read_to_string(&path).map_err(|err| {
                SettingsError::new(
                    CONFIG_FILE_VAR,
                    format!("cannot read {}: {err}", path.to_string_lossy()),
                )
            })?),
            None => None,
        };
        let env: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        Self::from_sources(file.as_deref(), env)
    }

    /// Builds settings from TOML text and `(name, value)` environment pairs.
    ///
    /// # Errors
    ///
    /// A [`SettingsError`] naming the first bad key.
    pub fn from_sources<K, V>(
        toml_text: Option<&str>,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, SettingsError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut raw: BTreeMap<&'static str, Raw> = BTreeMap::new();
        if let Some(text) = toml_text {
            let table: toml::Table = toml::from_str(text)
                .map_err(|err| SettingsError::new(CONFIG_FILE_VAR, format!("invalid TOML: {err}")))?;
            for (name, value) in table {
                let key = known_key(&name.to_ascii_uppercase())
                    .ok_or_else(|| SettingsError::new(&name, "unknown setting"))?;
                let value = toml_value_text(&value).map_err(|message| SettingsError::new(&name, message))?;
                raw.insert(key, Raw { value, source: name });
            }
        }
        for (name, value) in env {
            let name = name.as_ref();
            let Some(suffix) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if name == CONFIG_FILE_VAR {
                continue;
            }
            let key = known_key(suffix).ok_or_else(|| SettingsError::new(name, "unknown setting"))?;
            raw.insert(
                key,
                Raw {
                    value: value.as_ref().to_owned(),
                    source: name.to_owned(),
                },
            );
        }
        Self::from_raw(&raw)
    }

    fn from_raw(raw: &BTreeMap<&'static str, Raw>) -> Result<Self, SettingsError> {
        let mut settings = Settings::default();
        if let Some(r) = raw.get("BIND") {
            settings.bind = r
                .value
                .trim()
                .parse()
                .map_err(|_| SettingsError::new(&r.source, format!("expected ADDR:PORT, got {:?}", r.value)))?;
        }
        if let Some(r) = raw.get("DATABASE_URL") {
            settings.database_url = non_empty(r)?;
        }
        if let Some(r) = raw.get("CHANNEL_LAYER") {
            let layer = non_empty(r)?;
            let known = layer == "memory"
                || layer.starts_with("redis://")
                || layer.starts_with("postgres://")
                || layer.starts_with("postgresql://");
            if !known {
                return Err(SettingsError::new(
                    &r.source,
                    "expected memory, redis://… or postgres://…",
                ));
            }
            settings.channel_layer = layer;
        }
        if let Some(r) = raw.get("CHANNEL_PREFIX") {
            let prefix = non_empty(r)?;
            let valid = prefix.len() <= 64
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
            if !valid {
                return Err(SettingsError::new(
                    &r.source,
                    "expected up to 64 characters among letters, digits, `_`, `-`, `.` and `:`",
                ));
            }
            settings.channel_prefix = prefix;
        }
        if let Some(r) = raw.get("JWT_SECRET") {
            if r.value.len() < 32 {
                return Err(SettingsError::new(
                    &r.source,
                    "an HS256 secret must be at least 32 bytes",
                ));
            }
            settings.jwt_secret = Some(Secret::new(r.value.clone()));
        }
        if let Some(r) = raw.get("ANONYMOUS_CONNECTION_ALLOWED") {
            settings.anonymous_connection_allowed = parse_bool(r)?;
        }
        if let Some(r) = raw.get("ALLOWED_ORIGINS") {
            let origins: Vec<String> = r
                .value
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(bad) = origins
                .iter()
                .find(|o| !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/'))
            {
                return Err(SettingsError::new(
                    &r.source,
                    format!("{bad:?} is not an origin like https://app.example.com"),
                ));
            }
            settings.allowed_origins = Some(origins);
        }
        let default_size = raw.get("DEFAULT_PAGE_SIZE").map(parse_count).transpose()?;
        let max_size = raw.get("MAX_PAGE_SIZE").map(parse_count).transpose()?;
        if default_size.is_some() || max_size.is_some() {
            let default_size = default_size.map_or(PageSize::DEFAULT.default_size(), NonZeroU32::get);
            let max_size = max_size.map_or(PageSize::DEFAULT.max_size(), NonZeroU32::get);
            settings.page_size = PageSize::new(default_size, max_size).map_err(|err| {
                let key = raw
                    .get("DEFAULT_PAGE_SIZE")
                    .map_or("MAX_PAGE_SIZE", |r| r.source.as_str());
                SettingsError::new(key, err.to_string())
            })?;
        }
        settings.rate_limit_per_second = raw.get("RATE_LIMIT_PER_SECOND").map(parse_count).transpose()?;
        settings.rate_limit_burst = raw.get("RATE_LIMIT_BURST").map(parse_count).transpose()?;
        if let (None, Some(r)) = (settings.rate_limit_per_second, raw.get("RATE_LIMIT_BURST")) {
            return Err(SettingsError::new(&r.source, "a burst needs RATE_LIMIT_PER_SECOND too"));
        }
        if let Some(r) = raw.get("HEADER_TIMEOUT") {
            settings.header_timeout = parse_duration(r)?;
        }
        if let Some(r) = raw.get("BODY_TIMEOUT") {
            settings.body_timeout = parse_duration(r)?;
        }
        if let Some(r) = raw.get("KEEP_ALIVE_TIMEOUT") {
            settings.keep_alive_timeout = parse_duration(r)?;
        }
        if let Some(r) = raw.get("MAX_CONNECTIONS") {
            settings.max_connections = parse_count(r)?;
        }
        Ok(settings)
    }

    /// The accept loop's limits: `HEADER_TIMEOUT`, `KEEP_ALIVE_TIMEOUT` and
    /// `MAX_CONNECTIONS`, for [`serve_with_config`](crate::serve_with_config).
    ///
    /// ```
    /// use std::time::Duration;
    /// use channels_binding::Settings;
    ///
    /// let settings = Settings::from_sources(None, [("CHANNELS_BINDING_HEADER_TIMEOUT", "500ms")]).unwrap();
    /// assert_eq!(settings.serve_config().header_timeout, Duration::from_millis(500));
    /// ```
    pub fn serve_config(&self) -> ServeConfig {
        ServeConfig::default()
            .header_timeout(self.header_timeout)
            .keep_alive_timeout(self.keep_alive_timeout)
            .max_connections(usize::try_from(self.max_connections.get()).unwrap_or(usize::MAX))
    }

    /// The HTTP transport's limits: `BODY_TIMEOUT`, for
    /// [`HttpApi::with_config`](crate::http::HttpApi::with_config).
    ///
    /// ```
    /// use std::time::Duration;
    /// use channels_binding::Settings;
    ///
    /// let settings = Settings::from_sources(None, [("CHANNELS_BINDING_BODY_TIMEOUT", "2")]).unwrap();
    /// assert_eq!(settings.http_config().body_timeout, Duration::from_secs(2));
    /// ```
    pub fn http_config(&self) -> HttpConfig {
        HttpConfig::default().body_timeout(self.body_timeout)
    }
}

fn known_key(name: &str) -> Option<&'static str> {
    KEYS.iter().copied().find(|key| *key == name)
}

fn toml_value_text(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::String(s) => Ok(s.clone()),
                _ => Err("expected an array of strings".to_owned()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(",")),
        _ => Err("expected a string, a number, a boolean or an array of strings".to_owned()),
    }
}

fn non_empty(raw: &Raw) -> Result<String, SettingsError> {
    let value = raw.value.trim();
    if value.is_empty() {
        return Err(SettingsError::new(&raw.source, "may not be empty"));
    }
    Ok(value.to_owned())
}

fn parse_bool(raw: &Raw) -> Result<bool, SettingsError> {
    match raw.value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(SettingsError::new(
            &raw.source,
            format!("expected true or false, got {:?}", raw.value),
        )),
    }
}

/// A positive duration: `250ms`, `10s`, or a bare (decimal) number of seconds.
fn parse_duration(raw: &Raw) -> Result<Duration, SettingsError> {
    let text = raw.value.trim();
    let parsed = if let Some(ms) = text.strip_suffix("ms") {
        ms.trim().parse::<u64>().ok().map(Duration::from_millis)
    } else {
        let seconds = text.strip_suffix('s').unwrap_or(text).trim();
        seconds
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    };
    match parsed {
        Some(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(SettingsError::new(
            &raw.source,
            format!("expected a duration such as 500ms or 10s, got {:?}", raw.value),
        )),
    }
}

fn parse_count(raw: &Raw) -> Result<NonZeroU32, SettingsError> {
    raw.value.trim().parse::<NonZeroU32>().map_err(|_| {
        SettingsError::new(
            &raw.source,
            format!("expected a whole number of at least 1, got {:?}", raw.value),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_match_the_demo_contract() {
        let settings = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!(settings.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(settings.database_url, "sqlite::memory:");
        assert_eq!(settings.channel_layer, "memory");
        assert_eq!(settings.channel_prefix, "channels_binding");
        assert!(settings.anonymous_connection_allowed);
        assert_eq!(settings.page_size, PageSize::DEFAULT);
        assert!(settings.allowed_origins.is_none());
        assert!(settings.rate_limit_per_second.is_none());
        assert_eq!(settings.header_timeout, Duration::from_secs(10));
        assert_eq!(settings.body_timeout, Duration::from_secs(30));
        assert_eq!(settings.keep_alive_timeout, Duration::from_secs(60));
        assert_eq!(settings.max_connections.get(), 10_000);
    }

    #[test]
    fn timeouts_and_the_connection_cap() {
        let settings = Settings::from_sources(
            Some("header_timeout = \"2s\"\nkeep_alive_timeout = 1.5\nmax_connections = 64"),
            env(&[("CHANNELS_BINDING_BODY_TIMEOUT", "750ms")]),
        )
        .unwrap();
        let serve = settings.serve_config();
        assert_eq!(serve.header_timeout, Duration::from_secs(2));
        assert_eq!(serve.keep_alive_timeout, Duration::from_millis(1500));
        assert_eq!(serve.max_connections, 64);
        assert_eq!(settings.http_config().body_timeout, Duration::from_millis(750));
    }

    #[test]
    fn environment_wins_over_the_file() {
        let file = "bind = \"127.0.0.1:9000\"\nANONYMOUS_CONNECTION_ALLOWED = false\nmax_page_size = 40";
        let settings = Settings::from_sources(Some(file), env(&[("CHANNELS_BINDING_BIND", "127.0.0.1:0")])).unwrap();
        assert_eq!(settings.bind.port(), 0);
        assert!(!settings.anonymous_connection_allowed);
        assert_eq!(settings.page_size.max_size(), 40);
    }

    /// A TOML file, environment pairs, and the key the error must name.
    type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn errors_name_the_key() {
        let cases: &[Case<'_>] = &[
            (None, &[("CHANNELS_BINDING_BIND", "nowhere")], "CHANNELS_BINDING_BIND"),
            (
                None,
                &[("CHANNELS_BINDING_DEFAULT_PAGE_SIZE", "0")],
                "CHANNELS_BINDING_DEFAULT_PAGE_SIZE",
            ),
            (
                None,
                &[("CHANNELS_BINDING_DEFAULT_PAGE_SIZE", "500")],
                "CHANNELS_BINDING_DEFAULT_PAGE_SIZE",
            ),
            (
                None,
                &[("CHANNELS_BINDING_ANONYMOUS_CONNECTION_ALLOWED", "maybe")],
                "CHANNELS_BINDING_ANONYMOUS_CONNECTION_ALLOWED",
            ),
            (
                None,
                &[("CHANNELS_BINDING_MAX_PAGESIZE", "5")],
                "CHANNELS_BINDING_MAX_PAGESIZE",
            ),
            (
                None,
                &[("CHANNELS_BINDING_JWT_SECRET", "short")],
                "CHANNELS_BINDING_JWT_SECRET",
            ),
            (
                None,
                &[("CHANNELS_BINDING_ALLOWED_ORIGINS", "app.example.com")],
                "CHANNELS_BINDING_ALLOWED_ORIGINS",
            ),
            (
                None,
                &[("CHANNELS_BINDING_CHANNEL_LAYER", "carrier-pigeon")],
                "CHANNELS_BINDING_CHANNEL_LAYER",
            ),
            (
                None,
                &[("CHANNELS_BINDING_RATE_LIMIT_BURST", "5")],
                "CHANNELS_BINDING_RATE_LIMIT_BURST",
            ),
            (Some("colour = \"blue\""), &[], "colour"),
            (Some("max_page_size = 1.5"), &[], "max_page_size"),
            (Some("this is not toml"), &[], CONFIG_FILE_VAR),
            (
                None,
                &[("CHANNELS_BINDING_CHANNEL_PREFIX", "a b")],
                "CHANNELS_BINDING_CHANNEL_PREFIX",
            ),
            (
                None,
                &[("CHANNELS_BINDING_HEADER_TIMEOUT", "0s")],
                "CHANNELS_BINDING_HEADER_TIMEOUT",
            ),
            (
                None,
                &[("CHANNELS_BINDING_BODY_TIMEOUT", "soon")],
                "CHANNELS_BINDING_BODY_TIMEOUT",
            ),
            (
                None,
                &[("CHANNELS_BINDING_KEEP_ALIVE_TIMEOUT", "-1")],
                "CHANNELS_BINDING_KEEP_ALIVE_TIMEOUT",
            ),
            (
                None,
                &[("CHANNELS_BINDING_MAX_CONNECTIONS", "0")],
                "CHANNELS_BINDING_MAX_CONNECTIONS",
            ),
        ];
        for (file, vars, key) in cases {
            let err = Settings::from_sources(*file, env(vars)).unwrap_err();
            assert_eq!(err.key(), *key, "{err}");
        }
    }

    #[test]
    fn channel_prefix_from_the_environment() {
        let settings = Settings::from_sources(None, env(&[("CHANNELS_BINDING_CHANNEL_PREFIX", "shop-eu:1")])).unwrap();
        assert_eq!(settings.channel_prefix, "shop-eu:1");
    }

    #[test]
    fn secrets_do_not_print() {
        let settings = Settings::from_sources(None, env(&[("CHANNELS_BINDING_JWT_SECRET", &"s".repeat(40))])).unwrap();
        assert!(!format!("{settings:?}").contains("sssss"));
    }
}
