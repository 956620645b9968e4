//! Transactions, one helper per backend: on SQLite the one writer is taken
//! first; on MySQL a deadlock victim is run again ([`Deadlocks`]). Either
//! runs on a leased connection under the statement timeout ([`Link::run`]).
//!
//! [`Link::run`]: crate::link::Link::run

use diesel_async::{AsyncMysqlConnection, SimpleAsyncConnection};
use helpdesk_domain::RepoError;
use tokio::sync::{Mutex, MutexGuard};

use crate::Db;
use crate::conn::{Recycler, SqliteConn};
use crate::error::TxError;
use crate::pools::RuntimePools;
use crate::retry::Deadlocks;
use crate::sql::{Finished, KeptIds, Script};
use crate::tx::TxBody;

impl Db {
    /// Runs `body` in a transaction on SQLite, holding the write lock.
    /// Write transactions are serialised in-process first (SQLite allows one
    /// writer), and each begins `IMMEDIATE`, taking SQLite's own write lock
    /// at once: a deferred transaction that read before its first write
    /// failed with "database is locked" when a write outside these
    /// transactions (an autocommit statement) landed in between, since its
    /// snapshot could no longer become a writer.
    pub(crate) async fn sqlite_transaction<T, F>(
        &self,
        pool: &RuntimePools<Recycler<SqliteConn>>,
        write_lock: &Mutex<()>,
        body: F,
    ) -> Result<T, RepoError>
    where
        T: Send,
        F: for<'c> AsyncFn(&'c mut SqliteConn) -> Result<T, TxError> + for<'c> TxBody<'c, SqliteConn, T> + Send,
    {
        let _writer = self.write_lock(write_lock).await?;
        self.link.run(pool, async |conn| conn.immediate_transaction(body).await.map_err(RepoError::from)).await
    }

    /// Runs `body` in a transaction on MySQL, again when InnoDB (or Galera)
    /// rolled it back as a deadlock victim ([`Deadlocks`]). Each attempt
    /// leases its own connection: a victim whose `ROLLBACK` failed too (Galera
    /// can refuse it after a certification failure) leaves its connection's
    /// transaction manager broken, and diesel-async refuses any further
    /// transaction on it ("The transaction manager is broken"); the pool
    /// drops such a connection when it is next checked out.
    pub(crate) async fn mysql_transaction<T, F>(
        &self,
        pool: &RuntimePools<Recycler<AsyncMysqlConnection>>,
        body: F,
    ) -> Result<T, RepoError>
    where
        T: Send,
        F: for<'c> AsyncFn(&'c mut AsyncMysqlConnection) -> Result<T, TxError>
            + for<'c> TxBody<'c, AsyncMysqlConnection, T>
            + Sync,
    {
        let mut retry = Deadlocks::default();
        loop {
            let attempt = self.link.run(pool, async |conn| Deadlocks::attempt(conn, &body).await).await?;
            if let Some(done) = retry.settle(attempt).await {
                return done;
            }
        }
    }

    /// Runs a [`Script`] (its own transaction, in one round trip) and reads
    /// the ids it kept (a block answers them itself), again when InnoDB (or
    /// Galera) rolled it back as a deadlock victim, like
    /// [`Db::mysql_transaction`]. A script that fails
    /// stops at the failing statement, inside its transaction: it is rolled
    /// back before the connection goes back to the pool, or the connection
    /// is dropped (the server then rolls it back).
    ///
    /// [`Script`]: crate::sql::Script
    pub(crate) async fn mysql_script(
        &self,
        pool: &RuntimePools<Recycler<AsyncMysqlConnection>>,
        script: Finished<'_>,
    ) -> Result<KeptIds, RepoError> {
        let mut retry = Deadlocks::default();
        loop {
            let attempt = self
                .link
                .run(pool, async |conn| match run_script(conn, &script).await {
                    Err(e) if e.is_deadlock() => Ok(Err(e)),
                    other => other.map(Ok).map_err(RepoError::from),
                })
                .await?;
            if let Some(done) = retry.settle(attempt).await {
                return done;
            }
        }
    }

    /// SQLite's one writer, waited for within the acquire timeout.
    async fn write_lock<'a>(&self, lock: &'a Mutex<()>) -> Result<MutexGuard<'a, ()>, RepoError> {
        tokio::time::timeout(self.link.acquire, lock.lock())
            .await
            .map_err(|_| RepoError::Unavailable("the SQLite writer is busy".into()))
    }
}

