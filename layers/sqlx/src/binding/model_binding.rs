//! A model binding: a declared table exposed as a stream of the event API.

use std::fmt;
use std::sync::Arc;

use channels_binding_core::hub::{Change, ChangeCodec, ChangeKind, Visibility};
use channels_binding_core::protocol::{EventError, EventName};
use channels_binding_core::{Binding, BindingDescription, Event, FieldDescription, FieldKind, Identity, Reply};
use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::RwLock;
use tracing::Instrument as _;

use super::actions;
use super::codec::BindingCodec;
use super::permissions::{CreateHook, WriteAction, WriteRule};
use super::read_scope::ReadScope;
use super::serializer::{AllFields, Serializer};
use crate::error::ConfigError;
use crate::field::FieldType;
use crate::schema::ModelSchema;
use crate::store::{Database, Object, Store, caller};
use crate::write_values::WriteValues;

/// Rows a `list` may return before it answers `payload_too_large`.
pub const MAX_LIST_SIZE: usize = 1000;

/// Every built-in model action.
pub const ACTIONS: [&str; 9] = [
    "retrieve",
    "search",
    "list",
    "create",
    "update",
    "save",
    "delete",
    "subscribe",
    "unsubscribe",
];

/// Decides which rows an identity may read; gates queries, retrieves and every push.
pub type ReadScopeFn = Arc<dyn Fn(&Identity) -> ReadScope + Send + Sync>;

pub(crate) struct Inner {
    pub(crate) stream: Arc<str>,
    pub(crate) schema: Arc<ModelSchema>,
    pub(crate) store: Store,
    pub(crate) detail: Arc<dyn Serializer>,
    /// Renders and filters this stream's changes on every node.
    pub(crate) codec: Arc<dyn ChangeCodec>,
    /// `None`: rows use the detail serializer.
    pub(crate) rows: Option<Box<dyn Serializer>>,
    pub(crate) max_list_size: usize,
    pub(crate) read_scope: Option<ReadScopeFn>,
    pub(crate) write_rule: Option<WriteRule>,
    pub(crate) before_create: Option<CreateHook>,
    /// Whether triggers announce this table's writes (see
    /// [`ModelBindingBuilder::capture_outside_writes`]).
    pub(crate) capture: bool,
    /// Writers hold it exclusively from the write until the change is
    /// published, so sequence order is commit order; readers that subscribe
    /// hold it shared while they read, so no change of this process slips
    /// between their read and their subscription.
    pub(crate) ordering: RwLock<()>,
}

/// A database table exposed as a stream: `retrieve`, `search`, `list`,
/// `create`, `update`, `save`, `delete`, `subscribe`, `unsubscribe`, with
/// automatic subscriptions and pushes (PROTOCOL.md §2–3).
///
/// ```
/// use channels_binding_sqlx::{Field, Fields, ModelBinding, ModelSchema};
///
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await?;
/// sqlx::query("CREATE TABLE auth_user (id INTEGER PRIMARY KEY, username TEXT NOT NULL, email TEXT NOT NULL)")
///     .execute(&pool)
///     .await?;
///
/// let users = ModelBinding::builder("auth.User", pool, ModelSchema::builder("auth_user")
///         .field(Field::integer("id").read().order())
///         .field(Field::text("username").read().write().search().order().required())
///         .field(Field::text("email").read().write().search().required())
///         .build()?)
///     .list_serializer(Fields::new(["id", "username"]))
///     .build()?;
///
/// let router = channels_binding_core::EventRouter::new().binding(users);
/// # let _ = router; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ModelBinding {
    pub(crate) inner: Arc<Inner>,
}

impl ModelBinding {
    /// Starts a binding of `stream` (`app.Model`) on a pool: a
    /// `SqlitePool` (feature `sqlite`), a `PgPool` (feature `postgres`) or a
    /// [`Database`] holding either. The binding answers the same on both
    /// (see the crate documentation for what the databases themselves do
    /// differently).
    ///
    /// ```no_run
    /// # #[cfg(feature = "postgres")]
    /// # async fn postgres(schema: channels_binding_sqlx::ModelSchema) -> Result<(), Box<dyn std::error::Error>> {
    /// use channels_binding_sqlx::ModelBinding;
    ///
    /// let pool = sqlx::PgPool::connect("postgres://app@localhost/app").await?;
    /// let users = ModelBinding::builder("auth.User", pool, schema).build()?;
    /// # let _ = users; Ok(()) }
    /// ```
    pub fn builder(stream: impl Into<String>, pool: impl Into<Database>, schema: ModelSchema) -> ModelBindingBuilder {
        ModelBindingBuilder {
            stream: stream.into(),
            database: pool.into(),
            schema,
            detail: Box::new(AllFields),
            rows: None,
            max_list_size: MAX_LIST_SIZE,
            read_scope: None,
            write_rule: None,
            before_create: None,
            capture: false,
        }
    }

