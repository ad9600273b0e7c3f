//! Integration tests of the subscription hub (PROTOCOL.md §3): change feeds,
//! object subscriptions, visibility, origin tagging, `since` replay, slow
//! consumers, limits, groups, fan-out and concurrent publishing.
//!
//! `Hub::publish` and `Outbox::try_recv` are synchronous, so most tests need
//! no runtime: every frame a publish causes is queued before it returns.

use std::sync::Arc;
use std::time::Duration;

use channels_binding_core::hub::{
    ALL_GROUP, Change, ChangeKind, Hub, HubConfig, MAX_GROUPS_PER_CONNECTION, Origin, Outbox, PushForm, StreamPosition,
    SubscribeError, Target, Visibility, user_group,
};
use channels_binding_core::{Identity, Principal};
use futures_util::FutureExt;
use serde_json::{Value, json};

const USERS: &str = "auth.User";
const POSTS: &str = "blog.Post";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn user(id: &str) -> Identity {
    Identity::from(Principal::new(id))
}

fn created(stream: &str, pk: u64) -> Change {
    Change::new(
        stream,
        ChangeKind::Created,
        json!(pk),
        json!({"id": pk, "name": format!("n{pk}")}),
    )
}

fn updated(stream: &str, pk: u64, name: &str) -> Change {
    Change::new(stream, ChangeKind::Updated, json!(pk), json!({"id": pk, "name": name}))
}

fn deleted(stream: &str, pk: u64) -> Change {
    Change::new(
        stream,
        ChangeKind::Deleted,
        json!(pk),
        json!({"id": pk, "name": "last state, never sent"}),
    )
}

fn echo(pk: &str, event: &str) -> Target {
    Target::Object {
        pk: Arc::from(pk),
        form: PushForm::Echo(Arc::from(event)),
    }
}

fn object_feed(pk: &str) -> Target {
    Target::Object {
        pk: Arc::from(pk),
        form: PushForm::Feed,
    }
}

fn at(hub: &Hub, seq: u64) -> StreamPosition {
    StreamPosition {
        epoch: hub.epoch().clone(),
        seq,
    }
}

/// One received frame, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Push {
    event: String,
    data: Value,
    seq: Option<u64>,
    epoch: Option<String>,
    after_reply: Option<u64>,
}

fn parse(frame: &[u8], after_reply: Option<u64>) -> Push {
    let value: Value = serde_json::from_slice(frame).expect("frames are JSON");
    let object = value.as_object().expect("frames are JSON objects");
    for key in object.keys() {
        assert!(
            ["event", "data", "seq", "epoch"].contains(&key.as_str()),
            "unexpected key `{key}` in push {value}"
        );
    }
    Push {
        event: object["event"].as_str().expect("`event` is a string").to_owned(),
        data: object.get("data").cloned().expect("pushes carry `data`"),
        seq: object.get("seq").map(|seq| seq.as_u64().expect("`seq` is a u64")),
        epoch: object
            .get("epoch")
            .map(|e| e.as_str().expect("`epoch` is a string").to_owned()),
        after_reply,
    }
}

fn next(outbox: &mut Outbox) -> Option<Push> {
    outbox.try_recv().map(|out| parse(&out.frame, out.after_reply))
}

fn drain(outbox: &mut Outbox) -> Vec<Push> {
    std::iter::from_fn(|| next(outbox)).collect()
}

fn events(pushes: &[Push]) -> Vec<&str> {
    pushes.iter().map(|p| p.event.as_str()).collect()
}

fn seqs(pushes: &[Push]) -> Vec<u64> {
    pushes
        .iter()
        .map(|p| p.seq.expect("change pushes carry `seq`"))
        .collect()
}

fn subscribe(hub: &Hub, outbox: &Outbox, stream: &str, target: Target) {
    let subscribed = hub
        .subscribe(outbox.connection(), stream, target, None)
        .expect("subscription within limits");
    assert_eq!(subscribed.replayed, 0);
    assert!(!subscribed.resync);
}

// ---------------------------------------------------------------------------
// Change feed
// ---------------------------------------------------------------------------

#[test]
fn feed_subscriber_gets_created_updated_deleted_with_seq_and_epoch() {
    let hub = Hub::new();
    let mut outbox = hub.connect(Identity::anonymous());
    subscribe(&hub, &outbox, USERS, Target::Feed);

    let p1 = hub.publish(created(USERS, 5)).unwrap();
    let p2 = hub.publish(updated(USERS, 5, "renamed")).unwrap();
    let p3 = hub.publish(deleted(USERS, 5)).unwrap();
    assert_eq!((p1.seq, p2.seq, p3.seq), (1, 2, 3));
    assert_eq!(p3.epoch, *hub.epoch());
    assert_eq!(hub.position(USERS), p3);

    let pushes = drain(&mut outbox);
    assert_eq!(
        events(&pushes),
        ["auth.User.created", "auth.User.updated#5", "auth.User.deleted#5"]
    );
    assert_eq!(pushes[0].data, json!({"id": 5, "name": "n5"}));
    assert_eq!(pushes[1].data, json!({"id": 5, "name": "renamed"}));
    // A delete carries only the primary key, never the last state.
    assert_eq!(pushes[2].data, json!({"id": 5}));
    assert_eq!(seqs(&pushes), [1, 2, 3]);
    for push in &pushes {
        assert_eq!(push.epoch.as_deref(), Some(&**hub.epoch()));
        assert_eq!(push.after_reply, None);
    }
}

#[test]
fn string_primary_keys_appear_verbatim_in_the_hash_and_delete_data() {
    let hub = Hub::new();
    let mut outbox = hub.connect(Identity::anonymous());
    subscribe(&hub, &outbox, "tags.Tag", Target::Feed);

    hub.publish(Change::new(
        "tags.Tag",
        ChangeKind::Updated,
        json!("rust"),
        json!({"slug": "rust"}),
    ));
    hub.publish(Change::new(
        "tags.Tag",
        ChangeKind::Deleted,
        json!("rust"),
        json!({"slug": "rust"}),
    ));

    let pushes = drain(&mut outbox);
    assert_eq!(events(&pushes), ["tags.Tag.updated#rust", "tags.Tag.deleted#rust"]);
    assert_eq!(pushes[1].data, json!({"id": "rust"}));
}

