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

/// The start-up repairs: replies stored with their Message-ID hashed as
/// written (mixed case) are found by the one form afterwards, a dedupe key
/// another message holds is left, and a repair done is not made again.
mod repairs {
    use std::sync::Arc;

    use helpdesk_db::Db;
    use helpdesk_db::testing::{fresh_mysql, fresh_sqlite};
    use helpdesk_domain::model::*;
    use helpdesk_domain::ports::*;
    use helpdesk_domain::testing::contract::{new_incoming, sample_detail};

    fn at() -> Timestamp {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap().and_hms_opt(12, 0, 0).unwrap()
    }

    async fn reply(db: &Db, ticket_id: i64, id: &str) -> i64 {
        let mut detail = sample_detail(id, "ana@helpdesk.test");
        detail.direction = Direction::Outgoing;
        let r = NewReply {
            ticket_id,
            detail,
            participants: vec![],
            notices: vec![],
            webhook_events: vec![],
            now: at(),
            notices_due_at: at(),
            sla: None,
        };
        db.store_reply(r).await.unwrap().detail_id
    }

    async fn message_ids_are_rehashed_once(db: Db) {
        let db = Arc::new(db);
        let d = db.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
        let t = db.store_incoming(new_incoming(d.id, None, "m1", "cliente@cliente.test")).await.unwrap().ticket_id;
        // Two old replies; the second was read back and stored as a
        // customer's message under the lower-case key (the bug).
        let (first, second) = (reply(&db, t, "r1").await, reply(&db, t, "r2").await);
        db.unrepair_message_id(first, "Ticket1.rAbC.1f@Mesa.Test").await.unwrap();
        db.unrepair_message_id(second, "Ticket1.rXyZ.1f@Mesa.Test").await.unwrap();
        let copy_id = MessageId::parse("ticket1.rxyz.1f@mesa.test").unwrap();
        let mut copy = new_incoming(d.id, None, "copia", "soporte@helpdesk.test");
        copy.target = IncomingTarget::Existing { ticket_id: t, reopen: false, sla: None };
        copy.detail.dedupe_key = copy_id.dedupe_key();
        let copy = db.store_incoming(copy).await.unwrap().detail_id;

        let lower = MessageId::parse("<TICKET1.RABC.1F@MESA.TEST>").unwrap();
        assert_eq!(db.ticket_of_message(&lower.hash()).await.unwrap(), None, "as the old code left it");
        assert_eq!(db.repair_data(at()).await.unwrap().message_ids, 2);
        assert_eq!(db.ticket_of_message(&lower.hash()).await.unwrap(), Some(t));
        assert_eq!(db.find_detail_by_dedupe(&lower.dedupe_key()).await.unwrap().map(|x| x.id), Some(first));
        assert_eq!(db.find_detail_by_dedupe(&copy_id.dedupe_key()).await.unwrap().map(|x| x.id), Some(copy));
        let kept = db.find_detail(first).await.unwrap().unwrap();
        assert_eq!(kept.message_id.as_deref(), Some("Ticket1.rAbC.1f@Mesa.Test"), "as it was sent");
        assert_eq!(db.repair_data(at()).await.unwrap(), helpdesk_db::Repaired::default(), "done once");
    }

    /// Participants older versions stored from any text of a Cc are
    /// removed once, the thread saying which.
    async fn bad_participants_are_dropped_once(db: Db) {
        let db = Arc::new(db);
        let d = db.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
        let mut m = new_incoming(d.id, None, "m1", "cliente@cliente.test");
        m.participants = vec!["cliente@cliente.test".into(), "Juan Perez juan@example.com".into(), "juan@".into()];
        let t = db.store_incoming(m).await.unwrap().ticket_id;
        let good = db.store_incoming(new_incoming(d.id, None, "m2", "otro@cliente.test")).await.unwrap().ticket_id;
        let good_before = db.participants_of(good).await.unwrap();
        assert_eq!(db.repair_data(at()).await.unwrap().participants, 2);
        assert_eq!(db.participants_of(t).await.unwrap(), vec!["cliente@cliente.test"]);
        assert_eq!(db.participants_of(good).await.unwrap(), good_before);
        let events = db.events_of(t).await.unwrap();
        assert_eq!(
            events.iter().map(|e| (e.kind, e.before.as_deref())).collect::<Vec<_>>(),
            vec![(EventKind::ParticipantDropped, Some("juan perez juan@example.com, juan@"))]
        );
        assert!(db.events_of(good).await.unwrap().is_empty());
        assert_eq!(db.repair_data(at()).await.unwrap(), helpdesk_db::Repaired::default(), "done once");
    }

    #[tokio::test]
    async fn on_sqlite() {
        message_ids_are_rehashed_once(fresh_sqlite().await).await;
        bad_participants_are_dropped_once(fresh_sqlite().await).await;
    }

    #[tokio::test]
    #[ignore = "needs MariaDB on HELPDESK_TEST_MYSQL_URL; .ci/run runs it"]
    async fn on_mysql() {
        message_ids_are_rehashed_once(fresh_mysql().await).await;
        bad_participants_are_dropped_once(fresh_mysql().await).await;
    }
}
