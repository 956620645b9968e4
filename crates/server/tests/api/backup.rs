//! `helpdesk-server backup` and `restore` through the binary: the restore
//! drill (a backup taken under load, the server killed, the backup restored
//! into a new folder and served) and the refusals that change nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::{runner, start_with, temp_dir};

const CONSUMER: (&str, &str) = ("UsuarioPrueba", "strDasdakdmsadsakming");
/// No delivery attempt inside the request: the drill measures the store.
const QUIET: [(&str, &str); 1] = [("HELPDESK__OUTBOX__INLINE_TIMEOUT_MS", "0")];

/// A ticket the API answered 200 for, and when.
#[derive(Debug, Clone)]
struct Answered {
    ticket: i64,
    subject: String,
    route: String,
    content: String,
    at: Instant,
}

/// The documented body of correo/save, with one attachment whose file the
/// client wrote into the storage first (what the reading channel does).
fn mail(subject: &str, route: &str) -> Value {
    json!({
        "sistema": "canal_lectura",
        "subject": subject,
        "from": "cliente@example.com",
        "to": "soporte@example.com",
        "body": format!("cuerpo de {subject}"),
        "date": "2025-10-10 12:00:00",
        "attachments": [{ "name": "nota.txt", "route": route, "type": "text/plain" }],
    })
}

fn post(client: &reqwest::blocking::Client, url: &str, body: &Value) -> reqwest::Result<(u16, Value)> {
    let res =
        client.post(url).header("X-User-Consumo", CONSUMER.0).header("X-User-Secret", CONSUMER.1).json(body).send()?;
    let status = res.status().as_u16();
    Ok((status, res.json().unwrap_or(Value::Null)))
}

fn ticket_of(v: &Value) -> i64 {
    v["ticket"].as_str().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("no ticket in {v}"))
}

/// Rows of an SQLite file through the `sqlite3` shell: `|`-separated.
fn sqlite(db: &Path, sql: &str) -> Vec<Vec<String>> {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("the sqlite3 shell (Debian's sqlite3; .ci/run installs it)");
    assert!(out.status.success(), "sqlite3 {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('|').map(str::to_string).collect()).collect()
}

/// 8 clients write tickets until told to stop; what each 200 said.
fn load(url: String, storage: PathBuf, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Vec<Answered>>> {
    (0..8)
        .map(|client| {
            let (url, storage, stop) = (url.clone(), storage.clone(), stop.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
                let mut answered = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let subject = format!("simulacro c{client} n{n}");
                    let route = format!("simulacro/c{client}-n{n}.txt");
                    let content = format!("adjunto del cliente {client}, correo {n}");
                    std::fs::create_dir_all(storage.join("simulacro")).unwrap();
                    std::fs::write(storage.join(&route), &content).unwrap();
                    // After the kill, requests fail: the drill counts only 200s.
                    let Ok((200, v)) = post(&http, &url, &mail(&subject, &route)) else { continue };
                    answered.push(Answered { ticket: ticket_of(&v), subject, route, content, at: Instant::now() });
                }
                answered
            })
        })
        .collect()
}