#[test]
fn seq_is_per_stream_and_grows_by_one_per_change() {
    let hub = Hub::new();
    let mut users = hub.connect(Identity::anonymous());
    let mut posts = hub.connect(Identity::anonymous());
    let mut both = hub.connect(Identity::anonymous());
    subscribe(&hub, &users, USERS, Target::Feed);
    subscribe(&hub, &posts, POSTS, Target::Feed);
    subscribe(&hub, &both, USERS, Target::Feed);
    subscribe(&hub, &both, POSTS, Target::Feed);

    assert_eq!(hub.publish(created(USERS, 1)).unwrap().seq, 1);
    assert_eq!(hub.publish(created(POSTS, 1)).unwrap().seq, 1);
    assert_eq!(hub.publish(created(USERS, 2)).unwrap().seq, 2);
    assert_eq!(hub.publish(updated(USERS, 1, "x")).unwrap().seq, 3);
    assert_eq!(hub.publish(updated(POSTS, 1, "y")).unwrap().seq, 2);

    assert_eq!(hub.position(USERS).seq, 3);
    assert_eq!(hub.position(POSTS).seq, 2);
    assert_eq!(hub.position("never.Published").seq, 0);

    assert_eq!(seqs(&drain(&mut users)), [1, 2, 3]);
    assert_eq!(seqs(&drain(&mut posts)), [1, 2]);
    let both = drain(&mut both);
    assert_eq!(
        both.iter().map(|p| (p.event.as_str(), p.seq)).collect::<Vec<_>>(),
        [
            ("auth.User.created", Some(1)),
            ("blog.Post.created", Some(1)),
            ("auth.User.created", Some(2)),
            ("auth.User.updated#1", Some(3)),
            ("blog.Post.updated#1", Some(2)),
        ]
    );
}

#[test]
fn every_hub_has_its_own_epoch() {
    let a = Hub::new();
    let b = Hub::new();
    assert_ne!(a.epoch(), b.epoch());
    assert!(!a.epoch().is_empty());
    // Clones and origin-tagged handles are the same hub.
    assert_eq!(a.clone().epoch(), a.epoch());
    assert_eq!(a.with_origin(None).epoch(), a.epoch());
}

#[test]
fn non_subscribers_receive_nothing() {
    let hub = Hub::new();
    let mut outbox = hub.connect(user("1"));
    subscribe(&hub, &outbox, POSTS, Target::Feed);
    hub.publish(created(USERS, 1));
    hub.publish(updated(USERS, 1, "x"));
    assert!(next(&mut outbox).is_none());
}

// ---------------------------------------------------------------------------
// Object subscriptions
// ---------------------------------------------------------------------------

#[test]
fn echo_subscription_repeats_the_retrieve_event_and_ends_on_delete() {
    let hub = Hub::new();
    let mut outbox = hub.connect(user("5"));
    subscribe(&hub, &outbox, USERS, echo("5", "auth.User.retrieve#5"));
    assert_eq!(outbox.connection().subscription_count(), 1);
    assert_eq!(hub.subscriber_count(USERS), 1);

    hub.publish(updated(USERS, 5, "first"));
    hub.publish(updated(USERS, 6, "other object"));
    hub.publish(created(USERS, 7));
    hub.publish(updated(USERS, 5, "second"));
    hub.publish(deleted(USERS, 5));
    hub.publish(updated(USERS, 5, "after delete"));

    let pushes = drain(&mut outbox);
    assert_eq!(
        events(&pushes),
        ["auth.User.retrieve#5", "auth.User.retrieve#5", "auth.User.deleted#5"]
    );
    assert_eq!(pushes[0].data, json!({"id": 5, "name": "first"}));
    assert_eq!(pushes[1].data, json!({"id": 5, "name": "second"}));
    assert_eq!(pushes[2].data, json!({"id": 5}));
    assert_eq!(seqs(&pushes), [1, 4, 5]);
    assert!(pushes.iter().all(|p| p.epoch.as_deref() == Some(&**hub.epoch())));

    // The delete ended the subscription.
    assert_eq!(outbox.connection().subscription_count(), 0);
    assert_eq!(hub.subscriber_count(USERS), 0);
}

#[test]
fn echo_form_keeps_the_exact_event_string() {
    let hub = Hub::new();
    let mut outbox = hub.connect(Identity::anonymous());
    // Whatever the client used, hash included, comes back unchanged.
    subscribe(&hub, &outbox, USERS, echo("5", "auth.User.subscribe#5"));
    hub.publish(updated(USERS, 5, "x"));
    assert_eq!(events(&drain(&mut outbox)), ["auth.User.subscribe#5"]);
}

#[test]
fn object_feed_form_uses_change_feed_names() {
    let hub = Hub::new();
    let mut outbox = hub.connect(Identity::anonymous());
    subscribe(&hub, &outbox, USERS, object_feed("5"));
    hub.publish(updated(USERS, 5, "x"));
    hub.publish(deleted(USERS, 5));
    let pushes = drain(&mut outbox);
    assert_eq!(events(&pushes), ["auth.User.updated#5", "auth.User.deleted#5"]);
    assert_eq!(pushes[1].data, json!({"id": 5}));
}

#[test]
fn feed_and_object_feed_form_on_one_connection_get_each_change_once() {
    let hub = Hub::new();
    let mut outbox = hub.connect(Identity::anonymous());
    subscribe(&hub, &outbox, USERS, Target::Feed);
    subscribe(&hub, &outbox, USERS, object_feed("5"));

    hub.publish(updated(USERS, 5, "x"));
    hub.publish(deleted(USERS, 5));

    let pushes = drain(&mut outbox);
    assert_eq!(events(&pushes), ["auth.User.updated#5", "auth.User.deleted#5"]);
    assert_eq!(seqs(&pushes), [1, 2]);
}

#[test]
fn a_delete_is_never_delivered_twice_to_one_connection() {
    let hub = Hub::new();
    let mut outbox = hub.connect(Identity::anonymous());
    subscribe(&hub, &outbox, USERS, Target::Feed);
    subscribe(&hub, &outbox, USERS, echo("5", "auth.User.retrieve#5"));
    subscribe(&hub, &outbox, USERS, echo("5", "auth.User.subscribe#5"));
    subscribe(&hub, &outbox, USERS, object_feed("5"));
    // Several forms of one object hold one subscription slot.
    assert_eq!(outbox.connection().subscription_count(), 2);

    hub.publish(updated(USERS, 5, "x"));
    let update = drain(&mut outbox);
    // Feed once (feed and object feed form share it), plus each echo form.
    let mut names = events(&update);
    names.sort_unstable();
    assert_eq!(
        names,
        ["auth.User.retrieve#5", "auth.User.subscribe#5", "auth.User.updated#5"]
    );
    assert!(update.iter().all(|p| p.seq == Some(1)));

    hub.publish(deleted(USERS, 5));
    let delete = drain(&mut outbox);
    assert_eq!(events(&delete), ["auth.User.deleted#5"]);
    assert_eq!(outbox.connection().subscription_count(), 1, "only the feed is left");
}

#[test]
fn object_delete_without_feed_subscription_is_delivered_once_for_many_forms() {
    let hub = Hub::new();
    let mut outbox = hub.connect(Identity::anonymous());
    subscribe(&hub, &outbox, USERS, echo("5", "auth.User.retrieve#5"));
    subscribe(&hub, &outbox, USERS, echo("5", "auth.User.subscribe#5"));
    hub.publish(deleted(USERS, 5));
    assert_eq!(events(&drain(&mut outbox)), ["auth.User.deleted#5"]);
}

