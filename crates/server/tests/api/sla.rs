//! Service levels end to end: due times in business hours on the ticket API,
//! the first response, the pause while waiting on the customer, escalation
//! exactly once with two servers running their workers, and waiting tickets
//! assigned when an operator becomes available.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use helpdesk_domain::crypto::hash_password;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;
use helpdesk_domain::services::{MessageIdSigner, TicketService};
use helpdesk_domain::testing::ManualClock;
use helpdesk_notify_smtp::testing::parse;
use helpdesk_notify_synology::testing::FakeSynology;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const PASSWORD: &str = "Clave-Segura-2026";

/// Monday 2026-11-30 09:00 in Costa Rica (UTC-6, no daylight saving).
fn monday_nine() -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2026-11-30 15:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
}

struct Desk {
    app: TestApp,
    fake: FakeSynology,
    channel: String,
    ops: String,
    support: i64,
    /// Support operator who takes tickets (Synology id 120).
    ana: i64,
}

/// A help desk on `backend` whose clock stands at Monday 09:00 in Costa
/// Rica, with the policy `normal`: first response in 60 business minutes,
/// resolution in 240, warned at `warning` %. `ana_takes`: whether Ana takes
/// tickets from the start.
async fn desk(backend: Backend, smtp: bool, warning: i64, ana_takes: bool) -> Desk {
    let fake = FakeSynology::start();
    let base = fake.base_url.clone();
    let clock = Arc::new(ManualClock::new(monday_nine()));
    let mut builder = TestApp::builder(backend).with_clock(clock).with_settings(move |s| {
        s.synology.base_url = base;
        s.synology.bot_token = "bot-token".into();
        s.outbox.inline_timeout_ms = 0;
        s.sla.poll_interval_ms = 50;
    });
    if smtp {
        builder = builder.with_smtp();
    }
    let app = builder.spawn().await;
    app.product("mesa").await;
    let channel = app.consumer("canal_lectura", &[Endpoint::MailSave]).await;
    let grants: Vec<Endpoint> = Endpoint::TICKETS.into_iter().chain([Endpoint::SsoAccess]).collect();
    let ops = app.consumer("consola", &grants).await;
    let support = app
        .db
        .create_department(NewDepartment { name: "Soporte".into(), synology_channel: Some("soporte".into()) })
        .await
        .unwrap()
        .id;
    app.db.set_department_webhook(support, Some(app.keys.secret_box.seal("canal-soporte-token"))).await.unwrap();
    app.mailbox("soporte@helpdesk.test", support, false).await;
    let user = |login: &str, takes: bool, manager: i32, synology: Option<i64>| NewInternalUser {
        login: login.into(),
        name: format!("Operador {login}"),
        email: format!("{login}@helpdesk.test"),
        department_id: Some(support),
        can_take_tickets: takes,
        manager,
        synology_id: synology,
        password_hash: Some(hash_password(PASSWORD)),
        ..Default::default()
    };
    let ana = app.db.create_user(user("ana", ana_takes, 0, Some(120))).await.unwrap().id;
    app.db.create_user(user("jefa", false, 1, None)).await.unwrap();
    let policy = NewSlaPolicy {
        department_id: None,
        priority: Priority::Normal,
        first_response_mins: 60,
        resolution_mins: 240,
        warning_pct: Some(warning),
    };
    app.db.save_policy(policy).await.unwrap();
    Desk { app, fake, channel, ops, support, ana }
}

impl Desk {
    async fn save(&self, id: &str, subject: &str) -> i64 {
        let body = json!({
            "sistema": "canal_lectura",
            "subject": subject,
            "from": "Cliente <cliente@ejemplo.test>",
            "to": "soporte@helpdesk.test",
            "body": format!("No imprime ({id})"),
            "date": "2026-11-30 09:00:00",
            "headers": {"Message-ID": format!("<{id}@ejemplo.test>")},
        });
        let (status, body) = json(self.app.post("correo/save", ("canal_lectura", &self.channel), &body).await).await;
        assert_eq!(status, 200, "{body}");
        body["ticket"].as_str().unwrap().parse().unwrap()
    }

    async fn token(&self, login: &str) -> String {
        let body = json!({"product": "mesa", "usuario": login, "password": PASSWORD, "modo": "normal"});
        let (status, body) = json(self.app.post("SSO/access", ("consola", &self.ops), &body).await).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["token"].as_str().unwrap().to_string()
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .app
            .client
            .request(method, format!("{}/api/{path}", self.app.address))
            .header("X-User-Consumo", "consola")
            .header("X-User-Secret", &self.ops)
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        json(req.send().await.unwrap()).await
    }