#[test]
fn restore_drill_every_ticket_answered_before_the_backup_is_there_once_after_a_kill() {
    let (a, b, backups) = (temp_dir(), temp_dir(), temp_dir());
    let backup_dir = backups.join("copia");
    let server = start_with(&a, &QUIET);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(server.url("api/correo/save"), a.join("data/storage"), stop.clone());
    std::thread::sleep(Duration::from_millis(1500));

    let began = Instant::now();
    let run_a = runner(&a);
    let (ok, out, err) = run_a(&["backup", "--to", backup_dir.to_str().unwrap()]);
    assert!(ok, "backup under load: {out}{err}");
    assert!(out.contains("backup written to"), "{out}");
    let ended = Instant::now();
    std::thread::sleep(Duration::from_millis(500));

    // While the server runs, a restore over its database is refused and
    // changes nothing.
    // (The file itself changes meanwhile: the clients keep writing, and a
    // WAL checkpoint may land in it. It must stay the same file, with
    // nothing set aside.)
    use std::os::unix::fs::MetadataExt;
    let served = || std::fs::metadata(a.join("data/helpdesk.db")).unwrap().ino();
    let before_refusal = served();
    let (ok, _, err) = run_a(&["restore", "--from", backup_dir.to_str().unwrap()]);
    assert!(!ok && err.contains("in use"), "a restore over a served database: {err}");
    assert!(!a.join("data/helpdesk.db.restaurando").exists());
    assert_eq!(served(), before_refusal, "the served database was replaced");
    let set_aside = std::fs::read_dir(a.join("data"))
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains("antes-de-restaurar"));
    assert!(!set_aside, "a refused restore set the database aside");

    // The server dies without a word (SIGKILL), the clients mid-request.
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    stop.store(true, Ordering::Relaxed);
    let answered: Vec<Answered> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let before: Vec<&Answered> = answered.iter().filter(|x| x.at < began).collect();
    let during = answered.iter().filter(|x| x.at >= began && x.at <= ended).count();
    assert!(before.len() >= 16, "the load wrote {} tickets before the backup", before.len());
    assert!(during > 0, "the server kept answering while the backup was taken");

    // A damaged copy is refused before anything is written.
    let damaged = backups.join("dañada");
    std::fs::create_dir_all(damaged.join("storage/simulacro")).unwrap();
    for entry in walk(&backup_dir) {
        let to = damaged.join(entry.strip_prefix(&backup_dir).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &to).unwrap();
    }
    let victim = damaged.join(format!("storage/{}", before[0].route));
    std::fs::write(&victim, "cambiado").unwrap();
    let c = temp_dir();
    let (ok, _, err) = runner(&c)(&["restore", "--from", damaged.to_str().unwrap()]);
    assert!(!ok && err.contains("does not match its checksum"), "{err}");
    assert!(!c.join("data/helpdesk.db").exists(), "nothing restored from a damaged backup");

    // The backup restored into a new folder.
    let (ok, out, err) = runner(&b)(&["restore", "--from", backup_dir.to_str().unwrap()]);
    assert!(ok, "restore: {out}{err}");
    let db = b.join("data/helpdesk.db");
    assert_eq!(sqlite(&db, "PRAGMA integrity_check"), [["ok"]]);
    let rows = sqlite(
        &db,
        "SELECT d.asunto, d.fk_id_ticket, a.ruta FROM detalle_ticket d \
         LEFT JOIN adjunto_ticket a ON a.fk_id_detalle_ticket = d.id_detalle_ticket WHERE d.asunto LIKE 'simulacro %'",
    );
    let mut by_subject: BTreeMap<&str, Vec<&Vec<String>>> = BTreeMap::new();
    for r in &rows {
        by_subject.entry(r[0].as_str()).or_default().push(r);
    }
    for x in &before {
        let found = by_subject.get(x.subject.as_str()).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(found.len(), 1, "{} (ticket {}) once: {found:?}", x.subject, x.ticket);
        assert_eq!(found[0][1], x.ticket.to_string(), "{}'s ticket", x.subject);
        assert_eq!(found[0][2], x.route, "{}'s attachment", x.subject);
        let file = std::fs::read_to_string(b.join("data/storage").join(&x.route)).unwrap_or_default();
        assert_eq!(file, x.content, "{}'s attachment file", x.route);
    }
    let tickets = sqlite(&db, "SELECT COUNT(*), COUNT(DISTINCT id_ticket) FROM ticket");
    assert_eq!(tickets[0][0], tickets[0][1]);

    // Served again, it takes new mail.
    let restored = start_with(&b, &QUIET);
    std::fs::create_dir_all(b.join("data/storage/nuevo")).unwrap();
    std::fs::write(b.join("data/storage/nuevo/n.txt"), "nuevo").unwrap();
    let http = reqwest::blocking::Client::new();
    let (status, v) =
        post(&http, &restored.url("api/correo/save"), &mail("después de restaurar", "nuevo/n.txt")).unwrap();
    assert_eq!(status, 200, "{v}");
    let newest = answered.iter().map(|x| x.ticket).max().unwrap_or(0);
    assert!(ticket_of(&v) > before.iter().map(|x| x.ticket).max().unwrap(), "{v} after {newest}");
    restored.stop();
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}

