use crate::helpers::*;
use serde_json::Value;

async fn health_and_ready_answer_json(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["health", "ready"] {
        let res = app.client.get(format!("{}/{path}", app.address)).send().await.unwrap();
        assert_eq!(res.headers()["content-type"], "application/json");
        let (status, body) = json(res).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, body) = json(app.client.get(format!("{}/ready", app.address)).send().await.unwrap()).await;
    assert_eq!(body["database"], "ok");
}

async fn metrics_count_requests_and_report_the_backlog(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = app.consumer("crm", &[helpdesk_domain::model::Endpoint::InternalUsers]).await;
    for _ in 0..3 {
        app.post("UsuarioInterno/get", ("crm", &secret), &serde_json::json!({"user": "x"})).await;
    }
    app.post("UsuarioInterno/get", ("crm", "mal"), &serde_json::json!({"user": "x"})).await;
    app.client.get(format!("{}/api/no/existe/1", app.address)).send().await.unwrap();
    let res = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = res.text().await.unwrap();
    // The pool's default size, by backend.
    let pool_max = format!("helpdesk_db_pool_connections{{state=\"max\"}} {}", app.config.db.max_connections);
    for line in [
        "helpdesk_http_requests_total{endpoint=\"UsuarioInterno/get\",status=\"200\"} 3",
        "helpdesk_http_requests_total{endpoint=\"UsuarioInterno/get\",status=\"401\"} 1",
        "helpdesk_http_requests_total{endpoint=\"other\",status=\"404\"} 1",
        "helpdesk_http_request_duration_seconds_count{endpoint=\"UsuarioInterno/get\"} 4",
        "helpdesk_outbox_pending 0",
        &pool_max,
    ] {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
}

crate::on_both_backends!(health_and_ready_answer_json, metrics_count_requests_and_report_the_backlog);

async fn ready(app: &TestApp) -> (u16, Value) {
    json(app.client.get(format!("{}/ready", app.address)).send().await.unwrap()).await
}

/// A full disk, tried with a size cap: writes are refused with 503 (never
/// 500, nothing half-written), `/ready` says so with the reason before the
/// first refusal or at the next probe, and `/health` stays 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_a_full_sqlite_database_refuses_writes() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.database.sqlite_max_size_mib = 3;
        s.server.body_limit_bytes = 256 * 1024;
        s.server.ready_probe_secs = 2;
    })
    .await;
    let secret = app.consumer("canal_lectura", &[helpdesk_domain::model::Endpoint::MailSave]).await;
    let department = helpdesk_domain::model::NewDepartment { name: "Soporte".into(), synology_channel: None };
    helpdesk_domain::ports::DepartmentRepository::create_department(&*app.db, department).await.unwrap();
    assert_eq!(ready(&app).await.0, 200);
    let mut answers = Vec::new();
    let mut ready_before_refusal = Vec::new();
    for n in 0..200 {
        // 120 KiB of text, a few words (the search index stays small).
        let body = format!("correo {n}: {}", "texto de relleno ".repeat(7_500));
        let mail = serde_json::json!({
            "sistema": "canal_lectura", "subject": format!("lleno {n}"), "from": "cliente@example.com",
            "to": "soporte@example.com", "body": body, "date": "2025-10-10 12:00:00",
        });
        let (status, v) = json(app.post("correo/save", ("canal_lectura", &secret), &mail).await).await;
        assert!(status == 200 || status == 503, "{status}: {v}");
        answers.push(status);
        app.clock.advance(chrono::Duration::seconds(3));
        let (r, rv) = ready(&app).await;
        if status == 503 {
            assert_eq!(v["success"], false, "{v}");
            break;
        }
        ready_before_refusal.push((r, rv));
    }
    assert_eq!(answers.last(), Some(&503), "the cap was reached: {answers:?}");
    // The load balancer was told before (or as) writes began to fail.
    let (status, body) = ready(&app).await;
    assert_eq!((status, body["database"].as_str()), (503, Some("refuses writes")), "{body}");
    assert!(body["reason"].as_str().unwrap().contains("full"), "{body}");
    let ok = answers.iter().filter(|s| **s == 200).count();
    assert!(ok >= 3, "tickets were written before the cap: {answers:?}");
    // /ready turned 503 while writes still succeeded: less room was left
    // than the largest request may need.
    let warned = ready_before_refusal.iter().position(|(s, _)| *s == 503);
    assert!(warned.is_some(), "/ready said 200 up to the first refused write: {ready_before_refusal:?}");
    let health = app.client.get(format!("{}/health", app.address)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // Nothing half-written: as many tickets as 200s (plus none from the 503).
    let tickets = app.db.facts().await.unwrap().counts["ticket"];
    assert_eq!(tickets, ok as i64, "tickets in the store against 200 answers");
}