    /// The ticket's `sla` as the API shows it.
    async fn sla(&self, ticket: i64, token: &str) -> Value {
        let (status, body) = self.call(Method::GET, &format!("tickets/{ticket}"), token, None).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["sla"].clone()
    }

    async fn listed(&self, query: &str, token: &str) -> Vec<i64> {
        let (status, body) = self.call(Method::GET, &format!("tickets?{query}"), token, None).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["tickets"].as_array().unwrap().iter().map(|t| t["id_ticket"].as_i64().unwrap()).collect()
    }

    async fn drained(&self) {
        wait_until("the outbox to drain", Duration::from_secs(30), async || {
            self.app.db.pending_notices().await.unwrap() == 0
        })
        .await;
    }
}

/// The sum of a sample over several servers' `/metrics`.
async fn metric(apps: &[&TestApp], sample: &str) -> u64 {
    let mut sum = 0;
    for app in apps {
        let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
        let line = text.lines().find(|l| l.starts_with(sample)).unwrap_or_else(|| panic!("no {sample} in:\n{text}"));
        sum += line.rsplit(' ').next().unwrap().parse::<u64>().unwrap();
    }
    sum
}

async fn a_ticket_carries_due_times_in_business_hours_and_its_first_response(backend: Backend) {
    let d = desk(backend, false, 80, true).await;
    let t = d.save("c1", "No imprime").await;
    let mut ana = d.token("ana").await;
    let sla = d.sla(t, &ana).await;
    assert_eq!(sla["vence_primera_respuesta"], "2026-11-30 16:00:00", "{sla}");
    assert_eq!(sla["vence_resolucion"], "2026-11-30 19:00:00", "{sla}");
    assert_eq!((&sla["estado"], &sla["primera_respuesta_en"]), (&json!("en_tiempo"), &Value::Null));

    // The first public reply meets the first-response target; a note does not.
    d.app.clock.advance(chrono::Duration::minutes(5));
    let note = json!({"cuerpo": "Revisar el tóner", "interna": true});
    let (status, _) = d.call(Method::POST, &format!("tickets/{t}/respuestas"), &ana, Some(note)).await;
    assert_eq!(status, 201);
    assert_eq!(d.sla(t, &ana).await["primera_respuesta_en"], Value::Null, "a note is no response");
    d.app.clock.advance(chrono::Duration::minutes(5));
    let reply = json!({"cuerpo": "Ya lo revisamos"});
    let (status, _) = d.call(Method::POST, &format!("tickets/{t}/respuestas"), &ana, Some(reply.clone())).await;
    assert_eq!(status, 201);
    let sla = d.sla(t, &ana).await;
    assert_eq!(sla["primera_respuesta_en"], "2026-11-30 15:10:00", "{sla}");
    d.app.clock.advance(chrono::Duration::minutes(5));
    d.call(Method::POST, &format!("tickets/{t}/respuestas"), &ana, Some(reply)).await;
    assert_eq!(d.sla(t, &ana).await["primera_respuesta_en"], "2026-11-30 15:10:00", "the first one counts");

    // Past the first-response due time, answered in time: on time.
    d.app.clock.advance(chrono::Duration::minutes(115)); // 17:10 UTC, 11:10 local
    ana = d.token("ana").await; // the token lives an hour
    assert_eq!(d.sla(t, &ana).await["estado"], "en_tiempo");

    // Waiting on the customer: the clock stands still, and nothing escalates.
    let (status, body) =
        d.call(Method::PATCH, &format!("tickets/{t}"), &ana, Some(json!({"estado": "pendiente"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["sla"]["estado"], "pausado", "{body}");
    d.app.clock.advance(chrono::Duration::hours(22)); // Tuesday 15:10 UTC, 09:10 local
    ana = d.token("ana").await;
    assert_eq!(d.sla(t, &ana).await["estado"], "pausado");
    assert_eq!(d.listed("sla=pausado", &ana).await, vec![t]);
    assert_eq!(d.listed("sla=vencido", &ana).await, Vec::<i64>::new());

    // The customer answers: running again, due times pushed back by the
    // business time it stood still (Monday 11:10-17:00 and Tuesday
    // 08:00-09:10 local: 7 h).
    let body = json!({
        "sistema": "canal_lectura",
        "subject": format!("RE: [Ticket #{t}] No imprime"),
        "from": "cliente@ejemplo.test",
        "to": "soporte@helpdesk.test",
        "body": "Sigue sin imprimir",
        "date": "2026-12-01 09:10:00",
        "headers": {"Message-ID": "<c1-answer@ejemplo.test>"},
    });
    let (status, body) = json(d.app.post("correo/save", ("canal_lectura", &d.channel), &body).await).await;
    assert_eq!(status, 200, "{body}");
    let sla = d.sla(t, &ana).await;
    assert_eq!((&sla["estado"], &sla["pausado_desde"]), (&json!("en_tiempo"), &Value::Null), "{sla}");
    // 240 min + 7 h from Monday 09:00 local: Monday 8 h, Tuesday 3 h: 11:00 local.
    assert_eq!(sla["vence_resolucion"], "2026-12-01 17:00:00", "{sla}");

    // A second ticket, made urgent under a tighter policy, comes first by due time.
    let urgent = NewSlaPolicy {
        department_id: Some(d.support),
        priority: Priority::Urgent,
        first_response_mins: 30,
        resolution_mins: 60,
        warning_pct: None,
    };
    d.app.db.save_policy(urgent).await.unwrap();
    let t2 = d.save("c2", "Sin red").await;
    let t3 = d.save("c3", "Sin correo").await;
    let (status, body) =
        d.call(Method::PATCH, &format!("tickets/{t3}"), &ana, Some(json!({"prioridad": "urgente"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["sla"]["vence_primera_respuesta"], "2026-12-01 15:40:00", "{body}");
    assert_eq!(d.listed("orden=vencimiento", &ana).await, vec![t3, t2, t]);
    // Page by page, in the same order, each ticket once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let q = format!("orden=vencimiento&limite=1{cursor}");
        let (_, body) = d.call(Method::GET, &format!("tickets?{q}"), &ana, None).await;
        seen.extend(body["data"]["tickets"].as_array().unwrap().iter().map(|t| t["id_ticket"].as_i64().unwrap()));
        match body["data"]["siguiente"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, vec![t3, t2, t]);
    let (status, body) = d.call(Method::GET, "tickets?sla=tarde", &ana, None).await;
    assert_eq!(status, 422, "{body}");
    let newest_cursor = {
        let (_, body) = d.call(Method::GET, "tickets?limite=1", &ana, None).await;
        body["data"]["siguiente"].as_str().unwrap().to_string()
    };
    let (status, _) =
        d.call(Method::GET, &format!("tickets?orden=vencimiento&cursor={newest_cursor}"), &ana, None).await;
    assert_eq!(status, 422, "a cursor of another order");

    // The latest activity first: a change later moves the oldest ticket to
    // the head, page by page too.
    d.app.clock.advance(chrono::Duration::minutes(1));
    let (status, body) = d.call(Method::PATCH, &format!("tickets/{t}"), &ana, Some(json!({"prioridad": "alta"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(d.listed("orden=actividad", &ana).await, vec![t, t3, t2]);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (_, body) = d.call(Method::GET, &format!("tickets?orden=actividad&limite=1{cursor}"), &ana, None).await;
        seen.extend(body["data"]["tickets"].as_array().unwrap().iter().map(|t| t["id_ticket"].as_i64().unwrap()));
        match body["data"]["siguiente"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, vec![t, t3, t2]);
}

/// Two servers on one database, one clock, both running their workers: each
/// threshold is announced once.
async fn thresholds_are_announced_exactly_once_by_two_servers(backend: Backend) {
    let d = desk(backend, true, 50, true).await;
    let base = d.fake.base_url.clone();
    let (url, smtp_port) = (d.app.settings.database.url.clone(), d.app.settings.smtp.port);
    let second = TestApp::builder(backend)
        .with_clock(d.app.clock.clone())
        .with_settings(move |s| {
            s.database.url = url;
            s.smtp.port = smtp_port;
            s.synology.base_url = base;
            s.synology.bot_token = "bot-token".into();
            s.outbox.inline_timeout_ms = 0;
            s.sla.poll_interval_ms = 50;
        })
        .spawn()
        .await;
    let sink = d.app.smtp.as_ref().unwrap();
    let t = d.save("c1", "No imprime").await;
    d.drained().await;
    let (mails, calls) = (sink.messages().len(), d.fake.calls().len());
    let alerts = |from: usize, word: &str| -> Vec<(String, String)> {
        d.fake.calls()[from..]
            .iter()
            .filter(|c| c.payload["text"].as_str().unwrap_or_default().contains(word))
            .map(|c| (c.method.clone(), c.token.clone()))
            .collect()
    };
    let rounds = || tokio::time::sleep(Duration::from_millis(600));

    // Half the first-response time: warned once, on Synology only.
    d.app.clock.advance(chrono::Duration::minutes(31));
    wait_until("the warnings", Duration::from_secs(30), async || alerts(calls, "por vencer").len() >= 2).await;
    rounds().await;
    d.drained().await;
    let mut warned = alerts(calls, "por vencer");
    warned.sort();
    assert_eq!(
        warned,
        vec![("chatbot".to_string(), "bot-token".to_string()), ("incoming".into(), "canal-soporte-token".into())],
        "once to the assignee, once to the channel"
    );
    assert_eq!(sink.messages().len(), mails, "no e-mail for a warning");
    let ana = d.token("ana").await;
    assert_eq!(d.sla(t, &ana).await["estado"], "por_vencer");

    // Past the due time: the breach, once, on Synology and by e-mail to the
    // assignee and the department's jefa.
    let calls = d.fake.calls().len();
    d.app.clock.advance(chrono::Duration::minutes(30));
    wait_until("the breach", Duration::from_secs(30), async || alerts(calls, "vencido").len() >= 2).await;
    let breach_mails = sink.wait_for(mails + 2, Duration::from_secs(30)).await;
    rounds().await;
    d.drained().await;
    assert_eq!(alerts(calls, "vencido").len(), 2, "{:?}", d.fake.calls());
    assert_eq!(d.fake.calls().len(), calls + 2, "nothing else on Synology");
    let breach_mails = &breach_mails[mails..];
    assert_eq!(sink.messages().len(), mails + 2, "two e-mails, once each");
    let mut to: Vec<String> = breach_mails
        .iter()
        .map(|raw| {
            let m = parse(raw);
            assert!(m.subject().unwrap().contains(&format!("[Ticket #{t}]")), "{:?}", m.subject());
            m.to().unwrap().first().unwrap().address().unwrap().to_string()
        })
        .collect();
    to.sort();
    assert_eq!(to, vec!["ana@helpdesk.test", "jefa@helpdesk.test"]);
    assert_eq!(metric(&[&d.app, &second], "helpdesk_sla_breaches_total").await, 1, "one breach in all");
    assert_eq!(metric(&[&d.app], "helpdesk_sla_tickets{estado=\"vencido\"}").await, 1);
    assert_eq!(d.sla(t, &ana).await["estado"], "vencido");
    assert_eq!(d.listed("sla=vencido", &ana).await, vec![t]);
    assert_eq!(d.listed("sla=en_tiempo", &ana).await, Vec::<i64>::new());
}

/// A ticket that arrives when nobody takes tickets waits; it goes to the
/// first operator who does; deactivating that operator hands it on.
async fn waiting_tickets_follow_who_is_available(backend: Backend) {
    let d = desk(backend, false, 80, false).await;
    let t = d.save("c1", "No imprime").await;
    assert_eq!(d.app.db.find_ticket(t).await.unwrap().unwrap().assignee_id, None, "nobody takes tickets");
    d.app.db.set_takes_tickets(d.ana, true).await.unwrap();
    wait_until("the waiting ticket to be assigned", Duration::from_secs(30), async || {
        d.app.db.find_ticket(t).await.unwrap().unwrap().assignee_id == Some(d.ana)
    })
    .await;
    let events = d.app.db.events_of(t).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].kind, events[0].actor_id, events[0].after.clone()),
        (EventKind::Assignee, None, Some(d.ana.to_string()))
    );

    // Ana leaves; Bea takes over her open tickets.
    let bea = d
        .app
        .db
        .create_user(NewInternalUser {
            login: "bea".into(),
            name: "Bea".into(),
            email: "bea@helpdesk.test".into(),
            department_id: Some(d.support),
            can_take_tickets: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    d.app.db.set_user_status(d.ana, UserStatus::Inactive).await.unwrap();
    let ids = MessageIdSigner::new(d.app.keys.consumer_hmac.clone(), &d.app.settings.ingest.message_id_domain);
    let tickets = TicketService::new(d.app.db.clone(), ids, d.app.clock.clone(), true, Duration::ZERO);
    assert_eq!(tickets.release(d.ana).await.unwrap(), 1);
    assert_eq!(d.app.db.find_ticket(t).await.unwrap().unwrap().assignee_id, Some(bea));
    assert_eq!(tickets.release(d.ana).await.unwrap(), 0, "nothing left to hand on");
}

crate::on_both_backends!(
    a_ticket_carries_due_times_in_business_hours_and_its_first_response,
    waiting_tickets_follow_who_is_available
);
crate::with_smtp_on_both_backends!(thresholds_are_announced_exactly_once_by_two_servers);
