//! `POST api/correo/getConfigCorreos`.

use helpdesk_domain::model::{Endpoint, MailAccountFilter, NewDepartment, Status};
use helpdesk_domain::ports::{DepartmentRepository, MailAccountRepository};
use helpdesk_domain::services::{MailAccountInput, MailAccountService};
use serde_json::json;

use crate::helpers::*;

const PASSWORD: &str = "Buzón-clave-secreta-77";

async fn seed(app: &TestApp) -> (i64, i64, i64) {
    let d1 = app.db.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let d2 = app.db.create_department(NewDepartment { name: "Ventas".into(), synology_channel: None }).await.unwrap();
    let svc = MailAccountService::new(app.db.clone(), app.keys.secret_box.clone());
    let input = |user: &str, dep: i64, status: Status| MailAccountInput {
        host: "imap.ejemplo.test".into(),
        user: user.into(),
        password: PASSWORD.into(),
        port: "993".into(),
        mailboxes: vec![],
        department_id: dep,
        status,
        send_acknowledgement: true,
    };
    let a = svc.add(input("soporte@ejemplo.test", d1.id, Status::Active)).await.unwrap();
    svc.add(input("ventas@ejemplo.test", d2.id, Status::Active)).await.unwrap();
    svc.add(input("viejo@ejemplo.test", d2.id, Status::Inactive)).await.unwrap();
    (a.id, d1.id, d2.id)
}

async fn answers_in_the_documented_shape_with_the_password_opened(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, dep, _) = seed(&app).await;
    let secret = app.consumer("canal", &[Endpoint::MailAccounts]).await;
    let (status, body) = json(
        app.post(
            "correo/getConfigCorreos",
            ("canal", &secret),
            &json!({"id_cuenta_correo": id, "user": "soporte@ejemplo.test", "departamento": dep, "estado": "activo"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), vec!["data", "status", "message", "code", "id_bitacora_log"]);
    assert_eq!(body["message"], "");
    assert_eq!(body["code"], 200);
    let account = &body["data"][0];
    let got: Vec<(&str, &str)> = account.as_object().unwrap().iter().map(|(k, v)| (k.as_str(), kind(v))).collect();
    assert_eq!(
        got,
        vec![
            ("id_cuenta_correo", "integer"),
            ("host", "string"),
            ("user", "string"),
            ("password", "string"),
            ("port", "string"),
            ("mail_boxes", "array"),
            ("departamento", "integer"),
            ("estado", "string"),
        ]
    );
    assert_eq!(account["password"], PASSWORD);
    assert_eq!(account["mail_boxes"], json!(["INBOX"]));
    assert_eq!(account["port"], "993");
    // At rest it is sealed.
    let stored = app.db.find_mail_accounts(MailAccountFilter { id: Some(id), ..Default::default() }).await.unwrap();
    let sealed = &stored[0].sealed_password;
    assert!(!sealed.windows(8).any(|w| w == &PASSWORD.as_bytes()[..8]), "stored in clear");
}

async fn filters_are_optional_and_combine(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, _, d2) = seed(&app).await;
    let secret = app.consumer("canal", &[Endpoint::MailAccounts]).await;
    let users = |body: &serde_json::Value| -> Vec<String> {
        body["data"].as_array().unwrap().iter().map(|a| a["user"].as_str().unwrap().to_string()).collect()
    };
    let (_, body) = json(app.post("correo/getConfigCorreos", ("canal", &secret), &json!({})).await).await;
    assert_eq!(users(&body), vec!["soporte@ejemplo.test", "ventas@ejemplo.test", "viejo@ejemplo.test"]);
    let (_, body) = json(
        app.post("correo/getConfigCorreos", ("canal", &secret), &json!({"departamento": d2, "estado": "activo"})).await,
    )
    .await;
    assert_eq!(users(&body), vec!["ventas@ejemplo.test"]);
    let (_, body) =
        json(app.post("correo/getConfigCorreos", ("canal", &secret), &json!({"estado": "inactivo"})).await).await;
    assert_eq!(users(&body), vec!["viejo@ejemplo.test"]);
    let (status, body) =
        json(app.post("correo/getConfigCorreos", ("canal", &secret), &json!({"id_cuenta_correo": 999_999})).await)
            .await;
    assert_eq!((status, body["data"].clone()), (200, json!([])));
}

async fn validation_speaks_laravel(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = app.consumer("canal", &[Endpoint::MailAccounts]).await;
    let (status, body) = json(
        app.post(
            "correo/getConfigCorreos",
            ("canal", &secret),
            &json!({"id_cuenta_correo": "uno", "estado": "borrado"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({
            "message": "The id cuenta correo field must be an integer. (and 1 more error)",
            "errors": {
                "id_cuenta_correo": ["The id cuenta correo field must be an integer."],
                "estado": ["The selected estado is invalid."]
            }
        })
    );
}

crate::on_both_backends!(
    answers_in_the_documented_shape_with_the_password_opened,
    filters_are_optional_and_combine,
    validation_speaks_laravel,
);
