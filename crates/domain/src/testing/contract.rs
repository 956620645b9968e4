//! The repository contract: what every store adapter MUST do, checked the same
//! way against the in-memory fake, SQLite and MySQL.
//!
//! Each case receives a fresh, empty, migrated store.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::RepoError;
use crate::model::*;
use crate::ports::*;

fn at(h: u32, m: u32, s: u32) -> Timestamp {
    NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_micro_opt(h, m, s, 123_456).unwrap()
}

pub fn sample_user(login: &str, email: &str, department_id: Option<i64>) -> NewInternalUser {
    NewInternalUser {
        login: login.into(),
        name: format!("Nombre de {login}"),
        email: email.into(),
        national_id: "1-1111-1111".into(),
        user_type: "operador".into(),
        department_id,
        role_id: None,
        extension: " 151".into(),
        mobile: "+506.80000000".into(),
        can_take_tickets: true,
        manager: 0,
        system_access: "sistema-a.example,sistema-b.example".into(),
        synology_id: None,
        code: String::new(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
    }
}

fn assert_duplicate<T: std::fmt::Debug>(r: Result<T, RepoError>, what: &str) {
    assert!(matches!(r, Err(RepoError::Duplicate(_))), "{what}: expected Duplicate, got {r:?}");
}

pub async fn products_round_trip_and_alias_is_unique_ignoring_case<S: Store>(s: Arc<S>) {
    // The migrations create the console's product; what is listed besides.
    let mut listed = s.list_products().await.unwrap();
    let p = s.create_product(NewProduct { alias: "mesa".into(), name: "Mesa de ayuda".into() }).await.unwrap();
    assert!(p.id > 0);
    assert_eq!((p.alias.as_str(), p.name.as_str(), p.status), ("mesa", "Mesa de ayuda", Status::Active));
    assert_eq!(s.find_product_by_alias("mesa").await.unwrap(), Some(p.clone()));
    assert_eq!(s.find_product_by_alias("MESA").await.unwrap(), Some(p.clone()));
    assert_eq!(s.find_product_by_alias("otra").await.unwrap(), None);
    assert_duplicate(s.create_product(NewProduct { alias: "Mesa".into(), name: "x".into() }).await, "alias");
    let q = s.create_product(NewProduct { alias: "portal".into(), name: "Portal".into() }).await.unwrap();
    listed.extend([p, q]);
    assert_eq!(s.list_products().await.unwrap(), listed);
}

pub async fn product_access_reset_pages_and_grants<S: Store>(s: Arc<S>) {
    let p = s.create_product(NewProduct { alias: "mesa".into(), name: "Mesa".into() }).await.unwrap();
    assert_eq!((p.access, p.reset_url.as_deref()), (ProductAccess::All, None), "open to all by default");
    let change = ProductChange {
        status: Some(Status::Inactive),
        access: Some(ProductAccess::Granted),
        reset_url: Some(Some("https://mesa.example.test/clave".into())),
    };
    let changed = s.update_product("MESA", change).await.unwrap();
    assert_eq!(
        (changed.status, changed.access, changed.reset_url.as_deref()),
        (Status::Inactive, ProductAccess::Granted, Some("https://mesa.example.test/clave"))
    );
    assert_eq!(s.find_product_by_alias("mesa").await.unwrap(), Some(changed.clone()));
    // Only what is named changes.
    let back = s.update_product("mesa", ProductChange { reset_url: Some(None), ..Default::default() }).await.unwrap();
    assert_eq!((back.status, back.access, back.reset_url), (Status::Inactive, ProductAccess::Granted, None));
    let r = s.update_product("nada", ProductChange::default()).await;
    assert!(matches!(r, Err(RepoError::NotFound)), "{r:?}");

    let u = s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    assert!(!s.has_product_grant(u.id, p.id).await.unwrap());
    s.set_product_grant(u.id, p.id, true).await.unwrap();
    s.set_product_grant(u.id, p.id, true).await.unwrap();
    assert!(s.has_product_grant(u.id, p.id).await.unwrap());
    s.set_product_grant(u.id, p.id, false).await.unwrap();
    s.set_product_grant(u.id, p.id, false).await.unwrap();
    assert!(!s.has_product_grant(u.id, p.id).await.unwrap());
    let r = s.set_product_grant(u.id + 1000, p.id, true).await;
    assert!(matches!(r, Err(RepoError::MissingReference(_))), "{r:?}");
    let r = s.set_product_grant(u.id, p.id + 1000, true).await;
    assert!(matches!(r, Err(RepoError::MissingReference(_))), "{r:?}");
}

pub async fn departments_and_roles<S: Store>(s: Arc<S>) {
    let d = s
        .create_department(NewDepartment { name: "Soporte".into(), synology_channel: Some("soporte".into()) })
        .await
        .unwrap();
    assert_eq!(s.find_department(d.id).await.unwrap(), Some(d.clone()));
    assert_eq!(s.find_department(d.id + 1000).await.unwrap(), None);
    assert_eq!(d.status, Status::Active);
    assert_duplicate(
        s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await,
        "department name",
    );
    let e = s.create_department(NewDepartment { name: "Ventas".into(), synology_channel: None }).await.unwrap();
    assert_eq!(s.list_departments().await.unwrap(), vec![d, e]);
    let r = s.ensure_role("desarrollo").await.unwrap();
    assert_eq!(r.name, "desarrollo");
    assert_eq!(s.ensure_role("desarrollo").await.unwrap(), r);
    assert_ne!(s.ensure_role("soporte").await.unwrap().id, r.id);
}

pub async fn users_round_trip_every_field<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let r = s.ensure_role("desarrollo").await.unwrap();
    let mut new = sample_user("ana", "ana@example.test", Some(d.id));
    new.role_id = Some(r.id);
    new.synology_id = Some(120);
    new.code = "C-1".into();
    new.manager = 1;
    new.name = "Ana Ñandú Pérez".into();
    let u = s.create_user(new.clone()).await.unwrap();
    let expected = InternalUser {
        id: u.id,
        login: "ana".into(),
        name: "Ana Ñandú Pérez".into(),
        national_id: new.national_id.clone(),
        user_type: "operador".into(),
        status: UserStatus::Active,
        accesses: String::new(),
        username: "ana".into(),
        email: "ana@example.test".into(),
        extension: " 151".into(),
        can_take_tickets: true,
        department_id: Some(d.id),
        role_id: Some(r.id),
        role_name: Some("desarrollo".into()),
        manager: 1,
        mobile: "+506.80000000".into(),
        last_access: None,
        ip_address: None,
        system_access: new.system_access.clone(),
        synology_id: Some(120),
        code: "C-1".into(),
    };
    assert_eq!(u, expected);
    assert_eq!(s.find_user(u.id).await.unwrap(), Some(expected));
    assert_eq!(s.find_user(u.id + 1000).await.unwrap(), None);
}

pub async fn user_login_and_email_are_unique<S: Store>(s: Arc<S>) {
    s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    assert_duplicate(s.create_user(sample_user("ana", "otra@example.test", None)).await, "login");
    assert_duplicate(s.create_user(sample_user("ANA", "otra@example.test", None)).await, "login ignoring case");
    assert_duplicate(s.create_user(sample_user("bea", "ana@example.test", None)).await, "email");
    assert_duplicate(s.create_user(sample_user("bea", "Ana@Example.TEST", None)).await, "email ignoring case");
    s.create_user(sample_user("bea", "bea@example.test", None)).await.unwrap();
}

pub async fn user_references_must_exist<S: Store>(s: Arc<S>) {
    let r = s.create_user(sample_user("ana", "ana@example.test", Some(987_654))).await;
    assert!(matches!(r, Err(RepoError::MissingReference(_))), "unknown department: {r:?}");
    let mut bad_role = sample_user("ana", "ana@example.test", None);
    bad_role.role_id = Some(987_654);
    let r = s.create_user(bad_role).await;
    assert!(matches!(r, Err(RepoError::MissingReference(_))), "unknown role: {r:?}");
    // Nothing half-written: the login is still free.
    s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
}

pub async fn user_filters_combine_and_an_empty_filter_finds_nobody<S: Store>(s: Arc<S>) {
    let d1 = s.create_department(NewDepartment { name: "Uno".into(), synology_channel: None }).await.unwrap();
    let d2 = s.create_department(NewDepartment { name: "Dos".into(), synology_channel: None }).await.unwrap();
    let a = s.create_user(sample_user("ana", "ana@example.test", Some(d1.id))).await.unwrap();
    let b = s.create_user(sample_user("bea", "bea@example.test", Some(d1.id))).await.unwrap();
    let c = s.create_user(sample_user("carla", "carla@example.test", Some(d2.id))).await.unwrap();
    let ids = |v: Vec<InternalUser>| v.into_iter().map(|u| u.id).collect::<Vec<_>>();
    let f = |login: Option<&str>, email: Option<&str>, dep: Option<i64>| UserFilter {
        login: login.map(Into::into),
        email: email.map(Into::into),
        department_id: dep,
    };
    assert_eq!(ids(s.find_users(f(None, None, Some(d1.id))).await.unwrap()), vec![a.id, b.id]);
    assert_eq!(ids(s.find_users(f(Some("BEA"), None, None)).await.unwrap()), vec![b.id]);
    assert_eq!(ids(s.find_users(f(None, Some("Carla@example.test"), None)).await.unwrap()), vec![c.id]);
    assert_eq!(ids(s.find_users(f(Some("carla"), None, Some(d1.id))).await.unwrap()), Vec::<i64>::new());
    assert_eq!(ids(s.find_users(f(Some("ana"), Some("ana@example.test"), Some(d1.id))).await.unwrap()), vec![a.id]);
    assert_eq!(ids(s.find_users(f(Some("ana"), Some("bea@example.test"), None)).await.unwrap()), Vec::<i64>::new());
    assert_eq!(ids(s.find_users(UserFilter::default()).await.unwrap()), Vec::<i64>::new());
    // Wildcards are data, not patterns.
    assert_eq!(ids(s.find_users(f(Some("%"), None, None)).await.unwrap()), Vec::<i64>::new());
    assert_eq!(ids(s.find_users(f(Some("an_"), None, None)).await.unwrap()), Vec::<i64>::new());
}

pub async fn user_credentials_by_login_or_email<S: Store>(s: Arc<S>) {
    let u = s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    let mut no_pw = sample_user("bea", "bea@example.test", None);
    no_pw.password_hash = None;
    let b = s.create_user(no_pw).await.unwrap();
    let (found, hash) = s.find_user_credentials("ana").await.unwrap().unwrap();
    assert_eq!(found.id, u.id);
    assert_eq!(hash.as_deref(), sample_user("", "", None).password_hash.as_deref());
    let (found, _) = s.find_user_credentials("ANA@example.test").await.unwrap().unwrap();
    assert_eq!(found.id, u.id);
    let (found, hash) = s.find_user_credentials("bea").await.unwrap().unwrap();
    assert_eq!((found.id, hash), (b.id, None));
    assert!(s.find_user_credentials("nadie").await.unwrap().is_none());
}

pub async fn user_updates_and_devices<S: Store>(s: Arc<S>) {
    let u = s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    s.set_password_hash(u.id, "$argon2id$nuevo").await.unwrap();
    let (_, hash) = s.find_user_credentials("ana").await.unwrap().unwrap();
    assert_eq!(hash.as_deref(), Some("$argon2id$nuevo"));
    s.set_synology_id(u.id, 4242).await.unwrap();
    assert_eq!(s.find_user(u.id).await.unwrap().unwrap().synology_id, Some(4242));
    assert!(matches!(s.set_password_hash(u.id + 1000, "x").await, Err(RepoError::NotFound)));
    assert!(matches!(s.set_synology_id(u.id + 1000, 1).await, Err(RepoError::NotFound)));
    s.set_user_status(u.id, UserStatus::Inactive).await.unwrap();
    assert_eq!(s.find_user(u.id).await.unwrap().unwrap().status, UserStatus::Inactive);
    s.set_user_status(u.id, UserStatus::Active).await.unwrap();
    assert!(matches!(s.set_user_status(u.id + 1000, UserStatus::Active).await, Err(RepoError::NotFound)));
    s.record_login(u.id, at(7, 30, 0), "2001:db8::1").await.unwrap();
    let after = s.find_user(u.id).await.unwrap().unwrap();
    assert_eq!((after.last_access, after.ip_address.as_deref()), (Some(at(7, 30, 0)), Some("2001:db8::1")));
    assert!(matches!(s.record_login(u.id + 1000, at(7, 30, 0), "::1").await, Err(RepoError::NotFound)));

    let d = s.add_device(NewDevice { user_id: u.id, name: "móvil".into(), pin_hash: "$pin".into() }).await.unwrap();
    assert_eq!(
        s.find_device(d.id).await.unwrap(),
        Some(Device {
            id: d.id, user_id: u.id, name: "móvil".into(), pin_hash: "$pin".into(), status: Status::Active
        })
    );
    assert_eq!(s.find_device(d.id + 1000).await.unwrap(), None);
    let r = s.add_device(NewDevice { user_id: u.id + 1000, name: "x".into(), pin_hash: "x".into() }).await;
    assert!(matches!(r, Err(RepoError::MissingReference(_))), "{r:?}");
}

fn grants(list: &[Endpoint]) -> BTreeSet<Endpoint> {
    list.iter().copied().collect()
}

pub async fn consumers_round_trip_with_grants<S: Store>(s: Arc<S>) {
    let created_at = at(12, 0, 0);
    let c = s
        .create_consumer(NewConsumer {
            name: "canal_lectura".into(),
            secret_hash: "ab".repeat(32),
            grants: grants(&[Endpoint::MailSave, Endpoint::MailAccounts]),
            created_at,
        })
        .await
        .unwrap();
    assert_eq!(c.name, "canal_lectura");
    assert_eq!(c.status, Status::Active);
    assert_eq!(c.created_at, created_at);
    assert_eq!(c.grants, grants(&[Endpoint::MailAccounts, Endpoint::MailSave]));
    assert_eq!(s.find_consumer("canal_lectura").await.unwrap(), Some(c.clone()));
    let every = s
        .create_consumer(NewConsumer {
            name: "todo".into(),
            secret_hash: "cd".repeat(32),
            grants: Endpoint::ALL.into_iter().collect(),
            created_at,
        })
        .await
        .unwrap();
    assert_eq!(s.find_consumer("todo").await.unwrap().unwrap().grants.len(), 11);
    let none = s
        .create_consumer(NewConsumer {
            name: "nada".into(),
            secret_hash: "ef".repeat(32),
            grants: grants(&[]),
            created_at,
        })
        .await
        .unwrap();
    assert!(s.find_consumer("nada").await.unwrap().unwrap().grants.is_empty());
    let names: Vec<String> = s.list_consumers().await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, vec![c.name, every.name, none.name]);
}

pub async fn consumer_updates_and_unknown_names<S: Store>(s: Arc<S>) {
    let new = NewConsumer {
        name: "canal".into(),
        secret_hash: "ab".repeat(32),
        grants: grants(&[Endpoint::MailSave]),
        created_at: at(1, 2, 3),
    };
    s.create_consumer(new).await.unwrap();
    s.set_consumer_status("canal", Status::Inactive).await.unwrap();
    assert_eq!(s.find_consumer("canal").await.unwrap().unwrap().status, Status::Inactive);
    s.set_consumer_grants("canal", grants(&[Endpoint::SsoAccess, Endpoint::AdiToken])).await.unwrap();
    assert_eq!(
        s.find_consumer("canal").await.unwrap().unwrap().grants,
        grants(&[Endpoint::SsoAccess, Endpoint::AdiToken])
    );
    s.set_consumer_grants("canal", grants(&[])).await.unwrap();
    assert!(s.find_consumer("canal").await.unwrap().unwrap().grants.is_empty());
    s.set_consumer_secret("canal", &"99".repeat(32)).await.unwrap();
    assert_eq!(s.find_consumer("canal").await.unwrap().unwrap().secret_hash, "99".repeat(32));
    assert!(matches!(s.set_consumer_status("otro", Status::Active).await, Err(RepoError::NotFound)));
    assert!(matches!(s.set_consumer_grants("otro", grants(&[])).await, Err(RepoError::NotFound)));
    assert!(matches!(s.set_consumer_secret("otro", "x").await, Err(RepoError::NotFound)));
}

pub async fn consumer_lookup_is_case_sensitive_but_names_unique_ignoring_case<S: Store>(s: Arc<S>) {
    let new = |name: &str| NewConsumer {
        name: name.into(),
        secret_hash: "ab".repeat(32),
        grants: grants(&[Endpoint::MailSave]),
        created_at: at(1, 2, 3),
    };
    s.create_consumer(new("UsuarioPrueba")).await.unwrap();
    assert!(s.find_consumer("UsuarioPrueba").await.unwrap().is_some());
    assert!(s.find_consumer("usuarioprueba").await.unwrap().is_none());
    assert_duplicate(s.create_consumer(new("usuarioprueba")).await, "consumer name");
}

fn audit_entry(endpoint: &str, parent_id: Option<i64>) -> NewAuditEntry {
    NewAuditEntry {
        at: at(12, 0, 1),
        consumer_name: Some("canal".into()),
        endpoint: endpoint.into(),
        method: "POST".into(),
        client_ip: "127.0.0.1".into(),
        body: r#"{"subject":"hola ñ","password":"[REDACTED]"}"#.into(),
        parent_id,
    }
}

fn audit_record(id: i64, endpoint: &str, parent_id: Option<i64>, status: u16) -> AuditRecord {
    AuditRecord {
        id,
        entry: audit_entry(endpoint, parent_id),
        outcome: AuditOutcome { consumer_id: None, status, duration_us: 1234, user_id: None },
    }
}

pub async fn audit_records_are_written_in_batches_and_link<S: Store>(s: Arc<S>) {
    let first = s.reserve_audit_ids(10).await.unwrap();
    assert!(first > 0);
    let c = s
        .create_consumer(NewConsumer {
            name: "canal".into(),
            secret_hash: "ab".repeat(32),
            grants: grants(&[]),
            created_at: at(1, 1, 1),
        })
        .await
        .unwrap();
    let u = s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    let mut one = audit_record(first, "correo/save", None, 422);
    one.outcome.consumer_id = Some(c.id);
    one.outcome.user_id = Some(u.id);
    // In one batch: a record linking to one earlier in the same batch, one
    // linking to nothing (dropped, not refused), a long multi-byte body.
    let two = audit_record(first + 1, "SSO/access", Some(first), 200);
    let three = audit_record(first + 2, "SSO/access", Some(first + 10_000), 401);
    let mut four = audit_record(first + 3, "UsuarioInterno/get", None, 200);
    four.entry.body = "ñ".repeat(16_000);
    s.write_audit(&[one.clone(), two, three, four.clone()]).await.unwrap();
    assert_eq!(
        s.find_audit(first).await.unwrap().unwrap(),
        AuditEntry {
            id: first,
            at: one.entry.at,
            consumer_id: Some(c.id),
            consumer_name: Some("canal".into()),
            endpoint: "correo/save".into(),
            method: "POST".into(),
            client_ip: "127.0.0.1".into(),
            status: Some(422),
            duration_us: Some(1234),
            body: one.entry.body.clone(),
            parent_id: None,
            user_id: Some(u.id),
        }
    );
    assert_eq!(s.find_audit(first + 1).await.unwrap().unwrap().parent_id, Some(first));
    assert_eq!(s.find_audit(first + 1).await.unwrap().unwrap().user_id, None);
    assert_eq!(s.find_audit(first + 2).await.unwrap().unwrap().parent_id, None);
    assert_eq!(s.find_audit(first + 3).await.unwrap().unwrap().body, four.entry.body);
    // A later batch links to a stored record.
    s.write_audit(&[audit_record(first + 5, "x", Some(first + 1), 200)]).await.unwrap();
    assert_eq!(s.find_audit(first + 5).await.unwrap().unwrap().parent_id, Some(first + 1));
    let recent: Vec<i64> = s.recent_audit(2).await.unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(recent, vec![first + 5, first + 3]);
    // An id stored before fails the whole batch.
    let again = s.write_audit(&[audit_record(first + 6, "y", None, 200), audit_record(first, "z", None, 200)]).await;
    assert_duplicate(again, "audit id");
    assert_eq!(s.find_audit(first + 6).await.unwrap(), None, "nothing of a failed batch is stored");
    // Blocks reserved later start above everything stored.
    let next = s.reserve_audit_ids(10).await.unwrap();
    assert!(next >= first + 10, "{next} overlaps the first block");
    assert_eq!(s.find_audit(next + 1000).await.unwrap(), None);
}

pub async fn concurrent_audit_reservations_never_overlap<S: Store>(s: Arc<S>) {
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.reserve_audit_ids(5).await.unwrap() }));
    }
    let mut firsts = Vec::new();
    for t in tasks {
        firsts.push(t.await.unwrap());
    }
    firsts.sort_unstable();
    for w in firsts.windows(2) {
        assert!(w[1] >= w[0] + 5, "blocks {firsts:?} overlap");
    }
    let records: Vec<_> = firsts.iter().map(|f| audit_record(*f + 4, "e", None, 200)).collect();
    s.write_audit(&records).await.unwrap();
    let ids: BTreeSet<i64> = s.recent_audit(100).await.unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 16);
}

