//! The operators' console (`/consola/`) as a browser without JavaScript
//! sees it: the rendered HTML, its headers and cookies, on both backends.
//! (The browser suite drives the same pages in Chromium.)

use helpdesk_domain::model::{NewSlaPolicy, Priority};
use helpdesk_domain::ports::{AuditRepository, SlaRepository, TicketRepository};
use serde_json::json;

use crate::helpers::*;
use crate::tickets::{PASSWORD, customer_mail, desk, desk_with};

/// A browser without a cookie jar of its own: the test carries the cookies.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> String {
        self.headers.get_all(name).iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>().join("\n")
    }

    fn location(&self) -> String {
        self.header("location")
    }

    /// The value of the form field `name` (the first).
    fn field(&self, name: &str) -> String {
        let at =
            self.body.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name}: {}", self.body));
        let rest = &self.body[at + name.len() + 15..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { http, base: app.address.clone(), cookies: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let res = req.header("Cookie", self.cookie_header()).send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        for set in headers.get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, _) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            let removed = set.contains("Max-Age=0") || set.contains("max-age=0") || value.is_empty();
            if !removed {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
        Page { status, headers, body: res.text().await.unwrap() }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(format!("{}{path}", self.base)).header("Origin", self.base.clone()).form(form);
        self.send(req).await
    }

    /// [`Self::post`] with owned pairs.
    async fn post_owned(&mut self, path: &str, form: &[(String, String)]) -> Page {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.post(path, &pairs).await
    }

    /// A change form: `fields` and the values ticket `id`'s page shows now
    /// (`visto_*`).
    async fn as_seen(&mut self, id: i64, fields: &[(&str, &str)]) -> Vec<(String, String)> {
        let page = self.get(&format!("/consola/tickets/{id}")).await;
        let mut form: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for k in ["visto_estado", "visto_asignado", "visto_prioridad", "visto_departamento"] {
            form.push((k.to_string(), page.field(k)));
        }
        form
    }

    fn has(&self, cookie: &str) -> bool {
        self.cookies.iter().any(|(k, _)| k == cookie)
    }

    /// Signs in as `login` with the desk's password.
    async fn sign_in(&mut self, login: &str) -> Page {
        let form = self.get("/consola/entrar").await;
        let token = form.field("csrf");
        self.post("/consola/entrar", &[("csrf", &token), ("usuario", login), ("contrasena", PASSWORD)]).await
    }
}

/// The sign-in page: labelled fields, its own CSRF cookie, the console's
/// headers, and assets served under their fingerprint.
async fn the_sign_in_page_is_labelled_and_locked_down(backend: Backend) {
    let d = desk(backend, false).await;
    let mut b = Browser::new(&d.app);
    let page = b.get("/consola/entrar").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for needle in [
        "<label for=\"usuario\">Usuario</label>",
        "<input id=\"usuario\" name=\"usuario\"",
        "<label for=\"contrasena\">Contraseña</label>",
        "<input id=\"contrasena\" name=\"contrasena\" type=\"password\"",
        "<button type=\"submit\">Entrar</button>",
        "<html lang=\"es\">",
    ] {
        assert!(page.body.contains(needle), "{needle} missing: {}", page.body);
    }
    let csp = page.header("content-security-policy");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !page.body.contains("<script>"), "{csp}");
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert_eq!(page.header("cache-control"), "no-store");
    let set = page.header("set-cookie");
    assert!(
        set.starts_with("consola_entrada=") && set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(set.contains("Path=/consola") && !set.contains("Secure"), "http here: {set}");

    // Each asset the page names is served, for a year, as named.
    for (attr, kind) in [("href=\"/consola/static/consola.", "css"), ("src=\"/consola/static/htmx.", "js")] {
        let at = page.body.find(attr).unwrap_or_else(|| panic!("no {kind} asset: {}", page.body));
        let start = at + attr.find('"').unwrap() + 1;
        let path = &page.body[start..start + page.body[start..].find('"').unwrap()];
        let tag = &page.body[at..at + page.body[at..].find('>').unwrap()];
        assert!(tag.contains("integrity=\"sha384-"), "{tag}");
        let asset = b.get(path).await;
        assert_eq!(asset.status, 200, "{path}");
        assert_eq!(asset.header("cache-control"), "public, max-age=31536000, immutable");
        assert!(!asset.body.is_empty());
        assert_eq!(b.get(&path.replace(".css", ".x.css").replace(".js", ".x.js")).await.status, 404);
        // Compressed for a browser that takes gzip.
        let res = b.http.get(format!("{}{path}", b.base)).header("Accept-Encoding", "gzip").send().await.unwrap();
        assert_eq!(res.headers()["content-encoding"], "gzip", "{path}");
        assert!(res.headers()["vary"].to_str().unwrap().to_lowercase().contains("accept-encoding"));
        let packed = res.bytes().await.unwrap();
        assert!(packed.len() < asset.body.len() / 2 && packed.starts_with(&[0x1f, 0x8b]), "{path}: {}", packed.len());
    }
    assert_eq!(b.get("/consola/nada").await.status, 404);
}

