//! The mail-reading channel end to end: a real IMAP server (Dovecot) on
//! loopback, the reader with its production adapters, the database.

use std::path::{Path, PathBuf};

use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;
use helpdesk_mail_imap::testing::Dovecot;
use helpdesk_notify_smtp::testing::ClosedPort;

use crate::helpers::{Backend, TestApp, spawn_app_with};

const USER: &str = "soporte@helpdesk.test";
const PASSWORD: &str = "clave-imap-2026";
const LIMIT: u64 = 64 * 1024;

fn fixture(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mail-imap/fixtures");
    std::fs::read(dir.join(name)).unwrap()
}

fn message(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{id}@cliente.test>\r\nDate: Sun, 29 Nov 2026 09:00:00 +0000\r\nFrom: luis@cliente.test\r\n\
         To: {USER}\r\nSubject: {subject}\r\n\r\nCuerpo de {id}.\r\n"
    )
    .into_bytes()
}

struct Channel {
    app: TestApp,
    imap: Dovecot,
    storage: PathBuf,
    account: MailAccount,
}

async fn channel(backend: Backend) -> Channel {
    let storage = crate::cli::temp_dir().join("storage");
    let dir = storage.clone();
    let app = spawn_app_with(backend, move |s| {
        s.reader.storage_dir = dir;
        s.reader.allow_plaintext = true;
        s.reader.max_message_bytes = LIMIT;
        s.reader.timeout_secs = 10;
    })
    .await;
    let imap = Dovecot::start(&[(USER, PASSWORD)]);
    imap.create_mailbox(USER, PASSWORD, "Urgente").await;
    let d = app.db.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let account = app
        .db
        .create_mail_account(NewMailAccount {
            host: "127.0.0.1".into(),
            user: USER.into(),
            sealed_password: app.keys.secret_box.seal(PASSWORD),
            port: imap.port.to_string(),
            mailboxes: vec!["INBOX".into(), "Urgente".into()],
            department_id: d.id,
            status: Status::Active,
            send_acknowledgement: true,
        })
        .await
        .unwrap();
    Channel { app, imap, storage, account }
}

impl Channel {
    fn reader(&self) -> helpdesk_server::reader::Reader {
        helpdesk_server::reader::build(&self.app.config, self.app.db.clone(), self.app.clock.clone()).unwrap()
    }

    async fn append(&self, mailbox: &str, raw: &[u8], seen: bool) {
        self.imap.append(USER, PASSWORD, mailbox, raw, seen).await;
    }

    async fn tickets(&self) -> Vec<Ticket> {
        let mut out = Vec::new();
        for id in 1..100 {
            out.extend(self.app.db.find_ticket(id).await.unwrap());
        }
        out
    }

    async fn all_seen(&self, mailbox: &str) -> bool {
        self.imap.flags(USER, PASSWORD, mailbox).await.1.iter().all(|(_, seen)| *seen)
    }
}

fn counts(listed: u64, imported: u64, duplicate: u64, quarantined: u64) -> helpdesk_domain::services::ReadCounts {
    helpdesk_domain::services::ReadCounts {
        listed,
        imported,
        duplicate,
        held: 0,
        quarantined,
        vanished: 0,
        deferred: 0,
    }
}