    /// The schema.
    pub fn schema(&self) -> &ModelSchema {
        &self.inner.schema
    }

    /// Installs (or replaces) the statement-level triggers that record this
    /// table's writes in the outbox (see
    /// [`install_capture`](crate::install_capture)), for a binding built with
    /// [`capture_outside_writes`](ModelBindingBuilder::capture_outside_writes);
    /// a [`Relay`](crate::Relay) publishes them.
    /// Idempotent, and safe when several processes start at once.
    ///
    /// ```no_run
    /// # async fn doc(pool: sqlx::PgPool, schema: channels_binding_sqlx::ModelSchema) -> Result<(), Box<dyn std::error::Error>> {
    /// use channels_binding_sqlx::ModelBinding;
    ///
    /// let notes = ModelBinding::builder("notes.Note", pool, schema).capture_outside_writes().build()?;
    /// notes.install_capture().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`CaptureError`](crate::CaptureError) when the database refuses or
    /// cannot be reached.
    #[cfg(feature = "postgres")]
    pub async fn install_capture(&self) -> Result<(), crate::CaptureError> {
        match &self.inner.store {
            crate::store::Store::Postgres(store) => {
                crate::install_capture(store.pool(), &self.inner.stream, &self.inner.schema).await
            }
            #[cfg(feature = "sqlite")]
            crate::store::Store::Sqlite(_) => Ok(()),
        }
    }
}

impl fmt::Debug for ModelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelBinding")
            .field("stream", &self.inner.stream)
            .field("table", &self.inner.schema.table())
            .finish_non_exhaustive()
    }
}

/// Builds a [`ModelBinding`].
#[must_use]
pub struct ModelBindingBuilder {
    stream: String,
    database: Database,
    schema: ModelSchema,
    detail: Box<dyn Serializer>,
    rows: Option<Box<dyn Serializer>>,
    max_list_size: usize,
    read_scope: Option<ReadScopeFn>,
    write_rule: Option<WriteRule>,
    before_create: Option<CreateHook>,
    capture: bool,
}

impl ModelBindingBuilder {
    /// Announces writes made outside the API too (psql, other programs,
    /// bulk updates), and makes the hand-off of every write durable: with
    /// [`ModelBinding::install_capture`], statement-level triggers record
    /// each committed INSERT, UPDATE and DELETE in the outbox table, in the
    /// writer's transaction, and a [`Relay`](crate::Relay) (one per process,
    /// one leading per schema) publishes them to the hub's channel layer
    /// (Redis, PostgreSQL, any [`Broker`](channels_binding_core::hub::Broker)),
    /// exactly once and in outbox order. Subscribers get them exactly as
    /// writes through the API, with the same read-scope filtering.
    ///
    /// On a hub with a channel layer, writes through the API are then
    /// recorded by the trigger alone (once), tagged with the request that
    /// made them so its sender still gets the reply first; a write
    /// acknowledged to its client is in the outbox, so it reaches
    /// subscribers even if this process dies right after. Run a
    /// [`Relay`](crate::Relay) on such a hub, or nothing is published. On a
    /// hub without a channel layer (one process), the binding announces its
    /// own writes as usual, and nothing relays the outbox: do not capture
    /// there.
    ///
    /// PostgreSQL only: [`build`](Self::build) refuses it on SQLite, where
    /// no durable hand-off exists (a change is queued in the process's
    /// memory until the broker takes it, and lost if the process dies
    /// first; its subscribers are not told).
    pub fn capture_outside_writes(mut self) -> Self {
        self.capture = true;
        self
    }

    /// The serializer of single objects: `retrieve`, `create`, `update` and
    /// object pushes. Default: every readable field.
    pub fn detail_serializer(mut self, serializer: impl Serializer) -> Self {
        self.detail = Box::new(serializer);
        self
    }

