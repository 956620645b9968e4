//! Outgoing webhooks end to end: subscriptions made with the admin command,
//! events caused over the API (a mail through `correo/save`, an operator's
//! reply and changes through the ticket API), and receivers on loopback
//! that check every signature with their secret and count what arrives per
//! event id, including one that is down and comes back.

use std::collections::BTreeMap;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helpdesk_domain::crypto::hash_password;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;
use helpdesk_domain::testing::ManualClock;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

const PASSWORD: &str = "Clave-Segura-2026";

/// The retry delay the tests run with (app time, moved with the clock).
const BACKOFF_SECS: i64 = 60;

/// Receivers check timestamps against replays with this tolerance.
const TOLERANCE_SECS: i64 = 300;

/// One request as a receiver saw it.
#[derive(Debug, Clone)]
struct Arrival {
    event_id: String,
    kind: String,
    timestamp: i64,
    signature: String,
    body: String,
    /// Signed with the receiver's secret ([`Arrival::signed_with`]), its
    /// timestamp within the tolerance of the app's clock, a JSON POST to the
    /// subscribed path.
    genuine: bool,
    answered: u16,
}

impl Arrival {
    /// The signature is `sha256=` and the hex HMAC-SHA-256 of
    /// `"<timestamp>.<body>"` under `secret`.
    fn signed_with(&self, secret: &str) -> bool {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{}.{}", self.timestamp, self.body).as_bytes());
        self.signature == format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// An HTTP receiver on loopback, written here on plain tokio sockets: it
/// verifies each POST's signature with its secret and keeps what arrived.
/// It can start closed (connections refused) and open later on the same
/// port, and answers with the status it is told.
struct Receiver {
    port: u16,
    secret: Mutex<String>,
    status: Mutex<u16>,
    arrivals: Mutex<Vec<Arrival>>,
    clock: Arc<ManualClock>,
    /// The bound socket, while it is not listening yet.
    closed: Mutex<Option<RawFd>>,
}

impl Receiver {
    /// Listening, answering 200.
    fn start(clock: &Arc<ManualClock>) -> Arc<Receiver> {
        let r = Receiver::closed(clock);
        r.open();
        r
    }

    /// Bound but not listening: connections to it are refused.
    fn closed(clock: &Arc<ManualClock>) -> Arc<Receiver> {
        // SAFETY: plain socket calls on a descriptor this function owns;
        // the address structure is fully initialised before use.
        let (fd, port) = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket()");
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len), 0, "bind()");
            assert_eq!(libc::getsockname(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len), 0);
            (fd, u16::from_be(addr.sin_port))
        };
        Arc::new(Receiver {
            port,
            secret: Mutex::new(String::new()),
            status: Mutex::new(200),
            arrivals: Mutex::new(Vec::new()),
            clock: clock.clone(),
            closed: Mutex::new(Some(fd)),
        })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/helpdesk", self.port)
    }

    fn set_secret(&self, secret: &str) {
        *self.secret.lock().unwrap() = secret.to_string();
    }

    fn answer(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap().clone()
    }

    /// Deliveries it accepted (2xx), by event id.
    fn accepted(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for a in self.arrivals().iter().filter(|a| (200..300).contains(&a.answered)) {
            *counts.entry(a.event_id.clone()).or_default() += 1;
        }
        counts
    }

    /// The accepted deliveries of one kind, in arrival order.
    fn accepted_of(&self, kind: &str) -> Vec<Arrival> {
        self.arrivals().into_iter().filter(|a| a.kind == kind && (200..300).contains(&a.answered)).collect()
    }

    /// Starts listening on its port and serving.
    fn open(self: &Arc<Self>) {
        let fd = self.closed.lock().unwrap().take().expect("not open yet");
        // SAFETY: `fd` is the bound socket made in `closed`, owned by no
        // one else; the listener takes it over.
        let listener = unsafe {
            assert_eq!(libc::listen(fd, 128), 0, "listen()");
            std::net::TcpListener::from_raw_fd(fd)
        };
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let me = self.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(me.clone().serve(socket));
            }
        });
    }

    /// One request on one connection, then `Connection: close`.
    async fn serve(self: Arc<Self>, mut socket: tokio::net::TcpStream) {
        let mut data = Vec::new();
        let mut buf = [0u8; 8192];
        let head_end = loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
            if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
        let headers: BTreeMap<String, String> = head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let header = |name: &str| headers.get(name).cloned().unwrap_or_default();
        let length: usize = header("content-length").parse().unwrap_or(0);
        while data.len() < head_end + length {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        }
        let body = String::from_utf8(data[head_end..head_end + length].to_vec()).expect("a UTF-8 body");
        let mut arrival = Arrival {
            event_id: header("x-helpdesk-delivery"),
            kind: header("x-helpdesk-event"),
            timestamp: header("x-helpdesk-timestamp").parse().unwrap_or(i64::MIN),
            signature: header("x-helpdesk-signature"),
            body,
            genuine: false,
            answered: *self.status.lock().unwrap(),
        };
        let fresh = (self.clock.now().and_utc().timestamp() - arrival.timestamp).abs() <= TOLERANCE_SECS;
        arrival.genuine = fresh
            && arrival.signed_with(&self.secret.lock().unwrap())
            && header("content-type") == "application/json"
            && head.starts_with("POST /hooks/helpdesk HTTP/1.1\r\n");
        let answered = arrival.answered;
        self.arrivals.lock().unwrap().push(arrival);
        let reply = format!("HTTP/1.1 {answered} Answer\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let _ = socket.write_all(reply.as_bytes()).await;
    }
}

