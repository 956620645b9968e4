//! Embedded migrations, run at start-up on either backend.

use diesel::Connection;
use diesel_async::AsyncMysqlConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::Db;
use crate::conn::{IdRow, Pools};

const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const MYSQL: EmbeddedMigrations = embed_migrations!("../../migrations/mysql");

/// Name of the MySQL advisory lock that serialises servers preparing the database.
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

/// Held while a server prepares the database (migrations, then seeding),
/// so that servers starting together do it one after the other; the later
/// ones find it done. MySQL: a `GET_LOCK` advisory lock on a connection of
/// its own; SQLite: an exclusive lock on the file `<database>.lock`.
pub struct StartupLock {
    held: Held,
}

enum Held {
    Nothing,
    File(#[allow(dead_code)] std::fs::File),
    Mysql(AsyncMysqlConnection),
}

impl StartupLock {
    /// Lets the next server go on.
    pub async fn release(self) {
        if let Held::Mysql(mut conn) = self.held {
            use diesel_async::RunQueryDsl;
            // The lock dies with the session anyway; release it for the next server now.
            let _ = diesel::sql_query(format!("DO RELEASE_LOCK('{MIGRATION_LOCK}')")).execute(&mut conn).await;
        }
        // A file lock is released when the file is closed.
    }
}

impl Db {
    /// Waits (up to two minutes) for the start-up lock; see [`StartupLock`].
    pub async fn startup_lock(&self) -> Result<StartupLock, MigrateError> {
        let held = match &self.url {
            crate::conn::DbUrl::Sqlite(crate::conn::SqliteTarget::Memory) => Held::Nothing,
            crate::conn::DbUrl::Sqlite(crate::conn::SqliteTarget::File(path)) => {
                let mut name = path.as_os_str().to_owned();
                name.push(".lock");
                let path = std::path::PathBuf::from(name);
                let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir)?;
                    }
                    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
                    file.lock()?;
                    Ok(file)
                })
                .await
                .map_err(|e| MigrateError::Failed(e.to_string()))?
                .map_err(|e| MigrateError::Connect(format!("cannot lock the start-up lock file: {e}")))?;
                Held::File(file)
            }
            crate::conn::DbUrl::Mysql(url) => {
                use diesel_async::{AsyncConnection, RunQueryDsl};
                let mut conn =
                    AsyncMysqlConnection::establish(url).await.map_err(|e| MigrateError::Connect(e.to_string()))?;
                let got: IdRow = diesel::sql_query(format!(
                    "SELECT CAST(COALESCE(GET_LOCK('{MIGRATION_LOCK}', {LOCK_WAIT_SECS}), 0) AS SIGNED) AS id"
                ))
                .get_result(&mut conn)
                .await
                .map_err(|e| MigrateError::Failed(e.to_string()))?;
                if got.id != 1 {
                    return Err(MigrateError::LockTimeout);
                }
                Held::Mysql(conn)
            }
        };
        Ok(StartupLock { held })
    }

    /// Applies every pending migration and returns the versions applied,
    /// under the start-up lock.
    pub async fn migrate(&self) -> Result<Vec<String>, MigrateError> {
        let lock = self.startup_lock().await?;
        let applied = self.migrate_holding(&lock).await;
        lock.release().await;
        applied
    }

    /// [`Db::migrate`] for a caller that holds the start-up lock.
    ///
    /// Runs on tokio's blocking pool, so it is safe on any runtime flavour.
    pub async fn migrate_holding(&self, _lock: &StartupLock) -> Result<Vec<String>, MigrateError> {
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
    let mut conn = AsyncConnectionWrapper::<AsyncMysqlConnection>::establish(url)
        .map_err(|e| MigrateError::Connect(e.to_string()))?;
    conn.run_pending_migrations(MYSQL)
        .map(|applied| applied.iter().map(|v| v.to_string()).collect())
        .map_err(|e| MigrateError::Failed(e.to_string()))
}