#[test]
fn one_connections_object_delete_does_not_end_anothers_feed() {
    let hub = Hub::new();
    let mut watcher = hub.connect(Identity::anonymous());
    let mut feed = hub.connect(Identity::anonymous());
    subscribe(&hub, &watcher, USERS, echo("5", "auth.User.retrieve#5"));
    subscribe(&hub, &feed, USERS, Target::Feed);

    hub.publish(deleted(USERS, 5));
    hub.publish(created(USERS, 6));

    assert_eq!(events(&drain(&mut watcher)), ["auth.User.deleted#5"]);
    assert_eq!(events(&drain(&mut feed)), ["auth.User.deleted#5", "auth.User.created"]);
    assert_eq!(hub.subscriber_count(USERS), 1);
}

#[test]
fn unsubscribe_stops_pushes_and_reports_whether_there_was_one() {
    let hub = Hub::new();
    let mut outbox = hub.connect(Identity::anonymous());
    subscribe(&hub, &outbox, USERS, Target::Feed);
    subscribe(&hub, &outbox, USERS, echo("5", "auth.User.retrieve#5"));
    subscribe(&hub, &outbox, USERS, object_feed("5"));
    assert_eq!(hub.subscriber_count(USERS), 2);

    assert!(hub.unsubscribe(outbox.connection(), USERS, &Target::Feed));
    assert!(!hub.unsubscribe(outbox.connection(), USERS, &Target::Feed));
    // Unsubscribing an object ends every form of it, whatever form is named.
    assert!(hub.unsubscribe(outbox.connection(), USERS, &object_feed("5")));
    assert!(!hub.unsubscribe(outbox.connection(), USERS, &echo("5", "auth.User.retrieve#5")));
    assert!(!hub.unsubscribe(outbox.connection(), POSTS, &Target::Feed));

    assert_eq!(hub.subscriber_count(USERS), 0);
    assert_eq!(outbox.connection().subscription_count(), 0);
    hub.publish(updated(USERS, 5, "x"));
    assert!(next(&mut outbox).is_none());
}

// ---------------------------------------------------------------------------
// Visibility
// ---------------------------------------------------------------------------

fn only(id: &'static str) -> Visibility {
    Visibility::rule(move |who: &Identity| who.id() == Some(id))
}

#[test]
fn visibility_hides_changes_from_feed_subscribers_it_rejects() {
    let hub = Hub::new();
    let mut alice = hub.connect(user("alice"));
    let mut bob = hub.connect(user("bob"));
    let mut anonymous = hub.connect(Identity::anonymous());
    for outbox in [&alice, &bob, &anonymous] {
        subscribe(&hub, outbox, USERS, Target::Feed);
    }

    hub.publish(created(USERS, 1).visible_to(only("alice")));
    hub.publish(updated(USERS, 1, "secret").visible_to(only("alice")));
    hub.publish(deleted(USERS, 1).visible_to(only("alice")));
    hub.publish(created(USERS, 2));

    assert_eq!(
        events(&drain(&mut alice)),
        [
            "auth.User.created",
            "auth.User.updated#1",
            "auth.User.deleted#1",
            "auth.User.created"
        ]
    );
    // Hidden changes leave no trace; the feed itself lives on.
    for outbox in [&mut bob, &mut anonymous] {
        let pushes = drain(outbox);
        assert_eq!(events(&pushes), ["auth.User.created"]);
        assert_eq!(pushes[0].data["id"], 2);
        assert_eq!(pushes[0].seq, Some(4));
    }
    assert_eq!(bob.connection().subscription_count(), 1);
}

#[test]
fn visibility_hides_object_changes_and_unreadable_objects_end_the_subscription() {
    let hub = Hub::new();
    let mut alice = hub.connect(user("alice"));
    let mut bob = hub.connect(user("bob"));
    subscribe(&hub, &alice, USERS, echo("5", "auth.User.retrieve#5"));
    subscribe(&hub, &bob, USERS, echo("5", "auth.User.retrieve#5"));

    hub.publish(updated(USERS, 5, "public"));
    // Object 5 becomes readable by alice only: bob hears nothing and his
    // subscription ends.
    hub.publish(updated(USERS, 5, "private").visible_to(only("alice")));
    assert_eq!(bob.connection().subscription_count(), 0);
    assert_eq!(alice.connection().subscription_count(), 1);
    // Visible again: bob is no longer subscribed, so still nothing.
    hub.publish(updated(USERS, 5, "public again"));

    let alice_pushes = drain(&mut alice);
    assert_eq!(
        alice_pushes.iter().map(|p| p.data["name"].clone()).collect::<Vec<_>>(),
        [json!("public"), json!("private"), json!("public again")]
    );
    let bob_pushes = drain(&mut bob);
    assert_eq!(bob_pushes.len(), 1);
    assert_eq!(bob_pushes[0].data["name"], "public");
    assert_eq!(hub.subscriber_count(USERS), 1);
}

#[test]
fn an_update_that_moves_an_object_out_of_sight_tells_who_could_read_it_as_a_delete() {
    let hub = Hub::new();
    let mut alice = hub.connect(user("alice"));
    let mut bob = hub.connect(user("bob"));
    let mut carol = hub.connect(user("carol"));
    let mut alice_object = hub.connect(user("alice"));
    for outbox in [&alice, &bob, &carol] {
        subscribe(&hub, outbox, USERS, Target::Feed);
    }
    subscribe(&hub, &alice_object, USERS, echo("5", "auth.User.retrieve#5"));

    // Object 5 passes from alice to bob.
    hub.publish(
        updated(USERS, 5, "moved")
            .visible_to(only("bob"))
            .was_visible_to(only("alice")),
    );

    let told = drain(&mut alice);
    assert_eq!(events(&told), ["auth.User.deleted#5"]);
    assert_eq!(told[0].data, json!({"id": 5}), "nothing but the id");
    assert_eq!(seqs(&told), [1], "in sequence, no gap");
    let told = drain(&mut alice_object);
    assert_eq!(events(&told), ["auth.User.deleted#5"]);
    assert_eq!(alice_object.connection().subscription_count(), 0, "the object ended");
    let told = drain(&mut bob);
    assert_eq!(events(&told), ["auth.User.updated#5"]);
    assert_eq!(told[0].data["name"], "moved");
    assert!(drain(&mut carol).is_empty(), "never could read it");

    // A resuming feed subscriber is told the same from history.
    let mut late_alice = hub.connect(user("alice"));
    let subscribed = hub
        .subscribe(late_alice.connection(), USERS, Target::Feed, Some(&at(&hub, 0)))
        .unwrap();
    assert_eq!(subscribed.replayed, 1);
    assert_eq!(events(&drain(&mut late_alice)), ["auth.User.deleted#5"]);
}

#[test]
fn a_connection_whose_client_left_is_not_subscribed() {
    let hub = Hub::new();
    let outbox = hub.connect(user("alice"));
    let connection = outbox.connection().clone();
    drop(outbox);
    // A request that finished after its client left subscribes nothing.
    let subscribed = hub.subscribe(&connection, USERS, Target::Feed, None).unwrap();
    assert!(!subscribed.created);
    assert_eq!(hub.subscriber_count(USERS), 0);
    assert_eq!(connection.subscription_count(), 0);
}

