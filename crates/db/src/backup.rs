//! The store's part of `helpdesk-server backup` and `restore`: a consistent
//! copy taken while servers keep writing, its check, and loading it back.
//!
//! SQLite: `VACUUM INTO` (one read transaction: the copy is the database as
//! of one moment, never a torn file), then `PRAGMA integrity_check` on the
//! copy. MySQL/MariaDB: `mariadb-dump --single-transaction` (one consistent
//! snapshot, InnoDB) and the `mariadb` client to load it.
//!
//! Who is using an SQLite file is known by a lock (`in_use.rs`): every
//! process that opens it ([`Db::connect`]) holds a shared lock on
//! `<database>.in-use`, and a restore takes it exclusively or refuses
//! ([`InUse`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, QueryableByName, SqliteConnection};

use crate::Db;
use crate::conn::{DbUrl, Pools, SqliteTarget};
pub use crate::in_use::{ExclusiveUse, InUse, in_use_lock_path, take_exclusive_use};

/// The tables a backup's manifest counts, and a restore checks.
pub const COUNTED: [&str; 6] =
    ["ticket", "detalle_ticket", "adjunto_ticket", "bitacora_log", "usuario", "consumidor_api"];

/// What a copy of the store holds: the last migration applied and the rows
/// of [`COUNTED`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFacts {
    pub schema_version: String,
    pub counts: BTreeMap<String, i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("an in-memory SQLite database has nothing to back up or restore")]
    Memory,
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("{what}")]
    Sql {
        what: String,
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the SQLite copy {path} failed its integrity check: {found}")]
    Integrity { path: PathBuf, found: String },
    #[error("{tool} is not on the PATH: install Debian's mariadb-client (it brings mariadb-dump and mariadb)")]
    NoTool { tool: &'static str },
    #[error("{tool} failed ({status}): {stderr}")]
    Tool { tool: &'static str, status: String, stderr: String },
    #[error("malformed MySQL URL: {0}")]
    Url(String),
}

fn sql(what: impl Into<String>) -> impl FnOnce(diesel::result::Error) -> BackupError {
    let what = what.into();
    move |e| BackupError::Sql { what, cause: Box::new(e) }
}

fn conn_err(what: impl Into<String>) -> impl FnOnce(diesel::ConnectionError) -> BackupError {
    let what = what.into();
    move |e| BackupError::Sql { what, cause: Box::new(e) }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

const VERSION_SQL: &str = "SELECT MAX(version) AS version FROM __diesel_schema_migrations";

fn count_sql(table: &str) -> String {
    format!("SELECT COUNT(*) AS n FROM {table}")
}

/// Checks an SQLite file (`PRAGMA integrity_check`) and reads its facts.
/// It is opened as usual (a WAL database cannot be read otherwise), so run it
/// on a copy that nothing else uses: checksums are taken before or after.
pub fn check_sqlite_file(path: &Path) -> Result<StoreFacts, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Io {
            what: format!("no SQLite file at {}", path.display()),
            cause: std::io::ErrorKind::NotFound.into(),
        });
    }
    use diesel::RunQueryDsl;
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())
        .map_err(conn_err(format!("cannot open {}", path.display())))?;
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text)]
        integrity_check: String,
    }
    let lines: Vec<Line> =
        diesel::sql_query("PRAGMA integrity_check").load(&mut conn).map_err(sql("PRAGMA integrity_check"))?;
    let found: Vec<String> = lines.into_iter().map(|l| l.integrity_check).collect();
    if found != ["ok"] {
        return Err(BackupError::Integrity { path: path.into(), found: found.join("; ") });
    }
    let version: Version = diesel::sql_query(VERSION_SQL).get_result(&mut conn).map_err(sql("the schema version"))?;
    let mut counts = BTreeMap::new();
    for table in COUNTED {
        let c: Count = diesel::sql_query(count_sql(table)).get_result(&mut conn).map_err(sql(count_sql(table)))?;
        counts.insert(table.to_string(), c.n);
    }
    Ok(StoreFacts { schema_version: version.version, counts })
}

/// The parts of a MySQL URL the command-line clients take.
struct MysqlTarget {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    database: String,
}

impl MysqlTarget {
    fn parse(url: &str) -> Result<Self, BackupError> {
        let u = url::Url::parse(url).map_err(|e| BackupError::Url(e.to_string()))?;
        let decode =
            |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
        Ok(MysqlTarget {
            host: u.host_str().unwrap_or("127.0.0.1").to_string(),
            port: u.port().unwrap_or(3306),
            user: decode(u.username()).unwrap_or_default(),
            password: u.password().and_then(decode),
            database: decode(u.path().trim_start_matches('/')).unwrap_or_default(),
        })
    }

    /// `tool` with the connection's options; the password goes in the
    /// environment, never on the command line (where `ps` shows it).
    fn command(&self, tool: &'static str) -> Result<Command, BackupError> {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Err(BackupError::NoTool { tool });
        }
        let mut c = Command::new(tool);
        c.arg(format!("--host={}", self.host)).arg(format!("--port={}", self.port)).arg("--protocol=TCP");
        if !self.user.is_empty() {
            c.arg(format!("--user={}", self.user));
        }
        match &self.password {
            Some(p) => c.env("MYSQL_PWD", p),
            None => c.env_remove("MYSQL_PWD"),
        };
        Ok(c)
    }
}

