//! The fault suite: the real server binary on a MariaDB of its own, under a
//! steady stream of distinct mails, while the database is killed, frozen
//! and restarted and the server itself is killed. Ignored by default (it
//! starts `mariadbd`); `.ci/run` runs it on its own, one test at a time, so
//! that its timings are not those of a machine busy with the other suites.

mod cluster;
mod mariadb;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use mariadb::PrivateMariaDb;

const CONSUMER: (&str, &str) = ("UsuarioPrueba", "strDasdakdmsadsakming");
/// The deadlines the servers run with here: a request may wait for a
/// connection this long, then for its statement this long.
const ACQUIRE_SECS: u64 = 2;
const STATEMENT_MS: u64 = 2000;
const CLIENTS: usize = 8;
const CLUSTER_CLIENTS: usize = 12;

/// The server binary, started in its own directory (where its spool lives).
struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(dir: &Path, db_url: &str) -> Server {
        Self::start_with(dir, db_url, crate::helpers::refused_port())
    }

    /// With the SMTP server at `smtp_port`.
    fn start_with(dir: &Path, db_url: &str, smtp_port: u16) -> Server {
        let mut child = crate::cli::command(dir)
            .env("HELPDESK__SERVER__PORT", "0")
            .env("HELPDESK__LOG__FORMAT", "json")
            .env("HELPDESK__DATABASE__URL", db_url)
            .env("HELPDESK__DATABASE__ACQUIRE_TIMEOUT_SECS", ACQUIRE_SECS.to_string())
            .env("HELPDESK__DATABASE__STATEMENT_TIMEOUT_MS", STATEMENT_MS.to_string())
            .env("HELPDESK__DATABASE__MAX_CONNECTIONS", "8")
            .env("HELPDESK__OUTBOX__INLINE_TIMEOUT_MS", "0")
            .env("HELPDESK__SMTP__PORT", smtp_port.to_string())
            .env("HELPDESK__AUDIT__SPOOL_DRAIN_INTERVAL_MS", "200")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("the binary runs");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "listening"
                {
                    let _ = tx.send(v["port"].as_u64().unwrap_or(0) as u16);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server did not start: {:#?}", log.lock().unwrap()));
        Server { child, port, log }
    }

    fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the log.
    fn stop(mut self) -> Vec<String> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One answer a client got (or the failure to get one).
#[derive(Debug, Clone)]
struct Answer {
    mail: String,
    /// `None`: no answer (connection refused or reset).
    status: Option<u16>,
    json: bool,
    started: Instant,
    ended: Instant,
    ticket: Option<i64>,
}

/// Clients sending distinct mails, each retrying its mail until it gets 200.
struct Load {
    answers: Arc<Mutex<Vec<Answer>>>,
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
    sent: Arc<AtomicUsize>,
}

fn mail(id: &str) -> Value {
    json!({
        "sistema": "canal_lectura",
        "subject": format!("Falla {id}"),
        "from": format!("cliente-{id}@clientes.test"),
        "to": "soporte@helpdesk.test",
        "body": format!("Cuerpo {id}"),
        "date": "2026-11-30 03:00:00",
        "headers": {"Message-ID": format!("<{id}@faults.test>")},
    })
}

impl Load {
    /// Starts the clients against whatever addresses `targets` holds (client
    /// `c` sends to the `c`-th, round robin).
    fn start(run: &str, targets: Arc<RwLock<Vec<String>>>, clients: usize) -> Load {
        let answers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let clients = (0..clients)
            .map(|c| {
                let (answers, stop, sent, client, targets) =
                    (answers.clone(), stop.clone(), sent.clone(), client.clone(), targets.clone());
                let run = run.to_string();
                tokio::spawn(async move {
                    let mut seq = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let id = format!("{run}-{c}-{seq}");
                        seq += 1;
                        sent.fetch_add(1, Ordering::SeqCst);
                        // The same mail until it is taken (at most a minute after the stop).
                        let give_up = Instant::now() + Duration::from_secs(90);
                        loop {
                            let address = {
                                let targets = targets.read().unwrap();
                                targets[c % targets.len()].clone()
                            };
                            let started = Instant::now();
                            let res = client
                                .post(format!("{address}/api/correo/save"))
                                .header("X-User-Consumo", CONSUMER.0)
                                .header("X-User-Secret", CONSUMER.1)
                                .json(&mail(&id))
                                .send()
                                .await;
                            let (status, body) = match res {
                                Ok(r) => {
                                    let status = r.status().as_u16();
                                    (Some(status), r.text().await.ok())
                                }
                                Err(_) => (None, None),
                            };
                            let parsed = body.as_deref().and_then(|b| serde_json::from_str::<Value>(b).ok());
                            let ticket = parsed.as_ref().and_then(|v| v["ticket"].as_str()?.parse().ok());
                            answers.lock().unwrap().push(Answer {
                                mail: id.clone(),
                                status,
                                json: parsed.is_some(),
                                started,
                                ended: Instant::now(),
                                ticket,
                            });
                            if status == Some(200) || Instant::now() > give_up {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                })
            })
            .collect();
        Load { answers, stop, clients, sent }
    }

    fn answers(&self) -> Vec<Answer> {
        self.answers.lock().unwrap().clone()
    }

    /// Waits until `n` more mails have been taken (200) than now.
    async fn until_taken(&self, n: usize, within: Duration) {
        let taken = |a: &[Answer]| a.iter().filter(|a| a.status == Some(200)).count();
        let goal = taken(&self.answers()) + n;
        let deadline = Instant::now() + within;
        while taken(&self.answers()) < goal {
            assert!(Instant::now() < deadline, "fewer than {n} mails taken within {within:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops sending new mails; each client finishes the one it is on.
    async fn finish(mut self) -> Vec<Answer> {
        self.stop.store(true, Ordering::SeqCst);
        for c in std::mem::take(&mut self.clients) {
            c.await.expect("a client panicked");
        }
        let answers = self.answers();
        let mails: BTreeSet<&str> = answers.iter().map(|a| a.mail.as_str()).collect();
        assert_eq!(mails.len(), self.sent.load(Ordering::SeqCst));
        answers
    }
}

/// Runs SQL on the database under test, returning rows as tab-separated lines.
trait Sql {
    fn rows(&self, sql: &str) -> Vec<String>;
    fn number(&self, sql: &str) -> i64 {
        let rows = self.rows(sql);
        rows.first().and_then(|r| r.trim().parse().ok()).unwrap_or_else(|| panic!("{sql}: {rows:?}"))
    }
}

/// A database of a private MariaDB.
struct On<'a>(&'a PrivateMariaDb, &'a str);

impl Sql for On<'_> {
    fn rows(&self, sql: &str) -> Vec<String> {
        self.0.query(self.1, sql)
    }
}

/// What the database holds, checked against what the clients were told.
fn assert_consistent(db: &dyn Sql, answers: &[Answer]) {
    let taken: BTreeMap<&str, i64> = answers
        .iter()
        .filter(|a| a.status == Some(200))
        .map(|a| (a.mail.as_str(), a.ticket.expect("200 names a ticket")))
        .collect();
    let mails: BTreeSet<&str> = answers.iter().map(|a| a.mail.as_str()).collect();
    assert_eq!(taken.len(), mails.len(), "every mail was eventually taken");
    let stored: BTreeMap<String, (i64, i64)> = db
        .rows(
            "SELECT message_id, COUNT(*), MIN(fk_id_ticket) FROM detalle_ticket \
             WHERE message_id LIKE '%@faults.test%' GROUP BY message_id",
        )
        .into_iter()
        .map(|row| {
            let cols: Vec<&str> = row.split('\t').collect();
            (cols[0].to_string(), (cols[1].parse().unwrap(), cols[2].parse().unwrap()))
        })
        .collect();
    for (mail, ticket) in &taken {
        let (n, stored_ticket) = stored
            .iter()
            .find(|(m, _)| m.contains(&format!("{mail}@faults.test")))
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{mail} answered 200 (ticket {ticket}) but is not stored"));
        assert_eq!(n, 1, "{mail} stored {n} times");
        assert_eq!(stored_ticket, *ticket, "{mail}: the answer named another ticket");
    }
    assert_eq!(stored.len(), taken.len(), "no mail stored that no client sent");
    let tickets = db.number(
        "SELECT COUNT(DISTINCT fk_id_ticket) FROM detalle_ticket WHERE message_id LIKE '%@faults.test%' AND nuevo_ticket",
    );
    assert_eq!(tickets, taken.len() as i64, "one ticket per mail");
    let orphans = db.number(
        "SELECT COUNT(*) FROM ticket t WHERE NOT EXISTS \
         (SELECT 1 FROM detalle_ticket d WHERE d.fk_id_ticket = t.id_ticket)",
    );
    assert_eq!(orphans, 0, "no ticket without its detail");
}

/// Waits until the server's spool is empty, then checks that the bitácora
/// has one `correo/save` row per answer a client got (any status), plus at
/// most `unanswered` rows of requests whose answer was lost with a killed
/// server (recorded before the answer, which never left), plus `others`
/// answered requests the test sent besides the load.
async fn assert_every_answer_audited(
    db: &dyn Sql,
    addresses: &[String],
    answers: &[Answer],
    unanswered: i64,
    others: i64,
) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for address in addresses {
        loop {
            let metrics = client.get(format!("{address}/metrics")).send().await.unwrap().text().await.unwrap();
            if metrics.contains("helpdesk_audit_spool_records 0\n") {
                break;
            }
            assert!(Instant::now() < deadline, "the spool of {address} did not drain:\n{metrics}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let answered = answers.iter().filter(|a| a.status.is_some()).count() as i64 + others;
    let rows = db.number("SELECT COUNT(*) FROM bitacora_log WHERE endpoint = 'correo/save'");
    let by_status =
        db.rows("SELECT status_http, COUNT(*) FROM bitacora_log WHERE endpoint = 'correo/save' GROUP BY status_http");
    assert!(
        (answered..=answered + unanswered).contains(&rows),
        "{rows} bitácora rows for {answered} answered requests (+ up to {unanswered} lost); by status: {by_status:?}"
    );
    let distinct = db.number("SELECT COUNT(DISTINCT id_bitacora_log) FROM bitacora_log");
    assert_eq!(distinct, db.number("SELECT COUNT(*) FROM bitacora_log"));
}

fn server_dir() -> PathBuf {
    crate::helpers::scratch_dir("fault-server")
}

async fn ready_within(address: &str, within: Duration) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = client.get(format!("{address}/ready")).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "{address} not ready within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts its own mariadbd; .ci/run runs the fault suite on its own"]
async fn the_database_killed_and_restarted() {
    let mut db = PrivateMariaDb::start();
    db.create_database("helpdesk");
    let server = Server::start(&server_dir(), &db.url("helpdesk"));
    let address = server.address();
    let load = Load::start("kill", Arc::new(RwLock::new(vec![address.clone()])), CLIENTS);
    load.until_taken(100, Duration::from_secs(60)).await;

    db.kill9();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // /ready follows the database within a second, both ways.
    let ready = reqwest::get(format!("{address}/ready")).await.unwrap();
    assert_eq!(ready.status(), 503);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let restarting = Instant::now();
    db.restart();
    let up = Instant::now();
    ready_within(&address, Duration::from_secs(1)).await;
    load.until_taken(100, Duration::from_secs(60)).await;
    let answers = load.finish().await;

    // While it was down: 503 JSON, each fast. (Requests that began before
    // the kill, or within a moment of it, may have met the dying server.)
    let down: Vec<&Answer> =
        answers.iter().filter(|a| a.started > killed + Duration::from_millis(500) && a.ended < restarting).collect();
    assert!(down.len() > 20, "requests were answered while the database was down: {}", down.len());
    for a in &down {
        assert_eq!(a.status, Some(503), "{a:?}");
        assert!(a.json, "a JSON answer: {a:?}");
    }
    // Each is answered at once, not after a database deadline (2 s here).
    // The spool's fsync shares the disk with whatever else the machine
    // writes, so a rare answer may wait for the disk: at most 2 % of them
    // over 100 ms, and none near a deadline.
    let slow: Vec<Duration> =
        down.iter().map(|a| a.ended - a.started).filter(|t| *t >= Duration::from_millis(100)).collect();
    assert!(slow.len() * 50 <= down.len(), "{} of {} answers took 100 ms or more: {slow:?}", slow.len(), down.len());
    assert!(slow.iter().all(|t| *t < Duration::from_secs(1)), "answers while down waited: {slow:?}");
    let first_ok = answers.iter().filter(|a| a.status == Some(200) && a.ended > up).map(|a| a.ended).min().unwrap();
    assert!(first_ok - up < Duration::from_secs(2), "first 200 {:?} after the database came back", first_ok - up);
    let others: Vec<_> = answers.iter().filter_map(|a| a.status).filter(|s| ![200, 503].contains(s)).collect();
    assert!(others.is_empty(), "only 200 and 503: {others:?}");

    assert_consistent(&On(&db, "helpdesk"), &answers);
    assert_every_answer_audited(&On(&db, "helpdesk"), std::slice::from_ref(&address), &answers, 0, 0).await;
    let ready = reqwest::get(format!("{address}/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts its own mariadbd; .ci/run runs the fault suite on its own"]
async fn the_database_frozen_then_thawed() {
    let db = PrivateMariaDb::start();
    db.create_database("helpdesk");
    let server = Server::start(&server_dir(), &db.url("helpdesk"));
    let address = server.address();
    let load = Load::start("freeze", Arc::new(RwLock::new(vec![address.clone()])), CLIENTS);
    load.until_taken(100, Duration::from_secs(60)).await;

    db.freeze();
    let frozen = Instant::now();
    // /ready answers within a second whatever the database does.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let asked = Instant::now();
    let ready = reqwest::get(format!("{address}/ready")).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(asked.elapsed() < Duration::from_secs(1), "/ready took {:?}", asked.elapsed());
    tokio::time::sleep(Duration::from_secs(12)).await;
    db.thaw();
    let thawed = Instant::now();
    load.until_taken(100, Duration::from_secs(60)).await;
    let answers = load.finish().await;

    let deadline = Duration::from_secs(ACQUIRE_SECS) + Duration::from_millis(STATEMENT_MS);
    let slowest = answers.iter().map(|a| a.ended - a.started).max().unwrap();
    assert!(
        slowest <= deadline + Duration::from_millis(750),
        "a request waited {slowest:?}, past the deadline of {deadline:?}"
    );
    let during: Vec<&Answer> = answers.iter().filter(|a| a.started > frozen && a.ended < thawed).collect();
    assert!(during.len() >= CLIENTS, "answers while frozen: {}", during.len());
    assert!(during.iter().all(|a| a.status == Some(503) && a.json), "{during:?}");
    assert_consistent(&On(&db, "helpdesk"), &answers);
    assert_every_answer_audited(&On(&db, "helpdesk"), std::slice::from_ref(&address), &answers, 0, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts its own mariadbd; .ci/run runs the fault suite on its own"]
async fn the_server_killed_mid_load_and_restarted() {
    let db = PrivateMariaDb::start();
    db.create_database("helpdesk");
    let dir = server_dir();
    let mut server = Server::start(&dir, &db.url("helpdesk"));
    let target = Arc::new(RwLock::new(vec![server.address()]));
    let load = Load::start("crash", target.clone(), CLIENTS);
    load.until_taken(150, Duration::from_secs(60)).await;
    server.kill9();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The same directory: what it spooled is still there.
    let server = Server::start(&dir, &db.url("helpdesk"));
    *target.write().unwrap() = vec![server.address()];
    load.until_taken(150, Duration::from_secs(60)).await;
    let answers = load.finish().await;
    let failed: Vec<_> = answers.iter().filter(|a| a.status.is_some_and(|s| s != 200)).collect();
    assert!(failed.is_empty(), "the database stayed up: only the lost connections fail: {failed:?}");
    assert_consistent(&On(&db, "helpdesk"), &answers);
    let lost = answers.iter().filter(|a| a.status.is_none()).count() as i64;
    assert_every_answer_audited(&On(&db, "helpdesk"), &[server.address()], &answers, lost.min(CLIENTS as i64), 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts its own mariadbd; .ci/run runs the fault suite on its own"]
async fn servers_started_together_on_an_empty_database_all_come_up() {
    let db = PrivateMariaDb::start();
    db.create_database("helpdesk");
    let url = db.url("helpdesk");
    let sqlite = format!("sqlite://{}", server_dir().join("shared.db").display());
    for url in [url.as_str(), sqlite.as_str()] {
        let starting: Vec<_> = (0..3)
            .map(|_| {
                let (dir, url) = (server_dir(), url.to_string());
                std::thread::spawn(move || Server::start(&dir, &url))
            })
            .collect();
        let servers: Vec<Server> = starting.into_iter().map(|t| t.join().expect("every server starts")).collect();
        for s in &servers {
            ready_within(&s.address(), Duration::from_secs(10)).await;
        }
        let logs: Vec<Vec<String>> = servers.into_iter().map(Server::stop).collect();
        for log in logs {
            let loud: Vec<&String> = log.iter().filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\"")).collect();
            // The dev profile's reminder is the one expected warning.
            let loud: Vec<_> = loud.into_iter().filter(|l| !l.contains("dev profile")).collect();
            assert!(loud.is_empty(), "{url}: a clean start and stop logs no warning: {loud:#?}");
        }
    }
    assert_eq!(db.count("helpdesk", "SELECT COUNT(*) FROM consumidor_api WHERE nombre = 'UsuarioPrueba'"), 1);
}
