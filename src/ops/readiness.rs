//! The readiness probe.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, join_all};
use http::header::{CACHE_CONTROL, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value};
use tower::Service;

use super::method;
use crate::body::{Body, empty};
use crate::response;

type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// One named dependency check.
#[derive(Clone)]
struct Check {
    name: String,
    run: CheckFn,
}

/// A readiness probe (`GET /ready`): runs every named check concurrently,
/// each bounded by a timeout, and answers
///
/// * `200` with `{"status":"ready","checks":{"database":"ok",…}}` when all pass;
///   a check that passed, but only after [`slow_after`](Self::slow_after)
///   (a broker under load, say), reports `"slow"` instead of `"ok"` and
///   still counts as ready: it delivers, late, and taking the process out
///   would move its load onto the others;
/// * `503` with `{"status":"unavailable","checks":{"database":"ok","channel_layer":"unavailable"}}`
///   when any fails, times out or panics: a dependency that does not
///   answer within the [timeout](Self::timeout) is taken as dead.
///
/// A failure's detail goes to the log (`tracing::warn!`), never into the
/// response: error texts may name hosts, users or SQL. Responses carry
/// `Cache-Control: no-store`; `HEAD` gets the status and headers alone;
/// other methods get `405`. The request body is never read.
///
/// Every probe runs every check: mount it where only the orchestrator
/// reaches it, or behind a rate limit, if checks are expensive.
///
/// ```
/// use std::time::Duration;
///
/// use channels_binding::ops::Readiness;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let ready = Readiness::new()
///     .timeout(Duration::from_millis(500))
///     .check("database", || async { Ok::<(), std::io::Error>(()) })
///     .check("channel_layer", || async { Err::<(), _>("broker at 10.0.0.7 refused") });
///
/// let request = http::Request::get("/ready").body(()).unwrap();
/// let response = ready.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 503);
/// # }
/// ```
#[derive(Clone)]
pub struct Readiness {
    checks: Arc<Vec<Check>>,
    timeout: Duration,
    slow_after: Duration,
}

impl Readiness {
    /// The default time each check has to pass: 5 seconds. Set the
    /// orchestrator's probe timeout above it.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use channels_binding::ops::Readiness;
    ///
    /// assert_eq!(Readiness::DEFAULT_TIMEOUT, Duration::from_secs(5));
    /// ```
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// The default time after which a passing check reports `"slow"`: 1 second.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use channels_binding::ops::Readiness;
    ///
    /// assert_eq!(Readiness::DEFAULT_SLOW_AFTER, Duration::from_secs(1));
    /// ```
    pub const DEFAULT_SLOW_AFTER: Duration = Duration::from_secs(1);

    /// A probe with no checks yet (it answers `200` until checks are added).
    ///
    /// ```
    /// use channels_binding::ops::Readiness;
    ///
    /// let ready = Readiness::new();
    /// assert_eq!(ready.check_names().count(), 0);
    /// ```
    pub fn new() -> Self {
        Self {
            checks: Arc::new(Vec::new()),
            timeout: Self::DEFAULT_TIMEOUT,
            slow_after: Self::DEFAULT_SLOW_AFTER,
        }
    }