async fn reading_varied_mail_makes_tickets_files_and_a_quarantine(backend: Backend) {
    let c = channel(backend).await;
    let oversized = [message("grande", "Registro completo").as_slice(), &vec![b'x'; LIMIT as usize]].concat();
    c.append("INBOX", &message("historico", "Leído antes de conectar la mesa de ayuda"), true).await;
    for raw in [
        fixture("multipart.eml"),
        fixture("latin1.eml"),
        fixture("koi8.eml"),
        fixture("autoreply.eml"),
        fixture("malformed.eml"),
        fixture("bare.eml"),
        oversized.clone(),
    ] {
        c.append("INBOX", &raw, false).await;
    }
    c.append("Urgente", &fixture("reply.eml"), false).await;
    let reader = c.reader();

    let report = reader.run_once().await.unwrap();
    assert_eq!(report.failed_accounts(), 0, "{report:?}\n{}", c.imap.log());
    assert_eq!(report.totals(), counts(8, 6, 0, 2), "the mail read before is history, not a ticket");

    // Mail is ingested several at a time: ticket numbers follow the order
    // of the commits, so the tickets are taken in the order of the mail.
    let in_order = [
        "No funciona la impresión",
        "Contraseña caducada ¿pueden ayudar?",
        "Почта",
        "Fuera de la oficina",
        "Sin Message-ID ni fecha",
    ];
    let mut tickets = c.tickets().await;
    tickets.sort_by_key(|t| in_order.iter().position(|s| *s == t.subject).unwrap_or(usize::MAX));
    let subjects: Vec<_> = tickets.iter().map(|t| t.subject.as_str()).collect();
    assert_eq!(subjects, in_order);
    for t in &tickets {
        assert_eq!((t.mail_account_id, t.system.as_str()), (Some(c.account.id), "canal_lectura"));
        assert_eq!(t.department_id, c.account.department_id);
    }

    // The reply, read from the other mailbox, joined the first ticket.
    let details = c.app.db.details_of(tickets[0].id).await.unwrap();
    assert_eq!(details.len(), 2);
    assert!(details[1].body.contains("Ya reinicié la impresora"), "{}", details[1].body);
    assert_eq!(details[0].from, "María Pérez <maria@cliente.test>");
    assert!(details[0].html.contains("<b>segundo piso</b>"));

    // Attachments and the inline image are files under the storage.
    let files = c.app.db.attachments_of(details[0].id).await.unwrap();
    let named: Vec<_> = files.iter().map(|a| (a.name.as_str(), a.mime_type.as_str())).collect();
    assert_eq!(named, [("captura.png", "image/png"), ("informe técnico.pdf", "application/pdf")]);
    assert!(std::fs::read(c.storage.join(&files[0].route)).unwrap().starts_with(b"\x89PNG\r\n"));
    assert_eq!(std::fs::read(c.storage.join(&files[1].route)).unwrap(), b"%PDF-1.4\n% informe de prueba\n%%EOF\n");

    let koi8 = c.app.db.details_of(tickets[2].id).await.unwrap();
    assert_eq!(koi8[0].body.trim(), "Добрый день, не работает почта.");
    let auto = &c.app.db.details_of(tickets[3].id).await.unwrap()[0];
    assert!(auto.automatic);
    let auto_notices = c.app.db.notices_of_detail(auto.id).await.unwrap();
    assert!(auto_notices.iter().all(|n| n.kind != NoticeKind::Acknowledgement), "{auto_notices:?}");
    let ack = c.app.db.notices_of_detail(details[0].id).await.unwrap();
    assert!(ack.iter().any(|n| n.kind == NoticeKind::Acknowledgement && n.recipient == "maria@cliente.test"));
    let bare = &c.app.db.details_of(tickets[4].id).await.unwrap()[0];
    assert!(bare.message_id.as_deref().unwrap().starts_with("imap."), "{:?}", bare.message_id);

    // The quarantine: the malformed mail with its raw copy, the oversized
    // one not downloaded.
    let q = reader.quarantined(false).await.unwrap();
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(q[0].reason, QuarantineReason::Unparsable);
    assert_eq!(std::fs::read(c.storage.join(q[0].raw_route.as_ref().unwrap())).unwrap(), fixture("malformed.eml"));
    assert_eq!((q[1].reason, q[1].raw_route.as_ref()), (QuarantineReason::TooLarge, None));
    assert!(q[1].size as u64 > LIMIT);
    assert!(c.all_seen("INBOX").await && c.all_seen("Urgente").await, "every mail handled is flagged");

    // Nothing is read twice.
    assert_eq!(reader.run_once().await.unwrap().totals(), counts(0, 0, 0, 0));
    // A retry fetches the oversized mail again and opens its ticket; the
    // malformed one is refused again.
    let retried = reader.retry(q[1].id).await.unwrap();
    let ticket = c.app.db.find_ticket(retried.ticket_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(ticket.subject, "Registro completo");
    let again = reader.retry(q[0].id).await.unwrap();
    assert_eq!((again.attempts, again.ticket_id, again.reason), (1, None, QuarantineReason::Unparsable));
    assert_eq!(reader.quarantined(false).await.unwrap(), vec![again]);

    // New mail, seen or not, above the checkpoint is read.
    c.append("INBOX", &message("nuevo", "Otra consulta"), true).await;
    assert_eq!(reader.run_once().await.unwrap().totals(), counts(1, 1, 0, 0));
    assert_eq!(c.tickets().await.len(), 7);
}

async fn an_unreachable_account_is_reported_and_the_others_are_read(backend: Backend) {
    let c = channel(backend).await;
    // Nothing listens there (connections are refused) while the test runs.
    let closed = ClosedPort::new();
    let other = c
        .app
        .db
        .create_mail_account(NewMailAccount {
            host: "127.0.0.1".into(),
            user: "ventas@helpdesk.test".into(),
            sealed_password: c.app.keys.secret_box.seal("x"),
            port: closed.port.to_string(),
            mailboxes: vec!["INBOX".into()],
            department_id: c.account.department_id,
            status: Status::Active,
            send_acknowledgement: false,
        })
        .await
        .unwrap();
    c.append("INBOX", &message("uno", "Una consulta"), false).await;
    let report = c.reader().run_once().await.unwrap();
    let failed: Vec<_> = report.accounts.iter().filter(|a| a.error.is_some()).map(|a| a.account_id).collect();
    assert_eq!(failed, [other.id]);
    assert_eq!(report.totals(), counts(1, 1, 0, 0));
}

/// `(batch_size, concurrency)` of the reader run as a command.
const ONE_AT_A_TIME: (&str, &str) = ("1", "1");
const BY_BATCHES: (&str, &str) = ("100", "8");

async fn killed_between_commit_and_flag_loses_and_doubles_nothing(backend: Backend) {
    // One mail at a time: the first mail's ticket is committed when the
    // reader dies before its flag; the next run reads it as a duplicate.
    killed_before_the_flag(backend, ONE_AT_A_TIME, 1).await;
}

async fn killed_before_a_batch_is_flagged_loses_and_doubles_nothing(backend: Backend) {
    // By batches: the whole batch is committed before the one flag for it.
    killed_before_the_flag(backend, BY_BATCHES, 3).await;
}

async fn killed_before_the_flag(backend: Backend, (batch, concurrency): (&str, &str), committed: usize) {
    let c = channel(backend).await;
    for raw in [fixture("multipart.eml"), fixture("latin1.eml"), fixture("bare.eml")] {
        c.append("INBOX", &raw, false).await;
    }
    let cwd = crate::cli::temp_dir();
    let read_mail = |failpoint: Option<&str>| {
        let mut cmd = crate::cli::command(&cwd);
        cmd.args(["read-mail", "--once"])
            .env("HELPDESK__DATABASE__URL", &c.app.settings.database.url)
            .env("HELPDESK__SEED__DEMO", "false")
            .env("HELPDESK__LOG__FORMAT", "json")
            .env("HELPDESK__READER__ALLOW_PLAINTEXT", "true")
            .env("HELPDESK__READER__STORAGE_DIR", &c.storage)
            .env("HELPDESK__READER__BATCH_SIZE", batch)
            .env("HELPDESK__READER__CONCURRENCY", concurrency);
        if let Some(f) = failpoint {
            cmd.env("HELPDESK_FAILPOINT", f);
        }
        cmd.output().expect("the binary runs")
    };

    let crashed = read_mail(Some("reader-before-mark-seen"));
    assert!(!crashed.status.success(), "the failpoint aborts the reader");
    assert!(String::from_utf8_lossy(&crashed.stderr).contains("failpoint reader-before-mark-seen"));
    assert_eq!(c.tickets().await.len(), committed, "tickets committed before the crash");
    assert!(c.imap.flags(USER, PASSWORD, "INBOX").await.1.iter().all(|(_, seen)| !seen), "nothing flagged");

    let out = read_mail(None);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let totals = log.lines().find(|l| l.contains("\"mail read\"")).unwrap_or_else(|| panic!("no totals in {log}"));
    let imported = format!("\"imported\":{}", 3 - committed);
    let duplicate = format!("\"duplicate\":{committed}");
    for field in ["\"listed\":3", &imported, &duplicate, "\"quarantined\":0", "\"deferred\":0"] {
        assert!(totals.contains(field), "{field} not in {totals}");
    }
    let mut tickets = c.tickets().await;
    tickets.sort_by_key(|t| t.subject != "No funciona la impresión");
    assert_eq!(tickets.len(), 3, "no mail lost, none doubled");
    assert_eq!(c.app.db.details_of(tickets[0].id).await.unwrap().len(), 1);
    assert!(c.all_seen("INBOX").await);
    // Attachment files were written once: one file per attachment.
    let attachments = c.app.db.attachments_of(c.app.db.details_of(tickets[0].id).await.unwrap()[0].id).await.unwrap();
    assert_eq!(attachments.len(), 2);
    for a in &attachments {
        let dir = c.storage.join(&a.route).parent().unwrap().to_path_buf();
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1, "{}", a.route);
    }
}

