//! `POST api/UsuarioInterno/get`.

use helpdesk_domain::model::{Endpoint, NewDepartment, NewInternalUser};
use helpdesk_domain::ports::{DepartmentRepository, UserRepository};
use serde_json::json;

use crate::helpers::*;

/// The documented answer's keys, in order, with their JSON types.
const DOCUMENTED: &[(&str, &str)] = &[
    ("id_usuario", "integer"),
    ("login", "string"),
    ("nombre", "string"),
    ("cedula", "string"),
    ("tipo_usuario", "string"),
    ("status", "string"),
    ("accesos", "string"),
    ("usuario", "string"),
    ("correo", "string"),
    ("ext", "string"),
    ("acceso_ticket", "string"),
    ("fk_id_departamento", "integer"),
    ("fk_id_rol", "integer"),
    ("rol", "string"),
    ("jefe", "integer"),
    ("movil", "string"),
    ("ultimo_acceso", "null"),
    ("ip_address", "null"),
    ("accesos_sistemas", "string"),
    ("id_synology", "integer"),
];

async fn seed(app: &TestApp) -> (i64, i64) {
    let dep =
        app.db.create_department(NewDepartment { name: "Desarrollo".into(), synology_channel: None }).await.unwrap();
    let other =
        app.db.create_department(NewDepartment { name: "Ventas".into(), synology_channel: None }).await.unwrap();
    let role = app.db.ensure_role("desarrollo").await.unwrap();
    let user = |login: &str, dep: i64| NewInternalUser {
        login: login.into(),
        name: format!("Persona {login}"),
        email: format!("{login}@ejemplo.test"),
        national_id: "9-9999-9999".into(),
        user_type: "operador".into(),
        department_id: Some(dep),
        role_id: Some(role.id),
        extension: " 151".into(),
        mobile: "+506.00000001".into(),
        can_take_tickets: false,
        manager: 0,
        system_access: "a.test,b.test".into(),
        synology_id: Some(120),
        code: String::new(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2g".into()),
    };
    app.db.create_user(user("pgarcia", dep.id)).await.unwrap();
    app.db.create_user(user("lrojas", dep.id)).await.unwrap();
    app.db.create_user(user("mvega", other.id)).await.unwrap();
    (dep.id, other.id)
}

async fn answers_in_the_documented_shape(backend: Backend) {
    let app = spawn_app(backend).await;
    let (dep, _) = seed(&app).await;
    let secret = app.consumer("crm", &[Endpoint::InternalUsers]).await;
    let (status, body) = json(
        app.post(
            "UsuarioInterno/get",
            ("crm", &secret),
            &json!({"user": "pgarcia", "email": "pgarcia@ejemplo.test", "departamento": dep}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), vec!["data", "status", "message", "code", "id_bitacora_log"]);
    assert_eq!((body["status"].as_str(), body["code"].as_i64()), (Some("ok"), Some(200)));
    assert_eq!(body["message"], "Obtenidos 1 registros de usuarios.");
    assert!(body["id_bitacora_log"].is_i64(), "an integer here");
    let user = &body["data"][0];
    let got: Vec<(&str, &str)> = user.as_object().unwrap().iter().map(|(k, v)| (k.as_str(), kind(v))).collect();
    assert_eq!(got, DOCUMENTED);
    assert_eq!(user["login"], "pgarcia");
    assert_eq!(user["status"], "ACTIVO");
    assert_eq!(user["acceso_ticket"], "N");
    assert_eq!(user["rol"], "desarrollo");
    let text = body.to_string();
    assert!(!text.contains("argon2") && !text.contains("password") && !text.contains("pin"), "{text}");
}

async fn filters_combine(backend: Backend) {
    let app = spawn_app(backend).await;
    let (dep, other) = seed(&app).await;
    let secret = app.consumer("crm", &[Endpoint::InternalUsers]).await;
    let logins = |body: &serde_json::Value| -> Vec<String> {
        body["data"].as_array().unwrap().iter().map(|u| u["login"].as_str().unwrap().to_string()).collect()
    };
    let (_, body) = json(app.post("UsuarioInterno/get", ("crm", &secret), &json!({"departamento": dep})).await).await;
    assert_eq!(logins(&body), vec!["pgarcia", "lrojas"]);
    assert_eq!(body["message"], "Obtenidos 2 registros de usuarios.");
    let (_, body) =
        json(app.post("UsuarioInterno/get", ("crm", &secret), &json!({"departamento": other.to_string()})).await).await;
    assert_eq!(logins(&body), vec!["mvega"]);
    let (_, body) =
        json(app.post("UsuarioInterno/get", ("crm", &secret), &json!({"email": "LROJAS@ejemplo.test"})).await).await;
    assert_eq!(logins(&body), vec!["lrojas"]);
    let (status, body) =
        json(app.post("UsuarioInterno/get", ("crm", &secret), &json!({"user": "mvega", "departamento": dep})).await)
            .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["message"], "Obtenidos 0 registros de usuarios.");
}

async fn validation_speaks_laravel(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = app.consumer("crm", &[Endpoint::InternalUsers]).await;
    let (status, body) =
        json(app.post("UsuarioInterno/get", ("crm", &secret), &json!({"user": "", "email": null})).await).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({
            "message": "The user field is required when none of email / departamento are present. (and 2 more errors)",
            "errors": {
                "user": ["The user field is required when none of email / departamento are present."],
                "email": ["The email field is required when none of user / departamento are present."],
                "departamento": ["The departamento field is required when none of user / email are present."]
            }
        })
    );
    let (status, body) = json(
        app.post("UsuarioInterno/get", ("crm", &secret), &json!({"email": "no-es-correo", "departamento": "uno"}))
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["message"], "The email field must be a valid email address. (and 1 more error)");
    assert_eq!(body["errors"]["departamento"], json!(["The departamento field must be an integer."]));
    let (status, body) =
        json(app.post("UsuarioInterno/get", ("crm", &secret), &json!({"user": "ñ".repeat(101)})).await).await;
    assert_eq!(status, 422);
    assert_eq!(body["message"], "The user field must not be greater than 100 characters.");
    let (status, _) =
        json(app.post("UsuarioInterno/get", ("crm", &secret), &json!({"user": "ñ".repeat(100)})).await).await;
    assert_eq!(status, 200);
}

crate::on_both_backends!(answers_in_the_documented_shape, filters_combine, validation_speaks_laravel);