pub async fn mail_accounts_filter_and_uniqueness<S: Store>(s: Arc<S>) {
    let d1 = s.create_department(NewDepartment { name: "Uno".into(), synology_channel: None }).await.unwrap();
    let d2 = s.create_department(NewDepartment { name: "Dos".into(), synology_channel: None }).await.unwrap();
    let new = |user: &str, dep: i64, status: Status| NewMailAccount {
        host: "imap.example.test".into(),
        user: user.into(),
        sealed_password: vec![0, 1, 2, 255, 254],
        port: "993".into(),
        mailboxes: vec!["INBOX".into(), "Soporte/Entrada".into()],
        department_id: dep,
        status,
        send_acknowledgement: dep == d1.id,
    };
    let a = s.create_mail_account(new("soporte@example.test", d1.id, Status::Active)).await.unwrap();
    assert_eq!(a.sealed_password, vec![0, 1, 2, 255, 254]);
    assert_eq!(a.mailboxes, vec!["INBOX".to_string(), "Soporte/Entrada".to_string()]);
    assert!(a.send_acknowledgement);
    let b = s.create_mail_account(new("ventas@example.test", d2.id, Status::Active)).await.unwrap();
    assert!(!b.send_acknowledgement);
    let c = s.create_mail_account(new("viejo@example.test", d2.id, Status::Inactive)).await.unwrap();
    assert_duplicate(s.create_mail_account(new("soporte@example.test", d2.id, Status::Active)).await, "account user");
    let r = s.create_mail_account(new("nuevo@example.test", 987_654, Status::Active)).await;
    assert!(matches!(r, Err(RepoError::MissingReference(_))), "{r:?}");

    let ids = |v: Vec<MailAccount>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(ids(s.find_mail_accounts(MailAccountFilter::default()).await.unwrap()), vec![a.id, b.id, c.id]);
    let f = MailAccountFilter { department_id: Some(d2.id), ..Default::default() };
    assert_eq!(ids(s.find_mail_accounts(f).await.unwrap()), vec![b.id, c.id]);
    let f = MailAccountFilter { department_id: Some(d2.id), status: Some(Status::Active), ..Default::default() };
    assert_eq!(ids(s.find_mail_accounts(f).await.unwrap()), vec![b.id]);
    let f = MailAccountFilter { user: Some("SOPORTE@example.test".into()), ..Default::default() };
    assert_eq!(s.find_mail_accounts(f).await.unwrap(), vec![a.clone()]);
    let f = MailAccountFilter { id: Some(c.id), status: Some(Status::Active), ..Default::default() };
    assert!(s.find_mail_accounts(f).await.unwrap().is_empty());
}

pub async fn health_ping<S: Store>(s: Arc<S>) {
    s.ping().await.unwrap();
    // A healthy store takes writes, and the probe leaves nothing behind.
    s.probe_write(64 * 1024).await.unwrap();
    s.probe_write(64 * 1024).await.unwrap();
}

fn session(id: &str, user_id: i64, product_id: Option<i64>, created: Timestamp) -> UserSession {
    UserSession {
        token_id: id.into(),
        user_id,
        product_id,
        created_at: created,
        expires_at: created + chrono::Duration::hours(8),
        revoked_at: None,
        family_id: format!("family-of-{id}"),
        family_started_at: created - chrono::Duration::days(1),
    }
}

pub async fn sessions_rotate_once_and_revoke_per_user<S: Store>(s: Arc<S>) {
    let u = s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    let v = s.create_user(sample_user("bea", "bea@example.test", None)).await.unwrap();
    let p = s.create_product(NewProduct { alias: "mesa".into(), name: "Mesa".into() }).await.unwrap();
    let t0 = at(8, 0, 0);
    s.create_session(session("s1", u.id, Some(p.id), t0)).await.unwrap();
    assert_eq!(s.find_session("s1").await.unwrap(), Some(session("s1", u.id, Some(p.id), t0)));
    assert_eq!(s.find_session("nope").await.unwrap(), None);
    assert_duplicate(s.create_session(session("s1", u.id, None, t0)).await, "token id");
    let r = s.create_session(session("s9", u.id + v.id + 1000, None, t0)).await;
    assert!(matches!(r, Err(RepoError::MissingReference(_))), "{r:?}");

    let t1 = at(9, 0, 0);
    s.rotate_session("s1", session("s2", u.id, Some(p.id), t1), t1).await.unwrap();
    assert_eq!(s.find_session("s1").await.unwrap().unwrap().revoked_at, Some(t1));
    assert_eq!(s.find_session("s2").await.unwrap().unwrap().revoked_at, None);
    // A revoked token cannot be rotated again, and nothing is stored.
    let r = s.rotate_session("s1", session("s3", u.id, None, t1), t1).await;
    assert!(matches!(r, Err(RepoError::NotFound)), "{r:?}");
    assert_eq!(s.find_session("s3").await.unwrap(), None);
    assert!(matches!(s.rotate_session("nope", session("s4", u.id, None, t1), t1).await, Err(RepoError::NotFound)));

    s.create_session(session("s5", u.id, None, t1)).await.unwrap();
    s.create_session(session("v1", v.id, None, t1)).await.unwrap();
    let t2 = at(10, 0, 0);
    assert_eq!(s.revoke_user_sessions(u.id, t2).await.unwrap(), 2);
    assert_eq!(s.find_session("s2").await.unwrap().unwrap().revoked_at, Some(t2));
    assert_eq!(s.find_session("s5").await.unwrap().unwrap().revoked_at, Some(t2));
    assert_eq!(s.find_session("s1").await.unwrap().unwrap().revoked_at, Some(t1), "already revoked stays");
    assert_eq!(s.find_session("v1").await.unwrap().unwrap().revoked_at, None, "other users untouched");
    assert_eq!(s.revoke_user_sessions(u.id, t2).await.unwrap(), 0);
    // Per product: only that product's live tokens of that user.
    let q = s.create_product(NewProduct { alias: "portal".into(), name: "Portal".into() }).await.unwrap();
    let t3 = at(10, 30, 0);
    for (id, user, product) in [("m1", u.id, p.id), ("m2", u.id, p.id), ("o1", u.id, q.id), ("w1", v.id, p.id)] {
        s.create_session(session(id, user, Some(product), t3)).await.unwrap();
    }
    assert_eq!(s.revoke_product_sessions(u.id, p.id, t3).await.unwrap(), 2);
    for (id, revoked) in [("m1", Some(t3)), ("m2", Some(t3)), ("o1", None), ("w1", None)] {
        assert_eq!(s.find_session(id).await.unwrap().unwrap().revoked_at, revoked, "{id}");
    }
    assert_eq!(s.revoke_product_sessions(u.id, p.id, t3).await.unwrap(), 0);
    assert_eq!(s.find_product(q.id).await.unwrap(), Some(q.clone()));
    assert_eq!(s.find_product(q.id + 1000).await.unwrap(), None);

    // Families: one login's chain of refreshed tokens.
    let in_family = |id: &str, user: i64, family: &str| UserSession {
        family_id: family.into(),
        ..session(id, user, Some(p.id), t2)
    };
    for (id, user, family) in [("f1", u.id, "F"), ("f2", u.id, "F"), ("g1", u.id, "G"), ("f3", v.id, "F")] {
        s.create_session(in_family(id, user, family)).await.unwrap();
    }
    assert_eq!(s.find_session("f1").await.unwrap().unwrap(), in_family("f1", u.id, "F"), "family fields kept");
    let t3 = at(11, 0, 0);
    assert_eq!(s.revoke_session_family("F", t3).await.unwrap(), 3);
    for id in ["f1", "f2", "f3"] {
        assert_eq!(s.find_session(id).await.unwrap().unwrap().revoked_at, Some(t3), "{id}");
    }
    assert_eq!(s.find_session("g1").await.unwrap().unwrap().revoked_at, None, "other families untouched");
    assert_eq!(s.revoke_session_family("F", t3).await.unwrap(), 0);
}

pub async fn concurrent_rotations_of_one_token_have_one_winner<S: Store>(s: Arc<S>) {
    let u = s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    let t0 = at(8, 0, 0);
    s.create_session(session("old", u.id, None, t0)).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.rotate_session("old", session(&format!("new{n}"), u.id, None, t0), t0).await.is_ok()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    let mut stored = 0;
    for n in 0..16 {
        stored += usize::from(s.find_session(&format!("new{n}")).await.unwrap().is_some());
    }
    assert_eq!(stored, 1);
}

pub async fn password_resets_complete_once_and_revoke_sessions<S: Store>(s: Arc<S>) {
    let u = s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    let t0 = at(8, 0, 0);
    let first = s.create_reset(u.id, &"a".repeat(64), t0).await.unwrap();
    let second = s.create_reset(u.id, &"b".repeat(64), at(8, 5, 0)).await.unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(
        s.find_reset(first.id).await.unwrap(),
        Some(PasswordReset { id: first.id, user_id: u.id, token_hash: "a".repeat(64), created_at: t0, used_at: None })
    );
    assert_eq!(s.latest_reset(u.id).await.unwrap().unwrap().id, second.id);
    assert_eq!(s.latest_reset(u.id + 1000).await.unwrap(), None);
    let r = s.create_reset(u.id + 1000, "x", t0).await;
    assert!(matches!(r, Err(RepoError::MissingReference(_))), "{r:?}");

    s.create_session(session("live", u.id, None, t0)).await.unwrap();
    let t1 = at(8, 10, 0);
    s.complete_reset(second.id, "$argon2id$nueva", t1).await.unwrap();
    assert_eq!(s.find_reset(second.id).await.unwrap().unwrap().used_at, Some(t1));
    assert_eq!(s.find_user_credentials("ana").await.unwrap().unwrap().1.as_deref(), Some("$argon2id$nueva"));
    assert_eq!(s.find_session("live").await.unwrap().unwrap().revoked_at, Some(t1));
    // Used once: the second use changes nothing.
    let r = s.complete_reset(second.id, "$argon2id$otra", at(8, 11, 0)).await;
    assert!(matches!(r, Err(RepoError::NotFound)), "{r:?}");
    assert_eq!(s.find_user_credentials("ana").await.unwrap().unwrap().1.as_deref(), Some("$argon2id$nueva"));
    assert!(matches!(s.complete_reset(second.id + 1000, "x", t1).await, Err(RepoError::NotFound)));
}

pub async fn throttle_counts_windows_and_locks<S: Store>(s: Arc<S>) {
    let key = "pwd:u1:127.0.0.1";
    let wide = "pwd:u1";
    assert_eq!(s.throttle_state(key).await.unwrap(), None);
    let t = |m: u32| at(8, m, 0);
    let limits = |now: Timestamp, max_wide: i32| {
        vec![
            ThrottleLimit { key: key.into(), max: 3, lock_until: now + chrono::Duration::minutes(15) },
            ThrottleLimit { key: wide.into(), max: max_wide, lock_until: now + chrono::Duration::minutes(15) },
        ]
    };
    let reserve = |now: Timestamp, max_wide: i32| {
        let (s, limits) = (s.clone(), limits(now, max_wide));
        async move { s.reserve_attempt(&limits, now, now - chrono::Duration::minutes(15)).await.unwrap() }
    };
    assert_eq!(reserve(t(0), 10).await, Reservation::Granted);
    let st = s.throttle_state(key).await.unwrap().unwrap();
    assert_eq!((st.failures, st.window_started_at, st.locked_until), (1, t(0), None));
    assert_eq!(reserve(t(1), 10).await, Reservation::Granted);
    // The attempt that reaches the limit is granted and locks the key.
    assert_eq!(reserve(t(2), 10).await, Reservation::Granted);
    let st = s.throttle_state(key).await.unwrap().unwrap();
    assert_eq!((st.failures, st.locked_until), (3, Some(t(17))));
    // Locked: refused, with the time left, and nothing counted anywhere.
    assert_eq!(reserve(t(3), 10).await, Reservation::Refused { retry_after_secs: 14 * 60 });
    assert_eq!(s.throttle_state(key).await.unwrap(), Some(st));
    assert_eq!(s.throttle_state(wide).await.unwrap().unwrap().failures, 3, "the refused attempt counted nowhere");
    // After the lock and the window, counting starts over.
    assert_eq!(reserve(t(40), 10).await, Reservation::Granted);
    let st = s.throttle_state(key).await.unwrap().unwrap();
    assert_eq!((st.failures, st.window_started_at, st.locked_until), (1, t(40), None));
    // One key at its limit refuses the attempt for all keys.
    s.clear_throttle(key).await.unwrap();
    assert_eq!(reserve(t(41), 1).await, Reservation::Refused { retry_after_secs: 14 * 60 });
    assert_eq!(s.throttle_state(key).await.unwrap().map(|st| st.failures).unwrap_or(0), 0);
    // A success clears some keys and gives the attempt back to others,
    // unlocking what it had locked.
    s.clear_throttle(wide).await.unwrap();
    for m in 42..45 {
        assert_eq!(reserve(t(m), 3).await, Reservation::Granted);
    }
    assert!(s.throttle_state(wide).await.unwrap().unwrap().locked_until.is_some());
    s.attempt_succeeded(&[key.to_string()], &limits(t(44), 3)[1..]).await.unwrap();
    assert_eq!(s.throttle_state(key).await.unwrap(), None);
    let st = s.throttle_state(wide).await.unwrap().unwrap();
    assert_eq!((st.failures, st.locked_until), (2, None));
    s.attempt_succeeded(&[], &limits(t(44), 3)[1..]).await.unwrap();
    s.attempt_succeeded(&[], &limits(t(44), 3)[1..]).await.unwrap();
    s.attempt_succeeded(&[], &limits(t(44), 3)[1..]).await.unwrap();
    assert_eq!(s.throttle_state(wide).await.unwrap().unwrap().failures, 0, "never below zero");
    s.clear_throttle("never-seen").await.unwrap();
    s.attempt_succeeded(&["never-seen".into()], &limits(t(44), 3)).await.unwrap();
}

