//! The persistence adapter: every repository port of the domain, on MySQL /
//! MariaDB (production) and on embedded SQLite (the default), through
//! diesel-async.
//!
//! One [`Db`] type serves both backends. Each query is written once and
//! stamped for each backend's connection type by the `db_run!` macro
//! (Vaultwarden's idea): diesel checks it against both at compile time.
//! What is dialect-specific (the id of the row just inserted, connection
//! set-up, migration locking) lives in [`conn`].

mod conn;
mod error;
mod link;
mod migrate;
mod models;
mod repos;
mod retry;
pub mod schema;
mod spool;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;

pub use conn::{Backend, Db, DbOptions, DbUrl, DbUrlError};
pub use migrate::{MigrateError, StartupLock};
pub use spool::FileSpool;

/// Runs `$body` with `$conn` bound to a pooled connection of whichever
/// backend `$db` uses. The body is compiled once per backend.
///
/// The checkout is bounded by the acquire timeout and the body by the
/// statement timeout (see [`link`]); `?` in the body returns from the
/// enclosing function, whose error type is `RepoError`.
macro_rules! db_run {
    ($db:expr, |$conn:ident| $body:expr) => {{
        match &$db.backend {
            $crate::conn::Pools::Sqlite { pool, .. } => {
                $crate::on_lease!($db, pool, $db.link.statement, |$conn| Ok::<_, helpdesk_domain::RepoError>($body))?
            }
            $crate::conn::Pools::Mysql(pool) => {
                $crate::on_lease!($db, pool, $db.link.statement, |$conn| Ok::<_, helpdesk_domain::RepoError>($body))?
            }
        }
    }};
}

/// Checks a connection out of `$pool` and evaluates `$call` (a
/// `Result<_, RepoError>`) with it under `$deadline`; the lease is settled
/// by [`link::Link::settle`].
macro_rules! on_lease {
    ($db:expr, $pool:expr, $deadline:expr, |$conn:ident| $call:expr) => {{
        let link: &$crate::link::Link = &$db.link;
        let deadline: std::time::Duration = $deadline;
        match link.checkout($pool).await {
            Err(e) => Err(e),
            Ok(mut lease) => {
                let outcome = {
                    let $conn = &mut *lease;
                    tokio::time::timeout(deadline, async { $call }).await
                };
                link.settle(lease, outcome, deadline)
            }
        }
    }};
}

/// Like `db_run!`, inside one transaction. On SQLite, write transactions are
/// serialised in-process first: SQLite allows one writer, and a deferred
/// transaction that reads before writing would otherwise fail with BUSY
/// instead of waiting. On MySQL a transaction InnoDB picked as a deadlock
/// victim is run again (see [`retry::Deadlocks`]). The deadline covers the whole.
///
/// The second form takes one body per backend, for the rare statement one
/// of them cannot express (a multi-row insert, on SQLite).
macro_rules! db_transaction {
    ($db:expr, |$conn:ident| $body:expr) => {
        db_transaction!($db, sqlite: |$conn| $body, mysql: |$conn| $body)
    };
    ($db:expr, sqlite: |$sconn:ident| $sbody:expr, mysql: |$conn:ident| $body:expr) => {{
        use diesel_async::AsyncConnection as _;
        match &$db.backend {
            $crate::conn::Pools::Sqlite { pool, write_lock } => {
                match tokio::time::timeout($db.link.acquire, write_lock.lock()).await {
                    Err(_) => Err(helpdesk_domain::RepoError::Unavailable("the SQLite writer is busy".into())),
                    Ok(_writer) => $crate::on_lease!($db, pool, $db.link.statement, |c| {
                        c.transaction::<_, $crate::error::TxError, _>(async |$sconn| $sbody)
                            .await
                            .map_err(helpdesk_domain::RepoError::from)
                    }),
                }
            }
            $crate::conn::Pools::Mysql(pool) => $crate::on_lease!($db, pool, $db.link.statement, |c| {
                let mut retry = $crate::retry::Deadlocks::default();
                loop {
                    let attempt = c.transaction::<_, $crate::error::TxError, _>(async |$conn| $body).await;
                    if let Some(done) = retry.settle(attempt).await {
                        break done;
                    }
                }
            }),
        }
    }};
}

pub(crate) use db_run;
pub(crate) use db_transaction;
pub(crate) use on_lease;
