//! Mail that comes back: copies of our own replies, mail from our own
//! addresses, automatic mail. None of it may loop, notify or reopen.

use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;
use reqwest::Method;
use serde_json::{Value, json};

use helpdesk_notify_smtp::testing::parse;

use crate::helpers::*;
use crate::tickets::{Desk, customer_mail, desk};

/// A ticket of `cliente@ejemplo.test`, answered by ana and left waiting on
/// the customer (`pendiente`): its id, ana's token, the reply's Message-ID
/// as the API gave it (`<...>`) and the reply's detail id.
async fn answered_ticket(d: &Desk, id: &str) -> (i64, String, String, i64) {
    let saved = d.save(&customer_mail(id, "No imprime", json!({}))).await;
    let t: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let ana = d.token("ana").await;
    let (status, reply) = d
        .call(Method::POST, &format!("tickets/{t}/respuestas"), Some(&ana), Some(json!({"cuerpo": "Ya lo vemos."})))
        .await;
    assert_eq!(status, 201, "{reply}");
    let message_id = reply["data"]["message_id"].as_str().unwrap().to_string();
    let detail = reply["data"]["id_detalle_ticket"].as_i64().unwrap();
    let (status, body) =
        d.call(Method::PATCH, &format!("tickets/{t}"), Some(&ana), Some(json!({"estado": "pendiente"}))).await;
    assert_eq!(status, 200, "{body}");
    (t, ana, message_id, detail)
}

/// What a ticket looks like from outside, to compare before and after.
async fn snapshot(d: &Desk, t: i64) -> (Ticket, usize, Vec<String>, usize) {
    let ticket = d.app.db.find_ticket(t).await.unwrap().unwrap();
    let details = d.app.db.details_of(t).await.unwrap();
    let mut notices = 0;
    for detail in &details {
        notices += d.app.db.notices_of_detail(detail.id).await.unwrap().len();
    }
    let participants = d.app.db.participants_of(t).await.unwrap();
    (ticket, details.len(), participants, notices)
}

/// A copy of our reply as a mail system hands it back (a Cc or Bcc to our
/// own mailbox): from the support address, its Message-ID in another case.
fn copy_of_reply(message_id: &str, in_reply_to: Option<&str>) -> Value {
    let mut headers = json!({"Message-ID": message_id.to_uppercase()});
    if let Some(parent) = in_reply_to {
        headers["In-Reply-To"] = json!(parent);
    }
    json!({
        "sistema": "canal_lectura",
        "subject": "Re: No imprime",
        "from": "Soporte <soporte@helpdesk.test>",
        "to": "cliente@ejemplo.test",
        "cc": "soporte@helpdesk.test",
        "body": "Ya lo vemos.",
        "date": "2025-10-10 12:05:00",
        "headers": headers,
    })
}

async fn tickets_in_store(d: &Desk) -> usize {
    let jefa = d.token("jefa").await;
    let (status, list) = d.get("tickets?limite=100", &jefa).await;
    assert_eq!(status, 200, "{list}");
    list["data"]["tickets"].as_array().unwrap().len()
}

/// Our reply read back is that reply: the duplicate answer, nothing stored,
/// nobody notified, the ticket still waiting on the customer; with or
/// without In-Reply-To, and whatever case its Message-ID comes back in.
async fn a_copy_of_our_reply_is_that_reply(backend: Backend) {
    let d = desk(backend, false).await;
    let (t, _, message_id, reply_detail) = answered_ticket(&d, "c1").await;
    let before = snapshot(&d, t).await;
    let tickets = tickets_in_store(&d).await;

    for copy in [copy_of_reply(&message_id, Some("<c1@cliente.test>")), copy_of_reply(&message_id, None)] {
        let saved = d.save(&copy).await;
        assert_eq!(saved["ticket"], t.to_string(), "{saved}");
        assert_eq!(saved["id_detalle_ticket"], reply_detail.to_string(), "the reply itself: {saved}");
        assert_eq!(saved["notificacion_SLA_Correo"], "No emitida", "{saved}");
        let after = snapshot(&d, t).await;
        assert_eq!(after.0.status, TicketStatus::Pending, "still waiting on the customer");
        assert_eq!(after, before, "nothing stored, nobody notified");
        assert_eq!(tickets_in_store(&d).await, tickets, "no new ticket");
    }
    assert!(!before.2.iter().any(|p| p == "soporte@helpdesk.test"), "{:?}", before.2);
}

