//! Which rows an identity may read: one declaration that is both SQL (for
//! `search` and `list`) and a rule on objects (for `retrieve` and pushes).

use crate::filter::Filter;
use crate::store::Object;

/// The rows an identity may read.
///
/// ```
/// use channels_binding_sqlx::{Filter, ReadScope};
/// use serde_json::json;
///
/// let own = ReadScope::Where(vec![Filter::eq("owner_id", 7i64)]);
/// assert!(own.matches(json!({"owner_id": 7}).as_object().unwrap()));
/// assert!(!own.matches(json!({"owner_id": 8}).as_object().unwrap()));
/// assert!(!ReadScope::Nothing.matches(json!({}).as_object().unwrap()));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum ReadScope {
    /// Every row.
    All,
    /// No row.
    Nothing,
    /// Rows satisfying every filter (added to the SQL of `search` and
    /// `list`, evaluated on objects for `retrieve` and pushes).
    Where(Vec<Filter>),
}

impl ReadScope {
    /// Whether a row is inside the scope.
    #[must_use]
    pub fn matches(&self, row: &Object) -> bool {
        match self {
            ReadScope::All => true,
            ReadScope::Nothing => false,
            ReadScope::Where(filters) => filters.iter().all(|filter| filter.matches(row)),
        }
    }
}
