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
pub(crate) struct Running {
    pub(crate) child: Child,
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
    start_with(cwd, &[])
}

/// [`start`] with more settings in the environment.
pub(crate) fn start_with(cwd: &Path, env: &[(&str, &str)]) -> Running {
    let mut child = command(cwd)
        .envs(env.iter().copied())
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
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["message"] == "listening"
        {
            break v["port"].as_u64().expect("port") as u16;
        }
    };
    Running { child, port, log, lines }
}

impl Running {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// SIGTERM, then the exit status and the whole log.
    pub(crate) fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
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

/// `check-config`: the same checks as a start, nothing started: 0 and a
/// line saying so, or 1 and the setting's name and why.
#[test]
fn check_config_names_the_bad_setting_and_starts_nothing() {
    let dir = temp_dir();
    let out = command(&dir).arg("check-config").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("configuration ok: profile Dev, SQLite, listening on "), "{stdout}");
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "no database was created");
    for (var, value, key) in [
        ("HELPDESK__CONSOLA__PRESENCE_SECS", "2", "consola.presence_secs: must be 6 to 600"),
        ("HELPDESK__PROFILE", "prod", "keys.consumer_hmac"),
        ("HELPDESK__SERVER__PORT", "eighty", "server.port"),
    ] {
        let out = command(&dir).arg("check-config").env(var, value).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{var}={value}: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(key), "{var}={value}: {stderr}");
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
    let dir = temp_dir();
    let server = start(&dir);
    documented_examples_work(&dir, &format!("http://127.0.0.1:{}", server.port), None);
    drop(server);
}

/// The installed Debian package (`.ci/run` installs it, starts it as the
/// `helpdesk` user, makes a consumer with the installed admin command and
/// runs this with `HELPDESK_PACKAGED_BASE`, `HELPDESK_PACKAGED_CONSUMER` and
/// `HELPDESK_PACKAGED_SECRET`): the documented examples against it, with
/// that consumer's credentials in place of the documentation's.
#[test]
#[ignore = "needs the installed package's server; .ci/run runs it after dpkg -i"]
fn packaged_server_answers_the_documented_examples() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: .ci/run sets it"));
    let (base, name, secret) =
        (var("HELPDESK_PACKAGED_BASE"), var("HELPDESK_PACKAGED_CONSUMER"), var("HELPDESK_PACKAGED_SECRET"));
    documented_examples_work(&temp_dir(), &base, Some((&name, &secret)));
}