/// Waits until `done` holds, at most `within`; says what was awaited if not.
/// The webhook samples of `/metrics`: (sent, retry, failed, pending).
async fn webhook_metrics(app: &TestApp) -> (u64, u64, u64, u64) {
    let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    let sample = |name: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    (
        sample("helpdesk_webhook_deliveries_total{result=\"sent\"}"),
        sample("helpdesk_webhook_deliveries_total{result=\"retry\"}"),
        sample("helpdesk_webhook_deliveries_total{result=\"failed\"}"),
        sample("helpdesk_webhook_pending "),
    )
}

/// Runs the admin command `helpdesk-server webhook ARGS` on the app's
/// database; its stdout.
async fn admin(app: &TestApp, args: &[&str]) -> String {
    let url = app.settings.database.url.clone();
    let args: Vec<String> = ["webhook"].iter().chain(args).map(|s| s.to_string()).collect();
    let dir = crate::cli::temp_dir();
    let out = tokio::task::spawn_blocking(move || {
        crate::cli::command(&dir).env("HELPDESK__DATABASE__URL", url).args(&args).output().unwrap()
    })
    .await
    .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    stdout.into_owned()
}

/// `webhook add` for the receiver: its id; the receiver gets the secret.
async fn subscribe(app: &TestApp, receiver: &Receiver, events: &[&str]) -> i64 {
    let url = receiver.url();
    let mut args = vec!["add", url.as_str()];
    for e in events {
        args.extend(["--event", e]);
    }
    let out = admin(app, &args).await;
    let id = out.split_whitespace().nth(1).and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("{out}"));
    let secret = out.lines().find_map(|l| l.strip_prefix("secret: ")).unwrap_or_else(|| panic!("{out}"));
    receiver.set_secret(secret);
    id
}

/// A helpdesk with a mailbox, two operators who take tickets, the
/// reading channel's consumer and the operators' console.
struct Desk {
    app: TestApp,
    channel: String,
    console: String,
    ana: i64,
    carla: i64,
}

async fn desk(backend: Backend, max_attempts: i32) -> Desk {
    let app = TestApp::builder(backend)
        .with_settings(move |s| {
            s.outbox.inline_timeout_ms = 0;
            s.webhooks.poll_interval_ms = 20;
            s.webhooks.timeout_ms = 2000;
            s.webhooks.base_backoff_ms = BACKOFF_SECS * 1000;
            s.webhooks.max_backoff_ms = 3_600_000;
            s.webhooks.max_attempts = max_attempts;
        })
        .spawn()
        .await;
    app.product("mesa").await;
    let channel = app.consumer("canal_lectura", &[Endpoint::MailSave]).await;
    let grants: Vec<Endpoint> = Endpoint::TICKETS.into_iter().chain([Endpoint::SsoAccess]).collect();
    let console = app.consumer("consola", &grants).await;
    let support =
        app.db.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    app.mailbox("soporte@helpdesk.test", support, false).await;
    let operator = |login: &str| NewInternalUser {
        login: login.into(),
        name: format!("Operadora {login}"),
        email: format!("{login}@helpdesk.test"),
        department_id: Some(support),
        can_take_tickets: true,
        password_hash: Some(hash_password(PASSWORD)),
        ..Default::default()
    };
    let ana = app.db.create_user(operator("ana")).await.unwrap().id;
    let carla = app.db.create_user(operator("carla")).await.unwrap().id;
    Desk { app, channel, console, ana, carla }
}

