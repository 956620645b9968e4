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