/// Logins of many accounts from one address, reserved and succeeding at
/// once while other writes land between their statements: every one is
/// stored (SQLite once answered "database is locked" to a transaction that
/// read before it wrote), and the shared key ends where it started.
pub async fn logins_succeeding_at_once_beside_other_writes_all_land<S: Store>(s: Arc<S>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let now = at(8, 0, 0);
    let lock_until = now + chrono::Duration::minutes(30);
    let user = s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // Writes outside any transaction, all along.
    let writers: Vec<_> = (0..6)
        .map(|_| {
            let (s, done) = (s.clone(), done.clone());
            tokio::spawn(async move {
                loop {
                    s.record_login(user.id, now, "10.0.0.2").await.unwrap();
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    // An in-memory store answers at once: let the logins run.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let logins: Vec<_> = (0..16)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    let own = ThrottleLimit { key: format!("pwd:u{n}:10.0.0.1"), max: 5, lock_until };
                    let account = ThrottleLimit { key: format!("pwd:u{n}"), max: 50, lock_until };
                    let address = ThrottleLimit { key: "ip:10.0.0.1".into(), max: 30, lock_until };
                    let limits = [own.clone(), account.clone(), address.clone()];
                    let granted = s.reserve_attempt(&limits, now, now - chrono::Duration::minutes(15)).await.unwrap();
                    assert_eq!(granted, Reservation::Granted, "login {n}");
                    s.attempt_succeeded(&[own.key], &[account, address]).await.unwrap();
                }
            })
        })
        .collect();
    for t in logins {
        t.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    for n in 0..16 {
        assert_eq!(s.throttle_state(&format!("pwd:u{n}:10.0.0.1")).await.unwrap(), None, "cleared");
        assert_eq!(s.throttle_state(&format!("pwd:u{n}")).await.unwrap().unwrap().failures, 0, "refunded");
    }
    assert_eq!(s.throttle_state("ip:10.0.0.1").await.unwrap().unwrap().failures, 0, "refunded by each");
}

/// A login's success in one step: throttle settled, login recorded,
/// session stored; an unknown user or a session id already stored leaves
/// all three as they were.
pub async fn a_login_succeeds_all_at_once_or_not_at_all<S: Store>(s: Arc<S>) {
    let now = at(9, 0, 0);
    let lock_until = now + chrono::Duration::minutes(30);
    let user = s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    let own = ThrottleLimit { key: format!("pwd:u{}:10.0.0.1", user.id), max: 5, lock_until };
    let account = ThrottleLimit { key: format!("pwd:u{}", user.id), max: 50, lock_until };
    let limits = [own.clone(), account.clone()];
    for _ in 0..2 {
        let granted = s.reserve_attempt(&limits, now, now - chrono::Duration::minutes(15)).await.unwrap();
        assert_eq!(granted, Reservation::Granted);
    }
    let done = |user_id: i64, token: &str| LoginDone {
        clear: vec![own.key.clone()],
        refund: vec![account.clone()],
        user_id,
        at: now,
        ip: "10.0.0.1".into(),
        session: session(token, user.id, None, now),
    };
    let untouched = |s: Arc<S>| {
        let (own, account) = (own.key.clone(), account.key.clone());
        async move {
            assert_eq!(s.throttle_state(&own).await.unwrap().unwrap().failures, 2, "nothing cleared");
            assert_eq!(s.throttle_state(&account).await.unwrap().unwrap().failures, 2, "nothing refunded");
            assert_eq!(s.find_user(user.id).await.unwrap().unwrap().last_access, None, "no login recorded");
        }
    };
    assert!(matches!(s.login_succeeded(done(user.id + 1000, "t-ghost")).await, Err(RepoError::NotFound)));
    untouched(s.clone()).await;
    assert_eq!(s.find_session("t-ghost").await.unwrap(), None, "no session for an unknown user");
    s.create_session(session("t-taken", user.id, None, now)).await.unwrap();
    assert!(matches!(s.login_succeeded(done(user.id, "t-taken")).await, Err(RepoError::Duplicate(_))));
    untouched(s.clone()).await;

    s.login_succeeded(done(user.id, "t-new")).await.unwrap();
    assert_eq!(s.throttle_state(&own.key).await.unwrap(), None, "cleared");
    assert_eq!(s.throttle_state(&account.key).await.unwrap().unwrap().failures, 1, "refunded once");
    let stored = s.find_user(user.id).await.unwrap().unwrap();
    assert_eq!((stored.last_access, stored.ip_address.as_deref()), (Some(now), Some("10.0.0.1")));
    assert_eq!(s.find_session("t-new").await.unwrap(), Some(session("t-new", user.id, None, now)));
}

/// Keys whose lock was served, or with no lock and an ended window, go;
/// a running lock or window stays.
pub async fn stale_throttle_keys_are_purged_and_live_ones_kept<S: Store>(s: Arc<S>) {
    let t = |m: i64| at(8, 0, 0) + chrono::Duration::minutes(m);
    let reserve = |key: &str, max: i32, lock_minutes: i64, now: i64| {
        let (s, key) = (s.clone(), key.to_string());
        async move {
            let limit = ThrottleLimit { key, max, lock_until: t(now + lock_minutes) };
            let got = s.reserve_attempt(&[limit], t(now), t(now - 15)).await.unwrap();
            assert_eq!(got, Reservation::Granted);
        }
    };
    reserve("ip:served", 1, 5, 0).await; // locked until 8:05
    reserve("ip:locked", 1, 60, 0).await; // locked until 9:00
    reserve("ip:ended", 10, 30, 0).await; // window from 8:00, no lock
    reserve("ip:running", 10, 30, 20).await; // window from 8:20, no lock
    // At 8:30, with windows of 15 minutes (from 8:15).
    let purge = |limit: i64| {
        let s = s.clone();
        async move { s.purge_stale_throttles(t(15), t(30), limit).await.unwrap() }
    };
    assert_eq!(purge(1).await, 1, "at most the limit");
    assert_eq!(purge(10).await, 1);
    assert_eq!(purge(10).await, 0);
    for gone in ["ip:served", "ip:ended"] {
        assert_eq!(s.throttle_state(gone).await.unwrap(), None, "{gone}");
    }
    for kept in ["ip:locked", "ip:running"] {
        assert!(s.throttle_state(kept).await.unwrap().is_some(), "{kept}");
    }
}

/// Reservations racing on the same keys: exactly `max` are granted.
pub async fn concurrent_attempts_are_granted_up_to_the_limit<S: Store>(s: Arc<S>) {
    let now = at(8, 0, 0);
    let limits = vec![
        ThrottleLimit { key: "pin:u1:1:10.0.0.1".into(), max: 3, lock_until: now + chrono::Duration::minutes(30) },
        ThrottleLimit { key: "pin:u1:1".into(), max: 10, lock_until: now + chrono::Duration::minutes(30) },
        ThrottleLimit { key: "ip:10.0.0.1".into(), max: 30, lock_until: now + chrono::Duration::minutes(15) },
    ];
    let mut tasks = Vec::new();
    for n in 0..24 {
        let (s, mut limits) = (s.clone(), limits.clone());
        // Half of them list the keys in another order.
        if n % 2 == 1 {
            limits.reverse();
        }
        tasks.push(tokio::spawn(async move {
            s.reserve_attempt(&limits, now, now - chrono::Duration::minutes(15)).await.unwrap()
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += usize::from(t.await.unwrap() == Reservation::Granted);
    }
    assert_eq!(granted, 3);
    let st = s.throttle_state("pin:u1:1:10.0.0.1").await.unwrap().unwrap();
    assert_eq!((st.failures, st.locked_until), (3, Some(now + chrono::Duration::minutes(30))));
    assert_eq!(s.throttle_state("ip:10.0.0.1").await.unwrap().unwrap().failures, 3);
}

pub async fn integrated_systems_round_trip_and_update<S: Store>(s: Arc<S>) {
    let t0 = at(8, 0, 0);
    let a = s.create_system("factura_profesional", Status::Active, &"a".repeat(64), t0).await.unwrap();
    assert_eq!(
        a,
        IntegratedSystem {
            id: a.id,
            alias: "factura_profesional".into(),
            status: Status::Active,
            token_hash: "a".repeat(64),
            created_at: t0,
            updated_at: t0,
        }
    );
    assert_eq!(s.find_system("FACTURA_profesional").await.unwrap(), Some(a.clone()));
    assert_eq!(s.find_system_by_id(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.find_system("otro").await.unwrap(), None);
    assert_duplicate(s.create_system("Factura_Profesional", Status::Active, "x", t0).await, "alias");
    let t1 = at(9, 0, 0);
    let b = s.update_system("factura_profesional", None, Some("b".repeat(64)), t1).await.unwrap();
    assert_eq!(
        (b.token_hash.as_str(), b.status, b.updated_at, b.created_at),
        ("b".repeat(64).as_str(), Status::Active, t1, t0)
    );
    let c = s.update_system("factura_profesional", Some(Status::Inactive), None, t1).await.unwrap();
    assert_eq!((c.token_hash, c.status), ("b".repeat(64), Status::Inactive));
    assert!(matches!(s.update_system("otro", None, None, t1).await, Err(RepoError::NotFound)));
    let d = s.create_system("portal", Status::Inactive, "c", t0).await.unwrap();
    let aliases: Vec<String> = s.list_systems().await.unwrap().into_iter().map(|x| x.alias).collect();
    assert_eq!(aliases, vec!["factura_profesional".to_string(), d.alias]);
}

fn ticket(id: &str, user_id: i64, system_id: i64, created: Timestamp) -> LoginTicket {
    LoginTicket {
        ticket_id: id.into(),
        user_id,
        system_id,
        created_at: created,
        expires_at: created + chrono::Duration::minutes(10),
        used_at: None,
    }
}

pub async fn login_tickets_are_used_once_and_expire<S: Store>(s: Arc<S>) {
    let u = s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    let sys = s.create_system("portal", Status::Active, "h", at(7, 0, 0)).await.unwrap();
    let t0 = at(8, 0, 0);
    s.create_login_ticket(ticket("t1", u.id, sys.id, t0)).await.unwrap();
    assert_duplicate(s.create_login_ticket(ticket("t1", u.id, sys.id, t0)).await, "ticket id");
    let r = s.create_login_ticket(ticket("t9", u.id + 1000, sys.id, t0)).await;
    assert!(matches!(r, Err(RepoError::MissingReference(_))), "{r:?}");
    let r = s.create_login_ticket(ticket("t8", u.id, sys.id + 1000, t0)).await;
    assert!(matches!(r, Err(RepoError::MissingReference(_))), "{r:?}");
    let used = s.use_login_ticket("t1", at(8, 1, 0)).await.unwrap();
    assert_eq!(used, LoginTicket { used_at: Some(at(8, 1, 0)), ..ticket("t1", u.id, sys.id, t0) });
    assert!(matches!(s.use_login_ticket("t1", at(8, 2, 0)).await, Err(RepoError::NotFound)), "once");
    assert!(matches!(s.use_login_ticket("nope", t0).await, Err(RepoError::NotFound)));
    s.create_login_ticket(ticket("t2", u.id, sys.id, t0)).await.unwrap();
    assert!(matches!(s.use_login_ticket("t2", at(8, 10, 0)).await, Err(RepoError::NotFound)), "expired");
}

pub async fn concurrent_ticket_uses_have_one_winner<S: Store>(s: Arc<S>) {
    let u = s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    let sys = s.create_system("portal", Status::Active, "h", at(7, 0, 0)).await.unwrap();
    let t0 = at(8, 0, 0);
    s.create_login_ticket(ticket("t1", u.id, sys.id, t0)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.use_login_ticket("t1", at(8, 1, 0)).await.is_ok() }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

pub async fn department_webhooks_are_stored_sealed<S: Store>(s: Arc<S>) {
    let d = s
        .create_department(NewDepartment { name: "Soporte".into(), synology_channel: Some("soporte".into()) })
        .await
        .unwrap();
    assert_eq!(s.department_webhook(d.id).await.unwrap(), None);
    s.set_department_webhook(d.id, Some(vec![1, 2, 3, 255])).await.unwrap();
    assert_eq!(s.department_webhook(d.id).await.unwrap(), Some(vec![1, 2, 3, 255]));
    s.set_department_webhook(d.id, None).await.unwrap();
    assert_eq!(s.department_webhook(d.id).await.unwrap(), None);
    assert!(matches!(s.set_department_webhook(d.id + 1000, None).await, Err(RepoError::NotFound)));
}

pub fn sample_detail(key: &str, from: &str) -> NewTicketDetail {
    NewTicketDetail {
        dedupe_key: crate::crypto::sha256_hex(key.as_bytes()),
        message_id: Some(format!("{key}@cliente.test")),
        message_id_hash: Some(crate::crypto::sha256_hex(format!("{key}@cliente.test").as_bytes())),
        from: from.into(),
        to: "soporte@helpdesk.test".into(),
        cc: Some("copia@cliente.test".into()),
        bcc: None,
        reply_to: None,
        subject: "No funciona el correo".into(),
        body: "Texto del mensaje con ñ".into(),
        html: "<p>Texto del mensaje con ñ</p>".into(),
        date: at(9, 0, 0),
        headers: [("X-Tracking-ID".to_string(), "abc123".to_string())].into_iter().collect(),
        automatic: false,
        direction: Direction::Incoming,
        author_id: None,
    }
}

pub fn new_incoming(department_id: i64, assignee_id: Option<i64>, key: &str, from: &str) -> NewIncoming {
    NewIncoming {
        target: IncomingTarget::New(NewTicket {
            subject: "No funciona el correo".into(),
            department_id,
            assignee_id,
            requester: from.into(),
            mail_account_id: None,
            system: "canal_lectura".into(),
            sla: None,
        }),
        detail: sample_detail(key, from),
        attachments: vec![NewAttachment {
            name: "error_log.txt".into(),
            route: "logs/error_log.txt".into(),
            mime_type: "text/plain".into(),
        }],
        participants: vec![from.into(), "Copia@Cliente.test".into()],
        events: vec![],
        notices: vec![
            NewNotice { kind: NoticeKind::Acknowledgement, recipient: from.into() },
            NewNotice { kind: NoticeKind::DepartmentChannel, recipient: department_id.to_string() },
        ],
        webhook_events: vec![],
        now: at(9, 0, 1),
        notices_due_at: at(9, 0, 1),
        audit: None,
    }
}

pub async fn incoming_mail_creates_a_whole_ticket<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let op = s.create_user(sample_user("ana", "ana@example.test", Some(d.id))).await.unwrap();
    let stored = s.store_incoming(new_incoming(d.id, Some(op.id), "m1", "cliente@cliente.test")).await.unwrap();
    assert!(stored.created_ticket);
    assert_eq!(stored.notice_ids.len(), 2);
    let t = s.find_ticket(stored.ticket_id).await.unwrap().unwrap();
    assert_eq!(
        t,
        Ticket {
            id: stored.ticket_id,
            subject: "No funciona el correo".into(),
            status: TicketStatus::Open,
            priority: Priority::Normal,
            department_id: d.id,
            assignee_id: Some(op.id),
            requester: "cliente@cliente.test".into(),
            mail_account_id: None,
            system: "canal_lectura".into(),
            created_at: at(9, 0, 1),
            updated_at: at(9, 0, 1),
            closed_at: None,
            sla: None,
        }
    );
    let detail = s.find_detail(stored.detail_id).await.unwrap().unwrap();
    let expected = sample_detail("m1", "cliente@cliente.test");
    assert_eq!((detail.ticket_id, detail.dedupe_key.as_str()), (stored.ticket_id, expected.dedupe_key.as_str()));
    assert_eq!(
        (detail.body.as_str(), detail.html.as_str(), detail.date),
        (expected.body.as_str(), expected.html.as_str(), expected.date)
    );
    assert_eq!(
        (detail.cc, detail.headers, detail.opened_ticket, detail.automatic),
        (expected.cc, expected.headers, true, false)
    );
    assert_eq!(s.find_detail_by_dedupe(&expected.dedupe_key).await.unwrap().map(|d| d.id), Some(stored.detail_id));
    let found = s.find_details_by_dedupe(&["nada".into(), expected.dedupe_key.clone()]).await.unwrap();
    assert_eq!(found.iter().map(|d| d.id).collect::<Vec<_>>(), [stored.detail_id]);
    assert_eq!(s.find_details_by_dedupe(&[]).await.unwrap(), []);
    assert_eq!(
        s.ticket_of_message(expected.message_id_hash.as_deref().unwrap()).await.unwrap(),
        Some(stored.ticket_id)
    );
    assert_eq!(s.ticket_of_message("nada").await.unwrap(), None);
    let atts = s.attachments_of(stored.detail_id).await.unwrap();
    assert_eq!(atts.len(), 1);
    assert_eq!(
        (atts[0].name.as_str(), atts[0].route.as_str(), atts[0].mime_type.as_str()),
        ("error_log.txt", "logs/error_log.txt", "text/plain")
    );
    assert!(s.is_participant(stored.ticket_id, "CLIENTE@cliente.test").await.unwrap());
    assert!(s.is_participant(stored.ticket_id, "copia@cliente.test").await.unwrap());
    assert!(!s.is_participant(stored.ticket_id, "extrano@otro.test").await.unwrap());
    let notices = s.notices_of_detail(stored.detail_id).await.unwrap();
    assert_eq!(notices.iter().map(|n| n.id).collect::<Vec<_>>(), stored.notice_ids);
    assert_eq!(
        (notices[0].kind, notices[0].status, notices[0].attempts),
        (NoticeKind::Acknowledgement, NoticeStatus::Pending, 0)
    );
    assert_eq!((notices[0].next_attempt_at, notices[0].ticket_id), (at(9, 0, 1), stored.ticket_id));
    assert_eq!(s.pending_notices().await.unwrap(), 2);
    let r = s.store_incoming(new_incoming(d.id + 1000, None, "m2", "x@cliente.test")).await;
    assert!(matches!(r, Err(RepoError::MissingReference(_))), "{r:?}");
    assert_eq!(
        s.find_detail_by_dedupe(&sample_detail("m2", "x").dedupe_key).await.unwrap(),
        None,
        "nothing half-written"
    );
}

pub async fn incoming_mail_joins_and_reopens_a_ticket<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let first = s.store_incoming(new_incoming(d.id, None, "m1", "cliente@cliente.test")).await.unwrap();
    s.set_ticket_status(first.ticket_id, TicketStatus::Closed, at(10, 0, 0)).await.unwrap();
    let closed = s.find_ticket(first.ticket_id).await.unwrap().unwrap();
    assert_eq!((closed.status, closed.closed_at), (TicketStatus::Closed, Some(at(10, 0, 0))));
    let reply = NewIncoming {
        target: IncomingTarget::Existing { ticket_id: first.ticket_id, reopen: true, sla: None },
        detail: sample_detail("m2", "otro@cliente.test"),
        attachments: vec![],
        participants: vec!["otro@cliente.test".into()],
        events: vec![],
        notices: vec![],
        webhook_events: vec![],
        now: at(11, 0, 0),
        notices_due_at: at(11, 0, 0),
        audit: None,
    };
    let second = s.store_incoming(reply.clone()).await.unwrap();
    assert_eq!((second.ticket_id, second.created_ticket), (first.ticket_id, false));
    let t = s.find_ticket(first.ticket_id).await.unwrap().unwrap();
    assert_eq!((t.status, t.closed_at, t.updated_at), (TicketStatus::Open, None, at(11, 0, 0)));
    assert!(!s.find_detail(second.detail_id).await.unwrap().unwrap().opened_ticket);
    let ids: Vec<i64> = s.details_of(first.ticket_id).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![first.detail_id, second.detail_id]);
    assert!(s.is_participant(first.ticket_id, "otro@cliente.test").await.unwrap());
    let gone = NewIncoming {
        target: IncomingTarget::Existing { ticket_id: first.ticket_id + 1000, reopen: false, sla: None },
        detail: sample_detail("m3", "x@cliente.test"),
        ..reply
    };
    assert!(matches!(s.store_incoming(gone).await, Err(RepoError::NotFound)));
    assert!(matches!(
        s.set_ticket_status(first.ticket_id + 1000, TicketStatus::Open, at(1, 0, 0)).await,
        Err(RepoError::NotFound)
    ));
}

pub async fn duplicates_write_nothing<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let op = s.create_user(sample_user("ana", "ana@example.test", Some(d.id))).await.unwrap();
    let first = s.store_incoming(new_incoming(d.id, Some(op.id), "m1", "cliente@cliente.test")).await.unwrap();
    let mut again = new_incoming(d.id, Some(op.id), "m1", "otro@cliente.test");
    again.participants = vec!["otro@cliente.test".into()];
    let r = s.store_incoming(again).await;
    assert!(matches!(r, Err(RepoError::Duplicate(_))), "{r:?}");
    assert_eq!(s.pending_notices().await.unwrap(), 2, "no new notices");
    assert_eq!(s.operator_loads(d.id).await.unwrap()[0].open_tickets, 1, "no new ticket");
    assert_eq!(s.details_of(first.ticket_id).await.unwrap().len(), 1);
    assert!(!s.is_participant(first.ticket_id, "otro@cliente.test").await.unwrap());
}

pub async fn incoming_batches_store_all_in_order_or_nothing<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let a = s.create_user(sample_user("ana", "ana@example.test", Some(d.id))).await.unwrap();
    let b = s.create_user(sample_user("bea", "bea@example.test", Some(d.id))).await.unwrap();
    let mut batch: Vec<NewIncoming> = [("b1", Some(a.id)), ("b2", Some(b.id)), ("b3", Some(a.id)), ("b4", None)]
        .into_iter()
        .map(|(key, assignee)| new_incoming(d.id, assignee, key, &format!("{key}@cliente.test")))
        .collect();
    // Different shapes in one batch: no notices, two attachments, a word
    // of its own, a later clock.
    batch[1].notices.clear();
    batch[2].attachments.push(NewAttachment {
        name: "b.png".into(),
        route: "b.png".into(),
        mime_type: "image/png".into(),
    });
    batch[3].detail.body = "Solo aquí: tóner".into();
    batch[3].now = at(9, 0, 7);
    let stored = s.store_incoming_batch(&batch).await.unwrap();
    assert_eq!(stored.len(), 4);
    for (n, st) in batch.iter().zip(&stored) {
        assert!(st.created_ticket);
        let t = s.find_ticket(st.ticket_id).await.unwrap().unwrap();
        let IncomingTarget::New(new) = &n.target else { unreachable!() };
        assert_eq!(
            (t.requester.as_str(), t.assignee_id, t.created_at),
            (new.requester.as_str(), new.assignee_id, n.now)
        );
        let detail = s.find_detail(st.detail_id).await.unwrap().unwrap();
        assert_eq!(
            (detail.ticket_id, detail.dedupe_key.as_str(), detail.opened_ticket),
            (st.ticket_id, n.detail.dedupe_key.as_str(), true)
        );
        assert_eq!(detail.body, n.detail.body);
        let atts: Vec<String> = s.attachments_of(st.detail_id).await.unwrap().into_iter().map(|x| x.route).collect();
        assert_eq!(atts, n.attachments.iter().map(|x| x.route.clone()).collect::<Vec<_>>());
        assert!(s.is_participant(st.ticket_id, &n.detail.from).await.unwrap());
        assert!(s.is_participant(st.ticket_id, "copia@cliente.test").await.unwrap());
        let notices = s.notices_of_detail(st.detail_id).await.unwrap();
        assert_eq!(notices.iter().map(|x| x.id).collect::<Vec<_>>(), st.notice_ids);
        assert_eq!(
            notices.iter().map(|x| x.kind).collect::<Vec<_>>(),
            n.notices.iter().map(|x| x.kind).collect::<Vec<_>>()
        );
        assert!(notices.iter().all(|x| x.ticket_id == st.ticket_id), "{notices:?}");
    }
    assert_eq!(found(&*s, "toner").await, vec![stored[3].ticket_id]);
    let after = loads(&*s, d.id).await;
    assert_eq!(after.iter().map(|(u, n, _)| (*u, *n)).collect::<Vec<_>>(), vec![(a.id, 2), (b.id, 1)]);
    let acks = s
        .count_notices_to(
            NoticeKind::Acknowledgement,
            &["b1@cliente.test".into(), "nadie@x.test".into(), "b3@cliente.test".into()],
            at(9, 0, 0),
        )
        .await
        .unwrap();
    assert_eq!(acks, vec![1, 0, 1]);
    assert!(s.count_notices_to(NoticeKind::Acknowledgement, &[], at(9, 0, 0)).await.unwrap().is_empty());
    // Both reads at once, as opening tickets makes them: each as alone.
    let users = [b.id, a.id, b.id + 1000];
    let to: Vec<String> = vec!["b3@cliente.test".into(), "nadie@x.test".into(), "b1@cliente.test".into()];
    let ack = NoticeKind::Acknowledgement;
    let alone = s.user_loads(&users).await.unwrap();
    assert_eq!(alone[2], (0, None), "{alone:?}");
    assert_eq!(s.loads_and_notices_sent(&users, ack, &to, at(9, 0, 0)).await.unwrap(), (alone.clone(), vec![1, 0, 1]));
    assert_eq!(s.loads_and_notices_sent(&users, ack, &to, at(9, 0, 8)).await.unwrap(), (alone.clone(), vec![0, 0, 0]));
    assert_eq!(s.loads_and_notices_sent(&users, ack, &[], at(9, 0, 0)).await.unwrap(), (alone, vec![]));
    assert_eq!(s.loads_and_notices_sent(&[], ack, &to[..1], at(9, 0, 0)).await.unwrap(), (vec![], vec![1]));

    // One mail stored before spoils its batch: nothing of it is written.
    let pending = s.pending_notices().await.unwrap();
    let spoilt = vec![
        new_incoming(d.id, Some(b.id), "c1", "c1@cliente.test"),
        new_incoming(d.id, Some(b.id), "b2", "b2@cliente.test"),
    ];
    let r = s.store_incoming_batch(&spoilt).await;
    assert!(matches!(r, Err(RepoError::Duplicate(_))), "{r:?}");
    assert_eq!(
        s.find_detail_by_dedupe(&sample_detail("c1", "x").dedupe_key).await.unwrap(),
        None,
        "nothing half-written"
    );
    assert_eq!(s.pending_notices().await.unwrap(), pending);
    assert_eq!(loads(&*s, d.id).await.iter().map(|(u, n, _)| (*u, *n)).collect::<Vec<_>>(), vec![(a.id, 2), (b.id, 1)]);
    // And twice the same mail in one batch is as much a duplicate.
    let twice =
        vec![new_incoming(d.id, None, "c2", "c2@cliente.test"), new_incoming(d.id, None, "c2", "c2@cliente.test")];
    assert!(matches!(s.store_incoming_batch(&twice).await, Err(RepoError::Duplicate(_))));
    assert_eq!(s.find_detail_by_dedupe(&sample_detail("c2", "x").dedupe_key).await.unwrap(), None);
}

/// The bitácora record of the request that brought a mail is written in
/// the mail's transaction: with it, or not at all.
pub async fn a_mail_s_bitacora_record_is_written_with_it<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let op = s.create_user(sample_user("ana", "ana@example.test", Some(d.id))).await.unwrap();
    let ids = s.reserve_audit_ids(10).await.unwrap();
    let with = |key: &str, id: i64| {
        let mut n = new_incoming(d.id, Some(op.id), key, "cliente@cliente.test");
        n.audit = Some(audit_record(id, "correo/save", None, 200));
        n
    };
    // A new ticket, alone.
    let first = s.store_incoming(with("m1", ids)).await.unwrap();
    let written = s.find_audit(ids).await.unwrap().expect("written with the ticket");
    assert_eq!(
        (written.endpoint.as_str(), written.status, written.duration_us, written.body.as_str()),
        ("correo/save", Some(200), Some(1234), audit_entry("x", None).body.as_str())
    );
    // A mail stored before writes neither itself nor its record.
    let r = s.store_incoming(with("m1", ids + 1)).await;
    assert!(matches!(r, Err(RepoError::Duplicate(_))), "{r:?}");
    assert_eq!(s.find_audit(ids + 1).await.unwrap(), None, "a record of a mail not stored");
    // A record stored before (its request left while its mail was being
    // written, and was recorded as 499) does not spoil the mail: it takes
    // the outcome the mail's writes carry.
    s.write_audit(&[audit_record(ids + 7, "correo/save", None, 499)]).await.unwrap();
    let late = s.store_incoming(with("m2", ids + 7)).await.unwrap();
    assert!(s.find_detail(late.detail_id).await.unwrap().is_some());
    assert_eq!(s.find_audit(ids + 7).await.unwrap().and_then(|e| e.status), Some(200));
    // A mail that continues a ticket.
    let mut reply = with("m3", ids + 2);
    reply.target = IncomingTarget::Existing { ticket_id: first.ticket_id, reopen: false, sla: None };
    let stored = s.store_incoming(reply).await.unwrap();
    assert_eq!(stored.ticket_id, first.ticket_id);
    assert_eq!(s.find_audit(ids + 2).await.unwrap().and_then(|e| e.status), Some(200));
    // New tickets in one batch, each with its record; and a batch that
    // fails writes none of them.
    s.write_audit(&[audit_record(ids + 8, "correo/save", None, 499)]).await.unwrap();
    let stored =
        s.store_incoming_batch(&[with("b1", ids + 3), with("b2", ids + 4), with("b5", ids + 8)]).await.unwrap();
    assert_eq!(stored.len(), 3);
    for id in [ids + 3, ids + 4, ids + 8] {
        let e = s.find_audit(id).await.unwrap().expect("written");
        assert_eq!((e.endpoint.as_str(), e.status), ("correo/save", Some(200)));
    }
    let r = s.store_incoming_batch(&[with("b3", ids + 5), with("b1", ids + 6)]).await;
    assert!(matches!(r, Err(RepoError::Duplicate(_))), "{r:?}");
    assert_eq!((s.find_audit(ids + 5).await.unwrap(), s.find_audit(ids + 6).await.unwrap()), (None, None));
}

