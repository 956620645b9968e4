//! ADI: `SSO/ADI/setToken`, `SSO/ADI/generateToken`, `SSO/ADI/Token`.

use base64::Engine;
use helpdesk_domain::crypto::hash_password;
use helpdesk_domain::model::{Endpoint, NewInternalUser};
use helpdesk_domain::ports::UserRepository;
use serde_json::{Value, json};

use crate::helpers::*;

const ADI: &[Endpoint] = &[Endpoint::AdiSetToken, Endpoint::AdiGenerateToken, Endpoint::AdiToken];

struct Adi {
    app: TestApp,
    secret: String,
}

async fn setup(backend: Backend) -> Adi {
    let app = spawn_app(backend).await;
    let secret = app.consumer("adi", ADI).await;
    for (login, systems) in [("dmora", "factura_profesional,otro.test"), ("lrojas", "otro.test")] {
        app.db
            .create_user(NewInternalUser {
                login: login.into(),
                name: format!("Persona {login}"),
                email: format!("{login}@ejemplo.test"),
                system_access: systems.into(),
                password_hash: Some(hash_password("Clave-Segura-2026")),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    Adi { app, secret }
}

impl Adi {
    async fn call(&self, path: &str, body: Value) -> (u16, Value) {
        json(self.app.post(path, ("adi", &self.secret), &body).await).await
    }

    async fn set(&self, body: Value) -> (u16, Value) {
        self.call("SSO/ADI/setToken", body).await
    }

    async fn generate(&self, token: &str, username: &str, email: &str) -> (u16, Value) {
        self.call(
            "SSO/ADI/generateToken",
            json!({"username": username, "email": email, "sistema": "factura_profesional", "token": token}),
        )
        .await
    }

    async fn redeem(&self, ticket: &str) -> (u16, Value) {
        self.call("SSO/ADI/Token", json!({"token": ticket})).await
    }
}

fn kinds(v: &Value) -> Vec<(&str, &str)> {
    v.as_object().unwrap().iter().map(|(k, v)| (k.as_str(), kind(v))).collect()
}

async fn the_whole_flow_in_the_documented_shapes(backend: Backend) {
    let a = setup(backend).await;
    let (status, body) =
        a.set(json!({"sistema": "factura_profesional", "estado": "activo", "update_token": "S"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), ["data", "status", "message", "code", "id_bitacora_log"]);
    assert_eq!(
        kinds(&body["data"]),
        [("alias_sistema", "string"), ("message", "string"), ("token_generado", "string")]
    );
    assert_eq!(body["data"]["alias_sistema"], "factura_profesional");
    assert_eq!(body["message"], "Registro creado correctamente.");
    assert!(body["id_bitacora_log"].is_i64());
    let token = body["data"]["token_generado"].as_str().unwrap().to_string();

    let (status, body) = a.generate(&token, "dmora", "dmora@ejemplo.test").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(kinds(&body["data"]), [("base64_encoded", "string"), ("message", "string")]);
    assert_eq!(body["message"], "Solicitud de acceso generada.");
    let ticket = body["data"]["base64_encoded"].as_str().unwrap().to_string();
    assert!(base64::engine::general_purpose::STANDARD.decode(&ticket).is_ok(), "base64");

    let (status, body) = a.redeem(&ticket).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({"authenticated": true, "username": "dmora", "email": "dmora@ejemplo.test", "sistema": "factura_profesional", "message": "Usuario Autenticado."})
    );
    assert_eq!(body["message"], "Usuario Autenticado.");
    // Once only.
    let (status, body) = a.redeem(&ticket).await;
    assert_eq!(status, 401);
    assert_eq!(body["data"]["authenticated"], false);
    assert_eq!(body["status"], "error");
}

async fn a_rotated_token_and_an_inactive_system_are_refused(backend: Backend) {
    let a = setup(backend).await;
    let (_, body) = a.set(json!({"sistema": "factura_profesional"})).await;
    let old = body["data"]["token_generado"].as_str().unwrap().to_string();
    // Registering again without update_token keeps the token (and shows none).
    let (status, body) = a.set(json!({"sistema": "factura_profesional", "update_token": "N"})).await;
    assert_eq!((status, body["data"]["token_generado"].clone()), (200, Value::Null));
    assert_eq!(a.generate(&old, "dmora", "dmora@ejemplo.test").await.0, 200);
    let (_, body) = a.set(json!({"sistema": "factura_profesional", "update_token": "S"})).await;
    assert_eq!(body["message"], "Token actualizado correctamente.");
    let new = body["data"]["token_generado"].as_str().unwrap().to_string();
    assert_ne!(old, new);
    let (status, body) = a.generate(&old, "dmora", "dmora@ejemplo.test").await;
    assert_eq!((status, body["message"].as_str()), (401, Some("Sistema o token de sistema inválido.")));
    assert_eq!(a.generate(&new, "dmora", "dmora@ejemplo.test").await.0, 200);
    a.set(json!({"sistema": "factura_profesional", "estado": "inactivo"})).await;
    let (status, body) = a.generate(&new, "dmora", "dmora@ejemplo.test").await;
    assert_eq!((status, body["message"].as_str()), (403, Some("El sistema está inactivo.")));
    let (status, _) = a
        .call(
            "SSO/ADI/generateToken",
            json!({"username": "dmora", "email": "dmora@ejemplo.test", "sistema": "nada", "token": new}),
        )
        .await;
    assert_eq!(status, 401, "unknown system");
    let (status, body) = a.set(json!({"sistema": "x", "estado": "borrado", "update_token": "si"})).await;
    assert_eq!(status, 422);
    assert_eq!(body["message"], "The selected estado is invalid. (and 1 more error)");
}

async fn users_must_exist_match_and_have_access(backend: Backend) {
    let a = setup(backend).await;
    let (_, body) = a.set(json!({"sistema": "factura_profesional"})).await;
    let token = body["data"]["token_generado"].as_str().unwrap().to_string();
    for (user, email, why) in [
        ("lrojas", "lrojas@ejemplo.test", "no access to the system"),
        ("dmora", "lrojas@ejemplo.test", "name and e-mail of two users"),
        ("nadie", "nadie@ejemplo.test", "unknown user"),
    ] {
        let (status, body) = a.generate(&token, user, email).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (403, Some("El usuario no tiene acceso a este sistema.")),
            "{why}"
        );
    }
    let (status, body) = a.call("SSO/ADI/generateToken", json!({"sistema": "factura_profesional"})).await;
    assert_eq!(status, 422);
    assert_eq!(body["message"], "The username field is required. (and 2 more errors)");
}

async fn expired_and_tampered_tickets_are_refused(backend: Backend) {
    let a = setup(backend).await;
    let (_, body) = a.set(json!({"sistema": "factura_profesional"})).await;
    let token = body["data"]["token_generado"].as_str().unwrap().to_string();
    let (_, body) = a.generate(&token, "dmora", "dmora@ejemplo.test").await;
    let ticket = body["data"]["base64_encoded"].as_str().unwrap().to_string();
    // Tampered: one character of the signed payload changed.
    let b64 = base64::engine::general_purpose::STANDARD;
    let jwt = String::from_utf8(b64.decode(&ticket).unwrap()).unwrap();
    let mut parts: Vec<String> = jwt.split('.').map(String::from).collect();
    let payload =
        String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    let forged_payload = payload.replace("\"sub\":\"", "\"sub\":\"9");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged_payload);
    let (status, body) = a.redeem(&b64.encode(parts.join("."))).await;
    assert_eq!((status, body["data"]["authenticated"].clone()), (401, json!(false)), "tampered");
    let (status, body) = a.redeem("%%%no-base64%%%").await;
    assert_eq!((status, body["data"]["authenticated"].clone()), (401, json!(false)));
    let (status, _) = a.call("SSO/ADI/Token", json!({})).await;
    assert_eq!(status, 401, "no token at all");
    // Expired: ten minutes later by the injected clock.
    a.app.clock.advance(chrono::Duration::minutes(10));
    let (status, body) = a.redeem(&ticket).await;
    assert_eq!((status, body["data"]["authenticated"].clone()), (401, json!(false)), "expired");
}

async fn sixteen_concurrent_validations_have_one_winner(backend: Backend) {
    let a = setup(backend).await;
    let (_, body) = a.set(json!({"sistema": "factura_profesional"})).await;
    let token = body["data"]["token_generado"].as_str().unwrap().to_string();
    let (_, body) = a.generate(&token, "dmora", "dmora@ejemplo.test").await;
    let ticket = body["data"]["base64_encoded"].as_str().unwrap().to_string();
    let a = std::sync::Arc::new(a);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (a, ticket) = (a.clone(), ticket.clone());
        tasks.push(tokio::spawn(async move { a.redeem(&ticket).await }));
    }
    let mut wins = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => {
                assert_eq!(body["data"]["authenticated"], true);
                wins += 1;
            }
            401 => assert_eq!(body["data"]["authenticated"], false),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(wins, 1);
}

crate::on_both_backends!(
    the_whole_flow_in_the_documented_shapes,
    a_rotated_token_and_an_inactive_system_are_refused,
    users_must_exist_match_and_have_access,
    expired_and_tampered_tickets_are_refused,
    sixteen_concurrent_validations_have_one_winner,
);
