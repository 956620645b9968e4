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
mod migrate;
mod models;
mod repos;
pub mod schema;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;

pub use conn::{Backend, Db, DbOptions, DbUrl, DbUrlError};
pub use migrate::MigrateError;

/// Runs `$body` with `$conn` bound to a pooled connection of whichever
/// backend `$db` uses. The body is compiled once per backend.
macro_rules! db_run {
    ($db:expr, |$conn:ident| $body:expr) => {{
        match &$db.backend {
            $crate::conn::Pools::Sqlite { pool, .. } => {
                let mut pooled = pool.get().await.map_err($crate::error::pool_error)?;
                let $conn = &mut *pooled;
                $body
            }
            $crate::conn::Pools::Mysql(pool) => {
                let mut pooled = pool.get().await.map_err($crate::error::pool_error)?;
                let $conn = &mut *pooled;
                $body
            }
        }
    }};
}

/// Like `db_run!`, inside one transaction. On SQLite, write transactions are
/// serialised in-process first: SQLite allows one writer, and a deferred
/// transaction that reads before writing would otherwise fail with BUSY
/// instead of waiting.
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
                let _writer = write_lock.lock().await;
                let mut pooled = pool.get().await.map_err($crate::error::pool_error)?;
                (*pooled)
                    .transaction::<_, $crate::error::TxError, _>(async |$sconn| $sbody)
                    .await
                    .map_err(helpdesk_domain::RepoError::from)
            }
            $crate::conn::Pools::Mysql(pool) => {
                let mut pooled = pool.get().await.map_err($crate::error::pool_error)?;
                // InnoDB may pick this transaction as a deadlock victim; the
                // whole transaction is then safe to run again.
                let mut attempt = 0;
                loop {
                    let result = (*pooled).transaction::<_, $crate::error::TxError, _>(async |$conn| $body).await;
                    match result {
                        Err(e) if attempt < 8 && e.is_deadlock() => {
                            attempt += 1;
                            // A little jitter so the retried transactions do not collide again.
                            let jitter = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map(|d| d.subsec_nanos() % 5_000_000)
                                .unwrap_or(0);
                            tokio::time::sleep(std::time::Duration::from_nanos(u64::from(jitter) * attempt)).await;
                        }
                        other => break other.map_err(helpdesk_domain::RepoError::from),
                    }
                }
            }
        }
    }};
}

pub(crate) use db_run;
pub(crate) use db_transaction;
