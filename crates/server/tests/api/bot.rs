//! `Synology/BotAsistencia/configurarIdUsuario`: the bot's outgoing webhook.

use std::time::Duration;

use helpdesk_domain::crypto::hash_password;
use helpdesk_domain::model::NewInternalUser;
use helpdesk_domain::ports::{AuditRepository, UserRepository};
use helpdesk_notify_synology::testing::{FakeSynology, Mode};
use serde_json::{Value, json};

use crate::helpers::*;

const TOKEN: &str = "token-saliente-del-bot";

struct Bot {
    app: TestApp,
    fake: FakeSynology,
    user_id: i64,
}

async fn setup(backend: Backend) -> Bot {
    let fake = FakeSynology::start();
    let base = fake.base_url.clone();
    let app = spawn_app_with(backend, move |s| {
        s.synology.base_url = base;
        s.synology.bot_token = "bot-token".into();
        s.synology.outgoing_token = TOKEN.into();
    })
    .await;
    let user_id = app
        .db
        .create_user(NewInternalUser {
            login: "dmora".into(),
            name: "Diana Mora".into(),
            email: "dmora@ejemplo.test".into(),
            password_hash: Some(hash_password("Clave-Segura-2026")),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    Bot { app, fake, user_id }
}

impl Bot {
    fn url(&self) -> String {
        format!("{}/api/Synology/BotAsistencia/configurarIdUsuario", self.app.address)
    }

    /// As Synology Chat posts it: a form, no consumer headers.
    async fn form(&self, token: &str, user_id: &str, username: &str) -> (u16, Value) {
        let res = self
            .app
            .client
            .post(self.url())
            .form(&[
                ("token", token),
                ("user_id", user_id),
                ("username", username),
                ("post_id", "23059679412324"),
                ("thread_id", "0"),
                ("timestamp", "1752066920406"),
                ("text", "vincular"),
            ])
            .send()
            .await
            .unwrap();
        json(res).await
    }

    async fn synology_id(&self) -> Option<i64> {
        self.app.db.find_user(self.user_id).await.unwrap().unwrap().synology_id
    }
}

async fn a_form_post_links_the_user_and_answers_through_the_bot(backend: Backend) {
    let b = setup(backend).await;
    let (status, body) = b.form(TOKEN, "120", "dmora").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), ["data", "status", "message", "code", "id_bitacora_log"]);
    assert_eq!(keys(&body["data"]), ["response_update_usuario", "synology_response"]);
    assert_eq!(body["data"]["response_update_usuario"], "Usuario dmora actualizado.");
    assert_eq!(body["message"], "Usuario dmora actualizado.");
    let answer = &body["data"]["synology_response"];
    assert_eq!(answer["success"], true);
    assert!(answer["data"]["succ"]["user_id_post_map"]["120"].is_u64(), "{answer}");
    assert!(answer["data"]["fail"].is_null());
    assert!(body["id_bitacora_log"].is_i64());
    assert_eq!(b.synology_id().await, Some(120));
    let calls = b.fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].method.as_str(), calls[0].token.as_str()), ("chatbot", "bot-token"));
    assert_eq!(calls[0].payload["user_ids"], json!([120]));
    assert!(calls[0].payload["text"].as_str().unwrap().contains("dmora"));
    // The audit record keeps the call but not the token.
    let id = body["id_bitacora_log"].as_i64().unwrap();
    let record = b.app.db.find_audit(id).await.unwrap().unwrap();
    assert_eq!(record.status, Some(200));
    assert!(!record.body.contains(TOKEN) && record.body.contains("dmora"), "{}", record.body);
}

async fn the_documented_json_body_works_too(backend: Backend) {
    let b = setup(backend).await;
    let res = b
        .app
        .client
        .post(b.url())
        .header("X-User-Consumo", "UsuarioPrueba")
        .header("X-User-Secret", "strDasdakdmsadsakming")
        .json(&json!({"token": TOKEN, "user_id": 121, "username": "dmora", "thread_id": 1, "timestamp": 1752066920406u64, "text": "Hola."}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(b.synology_id().await, Some(121));
}

async fn the_probe_wrong_tokens_and_unknown_users(backend: Backend) {
    let b = setup(backend).await;
    let res = b.app.client.head(b.url()).send().await.unwrap();
    assert_eq!(res.status(), 200, "Synology's HEAD probe");
    for token in ["otro", "", "token-saliente-del-bot "] {
        let (status, body) = b.form(token, "120", "dmora").await;
        assert_eq!((status, body["message"].as_str()), (401, Some("Token de Synology inválido.")), "{token:?}");
    }
    let res = b.app.client.post(b.url()).form(&[("user_id", "120"), ("username", "dmora")]).send().await.unwrap();
    assert_eq!(res.status(), 401, "no token at all");
    assert_eq!(b.synology_id().await, None, "nothing changed");
    let (status, body) = b.form(TOKEN, "120", "nadie").await;
    assert_eq!((status, body["message"].as_str()), (404, Some("Usuario nadie no encontrado.")));
    let (status, body) = b.form(TOKEN, "abc", "dmora").await;
    assert_eq!((status, body["errors"]["user_id"][0].as_str()), (422, Some("The user id field must be an integer.")));
    assert_eq!(b.synology_id().await, None);
    assert!(b.fake.calls().is_empty());
    let res = b.app.client.get(b.url()).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST, HEAD");
}

async fn synology_failing_still_links_and_the_reply_follows(backend: Backend) {
    let b = setup(backend).await;
    b.fake.set_mode(Mode::ServerError);
    let (status, body) = b.form(TOKEN, "120", "dmora").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(b.synology_id().await, Some(120), "the link is saved");
    assert_eq!(body["data"]["synology_response"]["success"], false);
    assert_eq!(body["data"]["synology_response"]["pendiente"], true);
    assert!(body["message"].as_str().unwrap().contains("pendiente"), "{body}");
    b.fake.set_mode(Mode::Ok);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while b.fake.calls().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the reply never followed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(b.fake.calls()[0].payload["user_ids"], json!([120]));
}

crate::on_both_backends!(
    a_form_post_links_the_user_and_answers_through_the_bot,
    the_documented_json_body_works_too,
    the_probe_wrong_tokens_and_unknown_users,
    synology_failing_still_links_and_the_reply_follows,
);
