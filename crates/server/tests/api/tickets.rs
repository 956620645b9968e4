//! The operators' ticket API: list, show, reply, note, change, attachment,
//! with consumer credentials and an operator's token on every call.

use std::time::Duration;

use helpdesk_domain::crypto::hash_password;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;
use helpdesk_notify_smtp::testing::parse;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

pub(crate) const PASSWORD: &str = "Clave-Segura-2026";

pub(crate) struct Desk {
    pub app: TestApp,
    /// The reading channel's consumer (`correo/save`).
    pub channel: String,
    /// The operators' application: SSO login and the ticket API.
    pub ops: String,
    pub support: i64,
    pub sales: i64,
    /// Support operators who take tickets.
    pub ana: i64,
    pub carla: i64,
    /// A sales operator.
    pub beto: i64,
}

pub(crate) async fn desk(backend: Backend, smtp: bool) -> Desk {
    desk_with(backend, smtp, |_| {}).await
}

/// [`desk`], with settings of the test's own.
pub(crate) async fn desk_with(
    backend: Backend,
    smtp: bool,
    tweak: impl FnOnce(&mut helpdesk_server::settings::Settings) + 'static,
) -> Desk {
    let storage = scratch_dir("adjuntos");
    let dir = storage.clone();
    let mut builder = TestApp::builder(backend).with_settings(move |s| {
        s.reader.storage_dir = dir;
        // The worker delivers; the request answers at once.
        s.outbox.inline_timeout_ms = 0;
        tweak(s);
    });
    if smtp {
        builder = builder.with_smtp();
    }
    let app = builder.spawn().await;
    app.product("mesa").await;
    let channel = app.consumer("canal_lectura", &[Endpoint::MailSave]).await;
    let grants: Vec<Endpoint> = Endpoint::TICKETS.into_iter().chain([Endpoint::SsoAccess]).collect();
    let ops = app.consumer("consola", &grants).await;
    let support =
        app.db.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let sales =
        app.db.create_department(NewDepartment { name: "Ventas".into(), synology_channel: None }).await.unwrap().id;
    for (user, dep) in [("soporte@helpdesk.test", support), ("ventas@helpdesk.test", sales)] {
        app.mailbox(user, dep, false).await;
    }
    let user = |login: &str, department: Option<i64>, takes: bool, manager: i32| NewInternalUser {
        login: login.into(),
        name: format!("Operador {login}"),
        email: format!("{login}@helpdesk.test"),
        department_id: department,
        can_take_tickets: takes,
        manager,
        password_hash: Some(hash_password(PASSWORD)),
        ..Default::default()
    };
    let ana = app.db.create_user(user("ana", Some(support), true, 0)).await.unwrap().id;
    let beto = app.db.create_user(user("beto", Some(sales), true, 0)).await.unwrap().id;
    let carla = app.db.create_user(user("carla", Some(support), true, 0)).await.unwrap().id;
    app.db.create_user(user("jefa", None, false, 1)).await.unwrap();
    app.db.create_user(user("nadie", None, false, 0)).await.unwrap();
    std::fs::create_dir_all(storage.join("logs")).unwrap();
    std::fs::write(storage.join("logs/error_log.txt"), b"linea 1\nlinea 2\n").unwrap();
    Desk { app, channel, ops, support, sales, ana, carla, beto }
}

pub(crate) fn customer_mail(id: &str, subject: &str, extra_headers: Value) -> Value {
    let mut headers = json!({"Message-ID": format!("<{id}@cliente.test>")});
    for (k, v) in extra_headers.as_object().cloned().unwrap_or_default() {
        headers[k] = v;
    }
    json!({
        "sistema": "canal_lectura",
        "subject": subject,
        "from": "Cliente <cliente@ejemplo.test>",
        "to": "soporte@helpdesk.test",
        "cc": "otro@ejemplo.test",
        "body": format!("La impresora del camión no imprime ({id})"),
        "date": "2025-10-10 12:00:00",
        "headers": headers,
        "attachments": [{"name": "error_log.txt", "route": "logs/error_log.txt", "type": "text/plain"}]
    })
}

