//! One stream's state in the hub: its sequence, its bounded history and its subscribers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::value::RawValue;

use super::change::{Change, ChangeKind};
use super::connection::{Connection, Origin, Outbound};
use super::subscription::{PushForm, Target};
use crate::protocol::{encode_push, encode_resync};

/// A delivered change, kept for `since` replay.
pub(crate) struct Recorded {
    pub(crate) seq: u64,
    pub(crate) at: Instant,
    pub(crate) change: Change,
    /// The object (or `{"id": pk}` for a delete) serialized once.
    pub(crate) data: Box<RawValue>,
    /// The change-feed frame, serialized once.
    pub(crate) feed_frame: Bytes,
    /// For an update that can take the object out of some subscribers'
    /// sight: the `<stream>.deleted#<pk>` frame they get instead.
    pub(crate) moved_out_frame: Option<Bytes>,
}

impl Recorded {
    /// The frame for a subscriber who may not read the change: the
    /// moved-out frame if it could read the object before, else none.
    fn moved_out_for(&self, connection: &Connection) -> Option<Bytes> {
        let frame = self.moved_out_frame.as_ref()?;
        self.change
            .moves_out_of_sight_of(&connection.identity())
            .then(|| frame.clone())
    }
}

struct ObjectSubscriber {
    connection: Connection,
    forms: Vec<PushForm>,
}

pub(crate) struct StreamState {
    name: Arc<str>,
    /// The epoch of `seq` and of the history.
    pub(crate) epoch: Arc<str>,
    /// The last sequence number used; the next change gets `seq + 1`.
    pub(crate) seq: u64,
    /// With a broker: whether `seq` is known to match the channel layer's
    /// (a stream this node has not heard of yet starts unsynced).
    pub(crate) synced: bool,
    history: VecDeque<Recorded>,
    feed: HashMap<u64, Connection>,
    objects: HashMap<Arc<str>, HashMap<u64, ObjectSubscriber>>,
}

/// Per-subscriber frame cache for one fan-out: each distinct event string is
/// encoded once, however many subscribers use it.
struct FrameCache<'a> {
    record: &'a Recorded,
    epoch: &'a str,
    by_event: HashMap<Arc<str>, Bytes>,
}

impl<'a> FrameCache<'a> {
    fn frame(&mut self, form: &PushForm) -> Bytes {
        match form {
            PushForm::Feed => self.record.feed_frame.clone(),
            PushForm::Echo(event) => self
                .by_event
                .entry(event.clone())
                .or_insert_with(|| encode_push(event, &self.record.data, Some((self.epoch, self.record.seq))))
                .clone(),
        }
    }
}

fn tagged(frame: Bytes, connection: &Connection, origin: Option<Origin>) -> Outbound {
    let after_reply = origin.filter(|o| o.connection == connection.id()).map(|o| o.request);
    Outbound { frame, after_reply }
}

impl StreamState {
    pub(crate) fn new(name: Arc<str>, epoch: Arc<str>) -> Self {
        Self {
            name,
            epoch,
            seq: 0,
            synced: false,
            history: VecDeque::new(),
            feed: HashMap::new(),
            objects: HashMap::new(),
        }
    }

    /// Assigns the next sequence number, delivers the change to every
    /// subscriber allowed to read it, and records it in history.
    pub(crate) fn publish(
        &mut self,
        change: Change,
        origin: Option<Origin>,
        history_len: usize,
        history_age: Duration,
    ) -> (u64, usize) {
        let seq = self.seq + 1;
        let delivered = self.apply(seq, change, origin, history_len, history_age);
        (seq, delivered)
    }

    /// Delivers a change a broker sequenced as `seq` (the next one), and
    /// records it. Returns how many frames were queued.
    pub(crate) fn apply(
        &mut self,
        seq: u64,
        change: Change,
        origin: Option<Origin>,
        history_len: usize,
        history_age: Duration,
    ) -> usize {
        self.seq = seq;
        let record = self.record(seq, change);
        let delivered = self.fan_out(&record, origin);
        self.history.push_back(record);
        self.trim(history_len, history_age);
        delivered
    }

