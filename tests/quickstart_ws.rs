//! End-to-end tests of the quickstart over real WebSockets: every exchange
//! of the original README verbatim, every model action, the error codes that
//! apply, pushes, unsubscribe, and `since` replay.

mod common;

mod quickstart_server;

use std::net::SocketAddr;

use channels_binding::Settings;
use common::Client;
use serde_json::{Value, json};

use quickstart_server::start;

async fn start_with(settings: Settings) -> SocketAddr {
    quickstart_server::start_with(&settings).await.0
}

/// The users' count, read through the API on a connection of its own (a
/// search subscribes its connection to the change feed).
async fn user_count(addr: SocketAddr) -> u64 {
    let mut client = Client::connect(addr).await;
    let reply = client
        .call(json!({"event": "auth.User.search", "data": {"limit": 1}}))
        .await;
    reply["data"]["count"].as_u64().expect("count")
}

#[tokio::test]
async fn the_seed_exchanges_work_verbatim() {
    let addr = start().await;
    let mut ws = Client::connect(addr).await;

    // SEND auth.User.search {page: 2}
    let reply = ws.call(json!({"event": "auth.User.search", "data": {"page": 2}})).await;
    assert_eq!(reply["event"], "auth.User.search");
    let data = &reply["data"];
    assert_eq!(
        (data["page"].clone(), data["limit"].clone(), data["count"].clone()),
        (json!(2), json!(25), json!(102))
    );
    let rows = data["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 25);
    assert_eq!(
        rows[0],
        json!({"id": 5763, "username": "Admin", "email": "admin@admin.com"})
    );
    // Keys come in the README's order.
    assert!(
        data.to_string().starts_with(r#"{"page":2,"limit":25,"count":102"#),
        "{data}"
    );
    assert!(
        rows[0]
            .to_string()
            .starts_with(r#"{"id":5763,"username":"Admin","email":"admin@admin.com"}"#)
    );

    // SEND auth.User.retrieve {id: 5763}
    let reply = ws
        .call(json!({"event": "auth.User.retrieve", "data": {"id": 5763}}))
        .await;
    assert_eq!(reply["event"], "auth.User.retrieve");
    let admin = &reply["data"];
    assert_eq!(
        (admin["id"].clone(), admin["username"].clone(), admin["email"].clone()),
        (json!(5763), json!("Admin"), json!("admin@admin.com"))
    );
    // ...andMoreDetails, but never the password hash.
    assert_eq!(admin["is_staff"], true);
    assert_eq!(admin["date_joined"], "2024-01-25T12:00:00.000Z");
    assert!(admin.get("password_hash").is_none());

    // SEND auth.User.save {id: 5763, username: "Changed Username"}
    let reply = ws
        .call(json!({"event": "auth.User.save", "data": {"id": 5763, "username": "Changed Username"}}))
        .await;
    assert_eq!(reply["event"], "auth.User.save");
    assert_eq!(reply["data"]["success"], true);
    // RECEIVE auth.User.retrieve with the new username, right after the reply.
    let push = ws.recv().await;
    assert_eq!(push["event"], "auth.User.retrieve");
    assert_eq!(push["data"]["id"], 5763);
    assert_eq!(push["data"]["username"], "Changed Username");
    assert_eq!(push["data"]["email"], "admin@admin.com");
    assert!(push.get("request_id").is_none());
    // The search subscribed this socket to the change feed too.
    let feed = ws.recv().await;
    assert_eq!(feed["event"], "auth.User.updated#5763");
    assert_eq!(feed["seq"], push["seq"]);
}

#[tokio::test]
async fn the_javascript_snippet_works() {
    // The README's JavaScript: `ws.send(JSON.stringify({event, data: {id: 5763}}))`.
    let addr = start().await;
    let mut ws = Client::connect(addr).await;
    ws.send_text(r#"{"event":"auth.User.retrieve","data":{"id":5763}}"#)
        .await;
    let reply = ws.recv().await;
    assert_eq!(reply["data"]["id"], 5763);
}

#[tokio::test]
async fn custom_events_async_and_blocking() {
    let addr = start().await;
    let mut ws = Client::connect(addr).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for event in ["simple_reflexion.ping", "simple_reflexion.sync_ping"] {
        let reply = ws.call(json!({"event": event, "request_id": 1})).await;
        assert_eq!(reply["event"], event);
        assert_eq!(reply["request_id"], 1);
        assert_eq!(reply["data"]["pong"], true);
        assert_eq!(reply["data"]["message"], "Hi");
        let time = reply["data"]["time"].as_u64().expect("time");
        assert!(time.abs_diff(now) < 60, "time {time} vs now {now}");
    }
}

#[tokio::test]
async fn retrieve_by_hash_and_by_list() {
    let addr = start().await;
    let mut ws = Client::connect(addr).await;
    let reply = ws.call(json!({"event": "auth.User.retrieve#5763"})).await;
    assert_eq!(reply["event"], "auth.User.retrieve#5763");
    assert_eq!(reply["data"]["username"], "Admin");

    let reply = ws
        .call(json!({"event": "auth.User.retrieve", "data": {"id": [3, 5763, 1]}}))
        .await;
    let ids: Vec<i64> = reply["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [3, 5763, 1]);

    let reply = ws
        .call(json!({"event": "auth.User.retrieve", "data": {"id": [1, 999_999]}}))
        .await;
    assert_eq!(reply["error"]["code"], "not_found");
    assert_eq!(reply["error"]["missing"], json!([999_999]));

    let reply = ws.call(json!({"event": "auth.User.retrieve#424242"})).await;
    assert_eq!(reply["error"]["code"], "not_found");
    let reply = ws.call(json!({"event": "auth.User.retrieve#abc"})).await;
    assert_eq!(reply["error"]["code"], "validation");
    assert!(reply["error"]["fields"]["id"].is_array());
    let reply = ws.call(json!({"event": "auth.User.retrieve"})).await;
    assert_eq!(reply["error"]["code"], "validation");
    let reply = ws.call(json!({"event": "auth.User.retrieve", "data": 5})).await;
    assert_eq!(reply["error"]["code"], "bad_request");
}

#[tokio::test]
async fn search_pages_limits_order_filters_and_query() {
    let addr = start().await;
    let mut ws = Client::connect(addr).await;
    let search = |data: Value| json!({"event": "auth.User.search", "data": data});

    let reply = ws.call(search(json!({"limit": 1000}))).await;
    assert_eq!(reply["data"]["limit"], 100);
    assert_eq!(reply["data"]["rows"].as_array().unwrap().len(), 100);
    let reply = ws.call(search(json!({"limit": 0}))).await;
    assert_eq!(reply["data"]["limit"], 1);
    let reply = ws.call(search(json!({"page": 0}))).await;
    assert_eq!(reply["error"]["code"], "validation");
    assert!(reply["error"]["fields"]["page"].is_array());
    let reply = ws.call(search(json!({"page": 99}))).await;
    assert_eq!(reply["data"]["rows"], json!([]));
    assert_eq!(reply["data"]["count"], 102);

    let reply = ws.call(search(json!({"order": "-id", "limit": 2}))).await;
    let ids: Vec<i64> = reply["data"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [5763, 101]);
    assert_eq!(reply["data"]["order"], json!(["-id"]));
    let reply = ws.call(search(json!({"order": ["username"], "limit": 1}))).await;
    assert_eq!(reply["data"]["rows"][0]["username"], "Admin");
    for bad in ["is_staff", "password_hash", "nope", "-"] {
        let reply = ws.call(search(json!({"order": bad}))).await;
        assert_eq!(reply["error"]["code"], "validation", "order {bad}");
    }

    let reply = ws.call(search(json!({"filters": {"is_staff": true}}))).await;
    assert_eq!(reply["data"]["count"], 1);
    assert_eq!(reply["data"]["rows"][0]["id"], 5763);
    let reply = ws.call(search(json!({"filters": {"username": "Admin"}}))).await;
    assert_eq!(reply["error"]["code"], "validation");
    assert!(reply["error"]["fields"]["username"].is_array());
    let reply = ws.call(search(json!({"filters": {"password_hash": "x"}}))).await;
    assert_eq!(reply["error"]["code"], "validation");

    let reply = ws.call(search(json!({"query": "USER10"}))).await;
    assert_eq!(reply["data"]["count"], 3, "user10, user100, user101");
    for literal in ["%", "_", "user1_", "\\"] {
        let reply = ws.call(search(json!({"query": literal}))).await;
        assert_eq!(reply["data"]["count"], 0, "{literal:?} is matched literally");
    }
    let reply = ws.call(search(json!({"query": "admin.com"}))).await;
    assert_eq!(reply["data"]["count"], 1, "search covers email");

    let reply = ws.call(search(json!({"pgae": 2}))).await;
    assert_eq!(reply["error"]["code"], "validation");
    assert!(reply["error"]["fields"]["pgae"].is_array());
}

#[tokio::test]
async fn list_with_filters() {
    let addr = start().await;
    let mut ws = Client::connect(addr).await;
    let reply = ws
        .call(json!({"event": "auth.User.list", "data": {"filters": {"is_staff": [true]}}}))
        .await;
    assert_eq!(
        reply["data"],
        json!([{"id": 5763, "username": "Admin", "email": "admin@admin.com"}])
    );
    let reply = ws.call(json!({"event": "auth.User.list"})).await;
    assert_eq!(reply["data"].as_array().unwrap().len(), 102);
}

#[tokio::test]
async fn create_update_save_delete_and_mass_assignment() {
    let addr = start().await;
    let mut ws = Client::connect(addr).await;
    let mut watcher = Client::connect(addr).await;
    assert_eq!(
        watcher.call(json!({"event": "auth.User.subscribe"})).await["data"]["subscribed"],
        "auth.User"
    );

    // Mass assignment and unknown keys: rejected, nothing written.
    for (key, value) in [
        ("is_staff", json!(true)),
        ("is_superuser", json!(true)),
        ("password_hash", json!("x")),
        ("id", json!(7)),
        ("usernme", json!("typo")),
    ] {
        let mut data = json!({"username": "mallory", "email": "m@example.com"});
        data[key] = value;
        let reply = ws.call(json!({"event": "auth.User.create", "data": data})).await;
        assert_eq!(reply["error"]["code"], "validation", "{key}");
        assert!(reply["error"]["fields"][key].is_array(), "{key}: {reply}");
    }
    let reply = ws
        .call(json!({"event": "auth.User.update#5", "data": {"username": "x", "is_staff": true}}))
        .await;
    assert_eq!(reply["error"]["code"], "validation");
    assert_eq!(
        ws.call(json!({"event": "auth.User.retrieve#5"})).await["data"]["username"],
        "user5"
    );
    assert_eq!(user_count(addr).await, 102);
    watcher.expect_silence(std::time::Duration::from_millis(200)).await;

    // Create.
    let reply = ws
        .call(json!({"event": "auth.User.create", "data": {"username": "alice", "email": "alice@example.com"}}))
        .await;
    let alice = reply["data"].clone();
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["is_staff"], false);
    let id = alice["id"].as_i64().expect("created id");
    let push = watcher.recv().await;
    assert_eq!(push["event"], "auth.User.created");
    assert_eq!(push["data"], alice);

    // Validation: required, duplicates, types, lengths.
    let reply = ws
        .call(json!({"event": "auth.User.create", "data": {"username": "bob"}}))
        .await;
    assert!(reply["error"]["fields"]["email"].is_array(), "{reply}");
    let reply = ws
        .call(json!({"event": "auth.User.create", "data": {"username": "alice", "email": "b@example.com"}}))
        .await;
    assert_eq!(reply["error"]["code"], "validation");
    assert!(reply["error"]["fields"]["username"].is_array(), "{reply}");
    let reply = ws
        .call(json!({"event": "auth.User.create", "data": {"username": 5, "email": "x".repeat(300)}}))
        .await;
    assert!(reply["error"]["fields"]["username"].is_array(), "{reply}");
    assert!(reply["error"]["fields"]["email"].is_array());

    // Update (partial) by hash.
    let reply = ws
        .call(json!({"event": format!("auth.User.update#{id}"), "data": {"email": "alice@new.example.com"}}))
        .await;
    assert_eq!(reply["data"]["email"], "alice@new.example.com");
    assert_eq!(reply["data"]["username"], "alice");
    let push = watcher.recv().await;
    assert_eq!(push["event"], format!("auth.User.updated#{id}"));
    assert_eq!(push["data"]["email"], "alice@new.example.com");
    let reply = ws
        .call(json!({"event": "auth.User.update", "data": {"id": 999_999, "email": "a@b.c"}}))
        .await;
    assert_eq!(reply["error"]["code"], "not_found");
    let reply = ws.call(json!({"event": "auth.User.update", "data": {"id": id}})).await;
    assert_eq!(reply["error"]["code"], "validation");

    // Save without id creates; with id updates.
    let reply = ws
        .call(json!({"event": "auth.User.save", "data": {"username": "carol", "email": "carol@example.com"}}))
        .await;
    assert_eq!(reply["data"]["success"], true);
    let carol = reply["data"]["id"].as_i64().expect("saved id");
    assert_eq!(watcher.recv().await["event"], "auth.User.created");
    let reply = ws
        .call(json!({"event": "auth.User.save", "data": {"id": carol, "username": "carol2"}}))
        .await;
    assert_eq!(reply["data"], json!({"success": true, "id": carol}));
    assert_eq!(watcher.recv().await["data"]["username"], "carol2");

    // Delete.
    let reply = ws.call(json!({"event": format!("auth.User.delete#{id}")})).await;
    assert_eq!(reply["data"], json!({"success": true, "id": id}));
    let push = watcher.recv().await;
    assert_eq!(
        push,
        json!({"event": format!("auth.User.deleted#{id}"), "data": {"id": id}, "seq": push["seq"], "epoch": push["epoch"]})
    );
    assert_eq!(
        ws.call(json!({"event": format!("auth.User.retrieve#{id}")})).await["error"]["code"],
        "not_found"
    );
    assert_eq!(
        ws.call(json!({"event": format!("auth.User.delete#{id}")})).await["error"]["code"],
        "not_found"
    );
    assert_eq!(user_count(addr).await, 103);
}

#[tokio::test]
async fn pushes_reach_other_connections_until_they_unsubscribe() {
    let addr = start().await;
    let mut writer = Client::connect(addr).await;
    let mut by_retrieve = Client::connect(addr).await;
    let mut by_hash = Client::connect(addr).await;
    let mut by_feed = Client::connect(addr).await;

    by_retrieve
        .call(json!({"event": "auth.User.retrieve", "data": {"id": 7}}))
        .await;
    assert_eq!(
        by_hash.call(json!({"event": "auth.User.subscribe#7"})).await["data"]["subscribed"],
        "auth.User#7"
    );
    by_feed
        .call(json!({"event": "auth.User.list", "data": {"filters": {"is_staff": false}}}))
        .await;

    writer
        .call(json!({"event": "auth.User.update#7", "data": {"username": "seven"}}))
        .await;
    let push = by_retrieve.recv().await;
    assert_eq!(
        (push["event"].clone(), push["data"]["username"].clone()),
        (json!("auth.User.retrieve"), json!("seven"))
    );
    assert_eq!(by_hash.recv().await["event"], "auth.User.updated#7");
    assert_eq!(by_feed.recv().await["event"], "auth.User.updated#7");

    // A change to another object reaches only the feed.
    writer
        .call(json!({"event": "auth.User.update#8", "data": {"username": "eight"}}))
        .await;
    assert_eq!(by_feed.recv().await["event"], "auth.User.updated#8");
    by_retrieve.expect_silence(std::time::Duration::from_millis(200)).await;
    by_hash.expect_silence(std::time::Duration::from_millis(50)).await;

    assert_eq!(
        by_hash.call(json!({"event": "auth.User.unsubscribe#7"})).await["data"]["unsubscribed"],
        "auth.User#7"
    );
    assert_eq!(
        by_feed.call(json!({"event": "auth.User.unsubscribe"})).await["data"]["unsubscribed"],
        "auth.User"
    );
    writer
        .call(json!({"event": "auth.User.update#7", "data": {"username": "seven again"}}))
        .await;
    assert_eq!(by_retrieve.recv().await["data"]["username"], "seven again");
    by_hash.expect_silence(std::time::Duration::from_millis(200)).await;
    by_feed.expect_silence(std::time::Duration::from_millis(50)).await;
}

#[tokio::test]
async fn since_replays_missed_changes_in_order_or_says_resync() {
    let addr = start().await;
    let mut writer = Client::connect(addr).await;
    let mut reader = Client::connect(addr).await;
    let reply = reader.call(json!({"event": "auth.User.subscribe"})).await;
    let (epoch, seq) = (reply["epoch"].clone(), reply["seq"].as_u64().expect("seq"));
    drop(reader);

    for n in 1..=3 {
        writer
            .call(json!({"event": "auth.User.update#9", "data": {"username": format!("nine-{n}")}}))
            .await;
    }

    let mut reader = Client::connect(addr).await;
    let reply = reader
        .call(json!({"event": "auth.User.subscribe", "data": {"since": {"epoch": epoch, "seq": seq}}}))
        .await;
    assert_eq!(reply["data"]["subscribed"], "auth.User");
    assert!(reply.get("resync").is_none());
    for n in 1..=3u64 {
        let push = reader.recv().await;
        assert_eq!(push["seq"], seq + n);
        assert_eq!(push["data"]["username"], format!("nine-{n}"));
    }
    // Then live, with no gap.
    writer
        .call(json!({"event": "auth.User.update#9", "data": {"username": "nine-4"}}))
        .await;
    assert_eq!(reader.recv().await["seq"], seq + 4);

    // A position from another epoch (a restarted server) cannot be honoured.
    let mut stale = Client::connect(addr).await;
    let reply = stale
        .call(json!({"event": "auth.User.search", "data": {"since": {"epoch": "not-this-one", "seq": 1}}}))
        .await;
    assert_eq!(reply["resync"], true);
    assert_eq!(reply["data"]["count"], 102);
    let reply = stale
        .call(json!({"event": "auth.User.subscribe", "data": {"since": {"epoch": 5}}}))
        .await;
    assert_eq!(reply["error"]["code"], "validation");
}

#[tokio::test]
async fn unknown_events_and_bad_frames() {
    let addr = start().await;
    let mut ws = Client::connect(addr).await;
    for event in ["auth.User.frobnicate", "auth.Group.retrieve", "simple_reflexion.pong"] {
        let reply = ws.call(json!({"event": event})).await;
        assert_eq!(reply["error"]["code"], "unknown_event", "{event}");
    }
    let reply = ws.call(json!({"event": "auth.User.search", "data": [1]})).await;
    assert_eq!(reply["error"]["code"], "bad_request");
    // The socket is still fine.
    assert_eq!(
        ws.call(json!({"event": "simple_reflexion.ping"})).await["data"]["pong"],
        true
    );
}

#[tokio::test]
async fn page_size_settings_apply() {
    let settings = Settings::from_sources(
        None,
        [
            ("CHANNELS_BINDING_DEFAULT_PAGE_SIZE", "10"),
            ("CHANNELS_BINDING_MAX_PAGE_SIZE", "20"),
        ],
    )
    .expect("settings");
    let addr = start_with(settings).await;
    let mut ws = Client::connect(addr).await;
    assert_eq!(ws.call(json!({"event": "auth.User.search"})).await["data"]["limit"], 10);
    assert_eq!(
        ws.call(json!({"event": "auth.User.search", "data": {"limit": 50}}))
            .await["data"]["limit"],
        20
    );
}
