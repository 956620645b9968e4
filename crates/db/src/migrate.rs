//! Embedded migrations, run at start-up on either backend.

use diesel::Connection;
use diesel_async::AsyncMysqlConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::Db;
use crate::conn::Pools;
use crate::sql::{Statement, Value};

const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const MYSQL: EmbeddedMigrations = embed_migrations!("../../migrations/mysql");

/// The MySQL start-up lock: a row of `bloqueo_arranque` with a lease.
/// Galera replicates rows, not `GET_LOCK` (its locks are per node, and later
/// releases refuse them), so a row taken by a conditional UPDATE is the lock
/// every node of a cluster honours: of two nodes taking it at once, one
/// write fails certification and that server waits.
const LOCK_TABLE: &str = "CREATE TABLE IF NOT EXISTS bloqueo_arranque (\
     nombre VARCHAR(64) NOT NULL PRIMARY KEY, dueno VARCHAR(64) NOT NULL, hasta DATETIME(6) NOT NULL\
     ) ENGINE=InnoDB";
const LOCK_NAME: &str = "arranque";
const LOCK_WAIT_SECS: u32 = 120;
/// How long a holder keeps the lock without renewing it; it renews every
/// third of that while it holds it, so a server that died frees it in time.
const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

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
/// ones find it done. MySQL (and a Galera cluster): a lease on a row of
/// `bloqueo_arranque`, renewed while held; SQLite: an exclusive lock on the
/// file `<database>.lock`.
pub struct StartupLock {
    held: Held,
}

enum Held {
    Nothing,
    File(#[allow(dead_code)] std::fs::File),
    Mysql { conn: AsyncMysqlConnection, owner: String, renewal: tokio::task::JoinHandle<()> },
}

impl StartupLock {
    /// Lets the next server go on.
    pub async fn release(self) {
        if let Held::Mysql { mut conn, owner, renewal } = self.held {
            use diesel_async::RunQueryDsl;
            renewal.abort();
            let release = Statement::new(
                "UPDATE bloqueo_arranque SET dueno = '' WHERE nombre = ? AND dueno = ?",
                vec![Value::Text(LOCK_NAME), Value::Text(&owner)],
            );
            // Should this fail, the lease runs out instead.
            let _ = release.execute(&mut conn).await;
        }
        // A file lock is released when the file is closed.
    }
}

/// The last migration this build knows for `backend` (the versions sort
/// as they apply): a database whose schema is newer came from a newer build.
pub fn latest_migration(backend: crate::Backend) -> String {
    use diesel::migration::MigrationSource;
    let versions: Vec<String> = match backend {
        crate::Backend::Sqlite => MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE)
            .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect()),
        crate::Backend::Mysql => MigrationSource::<diesel::mysql::Mysql>::migrations(&MYSQL)
            .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect()),
    }
    .unwrap_or_default();
    versions.into_iter().max().unwrap_or_default()
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
            crate::conn::DbUrl::Mysql(urls) => {
                let (conn, url) = first_host(urls).await?;
                let (conn, owner) = take_lock_row(conn).await?;
                let renewal = tokio::spawn(renew_lock_row(url, owner.clone()));
                Held::Mysql { conn, owner, renewal }
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
                let (mut conn, _in_use) = pool.get().await.map_err(|e| MigrateError::Connect(e.to_string()))?;
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
                let crate::conn::DbUrl::Mysql(urls) = &self.url else { unreachable!("backend and URL agree") };
                let (_, url) = first_host(urls).await?;
                tokio::task::spawn_blocking(move || migrate_mysql(&url))
                    .await
                    .map_err(|e| MigrateError::Failed(e.to_string()))?
            }
        }
    }
}

/// A connection to the first of the hosts that accepts one, and its URL.
async fn first_host(urls: &[String]) -> Result<(AsyncMysqlConnection, String), MigrateError> {
    use diesel_async::AsyncConnection;
    let mut last = String::new();
    for url in urls {
        match AsyncMysqlConnection::establish(url).await {
            Ok(conn) => return Ok((conn, url.clone())),
            Err(e) => last = e.to_string(),
        }
    }
    Err(MigrateError::Connect(last))
}

/// Waits (up to [`LOCK_WAIT_SECS`]) until the lock row is free or its lease
/// ran out, and takes it.
async fn take_lock_row(mut conn: AsyncMysqlConnection) -> Result<(AsyncMysqlConnection, String), MigrateError> {
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    let failed = |e: diesel::result::Error| MigrateError::Failed(e.to_string());
    let epoch = chrono::DateTime::UNIX_EPOCH.naive_utc();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(u64::from(LOCK_WAIT_SECS));
    // The table and its row, made by whichever server comes first; on a
    // cluster, servers doing it at once on other nodes see a conflict: again.
    loop {
        let made = async {
            conn.batch_execute(LOCK_TABLE).await?;
            Statement::new(
                "INSERT IGNORE INTO bloqueo_arranque (nombre, dueno, hasta) VALUES (?, '', ?)",
                vec![Value::Text(LOCK_NAME), Value::Timestamp(epoch)],
            )
            .execute(&mut conn)
            .await
        }
        .await;
        match made {
            Ok(_) => break,
            Err(e) if e.to_string().contains("Deadlock") && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(failed(e)),
        }
    }
    let owner = format!("{:016x}", rand::random::<u64>());
    loop {
        let now = chrono::Utc::now().naive_utc();
        let lease_end = now + chrono::Duration::from_std(LEASE).expect("a short lease");
        let take = Statement::new(
            "UPDATE bloqueo_arranque SET dueno = ?, hasta = ? WHERE nombre = ? AND (dueno = '' OR hasta < ?)",
            vec![Value::Text(&owner), Value::Timestamp(lease_end), Value::Text(LOCK_NAME), Value::Timestamp(now)],
        );
        // A certification conflict (another node took it at the same time)
        // is an error here: that node has it.
        if let Ok(1) = take.execute(&mut conn).await {
            return Ok((conn, owner));
        }
        if std::time::Instant::now() > deadline {
            return Err(MigrateError::LockTimeout);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Extends the lease every third of it, on a connection of its own.
async fn renew_lock_row(url: String, owner: String) {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    loop {
        tokio::time::sleep(LEASE / 3).await;
        let Ok(mut conn) = AsyncMysqlConnection::establish(&url).await else { continue };
        let lease_end = chrono::Utc::now().naive_utc() + chrono::Duration::from_std(LEASE).expect("a short lease");
        let renew = Statement::new(
            "UPDATE bloqueo_arranque SET hasta = ? WHERE nombre = ? AND dueno = ?",
            vec![Value::Timestamp(lease_end), Value::Text(LOCK_NAME), Value::Text(&owner)],
        );
        let _ = renew.execute(&mut conn).await;
    }
}

fn migrate_mysql(url: &str) -> Result<Vec<String>, MigrateError> {
    let mut conn = AsyncConnectionWrapper::<AsyncMysqlConnection>::establish(url)
        .map_err(|e| MigrateError::Connect(e.to_string()))?;
    conn.run_pending_migrations(MYSQL)
        .map(|applied| applied.iter().map(|v| v.to_string()).collect())
        .map_err(|e| MigrateError::Failed(e.to_string()))
}