    /// Tells every subscriber that changes were lost (a `<stream>.resync`
    /// push, once per connection) and restarts history at `epoch`/`seq`:
    /// nobody can resume across the gap. Subscriptions stay.
    /// Returns how many connections were told.
    pub(crate) fn resync(&mut self, epoch: Arc<str>, seq: u64) -> usize {
        self.epoch = epoch;
        self.seq = seq;
        self.synced = true;
        self.history.clear();
        let frame = encode_resync(&self.name, &self.epoch, self.seq);
        let mut told: HashSet<u64> = HashSet::new();
        let objects = self
            .objects
            .values()
            .flat_map(|subscribers| subscribers.iter().map(|(id, subscriber)| (*id, &subscriber.connection)));
        for (id, connection) in self.feed.iter().map(|(id, c)| (*id, c)).chain(objects) {
            if told.insert(id) {
                connection.push(Outbound {
                    frame: frame.clone(),
                    after_reply: None,
                });
            }
        }
        told.len()
    }

    /// Takes the channel layer's position for a stream nobody here follows
    /// yet (nothing to tell anyone).
    pub(crate) fn adopt(&mut self, epoch: Arc<str>, seq: u64) {
        self.epoch = epoch;
        self.seq = seq;
        self.synced = true;
        self.history.clear();
    }

    /// Puts changes older than the history's oldest in front of it (a
    /// resuming subscriber needs them; the channel layer's history had them).
    /// `records` must be in order and end right before the oldest kept one.
    pub(crate) fn prepend(&mut self, records: Vec<(u64, Change)>) {
        let first_kept = self.history.front().map_or(self.seq + 1, |oldest| oldest.seq);
        for (seq, change) in records.into_iter().rev() {
            if seq < first_kept && self.history.front().is_none_or(|oldest| oldest.seq == seq + 1) {
                let record = self.record(seq, change);
                self.history.push_front(record);
            }
        }
    }