/// One attempt of [`Db::mysql_script`].
async fn run_script(conn: &mut AsyncMysqlConnection, script: &Finished<'_>) -> Result<KeptIds, TxError> {
    use diesel_async::RunQueryDsl;
    let ran = match script {
        Finished::Text(text) => conn.batch_execute(text).await.map(|()| None),
        Finished::Block(block) => block.clone().get_result::<KeptIds>(conn).await.map(Some),
    };
    match ran {
        Ok(Some(kept)) => Ok(kept),
        Ok(None) => Ok(Script::kept_ids().get_result(conn).await?),
        Err(e) => match conn.batch_execute("ROLLBACK").await {
            Ok(()) => Err(e.into()),
            // Unavailable: the link drops the connection.
            Err(r) => Err(RepoError::Unavailable(format!("{e}; its rollback failed: {r}")).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    use diesel_async::{AnsiTransactionManager, TransactionManager};

    use super::*;
    use crate::sql::Statement;

    /// A deadlock victim whose rollback failed as well leaves the connection
    /// as this body does; the next attempt must run on another connection
    /// (on the same one, diesel-async answers "The transaction manager is
    /// broken", which a Galera cluster test once turned into a 500).
    #[tokio::test]
    #[ignore = "needs MariaDB on HELPDESK_TEST_MYSQL_URL; .ci/run runs it"]
    async fn a_deadlock_victim_that_broke_its_connection_is_run_again_on_another() {
        let db = crate::testing::fresh_mysql().await;
        let crate::conn::Pools::Mysql(pool) = &db.backend else { panic!("a MySQL pool") };
        let broken = AtomicBool::new(false);
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let done = db
            .mysql_transaction(pool, async |conn| {
                attempts.fetch_add(1, Ordering::SeqCst);
                diesel_async::RunQueryDsl::execute(Statement::new("DO 1", Vec::new()), &mut *conn).await?;
                if !broken.swap(true, Ordering::SeqCst) {
                    AnsiTransactionManager::transaction_manager_status_mut(conn).set_in_error();
                    let message = "Deadlock found when trying to get lock; try restarting transaction".to_string();
                    return Err(TxError::Diesel(DieselError::DatabaseError(
                        DatabaseErrorKind::Unknown,
                        Box::new(message),
                    )));
                }
                Ok(7)
            })
            .await;
        assert!(matches!(done, Ok(7)), "{done:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    /// A script that fails part-way leaves nothing and no open transaction
    /// behind (its rows would hold their locks on the pooled connection);
    /// one that succeeds commits, its kept ids read back, text exactly as
    /// sent whatever `sql_mode` says of backslashes.
    #[tokio::test]
    #[ignore = "needs MariaDB on HELPDESK_TEST_MYSQL_URL; .ci/run runs it"]
    async fn a_failed_script_is_rolled_back_and_a_good_one_committed() {
        use crate::sql::{Kept, Value};
        use diesel::sql_types::{BigInt, Text};
        use diesel_async::RunQueryDsl;

        #[derive(diesel::QueryableByName, Debug, PartialEq)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            id: i64,
            #[diesel(sql_type = Text)]
            nombre: String,
            #[diesel(sql_type = BigInt)]
            padre: i64,
        }
        use diesel_async::AsyncConnection;
        let url = crate::testing::fresh_mysql_url().await;
        let db = Db::connect(&crate::DbUrl::parse(&url).unwrap(), &crate::DbOptions::default()).unwrap();
        let crate::conn::Pools::Mysql(pool) = &db.backend else { panic!("a MySQL pool") };
        let setup = "CREATE TABLE prueba_script (id BIGINT AUTO_INCREMENT PRIMARY KEY, nombre TEXT NOT NULL, \
                     padre BIGINT NOT NULL, UNIQUE KEY (padre, id))";
        db.link.run(pool, async |c| c.batch_execute(setup).await.map_err(RepoError::unexpected)).await.unwrap();
        let insert = |id: Option<i64>, nombre: &'static str, padre: Value<'static>| {
            Statement::new(
                "INSERT INTO prueba_script (id, nombre, padre) VALUES (?, ?, ?)",
                vec![Value::OptBigInt(id), Value::Text(nombre), padre],
            )
        };

        let mut failing = Script::transaction();
        failing.push(&insert(Some(10), "uno", Value::BigInt(0))).unwrap();
        failing.push(&insert(Some(10), "otra vez el 10", Value::BigInt(0))).unwrap();
        let done = db.mysql_script(pool, failing.finish()).await;
        assert!(matches!(done, Err(RepoError::Duplicate(_))), "{done:?}");
        // Another connection inserts the same key at once: no transaction
        // holds it (a lock would make it wait, then time out).
        let mut other = AsyncMysqlConnection::establish(&url).await.unwrap();
        other.batch_execute("SET SESSION innodb_lock_wait_timeout = 2").await.unwrap();
        other.batch_execute("INSERT INTO prueba_script (id, nombre, padre) VALUES (10, 'otra', 0)").await.unwrap();

        // As a compound statement too, where the server has it.
        let blocks = if db.returning() { vec![false, true] } else { vec![false] };
        if db.returning() {
            let mut failing = Script::block();
            failing.push(&insert(Some(11), "uno", Value::BigInt(0))).unwrap();
            failing.push(&insert(Some(10), "otra vez el 10", Value::BigInt(0))).unwrap();
            let done = db.mysql_script(pool, failing.finish()).await;
            assert!(matches!(done, Err(RepoError::Duplicate(_))), "{done:?}");
            other.batch_execute("INSERT INTO prueba_script (id, nombre, padre) VALUES (11, 'otra', 0)").await.unwrap();
        }

        let hostile = ["'; DROP TABLE prueba_script; --", "\\'", "\\", "a\0b", "é漢🙂", "", "?", "\"x\""];
        for (mode, block) in
            ["", "NO_BACKSLASH_ESCAPES,ANSI_QUOTES"].into_iter().flat_map(|m| blocks.iter().map(move |b| (m, *b)))
        {
            let set = format!("SET SESSION sql_mode = '{mode}'");
            let mut script = if block { Script::block() } else { Script::transaction() };
            script.push(&Statement::new(set, Vec::new())).unwrap();
            script.push(&insert(None, "padre", Value::BigInt(0))).unwrap();
            script.keep(Kept::Ticket);
            for text in hostile {
                script.push(&insert(None, text, Value::Kept(Kept::Ticket))).unwrap();
                script.keep(Kept::Notice);
            }
            script.push(&Statement::new("SET SESSION sql_mode = DEFAULT", Vec::new())).unwrap();
            let kept = db.mysql_script(pool, script.finish()).await.unwrap();
            let [parent] = kept.of(Kept::Ticket).unwrap()[..] else { panic!("one parent kept: {kept:?}") };
            let children = kept.of(Kept::Notice).unwrap();
            assert_eq!(children.len(), hostile.len(), "{kept:?}");
            let rows: Vec<Row> = diesel::sql_query(format!(
                "SELECT id, nombre, padre FROM prueba_script WHERE padre = {parent} ORDER BY id"
            ))
            .load(&mut other)
            .await
            .unwrap();
            let want: Vec<Row> = children
                .iter()
                .zip(hostile)
                .map(|(id, text)| Row { id: *id, nombre: text.to_string(), padre: parent })
                .collect();
            assert_eq!(rows, want, "sql_mode {mode:?}, as a block: {block}");
        }
    }

    /// A block is prepared once per connection for every mail of its shape
    /// (its values bound), answers its kept ids itself, and inserts a JSON
    /// list of any length, hostile strings as they are.
    #[tokio::test]
    #[ignore = "needs MariaDB on HELPDESK_TEST_MYSQL_URL; .ci/run runs it"]
    async fn a_block_is_prepared_once_and_lists_go_in_whole() {
        use crate::sql::{Kept, Value};
        use diesel::sql_types::Text;
        use diesel_async::{AsyncConnection, RunQueryDsl};

        #[derive(diesel::QueryableByName, Debug, PartialEq)]
        struct Word {
            #[diesel(sql_type = Text)]
            palabra: String,
        }
        use crate::sql::tests::{Status, prepared};
        /// A parent row, then one word row per string of `json` under it.
        fn words_block<'a>(nombre: &'a str, insert: &str, json: &'a str) -> diesel::QueryResult<Finished<'a>> {
            let mut block = Script::block();
            block.push(&Statement::new("INSERT INTO prueba_padre (nombre) VALUES (?)", vec![Value::Text(nombre)]))?;
            block.keep(Kept::Ticket);
            block.push(&Statement::insert_each(insert, "palabra", ("padre", Value::Kept(Kept::Ticket)), json))?;
            Ok(block.finish())
        }
        let url = crate::testing::fresh_mysql_url().await;
        let mut conn = AsyncMysqlConnection::establish(&url).await.unwrap();
        let version: Status = diesel::sql_query("SELECT VERSION() AS Value").get_result(&mut conn).await.unwrap();
        if !version.value.contains("MariaDB") {
            eprintln!("skipped: blocks are MariaDB's ({})", version.value);
            return;
        }
        conn.batch_execute(
            "CREATE TABLE prueba_padre (id BIGINT AUTO_INCREMENT PRIMARY KEY, nombre TEXT NOT NULL); \
             CREATE TABLE prueba_palabra (palabra VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
             padre BIGINT NOT NULL, PRIMARY KEY (palabra, padre))",
        )
        .await
        .unwrap();
        let lists: [&[&str]; 3] =
            [&["uno", "dos"], &["'; DROP TABLE prueba_palabra; --", "\\'", "é漢🙂", "?", "\"x\"", "dos", "dos"], &[]];
        let mut first_prepared = None;
        for (i, words) in lists.iter().enumerate() {
            let json = serde_json::to_string(words).unwrap();
            let block = words_block("padre", "INSERT IGNORE INTO prueba_palabra", &json).unwrap();
            let before = prepared(&mut conn).await;
            let kept = run_script(&mut conn, &block).await.unwrap();
            let after = prepared(&mut conn).await;
            // The status query is prepared each time (diesel's sql_query).
            match first_prepared {
                None => first_prepared = Some(after - before),
                Some(first) => assert_eq!(after - before, first - 1, "the block again: prepared once"),
            }
            let [parent] = kept.of(Kept::Ticket).unwrap()[..] else { panic!("one parent kept: {kept:?}") };
            let mut got: Vec<Word> =
                diesel::sql_query(format!("SELECT palabra FROM prueba_palabra WHERE padre = {parent}"))
                    .load(&mut conn)
                    .await
                    .unwrap();
            got.sort_by(|a, b| a.palabra.cmp(&b.palabra));
            let mut want: Vec<&str> = words.to_vec();
            want.sort();
            want.dedup();
            assert_eq!(got.iter().map(|w| w.palabra.as_str()).collect::<Vec<_>>(), want, "list {i}");
        }
        // A word longer than the column is refused, as a literal would be,
        // and the block's transaction left to the caller: rolled back.
        let json = serde_json::to_string(&["x".repeat(65)]).unwrap();
        let block = words_block("largo", "INSERT INTO prueba_palabra", &json).unwrap();
        assert!(run_script(&mut conn, &block).await.is_err());
        let n: Status =
            diesel::sql_query("SELECT CAST(COUNT(*) AS CHAR) AS Value FROM prueba_padre WHERE nombre = 'largo'")
                .get_result(&mut conn)
                .await
                .unwrap();
        assert_eq!(n.value, "0");
    }
}
