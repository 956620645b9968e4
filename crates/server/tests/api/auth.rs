//! Consumer credentials and grants.

use helpdesk_domain::model::Endpoint;
use serde_json::json;

use crate::helpers::*;

const INVALID: &str = "Credenciales de consumo inválidas";

async fn missing_unknown_wrong_and_disabled_credentials_get_the_documented_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = app.consumer("lector", &[Endpoint::InternalUsers, Endpoint::MailAccounts]).await;
    let body = json!({"user": "nadie"});
    let url = format!("{}/api/UsuarioInterno/get", app.address);
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("no headers", app.client.post(&url).json(&body)),
        ("no secret", app.client.post(&url).header("X-User-Consumo", "lector").json(&body)),
        ("no consumer", app.client.post(&url).header("X-User-Secret", &secret).json(&body)),
        (
            "unknown",
            app.client.post(&url).header("X-User-Consumo", "otro").header("X-User-Secret", &secret).json(&body),
        ),
        (
            "wrong secret",
            app.client.post(&url).header("X-User-Consumo", "lector").header("X-User-Secret", "x").json(&body),
        ),
        (
            "other case",
            app.client.post(&url).header("X-User-Consumo", "LECTOR").header("X-User-Secret", &secret).json(&body),
        ),
    ];
    for (what, req) in cases {
        let (status, got) = json(req.send().await.unwrap()).await;
        assert_eq!(status, 401, "{what}");
        assert_eq!(got, json!({"message": INVALID}), "{what}");
    }
    // The right credentials pass...
    let (status, _) = json(app.post("UsuarioInterno/get", ("lector", &secret), &body).await).await;
    assert_eq!(status, 200);
    // ...until the consumer is disabled.
    app.disable_consumer("lector").await;
    let (status, got) = json(app.post("UsuarioInterno/get", ("lector", &secret), &body).await).await;
    assert_eq!((status, got), (401, json!({"message": INVALID})));
}

async fn a_consumer_outside_its_grants_gets_403_and_nothing_happens(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = app.consumer("solo_usuarios", &[Endpoint::InternalUsers]).await;
    let (status, body) = json(app.post("correo/getConfigCorreos", ("solo_usuarios", &secret), &json!({})).await).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["status"], "error");
    assert_eq!(body["code"], 403);
    assert!(body["data"].is_null());
    assert!(body["id_bitacora_log"].is_i64());
    // Authentication comes before validation: a forbidden call is never a 422.
    let (status, _) =
        json(app.post("correo/getConfigCorreos", ("solo_usuarios", &secret), &json!({"id_cuenta_correo": "x"})).await)
            .await;
    assert_eq!(status, 403);
}

async fn authentication_comes_before_validation(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = json(app.post("UsuarioInterno/get", ("nadie", "x"), &json!({})).await).await;
    assert_eq!((status, body), (401, json!({"message": INVALID})));
}

crate::on_both_backends!(
    missing_unknown_wrong_and_disabled_credentials_get_the_documented_401,
    a_consumer_outside_its_grants_gets_403_and_nothing_happens,
    authentication_comes_before_validation,
);
