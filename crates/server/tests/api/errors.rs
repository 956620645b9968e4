//! Every client mistake is a JSON 4xx with a clear message, and is audited.

use helpdesk_domain::model::Endpoint;
use helpdesk_domain::ports::AuditRepository;
use serde_json::{Value, json};

use crate::helpers::*;

async fn assert_error(app: &TestApp, res: reqwest::Response, status: u16, needle: &str) -> Value {
    let (got, body) = json(res).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["code"], status, "{body}");
    assert!(body["data"].is_null());
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
    let id = body["id_bitacora_log"].as_i64().expect("audited");
    let record = app.db.find_audit(id).await.unwrap().expect("audit record");
    assert_eq!(record.status, Some(status));
    body
}

async fn client_mistakes_are_json_4xx_and_audited(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.server.body_limit_bytes = 4096).await;
    let secret = app.consumer("c", &[Endpoint::InternalUsers]).await;
    let url = format!("{}/api/UsuarioInterno/get", app.address);
    let authed = |rb: reqwest::RequestBuilder| rb.header("X-User-Consumo", "c").header("X-User-Secret", &secret);

    let res = authed(app.client.post(&url)).header("Content-Type", "application/json").body("{\"user\": ").send();
    assert_error(&app, res.await.unwrap(), 400, "JSON").await;

    let res = authed(app.client.post(&url)).header("Content-Type", "application/json").body("[1, 2]").send();
    assert_error(&app, res.await.unwrap(), 400, "objeto").await;

    let res = authed(app.client.post(&url)).header("Content-Type", "text/plain").body("user=x").send();
    assert_error(&app, res.await.unwrap(), 415, "text/plain").await;

    // Forms are for the Synology webhook only.
    let res = authed(app.client.post(&url)).form(&[("user", "x")]).send();
    assert_error(&app, res.await.unwrap(), 415, "application/json").await;

    let big = json!({"user": "x".repeat(5000)});
    let res = authed(app.client.post(&url)).json(&big).send();
    assert_error(&app, res.await.unwrap(), 413, "4096").await;

    let res = authed(app.client.get(&url)).send();
    let res = res.await.unwrap();
    assert_eq!(res.headers()["allow"], "POST");
    assert_error(&app, res, 405, "Método").await;

    let res = authed(app.client.post(format!("{}/api/UsuarioInterno/GET", app.address))).json(&json!({})).send();
    assert_error(&app, res.await.unwrap(), 404, "api/UsuarioInterno/GET").await;

    // Outside /api there is no bitácora, but still JSON.
    let (status, body) = json(app.client.get(format!("{}/nada", app.address)).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("nada"));

    // An invalid UTF-8 body is a 400, not a crash.
    let res = authed(app.client.post(&url)).header("Content-Type", "application/json").body(vec![0xff, 0xfe, b'{']);
    assert_error(&app, res.send().await.unwrap(), 400, "JSON").await;

    // An empty body is an empty input bag: Laravel's 422.
    let (status, body) = json(authed(app.client.post(&url)).send().await.unwrap()).await;
    assert_eq!(status, 422, "{body}");
}

crate::on_both_backends!(client_mistakes_are_json_4xx_and_audited);