    /// The serializer of `search` and `list` rows. Default: the detail serializer.
    pub fn list_serializer(mut self, serializer: impl Serializer) -> Self {
        self.rows = Some(Box::new(serializer));
        self
    }

    /// Rows a `list` may return (default [`MAX_LIST_SIZE`]).
    pub fn max_list_size(mut self, max: usize) -> Self {
        self.max_list_size = max;
        self
    }

    /// Which rows an identity may read. One declaration serves everywhere:
    /// its filters are added to the SQL of `search` and `list` (so pages and
    /// counts hold only readable rows), and evaluated on the object for
    /// `retrieve` and for every push, per subscriber and without a query. A
    /// change that takes an object out of a subscriber's scope ends that
    /// subscriber's pushes for it, with a last `<stream>.deleted#<pk>`
    /// (`{"id": pk}`): it could read the object, so that tells it nothing new.
    ///
    /// ```
    /// use channels_binding_sqlx::{Filter, ReadScope};
    /// use channels_binding_core::Identity;
    ///
    /// // Staff read everything, users their own rows, anonymous nothing.
    /// fn own_rows(identity: &Identity) -> ReadScope {
    ///     match identity.id().and_then(|id| id.parse::<i64>().ok()) {
    ///         _ if identity.is_staff() => ReadScope::All,
    ///         Some(id) => ReadScope::Where(vec![Filter::eq("owner_id", id)]),
    ///         None => ReadScope::Nothing,
    ///     }
    /// }
    /// ```
    pub fn read_scope(mut self, scope: impl Fn(&Identity) -> ReadScope + Send + Sync + 'static) -> Self {
        self.read_scope = Some(Arc::new(scope));
        self
    }

    /// Who may create, update and delete. For updates and deletes the rule
    /// sees the object before the write; an object outside the caller's
    /// read scope is `not_found` before the rule is asked.
    pub fn write_permission(
        mut self,
        rule: impl Fn(WriteAction, &Identity, Option<&Object>) -> Result<(), EventError> + Send + Sync + 'static,
    ) -> Self {
        self.write_rule = Some(Arc::new(rule));
        self
    }

    /// Fills server-owned fields before each insert (after the client's
    /// input passed validation), such as `owner_id` from the caller.
    pub fn before_create(
        mut self,
        hook: impl Fn(&Identity, &mut WriteValues) -> Result<(), EventError> + Send + Sync + 'static,
    ) -> Self {
        self.before_create = Some(Arc::new(hook));
        self
    }

    /// Checks the declaration and builds the binding.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the stream name is not `app.Model`-like or a
    /// serializer names a field that is not readable.
    pub fn build(self) -> Result<ModelBinding, ConfigError> {
        let valid_stream = EventName::from_parts(&self.stream, "retrieve", None).is_ok();
        if !valid_stream {
            return Err(ConfigError::InvalidStream(self.stream));
        }
        let rows = self.rows;
        for serializer in std::iter::once(&*self.detail).chain(rows.as_deref()) {
            for field in serializer.fields().unwrap_or_default() {
                if !self.schema.field(field).is_some_and(|f| f.is_readable()) {
                    return Err(ConfigError::UnreadableSerializerField(field.clone()));
                }
            }
        }
        if self.capture && self.database.dialect() != crate::Dialect::Postgres {
            return Err(ConfigError::CaptureNeedsPostgres);
        }
        let schema = Arc::new(self.schema);
        let stream: Arc<str> = Arc::from(self.stream);
        let detail: Arc<dyn Serializer> = Arc::from(self.detail);
        let codec: Arc<dyn ChangeCodec> = Arc::new(BindingCodec {
            stream: stream.clone(),
            detail: detail.clone(),
            read_scope: self.read_scope.clone(),
        });
        Ok(ModelBinding {
            inner: Arc::new(Inner {
                stream,
                store: Store::new(self.database, schema.clone()),
                schema,
                detail,
                codec,
                rows,
                max_list_size: self.max_list_size,
                read_scope: self.read_scope,
                write_rule: self.write_rule,
                before_create: self.before_create,
                capture: self.capture,
                ordering: RwLock::new(()),
            }),
        })
    }
}

impl Inner {
    /// A row as its detail view; a serializer failure is `internal`.
    pub(crate) fn detail(&self, row: Object) -> Result<Value, EventError> {
        self.detail
            .serialize(row)
            .map_err(|message| self.serializer_failed(&message))
    }

