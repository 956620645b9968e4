//! Embedded migrations, run at start-up on either backend.

use diesel::Connection;
use diesel_async::AsyncMysqlConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::Db;
use crate::conn::{IdRow, Pools};

const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const MYSQL: EmbeddedMigrations = embed_migrations!("../../migrations/mysql");

/// Name of the MySQL advisory lock that serialises concurrent migrators.
const MIGRATION_LOCK: &str = "helpdesk_migrations";
const LOCK_WAIT_SECS: u32 = 120;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("another server held the migration lock for {LOCK_WAIT_SECS} s")]
    LockTimeout,
    #[error("migration failed: {0}")]
    Failed(String),
}

impl Db {
    /// Applies every pending migration and returns the versions applied.
    ///
    /// Runs on tokio's blocking pool, so it is safe on any runtime flavour.
    /// On MySQL, a `GET_LOCK` advisory lock makes servers that start together
    /// migrate one after the other; the later ones find nothing to do.
    pub async fn migrate(&self) -> Result<Vec<String>, MigrateError> {
        match &self.backend {
            Pools::Sqlite { pool, write_lock } => {
                let _writer = write_lock.lock().await;
                let mut conn = pool.get().await.map_err(|e| MigrateError::Connect(e.to_string()))?;
                conn.spawn_blocking(|c| {
                    let applied = c
                        .run_pending_migrations(SQLITE)
                        .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))?;
                    Ok(applied.iter().map(|v| v.to_string()).collect::<Vec<_>>())
                })
                .await
                .map_err(|e| MigrateError::Failed(e.to_string()))
            }
            Pools::Mysql(_) => {
                let crate::conn::DbUrl::Mysql(url) = &self.url else { unreachable!("backend and URL agree") };
                let url = url.clone();
                tokio::task::spawn_blocking(move || migrate_mysql(&url))
                    .await
                    .map_err(|e| MigrateError::Failed(e.to_string()))?
            }
        }
    }
}

fn migrate_mysql(url: &str) -> Result<Vec<String>, MigrateError> {
    use diesel::RunQueryDsl;
    let mut conn = AsyncConnectionWrapper::<AsyncMysqlConnection>::establish(url)
        .map_err(|e| MigrateError::Connect(e.to_string()))?;
    let got: IdRow = diesel::sql_query(format!(
        "SELECT CAST(COALESCE(GET_LOCK('{MIGRATION_LOCK}', {LOCK_WAIT_SECS}), 0) AS SIGNED) AS id"
    ))
    .get_result(&mut conn)
    .map_err(|e| MigrateError::Failed(e.to_string()))?;
    if got.id != 1 {
        return Err(MigrateError::LockTimeout);
    }
    let result = conn
        .run_pending_migrations(MYSQL)
        .map(|applied| applied.iter().map(|v| v.to_string()).collect())
        .map_err(|e| MigrateError::Failed(e.to_string()));
    // The lock dies with the session anyway; release it for the next server now.
    let _ = diesel::sql_query(format!("DO RELEASE_LOCK('{MIGRATION_LOCK}')")).execute(&mut conn);
    result
}