/// Runs `sql` as the test server's administrator (the `mariadb` client).
fn admin(url: &str, sql: &str) {
    let u = url::Url::parse(url).unwrap();
    let out = std::process::Command::new("mariadb")
        .args(["--protocol=TCP", "-e", sql])
        .arg(format!("-h{}", u.host_str().unwrap()))
        .arg(format!("-P{}", u.port().unwrap_or(3306)))
        .arg(format!("-u{}", u.username()))
        .output()
        .expect("the mariadb client");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A MariaDB account that may read but not write: /ready is 503, saying
/// the database refuses writes (what a read-only replica or a server
/// started --read-only looks like to us).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MariaDB on HELPDESK_TEST_MYSQL_URL; .ci/run runs it"]
async fn ready_is_503_on_a_mariadb_that_refuses_writes() {
    let app = spawn_app(Backend::Mysql).await;
    let url = app.settings.database.url.clone();
    let database = url.rsplit('/').next().unwrap().to_string();
    let user = format!("ro_{}", &database[database.len().saturating_sub(12)..]);
    admin(&url, &format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'ro'"));
    admin(&url, &format!("GRANT SELECT ON `{database}`.* TO '{user}'@'%'"));
    let mut settings = app.settings.clone();
    settings.database.url = url.replacen("mysql://root@", &format!("mysql://{user}:ro@"), 1);
    settings.database.migrate_on_start = false;
    settings.seed.demo = false;
    settings.server.port = 0;
    settings.audit.spool_dir = scratch_dir("spool-ro");
    let server = helpdesk_server::Application::build(settings).await.expect("starts read-only");
    let address = format!("http://127.0.0.1:{}", server.port());
    tokio::spawn(server.run_until_stopped());
    let (status, body) = json(reqwest::get(format!("{address}/ready")).await.unwrap()).await;
    admin(&url, &format!("DROP USER '{user}'@'%'"));
    assert_eq!((status, body["database"].as_str()), (503, Some("refuses writes")), "{body}");
    assert!(body["reason"].as_str().unwrap().contains("denied"), "{body}");
    let (status, body) = ready(&app).await;
    assert_eq!((status, body["database"].as_str()), (200, Some("ok")), "the writable server: {body}");
}

/// Nothing listens there: the database is "down".
fn dead_mysql() -> String {
    format!("mysql://root@127.0.0.1:{}/helpdesk", crate::helpers::refused_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_down_at_start_is_a_clear_error_when_migrating() {
    let mut settings = helpdesk_server::Settings::load(None).unwrap();
    settings.server.port = 0;
    settings.database.url = dead_mysql();
    settings.database.acquire_timeout_secs = 2;
    settings.audit.spool_dir = crate::helpers::scratch_dir("spool");
    let err = helpdesk_server::Application::build(settings).await.err().expect("start must fail");
    let msg = helpdesk_domain::Report(&err).to_string();
    assert!(msg.contains("cannot migrate") && msg.contains("connect"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_while_the_database_is_down() {
    let mut settings = helpdesk_server::Settings::load(None).unwrap();
    settings.server.port = 0;
    settings.database.url = dead_mysql();
    settings.database.acquire_timeout_secs = 2;
    settings.database.migrate_on_start = false;
    let spool = crate::helpers::scratch_dir("spool");
    settings.audit.spool_dir = spool.clone();
    settings.seed.demo = false;
    let app = helpdesk_server::Application::build(settings).await.expect("starts without migrating");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let (status, body) = json(client.get(format!("{address}/ready")).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (503, Some("unavailable")));
    let (status, _) = json(client.get(format!("{address}/health")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    // An API call is refused with 503, not 500; its record waits in the spool.
    let res = client
        .post(format!("{address}/api/UsuarioInterno/get"))
        .header("X-User-Consumo", "x")
        .header("X-User-Secret", "y")
        .json(&serde_json::json!({"user": "x"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "error");
    let spooled = std::fs::read_to_string(spool.join("bitacora.jsonl")).expect("the spool holds the record");
    let lines: Vec<Value> = spooled.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 1, "{spooled}");
    assert_eq!(lines[0]["entry"]["endpoint"], "UsuarioInterno/get");
    assert_eq!(lines[0]["outcome"]["status"], 503);
    assert!(lines[0]["id"].is_null(), "no id could be reserved: numbered when drained");
    let metrics = client.get(format!("{address}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("helpdesk_db_up 0\n"), "{metrics}");
    assert!(metrics.contains("helpdesk_audit_spool_records 1\n"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_and_the_offline_docs_page() {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, doc) = json(app.client.get(format!("{}/openapi.json", app.address)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let mut paths: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    paths.sort();
    let mut expected: Vec<String> =
        helpdesk_domain::model::Endpoint::ALL.iter().map(|e| format!("/api/{}", e.path())).collect();
    // The operators' ticket API: five endpoints on four paths.
    for path in ["tickets", "tickets/{id}", "tickets/{id}/respuestas", "tickets/{id}/adjuntos/{id_adjunto}"] {
        expected.push(format!("/api/{path}"));
    }
    expected.sort();
    assert_eq!(paths, expected, "one path per documented endpoint, and the ticket API's");
    assert!(doc["paths"]["/api/tickets/{id}"]["patch"].is_object());
    assert!(doc["components"]["securitySchemes"]["operator"].is_object());
    assert!(doc["paths"]["/api/SSO/refreshUserToken"]["get"].is_object());
    assert!(doc["paths"]["/api/correo/save"]["post"]["requestBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["consumer"].is_object());
    // The page and its assets are served by us: no CDN. `/docs` leads there.
    let page = app.client.get(format!("{}/docs", app.address)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui") && !html.contains("https://"), "offline page");
    for asset in ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-initializer.js"] {
        let res = app.client.get(format!("{}/docs/{asset}", app.address)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{asset}");
    }
}