    /// Rows as list views.
    pub(crate) fn rows(&self, rows: Vec<Object>) -> Result<Vec<Value>, EventError> {
        let serializer = self.rows.as_deref().unwrap_or(&*self.detail);
        rows.into_iter()
            .map(|row| {
                serializer
                    .serialize(row)
                    .map_err(|message| self.serializer_failed(&message))
            })
            .collect()
    }

    fn serializer_failed(&self, message: &str) -> EventError {
        tracing::error!(stream = %self.stream, error = message, "serializer failed");
        EventError::internal()
    }

    /// Whether the binding checks anything before updates and deletes (and
    /// so must read the object first).
    pub(crate) fn guards_writes(&self) -> bool {
        self.write_rule.is_some() || self.read_scope.is_some()
    }

    /// Asks the write rule, when there is one.
    pub(crate) fn permit(
        &self,
        action: WriteAction,
        identity: &Identity,
        object: Option<&Object>,
    ) -> Result<(), EventError> {
        match &self.write_rule {
            Some(rule) => rule(action, identity, object),
            None => Ok(()),
        }
    }

    /// Reads the object an update or delete targets and checks the caller
    /// may see and change it. Held under the write lock by the caller, so
    /// the object checked is the object written. Returns the object as it
    /// was, when it was read (always with a read scope: the change needs it
    /// to tell who could read the object before).
    pub(crate) async fn guard(
        &self,
        action: WriteAction,
        identity: &Identity,
        pk: &crate::value::SqlValue,
    ) -> Result<Option<Object>, EventError> {
        if !self.guards_writes() {
            return Ok(None);
        }
        let current = self
            .store
            .fetch_one(pk)
            .await
            .map_err(|e| super::request::store_error(&self.stream, e))?
            .filter(|row| self.may_read(identity, row))
            .ok_or_else(|| EventError::not_found("no such object"))?;
        self.permit(action, identity, Some(&current))?;
        Ok(Some(current))
    }

    /// The rows `identity` may read.
    pub(crate) fn scope(&self, identity: &Identity) -> ReadScope {
        self.read_scope.as_ref().map_or(ReadScope::All, |scope| scope(identity))
    }

    /// Whether `identity` may read `row`.
    pub(crate) fn may_read(&self, identity: &Identity, row: &Object) -> bool {
        self.scope(identity).matches(row)
    }

    /// How a write of `event` is announced: `None` when the binding
    /// publishes it; `Some(origin)` when a capture trigger records it in
    /// the outbox for the relay (the hub has a channel layer), with the
    /// origin (JSON) to tag the write with, if the event came from a
    /// connection.
    pub(crate) fn trigger_announces(&self, event: &Event) -> Option<Option<String>> {
        let hub = event.hub();
        let captured = self.capture && hub.broker().is_some();
        if !captured {
            return None;
        }
        Some(hub.origin().map(|origin| {
            serde_json::json!({"node": hub.node(), "connection": origin.connection, "request": origin.request})
                .to_string()
        }))
    }

    /// Announces a committed write, unless a capture trigger did.
    pub(crate) fn announce(&self, event: &Event, announced_by_trigger: bool, change: impl FnOnce() -> Change) {
        if !announced_by_trigger {
            event.hub().publish(change());
        }
    }

    /// The change to publish for a committed write.
    ///
    /// Never fails: the write is committed, so subscribers must hear of it.
    /// Should the detail serializer fail (a bug, logged), the change carries
    /// the readable fields as stored rather than leaving a silent gap.
    ///
    /// `previous`, for an update, is the row before it: subscribers who
    /// could read that and may not read the new row are told the object is
    /// gone (see [`Change::was_visible_to`]).
    pub(crate) fn change(&self, kind: ChangeKind, pk: Value, row: Object, previous: Option<Object>) -> Change {
        // The row itself travels as the change's facts, so other nodes apply
        // the same read scope to it.
        let (visibility, previous) = match &self.read_scope {
            None => (Visibility::Everyone, None),
            Some(_) => (
                Visibility::scoped(Value::Object(row.clone()), self.codec.clone()),
                previous.map(|before| Visibility::scoped(Value::Object(before), self.codec.clone())),
            ),
        };
        let object = match self.detail.serialize(row.clone()) {
            Ok(object) => object,
            Err(message) => {
                tracing::error!(stream = %self.stream, error = message, "serializer failed; pushing stored fields");
                Value::Object(row)
            }
        };
        let change = Change::new(self.stream.clone(), kind, pk, object).visible_to(visibility);
        match previous {
            Some(previous) if kind == ChangeKind::Updated => change.was_visible_to(previous),
            _ => change,
        }
    }
}

