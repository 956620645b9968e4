//! The compiled binary as a user runs it: start-up in a fresh directory,
//! bad configuration, graceful stop, admin commands, and the documented
//! JavaScript examples run by Node.js against it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_helpdesk-server");

pub(crate) fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("helpdesk-tests").join(format!("cli-{:016x}", rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Runs the binary with a clean HELPDESK_* environment.
pub(crate) fn command(cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(cwd);
    for (k, _) in std::env::vars() {
        if k.starts_with("HELPDESK") {
            c.env_remove(k);
        }
    }
    c
}

/// A server started by the binary; its stderr lines arrive on `lines`.
struct Running {
    child: Child,
    port: u16,
    log: Vec<String>,
    lines: mpsc::Receiver<String>,
}

/// The lines the child writes to its (piped) stderr, as they come.
pub(crate) fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Runs an admin command in `dir`: whether it succeeded, its stdout and stderr.
pub(crate) fn runner(dir: &Path) -> impl Fn(&[&str]) -> (bool, String, String) + '_ {
    move |args: &[&str]| {
        let out = command(dir).args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn start(cwd: &Path) -> Running {
    let mut child = command(cwd)
        .env("HELPDESK__SERVER__PORT", "0")
        .env("HELPDESK__LOG__FORMAT", "json")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the binary runs");
    let lines = stderr_lines(&mut child);
    let mut log = Vec::new();
    let port = loop {
        let line =
            lines.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("no 'listening' line: {log:#?}"));
        log.push(line.clone());
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["message"] == "listening" {
                break v["port"].as_u64().expect("port") as u16;
            }
        }
    };
    Running { child, port, log, lines }
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// SIGTERM, then the exit status and the whole log.
    fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.log.push(l);
        }
        (status, std::mem::take(&mut self.log))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn bad_configuration_stops_the_server_with_one_line_naming_the_key() {
    let dir = temp_dir();
    let cases = [
        ("HELPDESK__DATABASE__URL", "postgres://localhost/helpdesk", "database.url"),
        ("HELPDESK__DATABASE__URL", "mysql://root@127.0.0.1:3306/", "database.url"),
        ("HELPDESK__DATABASE__URL", "sqlite:///proc/no-such-dir/helpdesk.db", "database.url"),
        ("HELPDESK__SERVER__PORT", "eighty", "server.port"),
        ("HELPDESK__PROFILE", "prod", "keys.consumer_hmac"),
        ("HELPDESK__PROFILE", "staging", "profile"),
        ("HELPDESK__KEYS__SECRET_BOX", "short", "keys.secret_box"),
        ("HELPDESK__LOG__FORMAT", "xml", "log.format"),
    ];
    for (var, value, key) in cases {
        let out = command(&dir).env(var, value).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={value} must stop the server");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{var}={value}: one line, got {stderr}");
        assert!(lines[0].starts_with("error: ") && lines[0].contains(key), "{var}={value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn the_server_starts_on_sqlite_in_a_fresh_directory_and_stops_gracefully() {
    let dir = temp_dir();
    let server = start(&dir);
    let client = reqwest::blocking::Client::new();
    for path in ["health", "ready"] {
        let res = client.get(server.url(path)).send().unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "application/json");
    }
    assert!(dir.join("data/helpdesk.db").exists(), "the SQLite file lives under data/");

    // Secrets sent to the API never reach the log.
    let res = client
        .post(server.url("api/UsuarioInterno/get"))
        .header("X-User-Consumo", "UsuarioPrueba")
        .header("X-User-Secret", "strDasdakdmsadsakming")
        .json(&serde_json::json!({"user": "operador1", "password": "Log-Secret-5151", "pin": "90817"}))
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);

    let (status, log) = server.stop();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    let all = log.join("\n");
    assert!(!all.contains("Log-Secret-5151") && !all.contains("90817") && !all.contains("strDasdakdmsadsakming"));
    assert!(log.iter().any(|l| l.contains("\"bitacora\"")), "request lines carry the bitácora id: {all}");
}

