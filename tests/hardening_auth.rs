//! Hostile sign-ins and cross-site requests against the real quickstart
//! process: a login flood stays within a memory bound, guessing is
//! throttled per username and per IP, unknown users cost what real ones
//! do, cookies are refused on cross-site writes and upgrades, the cookie is
//! `Secure` off loopback, and a JWT `sub` names a user in one spelling only.

mod common;
mod quickstart_process_harness;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use channels_binding::jwt::TokenIssuer;
use common::{Client, http};
use quickstart_process_harness::Quickstart;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "a-test-secret-of-at-least-thirty-two-bytes";
/// The same origin as `common::http`'s `host: test`.
const OWN_ORIGIN: &str = "http://test";
const EVIL_ORIGIN: &str = "http://evil.example";

async fn start(env: &'static [(&'static str, &'static str)]) -> (Quickstart, SocketAddr) {
    let server = tokio::task::spawn_blocking(move || Quickstart::start(env))
        .await
        .expect("the start-up task");
    // `0.0.0.0:port` is reached on loopback.
    let port = server.addr.rsplit_once(':').expect("ADDR:PORT").1;
    let addr = format!("127.0.0.1:{port}").parse().expect("a socket address");
    (server, addr)
}

fn login_frame(username: &str, password: &str, request_id: u64) -> Value {
    json!({"event": "auth.login", "data": {"username": username, "password": password}, "request_id": request_id})
}

/// Resident memory of a process, in bytes (`VmRSS` of `/proc/<pid>/status`).
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line");
    kib * 1024
}

