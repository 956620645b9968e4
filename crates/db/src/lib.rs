//! The persistence adapter: every repository port of the domain, on MySQL /
//! MariaDB (production) and on embedded SQLite (the default), through
//! diesel-async.
//!
//! One [`Db`] type serves both backends. Each query is written once and
//! stamped for each backend's connection type by the `db_run!` and
//! `db_transaction!` macros (Vaultwarden's idea): diesel checks it against
//! both at compile time.
//! What is dialect-specific lives in [`dialect`] (the id of the row just
//! inserted, the spelling of an upsert), [`search`] (full-text search),
//! [`conn`] (connection set-up) and [`migrate`] (migration locking).

pub mod backup;
mod conn;
mod dialect;
mod error;
mod in_use;
mod link;
mod migrate;
mod models;
mod pools;
mod repair;
mod repos;
mod retry;
pub mod schema;
mod search;
mod spool;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;
mod transaction;
mod tx;

pub use conn::{Backend, Db, DbOptions, DbUrl, DbUrlError};
pub use migrate::{MigrateError, StartupLock, latest_migration};
pub use repair::Repaired;
pub use spool::FileSpool;

// The two macros below only pick the backend: a body is compiled once per
// connection type (the two differ, so one closure cannot serve both); what
// happens around it is plain code in `link.rs`, `transaction.rs` and
// `retry.rs`.

/// Runs `$body` (a `Result<_, RepoError>` using `$conn`) on a connection of
/// whichever backend `$db` uses, through [`link::Link::run`].
macro_rules! db_run {
    ($db:expr, |$conn:ident| $body:expr) => {
        match &$db.backend {
            $crate::conn::Pools::Sqlite { pool, .. } => $db.link.run(pool, async |$conn| $body).await,
            $crate::conn::Pools::Mysql(pool) => $db.link.run(pool, async |$conn| $body).await,
        }
    };
}

/// Runs `$body` (a `Result<_, TxError>` using `$conn`) in a transaction on
/// whichever backend `$db` uses, through [`Db::sqlite_transaction`] or
/// [`Db::mysql_transaction`].
macro_rules! db_transaction {
    ($db:expr, |$conn:ident| $body:expr) => {
        match &$db.backend {
            $crate::conn::Pools::Sqlite { pool, write_lock } => {
                $db.sqlite_transaction(pool, write_lock, async |$conn| $body).await
            }
            $crate::conn::Pools::Mysql(pool) => $db.mysql_transaction(pool, async |$conn| $body).await,
        }
    };
}

pub(crate) use db_run;
pub(crate) use db_transaction;