impl Binding for ModelBinding {
    fn stream(&self) -> &str {
        &self.inner.stream
    }

    fn actions(&self) -> Vec<String> {
        ACTIONS.iter().map(|a| (*a).to_owned()).collect()
    }

    fn change_codec(&self) -> Option<Arc<dyn ChangeCodec>> {
        Some(self.inner.codec.clone())
    }

    fn describe(&self) -> Option<BindingDescription> {
        let fields = self
            .inner
            .schema
            .fields()
            .iter()
            .map(|field| {
                let kind = match field.field_type() {
                    FieldType::Integer => FieldKind::Integer,
                    FieldType::Float => FieldKind::Number,
                    FieldType::Text => FieldKind::String,
                    FieldType::Boolean => FieldKind::Boolean,
                    FieldType::Timestamp => FieldKind::Timestamp,
                };
                let mut description = FieldDescription::new(field.name(), kind);
                description.readable = field.is_readable();
                description.writable = field.is_writable();
                description.required = field.is_required();
                description.nullable = field.is_nullable();
                description.searchable = field.is_searchable();
                description.filterable = field.is_filterable();
                description.orderable = field.is_orderable();
                description.max_length = field.max_length_limit();
                description
            })
            // A field clients can neither read nor write is not part of the API.
            .filter(|field| field.readable || field.writable)
            .collect();
        Some(BindingDescription::new(
            self.inner.stream.to_string(),
            self.inner.schema.primary_key().name(),
            self.actions(),
            fields,
        ))
    }

    fn call(&self, event: Event) -> BoxFuture<'static, Reply> {
        let inner = self.inner.clone();
        if event.hub().broker().is_some() {
            // Changes of this stream made on other nodes (or outside the
            // API) are rendered and filtered here with this binding's rules.
            event.hub().register_codec(&inner.stream, &inner.codec);
        }
        let stream = inner.stream.clone();
        // The action runs on its own task, so that a caller that goes away
        // (a reset connection drops this future) neither cuts a query short,
        // which would cost the pool its connection (and an in-memory
        // database its data), nor leaves a committed write unannounced: once
        // a statement has its connection, the write, its sequence number and
        // its pushes complete either way. Work still waiting for a
        // connection when the caller leaves is abandoned (see
        // `store::caller`), so a reset leaves no backlog behind. The reply
        // still comes back through this future, before the pushes to the
        // same connection (they wait for it in its queue).
        let (waiting, action) = caller::on_behalf_of_caller(run(inner, event));
        let action = action.instrument(tracing::Span::current());
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Polled by some other executor: nothing to detach onto.
            return Box::pin(async move {
                let _waiting = waiting;
                action.await
            });
        };
        let action = runtime.spawn(action);
        Box::pin(async move {
            // Dropped with this future: the caller is gone.
            let _waiting = waiting;
            action.await.unwrap_or_else(|failure| {
                // Only a panic ends the task early (nobody aborts it).
                tracing::error!(stream = %stream, error = %failure, "model action failed");
                Reply::error(EventError::internal())
            })
        })
    }
}

/// Dispatches one event to its action.
async fn run(inner: Arc<Inner>, event: Event) -> Reply {
    let outcome = match event.name().action() {
        "retrieve" => actions::retrieve::apply(&inner, event).await,
        "search" => actions::search::apply(&inner, event).await,
        "list" => actions::list::apply(&inner, event).await,
        "create" => actions::create::apply(&inner, event).await,
        "update" => actions::update::apply(&inner, event).await,
        "save" => actions::save::apply(&inner, event).await,
        "delete" => actions::delete::apply(&inner, event).await,
        "subscribe" => actions::subscribe::subscribe(&inner, event).await,
        "unsubscribe" => actions::subscribe::unsubscribe(&inner, event),
        _ => Err(EventError::unknown_event(event.name().route())),
    };
    outcome.unwrap_or_else(Reply::error)
}