impl Desk {
    pub(crate) async fn save(&self, body: &Value) -> Value {
        let (status, body) = json(self.app.post("correo/save", ("canal_lectura", &self.channel), body).await).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub(crate) async fn token(&self, login: &str) -> String {
        let body = json!({"product": "mesa", "usuario": login, "password": PASSWORD, "modo": "normal"});
        let (status, body) = json(self.app.post("SSO/access", ("consola", &self.ops), &body).await).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["token"].as_str().unwrap().to_string()
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .app
            .client
            .request(method, format!("{}/api/{path}", self.app.address))
            .header("X-User-Consumo", "consola")
            .header("X-User-Secret", &self.ops);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        json(req.send().await.unwrap()).await
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }
}

fn ids(list: &Value) -> Vec<i64> {
    list["data"]["tickets"].as_array().unwrap().iter().map(|t| t["id_ticket"].as_i64().unwrap()).collect()
}

async fn operators_see_their_department_and_work_its_tickets(backend: Backend) {
    let d = desk(backend, false).await;
    let saved = d.save(&customer_mail("c1", "No imprime", json!({}))).await;
    let t: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let (ana, beto, jefa) = (d.token("ana").await, d.token("beto").await, d.token("jefa").await);

    // Who may see it.
    let (status, list) = d.get("tickets", &ana).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(ids(&list), vec![t]);
    assert_eq!(list["code"], 200);
    assert!(list["id_bitacora_log"].is_i64(), "{list}");
    assert_eq!(list["data"]["siguiente"], Value::Null);
    let (_, list) = d.get("tickets", &beto).await;
    assert_eq!(ids(&list), Vec::<i64>::new(), "another department's tickets are not listed");
    let (_, list) = d.get("tickets", &jefa).await;
    assert_eq!(ids(&list), vec![t], "a jefe sees every department");
    let before = d.app.fingerprint();
    let (status, body) = d.get(&format!("tickets/{t}"), &beto).await;
    assert_eq!((status, body["message"].as_str()), (404, Some("Ticket no encontrado.")), "{body}");
    let (status, absent) = d.get("tickets/999999", &beto).await;
    assert_eq!((status, &absent["message"]), (404, &body["message"]), "as if absent");
    let (status, _) =
        d.call(Method::PATCH, &format!("tickets/{t}"), Some(&beto), Some(json!({"estado": "cerrado"}))).await;
    assert_eq!(status, 404);
    let (status, _) =
        d.call(Method::POST, &format!("tickets/{t}/respuestas"), Some(&beto), Some(json!({"cuerpo": "x"}))).await;
    assert_eq!(status, 404);
    assert_eq!(before, d.app.fingerprint(), "refusals write nothing");

    // No token, a bad one, not an operator.
    let (status, body) = d.call(Method::GET, "tickets", None, None).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("Token de usuario inválido o expirado.")), "{body}");
    let (status, _) = d.get("tickets", "eyJhbGciOiJIUzI1NiJ9.e30.x").await;
    assert_eq!(status, 401);
    let nadie = d.token("nadie").await;
    let (status, body) = d.get("tickets", &nadie).await;
    assert_eq!(status, 403, "{body}");
    // A consumer without the grant, even with a good token.
    let other = d.app.consumer("solo_sso", &[Endpoint::SsoAccess]).await;
    let res = d
        .app
        .client
        .get(format!("{}/api/tickets", d.app.address))
        .header("X-User-Consumo", "solo_sso")
        .header("X-User-Secret", &other)
        .bearer_auth(&ana)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // The thread.
    let (status, shown) = d.get(&format!("tickets/{t}"), &ana).await;
    assert_eq!(status, 200, "{shown}");
    let data = &shown["data"];
    assert_eq!((data["id_ticket"].as_i64(), data["estado"].as_str()), (Some(t), Some("abierto")));
    assert_eq!((data["prioridad"].as_str(), data["id_departamento"].as_i64()), (Some("normal"), Some(d.support)));
    let detail = &data["detalles"][0];
    assert_eq!(detail["direccion"], "entrante");
    assert_eq!(detail["message_id"], "c1@cliente.test");
    assert_eq!(detail["adjuntos"][0]["nombre"], "error_log.txt");
    assert!(detail["adjuntos"][0].get("ruta").is_none(), "the storage route stays inside");
    let participants: Vec<&str> = data["participantes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(participants.contains(&"cliente@ejemplo.test") && participants.contains(&"otro@ejemplo.test"));

    // A note: stored, never mailed.
    let (status, note) = d
        .call(
            Method::POST,
            &format!("tickets/{t}/respuestas"),
            Some(&ana),
            Some(json!({"cuerpo": "Revisar el tóner", "interna": true})),
        )
        .await;
    assert_eq!((status, note["code"].as_i64()), (201, Some(201)), "{note}");
    let note_id = note["data"]["id_detalle_ticket"].as_i64().unwrap();
    assert!(d.app.db.notices_of_detail(note_id).await.unwrap().is_empty(), "a note queues nothing");
    let stored = d.app.db.find_detail(note_id).await.unwrap().unwrap();
    assert_eq!((stored.direction, stored.author_id), (Direction::Note, Some(d.ana)));

    // Validation, in Laravel's words.
    let (status, body) = d.call(Method::PATCH, &format!("tickets/{t}"), Some(&ana), Some(json!({}))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["message"],
        "The estado field is required when none of asignado / departamento / prioridad are present. (and 3 more errors)"
    );
    let (status, body) = d.get("tickets?estado=archivado&limite=500", &ana).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"]["estado"][0], "The selected estado is invalid.");
    assert_eq!(body["errors"]["limite"][0], "The limite field must not be greater than 100.");
    let (status, body) = d.get("tickets/abc", &ana).await;
    assert_eq!((status, body["errors"]["id"][0].as_str()), (422, Some("The id field must be an integer.")));
    let (status, body) =
        d.call(Method::PATCH, &format!("tickets/{t}"), Some(&ana), Some(json!({"asignado": d.beto}))).await;
    assert_eq!((status, body["errors"]["asignado"][0].as_str()), (422, Some("The selected asignado is invalid.")));

    // Changes: each a thread event; the open-ticket counts follow.
    let assignee = d.app.db.find_ticket(t).await.unwrap().unwrap().assignee_id.expect("assigned on arrival");
    let other = if assignee == d.ana { d.carla } else { d.ana };
    let (status, changed) = d
        .call(
            Method::PATCH,
            &format!("tickets/{t}"),
            Some(&ana),
            Some(json!({"asignado": other, "prioridad": "alta", "estado": "pendiente"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["data"]["id_usuario_asignado"].as_i64(), changed["data"]["prioridad"].as_str()),
        (Some(other), Some("alta"))
    );
    let loads = d.app.db.operator_loads(d.support).await.unwrap();
    let load = |id: i64| loads.iter().find(|l| l.user.id == id).map(|l| l.open_tickets);
    assert_eq!((load(other), load(assignee)), (Some(1), Some(0)), "the count moved with the ticket");
    let (_, closed) =
        d.call(Method::PATCH, &format!("tickets/{t}"), Some(&ana), Some(json!({"estado": "cerrado"}))).await;
    assert_eq!(closed["data"]["estado"], "cerrado");
    assert!(closed["data"]["cerrado"].is_string(), "{closed}");
    let loads = d.app.db.operator_loads(d.support).await.unwrap();
    assert_eq!(loads.iter().map(|l| l.open_tickets).sum::<i64>(), 0, "a closed ticket counts for nobody");
    let (_, shown) = d.get(&format!("tickets/{t}"), &ana).await;
    // (tipo, antes, despues, id_usuario)
    type Event = (String, Option<String>, Option<String>, Option<i64>);
    let events: Vec<Event> = shown["data"]["eventos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["tipo"].as_str().unwrap().to_string(),
                e["antes"].as_str().map(str::to_string),
                e["despues"].as_str().map(str::to_string),
                e["id_usuario"].as_i64(),
            )
        })
        .collect();
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        events,
        vec![
            ("estado".into(), s("abierto"), s("pendiente"), Some(d.ana)),
            ("asignado".into(), s(&assignee.to_string()), s(&other.to_string()), Some(d.ana)),
            ("prioridad".into(), s("normal"), s("alta"), Some(d.ana)),
            ("estado".into(), s("pendiente"), s("cerrado"), Some(d.ana)),
        ]
    );

    // Filters and pages: twelve more tickets, pages of five, each once.
    for i in 0..12 {
        d.save(&customer_mail(&format!("p{i}"), &format!("Pedido {i}"), json!({}))).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("tickets?limite=5&cursor={c}"),
            None => "tickets?limite=5".to_string(),
        };
        let (status, page) = d.get(&path, &ana).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        // A ticket arriving meanwhile does not shift the pages.
        if cursor.is_none() {
            d.save(&customer_mail("tarde", "Llegó tarde", json!({}))).await;
        }
        match page["data"]["siguiente"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "newest first, each once");
    assert_eq!(seen.len(), 13, "the twelve and the first, not the late one");
    let (_, closed_list) = d.get("tickets?estado=cerrado", &ana).await;
    assert_eq!(ids(&closed_list), vec![t]);
    let (_, found) = d.get("tickets?texto=CAMION%20impresora&limite=100", &ana).await;
    assert_eq!(ids(&found).len(), 14, "accent- and case-insensitive, every word: {found}");
    let (_, found) = d.get("tickets?texto=tarde", &ana).await;
    assert_eq!(ids(&found).len(), 1, "{found}");
    let (status, found) = d.get("tickets?texto=%22%29%28*%20-OR%20NEAR", &ana).await;
    assert_eq!((status, ids(&found)), (200, vec![]), "hostile search text: {found}");
    let (status, body) = d.get("tickets?cursor=basura", &ana).await;
    assert_eq!((status, body["errors"]["cursor"][0].as_str()), (422, Some("The cursor field format is invalid.")));
    // A customer's tickets: those their address takes part in.
    let (_, theirs) = d.get("tickets?participante=CLIENTE@ejemplo.test&limite=100", &ana).await;
    assert_eq!(ids(&theirs).len(), 14, "{theirs}");
    let (_, theirs) = d.get("tickets?participante=nadie@ejemplo.test", &ana).await;
    assert_eq!(ids(&theirs), Vec::<i64>::new(), "{theirs}");
    let (status, body) = d.get("tickets?participante=cliente", &ana).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["errors"]["participante"].is_array(), "{body}");
    let _ = d.sales;
}