#[test]
fn an_update_that_stays_out_of_sight_tells_nothing() {
    let hub = Hub::new();
    let mut carol = hub.connect(user("carol"));
    subscribe(&hub, &carol, USERS, Target::Feed);
    hub.publish(
        updated(USERS, 5, "still bob's")
            .visible_to(only("bob"))
            .was_visible_to(only("bob")),
    );
    assert!(drain(&mut carol).is_empty());
}

#[test]
fn a_hidden_delete_is_not_delivered_to_object_subscribers() {
    let hub = Hub::new();
    let mut alice = hub.connect(user("alice"));
    let mut bob = hub.connect(user("bob"));
    subscribe(&hub, &alice, USERS, echo("5", "auth.User.retrieve#5"));
    subscribe(&hub, &bob, USERS, object_feed("5"));

    hub.publish(deleted(USERS, 5).visible_to(only("alice")));

    assert_eq!(events(&drain(&mut alice)), ["auth.User.deleted#5"]);
    assert!(drain(&mut bob).is_empty());
    assert_eq!(hub.subscriber_count(USERS), 0);
    assert_eq!(bob.connection().subscription_count(), 0);
}

#[test]
fn a_feed_subscriber_that_may_not_read_an_object_is_not_told_via_its_object_subscription_either() {
    let hub = Hub::new();
    let mut bob = hub.connect(user("bob"));
    subscribe(&hub, &bob, USERS, Target::Feed);
    subscribe(&hub, &bob, USERS, echo("5", "auth.User.retrieve#5"));
    hub.publish(updated(USERS, 5, "private").visible_to(only("alice")));
    assert!(drain(&mut bob).is_empty());
    assert_eq!(
        bob.connection().subscription_count(),
        1,
        "the feed stays, the object ends"
    );
}

// ---------------------------------------------------------------------------
// Origin tagging
// ---------------------------------------------------------------------------

#[test]
fn pushes_caused_by_a_request_wait_for_its_reply_only_on_its_connection() {
    let hub = Hub::new();
    let mut writer = hub.connect(user("1"));
    let mut other = hub.connect(user("2"));
    let mut watcher = hub.connect(user("3"));
    subscribe(&hub, &writer, USERS, Target::Feed);
    subscribe(&hub, &other, USERS, Target::Feed);
    subscribe(&hub, &writer, USERS, echo("5", "auth.User.retrieve#5"));
    subscribe(&hub, &watcher, USERS, echo("5", "auth.User.retrieve#5"));

    let origin = Origin {
        connection: writer.connection().id(),
        request: 7,
    };
    let tagged = hub.with_origin(Some(origin));
    assert_eq!(tagged.origin(), Some(origin));
    assert_eq!(hub.origin(), None);

    tagged.publish(updated(USERS, 5, "x"));
    let writer_pushes = drain(&mut writer);
    assert_eq!(writer_pushes.len(), 2, "feed frame and echo frame");
    assert!(writer_pushes.iter().all(|p| p.after_reply == Some(7)));
    let other_pushes = drain(&mut other);
    assert_eq!(other_pushes.len(), 1);
    assert_eq!(other_pushes[0].after_reply, None);
    let watcher_pushes = drain(&mut watcher);
    assert_eq!(watcher_pushes.len(), 1);
    assert_eq!(watcher_pushes[0].after_reply, None);

    // Group sends are tagged the same way.
    assert_eq!(tagged.broadcast("note", &json!({})).expect("serializable"), 3);
    assert_eq!(next(&mut writer).expect("broadcast").after_reply, Some(7));
    assert_eq!(next(&mut other).expect("broadcast").after_reply, None);

    // The untagged hub never tags.
    hub.publish(updated(USERS, 5, "y"));
    assert!(drain(&mut writer).iter().all(|p| p.after_reply.is_none()));
}

#[test]
fn replayed_frames_are_tagged_with_the_subscribing_request() {
    let hub = Hub::new();
    hub.publish(created(USERS, 1));
    hub.publish(created(USERS, 2));
    let mut outbox = hub.connect(Identity::anonymous());
    let tagged = hub.with_origin(Some(Origin {
        connection: outbox.connection().id(),
        request: 3,
    }));
    let subscribed = tagged
        .subscribe(outbox.connection(), USERS, Target::Feed, Some(&at(&hub, 0)))
        .expect("within limits");
    assert_eq!(subscribed.replayed, 2);
    let pushes = drain(&mut outbox);
    assert_eq!(
        pushes.iter().map(|p| p.after_reply).collect::<Vec<_>>(),
        [Some(3), Some(3)]
    );
}

// ---------------------------------------------------------------------------
// `since` replay
// ---------------------------------------------------------------------------

#[test]
fn since_replays_exactly_the_missing_changes_then_goes_live() {
    let hub = Hub::new();
    for pk in 1..=5 {
        hub.publish(created(USERS, pk));
    }
    let mut outbox = hub.connect(Identity::anonymous());
    let since = at(&hub, 2);
    assert!(hub.can_resume(USERS, &since));

    let subscribed = hub
        .subscribe(outbox.connection(), USERS, Target::Feed, Some(&since))
        .expect("within limits");
    assert_eq!(subscribed.replayed, 3);
    assert!(!subscribed.resync);
    assert_eq!(subscribed.position, at(&hub, 5));

    hub.publish(created(USERS, 6));
    hub.publish(updated(USERS, 3, "x"));

    let pushes = drain(&mut outbox);
    assert_eq!(seqs(&pushes), [3, 4, 5, 6, 7], "no gap, no duplicate");
    assert_eq!(
        pushes.iter().map(|p| p.data["id"].clone()).collect::<Vec<_>>(),
        [json!(3), json!(4), json!(5), json!(6), json!(3)]
    );
    assert_eq!(pushes[4].event, "auth.User.updated#3");
    assert!(pushes.iter().all(|p| p.epoch.as_deref() == Some(&**hub.epoch())));
}

#[test]
fn since_replays_only_what_the_connection_may_read() {
    let hub = Hub::new();
    hub.publish(created(USERS, 1));
    hub.publish(created(USERS, 2).visible_to(only("alice")));
    hub.publish(created(USERS, 3));
    hub.publish(deleted(USERS, 2).visible_to(only("alice")));

    let mut bob = hub.connect(user("bob"));
    let subscribed = hub
        .subscribe(bob.connection(), USERS, Target::Feed, Some(&at(&hub, 0)))
        .expect("within limits");
    assert_eq!(subscribed.replayed, 2);
    assert_eq!(seqs(&drain(&mut bob)), [1, 3]);

    let mut alice = hub.connect(user("alice"));
    let subscribed = hub
        .subscribe(alice.connection(), USERS, Target::Feed, Some(&at(&hub, 0)))
        .expect("within limits");
    assert_eq!(subscribed.replayed, 4);
    assert_eq!(
        events(&drain(&mut alice)),
        [
            "auth.User.created",
            "auth.User.created",
            "auth.User.created",
            "auth.User.deleted#2"
        ]
    );
}