pub async fn concurrent_duplicates_store_once<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let op = s.create_user(sample_user("ana", "ana@example.test", Some(d.id))).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.store_incoming(new_incoming(d.id, Some(op.id), "m1", "cliente@cliente.test")).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(RepoError::Duplicate(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    let loads = s.operator_loads(d.id).await.unwrap();
    assert_eq!(loads[0].open_tickets, 1, "one ticket, not sixteen");
    assert_eq!(s.pending_notices().await.unwrap(), 2);
}

pub async fn operator_loads_count_open_tickets<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let other = s.create_department(NewDepartment { name: "Ventas".into(), synology_channel: None }).await.unwrap();
    let a = s.create_user(sample_user("ana", "ana@example.test", Some(d.id))).await.unwrap();
    let b = s.create_user(sample_user("bea", "bea@example.test", Some(d.id))).await.unwrap();
    let mut no_tickets = sample_user("carla", "carla@example.test", Some(d.id));
    no_tickets.can_take_tickets = false;
    s.create_user(no_tickets).await.unwrap();
    let inactive = s.create_user(sample_user("dora", "dora@example.test", Some(d.id))).await.unwrap();
    s.set_user_status(inactive.id, UserStatus::Inactive).await.unwrap();
    s.create_user(sample_user("eva", "eva@example.test", Some(other.id))).await.unwrap();
    let t1 = s.store_incoming(new_incoming(d.id, Some(a.id), "m1", "c@cliente.test")).await.unwrap();
    s.store_incoming(new_incoming(d.id, Some(a.id), "m2", "c@cliente.test")).await.unwrap();
    s.set_ticket_status(t1.ticket_id, TicketStatus::Closed, at(12, 0, 0)).await.unwrap();
    let mut loads = s.operator_loads(d.id).await.unwrap();
    loads.sort_by_key(|l| l.user.id);
    let summary: Vec<(i64, i64, Option<Timestamp>)> =
        loads.iter().map(|l| (l.user.id, l.open_tickets, l.last_assigned_at)).collect();
    assert_eq!(summary, vec![(a.id, 1, Some(at(9, 0, 1))), (b.id, 0, None)]);
    // The same loads for users named by id, in the order asked; an unknown
    // id has none.
    let by_id = s.user_loads(&[b.id, a.id, 999_999]).await.unwrap();
    assert_eq!(by_id, vec![(0, None), (1, Some(at(9, 0, 1))), (0, None)]);
    assert_eq!(s.user_loads(&[]).await.unwrap(), vec![]);
}

/// Loads stay right through repeated and idempotent status changes, replies
/// that reopen, and tickets nobody is assigned to.
pub async fn open_ticket_counts_follow_closing_and_reopening<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let a = s.create_user(sample_user("ana", "ana@example.test", Some(d.id))).await.unwrap();
    let load = |s: Arc<S>| async move { s.operator_loads(d.id).await.unwrap()[0].open_tickets };
    let t1 = s.store_incoming(new_incoming(d.id, Some(a.id), "m1", "c@cliente.test")).await.unwrap();
    let t2 = s.store_incoming(new_incoming(d.id, Some(a.id), "m2", "c@cliente.test")).await.unwrap();
    let nobody = s.store_incoming(new_incoming(d.id, None, "m3", "c@cliente.test")).await.unwrap();
    assert_eq!(load(s.clone()).await, 2);
    s.set_ticket_status(t1.ticket_id, TicketStatus::Closed, at(12, 0, 0)).await.unwrap();
    s.set_ticket_status(t1.ticket_id, TicketStatus::Closed, at(12, 0, 1)).await.unwrap();
    s.set_ticket_status(nobody.ticket_id, TicketStatus::Closed, at(12, 0, 2)).await.unwrap();
    assert_eq!(load(s.clone()).await, 1, "closing twice counts once");
    s.set_ticket_status(t2.ticket_id, TicketStatus::Open, at(12, 0, 3)).await.unwrap();
    assert_eq!(load(s.clone()).await, 1, "opening an open ticket changes nothing");
    let reply = |ticket_id: i64, id: &str| NewIncoming {
        target: IncomingTarget::Existing { ticket_id, reopen: true, sla: None },
        detail: sample_detail(id, "c@cliente.test"),
        attachments: vec![],
        participants: vec![],
        events: vec![],
        notices: vec![],
        webhook_events: vec![],
        now: at(13, 0, 0),
        notices_due_at: at(13, 0, 0),
        audit: None,
    };
    s.store_incoming(reply(t1.ticket_id, "m4")).await.unwrap();
    assert_eq!(load(s.clone()).await, 2, "a reply reopened the closed ticket");
    s.store_incoming(reply(t1.ticket_id, "m5")).await.unwrap();
    s.store_incoming(reply(nobody.ticket_id, "m6")).await.unwrap();
    assert_eq!(load(s.clone()).await, 2, "a reply to an open ticket, or to nobody's, counts nothing");
    s.set_ticket_status(t1.ticket_id, TicketStatus::Closed, at(14, 0, 0)).await.unwrap();
    s.set_ticket_status(t2.ticket_id, TicketStatus::Closed, at(14, 0, 0)).await.unwrap();
    assert_eq!(load(s.clone()).await, 0);
    s.set_ticket_status(t2.ticket_id, TicketStatus::Open, at(15, 0, 0)).await.unwrap();
    assert_eq!(load(s.clone()).await, 1);
}

// Working tickets (`TicketWorkRepository`).

/// A new ticket's mail with this subject and body, stored at `now`.
fn mail(department_id: i64, assignee_id: Option<i64>, key: &str, text: (&str, &str), now: Timestamp) -> NewIncoming {
    let mut n = new_incoming(department_id, assignee_id, key, "cliente@cliente.test");
    if let IncomingTarget::New(t) = &mut n.target {
        t.subject = text.0.into();
    }
    (n.detail.subject, n.detail.body) = (text.0.into(), text.1.into());
    (n.now, n.notices_due_at) = (now, now);
    n
}

/// A later message of the ticket, with this subject and body.
fn follow_up(ticket_id: i64, key: &str, text: (&str, &str), now: Timestamp) -> NewIncoming {
    let mut detail = sample_detail(key, "cliente@cliente.test");
    (detail.subject, detail.body) = (text.0.into(), text.1.into());
    NewIncoming {
        target: IncomingTarget::Existing { ticket_id, reopen: false, sla: None },
        detail,
        attachments: vec![],
        participants: vec![],
        events: vec![],
        notices: vec![],
        webhook_events: vec![],
        now,
        notices_due_at: now,
        audit: None,
    }
}

/// Changes the ticket's fields as `f` says, from what it holds now (no
/// events, no notices).
async fn change<S: Store>(s: &S, ticket_id: i64, now: Timestamp, f: impl FnOnce(&mut TicketFields)) -> Ticket {
    let expected = TicketFields::of(&s.find_ticket(ticket_id).await.unwrap().unwrap());
    let mut new = expected;
    f(&mut new);
    let update = TicketUpdate {
        ticket_id,
        expected,
        new,
        events: vec![],
        notices: vec![],
        webhook_events: vec![],
        now,
        sla: None,
    };
    s.update_ticket(update).await.unwrap()
}

fn ids(tickets: &[Ticket]) -> Vec<i64> {
    tickets.iter().map(|t| t.id).collect()
}

/// The ids the list gives for `q` (50 at most unless `q` says).
async fn listed<S: Store>(s: &S, q: TicketQuery) -> Vec<i64> {
    let q = TicketQuery { limit: if q.limit == 0 { 50 } else { q.limit }, ..q };
    ids(&s.list_tickets(q).await.unwrap())
}

/// The ids the list gives for a search of `text`.
async fn found<S: Store>(s: &S, text: &str) -> Vec<i64> {
    listed(s, TicketQuery { text: Some(text.into()), ..Default::default() }).await
}

/// (user, open tickets, last assignment) of the department's operators.
async fn loads<S: Store>(s: &S, department_id: i64) -> Vec<(i64, i64, Option<Timestamp>)> {
    let mut loads: Vec<_> = s
        .operator_loads(department_id)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.user.id, l.open_tickets, l.last_assigned_at))
        .collect();
    loads.sort();
    loads
}

pub async fn ticket_list_filters_on_every_field<S: Store>(s: Arc<S>) {
    let d1 = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let d2 = s.create_department(NewDepartment { name: "Ventas".into(), synology_channel: None }).await.unwrap().id;
    let a = s.create_user(sample_user("ana", "ana@example.test", Some(d1))).await.unwrap().id;
    let b = s.create_user(sample_user("bea", "bea@example.test", Some(d2))).await.unwrap().id;
    let text = ("Consulta", "Texto");
    let t1 = s.store_incoming(mail(d1, Some(a), "m1", text, at(8, 0, 0))).await.unwrap().ticket_id;
    let t2 = s.store_incoming(mail(d1, None, "m2", text, at(9, 0, 0))).await.unwrap().ticket_id;
    let t3 = s.store_incoming(mail(d2, Some(b), "m3", text, at(10, 0, 0))).await.unwrap().ticket_id;
    let t4 = s.store_incoming(mail(d1, Some(a), "m4", text, at(11, 0, 0))).await.unwrap().ticket_id;
    change(&*s, t2, at(12, 0, 0), |f| (f.status, f.priority) = (TicketStatus::Pending, Priority::High)).await;
    change(&*s, t3, at(12, 0, 0), |f| f.status = TicketStatus::Closed).await;
    change(&*s, t4, at(12, 0, 0), |f| f.priority = Priority::Urgent).await;
    let q = TicketQuery::default;

    assert_eq!(listed(&*s, q()).await, vec![t4, t3, t2, t1], "newest first");
    let status = |st| TicketQuery { status: Some(st), ..q() };
    assert_eq!(listed(&*s, status(TicketStatus::Open)).await, vec![t4, t1]);
    assert_eq!(listed(&*s, status(TicketStatus::Pending)).await, vec![t2]);
    assert_eq!(listed(&*s, status(TicketStatus::Closed)).await, vec![t3]);
    assert_eq!(listed(&*s, TicketQuery { department_id: Some(d1), ..q() }).await, vec![t4, t2, t1]);
    assert_eq!(listed(&*s, TicketQuery { department_id: Some(d2), ..q() }).await, vec![t3]);
    assert_eq!(listed(&*s, TicketQuery { visible_department: Some(d2), ..q() }).await, vec![t3]);
    assert_eq!(
        listed(&*s, TicketQuery { department_id: Some(d1), visible_department: Some(d2), ..q() }).await,
        Vec::<i64>::new(),
        "a department the operator may not see shows nothing"
    );
    let assignee = |who| TicketQuery { assignee: who, ..q() };
    assert_eq!(listed(&*s, assignee(AssigneeFilter::Anyone)).await, vec![t4, t3, t2, t1]);
    assert_eq!(listed(&*s, assignee(AssigneeFilter::Nobody)).await, vec![t2]);
    assert_eq!(listed(&*s, assignee(AssigneeFilter::User(a))).await, vec![t4, t1]);
    assert_eq!(listed(&*s, assignee(AssigneeFilter::User(b))).await, vec![t3]);
    assert_eq!(listed(&*s, assignee(AssigneeFilter::User(b + 1000))).await, Vec::<i64>::new());
    let priority = |p| TicketQuery { priority: Some(p), ..q() };
    assert_eq!(listed(&*s, priority(Priority::Normal)).await, vec![t3, t1]);
    assert_eq!(listed(&*s, priority(Priority::High)).await, vec![t2]);
    assert_eq!(listed(&*s, priority(Priority::Urgent)).await, vec![t4]);
    assert_eq!(listed(&*s, priority(Priority::Low)).await, Vec::<i64>::new());
    // Creation times, both ends included.
    assert_eq!(listed(&*s, TicketQuery { from: Some(at(9, 0, 0)), ..q() }).await, vec![t4, t3, t2]);
    assert_eq!(listed(&*s, TicketQuery { until: Some(at(10, 0, 0)), ..q() }).await, vec![t3, t2, t1]);
    let window = TicketQuery { from: Some(at(9, 0, 0)), until: Some(at(10, 0, 0)), ..q() };
    assert_eq!(listed(&*s, window).await, vec![t3, t2]);
    assert_eq!(listed(&*s, TicketQuery { from: Some(at(11, 0, 1)), ..q() }).await, Vec::<i64>::new());
    let all_of = TicketQuery {
        status: Some(TicketStatus::Open),
        department_id: Some(d1),
        visible_department: Some(d1),
        assignee: AssigneeFilter::User(a),
        priority: Some(Priority::Normal),
        from: Some(at(8, 0, 0)),
        until: Some(at(11, 0, 0)),
        ..q()
    };
    assert_eq!(listed(&*s, all_of).await, vec![t1], "filters combine");
    assert_eq!(listed(&*s, TicketQuery { limit: 2, ..q() }).await, vec![t4, t3]);
    assert_eq!(ids(&s.list_tickets(TicketQuery { limit: 0, ..q() }).await.unwrap()), Vec::<i64>::new());
    let listed_t2 = s.list_tickets(TicketQuery { assignee: AssigneeFilter::Nobody, limit: 1, ..q() }).await.unwrap();
    assert_eq!(listed_t2, vec![s.find_ticket(t2).await.unwrap().unwrap()], "whole tickets");

    // Counts: what the list finds, capped at the limit, cursors ignored.
    let count = |query: TicketQuery| {
        let s = s.clone();
        let query = TicketQuery { limit: if query.limit == 0 { 50 } else { query.limit }, ..query };
        async move { s.count_tickets(query).await.unwrap() }
    };
    assert_eq!(count(q()).await, 4);
    assert_eq!(count(status(TicketStatus::Open)).await, 2);
    assert_eq!(count(assignee(AssigneeFilter::Nobody)).await, 1);
    assert_eq!(count(TicketQuery { visible_department: Some(d2), ..q() }).await, 1);
    assert_eq!(count(TicketQuery { limit: 3, ..q() }).await, 3, "capped");
    assert_eq!(count(TicketQuery { limit: 1, ..q() }).await, 1);
    assert_eq!(count(TicketQuery { before_id: Some(t2), ..q() }).await, 4, "the cursor is not a filter of a count");
    assert_eq!(count(TicketQuery { text: Some("consulta".into()), ..q() }).await, 4);
    assert_eq!(count(TicketQuery { text: Some("inexistente".into()), ..q() }).await, 0);
}

pub async fn ticket_list_pages_by_keyset<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let mut created = Vec::new();
    for i in 0..7 {
        let key = format!("m{i}");
        created
            .push(s.store_incoming(mail(d, None, &key, ("Consulta", "Texto"), at(9, i, 0))).await.unwrap().ticket_id);
    }
    let page = |before_id| TicketQuery { before_id, department_id: Some(d), limit: 3, ..Default::default() };
    let mut seen: Vec<i64> = Vec::new();
    let mut cursor = None;
    for round in 0.. {
        let got = ids(&s.list_tickets(page(cursor)).await.unwrap());
        assert!(got.len() <= 3);
        if got.is_empty() {
            break;
        }
        seen.extend(&got);
        cursor = got.last().copied();
        // New tickets arrive between pages: they are newer than the cursor,
        // so the next pages neither repeat nor skip anything.
        let key = format!("nuevo{round}");
        s.store_incoming(mail(d, None, &key, ("Otra", "Texto"), at(10, round, 0))).await.unwrap();
    }
    created.reverse();
    assert_eq!(seen, created, "every ticket once, newest first");
    let newest = ids(&s.list_tickets(page(None)).await.unwrap());
    assert!(newest.iter().all(|id| !created.contains(id)), "the arrivals head the first page");
    assert_eq!(listed(&*s, TicketQuery { before_id: Some(created[6]), ..Default::default() }).await, Vec::<i64>::new());
}

/// Latest activity first: a follow-up moves its ticket to the head; ties
/// on the time by id, descending; the keyset `(updated_at, id)` neither
/// repeats nor skips; the other filters still apply.
pub async fn ticket_list_orders_by_latest_activity<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let other = s.create_department(NewDepartment { name: "Ventas".into(), synology_channel: None }).await.unwrap().id;
    let mut t = Vec::new();
    for i in 0..5 {
        let key = format!("a{i}");
        // Two pairs share their time: ties go by id.
        let when = at(9, i / 2, 0);
        t.push(s.store_incoming(mail(d, None, &key, ("Consulta", "Texto"), when)).await.unwrap().ticket_id);
    }
    let elsewhere = s.store_incoming(mail(other, None, "x", ("Otro", "Texto"), at(11, 0, 0))).await.unwrap().ticket_id;
    s.store_incoming(follow_up(t[1], "a1b", ("RE: Consulta", "Más"), at(10, 0, 0))).await.unwrap();
    let all = s.activity_marks(None).await.unwrap();
    let one = s.activity_marks(Some(t[1])).await.unwrap();
    let newest = s.details_of(t[1]).await.unwrap().iter().map(|d| d.id).max().unwrap();
    assert_eq!((one.ticket, one.detail, one.event), (t[1], newest, 0), "one ticket's");
    assert_eq!((all.ticket, all.detail), (elsewhere, newest), "any department's (the follow-up is the newest)");
    assert_eq!(s.activity_marks(Some(elsewhere + 1000)).await.unwrap(), ActivityMarks::default());
    let q = TicketQuery { department_id: Some(d), order: TicketOrder::LatestActivity, ..Default::default() };
    let expected = vec![t[1], t[4], t[3], t[2], t[0]];
    assert_eq!(listed(&*s, q.clone()).await, expected, "the answered ticket first, ties by id descending");
    for size in 1..=3 {
        let (mut seen, mut cursor) = (Vec::new(), None);
        loop {
            let page = s.list_tickets(TicketQuery { before_activity: cursor, limit: size, ..q.clone() }).await.unwrap();
            let Some(last) = page.last() else { break };
            cursor = Some((last.updated_at, last.id));
            seen.extend(ids(&page));
        }
        assert_eq!(seen, expected, "pages of {size}");
    }
    let open = TicketQuery { status: Some(TicketStatus::Closed), ..q.clone() };
    assert_eq!(listed(&*s, open).await, Vec::<i64>::new(), "the state still filters");

    // A customer's tickets: those their address takes part in.
    let mut theirs = mail(d, None, "b1", ("Suya", "Texto"), at(12, 0, 0));
    if let IncomingTarget::New(t) = &mut theirs.target {
        t.requester = "Otra <otra@cliente.test>".into();
    }
    theirs.participants = vec!["otra@cliente.test".into()];
    let hers = s.store_incoming(theirs).await.unwrap().ticket_id;
    let of = |address: &str| TicketQuery { participant: Address::parse_bare(address), ..q.clone() };
    assert_eq!(listed(&*s, of("otra@cliente.test")).await, vec![hers]);
    assert_eq!(listed(&*s, of("OTRA@cliente.test")).await, vec![hers], "whatever the case");
    assert_eq!(listed(&*s, of("copia@cliente.test")).await, expected, "a participant in copy too");
    assert_eq!(listed(&*s, of("nadie@cliente.test")).await, Vec::<i64>::new());
}

