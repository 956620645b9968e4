//! No configured secret leaks: the compiled binary, configured with
//! distinctive secrets, Synology and SMTP down, runs every documented
//! endpoint and its outbox; then the database's files, the server's log and
//! every answer are searched for every secret. SQLite only (the search reads
//! the database's files byte for byte).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::{command, temp_dir};
use crate::helpers::refused_port;

const BOT_TOKEN: &str = "BotTok7Q2x9Lm4Secreto";
const OUTGOING_TOKEN: &str = "OutTok3Vb8Kp1ZSecreto";
const WEBHOOK_TOKEN: &str = "HookTok5Rt6Yu2WSecreto";
const SMTP_PASSWORD: &str = "SmtpPw8Hj3Nc5DSecreto";
const MAILBOX_PASSWORD: &str = "MboxPw1Gf7Qe9SSecreto";
const USER_PASSWORD: &str = "UserPw4Kd9Ls2XSecreto";
const NEW_PASSWORD: &str = "NewPw6Tz1Bq8MSecreto";

/// Runs an admin command in `dir`, `stdin` piped in; its standard output.
fn admin(dir: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = command(dir)
        .env("HELPDESK__SEED__DEMO", "false")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Server {
    /// Log lines until one satisfies `until` (or `timeout` passes).
    fn read_log(&mut self, timeout: Duration, until: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = until(&line);
                    self.log.push(line);
                    if done {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn no_configured_secret_reaches_an_answer_the_log_or_the_database() {
    let dir = temp_dir();
    // Set up through the admin commands, as an operator would.
    admin(&dir, &["migrate"], "");
    admin(&dir, &["product", "add", "dolores", "Dolores"], "");
    admin(&dir, &["department", "add", "Soporte", "--synology-channel", "soporte"], "");
    admin(&dir, &["department", "set-webhook", "1"], &format!("{WEBHOOK_TOKEN}\n"));
    #[rustfmt::skip]
    admin(&dir, &["user", "add", "--login", "ana", "--name", "Ana", "--email", "ana@helpdesk.test",
        "--department", "1", "--can-take-tickets", "--systems", "dolores,factura_profesional", "--password-stdin"],
        &format!("{USER_PASSWORD}\n"));
    admin(
        &dir,
        &["mail-account", "add", "--host", "127.0.0.1", "--user", "soporte@helpdesk.test", "--department", "1"],
        &format!("{MAILBOX_PASSWORD}\n"),
    );
    let out = admin(&dir, &["consumer", "create", "probador", "--all-grants"], "");
    let consumer_secret = out.lines().find_map(|l| l.strip_prefix("X-User-Secret: ")).expect("secret").to_string();
    let out = admin(&dir, &["system", "add", "factura_profesional"], "");
    let system_token = out.lines().find_map(|l| l.strip_prefix("token: ")).expect("token").to_string();

    // Synology and SMTP refuse connections.
    let down = refused_port().to_string();
    let mut child = command(&dir)
        .env("HELPDESK__SEED__DEMO", "false")
        .env("HELPDESK__SERVER__PORT", "0")
        .env("HELPDESK__LOG__FORMAT", "json")
        .env("HELPDESK__SYNOLOGY__BASE_URL", format!("http://127.0.0.1:{down}"))
        .env("HELPDESK__SYNOLOGY__BOT_TOKEN", BOT_TOKEN)
        .env("HELPDESK__SYNOLOGY__OUTGOING_TOKEN", OUTGOING_TOKEN)
        .env("HELPDESK__SMTP__PORT", &down)
        .env("HELPDESK__SMTP__USERNAME", "ayuda")
        .env("HELPDESK__SMTP__PASSWORD", SMTP_PASSWORD)
        .env("HELPDESK__OUTBOX__POLL_INTERVAL_MS", "50")
        .env("HELPDESK__OUTBOX__BASE_BACKOFF_SECS", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the binary runs");
    let lines = crate::cli::stderr_lines(&mut child);
    let mut server = Server { child, lines, log: Vec::new() };
    let mut port = 0;
    assert!(
        server.read_log(Duration::from_secs(60), |l| {
            let v: Value = serde_json::from_str(l).unwrap_or_default();
            v["message"] == "listening"
        }),
        "no 'listening' line: {:#?}",
        server.log
    );
    if let Some(v) = server.log.iter().filter_map(|l| serde_json::from_str::<Value>(l).ok()).next_back() {
        port = v["port"].as_u64().expect("port") as u16;
    }
    let base = format!("http://127.0.0.1:{port}/api");

    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    // The bot's webhook first (it links the operator to Synology user 120,
    // so the ticket below also notifies them through the bot): its reply
    // to Synology fails and is retried in the background.
    let res = client
        .post(format!("{base}/Synology/BotAsistencia/configurarIdUsuario"))
        .form(&[("token", OUTGOING_TOKEN), ("user_id", "120"), ("username", "ana")])
        .send()
        .unwrap();
    let (status, text) = (res.status().as_u16(), res.text().unwrap());
    assert_eq!(status, 200, "{text}");
    let bot: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(bot["data"]["synology_response"]["pendiente"], true, "Synology is down: {bot}");
    assert!(bot["data"]["synology_response"]["error"].as_str().unwrap().contains("unreachable"), "{bot}");

    let mut answers: Vec<(String, u16, String)> =
        vec![("Synology/BotAsistencia/configurarIdUsuario".into(), status, text)];
    let mut call = |method: &str, path: &str, body: Value, bearer: Option<&str>| -> Value {
        let mut req = client
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{base}/{path}"))
            .header("X-User-Consumo", "probador")
            .header("X-User-Secret", &consumer_secret)
            .json(&body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let res = req.send().unwrap();
        let status = res.status().as_u16();
        let text = res.text().unwrap();
        answers.push((path.to_string(), status, text.clone()));
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"))
    };

    let v = call("POST", "UsuarioInterno/get", json!({"departamento": 1}), None);
    assert_eq!(v["code"], 200, "{v}");
    let v = call("POST", "correo/getConfigCorreos", json!({"estado": "activo"}), None);
    assert_eq!(v["data"][0]["password"], MAILBOX_PASSWORD, "the one answer that carries it: {v}");
    let v = call(
        "POST",
        "SSO/access",
        json!({"product": "dolores", "usuario": "ana", "password": USER_PASSWORD, "modo": "normal"}),
        None,
    );
    assert_eq!(v["code"], 200, "{v}");
    let user_token = v["data"]["token"].as_str().expect("a user token").to_string();
    // A wrong password too (its failure is logged and recorded).
    call("POST", "SSO/access", json!({"product": "dolores", "usuario": "ana", "password": NEW_PASSWORD}), None);
    let v = call("GET", "SSO/refreshUserToken", json!({"product": "dolores"}), Some(&user_token));
    assert_eq!(v["code"], 200, "{v}");
    let v = call("POST", "SSO/password/forgot", json!({"product": "dolores", "email": "ana@helpdesk.test"}), None);
    assert_eq!(v["code"], 200, "{v}");
    call(
        "POST",
        "SSO/password/reset",
        json!({"product": "dolores", "id": "1", "token": "no-es-el-token", "password": NEW_PASSWORD,
               "password_confirmation": NEW_PASSWORD}),
        None,
    );
    let v = call(
        "POST",
        "SSO/ADI/generateToken",
        json!({"username": "ana", "email": "ana@helpdesk.test", "sistema": "factura_profesional",
               "token": system_token}),
        None,
    );
    assert_eq!(v["code"], 200, "{v}");
    let ticket = v["data"]["base64_encoded"].as_str().expect("a ticket").to_string();
    let v = call("POST", "SSO/ADI/Token", json!({"token": ticket}), None);
    assert_eq!(v["code"], 200, "{v}");
    let v = call(
        "POST",
        "SSO/ADI/setToken",
        json!({"sistema": "factura_profesional", "estado": "activo", "update_token": "N"}),
        None,
    );
    assert_eq!(v["code"], 200, "{v}");
    // A ticket: an acknowledgement and the operator's e-mail (SMTP down), the
    // operator's bot message and the department's channel (Synology down).
    let v = call(
        "POST",
        "correo/save",
        json!({"sistema": "canal_lectura", "subject": "No puedo entrar", "from": "cliente@example.com",
               "to": "soporte@helpdesk.test", "body": "Hola", "date": "2025-10-10 12:00:00",
               "headers": {"Message-ID": "<secretos-1@example.com>"}}),
        None,
    );
    assert_eq!(v["success"], true, "{v}");
    let paths: std::collections::BTreeSet<&str> = answers.iter().map(|(p, _, _)| p.as_str()).collect();
    for endpoint in helpdesk_domain::model::Endpoint::ALL {
        assert!(paths.contains(endpoint.path()), "{} was not called", endpoint.path());
    }

    // The outbox retries (1 s, 2 s, ...) and the bot's reply gives up after
    // 1 + 2 + 4 s.
    assert!(
        server.read_log(Duration::from_secs(30), |l| l.contains("Synology reply given up")),
        "the bot's reply retries end: {:#?}",
        server.log
    );
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = server.child.wait().unwrap();
    server.read_log(Duration::from_secs(2), |_| false);
    assert!(status.success(), "{status:?}");

    let secrets = [
        ("bot token", BOT_TOKEN.to_string()),
        ("outgoing token", OUTGOING_TOKEN.to_string()),
        ("department webhook token", WEBHOOK_TOKEN.to_string()),
        ("SMTP password", SMTP_PASSWORD.to_string()),
        ("mailbox password", MAILBOX_PASSWORD.to_string()),
        ("user password", USER_PASSWORD.to_string()),
        ("new user password", NEW_PASSWORD.to_string()),
        ("consumer secret", consumer_secret.clone()),
        ("ADI system token", system_token.clone()),
    ];
    let log = server.log.join("\n");
    let stored = files(&dir.join("data"));
    // The failures were written where the search looks: the errors of the
    // attempts in the database, the bot's failure in the log.
    assert!(stored.iter().any(|(_, b)| contains(b, "Synology unreachable")), "attempts recorded");
    assert!(log.contains("Synology reply failed") && log.contains("unreachable"), "{log}");
    let mut leaks = Vec::new();
    for (what, secret) in &secrets {
        if log.contains(secret.as_str()) {
            leaks.push(format!("{what} in the log"));
        }
        for (file, bytes) in &stored {
            if contains(bytes, secret) {
                leaks.push(format!("{what} in {file}"));
            }
        }
        for (path, status, body) in &answers {
            // getConfigCorreos answers mailbox passwords: that is its purpose.
            if body.contains(secret.as_str()) && !(path == "correo/getConfigCorreos" && *what == "mailbox password") {
                leaks.push(format!("{what} in the answer of {path} ({status})"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}
