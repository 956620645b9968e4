//! The console end to end in real headless Chromium, through WebDriver
//! (Debian's `chromedriver`): controls are found by their labels and
//! button texts, as a screen reader names them. A mail sent to
//! `correo/save` is in the queue; the operator opens it, replies (the SMTP
//! server on loopback receives the reply, threaded), the customer's answer
//! joins the thread, the operator closes it. Hostile mail runs no script,
//! and axe-core (npm's, the file named by `AXE_CORE_JS`; `.ci/run` fetches
//! it) finds no serious or critical violation on the three pages.

use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use helpdesk_domain::ports::TicketRepository;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::tickets::{PASSWORD, customer_mail, desk};

/// `chromedriver` on a port of its own, stopped when dropped.
struct Driver {
    child: tokio::process::Child,
    port: u16,
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver runs (apt-get install chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen within 20 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver { child, port }
    }

    /// A new headless Chromium with a profile of its own.
    async fn browser(&self) -> Client {
        let profile = scratch_dir("chromium-profile");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900", format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!("an object"),
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a WebDriver session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The control a `<label>` with exactly this text names.
async fn labelled(c: &Client, label: &str) -> fantoccini::elements::Element {
    let l = c
        .find(Locator::XPath(&format!("//label[normalize-space()='{label}']")))
        .await
        .unwrap_or_else(|e| panic!("no label {label:?}: {e}"));
    let id = l.attr("for").await.unwrap().unwrap_or_else(|| panic!("label {label:?} names no control"));
    c.find(Locator::Id(&id)).await.unwrap_or_else(|e| panic!("label {label:?} names a missing #{id}: {e}"))
}

/// The button whose text is exactly `text`.
async fn button(c: &Client, text: &str) -> fantoccini::elements::Element {
    c.find(Locator::XPath(&format!("//button[normalize-space()='{text}']")))
        .await
        .unwrap_or_else(|e| panic!("no button {text:?}: {e}"))
}

/// The page's text; empty while a page is being replaced.
async fn text_of_page(c: &Client) -> String {
    match c.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the page's text contains `needle` (at most 10 s).
async fn wait_for_text(c: &Client, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = text_of_page(c).await;
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "{needle:?} never appeared: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// axe-core's serious and critical violations on the current page.
/// Presses keys as a person does (WebDriver key actions to whatever has
/// the focus).
async fn press(c: &Client, keys: &str) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let mut actions = KeyActions::new("teclado".into());
    for value in keys.chars() {
        actions = actions.then(KeyAction::Down { value }).then(KeyAction::Up { value });
    }
    c.perform_actions(actions).await.expect("keys pressed");
}

/// What has the focus: a link's text, else its id, else its text.
async fn focused(c: &Client) -> String {
    let script = "const e = document.activeElement;
                  return e.tagName === 'A' ? e.textContent.trim() : (e.id || e.textContent.trim());";
    c.execute(script, vec![]).await.unwrap().as_str().unwrap_or_default().to_string()
}

async fn accessibility_violations(c: &Client, axe: &str) -> Vec<String> {
    c.execute(axe, vec![]).await.expect("axe-core loads");
    let script = "const done = arguments[arguments.length - 1];
        axe.run(document, {resultTypes: ['violations']})
          .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                                     .map(v => v.id + ': ' + v.help + ' ' + v.nodes.map(n => n.target).join(' | '))))
          .catch(e => done(['axe failed: ' + e]));";
    let found = c.execute_async(script, vec![]).await.expect("axe-core runs");
    serde_json::from_value(found).expect("a list of violations")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium and chromium-driver and axe-core (AXE_CORE_JS); .ci/run installs them and runs this"]
async fn an_operator_works_a_ticket_in_chromium() {
    let axe_path = std::env::var("AXE_CORE_JS").expect("AXE_CORE_JS names axe-core's axe.min.js (.ci/run fetches it)");
    let axe = std::fs::read_to_string(&axe_path).expect("axe-core's file");
    let d = desk(Backend::Sqlite, true).await;
    let saved = d.save(&customer_mail("navegador-1", "No imprime la factura", json!({}))).await;
    let id: i64 = saved["ticket"].as_str().unwrap().parse().unwrap();
    let mut hostile = customer_mail("navegador-2", "Correo <script>window.__xss=1</script> hostil", json!({}));
    hostile["html"] = json!(
        "<p>Hola</p><script>window.__xss=2</script><img src=x onerror=\"window.__xss=3\">\
         <a href=\"javascript:window.__xss=4\">clic</a><svg onload=\"window.__xss=5\"></svg>\
         <iframe srcdoc=\"<script>parent.__xss=6</script>\"></iframe><style>body{display:none}</style>"
    );
    hostile["from"] = json!("Atacante \u{202e}lanigiro <atacante@ejemplo.test>");
    let hostile_id: i64 = d.save(&hostile).await["ticket"].as_str().unwrap().parse().unwrap();

    let driver = Driver::start().await;
    let c = driver.browser().await;
    let base = &d.app.address;

    // Sign in by the labels.
    c.goto(&format!("{base}/consola/entrar")).await.unwrap();
    let violations = accessibility_violations(&c, &axe).await;
    assert!(violations.is_empty(), "sign-in page: {violations:?}");
    labelled(&c, "Usuario").await.send_keys("ana").await.unwrap();
    labelled(&c, "Contraseña").await.send_keys(PASSWORD).await.unwrap();
    button(&c, "Entrar").await.click().await.unwrap();
    let queue = wait_for_text(&c, "No imprime la factura").await;
    assert!(queue.contains("Tickets: Abiertos"), "{queue}");
    let violations = accessibility_violations(&c, &axe).await;
    assert!(violations.is_empty(), "queue: {violations:?}");

    // Open it and reply.
    c.find(Locator::LinkText("No imprime la factura")).await.unwrap().click().await.unwrap();
    wait_for_text(&c, "Mensaje del cliente").await;
    let violations = accessibility_violations(&c, &axe).await;
    assert!(violations.is_empty(), "ticket page: {violations:?}");
    labelled(&c, "Respuesta").await.send_keys("Reinstale el controlador, por favor.").await.unwrap();
    button(&c, "Enviar").await.click().await.unwrap();
    wait_for_text(&c, "Respuesta registrada; en cola para envío.").await;

    // The SMTP server on loopback receives it, threaded.
    let sink = d.app.smtp.as_ref().expect("the desk's SMTP server");
    let deadline = Instant::now() + Duration::from_secs(15);
    let sent = loop {
        let found = sink
            .messages()
            .into_iter()
            .map(|m| String::from_utf8_lossy(&m).to_string())
            .find(|m| m.contains("Reinstale el controlador"));
        if let Some(m) = found {
            break m;
        }
        assert!(Instant::now() < deadline, "the reply never reached the SMTP server");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(sent.contains("In-Reply-To: <navegador-1@cliente.test>"), "{sent}");
    let message_id = sent
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: ").or_else(|| l.strip_prefix("Message-Id: ")))
        .expect("the reply's Message-ID")
        .trim()
        .to_string();

    // The customer answers it; the answer joins the thread.
    let mut answer = customer_mail("navegador-3", "Re: No imprime la factura", json!({"In-Reply-To": message_id}));
    answer["body"] = json!("Ya funciona, gracias.");
    let joined = d.save(&answer).await;
    assert_eq!(joined["ticket"].as_str().unwrap(), id.to_string(), "{joined}");
    c.refresh().await.unwrap();
    wait_for_text(&c, "Ya funciona, gracias.").await;

    // Close it with a last word.
    labelled(&c, "Respuesta").await.send_keys("Cerramos el caso.").await.unwrap();
    button(&c, "Enviar y cerrar").await.click().await.unwrap();
    wait_for_text(&c, "Respuesta registrada; en cola para envío.").await;
    assert_eq!(d.app.db.find_ticket(id).await.unwrap().unwrap().status.as_str(), "cerrado");

    // At 360 px wide (a phone): nothing wider than the screen, the reply
    // box and its buttons within reach, the queue's rows labelled.
    c.set_window_size(360, 760).await.unwrap();
    for path in ["/consola/tickets".to_string(), format!("/consola/tickets/{id}")] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        let fits = c
            .execute(
                "const w = window.innerWidth;
                 const out = [...document.querySelectorAll('body *')]
                   .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.right > w + 1 || r.left < -1); })
                   .map(e => e.tagName + '.' + e.className);
                 return [w, document.documentElement.scrollWidth, out.slice(0, 5)];",
                vec![],
            )
            .await
            .unwrap();
        let width = fits[0].as_i64().unwrap();
        assert!(width <= 400, "the window is narrow: {fits}");
        assert!(fits[1].as_i64().unwrap() <= width, "{path} scrolls sideways at {width} px: {fits}");
        assert_eq!(fits[2], json!([]), "{path}: elements past the edge at {width} px");
    }
    c.goto(&format!("{base}/consola/tickets?vista=cerrados")).await.unwrap();
    let script = "const td = document.querySelector('td[data-etiqueta]');
                  return td ? getComputedStyle(td, '::before').content : '';";
    assert_eq!(c.execute(script, vec![]).await.unwrap(), json!("\"Número: \""), "a row's cells say what they are");
    c.set_window_size(1280, 900).await.unwrap();

    // The keyboard alone: j/k in the queue, Enter opens, r replies (Tab to
    // "Enviar", Enter), n writes a note, ? lists the keys, e closes.
    let second: i64 =
        d.save(&customer_mail("teclado-1", "Sin sonido", json!({}))).await["ticket"].as_str().unwrap().parse().unwrap();
    d.save(&customer_mail("teclado-2", "Sin video", json!({}))).await;
    c.goto(&format!("{base}/consola/tickets")).await.unwrap();
    wait_for_text(&c, "Sin sonido").await;
    press(&c, "j").await;
    assert_eq!(focused(&c).await, "Sin video", "j: the first row");
    press(&c, "j").await;
    assert_eq!(focused(&c).await, "Sin sonido", "j: the next row");
    press(&c, "jk").await;
    assert_eq!(focused(&c).await, "Sin sonido", "k: back up");
    let outline = c.execute("return getComputedStyle(document.activeElement).outlineStyle;", vec![]).await.unwrap();
    assert_eq!(outline, json!("solid"), "the focus is visible");
    press(&c, "/").await;
    assert_eq!(focused(&c).await, "q", "/: the search box");
    c.execute("document.activeElement.blur();", vec![]).await.unwrap();
    press(&c, "jj").await;
    press(&c, "\u{E007}").await;
    wait_for_text(&c, "Mensaje del cliente").await;
    assert!(c.current_url().await.unwrap().as_str().ends_with(&format!("/consola/tickets/{second}")));
    press(&c, "r").await;
    assert_eq!(focused(&c).await, "cuerpo", "r: the reply box");
    press(&c, "Revise el volumen.").await;
    press(&c, "\u{E004}\u{E004}").await;
    assert_eq!(focused(&c).await, "Enviar", "Tab: the switch, then Enviar");
    press(&c, "\u{E007}").await;
    wait_for_text(&c, "Respuesta registrada; en cola para envío.").await;
    press(&c, "n").await;
    let note = c.execute("return [document.activeElement.id, document.getElementById('nota').checked];", vec![]);
    assert_eq!(note.await.unwrap(), json!(["cuerpo", true]), "n: a note");
    c.execute("document.activeElement.blur();", vec![]).await.unwrap();
    press(&c, "?").await;
    let open = "return document.getElementById('teclas').open;";
    assert_eq!(c.execute(open, vec![]).await.unwrap(), json!(true), "?: the keys");
    press(&c, "\u{E00C}").await;
    assert_eq!(c.execute(open, vec![]).await.unwrap(), json!(false), "Esc closes the list");
    press(&c, "e").await;
    wait_for_text(&c, "Cambios aplicados.").await;
    assert_eq!(d.app.db.find_ticket(second).await.unwrap().unwrap().status.as_str(), "cerrado");

    // Hostile mail: rendered, inert.
    c.goto(&format!("{base}/consola/tickets/{hostile_id}")).await.unwrap();
    let text = wait_for_text(&c, "Mensaje del cliente").await;
    assert!(text.contains("Correo <script>window.__xss=1</script> hostil"), "the subject as text: {text}");
    let ran = c.execute("return window.__xss === undefined && parent.__xss === undefined;", vec![]).await.unwrap();
    assert_eq!(ran, json!(true), "a script of the mail ran");
    let inline = c.execute("return document.querySelectorAll('script:not([src]), iframe, svg, img').length;", vec![]);
    assert_eq!(inline.await.unwrap(), json!(0));
    assert!(c.get_alert_text().await.is_err(), "no alert is open");

    c.close().await.unwrap();
}

