//! Demo data for the dev profile: the documented example consumer with every
//! grant, so the documentation's examples run verbatim against localhost, and
//! a small fictitious organisation (no real names or addresses) with default
//! service levels.

use std::sync::Arc;

use helpdesk_db::Db;
use helpdesk_domain::model::{Endpoint, NewInternalUser, NewSlaPolicy, Priority, Status};
use helpdesk_domain::ports::SystemClock;
use helpdesk_domain::services::{AccessService, AdminService, MailAccountInput, MailAccountService, UserInput};

use crate::settings::Keys;

/// The example credentials printed in the API documentation.
pub const DEMO_CONSUMER: &str = "UsuarioPrueba";
pub const DEMO_SECRET: &str = "strDasdakdmsadsakming";
/// Password of every demo user (dev profile only).
pub const DEMO_PASSWORD: &str = "Demo-clave-2026";
pub const DEMO_PIN: &str = "4821";

/// The demo's service levels, for every department without its own (the
/// `general` calendar, from the migrations, counts the business time):
/// priority, minutes to the first response, minutes to resolution.
pub const DEMO_POLICIES: [(Priority, i64, i64); 4] = [
    (Priority::Urgent, 30, 4 * 60),
    (Priority::High, 60, 8 * 60),
    (Priority::Normal, 4 * 60, 24 * 60),
    (Priority::Low, 8 * 60, 72 * 60),
];
/// The assignee is warned at this share of a target.
pub const DEMO_WARNING_PCT: i64 = 80;

/// Seeds once: does nothing when the demo consumer already exists.
pub async fn seed_demo(db: &Arc<Db>, keys: &Keys) -> anyhow::Result<()> {
    let access = AccessService::new(db.clone(), keys.consumer_hmac.clone(), Arc::new(SystemClock));
    if access.list().await?.iter().any(|c| c.name == DEMO_CONSUMER) {
        return Ok(());
    }
    let admin = AdminService::new(db.clone());
    // The product aliases the documentation's examples send.
    for alias in ["dolores", "est", "evktzdcpbcfbd", "jlwnplitvwegmkx"] {
        admin.add_product(alias, &format!("Producto de ejemplo {alias}")).await?;
    }
    let support = admin.add_department("Soporte Técnico", Some("soporte".into())).await?;
    let sales = admin.add_department("Ventas", Some("ventas".into())).await?;
    let role = admin.ensure_role("soporte").await?;
    let people = [
        ("operador1", "Ana Operadora Demo", "operador1@helpdesk.test", support.id, true, Some(101)),
        ("operador2", "Bruno Operador Demo", "operador2@helpdesk.test", support.id, true, Some(102)),
        ("vendedor1", "Carla Ventas Demo", "vendedor1@helpdesk.test", sales.id, true, None),
        ("jefe1", "Diego Jefe Demo", "jefe1@helpdesk.test", support.id, false, None),
    ];
    for (login, name, email, dep, takes, synology) in people {
        let pin = (login == "operador1").then(|| ("Teléfono demo".to_string(), DEMO_PIN.to_string()));
        // Argon2 runs inline here: start-up, once, on the blocking-safe path.
        admin
            .add_user(UserInput {
                user: NewInternalUser {
                    login: login.into(),
                    name: name.into(),
                    email: email.into(),
                    national_id: "0-0000-0000".into(),
                    user_type: "operador".into(),
                    department_id: Some(dep),
                    role_id: Some(role.id),
                    extension: "100".into(),
                    mobile: "+506.00000000".into(),
                    can_take_tickets: takes,
                    manager: i32::from(login == "jefe1"),
                    system_access: "sistema-demo.test,factura_profesional".into(),
                    synology_id: synology,
                    code: String::new(),
                    password_hash: None,
                },
                password: Some(DEMO_PASSWORD.into()),
                device_pin: pin,
            })
            .await?;
    }
    let mail = MailAccountService::new(db.clone(), keys.secret_box.clone());
    mail.add(MailAccountInput {
        host: "imap.helpdesk.test".into(),
        user: "soporte@helpdesk.test".into(),
        password: "clave-buzon-demo".into(),
        port: "993".into(),
        mailboxes: vec!["INBOX".into()],
        department_id: support.id,
        status: Status::Active,
        send_acknowledgement: true,
    })
    .await?;
    for (priority, first, resolution) in DEMO_POLICIES {
        admin
            .save_policy(NewSlaPolicy {
                department_id: None,
                priority,
                first_response_mins: first,
                resolution_mins: resolution,
                warning_pct: Some(DEMO_WARNING_PCT),
            })
            .await?;
    }
    // Last: the consumer marks the seed done.
    access.create_with_secret(DEMO_CONSUMER, DEMO_SECRET, Endpoint::every().collect()).await?;
    tracing::warn!(consumer = DEMO_CONSUMER, "dev profile: demo data seeded (never use the dev profile in production)");
    Ok(())
}