fn run_tool(tool: &'static str, mut c: Command) -> Result<(), BackupError> {
    let out = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|cause| BackupError::Io { what: format!("cannot run {tool}"), cause })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BackupError::Tool {
            tool,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl Db {
    /// The SQLite file this store is on, if it is one.
    pub fn sqlite_file(&self) -> Option<&Path> {
        self.url.sqlite_file()
    }

    /// A consistent copy of the store written to `dest` while others keep
    /// writing: SQLite's `VACUUM INTO` (a new file, compacted) or a
    /// `mariadb-dump --single-transaction` (SQL text). The facts are read
    /// from the copy on SQLite, and on MySQL from a consistent snapshot taken
    /// just before the dump's (the dump may hold rows committed in between).
    pub async fn snapshot_into(&self, dest: &Path) -> Result<StoreFacts, BackupError> {
        match &self.backend {
            Pools::Sqlite { pool, .. } => {
                if self.sqlite_file().is_none() {
                    return Err(BackupError::Memory);
                }
                let (conn, _in_use) = pool.get().await.map_err(|e| BackupError::Sql {
                    what: "no connection to the database".into(),
                    cause: e.to_string().into(),
                })?;
                let target = dest.to_string_lossy().into_owned();
                let mut conn = conn;
                conn.spawn_blocking(move |c| {
                    use diesel::RunQueryDsl;
                    diesel::sql_query("VACUUM INTO ?").bind::<Text, _>(target).execute(c).map(|_| ())
                })
                .await
                .map_err(sql("VACUUM INTO"))?;
                let dest = dest.to_path_buf();
                tokio::task::spawn_blocking(move || check_sqlite_file(&dest)).await.map_err(|e| BackupError::Sql {
                    what: "the copy's check stopped".into(),
                    cause: e.to_string().into(),
                })?
            }
            Pools::Mysql(_) => {
                let DbUrl::Mysql(urls) = &self.url else { unreachable!("backend and URL agree") };
                let target = MysqlTarget::parse(&urls[0])?;
                let facts = mysql_facts(&urls[0]).await?;
                let mut c = target.command("mariadb-dump")?;
                c.args(["--single-transaction", "--quick", "--routines", "--triggers", "--hex-blob"])
                    .arg(format!("--result-file={}", dest.display()))
                    .arg(&target.database);
                tokio::task::spawn_blocking(move || run_tool("mariadb-dump", c)).await.map_err(|e| {
                    BackupError::Sql { what: "mariadb-dump stopped".into(), cause: e.to_string().into() }
                })??;
                Ok(facts)
            }
        }
    }

    /// The store's facts as they are now (after a restore).
    pub async fn facts(&self) -> Result<StoreFacts, BackupError> {
        match &self.url {
            DbUrl::Sqlite(SqliteTarget::File(p)) => {
                let p = p.clone();
                tokio::task::spawn_blocking(move || check_sqlite_file(&p))
                    .await
                    .map_err(|e| BackupError::Sql { what: "the check stopped".into(), cause: e.to_string().into() })?
            }
            DbUrl::Sqlite(SqliteTarget::Memory) => Err(BackupError::Memory),
            DbUrl::Mysql(urls) => mysql_facts(&urls[0]).await,
        }
    }
}

async fn mysql_facts(url: &str) -> Result<StoreFacts, BackupError> {
    use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl, SimpleAsyncConnection};
    let mut conn = AsyncMysqlConnection::establish(url).await.map_err(conn_err("cannot connect to MySQL"))?;
    conn.batch_execute("START TRANSACTION WITH CONSISTENT SNAPSHOT").await.map_err(sql("a consistent snapshot"))?;
    let version: Version =
        diesel::sql_query(VERSION_SQL).get_result(&mut conn).await.map_err(sql("the schema version"))?;
    let mut counts = BTreeMap::new();
    for table in COUNTED {
        let c: Count =
            diesel::sql_query(count_sql(table)).get_result(&mut conn).await.map_err(sql(count_sql(table)))?;
        counts.insert(table.to_string(), c.n);
    }
    conn.batch_execute("COMMIT").await.map_err(sql("COMMIT"))?;
    Ok(StoreFacts { schema_version: version.version, counts })
}

/// The connections other than ours on `url`'s database: a restore refuses
/// to load over a database that a server is using.
pub async fn mysql_users(url: &str) -> Result<i64, BackupError> {
    use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
    let target = MysqlTarget::parse(url)?;
    let mut conn = AsyncMysqlConnection::establish(url).await.map_err(conn_err("cannot connect to MySQL"))?;
    let c: Count = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
    )
    .bind::<Text, _>(target.database)
    .get_result(&mut conn)
    .await
    .map_err(sql("the connections to the database"))?;
    Ok(c.n)
}

/// The tables of `url`'s database (a restore loads only into an empty one).
pub async fn mysql_tables(url: &str) -> Result<i64, BackupError> {
    use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
    let target = MysqlTarget::parse(url)?;
    let mut conn = AsyncMysqlConnection::establish(url).await.map_err(conn_err("cannot connect to MySQL"))?;
    let c: Count = diesel::sql_query("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?")
        .bind::<Text, _>(target.database)
        .get_result(&mut conn)
        .await
        .map_err(sql("the tables of the database"))?;
    Ok(c.n)
}

/// Loads a dump written by [`Db::snapshot_into`] into `url`'s database,
/// which should be empty (the dump drops and makes its tables).
pub fn mysql_load(url: &str, dump: &Path) -> Result<(), BackupError> {
    let target = MysqlTarget::parse(url)?;
    let input =
        File::open(dump).map_err(|cause| BackupError::Io { what: format!("cannot read {}", dump.display()), cause })?;
    let mut c = target.command("mariadb")?;
    c.arg(&target.database).stdin(input);
    run_tool("mariadb", c)
}