fn customer_mail(id: &str, in_reply_to: Option<&str>) -> Value {
    let mut headers = json!({"Message-ID": format!("<{id}@cliente.test>")});
    if let Some(parent) = in_reply_to {
        headers["In-Reply-To"] = json!(format!("<{parent}@cliente.test>"));
    }
    json!({
        "sistema": "canal_lectura",
        "subject": format!("No imprime ({id})"),
        "from": "Cliente <cliente@ejemplo.test>",
        "to": "soporte@helpdesk.test",
        "body": format!("La impresora no imprime ({id})"),
        "date": "2025-10-10 12:00:00",
        "headers": headers,
    })
}

impl Desk {
    /// `correo/save`: the ticket's id.
    async fn save(&self, mail: &Value) -> i64 {
        let (status, body) = json(self.app.post("correo/save", ("canal_lectura", &self.channel), mail).await).await;
        assert_eq!(status, 200, "{body}");
        body["ticket"].as_str().unwrap().parse().unwrap()
    }

    async fn token(&self, login: &str) -> String {
        let body = json!({"product": "mesa", "usuario": login, "password": PASSWORD, "modo": "normal"});
        let (status, body) = json(self.app.post("SSO/access", ("consola", &self.console), &body).await).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["token"].as_str().unwrap().to_string()
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Value) -> Value {
        let res = self
            .app
            .client
            .request(method, format!("{}/api/{path}", self.app.address))
            .header("X-User-Consumo", "consola")
            .header("X-User-Secret", &self.console)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, body) = json(res).await;
        assert!(status == 200 || status == 201, "{status}: {body}");
        body
    }
}