#[test]
fn backup_refuses_a_folder_that_holds_something() {
    let (a, target) = (temp_dir(), temp_dir());
    std::fs::write(target.join("algo"), "x").unwrap();
    let (ok, _, err) = runner(&a)(&["backup", "--to", target.to_str().unwrap()]);
    assert!(!ok && err.contains("is not empty"), "{err}");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 1, "nothing written into it");
}

fn fresh_mysql_url() -> String {
    tokio::runtime::Runtime::new().unwrap().block_on(helpdesk_db::testing::fresh_mysql_url())
}

fn mysql_rows(url: &str, sql: &str) -> Vec<String> {
    let u = url::Url::parse(url).unwrap();
    let out = std::process::Command::new("mariadb")
        .args(["-N", "-B", "--protocol=TCP"])
        .arg(format!("-h{}", u.host_str().unwrap()))
        .arg(format!("-P{}", u.port().unwrap_or(3306)))
        .arg(format!("-u{}", u.username()))
        .arg(u.path().trim_start_matches('/'))
        .args(["-e", sql])
        .output()
        .expect("the mariadb client");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
#[ignore = "needs MariaDB and mariadb-dump (HELPDESK_TEST_MYSQL_URL; .ci/run provides both)"]
fn mysql_backup_under_a_server_restores_into_another_database() {
    let (a, b, backups) = (temp_dir(), temp_dir(), temp_dir());
    let (source, target) = (fresh_mysql_url(), fresh_mysql_url());
    let copy = backups.join("copia");
    let on = |url: &str| vec![("HELPDESK__DATABASE__URL", url.to_string()), (QUIET[0].0, QUIET[0].1.to_string())];
    let env_a = on(&source);
    let env_a: Vec<(&str, &str)> = env_a.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = start_with(&a, &env_a);
    let http = reqwest::blocking::Client::new();
    let mut answered = Vec::new();
    for n in 0..5 {
        let route = format!("m/{n}.txt");
        std::fs::create_dir_all(a.join("data/storage/m")).unwrap();
        std::fs::write(a.join("data/storage").join(&route), format!("adjunto {n}")).unwrap();
        let (status, v) = post(&http, &server.url("api/correo/save"), &mail(&format!("mysql {n}"), &route)).unwrap();
        assert_eq!(status, 200, "{v}");
        answered.push(ticket_of(&v));
    }
    let with = |dir: &Path, env: &[(&str, &str)], args: &[&str]| {
        let out = crate::cli::command(dir).envs(env.iter().copied()).args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = with(&a, &env_a, &["backup", "--to", copy.to_str().unwrap()]);
    assert!(ok, "backup: {out}{err}");
    assert!(copy.join("helpdesk.sql").is_file() && copy.join("storage/m/4.txt").is_file());
    // Without mariadb-dump on the PATH: a clear error, and no folder left.
    let no_tool = backups.join("sin-herramienta");
    let mut env_no_tool = env_a.clone();
    env_no_tool.push(("PATH", "/nonexistent"));
    let (ok, _, err) = with(&a, &env_no_tool, &["backup", "--to", no_tool.to_str().unwrap()]);
    assert!(!ok && err.contains("mariadb-client"), "{err}");
    assert!(!no_tool.exists(), "an unfinished backup leaves nothing");
    // The server holds connections to its database: a restore over it is refused.
    let (ok, _, err) = with(&a, &env_a, &["restore", "--from", copy.to_str().unwrap()]);
    assert!(!ok && err.contains("other connection"), "{err}");
    server.stop();
    // Stopped, its database still holds its tables: never overwritten.
    let (ok, _, err) = with(&a, &env_a, &["restore", "--from", copy.to_str().unwrap()]);
    assert!(!ok && err.contains("tables") && err.contains("empty database"), "{err}");

    let env_b = on(&target);
    let env_b: Vec<(&str, &str)> = env_b.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (ok, out, err) = with(&b, &env_b, &["restore", "--from", copy.to_str().unwrap()]);
    assert!(ok, "restore: {out}{err}");
    let rows = mysql_rows(
        &target,
        "SELECT d.fk_id_ticket, a.ruta FROM detalle_ticket d JOIN adjunto_ticket a ON a.fk_id_detalle_ticket = d.id_detalle_ticket WHERE d.asunto LIKE 'mysql %' ORDER BY 1",
    );
    let expected: Vec<String> = answered.iter().enumerate().map(|(n, t)| format!("{t}\tm/{n}.txt")).collect();
    assert_eq!(rows, expected);
    assert_eq!(std::fs::read_to_string(b.join("data/storage/m/3.txt")).unwrap(), "adjunto 3");
    let restored = start_with(&b, &env_b);
    std::fs::create_dir_all(b.join("data/storage/m")).unwrap();
    std::fs::write(b.join("data/storage/m/nuevo.txt"), "nuevo").unwrap();
    let (status, v) = post(&http, &restored.url("api/correo/save"), &mail("mysql nuevo", "m/nuevo.txt")).unwrap();
    assert_eq!(status, 200, "{v}");
    assert!(ticket_of(&v) > *answered.iter().max().unwrap());
    restored.stop();
}

/// The migrations' folders of SQLite, oldest first: (version, folder).
fn sqlite_migrations() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite");
    let mut all: Vec<(String, PathBuf)> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name.split('_').next().unwrap().replace('-', ""), p)
        })
        .collect();
    all.sort();
    all
}

