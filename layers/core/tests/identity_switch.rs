//! Switching a connection's identity in-band (sign-in / sign-out on an open socket).

use channels_binding_core::hub::{Change, ChangeKind, Hub, Target, Visibility};
use channels_binding_core::{Identity, Principal};
use serde_json::{Value, json};

fn events(outbox: &mut channels_binding_core::hub::Outbox) -> Vec<String> {
    let mut names = Vec::new();
    while let Some(push) = outbox.try_recv() {
        let push: Value = serde_json::from_slice(&push.frame).expect("JSON");
        names.push(push["event"].as_str().expect("event").to_owned());
    }
    names
}

#[tokio::test]
async fn set_identity_moves_the_user_group_and_filters_later_pushes() {
    let hub = Hub::new();
    let mut outbox = hub.connect(Identity::anonymous());
    let connection = outbox.connection().clone();
    hub.subscribe(&connection, "notes.Note", Target::Feed, None)
        .expect("subscribe");
    let only_alice = || Visibility::rule(|who: &Identity| who.id() == Some("alice"));
    let note =
        |pk: i64| Change::new("notes.Note", ChangeKind::Created, json!(pk), json!({"id": pk})).visible_to(only_alice());

    hub.publish(note(1));
    assert!(events(&mut outbox).is_empty(), "anonymous sees nothing");
    assert_eq!(hub.send_to_user("alice", "hello", &json!({})).expect("send"), 0);

    hub.set_identity(&connection, Identity::from(Principal::new("alice")));
    assert_eq!(connection.identity().id(), Some("alice"));
    hub.publish(note(2));
    assert_eq!(events(&mut outbox), ["notes.Note.created"]);
    assert_eq!(hub.send_to_user("alice", "hello", &json!({})).expect("send"), 1);
    assert_eq!(events(&mut outbox), ["hello"]);

    hub.set_identity(&connection, Identity::anonymous());
    hub.publish(note(3));
    assert!(events(&mut outbox).is_empty(), "signed out: nothing again");
    assert_eq!(hub.send_to_user("alice", "hello", &json!({})).expect("send"), 0);
}