/// Runs the documentation's JavaScript examples (Node.js) against `base`,
/// with `consumer`'s credentials instead of the documented ones if given.
fn documented_examples_work(dir: &Path, base: &str, consumer: Option<(&str, &str)>) {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api/api-doc.txt")).unwrap();
    let example = |path: &str| {
        let js = js_example(&doc, path, base);
        match consumer {
            Some((name, secret)) => js
                .replace("\"X-User-Consumo\": \"UsuarioPrueba\"", &format!("\"X-User-Consumo\": \"{name}\""))
                .replace("\"strDasdakdmsadsakming\"", &format!("\"{secret}\"")),
            None => js,
        }
    };
    for path in ["UsuarioInterno/get", "correo/getConfigCorreos"] {
        let script = dir.join("example.mjs");
        std::fs::write(&script, example(path)).unwrap();
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
        std::fs::write(&script, example("correo/save")).unwrap();
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

/// The line of `list` whose second column is `name`.
fn row<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    list.lines().find(|l| l.split('\t').nth(1) == Some(name))
}

#[test]
fn admin_commands_manage_service_level_calendars() {
    let dir = temp_dir();
    let run = runner(&dir);
    let week = "lun 08:00-17:00; mar 08:00-17:00; mie 08:00-17:00; jue 08:00-17:00; vie 08:00-17:00";
    let (ok, list, err) = run(&["sla", "calendar", "list"]);
    assert!(ok, "{err}");
    let general = row(&list, "general").unwrap_or_else(|| panic!("the migrations' calendar: {list}"));
    assert!(general.ends_with(&format!("\tgeneral\tAmerica/Costa_Rica\t{week}\t-\t-")), "{general}");

    let (ok, out, err) = run(&[
        "sla",
        "calendar",
        "set",
        "ventas",
        "--zona",
        "America/Mexico_City",
        "--horario",
        "lun-vie 09:00-13:00 14:00-18:00; sab 09:00-12:00",
    ]);
    assert!(ok, "{err}");
    assert!(out.starts_with("calendar ventas saved (id "), "{out}");
    let (_, list, _) = run(&["sla", "calendar", "list"]);
    let ventas = row(&list, "ventas").unwrap_or_else(|| panic!("{list}"));
    let id = ventas.split('\t').next().unwrap().to_string();
    assert_eq!(
        ventas,
        format!(
            "{id}\tventas\tAmerica/Mexico_City\tlun 09:00-13:00 14:00-18:00; mar 09:00-13:00 14:00-18:00; \
             mie 09:00-13:00 14:00-18:00; jue 09:00-13:00 14:00-18:00; vie 09:00-13:00 14:00-18:00; \
             sab 09:00-12:00\t-\t-"
        )
    );

    // A bad zone or bad hours: refused with the reason, nothing written.
    let refused = [
        (["--zona", "Marte/Olympus", "--horario", "lun-vie 08:00-17:00"], "unknown time zone \"Marte/Olympus\""),
        (["--zona", "America/Costa_Rica", "--horario", "lunes 08:00-17:00"], "days are lun mar mie jue vie sab dom"),
        (["--zona", "America/Costa_Rica", "--horario", "lun 17:00-08:00"], "a range ends after it starts"),
        (["--zona", "America/Costa_Rica", "--horario", "lun 8-17"], "a time is HH:MM"),
    ];
    for (args, why) in refused {
        for name in ["otro", "ventas"] {
            let mut cmd = vec!["sla", "calendar", "set", name];
            cmd.extend(args);
            let (ok, _, err) = run(&cmd);
            assert!(!ok, "{cmd:?} was accepted");
            assert!(err.contains("error: --") && err.contains(why), "{cmd:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    let (_, after, _) = run(&["sla", "calendar", "list"]);
    assert_eq!(after, list, "a refused calendar writes nothing");

    // The same name replaces the zone and hours, keeping id and holidays.
    let (ok, out, err) = run(&["sla", "holiday", "add", "ventas", "2026-12-25"]);
    assert!(ok && out.contains("2026-12-25 is a holiday in calendar ventas"), "{out}{err}");
    assert!(run(&["sla", "holiday", "add", "ventas", "2026-01-01"]).0);
    let (ok, _, err) =
        run(&["sla", "calendar", "set", "ventas", "--zona", "America/Costa_Rica", "--horario", "lun-dom 00:00-24:00"]);
    assert!(ok, "{err}");
    let (_, list, _) = run(&["sla", "calendar", "list"]);
    let ventas = row(&list, "ventas").unwrap();
    assert!(
        ventas.starts_with(&format!("{id}\tventas\tAmerica/Costa_Rica\tlun 00:00-24:00; mar 00:00-24:00;")),
        "{ventas}"
    );
    assert!(ventas.ends_with("dom 00:00-24:00\t2026-01-01,2026-12-25\t-"), "{ventas}");
    assert!(run(&["sla", "holiday", "remove", "ventas", "2026-01-01"]).0);
    let (_, list, _) = run(&["sla", "calendar", "list"]);
    assert!(row(&list, "ventas").unwrap().ends_with("\t2026-12-25\t-"), "{list}");
    let (ok, _, err) = run(&["sla", "holiday", "add", "ventas", "25/12/2026"]);
    assert!(!ok && err.contains("YYYY-MM-DD"), "{err}");
    let (ok, _, err) = run(&["sla", "holiday", "add", "nada", "2026-12-25"]);
    assert!(!ok && err.contains("no calendar \"nada\""), "{err}");

    // Departments keep a calendar, or the default one again.
    let (ok, out, err) = run(&["department", "add", "Ventas"]);
    assert!(ok, "{err}");
    let department = out.trim().rsplit("(id ").next().unwrap().trim_end_matches(')').to_string();
    let (ok, out, err) = run(&["sla", "calendar", "assign", &department, "ventas"]);
    assert!(ok && out.contains(&format!("department {department} keeps calendar ventas")), "{out}{err}");
    let (_, list, _) = run(&["sla", "calendar", "list"]);
    assert!(row(&list, "ventas").unwrap().ends_with(&format!("\t2026-12-25\t{department}")), "{list}");
    let (ok, _, err) = run(&["sla", "calendar", "assign", &department, "--default"]);
    assert!(ok, "{err}");
    let (_, list, _) = run(&["sla", "calendar", "list"]);
    assert!(row(&list, "ventas").unwrap().ends_with("\t2026-12-25\t-"), "{list}");
    let (ok, _, err) = run(&["sla", "calendar", "assign", "9999", "ventas"]);
    assert!(!ok && err.contains("department 9999"), "{err}");
    let (ok, _, err) = run(&["sla", "calendar", "assign", &department, "nada"]);
    assert!(!ok && err.contains("no calendar \"nada\""), "{err}");
    assert!(!run(&["sla", "calendar", "assign", &department]).0, "a calendar or --default");
    assert!(!run(&["sla", "calendar", "assign", &department, "ventas", "--default"]).0, "not both");

    for sub in [
        &["sla", "--help"][..],
        &["sla", "calendar", "set", "--help"],
        &["sla", "calendar", "assign", "--help"],
        &["sla", "holiday", "add", "--help"],
        &["sla", "policy", "set", "--help"],
        &["user", "set", "--help"],
    ] {
        let out = command(&dir).args(sub).output().unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Usage"), "{sub:?}");
    }
}

#[test]
fn admin_commands_manage_service_level_policies() {
    let dir = temp_dir();
    let run = runner(&dir);
    let (ok, list, err) = run(&["sla", "policy", "list"]);
    assert!(ok && list.is_empty(), "no policy until one is set: {list}{err}");
    let set = |args: &[&str]| {
        let mut cmd = vec!["sla", "policy", "set"];
        cmd.extend(args);
        run(&cmd)
    };
    let (ok, out, err) =
        set(&["--prioridad", "alta", "--primera-respuesta", "60", "--resolucion", "480", "--aviso", "80"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "alta tickets in every department without its own: first response 60 min, resolution 480 min, \
             warning at 80% (business time)"
        ),
        "{out}"
    );
    let (_, list, _) = run(&["sla", "policy", "list"]);
    let alta = list.lines().find(|l| l.contains("\talta\t")).unwrap_or_else(|| panic!("{list}"));
    let id = alta.split('\t').next().unwrap().to_string();
    assert_eq!(alta, format!("{id}\t-\talta\t60\t480\t80%"));

    // The same scope and priority: replaced.
    let (ok, _, err) = set(&["--prioridad", "alta", "--primera-respuesta", "90", "--resolucion", "600"]);
    assert!(ok, "{err}");
    let (_, list, _) = run(&["sla", "policy", "list"]);
    let rows: Vec<&str> = list.lines().filter(|l| l.contains("\talta\t")).collect();
    assert_eq!(rows.len(), 1, "{list}");
    assert!(rows[0].ends_with("\t-\talta\t90\t600\t-"), "{list}");
    let id = rows[0].split('\t').next().unwrap().to_string();

    // One department's own.
    let (_, out, _) = run(&["department", "add", "Soporte"]);
    let department = out.trim().rsplit("(id ").next().unwrap().trim_end_matches(')').to_string();
    let (ok, out, err) = set(&[
        "--prioridad",
        "urgente",
        "--departamento",
        &department,
        "--primera-respuesta",
        "15",
        "--resolucion",
        "120",
        "--aviso",
        "50",
    ]);
    assert!(ok && out.contains(&format!("urgente tickets in department {department}")), "{out}{err}");
    let (_, list, _) = run(&["sla", "policy", "list"]);
    assert!(list.lines().any(|l| l.ends_with(&format!("\t{department}\turgente\t15\t120\t50%"))), "{list}");

    // Refused with the reason, nothing written.
    let refused: [(&[&str], &str); 5] = [
        (&["--prioridad", "altisima", "--primera-respuesta", "60", "--resolucion", "480"], "unknown priority"),
        (&["--prioridad", "baja", "--primera-respuesta", "0", "--resolucion", "480"], "at least one minute"),
        (&["--prioridad", "baja", "--primera-respuesta", "60", "--resolucion=-5"], "at least one minute"),
        (
            &["--prioridad", "baja", "--primera-respuesta", "60", "--resolucion", "480", "--aviso", "100"],
            "between 1 and 99",
        ),
        (
            &["--prioridad", "baja", "--departamento", "9999", "--primera-respuesta", "60", "--resolucion", "480"],
            "no department 9999",
        ),
    ];
    for (args, why) in refused {
        let (ok, _, err) = set(args);
        assert!(!ok && err.contains(why), "{args:?}: {err}");
    }
    let (_, after, _) = run(&["sla", "policy", "list"]);
    assert_eq!(after, list, "a refused policy writes nothing");

    let (ok, out, err) = run(&["sla", "policy", "remove", &id]);
    assert!(ok && out.contains(&format!("policy {id} removed")), "{out}{err}");
    let (_, list, _) = run(&["sla", "policy", "list"]);
    assert!(!list.contains("\talta\t") && list.contains("\turgente\t"), "{list}");
    let (ok, _, err) = run(&["sla", "policy", "remove", &id]);
    assert!(!ok && err.contains(&format!("no policy {id}")), "{err}");
}

#[test]
fn admin_commands_set_a_users_status_and_ticket_access() {
    let dir = temp_dir();
    let run = runner(&dir);
    let (ok, _, err) =
        run(&["user", "add", "--login", "ana", "--name", "Ana", "--email", "ana@ejemplo.test", "--can-take-tickets"]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&["user", "set", "ana", "--inactivo"]);
    assert!(ok, "{err}");
    assert!(out.contains("user ana (id ") && out.contains("): inactivo\n"), "{out}");
    assert!(out.contains("open tickets moved off ana: 0"), "{out}");
    let (ok, out, err) = run(&["user", "set", "ana@ejemplo.test", "--activo", "--acceso-ticket", "N"]);
    assert!(ok, "{err}");
    assert!(out.contains("): acceso_ticket N\n") && out.contains("): activo\n"), "{out}");
    assert!(!out.contains("moved"), "activating moves nothing here (the worker assigns): {out}");
    let (ok, _, err) = run(&["user", "set", "nadie", "--activo"]);
    assert!(!ok && err.contains("no user nadie"), "{err}");
    assert!(!run(&["user", "set", "ana"]).0, "something to change");
    assert!(!run(&["user", "set", "ana", "--activo", "--inactivo"]).0, "one or the other");
    assert!(!run(&["user", "set", "ana", "--acceso-ticket", "quizas"]).0);
}

/// The dev seed: its service levels cover new tickets; deactivating an
/// operator moves their open tickets to the other one, then to nobody.
#[test]
fn deactivating_an_operator_moves_their_open_tickets() {
    let dir = temp_dir();
    let run = runner(&dir);
    // Seeded at start-up.
    start(&dir).stop();
    let (_, policies, _) = run(&["sla", "policy", "list"]);
    let mut seeded: Vec<String> =
        policies.lines().map(|l| l.split('\t').skip(1).collect::<Vec<_>>().join(" ")).collect();
    seeded.sort();
    assert_eq!(
        seeded,
        ["- alta 60 480 80%", "- baja 480 4320 80%", "- normal 240 1440 80%", "- urgente 30 240 80%"],
        "{policies}"
    );

    // Only operador1 takes tickets while the mail arrives.
    let (ok, out, err) = run(&["user", "set", "operador2", "--acceso-ticket", "N"]);
    assert!(ok, "{err}");
    let id_of = |out: &str, login: &str| -> String {
        let rest = out.split(&format!("user {login} (id ")).nth(1).unwrap_or_else(|| panic!("{out}"));
        rest.split(')').next().unwrap().to_string()
    };
    let operador2 = id_of(&out, "operador2");
    let server = start(&dir);
    let res = reqwest::blocking::Client::new()
        .post(server.url("api/correo/save"))
        .header("X-User-Consumo", "UsuarioPrueba")
        .header("X-User-Secret", "strDasdakdmsadsakming")
        .json(&serde_json::json!({
            "sistema": "UsuarioPrueba",
            "subject": "No imprime",
            "from": "Cliente <cliente@ejemplo.test>",
            "to": "soporte@helpdesk.test",
            "body": "La impresora no imprime.",
            "date": "2026-11-30 12:00:00",
            "headers": {"Message-ID": "<sla-cli-1@cliente.test>"}
        }))
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().unwrap();
    let holder = body["id_usuario_asignado"].as_str().unwrap_or_else(|| panic!("{body}")).to_string();
    server.stop();

    assert!(run(&["user", "set", "operador2", "--acceso-ticket", "S"]).0);
    let (ok, out, err) = run(&["user", "set", "operador1", "--inactivo"]);
    assert!(ok, "{err}");
    assert_eq!(id_of(&out, "operador1"), holder, "operador1 held the ticket: {out}");
    assert_ne!(holder, operador2);
    assert!(out.contains("open tickets moved off operador1: 1"), "{out}");
    // Now operador2 holds it; with nobody else in the department it goes to nobody.
    let (ok, out, err) = run(&["user", "set", "operador2", "--inactivo"]);
    assert!(ok && out.contains("open tickets moved off operador2: 1"), "{out}{err}");
    let (ok, out, err) = run(&["user", "set", "operador1", "--inactivo"]);
    assert!(ok && out.contains("open tickets moved off operador1: 0"), "{out}{err}");
}
