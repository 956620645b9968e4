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