    /// Adds a check named `name` (the key in the response's `checks`).
    ///
    /// `check` is called once per probe and its future must resolve to
    /// `Ok(())` within the [timeout](Self::timeout); an `Err` is logged and
    /// reported as `"unavailable"`. A check with the name of an earlier one
    /// replaces it, in the earlier one's place.
    ///
    /// ```
    /// use channels_binding::ops::Readiness;
    ///
    /// let pool = std::sync::Arc::new(()); // a database pool, say
    /// let ready = Readiness::new().check("database", move || {
    ///     let pool = pool.clone();
    ///     async move {
    ///         let _ = pool; // `sqlx::query("SELECT 1").execute(&pool).await.map(drop)`
    ///         Ok::<(), std::convert::Infallible>(())
    ///     }
    /// });
    /// assert_eq!(ready.check_names().collect::<Vec<_>>(), ["database"]);
    /// ```
    #[must_use]
    pub fn check<F, Fut, E>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        let run: CheckFn = Arc::new(move || {
            let future = check();
            Box::pin(async move { future.await.map_err(|error| error.to_string()) })
        });
        let check = Check { name: name.into(), run };
        let checks = Arc::make_mut(&mut self.checks);
        match checks.iter_mut().find(|existing| existing.name == check.name) {
            Some(existing) => *existing = check,
            None => checks.push(check),
        }
        self
    }

    /// Sets the time each check has to pass (default 5 s); a check still
    /// running then counts as unavailable.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use channels_binding::ops::Readiness;
    ///
    /// let ready = Readiness::new().timeout(Duration::from_millis(250));
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the time after which a check that passes reports `"slow"`
    /// (default 1 s); the probe still answers `200`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use channels_binding::ops::Readiness;
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let ready = Readiness::new()
    ///     .slow_after(Duration::from_millis(100))
    ///     .check("channel_layer", || async {
    ///         tokio::time::sleep(Duration::from_millis(300)).await;
    ///         Ok::<(), String>(())
    ///     });
    /// let request = http::Request::get("/ready").body(()).unwrap();
    /// let response = ready.oneshot(request).await.unwrap();
    /// assert_eq!(response.status(), 200);
    /// # }
    /// ```
    #[must_use]
    pub fn slow_after(mut self, slow_after: Duration) -> Self {
        self.slow_after = slow_after;
        self
    }

    /// The checks' names, in the order they appear in responses.
    ///
    /// ```
    /// use channels_binding::ops::Readiness;
    ///
    /// let ready = Readiness::new()
    ///     .check("database", || async { Ok::<(), String>(()) })
    ///     .check("channel_layer", || async { Ok::<(), String>(()) });
    /// assert_eq!(ready.check_names().collect::<Vec<_>>(), ["database", "channel_layer"]);
    /// ```
    pub fn check_names(&self) -> impl Iterator<Item = &str> {
        self.checks.iter().map(|check| check.name.as_str())
    }

    /// Runs every check concurrently and builds the response.
    async fn probe(checks: Arc<Vec<Check>>, timeout: Duration, slow_after: Duration, head: bool) -> Response<Body> {
        let results = join_all(checks.iter().map(|check| {
            let run = check.run.clone();
            // Called inside the future, so that a panic while building it is caught too.
            let future = AssertUnwindSafe(async move { run().await }).catch_unwind();
            async move {
                let started = tokio::time::Instant::now();
                let result = tokio::time::timeout(timeout, future).await;
                (result, started.elapsed())
            }
        }))
        .await;

        let mut statuses = Map::new();
        let mut ready = true;
        for (check, (result, took)) in checks.iter().zip(results) {
            let ok = match result {
                Ok(Ok(Ok(()))) => true,
                Ok(Ok(Err(error))) => {
                    tracing::warn!(check = %check.name, %error, "readiness check failed");
                    false
                }
                Ok(Err(_panic)) => {
                    tracing::warn!(check = %check.name, "readiness check panicked");
                    false
                }
                Err(_elapsed) => {
                    tracing::warn!(check = %check.name, ?timeout, "readiness check timed out");
                    false
                }
            };
            ready &= ok;
            let status = match (ok, took > slow_after) {
                (false, _) => "unavailable",
                (true, true) => {
                    tracing::warn!(check = %check.name, ?took, "readiness check passed slowly");
                    "slow"
                }
                (true, false) => "ok",
            };
            statuses.insert(check.name.clone(), Value::from(status));
        }

        let (status, word) = if ready {
            (StatusCode::OK, "ready")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        };
        let mut body = Map::new();
        body.insert("status".to_owned(), Value::from(word));
        body.insert("checks".to_owned(), Value::Object(statuses));
        let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
        let mut response = response::json(status, bytes);
        if head {
            *response.body_mut() = empty();
        }
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("checks", &self.check_names().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("slow_after", &self.slow_after)
            .finish()
    }
}

impl<B> Service<Request<B>> for Readiness {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if !method::is_read(request.method()) {
            return Box::pin(std::future::ready(Ok(method::not_allowed())));
        }
        let head = request.method() == Method::HEAD;
        let probe = Self::probe(self.checks.clone(), self.timeout, self.slow_after, head);
        Box::pin(async move { Ok(probe.await) })
    }
}
