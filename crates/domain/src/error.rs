//! Errors shared by every repository port.

/// What a repository adapter may report. Adapters map their driver's errors at
/// the boundary (a unique violation is MySQL error 1062 and SQLite's
/// `SQLITE_CONSTRAINT_UNIQUE`; both become [`RepoError::Duplicate`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RepoError {
    /// A unique constraint refused the write. The string names the key
    /// (for example `producto.alias_producto`) when the adapter knows it.
    #[error("duplicate value for {0}")]
    Duplicate(String),
    /// The row the operation addresses does not exist.
    #[error("not found")]
    NotFound,
    /// A foreign key names a row that does not exist.
    #[error("reference to a missing {0}")]
    MissingReference(String),
    /// The store cannot be reached (connection refused, pool timeout).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The row changed since it was read (a conditional update found
    /// other values): nothing was written; read again and decide again.
    #[error("changed meanwhile")]
    Conflict,
    /// Concurrent writes kept conflicting (deadlocks, a cluster's
    /// certification conflicts) after every retry: nothing was written, and
    /// the same request may succeed a moment later.
    #[error("store busy: {0}")]
    Busy(String),
    /// Anything else: a bug or a broken schema. Never shown to clients.
    #[error("unexpected store error: {0}")]
    Unexpected(String),
}

impl RepoError {
    pub fn unexpected(e: impl std::fmt::Display) -> Self {
        RepoError::Unexpected(e.to_string())
    }

    /// The store could not be reached or did not answer in time.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, RepoError::Unavailable(_))
    }
}