/// An out-of-office or a bounce in a ticket's thread is kept, and changes
/// nothing: no reopening, the wait not ended, no clock moved, no notice.
async fn automatic_mail_changes_nothing(backend: Backend) {
    let d = desk(backend, false).await;
    let (t, ana, message_id, _) = answered_ticket(&d, "c1").await;
    let automatic = [
        json!({"Auto-Submitted": "auto-replied"}),
        json!({"Auto-Submitted": "auto-generated"}),
        json!({"Auto-Submitted": "auto-notified; owner-email=x@ejemplo.test"}),
        json!({"X-Autoreply": "yes"}),
        json!({"Precedence": "auto_reply"}),
        json!({"Precedence": "junk"}),
    ];
    for (i, extra) in automatic.iter().enumerate() {
        if i == 3 {
            // And on a closed ticket: not reopened.
            let (status, _) =
                d.call(Method::PATCH, &format!("tickets/{t}"), Some(&ana), Some(json!({"estado": "cerrado"}))).await;
            assert_eq!(status, 200);
        }
        let (ticket, count, participants, notices) = snapshot(&d, t).await;
        let mut headers = extra.clone();
        headers["In-Reply-To"] = json!(message_id);
        let mut mail = customer_mail(&format!("auto{i}"), "Fuera de la oficina", headers);
        mail["from"] = json!("Ausente <ausente@ejemplo.test>");
        let saved = d.save(&mail).await;
        assert_eq!(saved["ticket"], t.to_string(), "{extra}: {saved}");
        let detail: i64 = saved["id_detalle_ticket"].as_str().unwrap().parse().unwrap();
        let stored = d.app.db.find_detail(detail).await.unwrap().unwrap();
        assert!(stored.automatic, "{extra}");
        let after = snapshot(&d, t).await;
        assert_eq!(after.1, count + 1, "{extra}: kept in the thread");
        assert_eq!(
            (after.0.status, after.0.sla, after.0.closed_at),
            (ticket.status, ticket.sla, ticket.closed_at),
            "{extra}"
        );
        assert_eq!((after.2, after.3), (participants, notices), "{extra}: nobody added, nobody told");
    }
    // A person's answer still reopens.
    let mut answer = customer_mail("c2", "Re: No imprime", json!({"In-Reply-To": message_id, "Auto-Submitted": "no"}));
    answer["from"] = json!("Cliente <cliente@ejemplo.test>");
    d.save(&answer).await;
    assert_eq!(d.app.db.find_ticket(t).await.unwrap().unwrap().status, TicketStatus::Open);
}

/// Our own addresses: the mailboxes, the SMTP sender, `mail.own_addresses`.
const ALIAS: &str = "ayuda@helpdesk.test";

async fn own_desk(backend: Backend, smtp: bool) -> Desk {
    crate::tickets::desk_with(backend, smtp, |s| s.mail.own_addresses = vec![format!("Ayuda <{ALIAS}>")]).await
}

fn mail_from(from: &str, id: &str, cc: Option<&str>) -> Value {
    let mut mail = customer_mail(id, "Aviso", json!({}));
    mail["from"] = json!(from);
    mail["cc"] = json!(cc);
    mail
}