pub async fn ticket_list_searches_the_words_of_each_message<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let body = "El CAMION rojo llegó cerca del almacén; escriba a soporte@empresa.com";
    let t1 = s.store_incoming(mail(d, None, "m1", ("Entrega pendiente", body), at(9, 0, 0))).await.unwrap().ticket_id;
    let printer = ("Impresora", "La impresora no imprime nada");
    let t2 = s.store_incoming(mail(d, None, "m2", printer, at(9, 1, 0))).await.unwrap().ticket_id;
    s.store_incoming(follow_up(t2, "m2b", ("RE: Ayuda", "El TÓNER está agotado"), at(9, 2, 0))).await.unwrap();
    let truck = ("Camión", "Otro camión azul");
    let t3 = s.store_incoming(mail(d, None, "m3", truck, at(9, 3, 0))).await.unwrap().ticket_id;
    s.store_incoming(follow_up(t3, "m3b", ("RE: Camión", "El camión sigue sin llegar"), at(9, 4, 0))).await.unwrap();
    s.store_incoming(mail(d, None, "m4", ("Factura", "Factura pagada"), at(9, 5, 0))).await.unwrap();

    assert_eq!(found(&*s, "camión").await, vec![t3, t1], "accents and case do not matter; each ticket once");
    assert_eq!(found(&*s, "CAMION").await, vec![t3, t1]);
    assert_eq!(found(&*s, "Almacen").await, vec![t1]);
    assert_eq!(found(&*s, "toner").await, vec![t2], "a word of a later message");
    assert_eq!(found(&*s, "tóner AGOTADO").await, vec![t2]);
    assert_eq!(found(&*s, "camión rojo").await, vec![t1], "every word must appear");
    assert_eq!(found(&*s, "rojo camión").await, vec![t1]);
    assert_eq!(found(&*s, "camión verde").await, Vec::<i64>::new());
    assert_eq!(found(&*s, "impresora tóner").await, vec![t2], "the words of a ticket's messages together");
    assert_eq!(found(&*s, "factura tóner").await, Vec::<i64>::new(), "never across tickets");
    assert_eq!(found(&*s, "camio").await, Vec::<i64>::new(), "whole words");
    assert_eq!(found(&*s, "empresa.com").await, vec![t1], "the words of an address");
    assert_eq!(found(&*s, "el").await, Vec::<i64>::new(), "no word of three letters: nothing");
    assert_eq!(found(&*s, "").await, Vec::<i64>::new());
    let with_cursor = TicketQuery { text: Some("camion".into()), before_id: Some(t3), ..Default::default() };
    assert_eq!(listed(&*s, with_cursor).await, vec![t1]);
    let with_status =
        TicketQuery { text: Some("camion".into()), status: Some(TicketStatus::Closed), ..Default::default() };
    assert_eq!(listed(&*s, with_status).await, Vec::<i64>::new());

    // What the user types is only ever words: quotes, operators and
    // parentheses neither fail the query nor change its meaning.
    assert_eq!(found(&*s, r#""Camión" -ROJO* (llegó) ^cerca: {almacén}"#).await, vec![t1]);
    assert_eq!(found(&*s, r#"camion"rojo"#).await, vec![t1]);
    assert_eq!(found(&*s, "+camión -rojo").await, vec![t1], "a minus excludes nothing");
    for hostile in [
        "\"",
        "\"\"",
        "*",
        "-",
        "NEAR",
        "NEAR(camión rojo)",
        "camión NOT rojo",
        "camión AND",
        "asunto:camión",
        "'; DROP TABLE ticket; --",
        "(((",
        "a* OR b*",
        "\\",
        "%_%",
        "@>~<",
    ] {
        let r = s.list_tickets(TicketQuery { text: Some(hostile.into()), limit: 50, ..Default::default() }).await;
        assert_eq!(r.map(|t| ids(&t)).ok(), Some(vec![]), "{hostile:?}");
    }
    assert_eq!(listed(&*s, TicketQuery::default()).await.len(), 4);
}

pub async fn replies_are_stored_with_their_author_notices_and_participants<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let op = s.create_user(sample_user("ana", "ana@example.test", Some(d.id))).await.unwrap();
    let first = s.store_incoming(new_incoming(d.id, Some(op.id), "m1", "cliente@cliente.test")).await.unwrap();
    let mut detail = sample_detail("r1", "soporte@helpdesk.test");
    detail.to = "cliente@cliente.test".into();
    detail.cc = Some("Jefe@Cliente.test".into());
    (detail.subject, detail.body) = ("RE: No funciona el correo".into(), "Reinicie el equipo, por favor".into());
    (detail.direction, detail.author_id) = (Direction::Outgoing, Some(op.id));
    let reply = NewReply {
        ticket_id: first.ticket_id,
        detail: detail.clone(),
        participants: vec![" Jefe@Cliente.test ".into(), "cliente@cliente.test".into()],
        notices: vec![NewNotice { kind: NoticeKind::Reply, recipient: "cliente@cliente.test".into() }],
        webhook_events: vec![],
        now: at(12, 0, 0),
        notices_due_at: at(12, 0, 30),
        sla: None,
    };
    let stored = s.store_reply(reply.clone()).await.unwrap();
    let d2 = s.find_detail(stored.detail_id).await.unwrap().unwrap();
    assert_eq!((d2.ticket_id, d2.direction, d2.author_id), (first.ticket_id, Direction::Outgoing, Some(op.id)));
    assert_eq!((d2.opened_ticket, d2.created_at, d2.body.as_str()), (false, at(12, 0, 0), detail.body.as_str()));
    assert_eq!((d2.cc.as_deref(), d2.headers.clone()), (Some("Jefe@Cliente.test"), detail.headers.clone()));
    let thread: Vec<i64> = s.details_of(first.ticket_id).await.unwrap().iter().map(|d| d.id).collect();
    assert_eq!(thread, vec![first.detail_id, stored.detail_id]);
    let notices = s.notices_of_detail(stored.detail_id).await.unwrap();
    assert_eq!(notices.iter().map(|n| n.id).collect::<Vec<_>>(), stored.notice_ids);
    assert_eq!(
        (notices[0].kind, notices[0].recipient.as_str(), notices[0].status, notices[0].ticket_id),
        (NoticeKind::Reply, "cliente@cliente.test", NoticeStatus::Pending, first.ticket_id)
    );
    assert_eq!((notices[0].next_attempt_at, notices[0].created_at), (at(12, 0, 30), at(12, 0, 0)));
    assert_eq!(
        s.participants_of(first.ticket_id).await.unwrap(),
        vec!["cliente@cliente.test", "copia@cliente.test", "jefe@cliente.test"]
    );
    let t = s.find_ticket(first.ticket_id).await.unwrap().unwrap();
    assert_eq!((t.updated_at, t.status, t.assignee_id), (at(12, 0, 0), TicketStatus::Open, Some(op.id)));
    assert_eq!(found(&*s, "reinicie").await, vec![first.ticket_id], "replies are searched too");

    let mut note = sample_detail("n1", "ana@example.test");
    (note.direction, note.author_id, note.body) = (Direction::Note, Some(op.id), "Nota interna".into());
    let note = NewReply { detail: note, participants: vec![], notices: vec![], now: at(12, 5, 0), ..reply.clone() };
    let stored_note = s.store_reply(note).await.unwrap();
    assert!(stored_note.notice_ids.is_empty());
    assert_eq!(s.find_detail(stored_note.detail_id).await.unwrap().unwrap().direction, Direction::Note);

    let r = s.store_reply(NewReply { now: at(13, 0, 0), ..reply.clone() }).await;
    assert_duplicate(r, "the same reply twice");
    let gone = NewReply { ticket_id: first.ticket_id + 1000, detail: sample_detail("r2", "x@x.test"), ..reply.clone() };
    let r = s.store_reply(gone).await;
    assert!(matches!(r, Err(RepoError::NotFound)), "{r:?}");
    assert_eq!(s.find_detail_by_dedupe(&sample_detail("r2", "x").dedupe_key).await.unwrap(), None);
    assert_eq!(s.details_of(first.ticket_id).await.unwrap().len(), 3, "nothing more written");
    assert_eq!(s.find_ticket(first.ticket_id).await.unwrap().unwrap().updated_at, at(12, 5, 0));
    assert_eq!(s.pending_notices().await.unwrap(), 3);
}

pub async fn ticket_updates_move_loads_and_write_events_and_notices<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let other = s.create_department(NewDepartment { name: "Ventas".into(), synology_channel: None }).await.unwrap().id;
    let a = s.create_user(sample_user("ana", "ana@example.test", Some(d))).await.unwrap().id;
    let b = s.create_user(sample_user("bea", "bea@example.test", Some(d))).await.unwrap().id;
    let first = s.store_incoming(new_incoming(d, Some(a), "m1", "cliente@cliente.test")).await.unwrap();
    let t = first.ticket_id;
    let latest = s.store_incoming(follow_up(t, "m2", ("RE", "Sigue igual"), at(10, 0, 0))).await.unwrap().detail_id;
    assert_eq!(loads(&*s, d).await, vec![(a, 1, Some(at(9, 0, 1))), (b, 0, None)]);

    let before = s.find_ticket(t).await.unwrap().unwrap();
    let expected = TicketFields::of(&before);
    let new =
        TicketFields { status: TicketStatus::Pending, assignee_id: Some(b), priority: Priority::High, ..expected };
    let event = |kind, before: &str, after: &str| NewTicketEvent {
        actor_id: Some(a),
        kind,
        before: Some(before.into()),
        after: Some(after.into()),
    };
    let events = vec![
        event(EventKind::Assignee, &a.to_string(), &b.to_string()),
        event(EventKind::Status, "abierto", "pendiente"),
        event(EventKind::Priority, "normal", "alta"),
    ];
    let notices = vec![NewNotice { kind: NoticeKind::AssignedMail, recipient: "bea@example.test".into() }];
    let update = TicketUpdate {
        ticket_id: t,
        expected,
        new,
        events: events.clone(),
        notices,
        webhook_events: vec![],
        now: at(12, 0, 0),
        sla: None,
    };
    let updated = s.update_ticket(update).await.unwrap();
    let expected_ticket = Ticket {
        status: TicketStatus::Pending,
        assignee_id: Some(b),
        priority: Priority::High,
        updated_at: at(12, 0, 0),
        ..before.clone()
    };
    assert_eq!(updated, expected_ticket);
    assert_eq!(s.find_ticket(t).await.unwrap(), Some(expected_ticket));
    assert_eq!(
        loads(&*s, d).await,
        vec![(a, 0, Some(at(9, 0, 1))), (b, 1, Some(at(12, 0, 0)))],
        "pending still counts, now for the new assignee"
    );
    let written = s.events_of(t).await.unwrap();
    assert_eq!(written.len(), 3);
    for (w, e) in written.iter().zip(&events) {
        assert_eq!((w.ticket_id, w.actor_id, w.kind, w.at), (t, Some(a), e.kind, at(12, 0, 0)));
        assert_eq!((&w.before, &w.after), (&e.before, &e.after));
    }
    assert!(written.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    let on_latest = s.notices_of_detail(latest).await.unwrap();
    assert_eq!(on_latest.len(), 1, "the notices go with the latest message");
    assert_eq!(
        (on_latest[0].kind, on_latest[0].recipient.as_str(), on_latest[0].ticket_id, on_latest[0].next_attempt_at),
        (NoticeKind::AssignedMail, "bea@example.test", t, at(12, 0, 0))
    );
    assert_eq!(s.notices_of_detail(first.detail_id).await.unwrap().len(), 2);

    // Closing: closed_at set, the count leaves the assignee.
    let closed = change(&*s, t, at(13, 0, 0), |f| f.status = TicketStatus::Closed).await;
    assert_eq!(
        (closed.status, closed.closed_at, closed.updated_at),
        (TicketStatus::Closed, Some(at(13, 0, 0)), at(13, 0, 0))
    );
    assert_eq!(loads(&*s, d).await, vec![(a, 0, Some(at(9, 0, 1))), (b, 0, Some(at(12, 0, 0)))]);
    // Staying closed keeps closed_at.
    let still = change(&*s, t, at(14, 0, 0), |f| f.priority = Priority::Urgent).await;
    assert_eq!((still.closed_at, still.priority), (Some(at(13, 0, 0)), Priority::Urgent));
    // A closed ticket given to someone: assigned now, counted nowhere.
    change(&*s, t, at(15, 0, 0), |f| f.assignee_id = Some(a)).await;
    assert_eq!(loads(&*s, d).await, vec![(a, 0, Some(at(15, 0, 0))), (b, 0, Some(at(12, 0, 0)))]);
    // Reopened: closed_at cleared, counted again for the same assignee.
    let reopened = change(&*s, t, at(16, 0, 0), |f| f.status = TicketStatus::Open).await;
    assert_eq!((reopened.status, reopened.closed_at), (TicketStatus::Open, None));
    assert_eq!(loads(&*s, d).await, vec![(a, 1, Some(at(15, 0, 0))), (b, 0, Some(at(12, 0, 0)))]);
    // The same person, still counting: nothing moves.
    change(&*s, t, at(16, 30, 0), |f| (f.status, f.priority) = (TicketStatus::Pending, Priority::Low)).await;
    assert_eq!(loads(&*s, d).await, vec![(a, 1, Some(at(15, 0, 0))), (b, 0, Some(at(12, 0, 0)))]);
    // Nobody's: the count leaves.
    change(&*s, t, at(17, 0, 0), |f| f.assignee_id = None).await;
    assert_eq!(loads(&*s, d).await, vec![(a, 0, Some(at(15, 0, 0))), (b, 0, Some(at(12, 0, 0)))]);
    // Another department, and closed while nobody's: no count anywhere.
    let moved = change(&*s, t, at(18, 0, 0), |f| (f.department_id, f.status) = (other, TicketStatus::Closed)).await;
    assert_eq!((moved.department_id, moved.closed_at), (other, Some(at(18, 0, 0))));
    assert_eq!(listed(&*s, TicketQuery { department_id: Some(other), ..Default::default() }).await, vec![t]);
    assert_eq!(loads(&*s, d).await, vec![(a, 0, Some(at(15, 0, 0))), (b, 0, Some(at(12, 0, 0)))]);
    // Closed, given to b: b's last assignment only.
    change(&*s, t, at(19, 0, 0), |f| f.assignee_id = Some(b)).await;
    // Reopened with a new assignee at once: counted for her.
    change(&*s, t, at(20, 0, 0), |f| (f.status, f.assignee_id) = (TicketStatus::Open, Some(a))).await;
    assert_eq!(loads(&*s, d).await, vec![(a, 1, Some(at(20, 0, 0))), (b, 0, Some(at(19, 0, 0)))]);
    assert_eq!(s.events_of(t).await.unwrap().len(), 3, "events only as given");
    assert_eq!(s.events_of(t + 1000).await.unwrap(), vec![]);
}

pub async fn stale_ticket_updates_conflict_and_write_nothing<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let a = s.create_user(sample_user("ana", "ana@example.test", Some(d))).await.unwrap().id;
    let b = s.create_user(sample_user("bea", "bea@example.test", Some(d))).await.unwrap().id;
    let first = s.store_incoming(new_incoming(d, Some(a), "m1", "cliente@cliente.test")).await.unwrap();
    let t = first.ticket_id;
    let read = s.find_ticket(t).await.unwrap().unwrap();
    let stale = TicketFields::of(&read);
    let to_b = TicketFields { assignee_id: Some(b), ..stale };
    let event = NewTicketEvent {
        actor_id: Some(a),
        kind: EventKind::Assignee,
        before: Some(a.to_string()),
        after: Some(b.to_string()),
    };
    let notices = vec![NewNotice { kind: NoticeKind::AssignedChat, recipient: "77".into() }];
    let update = |expected: TicketFields, new: TicketFields, now: Timestamp| TicketUpdate {
        ticket_id: t,
        expected,
        new,
        events: vec![event.clone()],
        notices: notices.clone(),
        webhook_events: vec![],
        now,
        sla: None,
    };
    let won = s.update_ticket(update(stale, to_b, at(12, 0, 0))).await.unwrap();
    assert_eq!(won.assignee_id, Some(b));
    let state = |s: Arc<S>| async move {
        (
            s.find_ticket(t).await.unwrap(),
            s.events_of(t).await.unwrap().len(),
            s.pending_notices().await.unwrap(),
            loads(&*s, d).await,
        )
    };
    let settled = state(s.clone()).await;
    assert_eq!((settled.1, settled.2), (1, 3));
    assert_eq!(settled.3, vec![(a, 0, Some(at(9, 0, 1))), (b, 1, Some(at(12, 0, 0)))]);

    // The same change from the same (now stale) reading loses.
    let to_self = TicketFields { assignee_id: Some(a), ..stale };
    let r = s.update_ticket(update(stale, to_self, at(12, 0, 1))).await;
    assert!(matches!(r, Err(RepoError::Conflict)), "{r:?}");
    assert_eq!(state(s.clone()).await, settled, "nothing written");
    // Any one field that differs is a conflict; an assignee of nobody too.
    let current = TicketFields::of(&won);
    for wrong in [
        TicketFields { status: TicketStatus::Pending, ..current },
        TicketFields { priority: Priority::High, ..current },
        TicketFields { department_id: d + 1000, ..current },
        TicketFields { assignee_id: None, ..current },
        TicketFields { assignee_id: Some(a), ..current },
    ] {
        let r = s.update_ticket(update(wrong, TicketFields { priority: Priority::Low, ..current }, at(12, 1, 0))).await;
        assert!(matches!(r, Err(RepoError::Conflict)), "{wrong:?}: {r:?}");
        assert_eq!(state(s.clone()).await, settled, "nothing written for {wrong:?}");
    }
    // Nobody's ticket, expected as nobody's: applies.
    let nobody = TicketFields { assignee_id: None, ..current };
    s.update_ticket(TicketUpdate { events: vec![], notices: vec![], ..update(current, nobody, at(12, 2, 0)) })
        .await
        .unwrap();
    let low = TicketFields { priority: Priority::Low, ..nobody };
    let done = s.update_ticket(TicketUpdate { events: vec![], notices: vec![], ..update(nobody, low, at(12, 3, 0)) });
    assert_eq!(done.await.unwrap().priority, Priority::Low);
    let r = s.update_ticket(update(low, TicketFields { assignee_id: Some(b), ..low }, at(12, 4, 0))).await;
    assert!(r.is_ok(), "{r:?}");
    // An unknown ticket, an unknown department.
    let current = TicketFields::of(&s.find_ticket(t).await.unwrap().unwrap());
    let settled = state(s.clone()).await;
    let r = s.update_ticket(TicketUpdate { ticket_id: t + 1000, ..update(current, current, at(13, 0, 0)) }).await;
    assert!(matches!(r, Err(RepoError::NotFound)), "{r:?}");
    let nowhere = TicketFields { department_id: d + 1000, ..current };
    let r = s.update_ticket(update(current, nowhere, at(13, 0, 0))).await;
    assert!(matches!(r, Err(RepoError::MissingReference(_))), "{r:?}");
    assert_eq!(state(s.clone()).await, settled, "nothing written");
}

pub async fn a_threads_attachments_and_participants<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let first = s.store_incoming(new_incoming(d, None, "m1", "cliente@cliente.test")).await.unwrap();
    let t = first.ticket_id;
    let mut second = follow_up(t, "m2", ("RE", "Adjunto captura"), at(10, 0, 0));
    second.attachments = vec![NewAttachment {
        name: "captura.png".into(),
        route: "adjuntos/captura.png".into(),
        mime_type: "image/png".into(),
    }];
    second.participants = vec!["Zeta@Cliente.test".into(), "alfa@cliente.test".into()];
    let second = s.store_incoming(second).await.unwrap();
    s.store_incoming(new_incoming(d, None, "m3", "otro@cliente.test")).await.unwrap();
    let mut expected = s.attachments_of(first.detail_id).await.unwrap();
    expected.extend(s.attachments_of(second.detail_id).await.unwrap());
    assert_eq!(expected.len(), 2);
    let all = s.ticket_attachments(t).await.unwrap();
    assert_eq!(all, expected, "every message's, by id");
    assert_eq!((all[1].name.as_str(), all[1].detail_id), ("captura.png", second.detail_id));
    assert_eq!(s.find_attachment(all[1].id).await.unwrap(), Some(all[1].clone()));
    assert_eq!(s.find_attachment(all[1].id + 1000).await.unwrap(), None);
    assert_eq!(s.ticket_attachments(t + 1000).await.unwrap(), vec![]);
    assert_eq!(
        s.participants_of(t).await.unwrap(),
        vec!["alfa@cliente.test", "cliente@cliente.test", "copia@cliente.test", "zeta@cliente.test"]
    );
    assert_eq!(s.participants_of(t + 1000).await.unwrap(), Vec::<String>::new());
}

pub async fn outbox_leases_attempts_and_outcomes<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let stored = s.store_incoming(new_incoming(d.id, None, "m1", "c@cliente.test")).await.unwrap();
    let (n1, n2) = (stored.notice_ids[0], stored.notice_ids[1]);
    let now = at(9, 0, 5);
    let lease = at(9, 1, 5);
    let claimed = s.claim_due_notices(now, 10, lease).await.unwrap();
    assert_eq!(claimed.iter().map(|n| n.id).collect::<Vec<_>>(), vec![n1, n2]);
    assert_eq!(claimed[0].leased_until, Some(lease));
    assert!(s.claim_due_notices(now, 10, lease).await.unwrap().is_empty(), "leased");
    assert!(s.claim_notices(vec![n1], now, lease).await.unwrap().is_empty(), "leased");
    let sent = s.record_attempt(n1, at(9, 0, 6), AttemptOutcome::Sent { result: "<id@x>".into() }).await.unwrap();
    assert_eq!(
        (sent.status, sent.attempts, sent.sent_at, sent.leased_until),
        (NoticeStatus::Sent, 1, Some(at(9, 0, 6)), None)
    );
    assert_eq!(sent.result.as_deref(), Some("<id@x>"));
    let retry = s
        .record_attempt(n2, at(9, 0, 6), AttemptOutcome::Retry { error: "500".into(), next_attempt_at: at(9, 5, 0) })
        .await
        .unwrap();
    assert_eq!((retry.status, retry.attempts, retry.next_attempt_at), (NoticeStatus::Pending, 1, at(9, 5, 0)));
    assert_eq!(retry.last_error.as_deref(), Some("500"));
    assert!(s.claim_due_notices(at(9, 4, 0), 10, at(9, 9, 0)).await.unwrap().is_empty(), "not due yet");
    // Claimable by id even before it is due (the inline attempt).
    assert_eq!(s.claim_notices(vec![n1, n2], at(9, 4, 0), at(9, 4, 30)).await.unwrap().len(), 1);
    // A lease that runs out (a worker died) makes the notice claimable again.
    let again = s.claim_due_notices(at(9, 5, 0), 10, at(9, 6, 0)).await.unwrap();
    assert_eq!(again.iter().map(|n| n.id).collect::<Vec<_>>(), vec![n2]);
    // Given up, with its follow-up written in the same transaction.
    let event = NewTicketEvent {
        actor_id: None,
        kind: EventKind::DeliveryFailed,
        before: Some("c@cliente.test".into()),
        after: Some("rechazado".into()),
    };
    let follow_up = FailureFollowUp {
        events: vec![event],
        notices: vec![NewNotice { kind: NoticeKind::DeliveryFailedMail, recipient: "ana@example.test".into() }],
        webhook_events: vec![],
    };
    let failed = s
        .record_attempt(n2, at(9, 5, 1), AttemptOutcome::Failed { error: "rechazado".into(), follow_up })
        .await
        .unwrap();
    assert_eq!((failed.status, failed.attempts), (NoticeStatus::Failed, 2));
    let events = s.events_of(stored.ticket_id).await.unwrap();
    assert_eq!(
        events.iter().map(|e| (e.kind, e.before.as_deref(), e.after.as_deref(), e.at)).collect::<Vec<_>>(),
        vec![(EventKind::DeliveryFailed, Some("c@cliente.test"), Some("rechazado"), at(9, 5, 1))]
    );
    let on_detail = s.notices_of_detail(stored.detail_id).await.unwrap();
    let told = on_detail.iter().find(|n| n.kind == NoticeKind::DeliveryFailedMail).expect("the assignee's notice");
    assert_eq!(
        (told.status, told.recipient.as_str(), told.next_attempt_at),
        (NoticeStatus::Pending, "ana@example.test", at(9, 5, 1))
    );
    let of_ticket = s.notices_of_ticket(stored.ticket_id).await.unwrap();
    assert_eq!(of_ticket.iter().map(|n| n.id).collect::<Vec<_>>(), vec![n1, n2, told.id], "every notice, by id");
    assert_eq!(s.notices_of_ticket(stored.ticket_id + 1000).await.unwrap(), vec![]);
    s.record_attempt(told.id, at(9, 5, 2), AttemptOutcome::Sent { result: "x".into() }).await.unwrap();
    assert!(s.claim_due_notices(at(10, 0, 0), 10, at(10, 1, 0)).await.unwrap().is_empty());
    assert_eq!(s.attempts_of(n2).await.unwrap(), vec![(at(9, 0, 6), false), (at(9, 5, 1), false)]);
    assert_eq!(s.attempts_of(n1).await.unwrap(), vec![(at(9, 0, 6), true)]);
    assert_eq!(s.pending_notices().await.unwrap(), 0);
    assert_eq!(s.count_notices_since(NoticeKind::Acknowledgement, "C@cliente.test", at(9, 0, 0)).await.unwrap(), 1);
    assert_eq!(s.count_notices_since(NoticeKind::Acknowledgement, "c@cliente.test", at(9, 0, 2)).await.unwrap(), 0);
    assert!(matches!(
        s.record_attempt(n2 + 1000, now, AttemptOutcome::Failed { error: "x".into(), follow_up: Default::default() })
            .await,
        Err(RepoError::NotFound)
    ));
}

