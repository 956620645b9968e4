//! Mail that comes back: copies of our own replies, mail from our own
//! addresses, automatic mail. None of it may loop, notify or reopen.

use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;
use reqwest::Method;
use serde_json::{Value, json};

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

crate::on_both_backends!(a_copy_of_our_reply_is_that_reply, automatic_mail_changes_nothing);
