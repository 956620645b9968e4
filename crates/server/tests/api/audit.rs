//! The bitácora: every request audited, refused ones included, secrets never stored.

use helpdesk_domain::model::Endpoint;
use helpdesk_domain::ports::{AuditRepository, ConsumerRepository};
use serde_json::json;

use crate::helpers::*;

async fn a_refused_request_is_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .post(format!("{}/api/correo/getConfigCorreos", app.address))
        .header("X-User-Consumo", "intruso")
        .header("X-User-Secret", "adivinanza")
        .json(&json!({"user": "x@ejemplo.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let records = app.db.recent_audit(1).await.unwrap();
    let r = &records[0];
    assert_eq!(r.status, Some(401));
    assert_eq!(r.endpoint, "correo/getConfigCorreos");
    assert_eq!(r.method, "POST");
    assert_eq!(r.client_ip, "127.0.0.1");
    assert_eq!(r.consumer_name.as_deref(), Some("intruso"));
    assert_eq!(r.consumer_id, None);
    assert!(r.duration_us.is_some_and(|d| d > 0));
    assert_eq!(r.body, r#"{"user":"x@ejemplo.test"}"#);
    assert!(!r.body.contains("adivinanza"));
}

async fn an_accepted_request_records_its_consumer_and_links_to_its_parent(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = app.consumer("crm", &[Endpoint::InternalUsers]).await;
    let (_, first) = json(app.post("UsuarioInterno/get", ("crm", &secret), &json!({"user": "x"})).await).await;
    let first_id = first["id_bitacora_log"].as_i64().unwrap();
    let (_, second) = json(
        app.post(
            "UsuarioInterno/get",
            ("crm", &secret),
            &json!({"user": "x", "id_bitacora_log": first_id.to_string()}),
        )
        .await,
    )
    .await;
    let second_id = second["id_bitacora_log"].as_i64().unwrap();
    assert!(second_id > first_id);
    let consumer = app.db.find_consumer("crm").await.unwrap().unwrap();
    let r = app.db.find_audit(second_id).await.unwrap().unwrap();
    assert_eq!((r.status, r.consumer_id, r.parent_id), (Some(200), Some(consumer.id), Some(first_id)));
}

/// Secrets sent in any field never reach the database: not the rows, not
/// the raw SQLite files.
async fn secrets_never_reach_the_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = app.consumer("crm", &[Endpoint::InternalUsers]).await;
    let sent = ["Clave-Secreta-9911", "Confirmacion-8822", "839201", "tok-7733-abc", "sec-6644"];
    let body = json!({
        "user": "x",
        "password": sent[0],
        "password_confirmation": sent[1],
        "pin": sent[2],
        "nested": {"token": sent[3], "list": [{"X-User-Secret": sent[4]}]}
    });
    let (status, _) = json(app.post("UsuarioInterno/get", ("crm", &secret), &body).await).await;
    assert_eq!(status, 200);
    // A body that is not JSON is stored as its size only.
    let res = app
        .client
        .post(format!("{}/api/UsuarioInterno/get", app.address))
        .header("X-User-Consumo", "crm")
        .header("X-User-Secret", &secret)
        .header("Content-Type", "application/json")
        .body(format!("{{\"password\": \"{}\"", sent[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let records = app.db.recent_audit(10).await.unwrap();
    assert_eq!(records.len(), 2);
    for r in &records {
        for s in sent.iter().chain([&secret.as_str()]) {
            assert!(!r.body.contains(s), "{s} leaked into {}", r.body);
        }
    }
    assert!(records[1].body.contains("[REDACTED]"));
    if backend == Backend::Sqlite {
        let path = app.settings.database.url.trim_start_matches("sqlite://").to_string();
        for file in [path.clone(), format!("{path}-wal")] {
            let bytes = std::fs::read(&file).unwrap_or_default();
            for s in sent.iter().chain([&secret.as_str()]) {
                assert!(!bytes.windows(s.len()).any(|w| w == s.as_bytes()), "{s} found in {file}");
            }
        }
    }
}

/// Concurrent requests share transactions, yet each answer leaves only once
/// its own record is stored, with a distinct id.
async fn each_answer_leaves_after_its_record_is_stored(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let secret = app.consumer("crm", &[Endpoint::InternalUsers]).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (app, secret) = (app.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let (status, body) =
                json(app.post("UsuarioInterno/get", ("crm", &secret), &json!({"user": "x"})).await).await;
            assert_eq!(status, 200, "{body}");
            let id = body["id_bitacora_log"].as_i64().unwrap();
            let record = app.db.find_audit(id).await.unwrap();
            assert_eq!(record.map(|r| (r.endpoint, r.status)), Some(("UsuarioInterno/get".into(), Some(200))), "{i}");
            id
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap());
    }
    assert_eq!(ids.len(), 24);
}

/// Strangers cannot fill the disk: past `audit.refused_burst` calls refused
/// for their credentials from one address in one minute, the rest are
/// counted into one aggregated record (the webhook's wrong-token answers
/// carry its id), while a valid consumer's every call keeps its own.
async fn strangers_refused_calls_are_counted_past_a_burst(backend: Backend) {
    use helpdesk_domain::ports::Clock;
    let app = spawn_app_with(backend, |s| {
        s.audit.refused_burst = 5;
        s.synology.outgoing_token = "token-del-bot".into();
    })
    .await;
    let secret = app.consumer("crm", &[Endpoint::InternalUsers]).await;
    let before = app.db.recent_audit(10_000).await.unwrap().len();
    for _ in 0..12 {
        let res = app.post("UsuarioInterno/get", ("intruso", "adivinanza"), &json!({"user": "x"})).await;
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.json::<serde_json::Value>().await.unwrap(),
            json!({"message": "Credenciales de consumo inválidas"})
        );
    }
    let mut bot_ids = Vec::new();
    for _ in 0..3 {
        let body = json!({"token": "falso", "user_id": 120, "username": "nadie", "text": "hola"});
        let res = app
            .client
            .post(format!("{}/api/Synology/BotAsistencia/configurarIdUsuario", app.address))
            .json(&body)
            .send();
        let (status, body) = json(res.await.unwrap()).await;
        assert_eq!(status, 401, "{body}");
        bot_ids.push(body["id_bitacora_log"].as_i64().expect("the webhook's answer carries an id"));
    }
    for _ in 0..3 {
        let (status, _) = json(app.post("UsuarioInterno/get", ("crm", &secret), &json!({"user": "x"})).await).await;
        assert_eq!(status, 200);
    }
    let rows = app.db.recent_audit(10_000).await.unwrap();
    let new = &rows[..rows.len() - before];
    assert_eq!(new.iter().filter(|r| r.status == Some(401)).count(), 5, "the burst, each its own");
    assert_eq!(new.iter().filter(|r| r.status == Some(200)).count(), 3, "a valid consumer's every call");
    let aggregate = bot_ids[0];
    assert!(bot_ids.iter().all(|id| *id == aggregate), "{bot_ids:?}");

    // Written once its minute is over.
    app.clock.advance(chrono::Duration::seconds(61));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let record = loop {
        if let Some(r) = app.db.find_audit(aggregate).await.unwrap() {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "no aggregated record {aggregate}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let body: serde_json::Value = serde_json::from_str(&record.body).unwrap();
    assert_eq!(body["llamadas"], 10, "{body}");
    assert_eq!(body["endpoints"], json!(["Synology/BotAsistencia/configurarIdUsuario", "UsuarioInterno/get"]));
    assert_eq!((record.status, record.client_ip.as_str()), (Some(401), "127.0.0.1"));
    assert!(record.at <= app.clock.now());
    let rows = app.db.recent_audit(10_000).await.unwrap();
    assert_eq!(rows.len() - before, 5 + 3 + 1, "fifteen refused calls made six rows");
}

crate::on_both_backends!(
    strangers_refused_calls_are_counted_past_a_burst,
    each_answer_leaves_after_its_record_is_stored,
    a_refused_request_is_audited,
    an_accepted_request_records_its_consumer_and_links_to_its_parent,
    secrets_never_reach_the_database,
);