async fn quarantine_admin_commands_list_and_retry(backend: Backend) {
    let c = channel(backend).await;
    c.append("INBOX", &fixture("malformed.eml"), false).await;
    let no_date = b"From: ana@cliente.test\r\nSubject: Sin destinatario\r\n\r\nHola\r\n";
    c.append("INBOX", no_date, false).await;
    assert_eq!(c.reader().run_once().await.unwrap().totals(), counts(2, 0, 0, 2));
    let cwd = crate::cli::temp_dir();
    let admin = |args: &[&str]| {
        crate::cli::command(&cwd)
            .args(args)
            .env("HELPDESK__DATABASE__URL", &c.app.settings.database.url)
            .env("HELPDESK__READER__ALLOW_PLAINTEXT", "true")
            .env("HELPDESK__READER__STORAGE_DIR", &c.storage)
            .output()
            .expect("the binary runs")
    };
    let listed = admin(&["quarantine", "list"]);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(rows[0].contains("unparsable") && rows[0].contains("not an RFC 5322 message"), "{}", rows[0]);
    assert!(rows[1].contains("no recipient address (To)"), "{}", rows[1]);
    let id = rows[1].split('\t').next().unwrap();
    let retry = admin(&["quarantine", "retry", id]);
    assert!(!retry.status.success());
    assert!(String::from_utf8_lossy(&retry.stderr).contains("refused again (unparsable)"));
    let listed = admin(&["quarantine", "list"]);
    let row = String::from_utf8_lossy(&listed.stdout).lines().nth(2).unwrap().to_string();
    assert_eq!(row.split('\t').nth(6), Some("1"), "one attempt recorded: {row}");
    let unknown = admin(&["quarantine", "retry", "999"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no quarantined mail with id 999"));
}

/// Parents and their replies read in one pass, several at a time: every
/// reply joins its parent's ticket (by In-Reply-To, by References alone,
/// and a reply to a reply), in the order they arrived, however the pass
/// is cut into batches.
async fn replies_read_with_their_parents_join_their_tickets(backend: Backend) {
    const THREADS: usize = 40;
    let c = channel(backend).await;
    let reply = |id: &str, headers: &str| {
        format!(
            "Message-ID: <{id}@cliente.test>\r\n{headers}\r\nDate: Sun, 29 Nov 2026 09:05:00 +0000\r\n\
             From: luis@cliente.test\r\nTo: {USER}\r\nSubject: Re: consulta\r\n\r\nRespuesta {id}.\r\n"
        )
        .into_bytes()
    };
    for i in 0..THREADS {
        c.append("INBOX", &message(&format!("p{i}"), &format!("Consulta {i}")), false).await;
        c.append("INBOX", &reply(&format!("r{i}"), &format!("In-Reply-To: <p{i}@cliente.test>")), false).await;
        if i % 2 == 0 {
            let refs = format!("References: <p{i}@cliente.test> <r{i}@cliente.test>");
            c.append("INBOX", &reply(&format!("rr{i}"), &refs), false).await;
        }
    }
    let mails = THREADS * 5 / 2;
    for (batch, concurrency) in [(100, 8), (7, 4)] {
        let mut settings = c.app.settings.clone();
        (settings.reader.batch_size, settings.reader.concurrency) = (batch, concurrency);
        let reader =
            helpdesk_server::reader::build(&settings.validate().unwrap(), c.app.db.clone(), c.app.clock.clone())
                .unwrap();
        let report = reader.run_once().await.unwrap();
        assert_eq!(report.failed_accounts(), 0, "{report:?}");
        if batch == 100 {
            assert_eq!(report.totals(), counts(mails as u64, mails as u64, 0, 0));
        } else {
            // Read again from the start: every mail is a duplicate.
            assert_eq!(report.totals(), counts(mails as u64, 0, mails as u64, 0));
        }
        let tickets = c.tickets().await;
        assert_eq!(tickets.len(), THREADS, "one ticket per parent ({batch}, {concurrency})");
        for t in &tickets {
            let ids: Vec<String> =
                c.app.db.details_of(t.id).await.unwrap().into_iter().filter_map(|d| d.message_id).collect();
            let i: usize = ids[0].trim_start_matches('p').split('@').next().unwrap().parse().unwrap();
            let mut want = vec![format!("p{i}@cliente.test"), format!("r{i}@cliente.test")];
            if i.is_multiple_of(2) {
                want.push(format!("rr{i}@cliente.test"));
            }
            assert_eq!(ids, want, "a thread in its ticket, in order ({batch}, {concurrency})");
        }
        assert!(c.all_seen("INBOX").await);
        // The next pass starts over, with another cut into batches.
        let uid_validity = c.imap.flags(USER, PASSWORD, "INBOX").await.0;
        let start = Checkpoint { uid_validity, last_uid: 0 };
        c.app.db.save_checkpoint(c.account.id, "INBOX", start, c.app.clock.now()).await.unwrap();
    }
}

/// Our own mail read back from the mailbox: a copy of an operator's reply
/// is that reply (a duplicate), an out-of-office answering it is kept and
/// changes nothing, and a mail from our own address that continues no
/// ticket is held, not a ticket.
async fn our_own_mail_and_auto_replies_read_back_change_nothing(backend: Backend) {
    use helpdesk_domain::services::{ChangeRequest, MessageIdSigner, Operator, ReplyRequest, TicketService};
    let c = channel(backend).await;
    c.append("INBOX", &message("c1", "No imprime"), false).await;
    let reader = c.reader();
    assert_eq!(reader.run_once().await.unwrap().totals(), counts(1, 1, 0, 0));
    let t = c.tickets().await[0].id;
    let user = NewInternalUser {
        login: "ana".into(),
        name: "Ana".into(),
        email: "ana@helpdesk.test".into(),
        department_id: Some(c.account.department_id),
        can_take_tickets: true,
        ..Default::default()
    };
    let op = Operator::new(c.app.db.create_user(user).await.unwrap()).unwrap();
    let ids = MessageIdSigner::new(c.app.keys.consumer_hmac.clone(), &c.app.settings.ingest.message_id_domain);
    let tickets = TicketService::new(c.app.db.clone(), ids, c.app.clock.clone(), false, std::time::Duration::ZERO);
    let reply = ReplyRequest { body: "Ya lo vemos.".into(), html: None, internal: false, cc: None, seen_last: None };
    let reply = tickets.reply(&op, t, reply).await.unwrap();
    let pending = ChangeRequest { status: Some(TicketStatus::Pending), ..Default::default() };
    tickets.change(&op, t, pending).await.unwrap();
    let before = c.app.db.find_ticket(t).await.unwrap().unwrap();

    let copy = format!(
        "Message-ID: <{}>\r\nDate: Sun, 29 Nov 2026 09:05:00 +0000\r\nFrom: Soporte <{USER}>\r\n\
         To: luis@cliente.test\r\nCc: {USER}\r\nSubject: Re: No imprime\r\n\r\nYa lo vemos.\r\n",
        reply.message_id.to_uppercase()
    );
    let away = format!(
        "Message-ID: <ausente1@cliente.test>\r\nDate: Sun, 29 Nov 2026 09:06:00 +0000\r\nFrom: luis@cliente.test\r\n\
         To: {USER}\r\nSubject: Fuera de la oficina\r\nAuto-Submitted: auto-replied\r\nIn-Reply-To: <{}>\r\n\r\n\
         Vuelvo el lunes.\r\n",
        reply.message_id
    );
    let looped = format!(
        "Message-ID: <bucle1@helpdesk.test>\r\nDate: Sun, 29 Nov 2026 09:07:00 +0000\r\nFrom: {USER}\r\n\
         To: {USER}\r\nSubject: Prueba\r\n\r\nA nosotros mismos.\r\n"
    );
    for raw in [copy, away, looped] {
        c.append("INBOX", raw.as_bytes(), false).await;
    }
    let report = reader.run_once().await.unwrap();
    let totals = report.totals();
    assert_eq!((totals.listed, totals.imported, totals.duplicate, totals.held), (3, 1, 1, 1), "{report:?}");
    assert!(totals.adds_up());

    let after = c.app.db.find_ticket(t).await.unwrap().unwrap();
    assert_eq!((after.status, after.sla), (TicketStatus::Pending, before.sla), "the out-of-office changed nothing");
    let details = c.app.db.details_of(t).await.unwrap();
    assert_eq!(details.len(), 3, "the message, our reply, the out-of-office");
    assert!(details[2].automatic);
    assert!(c.app.db.notices_of_detail(details[2].id).await.unwrap().is_empty(), "nobody told");
    assert_eq!(c.tickets().await.len(), 1, "no ticket from our own mail");
    let held = c.app.db.held_mail(false).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].mail.subject, "Prueba");
    assert!(!c.app.db.participants_of(t).await.unwrap().iter().any(|p| p == USER), "our mailbox takes no part");
}

crate::with_imap_on_both_backends!(
    our_own_mail_and_auto_replies_read_back_change_nothing,
    reading_varied_mail_makes_tickets_files_and_a_quarantine,
    an_unreachable_account_is_reported_and_the_others_are_read,
    killed_between_commit_and_flag_loses_and_doubles_nothing,
    killed_before_a_batch_is_flagged_loses_and_doubles_nothing,
    quarantine_admin_commands_list_and_retry,
    replies_read_with_their_parents_join_their_tickets,
);
