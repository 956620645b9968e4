//! Connection pools for both backends, and how their connections are set up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use deadpool::managed::{Manager, Metrics, Pool, RecycleResult};
use diesel::sqlite::SqliteConnection;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::FutureExt;

use crate::link::Link;
use crate::pools::RuntimePools;

pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// A MySQL connection idle longer than this is checked with a query before
/// reuse (the server's idle timeout closes such connections); one used more
/// recently only gets diesel-async's free checks, unless a link failure was
/// seen since it was last handed out. Checking every checkout cost a round
/// trip per repository call: a `SELECT 1` before every statement.
const VERIFY_IDLE: Duration = Duration::from_secs(30);

/// diesel-async's pool manager, verifying only connections that sat idle,
/// and those handed out before the latest link failure (see [`Link`]): after
/// a database restart every pooled socket is dead, and each is found so by
/// one query instead of by a failed request.
///
/// With several hosts (a cluster's nodes), a new connection goes to the
/// first host that accepts one, in order. While connections go to a later
/// host, each is replaced after [`FALLBACK_LIFETIME`], so that the first
/// host takes the traffic back within that time once it is up again; and
/// when the host changes, connections made before the change are replaced.
pub(crate) struct Recycler<C: 'static> {
    hosts: Vec<(AsyncDieselConnectionManager<C>, AsyncDieselConnectionManager<C>)>,
    verify_after: Duration,
    link: Arc<Link>,
    /// The host new connections last went to, and when that changed.
    current: std::sync::Mutex<(usize, std::time::Instant)>,
}

/// How long a connection to a host other than the first is kept.
const FALLBACK_LIFETIME: Duration = Duration::from_secs(5);
/// How long connecting to one host may take before the next is tried.
const CONNECT_WITHIN: Duration = Duration::from_secs(2);

impl<C: AsyncConnection + 'static> Recycler<C> {
    /// `config` builds each manager's configuration (it holds closures).
    fn new(urls: &[String], config: &impl Fn() -> ManagerConfig<C>, verify_after: Duration, link: Arc<Link>) -> Self {
        let hosts = urls
            .iter()
            .map(|url| {
                let mut fast = config();
                fast.recycling_method = RecyclingMethod::Fast;
                (
                    AsyncDieselConnectionManager::new_with_config(url, config()),
                    AsyncDieselConnectionManager::new_with_config(url, fast),
                )
            })
            .collect();
        Recycler { hosts, verify_after, link, current: std::sync::Mutex::new((0, std::time::Instant::now())) }
    }
}