async fn events_reach_their_subscribers_signed_once_each(backend: Backend) {
    let d = desk(backend, 4).await;
    let everything = Receiver::start(&d.app.clock);
    let statuses = Receiver::start(&d.app.clock);
    let all_events =
        ["ticket.creado", "ticket.respuesta_cliente", "ticket.respuesta_operador", "ticket.asignado", "ticket.estado"];
    let everything_id = subscribe(&d.app, &everything, &all_events).await;
    let statuses_id = subscribe(&d.app, &statuses, &["ticket.estado"]).await;
    let listed = admin(&d.app, &["list"]).await;
    assert!(listed.contains(&format!("{statuses_id}\tactivo\tticket.estado\t{}", statuses.url())), "{listed}");
    let within = Duration::from_secs(20);

    // A mail opens a ticket.
    let t = d.save(&customer_mail("c1", None)).await;
    wait_until("ticket.creado", within, async || everything.accepted_of("ticket.creado").len() == 1).await;
    let created = &everything.accepted_of("ticket.creado")[0];
    let body = created.json();
    assert!(created.genuine, "{created:?}");
    assert_eq!(body["id"], created.event_id.as_str(), "the body names the event of X-Helpdesk-Delivery");
    assert!(created.event_id.starts_with("evt_"), "{created:?}");
    assert_eq!((body["evento"].as_str(), body["ticket"]["id_ticket"].as_i64()), (Some("ticket.creado"), Some(t)));
    assert_eq!(body["ticket"]["departamento"], "Soporte");
    assert_eq!(body["mensaje"]["direccion"], "entrante");
    assert_eq!(body["mensaje"]["extracto"], "La impresora no imprime (c1)");
    let assignee = body["ticket"]["id_usuario_asignado"].as_i64().expect("assigned on arrival");

    // An operator's reply is announced; her internal note is not.
    let ana = d.token("ana").await;
    let reply = json!({"cuerpo": "Ya quedó configurada."});
    let stored = d.call(Method::POST, &format!("tickets/{t}/respuestas"), &ana, reply).await;
    let note = json!({"cuerpo": "Nota interna", "interna": true});
    d.call(Method::POST, &format!("tickets/{t}/respuestas"), &ana, note).await;
    wait_until("ticket.respuesta_operador", within, async || {
        everything.accepted_of("ticket.respuesta_operador").len() == 1
    })
    .await;
    let replied = everything.accepted_of("ticket.respuesta_operador")[0].json();
    assert_eq!(replied["mensaje"]["id_detalle_ticket"], stored["data"]["id_detalle_ticket"]);
    assert_eq!(
        (replied["mensaje"]["direccion"].as_str(), replied["autor"]["id_usuario"].as_i64()),
        (Some("saliente"), Some(d.ana))
    );

    // Closed and given to the other operator: ticket.asignado and
    // ticket.estado; the subscriber of ticket.estado gets only that.
    let other = if assignee == d.ana { d.carla } else { d.ana };
    let change = json!({"estado": "cerrado", "asignado": other});
    d.call(Method::PATCH, &format!("tickets/{t}"), &ana, change).await;
    // The customer answers: the ticket reopens.
    d.save(&customer_mail("c2", Some("c1"))).await;
    wait_until("two ticket.estado at each", within, async || {
        everything.accepted_of("ticket.estado").len() == 2 && statuses.accepted_of("ticket.estado").len() == 2
    })
    .await;
    wait_until("the customer's reply", within, async || everything.accepted_of("ticket.respuesta_cliente").len() == 1)
        .await;
    let assigned = everything.accepted_of("ticket.asignado");
    assert_eq!(assigned.len(), 1);
    let assigned = assigned[0].json();
    assert_eq!(assigned["cambio"], json!({"campo": "asignado", "anterior": assignee, "nuevo": other}));
    assert_eq!(assigned["ticket"]["asignado"]["id_usuario"], other);
    // Deliveries are not ordered (rounds run them at once, retries reorder
    // them): the changes, in any order.
    let mut changes: Vec<Value> =
        statuses.accepted_of("ticket.estado").iter().map(|a| a.json()["cambio"].clone()).collect();
    changes.sort_by_key(|c| c["anterior"].to_string());
    assert_eq!(
        changes,
        [
            json!({"campo": "estado", "anterior": "abierto", "nuevo": "cerrado"}),
            json!({"campo": "estado", "anterior": "cerrado", "nuevo": "abierto"}),
        ]
    );
    let answer = everything.accepted_of("ticket.respuesta_cliente")[0].json();
    assert_eq!(
        (answer["ticket"]["id_ticket"].as_i64(), answer["ticket"]["estado"].as_str()),
        (Some(t), Some("abierto"))
    );

    // Everything sent: each event once at each of its subscribers, the
    // same event under the same id at both, every signature genuine.
    // The metrics count a round once its outcomes are recorded: all sent,
    // nothing pending, then.
    wait_until("eight sent, nothing pending", within, async || webhook_metrics(&d.app).await == (8, 0, 0, 0)).await;
    let at_everything = everything.accepted();
    assert_eq!(at_everything.len(), 6, "creado, respuesta_operador, asignado, 2 estado, respuesta_cliente");
    assert!(at_everything.values().all(|n| *n == 1), "{at_everything:?}");
    let at_statuses = statuses.accepted();
    assert_eq!(at_statuses.len(), 2);
    assert!(at_statuses.iter().all(|(id, n)| *n == 1 && at_everything.contains_key(id)), "{at_statuses:?}");
    assert!(everything.arrivals().iter().chain(statuses.arrivals().iter()).all(|a| a.genuine));
    assert_eq!(everything.arrivals().len() + statuses.arrivals().len(), 8, "no other request");

    // A rotated secret signs what follows; a removed subscription gets
    // nothing more.
    let rotated = admin(&d.app, &["rotate-secret", &statuses_id.to_string()]).await;
    let old = statuses.secret.lock().unwrap().clone();
    let new = rotated.lines().find_map(|l| l.strip_prefix("secret: ")).unwrap_or_else(|| panic!("{rotated}"));
    assert_ne!(new, old);
    statuses.set_secret(new);
    admin(&d.app, &["remove", &everything_id.to_string()]).await;
    d.call(Method::PATCH, &format!("tickets/{t}"), &ana, json!({"estado": "pendiente"})).await;
    wait_until("the third ticket.estado", within, async || statuses.accepted_of("ticket.estado").len() == 3).await;
    let last = statuses.arrivals().last().cloned().unwrap();
    assert_eq!(last.json()["cambio"]["nuevo"], "pendiente");
    assert!(last.genuine && last.signed_with(new) && !last.signed_with(&old), "signed with the new secret only");
    assert!(statuses.arrivals()[..2].iter().all(|a| a.signed_with(&old)), "and the earlier ones with the old");
    wait_until("nine sent, nothing pending", within, async || webhook_metrics(&d.app).await == (9, 0, 0, 0)).await;
    assert_eq!(everything.arrivals().len(), 6, "removed: nothing more");
}