pub async fn concurrent_claims_lease_each_notice_once<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    for i in 0..8 {
        s.store_incoming(new_incoming(d.id, None, &format!("m{i}"), "c@cliente.test")).await.unwrap();
    }
    // Rounds of 8 concurrent claimers, leases long enough not to expire:
    // no notice is ever handed to two claimers, and all get claimed.
    let mut seen = Vec::new();
    for _round in 0..16 {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move { s.claim_due_notices(at(9, 0, 5), 5, at(9, 30, 0)).await.unwrap() }));
        }
        for t in tasks {
            seen.extend(t.await.unwrap().into_iter().map(|n| n.id));
        }
        if seen.len() >= 16 {
            break;
        }
    }
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a notice went to two claimers: {seen:?}");
    assert_eq!(unique.len(), 16, "every notice claimed");
}

// Outgoing webhooks (`WebhookRepository`).

fn kinds(list: &[WebhookEventKind]) -> BTreeSet<WebhookEventKind> {
    list.iter().copied().collect()
}

fn hook(url: &str, events: &[WebhookEventKind], status: Status, now: Timestamp) -> NewWebhook {
    NewWebhook { url: url.into(), events: kinds(events), sealed_secret: vec![7, 0, 255, 1], status, now }
}

/// An event of this kind about a ticket as the contract's mails leave it.
fn announce(kind: WebhookEventKind, now: Timestamp) -> NewWebhookEvent {
    let ticket = EventTicket {
        subject: "No funciona el correo".into(),
        status: TicketStatus::Open,
        priority: Priority::Normal,
        department_id: 1,
        department: "Soporte".into(),
        assignee: None,
        requester: "cliente@cliente.test".into(),
    };
    let message = EventMessage::new(Direction::Incoming, "cliente@cliente.test", "Texto del mensaje con ñ", false);
    NewWebhookEvent::new(kind, ticket, now).with_message(message)
}

/// (subscription, status, attempts) of each delivery of the event.
async fn deliveries<S: Store>(s: &S, event: &NewWebhookEvent) -> Vec<(i64, DeliveryStatus, i32)> {
    s.deliveries_of_event(&event.id).await.unwrap().iter().map(|d| (d.webhook_id, d.status, d.attempts)).collect()
}

pub async fn webhooks_round_trip_and_rotate_their_secret<S: Store>(s: Arc<S>) {
    use WebhookEventKind::*;
    assert_eq!(s.list_webhooks().await.unwrap(), vec![]);
    let url = format!("https://integra.example.test/hooks/{}?x=1", "a".repeat(1500));
    let a = s.create_webhook(hook(&url, &[TicketCreated, StatusChanged], Status::Active, at(9, 0, 0))).await.unwrap();
    assert!(a.id > 0);
    let expected = Webhook {
        id: a.id,
        url: url.clone(),
        events: kinds(&[TicketCreated, StatusChanged]),
        sealed_secret: vec![7, 0, 255, 1],
        status: Status::Active,
        created_at: at(9, 0, 0),
        updated_at: at(9, 0, 0),
    };
    assert_eq!(a, expected);
    let b = s.create_webhook(hook("http://127.0.0.1:9/x", &WebhookEventKind::ALL, Status::Inactive, at(9, 1, 0)));
    let b = b.await.unwrap();
    assert_eq!((b.events.len(), b.status), (WebhookEventKind::ALL.len(), Status::Inactive));
    assert_eq!(s.list_webhooks().await.unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(s.find_webhook(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.find_webhook(b.id + 1000).await.unwrap(), None);
    s.set_webhook_secret(a.id, vec![9; 60], at(10, 0, 0)).await.unwrap();
    let rotated = s.find_webhook(a.id).await.unwrap().unwrap();
    assert_eq!(
        (rotated.sealed_secret, rotated.updated_at, rotated.created_at),
        (vec![9; 60], at(10, 0, 0), at(9, 0, 0))
    );
    let r = s.set_webhook_secret(b.id + 1000, vec![1], at(10, 0, 0)).await;
    assert!(matches!(r, Err(RepoError::NotFound)), "{r:?}");
    s.remove_webhook(a.id).await.unwrap();
    assert_eq!(s.list_webhooks().await.unwrap(), vec![b.clone()]);
    assert!(matches!(s.remove_webhook(a.id).await, Err(RepoError::NotFound)));
}

pub async fn ticket_changes_record_events_for_their_subscribers<S: Store>(s: Arc<S>) {
    use WebhookEventKind::*;
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let op = s.create_user(sample_user("ana", "ana@example.test", Some(d))).await.unwrap().id;
    // No subscription yet: the event is not kept, not even for one added later.
    let mut first = new_incoming(d, None, "m0", "cliente@cliente.test");
    let unheard = announce(TicketCreated, first.now);
    first.webhook_events = vec![unheard.clone()];
    s.store_incoming(first).await.unwrap();

    let replies = [TicketCreated, CustomerReply, OperatorReply, Assigned];
    let all = s.create_webhook(hook("http://a.test/", &replies, Status::Active, at(8, 0, 0))).await.unwrap().id;
    let status = s.create_webhook(hook("http://b.test/", &[StatusChanged], Status::Active, at(8, 0, 0))).await.unwrap();
    let status = status.id;
    s.create_webhook(hook("http://c.test/", &WebhookEventKind::ALL, Status::Inactive, at(8, 0, 0))).await.unwrap();
    assert_eq!(deliveries(&*s, &unheard).await, vec![], "events before the subscription are not delivered");
    assert_eq!(s.pending_deliveries().await.unwrap(), 0);

    // A new ticket: the event's body names the ticket and the message.
    let mut incoming = new_incoming(d, Some(op), "m1", "cliente@cliente.test");
    let created = announce(TicketCreated, incoming.now);
    incoming.webhook_events = vec![created.clone()];
    let stored = s.store_incoming(incoming).await.unwrap();
    let got = s.deliveries_of_event(&created.id).await.unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    let expected = WebhookDelivery {
        id: got[0].id,
        event_id: created.id.clone(),
        webhook_id: all,
        kind: TicketCreated,
        ticket_id: stored.ticket_id,
        body: created.body(stored.ticket_id, Some(stored.detail_id)),
        url: "http://a.test/".into(),
        sealed_secret: vec![7, 0, 255, 1],
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: at(9, 0, 1),
        leased_until: None,
        last_error: None,
        created_at: at(9, 0, 1),
        sent_at: None,
    };
    assert_eq!(got[0], expected);

    // A customer's answer reopening it: two events, each to its subscribers.
    let t = stored.ticket_id;
    s.set_ticket_status(t, TicketStatus::Closed, at(9, 30, 0)).await.unwrap();
    let mut answer = follow_up(t, "m2", ("RE", "Sigue igual"), at(10, 0, 0));
    answer.target = IncomingTarget::Existing { ticket_id: t, reopen: true, sla: None };
    let (reply, reopened) = (announce(CustomerReply, at(10, 0, 0)), announce(StatusChanged, at(10, 0, 0)));
    answer.webhook_events = vec![reply.clone(), reopened.clone()];
    let second = s.store_incoming(answer).await.unwrap();
    assert_eq!(deliveries(&*s, &reply).await, vec![(all, DeliveryStatus::Pending, 0)]);
    assert_eq!(deliveries(&*s, &reopened).await, vec![(status, DeliveryStatus::Pending, 0)]);
    let body = &s.deliveries_of_event(&reopened.id).await.unwrap()[0].body;
    assert_eq!(body, &reopened.body(t, Some(second.detail_id)));

    // An operator's reply names its own message.
    let mut detail = sample_detail("r1", "ana@example.test");
    (detail.direction, detail.author_id) = (Direction::Outgoing, Some(op));
    let operator = announce(OperatorReply, at(11, 0, 0));
    let reply_of = NewReply {
        ticket_id: t,
        detail,
        participants: vec![],
        notices: vec![],
        webhook_events: vec![operator.clone()],
        now: at(11, 0, 0),
        notices_due_at: at(11, 0, 0),
        sla: None,
    };
    let stored_reply = s.store_reply(reply_of.clone()).await.unwrap();
    let got = s.deliveries_of_event(&operator.id).await.unwrap();
    assert_eq!(got.iter().map(|d| (d.webhook_id, d.next_attempt_at)).collect::<Vec<_>>(), vec![(all, at(11, 0, 0))]);
    assert_eq!(got[0].body, operator.body(t, Some(stored_reply.detail_id)));

    // A change: the events carry no message.
    let expected_fields = TicketFields::of(&s.find_ticket(t).await.unwrap().unwrap());
    let new = TicketFields { status: TicketStatus::Pending, assignee_id: None, ..expected_fields };
    let assigned = NewWebhookEvent { message: None, ..announce(Assigned, at(12, 0, 0)) };
    let pending = NewWebhookEvent { message: None, ..announce(StatusChanged, at(12, 0, 0)) };
    let update = TicketUpdate {
        ticket_id: t,
        expected: expected_fields,
        new,
        events: vec![],
        notices: vec![],
        webhook_events: vec![assigned.clone(), pending.clone()],
        now: at(12, 0, 0),
        sla: None,
    };
    s.update_ticket(update.clone()).await.unwrap();
    assert_eq!(deliveries(&*s, &assigned).await, vec![(all, DeliveryStatus::Pending, 0)]);
    let got = s.deliveries_of_event(&pending.id).await.unwrap();
    assert_eq!((got.len(), got[0].webhook_id, &got[0].body), (1, status, &pending.body(t, None)));
    assert_eq!(s.pending_deliveries().await.unwrap(), 6);

    // Refused changes record nothing.
    let late = announce(StatusChanged, at(13, 0, 0));
    let stale = TicketUpdate { webhook_events: vec![late.clone()], now: at(13, 0, 0), ..update };
    assert!(matches!(s.update_ticket(stale).await, Err(RepoError::Conflict)));
    let mut again = new_incoming(d, Some(op), "m1", "cliente@cliente.test");
    again.webhook_events = vec![NewWebhookEvent { id: late.id.clone(), ..announce(TicketCreated, at(13, 0, 0)) }];
    assert_duplicate(s.store_incoming(again).await, "the same mail");
    let gone = NewReply {
        ticket_id: t + 1000,
        detail: sample_detail("r2", "x@x.test"),
        webhook_events: vec![NewWebhookEvent { id: late.id.clone(), ..operator.clone() }],
        ..reply_of
    };
    assert!(matches!(s.store_reply(gone).await, Err(RepoError::NotFound)));
    assert_eq!(deliveries(&*s, &late).await, vec![]);
    assert_eq!(s.pending_deliveries().await.unwrap(), 6, "nothing written");
}

pub async fn webhook_deliveries_lease_attempts_and_outcomes<S: Store>(s: Arc<S>) {
    use WebhookEventKind::*;
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let a = s.create_webhook(hook("http://a.test/", &[TicketCreated], Status::Active, at(8, 0, 0))).await.unwrap().id;
    let b = s.create_webhook(hook("http://b.test/", &[TicketCreated], Status::Active, at(8, 0, 0))).await.unwrap().id;
    let mut events = Vec::new();
    for (i, now) in [at(9, 0, 0), at(9, 0, 1)].into_iter().enumerate() {
        let mut incoming = new_incoming(d, None, &format!("m{i}"), "cliente@cliente.test");
        incoming.now = now;
        let event = announce(TicketCreated, now);
        incoming.webhook_events = vec![event.clone()];
        s.store_incoming(incoming).await.unwrap();
        events.push(event);
    }
    let ids = |ds: &[WebhookDelivery]| ds.iter().map(|d| (d.event_id.clone(), d.webhook_id)).collect::<Vec<_>>();
    let (e1, e2) = (events[0].id.clone(), events[1].id.clone());
    assert!(s.claim_due_deliveries(at(8, 59, 59), 10, at(9, 5, 0)).await.unwrap().is_empty(), "not due yet");
    let first = s.claim_due_deliveries(at(9, 0, 5), 3, at(9, 1, 5)).await.unwrap();
    assert_eq!(ids(&first), vec![(e1.clone(), a), (e1.clone(), b), (e2.clone(), a)], "oldest first, at most 3");
    assert_eq!(first[0].leased_until, Some(at(9, 1, 5)));
    assert_eq!((first[0].url.as_str(), first[1].url.as_str()), ("http://a.test/", "http://b.test/"));
    let rest = s.claim_due_deliveries(at(9, 0, 5), 10, at(9, 1, 5)).await.unwrap();
    assert_eq!(ids(&rest), vec![(e2.clone(), b)], "the leased ones are not handed out again");

    let sent = s.record_delivery(first[0].id, at(9, 0, 6), DeliveryOutcome::Sent).await.unwrap();
    assert_eq!(
        (sent.status, sent.attempts, sent.sent_at, sent.leased_until),
        (DeliveryStatus::Sent, 1, Some(at(9, 0, 6)), None)
    );
    let retry = DeliveryOutcome::Retry { error: "HTTP 500".into(), next_attempt_at: at(9, 5, 0) };
    let retried = s.record_delivery(first[1].id, at(9, 0, 6), retry).await.unwrap();
    assert_eq!((retried.status, retried.attempts, retried.next_attempt_at), (DeliveryStatus::Pending, 1, at(9, 5, 0)));
    assert_eq!((retried.last_error.as_deref(), retried.leased_until), (Some("HTTP 500"), None));
    let failed = DeliveryOutcome::Failed { error: "HTTP 410 Gone".into() };
    let failed = s.record_delivery(first[2].id, at(9, 0, 6), failed).await.unwrap();
    assert_eq!(
        (failed.status, failed.attempts, failed.last_error.as_deref()),
        (DeliveryStatus::Failed, 1, Some("HTTP 410 Gone"))
    );
    assert_eq!(s.pending_deliveries().await.unwrap(), 2);
    assert!(
        s.claim_due_deliveries(at(9, 1, 0), 10, at(9, 2, 0)).await.unwrap().is_empty(),
        "retry not due, lease held"
    );
    // A lease that runs out (a worker died mid-attempt) frees the delivery.
    let again = s.claim_due_deliveries(at(9, 1, 5), 10, at(9, 2, 5)).await.unwrap();
    assert_eq!(ids(&again), vec![(e2.clone(), b)]);
    let due = s.claim_due_deliveries(at(9, 5, 0), 10, at(9, 6, 0)).await.unwrap();
    assert_eq!(ids(&due), vec![(e1.clone(), b), (e2.clone(), b)], "the retry is due, the lease ran out");
    assert_eq!((due[0].attempts, due[1].attempts), (1, 0));
    let r = s.record_delivery(due[0].id + 1000, at(9, 5, 1), DeliveryOutcome::Sent).await;
    assert!(matches!(r, Err(RepoError::NotFound)), "{r:?}");

    // Ending a subscription drops its deliveries, and the events no one
    // else is to receive.
    s.remove_webhook(b).await.unwrap();
    assert_eq!(deliveries(&*s, &events[0]).await, vec![(a, DeliveryStatus::Sent, 1)]);
    assert_eq!(deliveries(&*s, &events[1]).await, vec![(a, DeliveryStatus::Failed, 1)]);
    assert_eq!(s.pending_deliveries().await.unwrap(), 0);
    assert!(s.claim_due_deliveries(at(12, 0, 0), 10, at(12, 1, 0)).await.unwrap().is_empty());
    s.remove_webhook(a).await.unwrap();
    assert_eq!(deliveries(&*s, &events[0]).await, vec![]);
    let mut later = new_incoming(d, None, "m9", "cliente@cliente.test");
    later.webhook_events = vec![announce(TicketCreated, later.now)];
    s.store_incoming(later).await.unwrap();
    assert_eq!(s.pending_deliveries().await.unwrap(), 0, "no subscription left");
}

pub async fn concurrent_claims_lease_each_delivery_once<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    for url in ["http://a.test/", "http://b.test/"] {
        s.create_webhook(hook(url, &[WebhookEventKind::TicketCreated], Status::Active, at(8, 0, 0))).await.unwrap();
    }
    for i in 0..8 {
        let mut incoming = new_incoming(d, None, &format!("m{i}"), "c@cliente.test");
        incoming.webhook_events = vec![announce(WebhookEventKind::TicketCreated, incoming.now)];
        s.store_incoming(incoming).await.unwrap();
    }
    let mut seen = Vec::new();
    for _round in 0..16 {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            tasks
                .push(tokio::spawn(async move { s.claim_due_deliveries(at(9, 0, 5), 5, at(9, 30, 0)).await.unwrap() }));
        }
        for t in tasks {
            seen.extend(t.await.unwrap().into_iter().map(|d| d.id));
        }
        if seen.len() >= 16 {
            break;
        }
    }
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a delivery went to two claimers: {seen:?}");
    assert_eq!(unique.len(), 16, "every delivery claimed");
}

/// Records dated before the cutoff go, oldest first and at most `limit` at
/// once; a record linking to one that went keeps its link.
pub async fn old_audit_records_are_purged_oldest_first<S: Store>(s: Arc<S>) {
    let first = s.reserve_audit_ids(4).await.unwrap();
    let record = |n: i64, at: Timestamp, parent: Option<i64>| AuditRecord {
        id: first + n,
        entry: NewAuditEntry {
            at,
            consumer_name: None,
            endpoint: format!("e{n}"),
            method: "POST".into(),
            client_ip: "10.0.0.1".into(),
            body: String::new(),
            parent_id: parent,
        },
        outcome: AuditOutcome { consumer_id: None, status: 200, duration_us: 1, user_id: None },
    };
    // Ids and dates in different orders (each server numbers from its own block).
    let records = [
        record(0, at(9, 0, 0), None),
        record(1, at(8, 0, 0), None),
        record(2, at(8, 30, 0), Some(first + 1)),
        record(3, at(10, 0, 0), Some(first + 2)),
    ];
    s.write_audit(&records).await.unwrap();
    let kept = |s: Arc<S>| async move {
        let mut ids = Vec::new();
        for n in 0..4 {
            if s.find_audit(first + n).await.unwrap().is_some() {
                ids.push(n);
            }
        }
        ids
    };
    assert_eq!(s.purge_audit(at(8, 0, 0), 10).await.unwrap(), 0, "none before 8:00");
    assert_eq!(s.purge_audit(at(9, 30, 0), 1).await.unwrap(), 1);
    assert_eq!(kept(s.clone()).await, [0, 2, 3], "the oldest by date went first");
    assert_eq!(s.purge_audit(at(9, 30, 0), 10).await.unwrap(), 2);
    assert_eq!(kept(s.clone()).await, [3]);
    assert_eq!(s.find_audit(first + 3).await.unwrap().unwrap().parent_id, Some(first + 2), "the link is kept");
    assert_eq!(s.purge_audit(at(9, 30, 0), 10).await.unwrap(), 0);
}