impl<C> Manager for Recycler<C>
where
    C: Send + 'static,
    AsyncDieselConnectionManager<C>: Manager<Type = C, Error = PoolError>,
{
    type Type = C;
    type Error = PoolError;

    async fn create(&self) -> Result<C, PoolError> {
        let mut last = None;
        let several = self.hosts.len() > 1;
        for (i, (_, fast)) in self.hosts.iter().enumerate() {
            let attempt = if several {
                match tokio::time::timeout(CONNECT_WITHIN, fast.create()).await {
                    Ok(result) => result,
                    Err(_) => Err(PoolError::ConnectionError(diesel::ConnectionError::BadConnection(format!(
                        "host {} did not answer within {} ms",
                        i + 1,
                        CONNECT_WITHIN.as_millis()
                    )))),
                }
            } else {
                fast.create().await
            };
            match attempt {
                Ok(conn) => {
                    let mut current = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if current.0 != i {
                        tracing::warn!(from = current.0 + 1, to = i + 1, "database host changed");
                        *current = (i, std::time::Instant::now());
                    }
                    return Ok(conn);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one host"))
    }

    async fn recycle(&self, conn: &mut C, metrics: &Metrics) -> RecycleResult<PoolError> {
        if self.hosts.len() > 1 {
            let (host, since) = *self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let stale = metrics.created < since || (host != 0 && metrics.created.elapsed() > FALLBACK_LIFETIME);
            if stale {
                return Err(deadpool::managed::RecycleError::message("made for another host"));
            }
        }
        let (verified, fast) = &self.hosts[0];
        let handed_out = metrics.recycled.unwrap_or(metrics.created);
        if metrics.last_used() > self.verify_after || self.link.failed_since(handed_out) {
            verified.recycle(conn, metrics).await
        } else {
            fast.recycle(conn, metrics).await
        }
    }
}

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mysql,
}

/// A parsed database URL: `sqlite://<path>` (relative paths are relative to
/// the working directory), `sqlite::memory:`, or
/// `mysql://user:pass@host:port[,host:port...]/db`: several hosts (the nodes
/// of a cluster) are tried in order; [`DbUrl::Mysql`] holds one URL per host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    Sqlite(SqliteTarget),
    Mysql(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteTarget {
    File(PathBuf),
    Memory,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DbUrlError {
    #[error("unsupported database URL scheme in {0:?}: use sqlite://<path> or mysql://user:pass@host:port/db")]
    Scheme(String),
    #[error("malformed MySQL URL {0:?}: {1}")]
    Mysql(String, String),
    #[error("empty SQLite path in {0:?}")]
    EmptyPath(String),
}

impl DbUrl {
    pub fn parse(s: &str) -> Result<Self, DbUrlError> {
        let s = s.trim();
        if s == "sqlite::memory:" || s == "sqlite://:memory:" {
            return Ok(DbUrl::Sqlite(SqliteTarget::Memory));
        }
        if let Some(path) = s.strip_prefix("sqlite://").or_else(|| s.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(DbUrlError::EmptyPath(s.into()));
            }
            return Ok(DbUrl::Sqlite(SqliteTarget::File(PathBuf::from(path))));
        }
        if s.starts_with("mysql://") || s.starts_with("mariadb://") {
            let url = s.replacen("mariadb://", "mysql://", 1);
            let rest = &url["mysql://".len()..];
            let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
            let (userinfo, hosts) = match authority.rfind('@') {
                Some(at) => (&authority[..=at], &authority[at + 1..]),
                None => ("", authority),
            };
            let mut urls = Vec::new();
            for host in hosts.split(',') {
                let one = format!("mysql://{userinfo}{}{tail}", host.trim());
                let parsed = url::Url::parse(&one).map_err(|e| DbUrlError::Mysql(redact_url(s), e.to_string()))?;
                if parsed.host_str().is_none_or(str::is_empty) {
                    return Err(DbUrlError::Mysql(redact_url(s), "no host".into()));
                }
                if parsed.path().trim_start_matches('/').is_empty() {
                    return Err(DbUrlError::Mysql(redact_url(s), "no database name".into()));
                }
                urls.push(one);
            }
            return Ok(DbUrl::Mysql(urls));
        }
        Err(DbUrlError::Scheme(redact_url(s)))
    }

    /// The SQLite file named, if it is one.
    pub fn sqlite_file(&self) -> Option<&Path> {
        match self {
            DbUrl::Sqlite(SqliteTarget::File(p)) => Some(p),
            _ => None,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            DbUrl::Sqlite(_) => Backend::Sqlite,
            DbUrl::Mysql(_) => Backend::Mysql,
        }
    }
}

/// A URL fit for logs: the password replaced, even when the URL is malformed.
pub fn redact_url(s: &str) -> String {
    let Some(scheme_end) = s.find("://").map(|i| i + 3) else {
        return s.to_string();
    };
    let rest = &s[scheme_end..];
    let Some(at) = rest.rfind('@') else {
        return s.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &s[..scheme_end], &rest[..colon], &rest[at..]),
        None => s.to_string(),
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: usize,
    /// How long a request waits for a free connection, or for a new one to
    /// be established, before the store reports itself unavailable.
    pub acquire_timeout: Duration,
    /// How long one repository call may take once it has its connection
    /// (client-side: the connection is then discarded, since its socket is
    /// in an unknown state).
    pub statement_timeout: Duration,
    /// SQLite only: how long a statement waits for another writer.
    pub sqlite_busy_timeout: Duration,
    /// SQLite only: the most bytes the database file may hold (`PRAGMA
    /// max_page_count`); 0: SQLite's own limit (the disk).
    pub sqlite_max_bytes: u64,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
            sqlite_max_bytes: 0,
        }
    }
}

pub(crate) enum Pools {
    Sqlite { pool: RuntimePools<Recycler<SqliteConn>>, write_lock: tokio::sync::Mutex<()> },
    Mysql(RuntimePools<Recycler<AsyncMysqlConnection>>),
}

/// Most block texts kept prepared ([`Db::keeps_block`]).
const MAX_BLOCK_SHAPES: usize = 32;

/// The store: a pool on one backend, implementing every repository port.
pub struct Db {
    pub(crate) backend: Pools,
    pub(crate) url: DbUrl,
    /// Whether inserts may read their new id with `RETURNING` instead of
    /// asking for the last insert id in another round trip.
    returning: Arc<AtomicBool>,
    /// Whether new tickets may be written as one script (`sql::Script`):
    /// on MySQL and MariaDB, but not on a Galera node. A transaction the
    /// cluster aborts (a conflict with a write set from another node) while
    /// a multi-statement query runs does not always stop the query: the
    /// statements after it ran outside any transaction, committed one by
    /// one (a ticket without its detail, seen in the three-node test), and
    /// its `COMMIT` could answer success for work that was rolled back.
    scripts: Arc<AtomicBool>,
    /// Deadlines and the state of the link to the database.
    pub(crate) link: Arc<Link>,
    /// Statements sent on this pool's connections (see [`Db::statements`]).
    statements: Arc<AtomicU64>,
    /// The blocks' texts kept prepared (see [`Db::keeps_block`]), by hash.
    block_shapes: Arc<std::sync::Mutex<std::collections::HashSet<u64>>>,
    /// An SQLite file's shared `<database>.in-use` lock, held while this
    /// store exists (a restore refuses while anyone holds it); never read.
    #[allow(dead_code)]
    in_use: Option<Arc<std::fs::File>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("backend", &self.backend()).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot create the SQLite directory {0}: {1}")]
    Directory(PathBuf, std::io::Error),
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
    #[error("cannot take the shared lock {}.in-use", .path.display())]
    InUseLock {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
}

/// Builds a deadpool pool with timeouts (a macro: the pool's trait bounds
/// differ per connection type and are not worth spelling out).
macro_rules! build_pool {
    ($manager:expr, $opts:expr, $size:expr) => {
        Pool::builder($manager)
            .max_size($size)
            .wait_timeout(Some($opts.acquire_timeout))
            .create_timeout(Some($opts.acquire_timeout))
            .recycle_timeout(Some($opts.acquire_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| e.to_string())
    };
}

impl Db {
    /// Builds the pool. Connections are opened lazily, so a database that is
    /// down does not stop this; `ping` and the repositories report it.
    /// For SQLite the file's directory is created when missing.
    pub fn connect(url: &DbUrl, opts: &DbOptions) -> Result<Self, ConnectError> {
        // SQLite has `RETURNING` (3.35+, bundled); MySQL's first connection
        // tells whether it is MariaDB.
        let returning = Arc::new(AtomicBool::new(matches!(url, DbUrl::Sqlite(_))));
        let scripts = Arc::new(AtomicBool::new(false));
        let link = Arc::new(Link::new(opts.acquire_timeout, opts.statement_timeout));
        let statements = Arc::new(AtomicU64::new(0));
        let mut in_use = None;
        let backend = match url {
            DbUrl::Sqlite(target) => {
                let (target_str, size) = match target {
                    // One connection: each `:memory:` connection is its own database.
                    SqliteTarget::Memory => (":memory:".to_string(), 1),
                    SqliteTarget::File(path) => {
                        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                            std::fs::create_dir_all(dir).map_err(|e| ConnectError::Directory(dir.into(), e))?;
                        }
                        in_use = Some(Arc::new(
                            crate::in_use::hold_in_use(path)
                                .map_err(|e| ConnectError::InUseLock { path: path.clone(), cause: e })?,
                        ));
                        (path.to_string_lossy().into_owned(), opts.max_connections.max(1))
                    }
                };
                let busy_ms = opts.sqlite_busy_timeout.as_millis();
                // Pages of 4 KiB (SQLite's default, which the migrations keep).
                let cap = match opts.sqlite_max_bytes.div_ceil(4096) {
                    0 => String::new(),
                    pages => format!(" PRAGMA max_page_count = {pages};"),
                };
                let counter = statements.clone();
                let config = move || {
                    let mut config = ManagerConfig::<SqliteConn>::default();
                    let (counter, cap) = (counter.clone(), cap.clone());
                    config.custom_setup = Box::new(move |url: &str| {
                        let (url, counter, cap) = (url.to_string(), counter.clone(), cap.clone());
                        async move {
                            let mut conn = SqliteConn::establish(&url).await?;
                            conn.batch_execute(&format!(
                                "PRAGMA busy_timeout = {busy_ms}; PRAGMA journal_mode = WAL; \
                                 PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;{cap}"
                            ))
                            .await
                            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                            conn.set_instrumentation(count_statements(counter));
                            Ok(conn)
                        }
                        .boxed()
                    });
                    config
                };
                // An in-process file cannot go away under a connection: never
                // spend a query checking it.
                let (link, opts) = (link.clone(), opts.clone());
                let make = move || {
                    let manager =
                        Recycler::new(std::slice::from_ref(&target_str), &config, Duration::MAX, link.clone());
                    build_pool!(manager, opts, size)
                };
                let pool = RuntimePools::new(size, false, make).map_err(ConnectError::Pool)?;
                Pools::Sqlite { pool, write_lock: tokio::sync::Mutex::new(()) }
            }
            DbUrl::Mysql(urls) => {
                let flag = returning.clone();
                let script_flag = scripts.clone();
                let counter = statements.clone();
                let config = move || {
                    let mut config = ManagerConfig::<AsyncMysqlConnection>::default();
                    let (flag, script_flag, counter) = (flag.clone(), script_flag.clone(), counter.clone());
                    config.custom_setup = Box::new(move |url: &str| {
                        let (url, flag, script_flag, counter) =
                            (url.to_string(), flag.clone(), script_flag.clone(), counter.clone());
                        async move {
                            let mut conn = AsyncMysqlConnection::establish(&url).await?;
                            // MariaDB (10.5+) answers `INSERT .. RETURNING`;
                            // MySQL does not.
                            let server: String = diesel::select(version())
                                .get_result(&mut conn)
                                .await
                                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                            flag.store(server.contains("MariaDB"), Ordering::Relaxed);
                            // A Galera node that is joining (or cut off from
                            // its cluster's majority) accepts connections but
                            // refuses queries: not a connection to keep.
                            let mut show = async |sql: &'static str| -> diesel::ConnectionResult<bool> {
                                let rows: Vec<StatusRow> = diesel::sql_query(sql)
                                    .load(&mut conn)
                                    .await
                                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                                Ok(rows.iter().any(|r| r.value.eq_ignore_ascii_case("ON")))
                            };
                            let galera = show("SHOW VARIABLES LIKE 'wsrep_on'").await?;
                            if galera && !show("SHOW STATUS LIKE 'wsrep_ready'").await? {
                                return Err(diesel::ConnectionError::BadConnection(
                                    "this cluster node is not ready (wsrep_ready is OFF)".into(),
                                ));
                            }
                            script_flag.store(!galera, Ordering::Relaxed);
                            conn.set_instrumentation(count_statements(counter));
                            Ok(conn)
                        }
                        .boxed()
                    });
                    config
                };
                let (urls, link, opts) = (urls.clone(), link.clone(), opts.clone());
                let size = opts.max_connections.max(1);
                let make = move || build_pool!(Recycler::new(&urls, &config, VERIFY_IDLE, link.clone()), opts, size);
                Pools::Mysql(RuntimePools::new(size, true, make).map_err(ConnectError::Pool)?)
            }
        };
        Ok(Db { backend, url: url.clone(), returning, scripts, link, statements, block_shapes: Arc::default(), in_use })
    }

    /// How many statements this pool's connections have sent since it was
    /// built (transaction control included, connection set-up not): what a
    /// request costs the database, counted rather than timed.
    pub fn statements(&self) -> u64 {
        AtomicU64::load(&self.statements, Ordering::Relaxed)
    }

    /// Whether inserts read their ids with `RETURNING` (see the field).
    pub(crate) fn returning(&self) -> bool {
        AtomicBool::load(&self.returning, Ordering::Relaxed)
    }

    /// Whether new tickets may be written as one script (see the field).
    pub(crate) fn scripts(&self) -> bool {
        AtomicBool::load(&self.scripts, Ordering::Relaxed)
    }

    /// Whether a block of this text is kept prepared by the connections:
    /// the first [`MAX_BLOCK_SHAPES`] texts are, the rest prepared, run and
    /// closed. Every connection keeps what it prepares until it closes, and
    /// MariaDB counts prepared statements across all connections
    /// (`max_prepared_stmt_count`, 16,382 by default): a bound on the
    /// shapes keeps a server that meets mail of every shape far below it.
    pub(crate) fn keeps_block(&self, text: &str) -> bool {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(text);
        let mut shapes = self.block_shapes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        shapes.contains(&hash) || (shapes.len() < MAX_BLOCK_SHAPES && shapes.insert(hash))
    }

    /// Whether a new ticket alone is written as one prepared MariaDB block
    /// (`sql::Script::block`): MariaDB, not a Galera node.
    #[cfg(feature = "testing")]
    pub fn writes_blocks(&self) -> bool {
        self.returning() && self.scripts()
    }

    /// Makes inserts read their ids the MySQL way, with a query after each
    /// (what MySQL itself needs), so tests can run that path on MariaDB.
    #[cfg(feature = "testing")]
    pub fn without_returning(self) -> Self {
        let Db { backend, url, link, statements, in_use, scripts, block_shapes, .. } = self;
        let returning = Arc::new(AtomicBool::new(false));
        Db { backend, url, returning, scripts, link, statements, block_shapes, in_use }
    }

    pub fn backend(&self) -> Backend {
        match self.backend {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Mysql(_) => Backend::Mysql,
        }
    }

    /// Connections in use and the pool's maximum, for metrics.
    pub fn pool_status(&self) -> (usize, usize) {
        match &self.backend {
            Pools::Sqlite { pool, .. } => pool.status(),
            Pools::Mysql(pools) => pools.status(),
        }
    }
}

/// A row of `SHOW STATUS`.
#[derive(diesel::QueryableByName)]
struct StatusRow {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "Value")]
    value: String,
}