#[test]
fn since_on_an_object_replays_only_that_object_in_its_form() {
    let hub = Hub::new();
    hub.publish(updated(USERS, 5, "a")); // 1
    hub.publish(updated(USERS, 6, "b")); // 2
    hub.publish(updated(USERS, 5, "c")); // 3
    hub.publish(created(USERS, 7)); // 4
    hub.publish(updated(USERS, 5, "d").visible_to(only("alice"))); // 5
    hub.publish(updated(USERS, 5, "e")); // 6

    let mut outbox = hub.connect(user("bob"));
    let subscribed = hub
        .subscribe(
            outbox.connection(),
            USERS,
            echo("5", "auth.User.retrieve#5"),
            Some(&at(&hub, 1)),
        )
        .expect("within limits");
    assert_eq!(subscribed.replayed, 2);
    assert!(!subscribed.resync);

    hub.publish(updated(USERS, 6, "f")); // 7: other object
    hub.publish(updated(USERS, 5, "g")); // 8

    let pushes = drain(&mut outbox);
    assert_eq!(
        pushes
            .iter()
            .map(|p| (p.event.as_str(), p.seq, p.data["name"].clone()))
            .collect::<Vec<_>>(),
        [
            ("auth.User.retrieve#5", Some(3), json!("c")),
            ("auth.User.retrieve#5", Some(6), json!("e")),
            ("auth.User.retrieve#5", Some(8), json!("g")),
        ]
    );

    // The object feed form replays change-feed names.
    let mut feed_form = hub.connect(user("bob"));
    hub.subscribe(feed_form.connection(), USERS, object_feed("6"), Some(&at(&hub, 0)))
        .expect("within limits");
    assert_eq!(
        events(&drain(&mut feed_form)),
        ["auth.User.updated#6", "auth.User.updated#6"]
    );
}

#[test]
fn since_replays_an_objects_delete_under_its_feed_name() {
    let hub = Hub::new();
    hub.publish(updated(USERS, 5, "a"));
    hub.publish(deleted(USERS, 5));
    let mut outbox = hub.connect(Identity::anonymous());
    let subscribed = hub
        .subscribe(
            outbox.connection(),
            USERS,
            echo("5", "auth.User.retrieve#5"),
            Some(&at(&hub, 0)),
        )
        .expect("within limits");
    assert_eq!(subscribed.replayed, 2);
    let pushes = drain(&mut outbox);
    assert_eq!(events(&pushes), ["auth.User.retrieve#5", "auth.User.deleted#5"]);
    assert_eq!(pushes[1].data, json!({"id": 5}));
}

#[test]
fn since_replaying_a_delete_does_not_leave_a_dead_object_subscription() {
    let hub = Hub::new();
    hub.publish(updated(USERS, 5, "a"));
    hub.publish(deleted(USERS, 5));
    let mut outbox = hub.connect(Identity::anonymous());
    hub.subscribe(
        outbox.connection(),
        USERS,
        echo("5", "auth.User.retrieve#5"),
        Some(&at(&hub, 0)),
    )
    .expect("within limits");
    assert_eq!(
        events(&drain(&mut outbox)),
        ["auth.User.retrieve#5", "auth.User.deleted#5"]
    );
    // A live delete ends the subscription; a replayed one must too.
    assert_eq!(outbox.connection().subscription_count(), 0);
    assert_eq!(hub.subscriber_count(USERS), 0);
}

#[test]
fn since_from_another_epoch_asks_for_a_resync_and_replays_nothing() {
    let hub = Hub::new();
    hub.publish(created(USERS, 1));
    hub.publish(created(USERS, 2));
    let mut outbox = hub.connect(Identity::anonymous());
    let stale = StreamPosition {
        epoch: Arc::from("another-epoch"),
        seq: 1,
    };
    assert!(!hub.can_resume(USERS, &stale));
    let other_hub = Hub::new();
    assert!(!hub.can_resume(USERS, &at(&other_hub, 1)));

    let subscribed = hub
        .subscribe(outbox.connection(), USERS, Target::Feed, Some(&stale))
        .expect("within limits");
    assert!(subscribed.resync);
    assert_eq!(subscribed.replayed, 0);
    assert_eq!(subscribed.position, at(&hub, 2));
    assert!(next(&mut outbox).is_none());

    // The subscription is live all the same.
    hub.publish(created(USERS, 3));
    assert_eq!(seqs(&drain(&mut outbox)), [3]);
}

#[test]
fn since_beyond_trimmed_history_asks_for_a_resync() {
    let hub = Hub::with_config(HubConfig::default().history_len(3));
    for pk in 1..=5 {
        hub.publish(created(USERS, pk));
    }
    // History holds 3, 4, 5.
    assert!(!hub.can_resume(USERS, &at(&hub, 0)));
    assert!(!hub.can_resume(USERS, &at(&hub, 1)));
    assert!(hub.can_resume(USERS, &at(&hub, 2)));
    assert!(hub.can_resume(USERS, &at(&hub, 4)));

    let mut trimmed = hub.connect(Identity::anonymous());
    let subscribed = hub
        .subscribe(trimmed.connection(), USERS, Target::Feed, Some(&at(&hub, 1)))
        .expect("within limits");
    assert!(subscribed.resync);
    assert_eq!(subscribed.replayed, 0);
    assert!(next(&mut trimmed).is_none());

    let mut edge = hub.connect(Identity::anonymous());
    let subscribed = hub
        .subscribe(edge.connection(), USERS, Target::Feed, Some(&at(&hub, 2)))
        .expect("within limits");
    assert!(!subscribed.resync);
    assert_eq!(subscribed.replayed, 3);
    assert_eq!(seqs(&drain(&mut edge)), [3, 4, 5]);
}

#[test]
fn since_with_history_disabled_resumes_only_at_the_current_position() {
    let hub = Hub::with_config(HubConfig::default().history_len(0));
    hub.publish(created(USERS, 1));
    assert!(!hub.can_resume(USERS, &at(&hub, 0)));
    assert!(hub.can_resume(USERS, &at(&hub, 1)));
}

#[test]
fn since_at_the_current_position_replays_nothing_and_needs_no_resync() {
    let hub = Hub::new();
    hub.publish(created(USERS, 1));
    hub.publish(created(USERS, 2));
    let mut outbox = hub.connect(Identity::anonymous());
    let current = hub.position(USERS);
    assert_eq!(current.seq, 2);
    assert!(hub.can_resume(USERS, &current));
    let subscribed = hub
        .subscribe(outbox.connection(), USERS, Target::Feed, Some(&current))
        .expect("within limits");
    assert!(!subscribed.resync);
    assert_eq!(subscribed.replayed, 0);
    assert!(next(&mut outbox).is_none());

    // A stream nobody published to: position 0 is current.
    let mut fresh = hub.connect(Identity::anonymous());
    let subscribed = hub
        .subscribe(fresh.connection(), POSTS, Target::Feed, Some(&at(&hub, 0)))
        .expect("within limits");
    assert!(!subscribed.resync);
    assert!(next(&mut fresh).is_none());
}