/// Finished deliveries created before the cutoff go, oldest first and at
/// most `limit` at once; a pending one stays however old.
pub async fn finished_deliveries_are_purged_oldest_first_pending_ones_kept<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let a = s.create_webhook(hook("http://a.test/", &[WebhookEventKind::TicketCreated], Status::Active, at(7, 0, 0)));
    let a = a.await.unwrap();
    let b = s.create_webhook(hook("http://b.test/", &[WebhookEventKind::TicketCreated], Status::Active, at(7, 0, 0)));
    let b = b.await.unwrap();
    // Three events, at 8:00, 8:10 and 8:20, each delivered to both.
    let mut events = Vec::new();
    for (i, minute) in [0, 10, 20].into_iter().enumerate() {
        let mut incoming = new_incoming(d, None, &format!("m{i}"), "c@cliente.test");
        incoming.now = at(8, minute, 0);
        let event = announce(WebhookEventKind::TicketCreated, incoming.now);
        events.push(event.id.clone());
        incoming.webhook_events = vec![event];
        s.store_incoming(incoming).await.unwrap();
    }
    // All sent but two: the second event's to b given up, the third's to b
    // still to be retried.
    for delivery in s.claim_due_deliveries(at(9, 0, 0), 10, at(9, 30, 0)).await.unwrap() {
        let outcome = match (delivery.webhook_id == b.id, events.iter().position(|e| *e == delivery.event_id)) {
            (true, Some(1)) => DeliveryOutcome::Failed { error: "HTTP 410".into() },
            (true, Some(2)) => DeliveryOutcome::Retry { error: "HTTP 500".into(), next_attempt_at: at(9, 5, 0) },
            _ => DeliveryOutcome::Sent,
        };
        s.record_delivery(delivery.id, at(9, 0, 1), outcome).await.unwrap();
    }
    let left = |i: usize| {
        let (s, event) = (s.clone(), events[i].clone());
        async move { s.deliveries_of_event(&event).await.unwrap().into_iter().map(|d| d.webhook_id).collect::<Vec<_>>() }
    };
    assert_eq!(s.purge_finished_deliveries(at(8, 0, 0), 100).await.unwrap(), 0, "none created before 8:00");
    assert_eq!(s.purge_finished_deliveries(at(8, 30, 0), 1).await.unwrap(), 1, "at most the limit");
    assert_eq!(left(0).await.len(), 1, "the oldest first");
    assert_eq!(left(1).await.len(), 2);
    assert_eq!(s.purge_finished_deliveries(at(8, 30, 0), 100).await.unwrap(), 4);
    assert!(left(0).await.is_empty() && left(1).await.is_empty(), "sent and given up alike");
    assert_eq!(left(2).await, [b.id], "the pending one stays");
    assert_eq!(s.pending_deliveries().await.unwrap(), 1);
    assert_eq!(s.purge_finished_deliveries(at(23, 0, 0), 100).await.unwrap(), 0, "however old");
    let _ = a;
}

pub async fn reader_checkpoints_and_an_idempotent_quarantine<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let account = s
        .create_mail_account(NewMailAccount {
            host: "imap.example.test".into(),
            user: "soporte@example.test".into(),
            sealed_password: vec![1, 2, 3],
            port: "993".into(),
            mailboxes: vec!["INBOX".into(), "Soporte/Entrada".into()],
            department_id: d.id,
            status: Status::Active,
            send_acknowledgement: true,
        })
        .await
        .unwrap();
    assert_eq!(s.checkpoint(account.id, "INBOX").await.unwrap(), None);
    let first = Checkpoint { uid_validity: 4_000_000_000, last_uid: 7 };
    s.save_checkpoint(account.id, "INBOX", first, at(9, 0, 0)).await.unwrap();
    let moved = Checkpoint { uid_validity: 4_000_000_000, last_uid: 4_294_967_295 };
    s.save_checkpoint(account.id, "Soporte/Entrada", moved, at(9, 0, 0)).await.unwrap();
    assert_eq!(s.checkpoint(account.id, "INBOX").await.unwrap(), Some(first));
    assert_eq!(s.checkpoint(account.id, "inbox").await.unwrap(), None, "mailbox names are case-sensitive");
    let renumbered = Checkpoint { uid_validity: 12, last_uid: 1 };
    s.save_checkpoint(account.id, "INBOX", renumbered, at(9, 1, 0)).await.unwrap();
    assert_eq!(s.checkpoint(account.id, "INBOX").await.unwrap(), Some(renumbered));
    assert_eq!(s.checkpoint(account.id, "Soporte/Entrada").await.unwrap(), Some(moved));

    let location =
        MailLocation { account_id: account.id, mailbox: "INBOX".into(), uid_validity: 4_000_000_000, uid: 9 };
    let new = NewQuarantined {
        location: location.clone(),
        size: 30_000_000,
        reason: QuarantineReason::TooLarge,
        detail: "30000000 octets".into(),
        raw_route: None,
        now: at(9, 2, 0),
    };
    let q = s.quarantine(new.clone()).await.unwrap();
    assert!(q.id > 0);
    assert_eq!(
        (&q.location, q.size, q.reason, q.detail.as_str(), &q.raw_route, q.attempts, q.created_at, q.ticket_id),
        (&location, 30_000_000, QuarantineReason::TooLarge, "30000000 octets", &None, 0, at(9, 2, 0), None)
    );
    let again = NewQuarantined { reason: QuarantineReason::Rejected, now: at(9, 3, 0), ..new.clone() };
    assert_eq!(s.quarantine(again).await.unwrap(), q, "the same location is quarantined once");
    let other = NewQuarantined {
        location: MailLocation { uid: 10, ..location.clone() },
        reason: QuarantineReason::Unparsable,
        raw_route: Some("cuarentena/x.eml".into()),
        ..new
    };
    let r = s.quarantine(other).await.unwrap();
    assert_ne!(r.id, q.id);
    assert_eq!(r.raw_route.as_deref(), Some("cuarentena/x.eml"));
    assert_eq!(s.quarantined(false).await.unwrap(), vec![q.clone(), r.clone()]);
    assert_eq!(s.find_quarantined(r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(s.find_quarantined(r.id + 1000).await.unwrap(), None);

    let failed =
        s.record_retry(q.id, Err((QuarantineReason::Rejected, "no department".into())), at(9, 4, 0)).await.unwrap();
    assert_eq!(
        (failed.attempts, failed.reason, failed.detail.as_str()),
        (1, QuarantineReason::Rejected, "no department")
    );
    assert_eq!((failed.created_at, failed.updated_at, failed.ticket_id), (at(9, 2, 0), at(9, 4, 0), None));
    let t = s.store_incoming(new_incoming(d.id, None, "m-retry", "r@example.test")).await.unwrap();
    let resolved = s.record_retry(q.id, Ok(t.ticket_id), at(9, 5, 0)).await.unwrap();
    assert_eq!((resolved.attempts, resolved.ticket_id), (2, Some(t.ticket_id)));
    assert!(resolved.is_resolved());
    assert_eq!(s.quarantined(false).await.unwrap(), vec![r.clone()]);
    assert_eq!(s.quarantined(true).await.unwrap(), vec![resolved, r]);
    assert!(matches!(s.record_retry(q.id + 1000, Ok(t.ticket_id), at(9, 6, 0)).await, Err(RepoError::NotFound)));
}

/// Held mail: kept whole (every field, UTF-8 and headers included), held
/// once per dedupe key, listed in order, released once.
pub async fn held_mail_is_kept_whole_and_released_once<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap();
    let mail = IncomingMail {
        system: "canal_lectura".into(),
        subject: "Copia de nuestra respuesta ñ".into(),
        from: "Soporte <soporte@helpdesk.test>".into(),
        to: "cliente@cliente.test".into(),
        cc: Some("otro@cliente.test".into()),
        bcc: None,
        reply_to: None,
        body: "Texto con ñ y \"comillas\"".into(),
        html: "<p>x</p>".into(),
        date: at(9, 0, 0),
        headers: [("Message-ID".to_string(), "<x@helpdesk.test>".to_string())].into_iter().collect(),
        attachments: vec![NewAttachment {
            name: "a.txt".into(),
            route: "r/a.txt".into(),
            mime_type: "text/plain".into(),
        }],
        received_by: Some(3),
    };
    let new =
        NewHeldMail { dedupe_key: "k1".into(), reason: HoldReason::OwnAddress, mail: mail.clone(), now: at(9, 1, 0) };
    let h = s.hold(new.clone()).await.unwrap();
    assert_eq!(
        (h.reason, &h.mail, h.created_at, h.ticket_id, h.released_at),
        (HoldReason::OwnAddress, &mail, at(9, 1, 0), None, None)
    );
    let again = NewHeldMail { now: at(9, 2, 0), ..new.clone() };
    assert_eq!(s.hold(again).await.unwrap(), h, "the same mail is held once");
    let other = s.hold(NewHeldMail { dedupe_key: "k2".into(), ..new }).await.unwrap();
    assert_ne!(other.id, h.id);
    assert_eq!(s.held_mail(false).await.unwrap(), vec![h.clone(), other.clone()]);
    assert_eq!(s.find_held(other.id).await.unwrap(), Some(other.clone()));
    assert_eq!(s.find_held(other.id + 1000).await.unwrap(), None);

    let t = s.store_incoming(new_incoming(d.id, None, "m-held", "r@example.test")).await.unwrap().ticket_id;
    let released = s.mark_released(h.id, t, at(9, 3, 0)).await.unwrap();
    assert_eq!((released.ticket_id, released.released_at), (Some(t), Some(at(9, 3, 0))));
    assert!(released.is_released());
    let later = s.mark_released(h.id, t + 1, at(9, 4, 0)).await.unwrap();
    assert_eq!(later, released, "released once");
    assert_eq!(s.held_mail(false).await.unwrap(), vec![other.clone()]);
    assert_eq!(s.held_mail(true).await.unwrap(), vec![released, other]);
    assert!(matches!(s.mark_released(h.id + 1000, t, at(9, 5, 0)).await, Err(RepoError::NotFound)));
}

// Service levels (`SlaRepository`, and the clock's columns of `ticket`).

/// A running clock started at 08:00, unanswered: its first response's
/// warning and due time, its resolution's warning and due time.
fn sla_clock(first: (Timestamp, Timestamp), resolution: (Timestamp, Timestamp)) -> SlaClock {
    SlaClock {
        policy_id: 1,
        calendar_id: 1,
        started_at: at(8, 0, 0),
        paused_secs: 0,
        paused_since: None,
        first_response_warning: first.0,
        first_response_due: first.1,
        first_response_at: None,
        resolution_warning: resolution.0,
        resolution_due: resolution.1,
        resolved_at: None,
    }
}

/// A new ticket of the department with this clock (or none).
async fn clocked<S: Store>(s: &S, department_id: i64, key: &str, sla: Option<SlaClock>) -> i64 {
    let mut n = mail(department_id, None, key, ("Consulta", "Texto"), at(8, 0, 0));
    if let IncomingTarget::New(t) = &mut n.target {
        t.sla = sla;
    }
    s.store_incoming(n).await.unwrap().ticket_id
}

async fn clock_of<S: Store>(s: &S, ticket_id: i64) -> Option<SlaClock> {
    s.find_ticket(ticket_id).await.unwrap().unwrap().sla
}

/// The list's cursor after this ticket in the nearest-due order.
fn due_cursor(t: &Ticket) -> (Option<Timestamp>, i64) {
    (t.sla.and_then(|c| c.next_due()), t.id)
}

pub async fn sla_clocks_are_stored_and_keep_the_first_response<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let a = s.create_user(sample_user("ana", "ana@example.test", Some(d))).await.unwrap().id;
    let opened = SlaClock {
        policy_id: 7,
        calendar_id: 3,
        paused_secs: 120,
        ..sla_clock((at(9, 0, 0), at(9, 30, 0)), (at(14, 0, 0), at(15, 0, 0)))
    };
    let t = clocked(&*s, d, "m1", Some(opened)).await;
    let plain = clocked(&*s, d, "m2", None).await;
    assert_eq!(clock_of(&*s, t).await, Some(opened), "stored as it came");
    assert_eq!(clock_of(&*s, plain).await, None);
    let listed_t = s.list_tickets(TicketQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(listed_t.iter().map(|t| t.sla).collect::<Vec<_>>(), vec![None, Some(opened)], "whole tickets listed");

    // A reply with the first response met.
    let answered = opened.responded(at(10, 0, 0));
    let mut detail = sample_detail("r1", "ana@example.test");
    (detail.direction, detail.author_id) = (Direction::Outgoing, Some(a));
    let reply = NewReply {
        ticket_id: t,
        detail,
        participants: vec![],
        notices: vec![],
        webhook_events: vec![],
        now: at(10, 0, 0),
        notices_due_at: at(10, 0, 0),
        sla: Some(answered),
    };
    s.store_reply(reply.clone()).await.unwrap();
    assert_eq!(clock_of(&*s, t).await, Some(answered));
    // A reply without a clock leaves it.
    s.store_reply(NewReply { detail: sample_detail("r2", "ana@example.test"), sla: None, ..reply.clone() })
        .await
        .unwrap();
    assert_eq!(clock_of(&*s, t).await, Some(answered));

    // An update rewrites every column but an earlier first response.
    let current = TicketFields::of(&s.find_ticket(t).await.unwrap().unwrap());
    let pending = TicketFields { status: TicketStatus::Pending, ..current };
    let stopped = SlaClock {
        policy_id: 8,
        calendar_id: 4,
        paused_secs: 300,
        paused_since: Some(at(11, 0, 0)),
        first_response_at: Some(at(11, 0, 0)),
        ..sla_clock((at(9, 10, 0), at(9, 40, 0)), (at(16, 0, 0), at(17, 0, 0)))
    };
    let update = TicketUpdate {
        ticket_id: t,
        expected: current,
        new: pending,
        events: vec![],
        notices: vec![],
        webhook_events: vec![],
        now: at(11, 0, 0),
        sla: Some(stopped),
    };
    let kept = SlaClock { first_response_at: Some(at(10, 0, 0)), ..stopped };
    assert_eq!(s.update_ticket(update.clone()).await.unwrap().sla, Some(kept), "the ticket as it became");
    assert_eq!(clock_of(&*s, t).await, Some(kept));
    // A stale update writes no clock either.
    let r = s.update_ticket(TicketUpdate { sla: Some(opened), ..update.clone() }).await;
    assert!(matches!(r, Err(RepoError::Conflict)), "{r:?}");
    assert_eq!(clock_of(&*s, t).await, Some(kept));
    // An update without a clock leaves it.
    let closed = TicketFields { status: TicketStatus::Closed, ..pending };
    let r = s.update_ticket(TicketUpdate { expected: pending, new: closed, sla: None, ..update.clone() }).await;
    assert_eq!(r.unwrap().sla, Some(kept));
    // The customer writes again: the clock runs again (the store keeps the
    // first response it has, whatever the new clock says).
    let running = SlaClock { paused_since: None, first_response_at: None, ..stopped };
    let mut again = follow_up(t, "m3", ("RE", "Sigue igual"), at(12, 0, 0));
    again.target = IncomingTarget::Existing { ticket_id: t, reopen: true, sla: Some(running) };
    s.store_incoming(again.clone()).await.unwrap();
    let resumed = SlaClock { first_response_at: Some(at(10, 0, 0)), ..running };
    assert_eq!(clock_of(&*s, t).await, Some(resumed));
    again.detail = sample_detail("m4", "cliente@cliente.test");
    again.target = IncomingTarget::Existing { ticket_id: t, reopen: false, sla: None };
    s.store_incoming(again).await.unwrap();
    assert_eq!(clock_of(&*s, t).await, Some(resumed), "a mail without a clock leaves it");

    // The nearest-due order follows the clock as stored: answered, `t` is
    // due at its resolution (17:00), after a ticket due at 16:30.
    let sooner = SlaClock {
        first_response_at: Some(at(9, 0, 0)),
        ..sla_clock((at(9, 0, 0), at(9, 5, 0)), (at(16, 0, 0), at(16, 30, 0)))
    };
    let other = clocked(&*s, d, "m5", Some(sooner)).await;
    let order = TicketQuery { order: TicketOrder::NearestDue, ..Default::default() };
    assert_eq!(listed(&*s, order).await, vec![other, t, plain]);
}

/// Tickets with clocks in every state at 12:00 (and one without), and
/// what the list and the counts say of them.
struct SlaFixture {
    department: i64,
    now: Timestamp,
    on_time: Vec<i64>,
    at_risk: Vec<i64>,
    breached: Vec<i64>,
    paused: Vec<i64>,
    met: Vec<i64>,
    none: i64,
}

async fn sla_fixture<S: Store>(s: &S) -> SlaFixture {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let late = sla_clock((at(13, 0, 0), at(14, 0, 0)), (at(17, 0, 0), at(18, 0, 0)));
    let on_time = clocked(s, d, "m1", Some(late)).await;
    // Answered, its first response long past: on time all the same.
    let answered = SlaClock {
        first_response_at: Some(at(9, 0, 0)),
        ..sla_clock((at(9, 0, 0), at(9, 30, 0)), (at(17, 0, 0), at(18, 0, 0)))
    };
    let on_time_answered = clocked(s, d, "m2", Some(answered)).await;
    let first_warned =
        clocked(s, d, "m3", Some(sla_clock((at(11, 0, 0), at(13, 0, 0)), (at(17, 0, 0), at(18, 0, 0))))).await;
    let resolution_warned = SlaClock {
        first_response_at: Some(at(10, 0, 0)),
        ..sla_clock((at(10, 0, 0), at(11, 0, 0)), (at(11, 30, 0), at(13, 30, 0)))
    };
    let resolution_warned = clocked(s, d, "m4", Some(resolution_warned)).await;
    // Due exactly now: warned, not yet late.
    let edge = clocked(s, d, "m5", Some(sla_clock((at(12, 0, 0), at(12, 0, 0)), (at(17, 0, 0), at(18, 0, 0))))).await;
    let unanswered_late =
        clocked(s, d, "m6", Some(sla_clock((at(10, 0, 0), at(11, 0, 0)), (at(17, 0, 0), at(18, 0, 0))))).await;
    // Answered late, then stopped: late for good.
    let answered_late = SlaClock {
        first_response_at: Some(at(11, 30, 0)),
        paused_since: Some(at(11, 45, 0)),
        ..sla_clock((at(10, 0, 0), at(11, 0, 0)), (at(17, 0, 0), at(18, 0, 0)))
    };
    let answered_late = clocked(s, d, "m7", Some(answered_late)).await;
    // Stopped before its first response was due, now past it: paused.
    let stopped = SlaClock {
        paused_since: Some(at(10, 0, 0)),
        ..sla_clock((at(10, 30, 0), at(11, 0, 0)), (at(17, 0, 0), at(18, 0, 0)))
    };
    let paused = clocked(s, d, "m8", Some(stopped)).await;
    let resolved = SlaClock {
        first_response_at: Some(at(9, 30, 0)),
        paused_since: Some(at(10, 30, 0)),
        resolved_at: Some(at(10, 30, 0)),
        ..sla_clock((at(9, 0, 0), at(10, 0, 0)), (at(10, 0, 0), at(11, 0, 0)))
    };
    let met = clocked(s, d, "m9", Some(resolved)).await;
    let none = clocked(s, d, "m10", None).await;
    SlaFixture {
        department: d,
        now: at(12, 0, 0),
        on_time: vec![on_time, on_time_answered],
        at_risk: vec![first_warned, resolution_warned, edge],
        breached: vec![unanswered_late, answered_late],
        paused: vec![paused],
        met: vec![met],
        none,
    }
}

