//! The domain's repository contract, on both database backends.

mod sqlite {
    use helpdesk_db::testing::fresh_sqlite;
    helpdesk_domain::repository_contract_tests!(fresh_sqlite);
}

mod mysql {
    use helpdesk_db::testing::fresh_mysql;
    helpdesk_domain::repository_contract_tests!(
        fresh_mysql,
        #[ignore = "needs MariaDB on HELPDESK_TEST_MYSQL_URL; .ci/run runs it"]
    );
}

/// The same, with inserts reading their ids by a second query, as on MySQL
/// (MariaDB and SQLite answer `RETURNING`, which the stores above use).
mod without_returning {
    use helpdesk_db::Db;
    use helpdesk_db::testing::{fresh_mysql, fresh_sqlite};

    async fn sqlite() -> Db {
        fresh_sqlite().await.without_returning()
    }

    async fn mysql() -> Db {
        fresh_mysql().await.without_returning()
    }

    mod on_sqlite {
        helpdesk_domain::repository_contract_tests!(super::sqlite);
    }

    mod on_mysql {
        helpdesk_domain::repository_contract_tests!(
            super::mysql,
            #[ignore = "needs MariaDB on HELPDESK_TEST_MYSQL_URL; .ci/run runs it"]
        );
    }
}