    fn record(&self, seq: u64, change: Change) -> Recorded {
        let data = match change.kind {
            ChangeKind::Deleted => serde_json::json!({ "id": change.pk }),
            _ => change.object.clone(),
        };
        let data = serde_json::value::to_raw_value(&data).unwrap_or_else(|err| {
            // A `Value` always serializes; keep the stream consistent regardless.
            tracing::error!(error = %err, "could not serialize a change");
            RawValue::from_string("null".to_owned()).unwrap_or_default()
        });
        let feed_event = match change.kind {
            ChangeKind::Created => format!("{}.created", self.name),
            kind => format!("{}.{}#{}", self.name, kind.action(), change.pk_key),
        };
        let feed_frame = encode_push(&feed_event, &data, Some((&self.epoch, seq)));
        let moved_out_frame = (change.kind == ChangeKind::Updated && change.previous.is_some()).then(|| {
            let event = format!("{}.{}#{}", self.name, ChangeKind::Deleted.action(), change.pk_key);
            let id = serde_json::value::to_raw_value(&serde_json::json!({ "id": change.pk }))
                .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).unwrap_or_default());
            encode_push(&event, &id, Some((&self.epoch, seq)))
        });
        Recorded {
            seq,
            at: Instant::now(),
            change,
            data,
            feed_frame,
            moved_out_frame,
        }
    }

    /// Returns how many frames were queued.
    fn fan_out(&mut self, record: &Recorded, origin: Option<Origin>) -> usize {
        let change = &record.change;
        let epoch = self.epoch.clone();
        let mut cache = FrameCache {
            record,
            epoch: &epoch,
            by_event: HashMap::new(),
        };
        let mut delivered = 0;
        // Connections already told of this change, so that a connection that
        // follows both the object and the feed gets a delete (or a feed-form
        // update) once.
        let mut told: HashSet<u64> = HashSet::new();

        // Object subscribers first: a client that saved an object it had
        // retrieved sees its reply, then the `retrieve` push, as in the
        // original README; the feed form of the same change follows.
        if let Some(subscribers) = self.objects.get_mut(&change.pk_key) {
            let name = &self.name;
            let forget = |connection: &Connection| {
                connection
                    .memberships()
                    .objects
                    .remove(&(name.clone(), change.pk_key.clone()));
            };
            subscribers.retain(|id, subscriber| {
                let connection = &subscriber.connection;
                if connection.is_closed() {
                    return false;
                }
                // A change that makes the object unreadable ends this subscriber's
                // pushes for it. If it could read the object before, it is told
                // the object is gone from its sight (a delete, with only the id
                // it knew); otherwise nothing is sent.
                if !change.visibility.allows(&connection.identity()) {
                    if let Some(frame) = record.moved_out_for(connection)
                        && told.insert(*id)
                    {
                        delivered += usize::from(connection.push(tagged(frame, connection, origin)));
                    }
                    forget(connection);
                    return false;
                }
                for form in &subscriber.forms {
                    let feed_like = change.kind == ChangeKind::Deleted || *form == PushForm::Feed;
                    if feed_like {
                        if told.insert(*id) {
                            delivered +=
                                usize::from(connection.push(tagged(record.feed_frame.clone(), connection, origin)));
                        }
                    } else {
                        delivered += usize::from(connection.push(tagged(cache.frame(form), connection, origin)));
                    }
                }
                if change.kind == ChangeKind::Deleted {
                    forget(connection);
                    return false;
                }
                true
            });
            if subscribers.is_empty() {
                self.objects.remove(&change.pk_key);
            }
        }

        let mut gone: Vec<u64> = Vec::new();
        for (id, connection) in &self.feed {
            if connection.is_closed() {
                gone.push(*id);
                continue;
            }
            // Feed ids are unique; only object subscribers may have been told already.
            if !told.is_empty() && told.contains(id) {
                continue;
            }
            let frame = if change.visibility.allows(&connection.identity()) {
                Some(record.feed_frame.clone())
            } else {
                // Out of its sight now: a delete if it could read it before.
                record.moved_out_for(connection)
            };
            if let Some(frame) = frame {
                delivered += usize::from(connection.push(tagged(frame, connection, origin)));
            }
        }
        for id in gone {
            self.feed.remove(&id);
        }
        delivered
    }

    fn trim(&mut self, history_len: usize, history_age: Duration) {
        while self.history.len() > history_len {
            self.history.pop_front();
        }
        let now = Instant::now();
        while self
            .history
            .front()
            .is_some_and(|oldest| now.saturating_duration_since(oldest.at) > history_age)
        {
            self.history.pop_front();
        }
    }

    /// Whether every change after `seq` is still in history.
    pub(crate) fn can_replay_after(&mut self, seq: u64, history_age: Duration) -> bool {
        // Only age here: count is enforced as changes arrive, so that
        // changes just fetched for a resuming subscriber stay until used.
        self.trim(usize::MAX, history_age);
        if seq > self.seq {
            return false;
        }
        if seq == self.seq {
            return true;
        }
        self.history.front().is_some_and(|oldest| oldest.seq <= seq + 1)
    }

    /// Queues, in order, every recorded change after `seq` that the target
    /// covers and the connection may read.
    ///
    /// Returns how many were queued, and whether an object target has ended
    /// within the replayed range (its last change was a delete, or made it
    /// unreadable), exactly as a live push would have ended it.
    pub(crate) fn replay(
        &self,
        connection: &Connection,
        target: &Target,
        after: u64,
        origin: Option<Origin>,
    ) -> (usize, bool) {
        let epoch: &str = &self.epoch;
        let start = self.history.partition_point(|record| record.seq <= after);
        let mut replayed = 0;
        let mut ended = false;
        for record in self.history.range(start..) {
            let change = &record.change;
            let visible = change.visibility.allows(&connection.identity());
            if let Target::Object { pk, .. } = target {
                if **pk != *change.pk_key {
                    continue;
                }
                ended = change.kind == ChangeKind::Deleted || !visible;
            }
            let frame = match target {
                // As live: out of sight, a delete if it could read it before.
                _ if !visible => match record.moved_out_for(connection) {
                    Some(frame) => frame,
                    None => continue,
                },
                Target::Feed => record.feed_frame.clone(),
                Target::Object { form, .. } => match form {
                    PushForm::Echo(event) if change.kind != ChangeKind::Deleted => {
                        encode_push(event, &record.data, Some((epoch, record.seq)))
                    }
                    _ => record.feed_frame.clone(),
                },
            };
            if !connection.push(tagged(frame, connection, origin)) {
                break;
            }
            replayed += 1;
        }
        (replayed, ended)
    }

    /// Records the subscription in the connection's memberships, unless it
    /// already holds `limit`. Returns whether it is new (so that a caller
    /// that then decides not to attach can [`release`](Self::release) it).
    pub(crate) fn reserve(&self, connection: &Connection, target: &Target, limit: usize) -> Result<bool, LimitReached> {
        let mut memberships = connection.memberships();
        let is_new = match target {
            Target::Feed => !memberships.feeds.contains(&self.name),
            Target::Object { pk, .. } => !memberships.objects.contains(&(self.name.clone(), pk.clone())),
        };
        if !is_new {
            return Ok(false);
        }
        if memberships.subscriptions() >= limit {
            return Err(LimitReached);
        }
        match target {
            Target::Feed => memberships.feeds.insert(self.name.clone()),
            Target::Object { pk, .. } => memberships.objects.insert((self.name.clone(), pk.clone())),
        };
        Ok(true)
    }

    /// Undoes a [`reserve`](Self::reserve) that was not attached.
    pub(crate) fn release(&self, connection: &Connection, target: &Target) {
        let mut memberships = connection.memberships();
        match target {
            Target::Feed => memberships.feeds.remove(&self.name),
            Target::Object { pk, .. } => memberships.objects.remove(&(self.name.clone(), pk.clone())),
        };
    }

    /// Starts delivering to a reserved subscription.
    pub(crate) fn attach(&mut self, connection: &Connection, target: Target) {
        match target {
            Target::Feed => {
                self.feed.insert(connection.id(), connection.clone());
            }
            Target::Object { pk, form } => {
                let subscriber = self
                    .objects
                    .entry(pk)
                    .or_default()
                    .entry(connection.id())
                    .or_insert_with(|| ObjectSubscriber {
                        connection: connection.clone(),
                        forms: Vec::new(),
                    });
                // Forms are few per object per connection; bound them anyway
                // so a client cannot grow this list without limit.
                if !subscriber.forms.contains(&form) && subscriber.forms.len() < MAX_FORMS_PER_OBJECT {
                    subscriber.forms.push(form);
                }
            }
        }
    }

    /// Removes a subscription. For an object, every form is removed.
    pub(crate) fn remove(&mut self, connection: &Connection, target: &Target) -> bool {
        match target {
            Target::Feed => {
                connection.memberships().feeds.remove(&self.name);
                self.feed.remove(&connection.id()).is_some()
            }
            Target::Object { pk, .. } => {
                connection
                    .memberships()
                    .objects
                    .remove(&(self.name.clone(), pk.clone()));
                self.remove_object(connection.id(), pk)
            }
        }
    }

    fn remove_object(&mut self, connection_id: u64, pk: &Arc<str>) -> bool {
        let Some(subscribers) = self.objects.get_mut(pk) else {
            return false;
        };
        let removed = subscribers.remove(&connection_id).is_some();
        if subscribers.is_empty() {
            self.objects.remove(pk);
        }
        removed
    }

    /// Removes what a departing connection held here: its feed subscription
    /// and the listed objects (taken from its memberships, so the cost is
    /// what the connection joined, not the size of the stream).
    pub(crate) fn remove_connection<'a>(&mut self, connection_id: u64, objects: impl Iterator<Item = &'a Arc<str>>) {
        self.feed.remove(&connection_id);
        for pk in objects {
            self.remove_object(connection_id, pk);
        }
    }

    pub(crate) fn subscriber_count(&self) -> usize {
        self.feed.len() + self.objects.values().map(HashMap::len).sum::<usize>()
    }
}

/// A connection already holds as many subscriptions as its hub allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LimitReached;

/// Distinct event strings one connection may use for pushes about one object.
const MAX_FORMS_PER_OBJECT: usize = 8;