#[test]
fn since_in_the_future_asks_for_a_resync() {
    let hub = Hub::new();
    hub.publish(created(USERS, 1));
    let future = at(&hub, 2);
    assert!(!hub.can_resume(USERS, &future));
    let mut outbox = hub.connect(Identity::anonymous());
    let subscribed = hub
        .subscribe(outbox.connection(), USERS, Target::Feed, Some(&future))
        .expect("within limits");
    assert!(subscribed.resync);
    assert_eq!(subscribed.replayed, 0);
    assert!(next(&mut outbox).is_none());
    // Nothing published to the stream yet, but a position ahead of it.
    assert!(!hub.can_resume(POSTS, &at(&hub, 1)));
}

#[test]
fn since_beyond_the_history_age_asks_for_a_resync() {
    // `Hub` timestamps history with `std::time::Instant`, which tokio's
    // paused clock does not move, so this one test waits a few milliseconds.
    let hub = Hub::with_config(HubConfig::default().history_age(Duration::from_millis(1)));
    hub.publish(created(USERS, 1));
    hub.publish(created(USERS, 2));
    std::thread::sleep(Duration::from_millis(5));

    assert!(!hub.can_resume(USERS, &at(&hub, 0)));
    assert!(!hub.can_resume(USERS, &at(&hub, 1)));
    // At the current position nothing is needed from history.
    assert!(hub.can_resume(USERS, &at(&hub, 2)));

    let mut outbox = hub.connect(Identity::anonymous());
    let subscribed = hub
        .subscribe(outbox.connection(), USERS, Target::Feed, Some(&at(&hub, 0)))
        .expect("within limits");
    assert!(subscribed.resync);
    assert_eq!(subscribed.replayed, 0);
    assert!(next(&mut outbox).is_none());
}

#[test]
fn since_replay_has_no_gap_or_duplicate_while_changes_are_being_published() {
    const CHANGES: u64 = 2_000;
    let hub = Hub::with_config(HubConfig::default().history_len(10_000).queue_capacity(4_096));
    let publisher = {
        let hub = hub.clone();
        std::thread::spawn(move || {
            for pk in 1..=CHANGES {
                hub.publish(created(USERS, pk));
            }
        })
    };
    // Resume from wherever the publisher is now, a few changes back.
    let mut outbox = hub.connect(Identity::anonymous());
    let now = hub.position(USERS).seq;
    let since = at(&hub, now.saturating_sub(10));
    let subscribed = hub
        .subscribe(outbox.connection(), USERS, Target::Feed, Some(&since))
        .expect("within limits");
    assert!(!subscribed.resync);
    publisher.join().expect("publisher thread");

    let got = seqs(&drain(&mut outbox));
    let expected: Vec<u64> = (since.seq + 1..=CHANGES).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_refused_subscription_replays_nothing() {
    let hub = Hub::with_config(HubConfig::default().max_subscriptions(1));
    hub.publish(created(POSTS, 1));
    hub.publish(created(POSTS, 2));
    let mut outbox = hub.connect(Identity::anonymous());
    subscribe(&hub, &outbox, USERS, Target::Feed);
    let refused = hub.subscribe(outbox.connection(), POSTS, Target::Feed, Some(&at(&hub, 0)));
    assert_eq!(refused, Err(SubscribeError::TooManySubscriptions(1)));
    assert!(
        drain(&mut outbox).is_empty(),
        "pushes of a subscription that was refused"
    );
}

// ---------------------------------------------------------------------------
// Slow consumers
// ---------------------------------------------------------------------------

#[test]
fn a_consumer_that_never_reads_overflows_without_holding_back_others() {
    let hub = Hub::with_config(HubConfig::default().queue_capacity(4));
    let mut slow = hub.connect(Identity::anonymous());
    let mut fast = hub.connect(Identity::anonymous());
    subscribe(&hub, &slow, USERS, Target::Feed);
    subscribe(&hub, &fast, USERS, Target::Feed);

    assert!(!slow.connection().is_overflowed());
    assert!(slow.overflowed().now_or_never().is_none());

    let mut fast_got = Vec::new();
    for pk in 1..=10 {
        hub.publish(created(USERS, pk));
        fast_got.extend(drain(&mut fast));
        assert!(!fast.connection().is_overflowed());
    }
    assert_eq!(seqs(&fast_got), (1..=10).collect::<Vec<_>>());

    assert!(slow.connection().is_overflowed());
    assert!(slow.overflowed().now_or_never().is_some());
    assert_eq!(slow.connection().queued(), 4);
    // What was queued before the overflow is intact; nothing after it is.
    assert_eq!(seqs(&drain(&mut slow)), [1, 2, 3, 4]);
    // Once overflowed, the connection takes nothing more even with room.
    hub.publish(created(USERS, 11));
    assert!(next(&mut slow).is_none());
    assert!(slow.connection().is_overflowed());
    assert_eq!(seqs(&drain(&mut fast)), [11]);
}

#[tokio::test]
async fn overflowed_wakes_a_waiting_transport() {
    let hub = Hub::with_config(HubConfig::default().queue_capacity(1));
    let outbox = hub.connect(Identity::anonymous());
    subscribe(&hub, &outbox, USERS, Target::Feed);
    let outbox = Arc::new(outbox);
    let waiter = tokio::spawn({
        let outbox = outbox.clone();
        async move {
            outbox.overflowed().await;
        }
    });
    // Let the waiter register before the overflow happens.
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    hub.publish(created(USERS, 1));
    hub.publish(created(USERS, 2));
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("overflowed() completes")
        .expect("waiter task");
    assert!(outbox.connection().is_overflowed());
}

#[tokio::test(start_paused = true)]
async fn overflowed_wakes_every_waiter() {
    let hub = Hub::with_config(HubConfig::default().queue_capacity(1));
    let outbox = Arc::new(hub.connect(Identity::anonymous()));
    subscribe(&hub, &outbox, USERS, Target::Feed);
    let connection = outbox.connection().clone();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                outbox.overflowed().await;
            })
        })
        .chain(std::iter::once(tokio::spawn(async move {
            connection.overflowed().await;
        })))
        .collect();
    tokio::task::yield_now().await;
    hub.publish(created(USERS, 1));
    hub.publish(created(USERS, 2));
    for waiter in waiters {
        // The clock is paused: the timeout fires as soon as nothing else can run.
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("every waiter is woken")
            .expect("waiter task");
    }
}

#[test]
fn group_sends_to_an_overflowed_connection_are_not_counted() {
    let hub = Hub::with_config(HubConfig::default().queue_capacity(1));
    let _slow = hub.connect(Identity::anonymous());
    let mut fast = hub.connect(Identity::anonymous());
    assert_eq!(hub.broadcast("tick", &1).expect("serializable"), 2);
    fast.try_recv().expect("first tick");
    assert_eq!(hub.broadcast("tick", &2).expect("serializable"), 1);
}