diesel::define_sql_function! {
    /// The server's version (MariaDB's says so).
    fn version() -> diesel::sql_types::Text;
}

/// Counts every statement a connection starts.
/// Counts the statements, and names each at trace level (target
/// `helpdesk_db::sql`, e.g. `RUST_LOG=helpdesk_db::sql=trace`): the SQL
/// only, never the values bound to it (passwords, tokens).
fn count_statements(counter: Arc<AtomicU64>) -> impl diesel::connection::Instrumentation {
    move |event: diesel::connection::InstrumentationEvent<'_>| {
        if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event {
            counter.fetch_add(1, Ordering::Relaxed);
            if tracing::enabled!(target: "helpdesk_db::sql", tracing::Level::TRACE) {
                let text = query.to_string();
                let sql = text.split(" -- binds: ").next().unwrap_or_default();
                tracing::trace!(target: "helpdesk_db::sql", sql, "statement");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn block_shapes_kept_prepared_are_bounded() {
        let db = Db::connect(&DbUrl::parse("sqlite::memory:").unwrap(), &DbOptions::default()).unwrap();
        let text = |i: usize| format!("BEGIN NOT ATOMIC SELECT {i}; END");
        for i in 0..MAX_BLOCK_SHAPES {
            assert!(db.keeps_block(&text(i)), "shape {i}");
        }
        assert!(!db.keeps_block(&text(MAX_BLOCK_SHAPES)), "one shape past the bound");
        assert!(db.keeps_block(&text(0)), "a shape kept stays kept");
        assert!(!db.keeps_block(&text(MAX_BLOCK_SHAPES + 1)));
    }

    #[test]
    fn urls() {
        assert_eq!(DbUrl::parse("sqlite://data/h.db").unwrap(), DbUrl::Sqlite(SqliteTarget::File("data/h.db".into())));
        assert_eq!(DbUrl::parse("sqlite:///abs/h.db").unwrap(), DbUrl::Sqlite(SqliteTarget::File("/abs/h.db".into())));
        assert_eq!(DbUrl::parse("sqlite::memory:").unwrap(), DbUrl::Sqlite(SqliteTarget::Memory));
        assert!(matches!(DbUrl::parse("mysql://root@127.0.0.1:3306/helpdesk").unwrap(), DbUrl::Mysql(_)));
        assert!(matches!(DbUrl::parse("mariadb://root@127.0.0.1/helpdesk").unwrap(), DbUrl::Mysql(_)));
        assert_eq!(
            DbUrl::parse("mysql://u:p@db1:3306, db2:3307,db3/helpdesk?ssl-mode=disabled").unwrap(),
            DbUrl::Mysql(vec![
                "mysql://u:p@db1:3306/helpdesk?ssl-mode=disabled".into(),
                "mysql://u:p@db2:3307/helpdesk?ssl-mode=disabled".into(),
                "mysql://u:p@db3/helpdesk?ssl-mode=disabled".into(),
            ])
        );
        assert!(matches!(DbUrl::parse("mysql://u@db1,/helpdesk"), Err(DbUrlError::Mysql(..))));
        assert!(matches!(DbUrl::parse("postgres://x/y"), Err(DbUrlError::Scheme(_))));
        assert!(matches!(DbUrl::parse("mysql://root@127.0.0.1:3306/"), Err(DbUrlError::Mysql(..))));
        assert!(matches!(DbUrl::parse("mysql://root@:99999/x"), Err(DbUrlError::Mysql(..))));
        assert!(matches!(DbUrl::parse("sqlite://"), Err(DbUrlError::EmptyPath(_))));
        let e = DbUrl::parse("mysql://u:hunter2@[::1/x").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(redact_url("mysql://u:pw@h/db"), "mysql://u:***@h/db");
        assert_eq!(redact_url("mysql://u@h/db"), "mysql://u@h/db");
    }

    #[tokio::test]
    async fn sqlite_inserts_return_their_ids() {
        assert!(crate::testing::fresh_sqlite().await.returning());
    }

    #[tokio::test]
    #[ignore = "needs MariaDB on HELPDESK_TEST_MYSQL_URL; .ci/run runs it"]
    async fn mysql_inserts_return_their_ids_only_on_mariadb() -> Result<(), helpdesk_domain::RepoError> {
        let db = crate::testing::fresh_mysql().await;
        let server: String =
            crate::db_run!(db, |conn| Ok(diesel::select(version()).get_result(conn).await.expect("VERSION()")))?;
        assert_eq!(db.returning(), server.contains("MariaDB"), "{server}");
        assert!(!db.without_returning().returning());
        Ok(())
    }
}