async fn attachments_come_from_the_storage_only(backend: Backend) {
    let d = desk(backend, false).await;
    let saved = d.save(&customer_mail("a1", "Adjunto", json!({}))).await;
    let t: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let detail: i64 = saved["id_detalle_ticket"].as_str().unwrap().parse().unwrap();
    let attachment = d.app.db.attachments_of(detail).await.unwrap()[0].id;
    let ana = d.token("ana").await;
    let url = |path: String| format!("{}/api/{path}", d.app.address);
    let get = |path: String, token: String| {
        d.app
            .client
            .get(url(path))
            .header("X-User-Consumo", "consola")
            .header("X-User-Secret", &d.ops)
            .bearer_auth(token)
            .send()
    };
    let res = get(format!("tickets/{t}/adjuntos/{attachment}"), ana.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"), "{:?}", res.headers());
    assert_eq!(res.headers()["content-disposition"], "attachment; filename=\"error_log.txt\"");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"linea 1\nlinea 2\n");
    // Declared types are not trusted: only inert ones are served as such,
    // always as a sandboxed download kept by no cache, under a clean name.
    let storage = d.app.settings.reader.storage_dir.clone();
    std::fs::write(storage.join("logs/pagina.html"), b"<script>alert(1)</script>").unwrap();
    let hostile = [
        ("pagina.html", "text/html", "application/octet-stream"),
        ("dibujo.svg", "image/svg+xml", "application/octet-stream"),
        ("codigo.js", "application/javascript", "application/octet-stream"),
        ("texto.txt", "text/plain; charset=utf-7", "application/octet-stream"),
        ("foto.png", "IMAGE/PNG", "image/png"),
        ("factura\u{202E}fdp.exe", "application/pdf", "application/pdf"),
    ];
    let mut mail = customer_mail("hostil", "Adjuntos hostiles", json!({}));
    mail["attachments"] = hostile
        .iter()
        .map(|(name, declared, _)| json!({"name": name, "route": "logs/pagina.html", "type": declared}))
        .collect();
    let saved = d.save(&mail).await;
    let hostile_ticket: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let hostile_detail: i64 = saved["id_detalle_ticket"].as_str().unwrap().parse().unwrap();
    let stored = d.app.db.attachments_of(hostile_detail).await.unwrap();
    for (a, (name, declared, served)) in stored.iter().zip(hostile) {
        let res = get(format!("tickets/{hostile_ticket}/adjuntos/{}", a.id), ana.clone()).await.unwrap();
        assert_eq!(res.status(), 200);
        let h = res.headers();
        assert_eq!(h["content-type"], served, "{declared}");
        assert_eq!(h["content-security-policy"], "sandbox");
        assert_eq!(h["cache-control"], "private, no-store");
        let disposition = h["content-disposition"].to_str().unwrap();
        assert!(disposition.starts_with("attachment;"), "{disposition}");
        assert!(!disposition.contains("%E2%80%AE"), "no right-to-left override in {name:?}: {disposition}");
    }
    let (_, shown) = d.get(&format!("tickets/{hostile_ticket}"), &ana).await;
    let res = get(format!("tickets/{hostile_ticket}"), ana.clone()).await.unwrap();
    assert_eq!(res.headers()["cache-control"], "private, no-store", "{shown}");
    // Another ticket's number with this attachment, unknown ids, a path.
    let other = d.save(&customer_mail("a2", "Otro", json!({}))).await;
    let other: i64 = other["ticket"].as_str().unwrap().parse().unwrap();
    let res = get(format!("tickets/{other}/adjuntos/{attachment}"), ana.clone()).await.unwrap();
    assert_eq!(res.status(), 404);
    let res = get(format!("tickets/{t}/adjuntos/987654"), ana.clone()).await.unwrap();
    assert_eq!(res.status(), 404);
    let res = get(format!("tickets/{t}/adjuntos/..%2F..%2F..%2Fetc%2Fpasswd"), ana.clone()).await.unwrap();
    assert_eq!(res.status(), 422, "not an id");
    // A link inside the storage that leads outside it is not followed.
    #[cfg(unix)]
    {
        let storage = d.app.settings.reader.storage_dir.clone();
        let outside = scratch_dir("fuera").join("secreto.txt");
        std::fs::write(&outside, b"no debe salir").unwrap();
        std::os::unix::fs::symlink(&outside, storage.join("logs/enlace.txt")).unwrap();
        let mut mail = customer_mail("a3", "Enlace", json!({}));
        mail["attachments"] = json!([{"name": "enlace.txt", "route": "logs/enlace.txt", "type": "text/plain"}]);
        let saved = d.save(&mail).await;
        let detail: i64 = saved["id_detalle_ticket"].as_str().unwrap().parse().unwrap();
        let linked = d.app.db.attachments_of(detail).await.unwrap()[0].id;
        let t3: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
        let res = get(format!("tickets/{t3}/adjuntos/{linked}"), ana.clone()).await.unwrap();
        assert_eq!(res.status(), 404);
    }
    // Another department's operator: absent.
    let beto = d.token("beto").await;
    let res = get(format!("tickets/{t}/adjuntos/{attachment}"), beto).await.unwrap();
    assert_eq!(res.status(), 404);
}

