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

/// Messages stored before the search's word table existed are found once
/// the start-up pass indexed them, in batches, and the pass ends.
mod search_backlog {
    use std::sync::Arc;

    use helpdesk_db::Db;
    use helpdesk_db::testing::{fresh_mysql, fresh_sqlite};
    use helpdesk_domain::model::*;
    use helpdesk_domain::ports::*;
    use helpdesk_domain::testing::contract::new_incoming;

    async fn found(db: &Db, text: &str) -> usize {
        let q = TicketQuery { text: Some(text.into()), limit: 5000, ..Default::default() };
        db.list_tickets(q).await.unwrap().len()
    }

    async fn backlog_is_indexed(db: Db) {
        let db = Arc::new(db);
        let d = db.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
        // More than one batch of messages (500), every third about a printer.
        for i in 0..1203 {
            let mut m = new_incoming(d.id, None, &format!("m{i}"), "cliente@cliente.test");
            m.detail.body = if i % 3 == 0 { format!("La impresora {i} no imprime") } else { format!("Consulta {i}") };
            db.store_incoming(m).await.unwrap();
        }
        assert_eq!(found(&db, "impresora").await, 401, "indexed as they were stored");
        db.forget_search_index().await.unwrap();
        assert_eq!(found(&db, "impresora").await, 0, "as before the word table");
        assert_eq!(db.index_backlog().await.unwrap(), 1203);
        assert_eq!(found(&db, "impresora").await, 401);
        assert_eq!(found(&db, "impresora 600").await, 1);
        assert_eq!(db.index_backlog().await.unwrap(), 0, "nothing left");
    }

    #[tokio::test]
    async fn on_sqlite() {
        backlog_is_indexed(fresh_sqlite().await).await;
    }

    #[tokio::test]
    #[ignore = "needs MariaDB on HELPDESK_TEST_MYSQL_URL; .ci/run runs it"]
    async fn on_mysql() {
        backlog_is_indexed(fresh_mysql().await).await;
    }
}