/// Signs in through the form and waits for the queue.
async fn sign_in(c: &Client, base: &str, login: &str) {
    c.goto(&format!("{base}/consola/entrar")).await.unwrap();
    labelled(c, "Usuario").await.send_keys(login).await.unwrap();
    labelled(c, "Contraseña").await.send_keys(PASSWORD).await.unwrap();
    button(c, "Entrar").await.click().await.unwrap();
    wait_for_text(c, "Tickets: Abiertos").await;
}

/// What the issue asks of a live page: a change shows within 5 s, no reload.
const LIVE_WITHIN: Duration = Duration::from_secs(5);

/// Waits, without reloading, until the page's text contains `needle`; fails
/// past [`LIVE_WITHIN`].
async fn shows_live(c: &Client, needle: &str) {
    let started = Instant::now();
    loop {
        let text = text_of_page(c).await;
        if text.contains(needle) {
            return;
        }
        assert!(started.elapsed() < LIVE_WITHIN, "{needle:?} did not appear within 5 s: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two operators in two browsers, each on a server of its own when
/// `two_servers` (one database, as behind a load balancer): ana's open
/// queue shows a mail received through the other server, its count too,
/// her keyboard's place kept; on one ticket each sees the other's banner
/// and "está respondiendo"; ana's reply appears in carla's thread, and
/// carla's later reply is held for a look ("Enviar de todos modos").
async fn two_operators_share_a_ticket_live(backend: Backend, two_servers: bool) {
    use helpdesk_domain::ports::UserRepository;
    let d = desk(backend, false).await;
    let second_server = match two_servers {
        true => {
            let url = d.app.settings.database.url.clone();
            let app = TestApp::builder(backend)
                .with_clock(d.app.clock.clone())
                .with_settings(move |s| s.database.url = url)
                .spawn()
                .await;
            Some(app)
        }
        false => None,
    };
    let other = second_server.as_ref().unwrap_or(&d.app);
    let first: i64 =
        d.save(&customer_mail("vivo-1", "Pantalla azul", json!({}))).await["ticket"].as_str().unwrap().parse().unwrap();
    let ana_name = d.app.db.find_user(d.ana).await.unwrap().unwrap().name;
    let carla_name = d.app.db.find_user(d.carla).await.unwrap().unwrap().name;

    let driver = Driver::start().await;
    let (ana, carla) = (driver.browser().await, driver.browser().await);
    sign_in(&ana, &d.app.address, "ana").await;
    sign_in(&carla, &other.address, "carla").await;

    // Ana's queue, her keyboard on the ticket; a mail comes in through the
    // other server.
    shows_live(&ana, "Abiertos (1)").await;
    press(&ana, "j").await;
    assert_eq!(focused(&ana).await, "Pantalla azul");
    let (status, saved) = json(
        other.post("correo/save", ("canal_lectura", &d.channel), &customer_mail("vivo-2", "Sin red", json!({}))).await,
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    shows_live(&ana, "Sin red").await;
    shows_live(&ana, "Abiertos (2)").await;
    assert_eq!(focused(&ana).await, "Pantalla azul", "the update kept her place");

    // Both open the first ticket: each sees the other.
    ana.goto(&format!("{}/consola/tickets/{first}", d.app.address)).await.unwrap();
    carla.goto(&format!("{}/consola/tickets/{first}", other.address)).await.unwrap();
    shows_live(&ana, &format!("{carla_name} está viendo este ticket")).await;
    shows_live(&carla, &format!("{ana_name} está viendo este ticket")).await;
    labelled(&carla, "Respuesta").await.send_keys("Pruebe con otro cable.").await.unwrap();
    shows_live(&ana, &format!("{carla_name} está respondiendo")).await;

    // Ana answers first; her reply appears in carla's thread.
    let before = d.app.db.details_of(first).await.unwrap().len();
    labelled(&ana, "Respuesta").await.send_keys("Reinicie el equipo.").await.unwrap();
    button(&ana, "Enviar").await.click().await.unwrap();
    wait_for_text(&ana, "Respuesta registrada; en cola para envío.").await;
    shows_live(&carla, "Reinicie el equipo.").await;

    // Carla's reply, written before it arrived, is held for a look.
    button(&carla, "Enviar").await.click().await.unwrap();
    wait_for_text(&carla, "Llegó un mensaje nuevo mientras escribía").await;
    assert_eq!(d.app.db.details_of(first).await.unwrap().len(), before + 1, "only ana's reply");
    let draft = labelled(&carla, "Respuesta").await.prop("value").await.unwrap();
    assert_eq!(draft.as_deref(), Some("Pruebe con otro cable."), "her draft is kept");
    button(&carla, "Enviar de todos modos").await.click().await.unwrap();
    wait_for_text(&carla, "Respuesta registrada; en cola para envío.").await;
    assert_eq!(d.app.db.details_of(first).await.unwrap().len(), before + 2);

    ana.close().await.unwrap();
    carla.close().await.unwrap();
}

async fn live_in_two_browsers(backend: Backend) {
    two_operators_share_a_ticket_live(backend, false).await
}

crate::ignored_on_both_backends!(
    "needs Debian's chromium and chromium-driver; .ci/run installs them and runs this",
    "needs MariaDB, Debian's chromium and chromium-driver; .ci/run runs this";
    live_in_two_browsers
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MariaDB, Debian's chromium and chromium-driver; .ci/run runs this"]
async fn live_across_two_servers_on_one_mariadb() {
    two_operators_share_a_ticket_live(Backend::Mysql, true).await
}