/// A token follows its account through the admin service: deactivated,
/// the user's tokens die and stay dead when they are activated again; a
/// product's access revoked, or the product made inactive, ends them too.
async fn tokens_follow_the_account(backend: Backend) {
    use helpdesk_domain::services::AdminService;
    let d = desk(backend, false).await;
    d.save(&customer_mail("c1", "No imprime", json!({}))).await;
    let admin = AdminService::new(d.app.db.clone());
    let now = d.app.clock.now();
    let ana = d.token("ana").await;
    assert_eq!(d.get("tickets", &ana).await.0, 200);
    admin.set_user_status(d.ana, UserStatus::Inactive, now).await.unwrap();
    assert_eq!(d.get("tickets", &ana).await.0, 401);
    admin.set_user_status(d.ana, UserStatus::Active, now).await.unwrap();
    assert_eq!(d.get("tickets", &ana).await.0, 401, "activated again, the old token stays dead");

    let ana = d.token("ana").await;
    assert_eq!(d.get("tickets", &ana).await.0, 200);
    let restricted = ProductChange { access: Some(ProductAccess::Granted), ..Default::default() };
    let mesa = d.app.db.update_product("mesa", restricted).await.unwrap();
    assert_eq!(d.get("tickets", &ana).await.0, 401, "no grant for a restricted product");
    admin.set_product_grant(d.ana, mesa.id, true, now).await.unwrap();
    let ana = d.token("ana").await;
    assert_eq!(d.get("tickets", &ana).await.0, 200);
    admin.set_product_grant(d.ana, mesa.id, false, now).await.unwrap();
    admin.set_product_grant(d.ana, mesa.id, true, now).await.unwrap();
    assert_eq!(d.get("tickets", &ana).await.0, 401, "revoked with its access, granted again or not");

    let ana = d.token("ana").await;
    let inactive = ProductChange { status: Some(Status::Inactive), ..Default::default() };
    d.app.db.update_product("mesa", inactive).await.unwrap();
    assert_eq!(d.get("tickets", &ana).await.0, 401, "an inactive product's token");
}