/// Signs in over HTTP (same origin) and returns the `name=value` cookie.
async fn session_cookie(addr: SocketAddr) -> String {
    let login = http(
        addr,
        "POST",
        "/",
        &[("origin", OWN_ORIGIN)],
        r#"{"event":"auth.login","data":{"username":"Admin","password":"demo"}}"#,
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    login
        .header("set-cookie")
        .expect("a session cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned()
}

async fn note_count(addr: SocketAddr, cookie: &str) -> u64 {
    let notes = http(addr, "GET", "/api/notes.Note", &[("cookie", cookie)], "").await;
    assert_eq!(notes.status, 200, "{}", notes.body);
    notes.json()["count"].as_u64().expect("a count")
}

fn retry_after_ms(reply: &Value) -> u64 {
    assert_eq!(reply["error"]["code"], "rate_limited", "{reply}");
    let wait = reply["error"]["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(wait > 0, "{reply}");
    wait
}

/// 64 pipelined wrong logins for real users (many usernames, so the
/// per-username throttle alone would not stop them) on each of two sockets. Every one is
/// answered; the server's RSS stays under its baseline plus one Argon2
/// buffer (19 MiB) per hashing slot, for as many slots as can run (the
/// cores, and never more than the per-IP free attempts, 20), plus 48 MiB
/// for everything else. Unbounded, the same flood took a release build from
/// 11.5 MB to 2.9 GB.
#[tokio::test]
async fn a_login_flood_stays_within_a_memory_bound() {
    let (server, addr) = start(&[]).await;
    let pid = server.pid();
    let baseline = rss_bytes(pid);
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let bound = baseline + cores.min(20) * 20 * 1024 * 1024 + 48 * 1024 * 1024;

    // Sample the peak while the flood runs.
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let flood = |socket: u64| async move {
        let mut ws = Client::connect(addr).await;
        for n in 0..64 {
            // Real users (`user1`..`user101`), so each guess is a full hash.
            ws.send(login_frame(&format!("user{}", socket * 50 + n % 50), "wrong", n))
                .await;
        }
        let mut codes = Vec::new();
        for _ in 0..64 {
            let reply = ws.recv_within(Duration::from_secs(30)).await;
            codes.push(reply["error"]["code"].as_str().expect("an error").to_owned());
            if reply["error"]["code"] == "rate_limited" {
                retry_after_ms(&reply);
            }
        }
        codes
    };
    let (first, second) = tokio::join!(flood(1), flood(2));
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let after = rss_bytes(pid);
    let peak = peak.load(Ordering::Relaxed).max(after);

    let codes: Vec<_> = first.into_iter().chain(second).collect();
    assert_eq!(codes.len(), 128);
    assert!(
        codes
            .iter()
            .all(|code| code == "unauthenticated" || code == "rate_limited"),
        "{codes:?}"
    );
    let mib = |bytes: u64| bytes / (1024 * 1024);
    eprintln!(
        "login flood: RSS baseline {} MiB, peak {} MiB, after {} MiB, bound {} MiB",
        mib(baseline),
        mib(peak),
        mib(after),
        mib(bound)
    );
    assert!(
        peak <= bound,
        "peak RSS {} MiB over the bound {} MiB",
        mib(peak),
        mib(bound)
    );
}

#[tokio::test]
async fn guessing_one_username_is_throttled_then_the_right_password_works() {
    let (_server, addr) = start(&[]).await;
    let mut ws = Client::connect(addr).await;
    for n in 0..5 {
        let reply = ws.call(login_frame("Admin", "wrong", n)).await;
        assert_eq!(reply["error"]["code"], "unauthenticated", "{reply}");
    }
    // Even the right password waits: the lock is per username.
    let wait = retry_after_ms(&ws.call(login_frame("Admin", "demo", 5)).await);
    assert!(wait <= 1_000, "the first lock is one second: {wait}");
    // Another username from the same address is not locked.
    let other = ws.call(login_frame("user7", "wrong", 6)).await;
    assert_eq!(other["error"]["code"], "unauthenticated", "{other}");

    tokio::time::sleep(Duration::from_millis(wait + 50)).await;
    let reply = ws.call(login_frame("Admin", "demo", 7)).await;
    assert_eq!(reply["data"]["user"], "5763", "{reply}");
}

#[tokio::test]
async fn guessing_from_one_address_is_throttled_across_usernames() {
    let (_server, addr) = start(&[]).await;
    let mut ws = Client::connect(addr).await;
    for n in 0..20 {
        let reply = ws.call(login_frame(&format!("nobody{n}"), "wrong", n)).await;
        assert_eq!(reply["error"]["code"], "unauthenticated", "{reply}");
    }
    let wait = retry_after_ms(&ws.call(login_frame("Admin", "demo", 20)).await);
    // Over HTTP too, from a new connection: the budget is the address's.
    let over_http = http(
        addr,
        "POST",
        "/",
        &[],
        r#"{"event":"auth.login","data":{"username":"someone","password":"x"}}"#,
    )
    .await;
    assert_eq!(over_http.status, 429, "{}", over_http.body);
    retry_after_ms(&over_http.json());

    tokio::time::sleep(Duration::from_millis(wait + 50)).await;
    let reply = ws.call(login_frame("Admin", "demo", 21)).await;
    assert_eq!(reply["data"]["user"], "5763", "{reply}");
}

/// An unknown username costs a full hash, like a wrong password: the reply
/// time does not tell which usernames exist. Loose bound (a loaded machine):
/// the unknown user's median is at least half the real user's.
#[tokio::test]
async fn an_unknown_user_takes_as_long_as_a_real_one() {
    let (_server, addr) = start(&[]).await;
    let mut ws = Client::connect(addr).await;
    // Warm up (the first hash allocates its slot's buffer).
    ws.call(login_frame("Admin", "demo", 0)).await;
    let mut real = Vec::new();
    let mut unknown = Vec::new();
    for n in 0..4 {
        let started = Instant::now();
        let reply = ws.call(login_frame("Admin", "wrong", 10 + n)).await;
        real.push(started.elapsed());
        assert_eq!(reply["error"]["code"], "unauthenticated", "{reply}");
        let started = Instant::now();
        let reply = ws
            .call(login_frame(&format!("no-such-user-{n}"), "wrong", 20 + n))
            .await;
        unknown.push(started.elapsed());
        assert_eq!(reply["error"]["code"], "unauthenticated", "{reply}");
    }
    real.sort();
    unknown.sort();
    let (real, unknown) = (real[2], unknown[2]);
    eprintln!("median reply: real user {real:?}, unknown user {unknown:?}");
    assert!(unknown * 2 >= real, "unknown {unknown:?} vs real {real:?}");
}

#[tokio::test]
async fn a_cross_site_post_with_the_cookie_is_refused_and_creates_nothing() {
    let (_server, addr) = start(&[]).await;
    let cookie = session_cookie(addr).await;
    let before = note_count(addr, &cookie).await;
    let create = r#"{"event":"notes.Note.create","data":{"title":"from evil"}}"#;

    let hostile = http(
        addr,
        "POST",
        "/",
        &[
            ("cookie", &cookie),
            ("origin", EVIL_ORIGIN),
            ("content-type", "text/plain"),
        ],
        create,
    )
    .await;
    assert_eq!(hostile.status, 403, "{}", hostile.body);
    assert_eq!(hostile.json()["code"], "forbidden");
    let rest = http(
        addr,
        "POST",
        "/api/notes.Note",
        &[
            ("cookie", &cookie),
            ("origin", EVIL_ORIGIN),
            ("content-type", "application/json"),
        ],
        r#"{"title":"from evil"}"#,
    )
    .await;
    assert_eq!(rest.status, 403, "{}", rest.body);
    assert_eq!(note_count(addr, &cookie).await, before, "nothing created");

    // From the server's own origin the same request works.
    let own = http(
        addr,
        "POST",
        "/",
        &[
            ("cookie", &cookie),
            ("origin", OWN_ORIGIN),
            ("content-type", "text/plain"),
        ],
        create,
    )
    .await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(note_count(addr, &cookie).await, before + 1);
}

#[tokio::test]
async fn a_cross_site_upgrade_with_the_cookie_is_refused() {
    let (_server, addr) = start(&[]).await;
    let cookie = session_cookie(addr).await;
    let upgrade = |origin: String| {
        let mut request = format!("ws://{addr}/").into_client_request().unwrap();
        request.headers_mut().insert("cookie", cookie.parse().unwrap());
        request.headers_mut().insert("origin", origin.parse().unwrap());
        tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(request))
    };
    match upgrade(EVIL_ORIGIN.to_owned()).await.expect("an answer") {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    // The page of the server itself upgrades and reads the notes.
    let (ws, _) = upgrade(format!("http://{addr}"))
        .await
        .expect("an answer")
        .expect("upgrade");
    let mut ws = Client { ws };
    let notes = ws.call(json!({"event": "notes.Note.search"})).await;
    assert_eq!(notes["data"]["count"], 2, "{notes}");
}

#[tokio::test]
async fn a_bearer_token_from_another_origin_still_works() {
    let (_server, addr) = start(&[("CHANNELS_BINDING_JWT_SECRET", SECRET)]).await;
    let token = TokenIssuer::new(SECRET.as_bytes())
        .unwrap()
        .issue("5763", Duration::from_secs(300))
        .unwrap();
    let bearer = format!("Bearer {token}");
    let reply = http(
        addr,
        "POST",
        "/",
        &[("authorization", &bearer), ("origin", EVIL_ORIGIN)],
        r#"{"event":"notes.Note.create","data":{"title":"from the console"}}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Anonymous cross-site requests are not this layer's business either.
    let anonymous = http(
        addr,
        "POST",
        "/",
        &[("origin", EVIL_ORIGIN)],
        r#"{"event":"auth.User.retrieve","data":{"id":5763}}"#,
    )
    .await;
    assert_eq!(anonymous.status, 200, "{}", anonymous.body);
}

async fn login_cookie_header(addr: SocketAddr) -> String {
    let login = http(
        addr,
        "POST",
        "/",
        &[],
        r#"{"event":"auth.login","data":{"username":"Admin","password":"demo"}}"#,
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    login.header("set-cookie").expect("a session cookie").to_owned()
}

#[tokio::test]
async fn the_cookie_is_secure_unless_the_server_is_on_loopback() {
    let (_local, local) = start(&[]).await;
    let cookie = login_cookie_header(local).await;
    assert!(!cookie.contains("Secure"), "{cookie}");

    let (_public, public) = start(&[("CHANNELS_BINDING_BIND", "0.0.0.0:0")]).await;
    let cookie = login_cookie_header(public).await;
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

#[tokio::test]
async fn a_jwt_sub_names_a_user_in_its_canonical_spelling_only() {
    let (_server, addr) = start(&[("CHANNELS_BINDING_JWT_SECRET", SECRET)]).await;
    let issuer = TokenIssuer::new(SECRET.as_bytes()).unwrap();
    let notes_as = |subject: &'static str| {
        let token = issuer.issue(subject, Duration::from_secs(300)).unwrap();
        async move {
            http(
                addr,
                "GET",
                "/api/notes.Note",
                &[("authorization", &format!("Bearer {token}"))],
                "",
            )
            .await
        }
    };
    assert_eq!(notes_as("5763").await.status, 200);
    for other in ["+5763", "05763", "-05763", "5763.0"] {
        let reply = notes_as(other).await;
        assert_eq!(reply.status, 401, "{other}: {}", reply.body);
        assert_eq!(reply.json()["code"], "unauthenticated");
    }
}
