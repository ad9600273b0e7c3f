//! Sessions in the quickstart: `auth.login` / `auth.logout` on a socket (the
//! identity changes in-band) and over HTTP (an HttpOnly cookie that later
//! requests and upgrades present).

mod common;

mod quickstart_server;

use common::{Client, http};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use quickstart_server::start;

#[tokio::test]
async fn login_and_logout_on_a_socket_change_its_identity_in_band() {
    let addr = start().await;
    let mut ws = Client::connect(addr).await;
    assert_eq!(
        ws.call(json!({"event": "notes.Note.search"})).await["error"]["code"],
        "unauthenticated"
    );

    let wrong = ws
        .call(json!({"event": "auth.login", "data": {"username": "user1", "password": "nope"}}))
        .await;
    let unknown = ws
        .call(json!({"event": "auth.login", "data": {"username": "nobody", "password": "demo"}}))
        .await;
    assert_eq!(wrong["error"]["code"], "unauthenticated");
    assert_eq!(
        wrong["error"], unknown["error"],
        "a wrong password and an unknown user look the same"
    );
    let extra = ws
        .call(json!({"event": "auth.login", "data": {"username": "user1", "password": "demo", "x": 1}}))
        .await;
    assert_eq!(extra["error"]["code"], "validation");

    let reply = ws
        .call(json!({"event": "auth.login", "data": {"username": "user1", "password": "demo"}}))
        .await;
    assert_eq!(reply["data"]["user"], "1", "{reply}");
    assert_eq!(reply["data"]["is_staff"], false);
    let notes = ws.call(json!({"event": "notes.Note.search"})).await;
    assert_eq!(notes["data"]["count"], 1, "user1 sees their note: {notes}");

    assert_eq!(
        ws.call(json!({"event": "auth.logout"})).await["data"]["signed_out"],
        true
    );
    assert_eq!(
        ws.call(json!({"event": "notes.Note.search"})).await["error"]["code"],
        "unauthenticated"
    );
}

#[tokio::test]
async fn login_over_http_sets_an_http_only_cookie_that_authenticates_later_requests() {
    let addr = start().await;
    let login = http(
        addr,
        "POST",
        "/",
        &[],
        r#"{"event":"auth.login","data":{"username":"Admin","password":"demo"}}"#,
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.json()["data"]["is_staff"], true);
    let set_cookie = login.header("set-cookie").expect("a session cookie").to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(
        !login
            .body
            .contains(set_cookie.split(';').next().unwrap().split('=').nth(1).unwrap()),
        "token never in the body"
    );
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();

    // REST with the cookie: Admin (staff) sees both notes.
    let notes = http(addr, "GET", "/api/notes.Note", &[("cookie", &cookie)], "").await;
    assert_eq!(notes.status, 200, "{}", notes.body);
    assert_eq!(notes.json()["count"], 2);
    // The upgrade presents the cookie too.
    let mut request = format!("ws://{addr}/").into_client_request().expect("request");
    request.headers_mut().insert("cookie", cookie.parse().expect("header"));
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade with the cookie");
    let mut ws = Client { ws };
    assert_eq!(ws.call(json!({"event": "notes.Note.search"})).await["data"]["count"], 2);

    // Logout ends the session and clears the cookie; the old cookie is refused.
    let logout = http(addr, "POST", "/", &[("cookie", &cookie)], r#"{"event":"auth.logout"}"#).await;
    assert_eq!(logout.status, 200);
    assert!(logout.header("set-cookie").expect("cleared").contains("Max-Age=0"));
    let after = http(addr, "GET", "/api/notes.Note", &[("cookie", &cookie)], "").await;
    assert_eq!(after.status, 401);
    assert_eq!(after.json()["code"], "unauthenticated");
}
