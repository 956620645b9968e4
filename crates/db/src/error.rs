//! Mapping of diesel and pool errors to the domain's `RepoError`.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use helpdesk_domain::RepoError;

/// Maps a diesel error. Unique and foreign-key violations carry the
/// database's message, which names the constraint.
pub(crate) fn map(e: DieselError) -> RepoError {
    match e {
        DieselError::NotFound => RepoError::NotFound,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            RepoError::Duplicate(info.message().to_string())
        }
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
            RepoError::MissingReference(info.message().to_string())
        }
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
            RepoError::Unavailable(info.message().to_string())
        }
        DieselError::DatabaseError(_, info) if is_link_failure(info.message()) || refuses_writes(info.message()) => {
            RepoError::Unavailable(info.message().to_string())
        }
        other => RepoError::unexpected(other),
    }
}

/// Whether `map` makes the error `RepoError::Duplicate` (a unique key
/// refused the write), for code that answers it otherwise inside a
/// transaction, where the diesel error must stay whole (deadlocks).
pub(crate) fn is_unique_violation(e: &DieselError) -> bool {
    matches!(e, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
}

/// Whether `map` makes the error `RepoError::MissingReference`.
pub(crate) fn is_missing_reference(e: &DieselError) -> bool {
    matches!(e, DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _))
}

/// Messages of failures of the link rather than of the statement. diesel-async
/// reports mysql_async's socket and protocol errors, and the server's own
/// "going away" errors, as `DatabaseErrorKind::Unknown` with only a message.
const LINK_FAILURES: &[&str] = &[
    "Input/output error",
    "Connection to the server is closed",
    "Packet out of order",
    "Unexpected packet",
    "TLS error",
    "Server shutdown in progress",
    "Connection was killed",
    "server has gone away",
    "Lost connection",
    "Broken pipe",
    "Connection reset",
    "Connection refused",
    "WSREP has not yet prepared node",
];

/// Messages of a database that answers but takes no writes for now: full
/// (SQLite's "database or disk is full", MariaDB's "The table 'x' is full"
/// and its disk errors) or read-only. Not the client's fault, and no bug:
/// the same request may succeed later (503).
const WRITES_REFUSED: &[&str] =
    &["is full", "No space left on device", "Disk full", "--read-only option", "readonly database"];

fn refuses_writes(message: &str) -> bool {
    WRITES_REFUSED.iter().any(|m| message.contains(m))
}

fn is_link_failure(message: &str) -> bool {
    LINK_FAILURES.iter().any(|m| message.contains(m))
}

/// The error type inside a transaction: diesel's own (so diesel can roll
/// back) or a domain error raised by the body, which also rolls back.
#[derive(Debug)]
pub(crate) enum TxError {
    Diesel(DieselError),
    Repo(RepoError),
}

impl TxError {
    /// MySQL's "Deadlock found when trying to get lock" (error 1213), which
    /// diesel reports without a kind of its own.
    pub(crate) fn is_deadlock(&self) -> bool {
        match self {
            TxError::Diesel(DieselError::DatabaseError(_, info)) => info.message().contains("Deadlock found"),
            _ => false,
        }
    }
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        TxError::Diesel(e)
    }
}

impl From<RepoError> for TxError {
    fn from(e: RepoError) -> Self {
        TxError::Repo(e)
    }
}

impl From<TxError> for RepoError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Diesel(e) => map(e),
            TxError::Repo(e) => e,
        }
    }
}

/// `?`-friendly conversion for query results outside transactions.
pub(crate) trait OrRepo<T> {
    fn or_repo(self) -> Result<T, RepoError>;
}

impl<T> OrRepo<T> for Result<T, DieselError> {
    fn or_repo(self) -> Result<T, RepoError> {
        self.map_err(map)
    }
}