/// The JavaScript example of `path` in the vendored documentation, aimed at
/// `base` and printing `{status, body}`.
fn js_example(doc: &str, path: &str, base: &str) -> String {
    let marker = format!("const url = new URL(\n    \"https://calidad.api.cyberfuel.com/api/{path}\"");
    let start = doc.find(&marker).unwrap_or_else(|| panic!("no JavaScript example for {path}"));
    let end_marker = ".then(response => response.json());";
    let end = start + doc[start..].find(end_marker).expect("example end");
    let snippet = &doc[start..end];
    format!(
        "{}.then(async r => console.log(JSON.stringify({{status: r.status, body: await r.json()}})));\n",
        snippet.replace("https://calidad.api.cyberfuel.com", base)
    )
}

#[test]
fn the_documented_javascript_examples_run_verbatim_against_the_dev_server() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api/api-doc.txt")).unwrap();
    let dir = temp_dir();
    let server = start(&dir);
    let base = format!("http://127.0.0.1:{}", server.port);
    for path in ["UsuarioInterno/get", "correo/getConfigCorreos"] {
        let script = dir.join("example.mjs");
        std::fs::write(&script, js_example(&doc, path, &base)).unwrap();
        let out = Command::new("node").arg(&script).output().expect("Node.js runs (the machines have it)");
        assert!(out.status.success(), "{path}: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["status"], 200, "{path}: {v}");
        let body = &v["body"];
        let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["data", "status", "message", "code", "id_bitacora_log"], "{path}");
        assert!(body["data"].is_array() && body["id_bitacora_log"].is_i64(), "{path}: {body}");
    }
    // correo/save answers flat; run twice, the second is the same mail.
    let mut first = Value::Null;
    for round in 0..2 {
        let script = dir.join("save.mjs");
        std::fs::write(&script, js_example(&doc, "correo/save", &base)).unwrap();
        let out = Command::new("node").arg(&script).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["status"], 200, "{v}");
        let body = v["body"].clone();
        let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "success",
                "message",
                "ticket",
                "id_detalle_ticket",
                "notificacion_SLA_Synology",
                "notificacion_SLA_Correo",
                "id_departamento_asignado",
                "id_usuario_asignado"
            ]
        );
        assert_eq!(body["success"], true);
        if round == 0 {
            first = body;
        } else {
            assert_eq!(body["ticket"], first["ticket"], "the same mail twice is one ticket");
        }
    }
    drop(server);
}

#[test]
fn admin_commands_manage_consumers_and_every_one_has_help() {
    let dir = temp_dir();
    for sub in [
        &["--help"][..],
        &["consumer", "--help"],
        &["consumer", "create", "--help"],
        &["product", "add", "--help"],
        &["department", "add", "--help"],
        &["user", "add", "--help"],
        &["mail-account", "add", "--help"],
        &["migrate", "--help"],
    ] {
        let out = command(&dir).args(sub).output().unwrap();
        assert!(out.status.success(), "{sub:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{sub:?}");
    }
    let run = runner(&dir);
    let (ok, out, err) =
        run(&["consumer", "create", "canal_lectura", "--grant", "correo/save", "--grant", "correo/getConfigCorreos"]);
    assert!(ok, "{err}");
    let secret = out.lines().find_map(|l| l.strip_prefix("X-User-Secret: ")).expect("secret printed once").to_string();
    assert!(secret.len() >= 40);
    let (ok, out, _) = run(&["consumer", "list"]);
    assert!(ok);
    assert!(out.contains("canal_lectura\tactivo\tcorreo/getConfigCorreos,correo/save"), "{out}");
    assert!(!out.contains(&secret), "the secret is shown only at creation");
    let (ok, _, err) = run(&["consumer", "create", "otro", "--grant", "correo/nada"]);
    assert!(!ok && err.contains("unknown endpoint"), "{err}");
    let (ok, _, err) = run(&["consumer", "create", "canal_lectura", "--all-grants"]);
    assert!(!ok && err.contains("duplicate"), "{err}");
    let (ok, _, _) = run(&["consumer", "disable", "canal_lectura"]);
    assert!(ok);
    let (_, out, _) = run(&["consumer", "list"]);
    assert!(out.contains("canal_lectura\tinactivo"), "{out}");
    let (ok, _, err) = run(&["consumer", "disable", "nadie"]);
    assert!(!ok && err.contains("not found"), "{err}");
}