/// Sign-in: refused without the form's token or from another origin, one
/// message for any wrong credential, a new session key at each sign-in;
/// the queue only for a session; sign-out ends it.
async fn sign_in_queue_and_sign_out(backend: Backend) {
    let d = desk(backend, false).await;
    let mut sales = customer_mail("consola-1", "Ventas <b>urgentes</b>", json!({}));
    sales["to"] = json!("ventas@helpdesk.test");
    let sales = d.save(&sales).await;
    let support = d.save(&customer_mail("consola-2", "La impresora <script>alert(1)</script>", json!({}))).await;

    let mut b = Browser::new(&d.app);
    let page = b.get("/consola/tickets").await;
    assert_eq!((page.status, page.location()), (303, "/consola/entrar".to_string()));

    // No token, a wrong one, or another site's page: 403, nothing signed in.
    let form = b.get("/consola/entrar").await;
    let token = form.field("csrf");
    let page = b.post("/consola/entrar", &[("usuario", "ana"), ("contrasena", PASSWORD)]).await;
    assert_eq!(page.status, 403, "{}", page.body);
    let page = b.post("/consola/entrar", &[("csrf", "x"), ("usuario", "ana"), ("contrasena", PASSWORD)]).await;
    assert_eq!(page.status, 403);
    let req = b.http.post(format!("{}/consola/entrar", b.base)).header("Origin", "https://evil.example").form(&[
        ("csrf", token.as_str()),
        ("usuario", "ana"),
        ("contrasena", PASSWORD),
    ]);
    let page = b.send(req).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("Solicitud rechazada") && !b.has("consola_sesion"), "{}", page.body);

    // Wrong password and unknown user: the same message.
    let mut bodies = Vec::new();
    for (login, password) in [("ana", "Clave-Equivocada-1"), ("nadie-existe", PASSWORD)] {
        let form = b.get("/consola/entrar").await;
        let token = form.field("csrf");
        let page = b.post("/consola/entrar", &[("csrf", &token), ("usuario", login), ("contrasena", password)]).await;
        assert_eq!(page.status, 401, "{}", page.body);
        assert!(page.body.contains("Usuario o contraseña incorrectos."), "{}", page.body);
        assert!(!b.has("consola_sesion"));
        let alert = page.body.find("role=\"alert\"").expect("an alert");
        bodies.push(page.body[alert..alert + page.body[alert..].find("</p>").unwrap()].to_string());
    }
    assert_eq!(bodies[0], bodies[1], "the page does not say which was wrong");

    let page = b.sign_in("ana").await;
    assert_eq!((page.status, page.location()), (303, "/consola/tickets".to_string()), "{}", page.body);
    let set = page.header("set-cookie");
    assert!(set.contains("consola_sesion=") && set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let first_key = b.cookies.iter().find(|(k, _)| k == "consola_sesion").unwrap().1.clone();

    // The queue: ana's department's open tickets, subjects as text, each a link.
    let page = b.get("/consola/tickets").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let id = support["ticket"].as_str().unwrap();
    assert!(page.body.contains(&format!("<a id=\"t-{id}\" href=\"/consola/tickets/{id}\">")), "{}", page.body);
    assert!(
        page.body.contains("La impresora &#60;script&#62;alert(1)&#60;/script&#62;")
            || page.body.contains("La impresora &lt;script&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>alert(1)"), "{}", page.body);
    let other = sales["ticket"].as_str().unwrap();
    assert!(!page.body.contains(&format!("/consola/tickets/{other}\"")), "another department's ticket: {}", page.body);
    assert!(page.body.contains("Operador ana") && page.body.contains("Soporte"), "{}", page.body);
    // The views, each with its count (the other department's not counted).
    assert!(page.body.contains("aria-current=\"page\">Abiertos <span class=\"cuenta\">(1)</span>"), "{}", page.body);
    for view in ["Sin asignar", "Míos", "Pendientes", "En riesgo", "SLA vencido", "Cerrados"] {
        assert!(page.body.contains(&format!(">{view} <span class=\"cuenta\">(")), "{view}: {}", page.body);
    }
    assert!(page.body.contains("Cerrados <span class=\"cuenta\">(0)</span>"), "{}", page.body);
    // Filters and the search narrow the view.
    let link = format!("<a id=\"t-{id}\" href=\"/consola/tickets/{id}\">");
    for (query, shown) in [
        ("?q=impresora", true),
        ("?q=inexistente", false),
        ("?prioridad=urgente", false),
        ("?prioridad=normal", true),
        ("?vista=cerrados", false),
        ("?vista=nada", true),
        (&format!("?departamento={}", d.support), true),
        ("?asignado=nadie&q=impresora", !page.body.contains("Sin asignar <span class=\"cuenta\">(0)")),
    ] {
        let filtered = b.get(&format!("/consola/tickets{query}")).await;
        assert_eq!(filtered.status, 200, "{query}");
        assert_eq!(filtered.body.contains(&link), shown, "{query}: {}", filtered.body);
    }

    // Signing in again gives a new key; the old one still opens its own session.
    let mut again = Browser::new(&d.app);
    again.sign_in("ana").await;
    let second_key = again.cookies.iter().find(|(k, _)| k == "consola_sesion").unwrap().1.clone();
    assert_ne!(first_key, second_key);

    // Sign-out needs the session's token; then the key opens nothing.
    let csrf = page.field("csrf");
    assert_eq!(b.post("/consola/salir", &[("csrf", "otro")]).await.status, 403);
    let page = b.post("/consola/salir", &[("csrf", &csrf)]).await;
    assert_eq!((page.status, page.location()), (303, "/consola/entrar".to_string()));
    assert!(!b.has("consola_sesion"));
    b.cookies.push(("consola_sesion".into(), first_key));
    let page = b.get("/consola/tickets").await;
    assert_eq!((page.status, page.location()), (303, "/consola/entrar?fin=1".to_string()));
    assert_eq!(again.get("/consola/tickets").await.status, 200, "the other session lives on");
}