async fn a_receiver_that_is_down_gets_every_event_once_it_is_back(backend: Backend) {
    let d = desk(backend, 3).await;
    let clock = d.app.clock.clone();
    let flaky = Receiver::closed(&clock);
    let gone = Receiver::start(&clock);
    gone.answer(410);
    let broken = Receiver::start(&clock);
    broken.answer(500);
    for r in [&flaky, &gone, &broken] {
        subscribe(&d.app, r, &["ticket.creado"]).await;
    }
    let within = Duration::from_secs(20);
    let t1 = d.save(&customer_mail("d1", None)).await;
    let t2 = d.save(&customer_mail("d2", None)).await;

    // First round: refused (flaky: retry), 500 (broken: retry), 410
    // (gone: given up at once).
    wait_until("the first attempts", within, async || webhook_metrics(&d.app).await == (0, 4, 2, 4)).await;
    assert!(flaky.arrivals().is_empty(), "not listening");
    assert_eq!(gone.arrivals().len(), 2);
    // The same two events went to all three; the retries wait for the
    // backoff, in app time.
    let events: Vec<String> = gone.arrivals().iter().map(|a| a.event_id.clone()).collect();
    let next = clock.now() + chrono::Duration::seconds(BACKOFF_SECS);
    for event in &events {
        let deliveries = d.app.db.deliveries_of_event(event).await.unwrap();
        let states: Vec<(DeliveryStatus, i32, Option<Timestamp>)> = deliveries
            .iter()
            .map(|d| (d.status, d.attempts, (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at)))
            .collect();
        let retry = (DeliveryStatus::Pending, 1, Some(next));
        assert_eq!(states, [retry, (DeliveryStatus::Failed, 1, None), retry], "{event}");
        assert_eq!(deliveries[1].last_error.as_deref(), Some("HTTP 410 Gone: the receiver asked to stop"));
        assert!(deliveries[0].last_error.is_some(), "why the refused attempt failed");
    }

    // The receiver comes back, failing at first.
    flaky.open();
    flaky.answer(500);
    clock.advance(chrono::Duration::seconds(BACKOFF_SECS));
    wait_until("the second attempts", within, async || webhook_metrics(&d.app).await == (0, 8, 2, 4)).await;
    assert_eq!(flaky.arrivals().len(), 2);

    // Then well: each event arrives; the broken receiver is given up
    // after its third attempt.
    flaky.answer(200);
    clock.advance(chrono::Duration::seconds(2 * BACKOFF_SECS));
    wait_until("the third attempts", within, async || webhook_metrics(&d.app).await == (2, 8, 4, 0)).await;
    for event in &events {
        let states: Vec<(DeliveryStatus, i32)> =
            d.app.db.deliveries_of_event(event).await.unwrap().iter().map(|d| (d.status, d.attempts)).collect();
        assert_eq!(states, [(DeliveryStatus::Sent, 3), (DeliveryStatus::Failed, 1), (DeliveryStatus::Failed, 3)]);
    }

    // Every event once accepted, its other arrivals retries of the same
    // event with the same bytes, every one signed.
    let arrivals = flaky.arrivals();
    assert_eq!(arrivals.len(), 4);
    assert!(arrivals.iter().all(|a| a.genuine && a.kind == "ticket.creado"), "{arrivals:?}");
    let accepted = flaky.accepted();
    assert_eq!(accepted.len(), 2);
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
    let mut tickets = Vec::new();
    for (id, _) in accepted {
        let tries: Vec<&Arrival> = arrivals.iter().filter(|a| a.event_id == id).collect();
        assert_eq!(tries.iter().map(|a| a.answered).collect::<Vec<_>>(), [500, 200], "{id}");
        assert_eq!(tries[0].body, tries[1].body, "the same event, byte for byte");
        tickets.push(tries[0].json()["ticket"]["id_ticket"].as_i64().unwrap());
    }
    tickets.sort();
    assert_eq!(tickets, [t1, t2]);
    assert_eq!(gone.arrivals().len(), 2, "410 is given up at once");
    assert_eq!(broken.arrivals().len(), 6, "three attempts each, then given up");
    assert!(broken.arrivals().iter().chain(gone.arrivals().iter()).all(|a| a.genuine));
}

crate::on_both_backends!(
    events_reach_their_subscribers_signed_once_each,
    a_receiver_that_is_down_gets_every_event_once_it_is_back,
);