#[test]
fn admin_commands_manage_integrated_systems() {
    let dir = temp_dir();
    let run = runner(&dir);
    let token_of = |out: &str| out.lines().find_map(|l| l.strip_prefix("token: ")).expect("token printed").to_string();
    let (ok, out, err) = run(&["system", "add", "factura_profesional"]);
    assert!(ok, "{err}");
    let first = token_of(&out);
    let (ok, _, err) = run(&["system", "add", "FACTURA_PROFESIONAL"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, out, _) = run(&["system", "rotate-token", "factura_profesional"]);
    assert!(ok);
    let second = token_of(&out);
    assert_ne!(first, second);
    assert_eq!(second.len(), 48);
    let (ok, _, _) = run(&["system", "disable", "factura_profesional"]);
    assert!(ok);
    let (_, out, _) = run(&["system", "list"]);
    assert!(out.contains("factura_profesional\tinactivo"), "{out}");
    assert!(!out.contains(&second));
    let (ok, _, err) = run(&["system", "rotate-token", "nada"]);
    assert!(!ok && err.contains("not found"), "{err}");
    assert!(command(&dir).args(["system", "--help"]).output().unwrap().status.success());
}

#[test]
fn admin_commands_manage_product_access() {
    let dir = temp_dir();
    let run = runner(&dir);
    assert!(run(&["product", "add", "mesa", "Mesa de ayuda"]).0);
    let (ok, _, err) = run(&["user", "add", "--login", "ana", "--name", "Ana", "--email", "ana@ejemplo.test"]);
    assert!(ok, "{err}");
    let (_, out, _) = run(&["product", "list"]);
    assert!(out.contains("\tmesa\tactivo\ttodos\t-\tMesa de ayuda"), "open to all by default: {out}");
    let (ok, out, err) =
        run(&["product", "set", "mesa", "--access", "asignado", "--reset-url", "https://mesa.ejemplo.test/clave"]);
    assert!(ok, "{err}");
    assert!(out.contains("access asignado"), "{out}");
    let (_, out, _) = run(&["product", "list"]);
    assert!(out.contains("\tmesa\tactivo\tasignado\thttps://mesa.ejemplo.test/clave\t"), "{out}");
    let (ok, out, err) = run(&["user", "grant-product", "ana", "mesa"]);
    assert!(ok && out.contains("may now sign in to mesa"), "{out}{err}");
    let (ok, _, err) = run(&["user", "grant-product", "ana", "nada"]);
    assert!(!ok && err.contains("no product nada"), "{err}");
    let (ok, _, err) = run(&["product", "set", "nada", "--status", "inactivo"]);
    assert!(!ok && err.contains("nada"), "{err}");
    let (ok, _, _) = run(&["product", "set", "mesa", "--default-reset-url", "--status", "inactivo"]);
    assert!(ok);
    let (_, out, _) = run(&["product", "list"]);
    assert!(out.contains("\tmesa\tinactivo\tasignado\t-\t"), "{out}");
    assert!(run(&["user", "revoke-product", "ana", "mesa"]).0);
    for sub in [&["product", "set", "--help"][..], &["user", "grant-product", "--help"]] {
        assert!(command(&dir).args(sub).output().unwrap().status.success(), "{sub:?}");
    }
}