crate::on_both_backends!(
    operators_see_their_department_and_work_its_tickets,
    attachments_come_from_the_storage_only,
    tokens_follow_the_account
);

/// The mail side, against the real SMTP server: a public reply goes out once,
/// threaded; the customer's answer comes back into the ticket and reopens it;
/// a reassignment mails the new assignee.
async fn a_reply_is_mailed_once_and_the_answer_threads_back(backend: Backend) {
    let d = desk(backend, true).await;
    let sink = d.app.smtp.as_ref().expect("an SMTP server");
    let saved = d.save(&customer_mail("c1", "No imprime", json!({}))).await;
    let t: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let ana = d.token("ana").await;
    let (status, reply) = d
        .call(
            Method::POST,
            &format!("tickets/{t}/respuestas"),
            Some(&ana),
            Some(json!({"cuerpo": "Hola: ya cambiamos el tóner.", "cc": "Jefe <jefe@ejemplo.test>"})),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    let message_id = reply["data"]["message_id"].as_str().unwrap().to_string();
    assert!(message_id.starts_with(&format!("<ticket{t}.")), "{message_id}");
    let ours = |raw: &Vec<u8>| parse(raw).message_id() == Some(message_id.trim_matches(['<', '>']));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !sink.messages().iter().any(ours) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for a second copy to show up, were there one.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let copies: Vec<Vec<u8>> = sink.messages().into_iter().filter(ours).collect();
    assert_eq!(copies.len(), 1, "exactly once");
    let m = parse(&copies[0]);
    assert_eq!(m.subject(), Some(format!("[Ticket #{t}] Re: No imprime").as_str()));
    let to: Vec<&str> = m.to().unwrap().iter().filter_map(|a| a.address()).collect();
    assert_eq!(to, vec!["cliente@ejemplo.test"]);
    let mut cc: Vec<&str> = m.cc().unwrap().iter().filter_map(|a| a.address()).collect();
    cc.sort_unstable();
    assert_eq!(cc, vec!["jefe@ejemplo.test", "otro@ejemplo.test"]);
    assert_eq!(m.in_reply_to().as_text(), Some("c1@cliente.test"));
    let references: Vec<String> = match m.references().as_text_list() {
        Some(list) => list.iter().map(|r| r.to_string()).collect(),
        None => m.references().as_text().map(|r| vec![r.to_string()]).unwrap_or_default(),
    };
    assert_eq!(references, vec!["c1@cliente.test"], "References");
    assert!(m.header("Auto-Submitted").is_none(), "a human reply");
    assert!(m.body_text(0).unwrap().contains("ya cambiamos el tóner"));

    // Closed, then the customer answers our mail: back in the same ticket, open.
    let (status, _) =
        d.call(Method::PATCH, &format!("tickets/{t}"), Some(&ana), Some(json!({"estado": "cerrado"}))).await;
    assert_eq!(status, 200);
    let answer = customer_mail("c2", "Re: [Ticket] No imprime", json!({"In-Reply-To": message_id.clone()}));
    let saved = d.save(&answer).await;
    assert_eq!(saved["message"], format!("Se ha agregado el detalle al ticket {t}"), "{saved}");
    let (_, shown) = d.get(&format!("tickets/{t}"), &ana).await;
    assert_eq!(shown["data"]["estado"], "abierto", "the answer reopened it");
    let directions: Vec<&str> =
        shown["data"]["detalles"].as_array().unwrap().iter().filter_map(|x| x["direccion"].as_str()).collect();
    assert_eq!(directions, vec!["entrante", "saliente", "entrante"]);

    // Reassigned (by the jefa): the new assignee is mailed.
    let assignee = d.app.db.find_ticket(t).await.unwrap().unwrap().assignee_id.unwrap();
    let other = if assignee == d.ana { d.carla } else { d.ana };
    let other_address = if other == d.ana { "ana@helpdesk.test" } else { "carla@helpdesk.test" };
    let jefa = d.token("jefa").await;
    let (status, _) =
        d.call(Method::PATCH, &format!("tickets/{t}"), Some(&jefa), Some(json!({"asignado": other}))).await;
    assert_eq!(status, 200);
    let assigned = |raw: &Vec<u8>| {
        let m = parse(raw);
        m.subject().is_some_and(|s| s.contains("Ticket asignado"))
            && m.to().is_some_and(|to| to.iter().any(|a| a.address() == Some(other_address)))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !sink.messages().iter().any(assigned) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sink.messages().iter().filter(|m| assigned(m)).count(), 1, "the new assignee is told once");
}

crate::with_smtp_on_both_backends!(a_reply_is_mailed_once_and_the_answer_threads_back);
