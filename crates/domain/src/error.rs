//! Errors shared by every repository port, and [`Report`], the one way an
//! error is written to the log: with its whole chain of causes, once.

use std::fmt;
use std::sync::Arc;

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
    /// Anything else: a bug, a broken schema, stored data that breaks a
    /// rule. Never shown to clients; the driver's or library's error, when
    /// there is one, is its source.
    #[error("unexpected store error: {what}")]
    Unexpected {
        what: String,
        #[source]
        cause: Option<Cause>,
    },
}

/// An underlying error kept as a source (shared, so that errors holding one
/// stay `Clone`).
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

impl RepoError {
    /// A driver's or library's error the adapter has no better name for.
    pub fn unexpected<E: std::error::Error + Send + Sync + 'static>(e: E) -> Self {
        RepoError::Unexpected { what: std::any::type_name::<E>().into(), cause: Some(Arc::new(e)) }
    }

    /// Stored data that breaks a rule the code relies on (an unknown state
    /// name, a row that vanished): no underlying error, `what` says it all.
    pub fn corrupt(what: impl Into<String>) -> Self {
        RepoError::Unexpected { what: what.into(), cause: None }
    }

    /// The store could not be reached or did not answer in time.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, RepoError::Unavailable(_))
    }
}

/// An error and its sources, `outer: inner: innermost`, for the log. Every
/// error type here says only its own part in its message and keeps what
/// caused it as its `source` (or is `transparent`), so the chain prints each
/// part once.
pub struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_prints_each_cause_once() {
        let io = std::io::Error::other("disk full");
        let e = RepoError::unexpected(io);
        assert_eq!(Report(&e).to_string(), "unexpected store error: std::io::error::Error: disk full");
        assert_eq!(
            Report(&RepoError::corrupt("unknown estado \"x\"")).to_string(),
            "unexpected store error: unknown estado \"x\""
        );
        assert_eq!(Report(&RepoError::NotFound).to_string(), "not found");
    }
}