// ---------------------------------------------------------------------------
// Subscription limit
// ---------------------------------------------------------------------------

#[test]
fn max_subscriptions_counts_distinct_targets_and_frees_slots() {
    let hub = Hub::with_config(HubConfig::default().max_subscriptions(3));
    let outbox = hub.connect(Identity::anonymous());
    let connection = outbox.connection();
    hub.subscribe(connection, USERS, Target::Feed, None).expect("1st");
    hub.subscribe(connection, POSTS, Target::Feed, None).expect("2nd");
    hub.subscribe(connection, "tags.Tag", echo("1", "tags.Tag.retrieve#1"), None)
        .expect("3rd");
    assert_eq!(connection.subscription_count(), 3);

    assert_eq!(
        hub.subscribe(connection, "tags.Tag", echo("2", "tags.Tag.retrieve#2"), None),
        Err(SubscribeError::TooManySubscriptions(3))
    );
    assert_eq!(
        hub.subscribe(connection, "other.Stream", Target::Feed, None),
        Err(SubscribeError::TooManySubscriptions(3))
    );
    assert_eq!(
        SubscribeError::TooManySubscriptions(3).to_string(),
        "subscription limit reached (3); unsubscribe first"
    );

    // Re-subscribing what is already held does not count, in any form.
    hub.subscribe(connection, USERS, Target::Feed, None).expect("same feed");
    hub.subscribe(connection, "tags.Tag", echo("1", "tags.Tag.retrieve#1"), None)
        .expect("same object");
    hub.subscribe(connection, "tags.Tag", object_feed("1"), None)
        .expect("same object, other form");
    assert_eq!(connection.subscription_count(), 3);

    // Unsubscribing frees one slot.
    assert!(hub.unsubscribe(connection, POSTS, &Target::Feed));
    hub.subscribe(connection, "tags.Tag", echo("2", "tags.Tag.retrieve#2"), None)
        .expect("slot freed by unsubscribe");
    assert!(hub.subscribe(connection, POSTS, Target::Feed, None).is_err());

    // A delete of a followed object frees its slot.
    hub.publish(deleted("tags.Tag", 1));
    assert_eq!(connection.subscription_count(), 2);
    hub.subscribe(connection, POSTS, Target::Feed, None)
        .expect("slot freed by delete");
    assert!(
        hub.subscribe(connection, "tags.Tag", echo("3", "tags.Tag.retrieve#3"), None)
            .is_err()
    );
}

#[test]
fn the_subscription_limit_is_per_connection() {
    let hub = Hub::with_config(HubConfig::default().max_subscriptions(1));
    let a = hub.connect(Identity::anonymous());
    let b = hub.connect(Identity::anonymous());
    hub.subscribe(a.connection(), USERS, Target::Feed, None).expect("a");
    hub.subscribe(b.connection(), USERS, Target::Feed, None).expect("b");
    assert!(hub.subscribe(a.connection(), POSTS, Target::Feed, None).is_err());
}

#[test]
fn an_unreadable_object_frees_its_slot() {
    let hub = Hub::with_config(HubConfig::default().max_subscriptions(1));
    let outbox = hub.connect(user("bob"));
    hub.subscribe(outbox.connection(), USERS, echo("5", "auth.User.retrieve#5"), None)
        .expect("1st");
    assert!(hub.subscribe(outbox.connection(), POSTS, Target::Feed, None).is_err());
    hub.publish(updated(USERS, 5, "private").visible_to(only("alice")));
    hub.subscribe(outbox.connection(), POSTS, Target::Feed, None)
        .expect("slot freed");
}

// ---------------------------------------------------------------------------
// Disconnecting
// ---------------------------------------------------------------------------

#[test]
fn dropping_an_outbox_ends_its_subscriptions_and_groups() {
    let hub = Hub::new();
    let gone = hub.connect(user("1"));
    let mut stays = hub.connect(user("1"));
    assert_eq!(hub.connection_count(), 2);

    subscribe(&hub, &gone, USERS, Target::Feed);
    subscribe(&hub, &gone, USERS, echo("5", "auth.User.retrieve#5"));
    subscribe(&hub, &gone, POSTS, object_feed("9"));
    hub.join(gone.connection(), "room").expect("join");
    hub.join(stays.connection(), "room").expect("join");
    subscribe(&hub, &stays, USERS, Target::Feed);
    assert_eq!(hub.subscriber_count(USERS), 3);
    assert_eq!(hub.subscriber_count(POSTS), 1);
    assert_eq!(hub.send_to_group("room", "hello", &json!({})).expect("serializable"), 2);
    assert_eq!(hub.send_to_user("1", "hello", &json!({})).expect("serializable"), 2);
    assert_eq!(hub.broadcast("hello", &json!({})).expect("serializable"), 2);

    let connection = gone.connection().clone();
    drop(gone);

    assert!(connection.is_closed());
    assert_eq!(connection.subscription_count(), 0);
    assert_eq!(hub.connection_count(), 1);
    assert_eq!(hub.subscriber_count(USERS), 1);
    assert_eq!(hub.subscriber_count(POSTS), 0);
    assert_eq!(hub.send_to_group("room", "hello", &json!({})).expect("serializable"), 1);
    assert_eq!(hub.send_to_user("1", "hello", &json!({})).expect("serializable"), 1);
    assert_eq!(hub.broadcast("hello", &json!({})).expect("serializable"), 1);

    drain(&mut stays);
    hub.publish(updated(USERS, 5, "x"));
    assert_eq!(events(&drain(&mut stays)), ["auth.User.updated#5"]);

    drop(stays);
    assert_eq!(hub.connection_count(), 0);
    assert_eq!(hub.subscriber_count(USERS), 0);
    assert_eq!(hub.broadcast("hello", &json!({})).expect("serializable"), 0);
}

#[test]
fn an_outbox_outliving_its_hub_drops_cleanly() {
    let hub = Hub::new();
    let mut outbox = hub.connect(Identity::anonymous());
    subscribe(&hub, &outbox, USERS, Target::Feed);
    hub.publish(created(USERS, 1));
    drop(hub);
    // Queued frames are still readable; dropping does not panic.
    assert_eq!(seqs(&drain(&mut outbox)), [1]);
    drop(outbox);
}

// ---------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------

