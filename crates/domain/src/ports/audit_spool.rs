//! The bitácora's local spool (object-safe: held as `Arc<dyn AuditSpool>`).

use super::*;

/// The bitácora's local spool: records the store could not take are kept in
/// order on local disk and written to the store when it is back.
///
/// Object-safe (the services hold it as `Arc<dyn AuditSpool>`); the adapter
/// does its file work off the async workers.
pub trait AuditSpool: Send + Sync + 'static {
    /// Appends records after every other, durably (fsync'd) before `Ok`.
    /// MUST refuse with [`SpoolError::Full`], appending nothing, when the
    /// records would take the spool over its cap.
    fn append<'a>(&'a self, records: &'a [SpooledAudit]) -> BoxFuture<'a, Result<(), SpoolError>>;
    /// The oldest records, in order: every record put back by `settle`, then
    /// up to `limit` more. An entry that cannot be read back is moved aside
    /// (quarantined) and skipped, never returned and never fatal.
    fn peek(&self, limit: usize) -> BoxFuture<'_, Result<SpoolRead, SpoolError>>;
    /// Removes the records `peek` returned with `cursor` and puts `keep` in
    /// their place, ahead of the rest, in one durable step.
    fn settle(&self, cursor: SpoolCursor, keep: Vec<SpooledAudit>) -> BoxFuture<'_, Result<(), SpoolError>>;
    /// Moves a record the store refused for good aside, with the reason.
    fn reject<'a>(&'a self, record: &'a SpooledAudit, reason: &'a str) -> BoxFuture<'a, Result<(), SpoolError>>;
    /// What the spool holds now (no I/O).
    fn stats(&self) -> SpoolStats;
}

/// What [`AuditSpool::peek`] found, and where it stopped (the adapter's
/// bookkeeping; only handed back to `settle`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolRead {
    pub records: Vec<SpooledAudit>,
    pub cursor: SpoolCursor,
}

/// A position in a spool, as [`AuditSpool::peek`] left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpoolCursor {
    /// Records put back by `settle` that the read covered.
    pub head: usize,
    /// The adapter's position after the last record read.
    pub position: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpoolStats {
    pub records: u64,
    pub bytes: u64,
    /// Entries moved aside since start (unreadable, or refused by the store).
    pub quarantined: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpoolError {
    #[error("the bitácora spool is full ({0} bytes)")]
    Full(u64),
    #[error("the bitácora spool cannot be written: {0}")]
    Io(String),
}