/// A copy of the backup in `from` at `to`, its manifest then edited by
/// `edit` (given the copy's folder, to change files and their entries).
fn copy_backup(from: &Path, to: &Path, edit: impl FnOnce(&mut Value, &Path)) {
    for entry in walk(from) {
        let dest = to.join(entry.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &dest).unwrap();
    }
    let path = to.join("manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut manifest, to);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

#[test]
fn an_older_backup_is_migrated_forward_and_a_newer_one_refused() {
    use sha2::Digest;
    let (a, backups) = (temp_dir(), temp_dir());
    start_with(&a, &QUIET).stop();
    let taken = backups.join("hoy");
    let (ok, out, err) = runner(&a)(&["backup", "--to", taken.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let migrations = sqlite_migrations();
    let (latest, latest_dir) = migrations.last().unwrap().clone();
    let previous = migrations[migrations.len() - 2].0.clone();

    // The same data one migration back: its down.sql run on the copy.
    let older = backups.join("anterior");
    copy_backup(&taken, &older, |m, dir| {
        let db = dir.join("helpdesk.db");
        let down = std::fs::read_to_string(latest_dir.join("down.sql")).unwrap();
        sqlite(&db, &format!("{down} DELETE FROM __diesel_schema_migrations WHERE version = '{latest}';"));
        let bytes = std::fs::read(&db).unwrap();
        m["schema_version"] = json!(previous);
        let entry = m["files"].as_array_mut().unwrap().iter_mut().find(|f| f["path"] == "helpdesk.db").unwrap();
        entry["bytes"] = json!(bytes.len());
        entry["sha256"] = json!(hex::encode(sha2::Sha256::digest(&bytes)));
    });
    let b = temp_dir();
    let (ok, out, err) = runner(&b)(&["restore", "--from", older.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("migrated forward: {latest}")), "{out}");
    let db = b.join("data/helpdesk.db");
    assert_eq!(sqlite(&db, "SELECT MAX(version) FROM __diesel_schema_migrations"), [[latest.clone()]]);

    // A backup of a newer build's schema: refused, nothing written.
    let newer = backups.join("futura");
    copy_backup(&taken, &newer, |m, _| m["schema_version"] = json!("99990101000000"));
    let c = temp_dir();
    let (ok, _, err) = runner(&c)(&["restore", "--from", newer.to_str().unwrap()]);
    assert!(!ok && err.contains("newer than this build's"), "{err}");
    assert!(!c.join("data/helpdesk.db").exists());
}