/// Mail from one of our addresses that continues no ticket opens none: it
/// is held whole (once), the answer says so with empty ticket fields, and
/// an administrator's release makes it a ticket.
async fn mail_from_our_own_addresses_is_held(backend: Backend) {
    let d = own_desk(backend, false).await;
    let smtp_from = helpdesk_domain::model::Address::parse(&d.app.settings.smtp.from).unwrap().to_string();
    let tickets = tickets_in_store(&d).await;
    for (i, from) in ["Soporte <SOPORTE@helpdesk.test>", ALIAS, smtp_from.as_str()].iter().enumerate() {
        let mail = mail_from(from, &format!("own{i}"), None);
        for _ in 0..2 {
            let (status, body) = json(d.app.post("correo/save", ("canal_lectura", &d.channel), &mail).await).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["success"], true, "{body}");
            assert!(body["message"].as_str().unwrap().contains("retenido"), "{body}");
            for field in ["ticket", "id_detalle_ticket", "id_departamento_asignado", "id_usuario_asignado"] {
                assert_eq!(body[field], "", "{from}: {field} stays a string: {body}");
            }
            assert_eq!(body["notificacion_SLA_Correo"], "No emitida");
        }
    }
    assert_eq!(tickets_in_store(&d).await, tickets, "no ticket opened");
    let held = d.app.db.held_mail(false).await.unwrap();
    assert_eq!(held.len(), 3, "each held once: {held:?}");
    assert_eq!(held[0].mail.from, "Soporte <SOPORTE@helpdesk.test>", "kept whole");
    assert_eq!(held[0].reason, HoldReason::OwnAddress);

    // The admin command line lists them and releases one into a ticket.
    let cwd = crate::cli::temp_dir();
    let admin = |args: &[&str]| {
        let out = crate::cli::command(&cwd)
            .args(args)
            .env("HELPDESK__DATABASE__URL", &d.app.settings.database.url)
            .output()
            .expect("the binary runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, listed, err) = admin(&["held", "list"]);
    assert!(ok, "{err}");
    let rows: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{listed}");
    assert!(rows[2].contains("remitente_propio") && rows[2].contains(&smtp_from), "{}", rows[2]);
    let (ok, released, err) = admin(&["held", "release", &held[2].id.to_string()]);
    assert!(ok, "{err}");
    assert!(released.contains(&format!("held mail {} is now in ticket", held[2].id)), "{released}");
    let (ok, _, err) = admin(&["held", "release", "9999999"]);
    assert!(!ok && err.contains("no held mail with id 9999999"), "{err}");
    let (_, listed, _) = admin(&["held", "list"]);
    assert_eq!(listed.lines().skip(1).count(), 2, "{listed}");
    let (_, listed, _) = admin(&["held", "list", "--all"]);
    assert_eq!(listed.lines().skip(1).count(), 3, "{listed}");

    // Released: a ticket, once; the same mail posted again is that ticket's.
    let ingest = helpdesk_server::reader::ingest(&d.app.config, d.app.db.clone(), d.app.clock.clone());
    let (released, outcome) = ingest.release(held[0].id).await.unwrap().expect("found");
    assert_eq!(released.ticket_id, Some(outcome.ticket_id));
    assert!(outcome.created_ticket);
    assert!(ingest.release(held[0].id).await.unwrap().unwrap().1.duplicate, "released once");
    assert_eq!(d.app.db.held_mail(false).await.unwrap().len(), 1);
    let again = d.save(&mail_from("Soporte <SOPORTE@helpdesk.test>", "own0", None)).await;
    assert_eq!(again["ticket"], outcome.ticket_id.to_string(), "{again}");
    assert!(ingest.release(9_999_999).await.unwrap().is_none());
}

/// A customer who copies our mailboxes and alias: none of them becomes a
/// participant or gets a copy of our reply, and none is acknowledged.
async fn our_addresses_are_never_participants(backend: Backend) {
    let d = own_desk(backend, false).await;
    let cc = format!("Ventas <ventas@helpdesk.test>, soporte@helpdesk.test, {ALIAS}, amigo@ejemplo.test");
    let mut mail = mail_from("Cliente <cliente@ejemplo.test>", "cc-ours", Some(&cc));
    mail["reply_to"] = json!(ALIAS);
    let saved = d.save(&mail).await;
    let t: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let participants = d.app.db.participants_of(t).await.unwrap();
    assert!(participants.contains(&"amigo@ejemplo.test".to_string()), "{participants:?}");
    for ours in ["ventas@helpdesk.test", "soporte@helpdesk.test", ALIAS] {
        assert!(!participants.iter().any(|p| p == ours), "{ours} in {participants:?}");
    }
    let detail: i64 = saved["id_detalle_ticket"].as_str().unwrap().parse().unwrap();
    let notices = d.app.db.notices_of_detail(detail).await.unwrap();
    assert!(
        notices.iter().all(|n| n.kind != NoticeKind::Acknowledgement),
        "its Reply-To is ours: not acknowledged: {notices:?}"
    );
    let ana = d.token("ana").await;
    let (status, reply) = d
        .call(
            Method::POST,
            &format!("tickets/{t}/respuestas"),
            Some(&ana),
            Some(json!({"cuerpo": "Hola", "cc": format!("{ALIAS}, ventas@helpdesk.test, jefe@ejemplo.test")})),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    let sent = d.app.db.find_detail(reply["data"]["id_detalle_ticket"].as_i64().unwrap()).await.unwrap().unwrap();
    let cc = sent.cc.unwrap_or_default();
    assert!(cc.contains("amigo@ejemplo.test") && cc.contains("jefe@ejemplo.test"), "{cc}");
    assert!(!cc.contains("helpdesk.test"), "no copy to ourselves: {cc}");
}

/// Names of the thread's events of a ticket, with what they say before.
async fn events(d: &Desk, t: i64, token: &str) -> Vec<(String, String)> {
    let (status, shown) = d.get(&format!("tickets/{t}"), token).await;
    assert_eq!(status, 200, "{shown}");
    shown["data"]["eventos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["tipo"].as_str().unwrap().to_string(), e["antes"].as_str().unwrap_or_default().to_string()))
        .collect()
}

/// A Cc that does not parse makes no participant and is said in the thread;
/// a stranger's mail into a ticket adds at most `max_new_participants`.
async fn bad_and_too_many_addresses_make_no_participants(backend: Backend) {
    let d = crate::tickets::desk_with(backend, false, |s| s.ingest.max_new_participants = 5).await;
    let cc = "Juan Perez juan@example.com, a@b@example.com, juan@, bien@ejemplo.test";
    let saved = d.save(&mail_from("Cliente <cliente@ejemplo.test>", "bad-cc", Some(cc))).await;
    let t: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let mut participants = d.app.db.participants_of(t).await.unwrap();
    participants.sort();
    let assignee = d.app.db.find_ticket(t).await.unwrap().unwrap().assignee_id.unwrap();
    let assignee = d.app.db.find_user(assignee).await.unwrap().unwrap().email;
    let mut expected = vec!["bien@ejemplo.test".to_string(), "cliente@ejemplo.test".to_string(), assignee];
    expected.sort();
    assert_eq!(participants, expected);
    let jefa = d.token("jefa").await;
    let dropped = events(&d, t, &jefa).await;
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!(dropped[0].0, "participante_descartado");
    assert_eq!(dropped[0].1, "Juan Perez juan@example.com, a@b@example.com, juan@");

    // A stranger answers (by In-Reply-To) with 43 addresses in Cc.
    let many: Vec<String> = (0..43).map(|i| format!("p{i}@lista.test")).collect();
    let mut stranger = mail_from("Extraño <extrano@otro.test>", "stranger", Some(&many.join(", ")));
    stranger["headers"]["In-Reply-To"] = json!("<bad-cc@cliente.test>");
    let joined = d.save(&stranger).await;
    assert_eq!(joined["ticket"], t.to_string(), "{joined}");
    let after = d.app.db.participants_of(t).await.unwrap();
    assert_eq!(after.len(), participants.len() + 5, "five new at most: {after:?}");
    assert!(after.contains(&"extrano@otro.test".to_string()), "the sender first: {after:?}");
    let skipped = events(&d, t, &jefa).await;
    let (kind, text) = skipped.last().unwrap();
    assert_eq!(kind, "participantes_omitidos");
    assert!(text.contains("p42@lista.test") && !text.contains("p3@lista.test,"), "{text}");

    // The requester and participants add whom they like.
    let mut customer = mail_from("Cliente <cliente@ejemplo.test>", "more", Some(&many[..10].join(", ")));
    customer["headers"]["In-Reply-To"] = json!("<bad-cc@cliente.test>");
    d.save(&customer).await;
    let all = d.app.db.participants_of(t).await.unwrap();
    for p in &many[..10] {
        assert!(all.contains(p), "{p} in {all:?}");
    }
}

/// The reply's delivery as `GET tickets/{id}` tells it.
async fn delivery_of(d: &Desk, t: i64, detail: i64, token: &str) -> Value {
    let (status, shown) = d.get(&format!("tickets/{t}"), token).await;
    assert_eq!(status, 200, "{shown}");
    let details = shown["data"]["detalles"].as_array().unwrap();
    let found = details.iter().find(|x| x["id_detalle_ticket"] == detail).expect("the reply");
    for other in details.iter().filter(|x| x["direccion"] != "saliente") {
        assert!(other.get("entrega").is_none(), "only replies carry a delivery: {other}");
    }
    found["entrega"].clone()
}

/// Polls the reply's delivery until `done` says so (at most 30 s).
async fn delivery_until(d: &Desk, t: i64, detail: i64, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let entrega = delivery_of(d, t, detail, token).await;
        if done(&entrega) || std::time::Instant::now() > deadline {
            return entrega;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Against the real SMTP server (which refuses lines over 998 characters):
/// a reply to a ticket with 45 participants and a participant stored by an
/// older version that does not parse reaches every good address, and its
/// delivery reads `enviado`.
async fn replies_reach_long_and_messy_recipient_lists(backend: Backend) {
    let d = desk(backend, true).await;
    let sink = d.app.smtp.as_ref().expect("an SMTP server");
    let many: Vec<String> =
        (0..45).map(|i| format!("Participante {i} <participante.numero{i}@empresa-cliente.test>")).collect();
    let saved = d.save(&mail_from("Cliente <cliente@ejemplo.test>", "muchos", Some(&many.join(", ")))).await;
    let t: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    // What an older version let in.
    let mut note = helpdesk_domain::testing::contract::sample_detail("vieja-nota", "ana@helpdesk.test");
    note.direction = Direction::Note;
    let now = d.app.clock.now();
    let old = NewReply {
        ticket_id: t,
        detail: note,
        participants: vec!["Juan Perez juan@example.com".into(), "a@b@example.com".into()],
        notices: vec![],
        webhook_events: vec![],
        now,
        notices_due_at: now,
        sla: None,
    };
    d.app.db.store_reply(old).await.unwrap();

    let ana = d.token("ana").await;
    let (status, reply) = d
        .call(
            Method::POST,
            &format!("tickets/{t}/respuestas"),
            Some(&ana),
            Some(json!({"cuerpo": "Respuesta a todos"})),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["message"], "Respuesta registrada; en cola para envío.");
    let detail = reply["data"]["id_detalle_ticket"].as_i64().unwrap();
    let message_id = reply["data"]["message_id"].as_str().unwrap().trim_matches(['<', '>']).to_string();
    let entrega = delivery_until(&d, t, detail, &ana, |e| e["estado"] != "en_cola").await;
    assert_eq!(entrega, json!({"estado": "enviado", "intentos": 1, "motivo": null}));
    let sent: Vec<Vec<u8>> =
        sink.messages().into_iter().filter(|raw| parse(raw).message_id() == Some(message_id.as_str())).collect();
    assert_eq!(sent.len(), 1);
    let m = parse(&sent[0]);
    let mut cc: Vec<&str> = m.cc().unwrap().iter().filter_map(|a| a.address()).collect();
    cc.sort_unstable();
    let mut expected: Vec<String> = (0..45).map(|i| format!("participante.numero{i}@empresa-cliente.test")).collect();
    expected.sort_unstable();
    assert_eq!(cc, expected);
    let raw = String::from_utf8_lossy(&sent[0]);
    // (X-RcptTo is the sink's own note of the envelope, not what we sent.)
    let longest = raw.lines().filter(|l| !l.starts_with("X-RcptTo:")).max_by_key(|l| l.len()).unwrap_or_default();
    assert!(longest.len() <= 998, "folded: {} characters: {longest}", longest.len());
}

/// A reply given up (the mail server unreachable, one attempt allowed):
/// `fallido` with its reason, a thread event, the assignee told, and a
/// `ticket.entrega_fallida` event for the webhooks that want it.
async fn a_reply_that_cannot_be_delivered_says_so(backend: Backend) {
    let d = crate::tickets::desk_with(backend, false, |s| {
        (s.smtp.username, s.smtp.password) = ("mesa".into(), "Secreto-SMTP-2026".into());
        s.outbox.max_attempts = 1;
        s.outbox.poll_interval_ms = 50;
    })
    .await;
    let hook = NewWebhook {
        url: "http://127.0.0.1:9/gancho".into(),
        events: [WebhookEventKind::DeliveryFailed].into_iter().collect(),
        sealed_secret: d.app.keys.secret_box.seal("secreto"),
        status: Status::Active,
        now: d.app.clock.now(),
    };
    d.app.db.create_webhook(hook).await.unwrap();
    let saved = d.save(&customer_mail("f1", "No llega", json!({}))).await;
    let t: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let ana = d.token("ana").await;
    let (status, reply) = d
        .call(Method::POST, &format!("tickets/{t}/respuestas"), Some(&ana), Some(json!({"cuerpo": "¿Sigue igual?"})))
        .await;
    assert_eq!(status, 201, "{reply}");
    let detail = reply["data"]["id_detalle_ticket"].as_i64().unwrap();
    let entrega = delivery_until(&d, t, detail, &ana, |e| e["estado"] == "fallido").await;
    assert_eq!((entrega["estado"].as_str(), entrega["intentos"].as_i64()), (Some("fallido"), Some(1)), "{entrega}");
    let motivo = entrega["motivo"].as_str().unwrap();
    assert!(motivo.starts_with("gave up after 1 attempts"), "{motivo}");
    assert!(!motivo.contains("Secreto-SMTP-2026"), "no secret: {motivo}");
    let said = events(&d, t, &ana).await;
    assert!(said.contains(&("entrega_fallida".to_string(), "cliente@ejemplo.test".to_string())), "{said:?}");
    let assignee = d.app.db.find_ticket(t).await.unwrap().unwrap().assignee_id.unwrap();
    let assignee = d.app.db.find_user(assignee).await.unwrap().unwrap().email;
    let notices = d.app.db.notices_of_detail(detail).await.unwrap();
    let told: Vec<&Notice> = notices.iter().filter(|n| n.kind == NoticeKind::DeliveryFailedMail).collect();
    assert_eq!(told.len(), 1, "{notices:?}");
    assert_eq!(told[0].recipient, assignee);
    assert_eq!(d.app.db.pending_deliveries().await.unwrap(), 1, "one ticket.entrega_fallida delivery queued");
}

crate::on_both_backends!(
    a_copy_of_our_reply_is_that_reply,
    automatic_mail_changes_nothing,
    mail_from_our_own_addresses_is_held,
    our_addresses_are_never_participants,
    bad_and_too_many_addresses_make_no_participants,
    a_reply_that_cannot_be_delivered_says_so,
);

crate::with_smtp_on_both_backends!(replies_reach_long_and_messy_recipient_lists,);
