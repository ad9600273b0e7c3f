//! The session cookie: `HttpOnly`, `SameSite`, optionally `Secure`.

use http::HeaderValue;
use http::header::COOKIE;

/// How the session cookie is named and flagged.
///
/// ```
/// use channels_binding_sqlx::SessionCookie;
///
/// let cookie = SessionCookie::default().secure(true);
/// let header = cookie.set("abc", 3600);
/// assert_eq!(header.to_str().unwrap(), "cb_session=abc; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax; Secure");
/// ```
#[derive(Debug, Clone)]
pub struct SessionCookie {
    name: String,
    path: String,
    secure: bool,
    same_site_strict: bool,
}

impl Default for SessionCookie {
    fn default() -> Self {
        Self {
            name: "cb_session".to_owned(),
            path: "/".to_owned(),
            secure: false,
            same_site_strict: false,
        }
    }
}

impl SessionCookie {
    /// Sends the cookie only over HTTPS (set it in production).
    #[must_use]
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// `Secure` unless the server is plain HTTP on a loopback address (a
    /// developer's machine, where browsers would drop a `Secure` cookie
    /// sent over `http://`): a server that others reach sends its session
    /// cookie only over HTTPS, even if it is plain HTTP behind a proxy.
    ///
    /// ```
    /// use channels_binding_sqlx::SessionCookie;
    ///
    /// let local = SessionCookie::default().secure_unless_loopback("127.0.0.1:8000".parse().unwrap(), false);
    /// assert!(!local.set("t", 60).to_str().unwrap().contains("Secure"));
    /// let public = SessionCookie::default().secure_unless_loopback("0.0.0.0:8000".parse().unwrap(), false);
    /// assert!(public.set("t", 60).to_str().unwrap().ends_with("; Secure"));
    /// let local_tls = SessionCookie::default().secure_unless_loopback("[::1]:8443".parse().unwrap(), true);
    /// assert!(local_tls.set("t", 60).to_str().unwrap().ends_with("; Secure"));
    /// ```
    #[must_use]
    pub fn secure_unless_loopback(self, bind: std::net::SocketAddr, tls: bool) -> Self {
        self.secure(tls || !bind.ip().is_loopback())
    }

    /// `SameSite=Strict` instead of `Lax`.
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.same_site_strict = strict;
        self
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn attributes(&self, max_age: u64) -> String {
        let same_site = if self.same_site_strict { "Strict" } else { "Lax" };
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "Path={}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}",
            self.path
        )
    }

    /// The `Set-Cookie` value that stores `token` for `max_age` seconds.
    pub fn set(&self, token: &str, max_age: u64) -> HeaderValue {
        let value = format!("{}={token}; {}", self.name, self.attributes(max_age));
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("cb_session=; Max-Age=0"))
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub fn clear(&self) -> HeaderValue {
        let value = format!("{}=; {}", self.name, self.attributes(0));
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("cb_session=; Max-Age=0"))
    }

    /// The cookie's value in a request's `Cookie` headers, if present.
    pub fn read<'a>(&self, headers: &'a http::HeaderMap) -> Option<&'a str> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.name)
            .map(|(_, value)| value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_cookie_among_others() {
        let mut headers = http::HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("theme=dark; cb_session=tok123"));
        headers.append(COOKIE, HeaderValue::from_static("other=1"));
        assert_eq!(SessionCookie::default().read(&headers), Some("tok123"));
        assert_eq!(SessionCookie::default().read(&http::HeaderMap::new()), None);
    }

    #[test]
    fn clearing_expires_it() {
        let cleared = SessionCookie::default().clear();
        assert!(
            cleared
                .to_str()
                .unwrap()
                .starts_with("cb_session=; Path=/; Max-Age=0; HttpOnly")
        );
    }
}