pub async fn ticket_list_filters_by_service_level_and_orders_by_nearest_due<S: Store>(s: Arc<S>) {
    let f = sla_fixture(&*s).await;
    // Overdue now: a running clock past its next due time, by the domain's
    // rule (`SlaClock::next_due`), in SQL as in memory.
    let all = s.list_tickets(TicketQuery { limit: 100, ..Default::default() }).await.unwrap();
    let overdue: Vec<i64> =
        all.iter().filter(|t| t.sla.and_then(|c| c.next_due()).is_some_and(|due| due < f.now)).map(|t| t.id).collect();
    assert!(overdue.contains(&f.breached[0]) && !overdue.contains(&f.paused[0]), "{overdue:?}");
    assert!(!overdue.contains(&f.on_time[0]) && !overdue.contains(&f.none), "{overdue:?}");
    let late = TicketQuery { overdue: true, now: f.now, limit: 50, ..Default::default() };
    assert_eq!(listed(&*s, late.clone()).await, overdue, "overdue now");
    assert_eq!(s.count_tickets(late).await.unwrap(), overdue.len() as i64);
    let in_state = |state| TicketQuery { sla: Some(state), now: f.now, limit: 50, ..Default::default() };
    let newest = |ids: &[i64]| ids.iter().rev().copied().collect::<Vec<i64>>();
    for (state, expected) in [
        (SlaState::OnTime, &f.on_time),
        (SlaState::AtRisk, &f.at_risk),
        (SlaState::Breached, &f.breached),
        (SlaState::Paused, &f.paused),
        (SlaState::Met, &f.met),
    ] {
        let got = listed(&*s, in_state(state)).await;
        assert_eq!(got, newest(expected), "{state:?}");
        assert!(!got.contains(&f.none), "no clock, no state");
        // Judged at `now`: the same tickets an hour earlier are another story.
        for t in s.list_tickets(in_state(state)).await.unwrap() {
            assert_eq!(t.sla.unwrap().state(f.now), state);
        }
        let elsewhere = TicketQuery { department_id: Some(f.department + 1000), ..in_state(state) };
        assert_eq!(listed(&*s, elsewhere).await, Vec::<i64>::new(), "{state:?} with another filter");
        let nearest = TicketQuery { order: TicketOrder::NearestDue, ..in_state(state) };
        let mut by_due = s.list_tickets(nearest).await.unwrap();
        let got: BTreeSet<i64> = by_due.iter().map(|t| t.id).collect();
        assert_eq!(got, expected.iter().copied().collect(), "{state:?} in the nearest-due order");
        let sorted = by_due.clone();
        by_due.sort_by_key(|t| (due_cursor(t).0.is_none(), due_cursor(t)));
        assert_eq!(sorted, by_due);
    }
    // At 08:00 the first two at risk were on time; the edge, due at noon, too.
    let early = listed(&*s, TicketQuery { now: at(8, 0, 0), ..in_state(SlaState::AtRisk) }).await;
    assert_eq!(early, Vec::<i64>::new());
    let early = listed(&*s, TicketQuery { now: at(10, 30, 0), ..in_state(SlaState::Breached) }).await;
    assert_eq!(early, vec![f.breached[1]], "only the one answered late, once it was");

    // The nearest due first, the tickets without a running clock last,
    // ties and the rest by id; a page at a time, each ticket once.
    let d = f.department;
    let tie = clocked(&*s, d, "m11", Some(sla_clock((at(13, 0, 0), at(14, 0, 0)), (at(17, 0, 0), at(18, 0, 0))))).await;
    let none2 = clocked(&*s, d, "m12", None).await;
    let all = s.list_tickets(TicketQuery { limit: 100, ..Default::default() }).await.unwrap();
    let mut expected: Vec<&Ticket> = all.iter().collect();
    expected.sort_by_key(|t| (due_cursor(t).0.is_none(), due_cursor(t)));
    let expected: Vec<i64> = expected.into_iter().map(|t| t.id).collect();
    assert_eq!(expected.len(), 12);
    assert_eq!(expected[expected.len() - 5..], [f.breached[1], f.paused[0], f.met[0], f.none, none2]);
    assert!(expected.windows(2).any(|w| w == [f.on_time[0], tie]), "a tie goes by id");
    let nearest = TicketQuery { order: TicketOrder::NearestDue, ..Default::default() };
    assert_eq!(listed(&*s, TicketQuery { limit: 100, ..nearest.clone() }).await, expected);
    for size in [1, 2, 3, 5] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.list_tickets(TicketQuery { after_due: cursor, limit: size, ..nearest.clone() }).await.unwrap();
            assert!(page.len() <= size as usize);
            let Some(last) = page.last() else { break };
            cursor = Some(due_cursor(last));
            seen.extend(ids(&page));
        }
        assert_eq!(seen, expected, "pages of {size}");
    }
    // That cursor in the newest-first order keeps the same tickets.
    let cursor = due_cursor(&s.find_ticket(tie).await.unwrap().unwrap());
    let mut after: Vec<i64> = expected[expected.iter().position(|t| *t == tie).unwrap() + 1..].to_vec();
    after.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(listed(&*s, TicketQuery { after_due: Some(cursor), ..Default::default() }).await, after);
    // The other filters hold in this order, on both sides of the clockless.
    let mut moved = Vec::new();
    for t in [f.on_time[0], f.none] {
        change(&*s, t, at(12, 0, 0), |x| x.priority = Priority::High).await;
        moved.push(t);
    }
    let high = TicketQuery { priority: Some(Priority::High), ..nearest.clone() };
    assert_eq!(listed(&*s, high.clone()).await, moved);
    assert_eq!(listed(&*s, TicketQuery { after_due: Some((None, 0)), ..high.clone() }).await, vec![f.none]);
    assert_eq!(listed(&*s, TicketQuery { before_id: Some(f.none), ..high }).await, vec![f.on_time[0]]);
    assert_eq!(listed(&*s, TicketQuery { after_due: Some((None, none2)), ..nearest }).await, Vec::<i64>::new());
    assert_eq!(
        listed(&*s, TicketQuery { limit: 3, ..Default::default() }).await,
        vec![none2, tie, f.none],
        "newest first, as ever"
    );
}

pub async fn sla_counts_per_state<S: Store>(s: Arc<S>) {
    let f = sla_fixture(&*s).await;
    let counts = s.sla_counts(f.now).await.unwrap();
    let expected = vec![
        (SlaState::OnTime, f.on_time.len() as i64),
        (SlaState::AtRisk, f.at_risk.len() as i64),
        (SlaState::Breached, f.breached.len() as i64),
        (SlaState::Paused, f.paused.len() as i64),
        (SlaState::Met, f.met.len() as i64),
    ];
    let mut got: Vec<(SlaState, i64)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
    got.sort();
    assert_eq!(got, expected);
    // At 08:00 nothing was late or warned; the stopped ones were stopped.
    let mut early: Vec<(SlaState, i64)> =
        s.sla_counts(at(8, 0, 0)).await.unwrap().into_iter().filter(|(_, n)| *n > 0).collect();
    early.sort();
    assert_eq!(early, vec![(SlaState::OnTime, 6), (SlaState::Breached, 1), (SlaState::Paused, 1), (SlaState::Met, 1)]);
}

pub async fn sla_crossings_are_escalated_once<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let unanswered = sla_clock((at(10, 0, 0), at(11, 0, 0)), (at(15, 0, 0), at(16, 0, 0)));
    let t1 = clocked(&*s, d, "m1", Some(unanswered)).await;
    let stopped = SlaClock { paused_since: Some(at(9, 0, 0)), ..unanswered };
    let t2 = clocked(&*s, d, "m2", Some(stopped)).await;
    let answered = SlaClock {
        first_response_at: Some(at(9, 30, 0)),
        ..sla_clock((at(9, 0, 0), at(9, 45, 0)), (at(10, 30, 0), at(17, 0, 0)))
    };
    let t3 = clocked(&*s, d, "m3", Some(answered)).await;
    clocked(&*s, d, "m4", None).await;
    let now = at(12, 0, 0);
    let crossings = |limit: i64| {
        let s = s.clone();
        async move {
            s.sla_crossings(now, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|(t, th)| (t.id, th))
                .collect::<Vec<(i64, SlaThreshold)>>()
        }
    };
    use SlaThreshold::*;
    assert_eq!(
        crossings(10).await,
        vec![(t1, FirstResponseWarning), (t3, ResolutionWarning), (t1, FirstResponseBreach)],
        "earliest first; a stopped clock crosses nothing"
    );
    assert_eq!(crossings(2).await, vec![(t1, FirstResponseWarning), (t3, ResolutionWarning)]);
    assert_eq!(s.sla_crossings(now, 1).await.unwrap()[0].0, s.find_ticket(t1).await.unwrap().unwrap());
    assert!(s.sla_crossings(at(9, 0, 0), 10).await.unwrap().is_empty(), "nothing crossed yet");

    // Claimed once: the notices go with the latest message, due now.
    let latest = s.store_incoming(follow_up(t1, "m5", ("RE", "Nada aún"), at(11, 30, 0))).await.unwrap().detail_id;
    let pending = s.pending_notices().await.unwrap();
    let notices = vec![
        NewNotice { kind: NoticeKind::SlaWarningChat, recipient: "42".into() },
        NewNotice { kind: NoticeKind::SlaWarningChannel, recipient: d.to_string() },
    ];
    let ids = s.escalate(t1, FirstResponseWarning, notices.clone(), now).await.unwrap().unwrap();
    let written = s.notices_of_detail(latest).await.unwrap();
    assert_eq!(written.iter().map(|n| n.id).collect::<Vec<_>>(), ids);
    assert_eq!(
        written.iter().map(|n| (n.kind, n.recipient.as_str(), n.next_attempt_at, n.ticket_id)).collect::<Vec<_>>(),
        vec![
            (NoticeKind::SlaWarningChat, "42", now, t1),
            (NoticeKind::SlaWarningChannel, d.to_string().as_str(), now, t1)
        ]
    );
    assert_eq!(s.pending_notices().await.unwrap(), pending + 2);
    assert_eq!(s.escalate(t1, FirstResponseWarning, notices.clone(), at(12, 5, 0)).await.unwrap(), None);
    assert_eq!(s.pending_notices().await.unwrap(), pending + 2, "the second claim writes nothing");
    assert_eq!(s.notices_of_detail(latest).await.unwrap().len(), 2);
    assert_eq!(crossings(10).await, vec![(t3, ResolutionWarning), (t1, FirstResponseBreach)]);
    // A silent claim (no notices).
    assert_eq!(s.escalate(t3, ResolutionWarning, vec![], now).await.unwrap(), Some(vec![]));
    assert_eq!(crossings(10).await, vec![(t1, FirstResponseBreach)]);
    let r = s.escalate(t1 + 1000, FirstResponseBreach, notices.clone(), now).await;
    assert!(matches!(r, Err(RepoError::NotFound)), "{r:?}");
    // Concurrent claims of one threshold: one wins.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, notices) = (s.clone(), notices.clone());
        tasks.push(tokio::spawn(async move { s.escalate(t1, FirstResponseBreach, notices, now).await.unwrap() }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(won, 1);
    assert_eq!(s.pending_notices().await.unwrap(), pending + 4);
    assert!(crossings(10).await.is_empty());
    // Later, the resolution's thresholds of a clock running again; none
    // of a clock stopped meanwhile.
    let later = at(16, 30, 0);
    let in_late = s.sla_crossings(later, 10).await.unwrap();
    assert_eq!(
        in_late.iter().map(|(t, th)| (t.id, *th)).collect::<Vec<_>>(),
        vec![(t1, ResolutionWarning), (t1, ResolutionBreach)]
    );
    let current = TicketFields::of(&s.find_ticket(t1).await.unwrap().unwrap());
    let update = TicketUpdate {
        ticket_id: t1,
        expected: current,
        new: TicketFields { status: TicketStatus::Pending, ..current },
        events: vec![],
        notices: vec![],
        webhook_events: vec![],
        now: at(14, 0, 0),
        sla: Some(SlaClock { paused_since: Some(at(14, 0, 0)), ..unanswered }),
    };
    s.update_ticket(update).await.unwrap();
    assert!(s.sla_crossings(later, 10).await.unwrap().is_empty(), "a stopped clock crosses nothing");
    assert_eq!(clock_of(&*s, t2).await, Some(stopped));
}

pub async fn sla_setup_round_trip<S: Store>(s: Arc<S>) {
    let setup = s.sla_setup().await.unwrap();
    assert_eq!((setup.policies.len(), setup.department_calendars.len()), (0, 0));
    assert_eq!(setup.calendars.len(), 1, "the default calendar, as the store starts");
    let general = setup.calendars[0].clone();
    assert_eq!((general.name.as_str(), general.zone.name()), (DEFAULT_CALENDAR, DEFAULT_ZONE));
    assert_eq!((general.hours.clone(), general.holidays.len()), (WeeklyHours::parse(DEFAULT_HOURS).unwrap(), 0));

    let ventas =
        NewCalendar { name: "ventas".into(), zone: "America/New_York".into(), hours: "lun-vie 09:00-17:00".into() };
    let v = s.save_calendar(ventas.clone()).await.unwrap();
    assert_ne!(v, general.id);
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    s.set_holiday(v, day(2025, 12, 25), true).await.unwrap();
    s.set_holiday(v, day(2025, 12, 25), true).await.unwrap();
    s.set_holiday(v, day(2026, 1, 1), true).await.unwrap();
    s.set_holiday(general.id, day(2025, 9, 15), true).await.unwrap();
    let saturdays = NewCalendar { hours: "lun-vie 09:00-17:00; sab 09:00-12:00".into(), ..ventas.clone() };
    assert_eq!(s.save_calendar(saturdays.clone()).await.unwrap(), v, "replaced by name");
    s.set_holiday(v, day(2026, 1, 1), false).await.unwrap();
    s.set_holiday(v, day(2026, 1, 2), false).await.unwrap();
    assert!(matches!(s.set_holiday(v + 1000, day(2026, 1, 1), true).await, Err(RepoError::NotFound)));
    let setup = s.sla_setup().await.unwrap();
    let saved = setup.calendar(v).unwrap();
    assert_eq!(
        (saved.name.as_str(), saved.zone.name(), saved.hours.to_string()),
        ("ventas", "America/New_York", WeeklyHours::parse(&saturdays.hours).unwrap().to_string())
    );
    assert_eq!(saved.holidays, [day(2025, 12, 25)].into_iter().collect(), "holidays stay through a save");
    assert_eq!(setup.calendar(general.id).unwrap().holidays, [day(2025, 9, 15)].into_iter().collect());
    let renamed = NewCalendar { name: "Ventas".into(), ..ventas.clone() };
    let other = s.save_calendar(renamed).await.unwrap();
    assert_ne!(other, v, "names are matched exactly");
    assert_eq!(s.save_calendar(NewCalendar { name: DEFAULT_CALENDAR.into(), ..ventas }).await.unwrap(), general.id);

    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let e = s.create_department(NewDepartment { name: "Ventas".into(), synology_channel: None }).await.unwrap().id;
    s.set_department_calendar(d, Some(v)).await.unwrap();
    s.set_department_calendar(e, Some(other)).await.unwrap();
    s.set_department_calendar(e, None).await.unwrap();
    assert!(matches!(s.set_department_calendar(d + 1000, Some(v)).await, Err(RepoError::NotFound)));
    assert!(matches!(s.set_department_calendar(d, Some(v + 1000)).await, Err(RepoError::NotFound)));
    assert_eq!(s.sla_setup().await.unwrap().department_calendars, vec![(d, v)]);

    let policy = |department_id, priority, first, resolution, warning| NewSlaPolicy {
        department_id,
        priority,
        first_response_mins: first,
        resolution_mins: resolution,
        warning_pct: warning,
    };
    let default = s.save_policy(policy(None, Priority::Normal, 120, 960, Some(80))).await.unwrap();
    assert_eq!(
        (
            default.department_id,
            default.priority,
            default.first_response_mins,
            default.resolution_mins,
            default.warning_pct
        ),
        (None, Priority::Normal, 120, 960, Some(80))
    );
    let own = s.save_policy(policy(Some(d), Priority::Normal, 60, 480, None)).await.unwrap();
    let urgent = s.save_policy(policy(None, Priority::Urgent, 15, 240, Some(50))).await.unwrap();
    assert!(default.id != own.id && own.id != urgent.id && default.id != urgent.id);
    let replaced = s.save_policy(policy(None, Priority::Normal, 90, 900, None)).await.unwrap();
    assert_eq!(replaced, SlaPolicy { first_response_mins: 90, resolution_mins: 900, warning_pct: None, ..default });
    let r = s.save_policy(policy(Some(d + 1000), Priority::Normal, 1, 2, None)).await;
    assert!(matches!(r, Err(RepoError::MissingReference(_))), "{r:?}");
    // One policy per (department, priority), whoever saves it at once.
    let mut tasks = Vec::new();
    for minutes in 1..=4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.save_policy(policy(Some(d), Priority::High, minutes, 100, None)).await.unwrap().id
        }));
    }
    let mut high = BTreeSet::new();
    for t in tasks {
        high.insert(t.await.unwrap());
    }
    assert_eq!(high.len(), 1, "one policy for (department, alta)");
    let setup = s.sla_setup().await.unwrap();
    let stored: Vec<(Option<i64>, Priority)> = setup.policies.iter().map(|p| (p.department_id, p.priority)).collect();
    assert_eq!(
        stored,
        vec![
            (None, Priority::Normal),
            (Some(d), Priority::Normal),
            (None, Priority::Urgent),
            (Some(d), Priority::High)
        ]
    );
    assert_eq!(setup.policies[0], replaced);
    let t = setup.terms(d, Priority::Normal).unwrap();
    assert_eq!((t.policy.id, t.calendar.id), (own.id, v));
    let t = setup.terms(e, Priority::Normal).unwrap();
    assert_eq!((t.policy.id, t.calendar.id), (replaced.id, general.id));
    assert!(setup.terms(e, Priority::Low).is_none());

    assert!(s.remove_policy(own.id).await.unwrap());
    assert!(!s.remove_policy(own.id).await.unwrap(), "gone already");
    let setup = s.sla_setup().await.unwrap();
    assert_eq!(setup.policies.len(), 3);
    assert_eq!(setup.terms(d, Priority::Normal).unwrap().policy.id, replaced.id, "the default again");
    let again = s.save_policy(policy(Some(d), Priority::Normal, 30, 300, None)).await.unwrap();
    assert_ne!(again.id, own.id, "a new policy");
}

pub async fn users_stop_and_start_taking_tickets<S: Store>(s: Arc<S>) {
    let d = s.create_department(NewDepartment { name: "Soporte".into(), synology_channel: None }).await.unwrap().id;
    let a = s.create_user(sample_user("ana", "ana@example.test", Some(d))).await.unwrap().id;
    let taking = |s: Arc<S>| async move {
        let user = s.find_user(a).await.unwrap().unwrap().can_take_tickets;
        let loads = s.operator_loads(d).await.unwrap().len();
        (user, loads)
    };
    assert_eq!(taking(s.clone()).await, (true, 1));
    s.set_takes_tickets(a, false).await.unwrap();
    assert_eq!(taking(s.clone()).await, (false, 0));
    s.set_takes_tickets(a, false).await.unwrap();
    assert_eq!(taking(s.clone()).await, (false, 0), "idempotent");
    s.set_takes_tickets(a, true).await.unwrap();
    assert_eq!(taking(s.clone()).await, (true, 1));
    assert!(matches!(s.set_takes_tickets(a + 1000, true).await, Err(RepoError::NotFound)));
}

pub async fn presence_is_one_row_per_operator_and_ticket_and_expires<S: Store>(s: Arc<S>) {
    let ana = s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    let bea = s.create_user(sample_user("bea", "bea@example.test", None)).await.unwrap();
    s.mark_presence(7, bea.id, false, at(9, 0, 0)).await.unwrap();
    s.mark_presence(7, ana.id, false, at(9, 0, 10)).await.unwrap();
    s.mark_presence(7, ana.id, true, at(9, 0, 20)).await.unwrap();
    s.mark_presence(8, ana.id, false, at(9, 0, 5)).await.unwrap();
    let seen = |t: i64, u: &InternalUser, answering: bool, h: u32, m: u32, sec: u32| Presence {
        ticket_id: t,
        user_id: u.id,
        name: u.name.clone(),
        answering,
        seen_at: at(h, m, sec),
    };
    assert_eq!(
        s.presence_on(&[7, 8, 9], at(9, 0, 0)).await.unwrap(),
        vec![seen(7, &ana, true, 9, 0, 20), seen(7, &bea, false, 9, 0, 0), seen(8, &ana, false, 9, 0, 5)],
        "one row per ticket and user, the last call's; by ticket, then name"
    );
    assert_eq!(s.presence_on(&[7], at(9, 0, 1)).await.unwrap(), vec![seen(7, &ana, true, 9, 0, 20)], "since");
    assert_eq!(s.presence_on(&[], at(9, 0, 0)).await.unwrap(), vec![]);
    assert_eq!(s.answering_since(at(9, 0, 0)).await.unwrap(), vec![(7, ana.id)]);
    s.mark_presence(6, bea.id, true, at(9, 0, 30)).await.unwrap();
    assert_eq!(s.answering_since(at(9, 0, 21)).await.unwrap(), vec![(6, bea.id)], "since, by ticket");
    assert_eq!(s.answering_since(at(9, 0, 0)).await.unwrap(), vec![(6, bea.id), (7, ana.id)]);
    assert_eq!(s.forget_presence(at(9, 0, 10)).await.unwrap(), 2);
    s.mark_presence(6, bea.id, false, at(9, 0, 30)).await.unwrap();
    assert_eq!(s.answering_since(at(9, 0, 0)).await.unwrap(), vec![(7, ana.id)], "no longer answering");
    assert_eq!(s.presence_on(&[7, 8], at(8, 0, 0)).await.unwrap(), vec![seen(7, &ana, true, 9, 0, 20)]);
}

pub async fn console_sessions_are_touched_forward_and_end_once<S: Store>(s: Arc<S>) {
    let u = s.create_user(sample_user("ana", "ana@example.test", None)).await.unwrap();
    let session = ConsoleSession {
        id_hash: "a".repeat(64),
        user_id: u.id,
        csrf: "c".repeat(43),
        created_at: at(9, 0, 0),
        last_seen_at: at(9, 0, 0),
        ended_at: None,
    };
    s.create_console_session(session.clone()).await.unwrap();
    assert_duplicate(s.create_console_session(session.clone()).await, "id");
    let orphan = ConsoleSession { id_hash: "b".repeat(64), user_id: u.id + 1000, ..session.clone() };
    assert!(matches!(s.create_console_session(orphan).await, Err(RepoError::MissingReference(_))));
    assert_eq!(s.find_console_session(&session.id_hash).await.unwrap(), Some(session.clone()));
    assert_eq!(s.find_console_session(&"b".repeat(64)).await.unwrap(), None);

    s.touch_console_session(&session.id_hash, at(9, 10, 0)).await.unwrap();
    s.touch_console_session(&session.id_hash, at(9, 5, 0)).await.unwrap();
    let found = s.find_console_session(&session.id_hash).await.unwrap().unwrap();
    assert_eq!(found.last_seen_at, at(9, 10, 0), "a late touch never moves it back");

    assert!(s.end_console_session(&session.id_hash, at(9, 20, 0)).await.unwrap());
    assert!(!s.end_console_session(&session.id_hash, at(9, 30, 0)).await.unwrap(), "ended once");
    assert!(!s.end_console_session(&"b".repeat(64), at(9, 30, 0)).await.unwrap());
    let found = s.find_console_session(&session.id_hash).await.unwrap().unwrap();
    assert_eq!(found.ended_at, Some(at(9, 20, 0)));
}