#[test]
fn groups_users_and_broadcast_reach_their_members() {
    let hub = Hub::new();
    let mut alice_phone = hub.connect(user("alice"));
    let mut alice_laptop = hub.connect(user("alice"));
    let mut bob = hub.connect(user("bob"));
    let mut anonymous = hub.connect(Identity::anonymous());

    assert_eq!(user_group("alice"), "user.alice");
    assert_eq!(
        hub.send_to_user("alice", "dm", &json!({"text": "hi"})).expect("json"),
        2
    );
    assert_eq!(hub.send_to_user("bob", "dm", &json!({"text": "yo"})).expect("json"), 1);
    assert_eq!(hub.send_to_user("carol", "dm", &json!({})).expect("json"), 0);
    assert_eq!(
        hub.send_to_group(&user_group("bob"), "dm", &json!({})).expect("json"),
        1
    );

    for outbox in [&mut alice_phone, &mut alice_laptop] {
        let pushes = drain(outbox);
        assert_eq!(pushes.len(), 1);
        assert_eq!(pushes[0].event, "dm");
        assert_eq!(pushes[0].data, json!({"text": "hi"}));
        // Group sends are not changes: no seq, no epoch.
        assert_eq!(pushes[0].seq, None);
        assert_eq!(pushes[0].epoch, None);
    }
    assert_eq!(drain(&mut bob).len(), 2);
    assert!(drain(&mut anonymous).is_empty(), "anonymous is in no user group");

    assert_eq!(hub.broadcast("announcement", &"maintenance").expect("json"), 4);
    assert_eq!(hub.send_to_group(ALL_GROUP, "again", &1).expect("json"), 4);
    for outbox in [&mut alice_phone, &mut alice_laptop, &mut bob, &mut anonymous] {
        let pushes = drain(outbox);
        assert_eq!(events(&pushes), ["announcement", "again"]);
        assert_eq!(pushes[0].data, json!("maintenance"));
    }
}

#[test]
fn join_and_leave_named_groups() {
    let hub = Hub::new();
    let mut a = hub.connect(Identity::anonymous());
    let mut b = hub.connect(user("b"));
    assert_eq!(hub.send_to_group("room", "msg", &0).expect("json"), 0);

    hub.join(a.connection(), "room").expect("join");
    hub.join(a.connection(), "room").expect("joining twice is harmless");
    hub.join(b.connection(), "room").expect("join");
    assert_eq!(hub.send_to_group("room", "msg", &1).expect("json"), 2);

    hub.leave(a.connection(), "room");
    hub.leave(a.connection(), "room");
    hub.leave(a.connection(), "never-joined");
    assert_eq!(hub.send_to_group("room", "msg", &2).expect("json"), 1);

    hub.leave(b.connection(), "room");
    assert_eq!(hub.send_to_group("room", "msg", &3).expect("json"), 0);

    let a_pushes = drain(&mut a);
    assert_eq!(a_pushes.iter().map(|p| p.data.clone()).collect::<Vec<_>>(), [json!(1)]);
    let b_pushes = drain(&mut b);
    assert_eq!(
        b_pushes.iter().map(|p| p.data.clone()).collect::<Vec<_>>(),
        [json!(1), json!(2)]
    );
}

#[test]
fn group_sends_fail_only_for_unserializable_data() {
    use std::collections::HashMap;
    let hub = Hub::new();
    let _outbox = hub.connect(Identity::anonymous());
    // Maps with non-string keys cannot be JSON.
    let bad: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
    assert!(hub.broadcast("bad", &bad).is_err());
}

#[test]
fn an_authenticated_connection_may_join_exactly_the_group_limit() {
    let hub = Hub::new();
    let outbox = hub.connect(user("1"));
    for i in 0..MAX_GROUPS_PER_CONNECTION {
        hub.join(outbox.connection(), &format!("g{i}"))
            .expect("within the limit");
    }
    assert_eq!(
        hub.join(outbox.connection(), "one-too-many"),
        Err(SubscribeError::TooManyGroups)
    );
    hub.leave(outbox.connection(), "g0");
    hub.join(outbox.connection(), "one-too-many").expect("a slot was freed");
}

#[test]
fn an_anonymous_connection_may_join_exactly_the_group_limit() {
    let hub = Hub::new();
    let outbox = hub.connect(Identity::anonymous());
    for i in 0..MAX_GROUPS_PER_CONNECTION {
        hub.join(outbox.connection(), &format!("g{i}"))
            .expect("within the limit");
    }
    assert_eq!(
        hub.join(outbox.connection(), "one-too-many"),
        Err(SubscribeError::TooManyGroups)
    );
}

// ---------------------------------------------------------------------------
// Fan-out
// ---------------------------------------------------------------------------

#[test]
fn one_change_fans_out_to_a_thousand_subscribers_as_one_shared_frame() {
    let hub = Hub::new();
    let mut feed: Vec<Outbox> = (0..1000).map(|_| hub.connect(Identity::anonymous())).collect();
    let mut objects: Vec<Outbox> = (0..1000).map(|_| hub.connect(Identity::anonymous())).collect();
    for outbox in &feed {
        subscribe(&hub, outbox, USERS, Target::Feed);
    }
    for outbox in &objects {
        subscribe(&hub, outbox, USERS, echo("5", "auth.User.retrieve#5"));
    }
    assert_eq!(hub.subscriber_count(USERS), 2000);

    hub.publish(updated(USERS, 5, "x"));

    for (group, expected_event) in [
        (&mut feed, "auth.User.updated#5"),
        (&mut objects, "auth.User.retrieve#5"),
    ] {
        let frames: Vec<_> = group
            .iter_mut()
            .map(|outbox| {
                let frame = outbox.try_recv().expect("every subscriber gets the change").frame;
                assert!(outbox.try_recv().is_none(), "exactly one frame each");
                frame
            })
            .collect();
        assert_eq!(frames.len(), 1000);
        let first = &frames[0];
        assert_eq!(parse(first, None).event, expected_event);
        for frame in &frames {
            assert_eq!(frame, first);
            // Encoded once, shared by every subscriber.
            assert_eq!(frame.as_ptr(), first.as_ptr());
        }
    }
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishers_produce_one_gapless_ordered_sequence() {
    const TASKS: u64 = 4;
    const PER_TASK: u64 = 250;
    let hub = Hub::new();
    let mut outbox = hub.connect(Identity::anonymous());
    subscribe(&hub, &outbox, USERS, Target::Feed);

    let start = Arc::new(tokio::sync::Barrier::new(usize::try_from(TASKS).expect("small")));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let hub = hub.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                let mut returned = Vec::new();
                for i in 0..PER_TASK {
                    let change = Change::new(USERS, ChangeKind::Updated, json!(task), json!({"task": task, "i": i}));
                    returned.push(hub.publish(change).unwrap().seq);
                    tokio::task::yield_now().await;
                }
                returned
            })
        })
        .collect();
    let mut returned = Vec::new();
    for task in tasks {
        returned.extend(task.await.expect("publisher task"));
    }
    returned.sort_unstable();
    assert_eq!(returned, (1..=TASKS * PER_TASK).collect::<Vec<_>>());

    let pushes = drain(&mut outbox);
    assert_eq!(seqs(&pushes), (1..=TASKS * PER_TASK).collect::<Vec<_>>());
    // Each publisher's changes arrive in the order it published them.
    let mut last_i = [None::<u64>; 4];
    for push in &pushes {
        let task = usize::try_from(push.data["task"].as_u64().expect("task")).expect("small");
        let i = push.data["i"].as_u64().expect("i");
        assert_eq!(last_i[task].map_or(0, |last| last + 1), i);
        last_i[task] = Some(i);
    }
    assert_eq!(last_i, [Some(PER_TASK - 1); 4]);
}