/// A ticket's page: the thread with the customer's HTML made inert, the
/// labelled reply box and change controls; a reply, a note that closes,
/// and a change each do what the API would, and a refused one nothing.
async fn a_ticket_is_read_answered_and_changed(backend: Backend) {
    // The outbox's worker idle: the reply stays queued ("Entrega: en cola")
    // however slowly the machine runs the test (with its one-second poll,
    // a busy CI machine once showed the first failed attempt instead).
    let d = desk_with(backend, false, |s| s.outbox.poll_interval_ms = 3_600_000).await;
    let policy = NewSlaPolicy {
        department_id: Some(d.support),
        priority: Priority::Normal,
        first_response_mins: 60,
        resolution_mins: 480,
        warning_pct: None,
    };
    d.app.db.save_policy(policy).await.unwrap();
    let mut mail = customer_mail("consola-3", "Factura <b>vencida</b>", json!({}));
    mail["html"] = json!(
        "<p>Hola <b>equipo</b></p><script>alert(1)</script><img src=\"https://tracker.example/p.gif\">\
         <a href=\"javascript:alert(1)\">clic</a><iframe srcdoc=\"<script>alert(2)</script>\"></iframe>\
         <a href=\"https://ejemplo.test/ayuda\">ayuda</a><div onclick=\"alert(3)\" style=\"position:fixed\">x</div>"
    );
    let saved = d.save(&mail).await;
    let id: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let mut sales = customer_mail("consola-4", "De ventas", json!({}));
    sales["to"] = json!("ventas@helpdesk.test");
    let other: i64 = d.save(&sales).await["ticket"].as_str().unwrap().parse().unwrap();

    let mut b = Browser::new(&d.app);
    b.sign_in("ana").await;
    let page = b.get(&format!("/consola/tickets/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for needle in [
        "<label for=\"cuerpo\">Respuesta</label>",
        "<textarea id=\"cuerpo\" name=\"cuerpo\"",
        "<label for=\"nota\">Nota interna</label>",
        ">Enviar</button>",
        ">Enviar y dejar pendiente</button>",
        ">Enviar y cerrar</button>",
        "<label for=\"estado\">Estado</label>",
        "<label for=\"asignado\">Asignado</label>",
        "<label for=\"prioridad\">Prioridad</label>",
        "<label for=\"departamento\">Departamento</label>",
        "Mensaje del cliente",
        "<b>equipo</b>",
        "rel=\"noopener noreferrer\"",
        "error_log.txt",
        // Times in the department calendar's zone (the default calendar:
        // Costa Rica); the service level's clocks in words.
        "2025-10-10 06:00 CST",
        "<h2 id=\"sla\">Nivel de servicio</h2>",
        "<dt>Primera respuesta</dt><dd>vence en ",
        "<dt>Resolución</dt><dd>vence en ",
        "<h2 id=\"otros\">Otros tickets del solicitante</h2>",
        "No tiene otros tickets.",
    ] {
        assert!(page.body.contains(needle), "{needle} missing: {}", page.body);
    }
    let lower = page.body.to_lowercase();
    for bad in ["alert(", "tracker.example", "javascript:", "<iframe", "onclick", "position:fixed", "<b>vencida"] {
        assert!(!lower.contains(bad), "{bad} survived: {}", page.body);
    }
    // A 1.5 MB body and a right-to-left override in the sender's name: the
    // page renders whole, the name isolated so it cannot reorder the page.
    let mut big = customer_mail("consola-5", "Registro \u{202e}txt.exe", json!({}));
    big["from"] = json!("Atacante \u{202e}lanigiro <atacante@ejemplo.test>");
    big["body"] = json!(format!("{}FIN-DEL-CUERPO", "registro de error ".repeat(90_000)));
    let big_id = d.save(&big).await["ticket"].as_str().unwrap().to_string();
    let page = b.get(&format!("/consola/tickets/{big_id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.len() > 1_500_000 && page.body.contains("FIN-DEL-CUERPO"), "{}", page.body.len());
    assert!(
        page.body.contains("<bdi>Atacante \u{202e}lanigiro &#60;atacante@ejemplo.test&#62;</bdi>")
            || page.body.contains("<bdi>Atacante \u{202e}lanigiro &lt;atacante@ejemplo.test&gt;</bdi>"),
        "the name isolated"
    );
    assert!(page.body.contains("<bdi>Registro \u{202e}txt.exe</bdi>"), "the subject isolated");
    // The requester's other tickets, the ones the operator may see: the
    // customer's new ticket is listed, not another department's.
    let again: i64 = d.save(&customer_mail("consola-6", "Otra consulta", json!({}))).await["ticket"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let page = b.get(&format!("/consola/tickets/{id}")).await;
    let listed = format!("<a href=\"/consola/tickets/{again}\">{again}: <bdi>Otra consulta</bdi></a>");
    assert!(page.body.contains(&listed), "{listed} missing: {}", page.body);
    assert!(!page.body.contains(&format!("<a href=\"/consola/tickets/{other}\">")), "{}", page.body);
    assert!(!page.body.contains(&format!("<a href=\"/consola/tickets/{id}\">")), "not itself: {}", page.body);
    let page404 = b.get(&format!("/consola/tickets/{other}")).await;
    assert_eq!(page404.status, 404, "another department's ticket is absent");
    assert_eq!(b.get("/consola/tickets/abc").await.status, 404);
    let csrf = page.field("csrf");

    // An empty reply: refused with the reason, nothing stored.
    let before = d.app.db.details_of(id).await.unwrap().len();
    let page = b.post(&format!("/consola/tickets/{id}/respuesta"), &[("csrf", &csrf), ("cuerpo", "  ")]).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains("Escriba la respuesta"), "{}", page.body);
    // Without the token: 403, nothing stored.
    let page = b.post(&format!("/consola/tickets/{id}/respuesta"), &[("csrf", "x"), ("cuerpo", "Hola")]).await;
    assert_eq!(page.status, 403);
    assert_eq!(d.app.db.details_of(id).await.unwrap().len(), before);

    // A reply: stored as the API stores it, in the thread, queued.
    let page = b
        .post(
            &format!("/consola/tickets/{id}/respuesta"),
            &[("csrf", &csrf), ("cuerpo", "Ya revisamos su factura."), ("despues", "")],
        )
        .await;
    assert_eq!(
        (page.status, page.location()),
        (303, format!("/consola/tickets/{id}?hecho=respuesta")),
        "{}",
        page.body
    );
    let details = d.app.db.details_of(id).await.unwrap();
    let reply = details.last().unwrap();
    assert_eq!(
        (reply.body.as_str(), reply.direction.as_str(), reply.author_id),
        ("Ya revisamos su factura.", "saliente", Some(d.ana))
    );
    let page = b.get(&page.location()).await;
    assert!(
        page.body.contains("Respuesta registrada; en cola para envío.")
            && page.body.contains("Ya revisamos su factura.")
    );
    assert!(page.body.contains("Entrega: en cola"), "{}", page.body);
    assert!(page.body.contains("<dt>Primera respuesta</dt><dd>cumplida "), "the first response's clock stops");

    // A note that closes the ticket.
    let page = b
        .post(
            &format!("/consola/tickets/{id}/respuesta"),
            &[("csrf", &csrf), ("cuerpo", "Cliente al día."), ("nota", "1"), ("despues", "cerrado")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let details = d.app.db.details_of(id).await.unwrap();
    assert_eq!(details.last().unwrap().direction.as_str(), "nota");
    assert_eq!(d.app.db.find_ticket(id).await.unwrap().unwrap().status.as_str(), "cerrado");

    // A change: priority and assignee at once; the history shows it.
    let carla = d.carla.to_string();
    let form = [
        ("csrf", csrf.as_str()),
        ("estado", "abierto"),
        ("asignado", carla.as_str()),
        ("prioridad", "urgente"),
        ("departamento", &d.support.to_string()),
    ];
    let form = b.as_seen(id, &form).await;
    let page = b.post_owned(&format!("/consola/tickets/{id}/cambios"), &form).await;
    assert_eq!((page.status, page.location()), (303, format!("/consola/tickets/{id}?hecho=cambios")), "{}", page.body);
    let t = d.app.db.find_ticket(id).await.unwrap().unwrap();
    assert_eq!((t.status.as_str(), t.priority.as_str(), t.assignee_id), ("abierto", "urgente", Some(d.carla)));
    let page = b.get(&page.location()).await;
    assert!(page.body.contains("Cambios aplicados.") && page.body.contains("Historial de cambios"), "{}", page.body);
    assert!(page.body.contains("<option value=\"urgente\" selected>urgente</option>"), "{}", page.body);
    // Another department's user as assignee: refused, nothing changed.
    let beto = d.beto.to_string();
    let form = [
        ("csrf", csrf.as_str()),
        ("estado", "abierto"),
        ("asignado", beto.as_str()),
        ("prioridad", "urgente"),
        ("departamento", &d.support.to_string()),
    ];
    let form = b.as_seen(id, &form).await;
    let page = b.post_owned(&format!("/consola/tickets/{id}/cambios"), &form).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert_eq!(d.app.db.find_ticket(id).await.unwrap().unwrap().assignee_id, Some(d.carla));

    // Each of those POSTs has its bitácora record, with ana as the acting
    // user, its status, and the form without its CSRF token.
    let records = d.app.db.recent_audit(50).await.unwrap();
    let console: Vec<_> = records.iter().filter(|r| r.endpoint.starts_with("consola/")).collect();
    let replies: Vec<_> = console.iter().filter(|r| r.endpoint == format!("consola/tickets/{id}/respuesta")).collect();
    let statuses: Vec<u16> = replies.iter().rev().filter_map(|r| r.status).collect();
    assert_eq!(statuses, vec![422, 403, 303, 303], "{replies:?}");
    assert!(replies.iter().all(|r| r.user_id == Some(d.ana) && r.method == "POST" && !r.body.contains(&csrf)));
    assert!(replies.iter().any(|r| r.body.contains("Ya revisamos su factura.")), "{replies:?}");
    let changes = console.iter().filter(|r| r.endpoint == format!("consola/tickets/{id}/cambios")).count();
    assert_eq!(changes, 2);
    let sign_in = console.iter().find(|r| r.endpoint == "consola/entrar").expect("the sign-in's record");
    assert_eq!((sign_in.status, sign_in.user_id), (Some(303), Some(d.ana)));
    assert!(sign_in.body.contains("\"usuario\":\"ana\"") && !sign_in.body.contains(PASSWORD), "{}", sign_in.body);

    // An API call with an operator's token records its user too.
    let token = d.token("carla").await;
    let (status, body) = d.get("tickets", &token).await;
    assert_eq!(status, 200, "{body}");
    let record = d.app.db.find_audit(body["id_bitacora_log"].as_i64().unwrap()).await.unwrap().unwrap();
    assert_eq!(record.user_id, Some(d.carla));
}

/// "¿Olvidó su contraseña?": the same answer for any address; the mail's
/// link opens the console's reset page; the new password twice, the policy
/// kept; then it signs in, and the link works once.
async fn a_forgotten_password_is_reset_from_the_console(backend: Backend) {
    let d = desk(backend, true).await;
    let mut b = Browser::new(&d.app);
    let page = b.get("/consola/entrar").await;
    assert!(page.body.contains("<a href=\"/consola/olvido\">¿Olvidó su contraseña?</a>"), "{}", page.body);
    let mut answers = Vec::new();
    for email in ["nadie@ejemplo.test", "ana@helpdesk.test"] {
        let form = b.get("/consola/olvido").await;
        assert!(form.body.contains("<label for=\"correo\">Correo electrónico</label>"), "{}", form.body);
        let token = form.field("csrf");
        let page = b.post("/consola/olvido", &[("csrf", &token), ("correo", email)]).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let status = page.body.find("role=\"status\"").expect("a notice");
        answers.push(page.body[status..status + page.body[status..].find("</p>").unwrap()].to_string());
    }
    assert_eq!(answers[0], answers[1], "nothing says whether the address exists");
    assert_eq!(b.post("/consola/olvido", &[("csrf", "x"), ("correo", "ana@helpdesk.test")]).await.status, 403);

    // The mail reaches the SMTP server with a link to the console's page.
    let sink = d.app.smtp.as_ref().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let link = loop {
        let found = sink.messages().into_iter().find_map(|m| {
            let text = String::from_utf8_lossy(&m)
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=")
                .replace("&amp;", "&");
            let at = text.find("/consola/restablecer?id=")?;
            let rest = &text[at + "/consola/restablecer".len()..];
            let end = rest.find(|c: char| c.is_whitespace() || c == '"' || c == '<').unwrap_or(rest.len());
            Some(rest[..end].to_string())
        });
        if let Some(l) = found {
            break l;
        }
        assert!(std::time::Instant::now() < deadline, "no reset mail");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(sink.messages().len(), 1, "one mail, to the user that exists");
    let form = b.get(&format!("/consola/restablecer{link}")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("<label for=\"nueva\">Nueva contraseña</label>"), "{}", form.body);
    let (csrf, id, token) = (form.field("csrf"), form.field("id"), form.field("token"));
    assert!(!id.is_empty() && token.len() >= 20, "{link}: {id} {token}");
    // Each refusal answers the form again, with a fresh token of its own.
    let mut csrf = csrf;
    let reset = async |b: &mut Browser, csrf: &str, pw: &str, again: &str| {
        let f = [
            ("csrf", csrf),
            ("id", id.as_str()),
            ("token", token.as_str()),
            ("contrasena", pw),
            ("contrasena_repetida", again),
        ];
        b.post("/consola/restablecer", &f).await
    };
    let page = reset(&mut b, &csrf, "Nueva-Clave-2027", "Otra-Clave-2027").await;
    assert_eq!(page.status, 422, "{link} {}", page.body);
    assert!(page.body.contains("Las contraseñas no coinciden."), "{}", page.body);
    csrf = page.field("csrf");
    let page = reset(&mut b, &csrf, "corta", "corta").await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("al menos 8 caracteres"), "{}", page.body);
    csrf = page.field("csrf");
    let page = reset(&mut b, &csrf, "Nueva-Clave-2027", "Nueva-Clave-2027").await;
    assert_eq!((page.status, page.location()), (303, "/consola/entrar?clave=1".to_string()), "{}", page.body);
    let again = b.get(&format!("/consola/restablecer{link}")).await;
    let page = reset(&mut b, &again.field("csrf"), "Otra-Clave-2028", "Otra-Clave-2028").await;
    assert_eq!(page.status, 422, "the link works once");
    assert!(page.body.contains("no es válido o expiró"), "{}", page.body);
    let page = b.get("/consola/entrar?clave=1").await;
    assert!(page.body.contains("Contraseña cambiada."), "{}", page.body);

    let form = b.get("/consola/entrar").await;
    let token = form.field("csrf");
    let page =
        b.post("/consola/entrar", &[("csrf", &token), ("usuario", "ana"), ("contrasena", "Nueva-Clave-2027")]).await;
    assert_eq!((page.status, page.location()), (303, "/consola/tickets".to_string()), "{}", page.body);
}

/// Attachments are links on the ticket's page, served as the API serves
/// them (a sandboxed download, the declared type only when inert), only
/// through a ticket the operator may see.
async fn attachments_are_downloaded_from_the_ticket_page(backend: Backend) {
    let d = desk(backend, false).await;
    let saved = d.save(&customer_mail("consola-adj", "Con adjunto", json!({}))).await;
    let id: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let detail: i64 = saved["id_detalle_ticket"].as_str().unwrap().parse().unwrap();
    let attachment = d.app.db.attachments_of(detail).await.unwrap()[0].id;
    let storage = d.app.settings.reader.storage_dir.clone();
    std::fs::write(storage.join("logs/pagina.html"), b"<script>alert(1)</script>").unwrap();
    let mut hostile = customer_mail("consola-adj2", "Hostil", json!({}));
    hostile["attachments"] = json!([{"name": "pagina.html", "route": "logs/pagina.html", "type": "text/html"}]);
    let saved = d.save(&hostile).await;
    let hostile_id: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let hostile_detail: i64 = saved["id_detalle_ticket"].as_str().unwrap().parse().unwrap();
    let hostile_attachment = d.app.db.attachments_of(hostile_detail).await.unwrap()[0].id;
    let mut sales = customer_mail("consola-adj3", "De ventas", json!({}));
    sales["to"] = json!("ventas@helpdesk.test");
    let saved = d.save(&sales).await;
    let other: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let other_detail: i64 = saved["id_detalle_ticket"].as_str().unwrap().parse().unwrap();
    let other_attachment = d.app.db.attachments_of(other_detail).await.unwrap()[0].id;

    let mut b = Browser::new(&d.app);
    assert_eq!(b.get(&format!("/consola/tickets/{id}/adjuntos/{attachment}")).await.status, 303, "signed in only");
    b.sign_in("ana").await;
    let page = b.get(&format!("/consola/tickets/{id}")).await;
    let link = format!("<a href=\"/consola/tickets/{id}/adjuntos/{attachment}\" download><bdi>error_log.txt</bdi></a>");
    assert!(page.body.contains(&link), "{link} missing: {}", page.body);
    let file = b.get(&format!("/consola/tickets/{id}/adjuntos/{attachment}")).await;
    assert_eq!(file.status, 200);
    assert_eq!(file.body, "linea 1\nlinea 2\n");
    assert!(file.header("content-type").starts_with("text/plain"), "{:?}", file.headers);
    assert_eq!(file.header("content-disposition"), "attachment; filename=\"error_log.txt\"");
    assert_eq!(file.header("content-security-policy"), "sandbox");
    assert_eq!(file.header("cache-control"), "no-store");
    let file = b.get(&format!("/consola/tickets/{hostile_id}/adjuntos/{hostile_attachment}")).await;
    assert_eq!((file.status, file.header("content-type")), (200, "application/octet-stream".to_string()));
    assert_eq!(file.header("content-security-policy"), "sandbox");
    // Through another ticket, another department's, or unknown: absent.
    for path in [
        format!("/consola/tickets/{hostile_id}/adjuntos/{attachment}"),
        format!("/consola/tickets/{other}/adjuntos/{other_attachment}"),
        format!("/consola/tickets/{id}/adjuntos/{}", other_attachment + 100),
        format!("/consola/tickets/{id}/adjuntos/x"),
    ] {
        let page = b.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.body.contains("<html lang=\"es\">"), "a page: {}", page.body);
    }
    // The file gone from the storage: a 404 page, not a failure.
    std::fs::remove_file(storage.join("logs/pagina.html")).unwrap();
    assert_eq!(b.get(&format!("/consola/tickets/{hostile_id}/adjuntos/{hostile_attachment}")).await.status, 404);
}

/// The views' counts are kept `consola.counts_cache_ms`: a new ticket is in
/// the list at once and in the count once that time has passed.
async fn view_counts_are_kept_briefly(backend: Backend) {
    let d = crate::tickets::desk_with(backend, false, |s| s.consola.counts_cache_ms = 2000).await;
    d.save(&customer_mail("contar-1", "Primera", json!({}))).await;
    let mut b = Browser::new(&d.app);
    b.sign_in("ana").await;
    let open = |n: i64| format!("aria-current=\"page\">Abiertos <span class=\"cuenta\">({n})</span>");
    let page = b.get("/consola/tickets").await;
    assert!(page.body.contains(&open(1)), "{}", page.body);
    let second: i64 =
        d.save(&customer_mail("contar-2", "Segunda", json!({}))).await["ticket"].as_str().unwrap().parse().unwrap();
    let page = b.get("/consola/tickets").await;
    assert!(
        page.body.contains(&format!("<a id=\"t-{second}\" href=\"/consola/tickets/{second}\">")),
        "the list is live"
    );
    assert!(page.body.contains(&open(1)), "the count is kept: {}", page.body);
    d.app.clock.advance(chrono::Duration::milliseconds(2100));
    let page = b.get("/consola/tickets").await;
    assert!(page.body.contains(&open(2)), "{}", page.body);
}

/// Two operators on one ticket: a reply from a page that did not show the
/// customer's newest message is held ("Enviar de todos modos", the draft
/// kept, nothing sent); a change from a stale page reverts nobody's change,
/// and changing what someone else just changed is shown, not overwritten.
async fn a_stale_page_neither_sends_over_nor_reverts(backend: Backend) {
    let d = desk(backend, false).await;
    let saved = d.save(&customer_mail("viejo-1", "Pantalla", json!({}))).await;
    let id: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let ticket = format!("/consola/tickets/{id}");
    let mut ana = Browser::new(&d.app);
    ana.sign_in("ana").await;
    let mut carla = Browser::new(&d.app);
    carla.sign_in("carla").await;
    let page = ana.get(&ticket).await;
    let (csrf, seen_last) = (page.field("csrf"), page.field("ultimo"));

    // The customer writes again while ana types.
    let mut again = customer_mail("viejo-2", "Re: Pantalla", json!({"In-Reply-To": "<viejo-1@cliente.test>"}));
    again["body"] = json!("Ahora también parpadea el teclado.");
    assert_eq!(d.save(&again).await["ticket"].as_str().unwrap(), id.to_string());
    let before = d.app.db.details_of(id).await.unwrap().len();
    let reply = |last: &str| {
        [("csrf", csrf.as_str()), ("ultimo", last), ("cuerpo", "Reinicie la pantalla."), ("despues", "")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
    };
    let page = ana.post_owned(&format!("{ticket}/respuesta"), &reply(&seen_last)).await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(page.body.contains("Ahora también parpadea el teclado."), "the new message is shown");
    assert!(page.body.contains(">Enviar de todos modos</button>"), "{}", page.body);
    assert!(page.body.contains(">Reinicie la pantalla.</textarea>"), "the draft is kept");
    assert_eq!(d.app.db.details_of(id).await.unwrap().len(), before, "nothing sent");
    // Sent anyway: the page now carries the newest message.
    let page = ana.post_owned(&format!("{ticket}/respuesta"), &reply(&page.field("ultimo"))).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(d.app.db.details_of(id).await.unwrap().len(), before + 1);

    // Changes: carla raises the priority while ana's page still shows "normal".
    let change = |page: &Page, status: &str, priority: &str| {
        let mut form: Vec<(String, String)> =
            ["csrf", "visto_estado", "visto_asignado", "visto_prioridad", "visto_departamento"]
                .iter()
                .map(|k| (k.to_string(), page.field(k)))
                .collect();
        form.push(("estado".into(), status.into()));
        form.push(("asignado".into(), page.field("visto_asignado")));
        form.push(("prioridad".into(), priority.into()));
        form.push(("departamento".into(), page.field("visto_departamento")));
        form
    };
    let changes = format!("{ticket}/cambios");
    let stale = ana.get(&ticket).await;
    let fresh = carla.get(&ticket).await;
    let page = carla.post_owned(&changes, &change(&fresh, "abierto", "alta")).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = ana.post_owned(&changes, &change(&stale, "pendiente", "normal")).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let now = d.app.db.find_ticket(id).await.unwrap().unwrap();
    assert_eq!((now.status.as_str(), now.priority.as_str()), ("pendiente", "alta"), "carla's priority stays");
    let page = ana.post_owned(&changes, &change(&stale, "abierto", "baja")).await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(page.body.contains("Otro operador cambió estos datos"), "{}", page.body);
    assert!(page.body.contains(">Aplicar de todos modos</button>"), "{}", page.body);
    assert!(page.body.contains("<option value=\"baja\" selected>"), "her choice is kept: {}", page.body);
    assert_eq!(d.app.db.find_ticket(id).await.unwrap().unwrap().priority.as_str(), "alta", "nothing changed");
    let page = ana.post_owned(&changes, &change(&page, "pendiente", "baja")).await;
    assert_eq!(page.status, 303, "applied anyway: {}", page.body);
    assert_eq!(d.app.db.find_ticket(id).await.unwrap().unwrap().priority.as_str(), "baja");
}

/// The pages' live parts: a page's fingerprint answered with 204 while
/// nothing it shows changed, with the part (and a new fingerprint) once a
/// mail or a colleague changes it; who else is on a ticket and who is
/// answering, until their page stops reporting; the reply form's newest
/// message moved with the thread; and a page left open does not keep its
/// session alive.
async fn live_parts_show_changes_and_who_is_there(backend: Backend) {
    use helpdesk_domain::ports::UserRepository;
    let d = desk(backend, false).await;
    let id: i64 =
        d.save(&customer_mail("vivo-1", "Monitor", json!({}))).await["ticket"].as_str().unwrap().parse().unwrap();
    let carla_name = d.app.db.find_user(d.carla).await.unwrap().unwrap().name;
    let ana_name = d.app.db.find_user(d.ana).await.unwrap().unwrap().name;
    let mut ana = Browser::new(&d.app);
    ana.sign_in("ana").await;
    let mut carla = Browser::new(&d.app);
    carla.sign_in("carla").await;

    // The queue: unchanged, 204; a new mail, the part with its row.
    let page = ana.get("/consola/tickets").await;
    assert!(page.body.contains("hx-get=\"/consola/vivo?vista=abiertos\""), "{}", page.body);
    let pulse = |huella: &str| format!("/consola/vivo?vista=abiertos&huella={huella}");
    let huella = page.field("huella");
    let live = ana.get(&pulse(&huella)).await;
    assert_eq!((live.status, live.body.as_str()), (204, ""));
    let second: i64 =
        d.save(&customer_mail("vivo-2", "Teclado", json!({}))).await["ticket"].as_str().unwrap().parse().unwrap();
    let live = ana.get(&pulse(&huella)).await;
    assert_eq!(live.status, 200, "{}", live.body);
    assert!(live.body.contains(&format!("<a id=\"t-{second}\" href=\"/consola/tickets/{second}\">")), "{}", live.body);
    assert!(live.body.starts_with("<div id=\"vivo\" hx-swap-oob=\"innerHTML\">"), "{}", live.body);
    let huella = live.field("huella");
    assert_eq!(ana.get(&pulse(&huella)).await.status, 204, "the new fingerprint is what the page shows");

    // A ticket: carla opens it; ana's page names her, then as answering.
    let ticket = format!("/consola/tickets/{id}");
    let page = ana.get(&ticket).await;
    assert!(page.body.contains(&format!("hx-get=\"{ticket}/vivo\"")), "{}", page.body);
    let (mut huella, first_last) = (page.field("huella"), page.field("ultimo"));
    let ana_pulse = |huella: &str| format!("{ticket}/vivo?huella={huella}&respondiendo=&ultimo={first_last}");
    assert_eq!(ana.get(&ana_pulse(&huella)).await.status, 204, "alone on it");
    let page = carla.get(&ticket).await;
    assert!(page.body.contains(&format!("<p>{ana_name} está viendo este ticket</p>")), "{}", page.body);
    let live = ana.get(&ana_pulse(&huella)).await;
    assert_eq!(live.status, 200);
    assert!(live.body.contains(&format!("<p>{carla_name} está viendo este ticket</p>")), "{}", live.body);
    huella = live.field("huella");
    let carla_typing = carla.get(&format!("{ticket}/vivo?huella=&respondiendo=1")).await;
    assert_eq!(carla_typing.status, 200);
    let live = ana.get(&ana_pulse(&huella)).await;
    assert!(live.body.contains(&format!("<p>{carla_name} está respondiendo</p>")), "{}", live.body);
    huella = live.field("huella");
    let queue = ana.get(&pulse("")).await;
    assert!(
        queue.body.contains(&format!("<span class=\"respondiendo\">respondiendo: {carla_name}</span>")),
        "{}",
        queue.body
    );
    let own = carla.get(&pulse("")).await;
    assert!(!own.body.contains("class=\"respondiendo\""), "not marked for herself: {}", own.body);

    // The customer writes: the thread and the reply form's `ultimo` move.
    let mut again = customer_mail("vivo-3", "Re: Monitor", json!({"In-Reply-To": "<vivo-1@cliente.test>"}));
    again["body"] = json!("Ya tampoco enciende.");
    d.save(&again).await;
    let writing = ana.get(&format!("{ticket}/vivo?huella={huella}&respondiendo=1&ultimo={first_last}")).await;
    assert!(writing.body.contains("Ya tampoco enciende."), "{}", writing.body);
    assert!(
        !writing.body.contains("id=\"ultimo\""),
        "kept while she writes (the reply will be held): {}",
        writing.body
    );
    let live = ana.get(&ana_pulse(&huella)).await;
    assert!(live.body.contains("Ya tampoco enciende."), "{}", live.body);
    let newest = d.app.db.details_of(id).await.unwrap().iter().map(|x| x.id).max().unwrap();
    assert!(newest > first_last.parse().unwrap());
    assert!(
        live.body.contains(&format!(
            "<input type=\"hidden\" id=\"ultimo\" name=\"ultimo\" value=\"{newest}\" hx-swap-oob=\"true\">"
        )),
        "{}",
        live.body
    );
    huella = live.field("huella");

    // Carla's page stops reporting: 30 s later she is gone from ana's.
    d.app.clock.advance(chrono::Duration::seconds(31));
    let live = ana.get(&ana_pulse(&huella)).await;
    assert_eq!(live.status, 200, "{}", live.body);
    assert!(!live.body.contains(&carla_name), "{}", live.body);

    // A ticket out of reach: the page says so and stops asking (286).
    let gone = carla.get("/consola/tickets/999999/vivo?huella=").await;
    assert_eq!(gone.status, 286, "{}", gone.body);
    assert!(gone.body.contains("ya no está a su alcance"), "{}", gone.body);

    // A page left open: its requests do not count as use; after
    // `consola.idle_minutes` (30) it says so and stops.
    for _ in 0..5 {
        d.app.clock.advance(chrono::Duration::minutes(5));
        assert!([200, 204].contains(&ana.get(&ana_pulse("")).await.status));
    }
    d.app.clock.advance(chrono::Duration::minutes(5));
    let live = ana.get(&ana_pulse("")).await;
    assert_eq!(live.status, 286, "{}", live.body);
    assert!(live.body.contains("Su sesión terminó"), "{}", live.body);
    assert_eq!(ana.get(&ticket).await.location(), "/consola/entrar?fin=1");
}

crate::on_both_backends!(
    live_parts_show_changes_and_who_is_there,
    a_forgotten_password_is_reset_from_the_console,
    a_stale_page_neither_sends_over_nor_reverts,
    view_counts_are_kept_briefly,
    attachments_are_downloaded_from_the_ticket_page,
    the_sign_in_page_is_labelled_and_locked_down,
    sign_in_queue_and_sign_out,
    a_ticket_is_read_answered_and_changed
);
