//! Fresh, migrated, throw-away stores for tests (feature `testing`).
//!
//! SQLite: a new file under the system's temporary directory.
//! MySQL: a new database `hdt_<random>` on the server named by
//! `HELPDESK_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306`), so
//! tests never share a schema. `.ci/run` drops leftovers before each run.

use diesel_async::{AsyncConnection, AsyncMysqlConnection, SimpleAsyncConnection};
use rand::Rng;

use crate::conn::SqliteTarget;
use crate::{Db, DbOptions, DbUrl};

pub const MYSQL_URL_VAR: &str = "HELPDESK_TEST_MYSQL_URL";
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306";

fn suffix() -> String {
    format!("{:016x}", rand::thread_rng().r#gen::<u64>())
}

/// A migrated SQLite store in a new temporary file.
pub async fn fresh_sqlite() -> Db {
    let path = std::env::temp_dir().join("helpdesk-tests").join(format!("{}.db", suffix()));
    let db = Db::connect(&DbUrl::Sqlite(SqliteTarget::File(path)), &DbOptions::default()).expect("SQLite pool");
    db.migrate().await.expect("SQLite migrations");
    db
}

/// The URL of a new, empty MySQL database. Panics with a clear message when
/// the server is not there: these tests are `#[ignore]`d by default and run
/// by `.ci/run`, which starts MariaDB first.
pub async fn fresh_mysql_url() -> String {
    let server = std::env::var(MYSQL_URL_VAR).unwrap_or_else(|_| DEFAULT_MYSQL_URL.to_string());
    let server = server.trim_end_matches('/').to_string();
    let name = format!("hdt_{}", suffix());
    let mut admin = AsyncMysqlConnection::establish(&format!("{server}/mysql")).await.unwrap_or_else(|e| {
        panic!("MySQL tests need a server at {server} (set {MYSQL_URL_VAR}; .ci/run starts MariaDB): {e}")
    });
    admin
        .batch_execute(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
        .await
        .expect("CREATE DATABASE");
    format!("{server}/{name}")
}

/// A migrated MySQL store in a new database.
pub async fn fresh_mysql() -> Db {
    let url = fresh_mysql_url().await;
    let db = Db::connect(&DbUrl::parse(&url).expect("URL"), &DbOptions::default()).expect("MySQL pool");
    db.migrate().await.expect("MySQL migrations");
    db
}

/// The URL of a new SQLite file (not yet created) under the temporary directory.
pub fn fresh_sqlite_url() -> String {
    let path = std::env::temp_dir().join("helpdesk-tests").join(format!("{}.db", suffix()));
    format!("sqlite://{}", path.display())
}
