//! SSO: `SSO/access`, `SSO/refreshUserToken`, `SSO/password/forgot|reset`.

use std::sync::Arc;
use std::time::Duration;

use helpdesk_domain::model::{Endpoint, MailContent, UserStatus};
use helpdesk_domain::ports::UserRepository;
use helpdesk_notify_smtp::testing::parse;
use serde_json::{Value, json};

use crate::helpers::*;

const PASSWORD: &str = "Clave-Segura-2026";
const SSO: &[Endpoint] =
    &[Endpoint::SsoAccess, Endpoint::SsoRefreshUserToken, Endpoint::SsoPasswordForgot, Endpoint::SsoPasswordReset];

struct Sso {
    app: TestApp,
    secret: String,
    user_id: i64,
}

async fn setup(app: TestApp) -> Sso {
    app.product("mesa").await;
    app.product("portal").await;
    let user_id = app.user("pgarcia", "pgarcia@ejemplo.test", PASSWORD).await;
    let secret = app.consumer("sso", SSO).await;
    Sso { app, secret, user_id }
}

impl Sso {
    async fn login(&self, body: Value) -> (u16, Value) {
        json(self.app.post("SSO/access", ("sso", &self.secret), &body).await).await
    }

    async fn password(&self, usuario: &str, password: &str) -> (u16, Value) {
        self.login(json!({"product": "mesa", "usuario": usuario, "password": password, "modo": "normal"})).await
    }

    async fn refresh_json(&self, token: &str, product: &str) -> (u16, Value) {
        // As Guzzle sends it: a GET with a JSON body.
        let res = self
            .app
            .client
            .get(format!("{}/api/SSO/refreshUserToken", self.app.address))
            .header("X-User-Consumo", "sso")
            .header("X-User-Secret", &self.secret)
            .bearer_auth(token)
            .json(&json!({"product": product, "id_bitacora_log": "123456"}))
            .send()
            .await
            .unwrap();
        json(res).await
    }
}

fn without_id(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("id_bitacora_log");
    v
}

async fn password_login_answers_the_documented_shape(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    // The documented example's body, with our user and product.
    let (status, body) = s
        .login(json!({
            "product": "mesa", "user": "et", "password": PASSWORD, "pin": "zhartkghc", "id_device": 82,
            "id_bitacora_log": "123456", "usuario": "pgarcia", "modo": "normal"
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), ["data", "status", "message", "code", "id_bitacora_log"]);
    assert_eq!(keys(&body["data"]), ["authenticated", "id", "code", "name", "email", "phone", "token"]);
    assert_eq!(body["data"]["authenticated"], true);
    assert_eq!(body["data"]["id"], s.user_id);
    assert_eq!(body["data"]["email"], "pgarcia@ejemplo.test");
    assert_eq!(body["data"]["phone"], "+506.70000000");
    assert!(body["data"]["token"].as_str().unwrap().len() > 40);
    assert_eq!((body["message"].as_str(), body["code"].as_i64()), (Some("Usuario logueado."), Some(200)));
    assert!(body["id_bitacora_log"].is_string(), "a string for SSO/access: {body}");
    // By e-mail too, any case.
    let (status, _) = s.password("PGarcia@Ejemplo.test", PASSWORD).await;
    assert_eq!(status, 200);
    let user = s.app.db.find_user(s.user_id).await.unwrap().unwrap();
    assert_eq!(user.ip_address.as_deref(), Some("127.0.0.1"));
    assert!(user.last_access.is_some());
}

async fn wrong_password_unknown_and_inactive_users_look_the_same(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let (status, wrong) = s.password("pgarcia", "Otra-Clave-1").await;
    assert_eq!(status, 401, "{wrong}");
    assert_eq!(wrong["data"], json!({"authenticated": false}));
    assert_eq!(wrong["status"], "error");
    assert!(wrong["id_bitacora_log"].is_string());
    let (status, unknown) = s.password("nadie", PASSWORD).await;
    assert_eq!(status, 401);
    assert_eq!(without_id(unknown), without_id(wrong.clone()));
    s.app.db.set_user_status(s.user_id, UserStatus::Inactive).await.unwrap();
    let (status, inactive) = s.password("pgarcia", PASSWORD).await;
    assert_eq!(status, 401);
    assert_eq!(without_id(inactive), without_id(wrong));
}

async fn pins_work_only_on_their_device(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let device = s.app.device(s.user_id, "482193").await;
    let other_user = s.app.user("lrojas", "lrojas@ejemplo.test", PASSWORD).await;
    let other_device = s.app.device(other_user, "482193").await;
    let pin = |pin: &str, device: i64| json!({"product": "mesa", "usuario": "pgarcia", "pin": pin, "id_device": device, "modo": "pin"});
    let (status, body) = s.login(pin("482193", device)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["authenticated"], true);
    let (status, _) = s.login(pin("482194", device)).await;
    assert_eq!(status, 401, "wrong PIN");
    let (status, _) = s.login(pin("482193", other_device)).await;
    assert_eq!(status, 401, "the PIN on someone else's device");
    let (status, _) = s.login(pin("482193", device + 1000)).await;
    assert_eq!(status, 401, "unknown device");
    let (status, body) = s.login(pin("12a", device)).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"]["pin"],
        json!(["The pin field format is invalid.", "The pin field must be at least 4 characters."])
    );
    let (status, body) = s.login(json!({"product": "mesa", "usuario": "pgarcia", "modo": "pin"})).await;
    assert_eq!(status, 422);
    assert_eq!(body["message"], "The pin field is required. (and 1 more error)");
    assert_eq!(body["errors"]["id_device"], json!(["The id device field is required."]));
}

async fn unknown_modo_and_product_speak_laravel(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let (status, body) =
        s.login(json!({"product": "mesa", "usuario": "pgarcia", "password": PASSWORD, "modo": "huella"})).await;
    assert_eq!(
        (status, body),
        (
            422,
            json!({"message": "The selected modo is invalid.", "errors": {"modo": ["The selected modo is invalid."]}})
        )
    );
    let (status, body) =
        s.login(json!({"product": "dolores", "usuario": "pgarcia", "password": PASSWORD, "modo": "normal"})).await;
    assert_eq!(
        (status, body),
        (
            422,
            json!({"message": "The selected product is invalid.", "errors": {"product": ["The selected product is invalid."]}})
        )
    );
    let (status, body) = s.login(json!({})).await;
    assert_eq!(status, 422);
    assert_eq!(body["message"], "The product field is required. (and 2 more errors)");
}

async fn failures_throttle_to_429_and_back(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    for _ in 0..5 {
        assert_eq!(s.password("pgarcia", "Mala-clave-1").await.0, 401);
    }
    let res = s
        .app
        .post(
            "SSO/access",
            ("sso", &s.secret),
            &json!({"product": "mesa", "usuario": "pgarcia", "password": PASSWORD, "modo": "normal"}),
        )
        .await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "900");
    let (_, body) = json(res).await;
    assert_eq!(body["code"], 429);
    assert!(body["message"].as_str().unwrap().contains("15 minuto"), "{body}");
    // A PIN is throttled harder, on its own counter: 3 failures.
    let device = s.app.device(s.user_id, "482193").await;
    let pin = |p: &str| json!({"product": "mesa", "usuario": "pgarcia", "pin": p, "id_device": device, "modo": "pin"});
    for _ in 0..3 {
        assert_eq!(s.login(pin("000000")).await.0, 401);
    }
    assert_eq!(s.login(pin("482193")).await.0, 429);
    // Time passes (an injected clock, no sleeping): the password path opens.
    s.app.clock.advance(chrono::Duration::minutes(15));
    assert_eq!(s.password("pgarcia", PASSWORD).await.0, 200);
    assert_eq!(s.login(pin("482193")).await.0, 429, "the PIN lock lasts 30 minutes");
    s.app.clock.advance(chrono::Duration::minutes(15));
    assert_eq!(s.login(pin("482193")).await.0, 200);
}

/// Guesses sent all at once are counted before any is verified: no more are
/// checked than the limits allow, whatever the concurrency.
async fn parallel_guesses_are_refused_before_they_are_verified(backend: Backend) {
    let s = std::sync::Arc::new(setup(spawn_app(backend).await).await);
    let statuses = |bodies: Vec<Value>| {
        let s = s.clone();
        async move {
            let sent: Vec<_> = bodies
                .into_iter()
                .map(|body| {
                    let s = s.clone();
                    tokio::spawn(async move { s.login(body).await.0 })
                })
                .collect();
            let mut counts = std::collections::BTreeMap::new();
            for t in sent {
                *counts.entry(t.await.unwrap()).or_insert(0) += 1;
            }
            counts
        }
    };
    let wrong =
        |n: usize| json!({"product": "mesa", "usuario": "pgarcia", "password": format!("Mala-{n}"), "modo": "normal"});
    let counts = statuses((0..300).map(wrong).collect()).await;
    assert_eq!(counts, [(401, 5), (429, 295)].into_iter().collect(), "five verified, the rest refused");

    // 200 wrong PINs at once: three checked, the rest refused unchecked, and
    // the right PIN after them finds the lock. (The right PIN inside the
    // flood made this race-dependent: a success settles the throttle, so
    // when it was among the first checked, three more wrong ones were.)
    let device = s.app.device(s.user_id, "482193").await;
    let pin =
        |pin: String| json!({"product": "mesa", "usuario": "pgarcia", "pin": pin, "id_device": device, "modo": "pin"});
    let counts = statuses((0..200).map(|n| pin(format!("{:06}", n))).collect()).await;
    assert_eq!(counts, [(401, 3), (429, 197)].into_iter().collect(), "three checked, the rest refused");
    assert_eq!(s.login(pin("482193".into())).await.0, 429, "locked: the right PIN is not checked either");
}

/// Products are enforced: an inactive one is as unknown, a restricted one
/// admits only the users granted it, for logins and refreshes alike.
async fn products_admit_only_their_users(backend: Backend) {
    use helpdesk_domain::model::{ProductAccess, ProductChange, Status};
    use helpdesk_domain::ports::ProductRepository;
    let s = setup(spawn_app(backend).await).await;
    let (_, body) = s.password("pgarcia", PASSWORD).await;
    let token = body["data"]["token"].as_str().unwrap().to_string();
    let restricted = ProductChange { access: Some(ProductAccess::Granted), ..Default::default() };
    let portal = s.app.db.update_product("portal", restricted.clone()).await.unwrap();
    let login =
        |product: &str| json!({"product": product, "usuario": "pgarcia", "password": PASSWORD, "modo": "normal"});
    let (status, body) = s.login(login("portal")).await;
    assert_eq!((status, body["status"].as_str()), (403, Some("error")), "{body}");
    assert_eq!(s.refresh_json(&token, "portal").await.0, 403, "no refresh into it either");
    s.app.db.set_product_grant(s.user_id, portal.id, true).await.unwrap();
    let (status, body) = s.login(login("portal")).await;
    assert_eq!(status, 200, "{body}");
    s.app
        .db
        .update_product("mesa", ProductChange { status: Some(Status::Inactive), ..Default::default() })
        .await
        .unwrap();
    let (status, body) = s.login(login("mesa")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"]["product"][0], "The selected product is invalid.");
    let forgot = json!({"product": "mesa", "email": "pgarcia@ejemplo.test"});
    let (status, _) = json(s.app.post("SSO/password/forgot", ("sso", &s.secret), &forgot).await).await;
    assert_eq!(status, 422, "an inactive product sends no link");
}

async fn refresh_rotates_and_refuses_dead_tokens(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let (_, body) = s.password("pgarcia", PASSWORD).await;
    let first = body["data"]["token"].as_str().unwrap().to_string();
    let (status, body) = s.refresh_json(&first, "mesa").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body["data"]), ["id", "code", "name", "email", "phone", "token"]);
    assert_eq!(body["message"], "Usuario logueado.");
    assert!(body["id_bitacora_log"].is_string());
    let second = body["data"]["token"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    let (status, body) = s.refresh_json(&first, "mesa").await;
    assert_eq!((status, body["status"].as_str()), (401, Some("error")), "the old token is dead: {body}");
    // Replaying it ended the whole chain: the token it was exchanged for is dead too.
    assert_eq!(s.refresh_json(&second, "mesa").await.0, 401, "the chain ended with the replay");
    let (_, body) = s.password("pgarcia", PASSWORD).await;
    let second = body["data"]["token"].as_str().unwrap().to_string();
    // As browsers' fetch sends it: fields in the query string, no body.
    let res = s
        .app
        .client
        .get(format!("{}/api/SSO/refreshUserToken?product=mesa&id_bitacora_log=7", s.app.address))
        .header("X-User-Consumo", "sso")
        .header("X-User-Secret", &s.secret)
        .header("Authorization", format!("Bearer {second}"))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 200, "{body}");
    let third = body["data"]["token"].as_str().unwrap().to_string();
    // Single sign-on: refreshing for another product gives that product's token.
    let (status, body) = s.refresh_json(&third, "portal").await;
    assert_eq!(status, 200, "{body}");
    let third = body["data"]["token"].as_str().unwrap().to_string();
    assert_eq!(s.refresh_json(&third, "nada").await.0, 422, "an unknown product");
    assert_eq!(s.refresh_json("no.es.jwt", "mesa").await.0, 401, "malformed");
    let forged = format!("{}x", &third[..third.len() - 1]);
    assert_eq!(s.refresh_json(&forged, "mesa").await.0, 401, "tampered");
    let res = s
        .app
        .client
        .get(format!("{}/api/SSO/refreshUserToken?product=mesa", s.app.address))
        .header("X-User-Consumo", "sso")
        .header("X-User-Secret", &s.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "no bearer");
    s.app.clock.advance(chrono::Duration::hours(8));
    assert_eq!(s.refresh_json(&third, "mesa").await.0, 401, "expired");
}

async fn forgot_answers_the_same_for_known_and_unknown_addresses(backend: Backend) {
    let s = setup(spawn_app(backend).await).await;
    let forgot = |email: &str| json!({"product": "mesa", "email": email});
    let (status, known) =
        json(s.app.post("SSO/password/forgot", ("sso", &s.secret), &forgot("pgarcia@ejemplo.test")).await).await;
    assert_eq!(status, 200);
    let (status, unknown) =
        json(s.app.post("SSO/password/forgot", ("sso", &s.secret), &forgot("nadie@ejemplo.test")).await).await;
    assert_eq!(status, 200);
    assert_eq!(without_id(known), without_id(unknown));
    let (status, body) =
        json(s.app.post("SSO/password/forgot", ("sso", &s.secret), &forgot("no-es-correo")).await).await;
    assert_eq!((status, body["message"].as_str()), (422, Some("The email field must be a valid email address.")));
}

/// The mail adapter swapped for an in-memory fake (`TestApp::builder`):
/// the reset e-mail of a known address reaches it, in the domain's words.
async fn forgot_reaches_a_swapped_in_mailer(backend: Backend) {
    let mailer = Arc::new(RecordingMailer::default());
    let s = setup(TestApp::builder(backend).with_mailer(mailer.clone()).spawn().await).await;
    let forgot = |email: &str| json!({"product": "mesa", "email": email});
    let unknown = s.app.post("SSO/password/forgot", ("sso", &s.secret), &forgot("nadie@ejemplo.test")).await;
    assert_eq!(unknown.status(), 200);
    let known = s.app.post("SSO/password/forgot", ("sso", &s.secret), &forgot("pgarcia@ejemplo.test")).await;
    assert_eq!(known.status(), 200);
    let sent = mailer.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(sent.len(), 1, "the reset e-mail reached the fake: {sent:?}");
    assert_eq!(sent[0].to, "pgarcia@ejemplo.test");
    let MailContent::PasswordReset { name, link, valid_minutes } = &sent[0].content else {
        panic!("a password reset: {:?}", sent[0].content)
    };
    assert_eq!((name.as_str(), *valid_minutes), ("Persona pgarcia", 60));
    assert!(link.starts_with(&format!("{}?id=", s.app.settings.sso.reset_url)), "{link}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(mailer.sent().len(), 1, "nothing for the unknown address");
}

crate::on_both_backends!(
    password_login_answers_the_documented_shape,
    wrong_password_unknown_and_inactive_users_look_the_same,
    pins_work_only_on_their_device,
    unknown_modo_and_product_speak_laravel,
    failures_throttle_to_429_and_back,
    parallel_guesses_are_refused_before_they_are_verified,
    products_admit_only_their_users,
    refresh_rotates_and_refuses_dead_tokens,
    forgot_answers_the_same_for_known_and_unknown_addresses,
    forgot_reaches_a_swapped_in_mailer,
);

/// Whom each e-mail was sent to, in order of arrival.
fn recipients(mails: &[Vec<u8>]) -> Vec<String> {
    mails.iter().map(|raw| parse(raw).to().unwrap().first().unwrap().address().unwrap().to_string()).collect()
}

/// The reset link's `id` and `token`, from the e-mail that arrived.
fn link_of(raw: &[u8]) -> (String, String) {
    let m = parse(raw);
    let text = m.body_text(0).unwrap().to_string();
    let link = text.split_whitespace().find(|w| w.starts_with("http")).unwrap_or_else(|| panic!("no link in {text}"));
    let url = url::Url::parse(link).unwrap();
    let get = |k: &str| url.query_pairs().find(|(n, _)| n == k).unwrap().1.to_string();
    (get("id"), get("token"))
}

async fn the_reset_email_arrives_and_its_link_resets_the_password(backend: Backend) {
    let s = setup(spawn_app_with_smtp(backend).await).await;
    let sink = s.app.smtp.as_ref().unwrap();
    let (_, body) = s.password("pgarcia", PASSWORD).await;
    let old_token = body["data"]["token"].as_str().unwrap().to_string();

    let forgot = json!({"product": "mesa", "email": "pgarcia@ejemplo.test"});
    assert_eq!(s.app.post("SSO/password/forgot", ("sso", &s.secret), &forgot).await.status(), 200);
    let mails = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1, "the reset e-mail arrived");
    let m = parse(&mails[0]);
    assert_eq!(m.to().unwrap().first().unwrap().address(), Some("pgarcia@ejemplo.test"));
    assert_eq!(m.subject(), Some("Restablecer su contraseña"));
    assert!(m.body_html(0).is_some(), "multipart with HTML");
    // A second request within 60 s sends nothing new.
    assert_eq!(s.app.post("SSO/password/forgot", ("sso", &s.secret), &forgot).await.status(), 200);
    // Unknown addresses get nothing.
    let unknown = json!({"product": "mesa", "email": "nadie@ejemplo.test"});
    assert_eq!(s.app.post("SSO/password/forgot", ("sso", &s.secret), &unknown).await.status(), 200);
    // The marker that both were handled (the e-mail is sent after the
    // answer): another user's request, made after them, is the next to arrive.
    s.app.user("marcador", "marcador@ejemplo.test", PASSWORD).await;
    let marker = json!({"product": "mesa", "email": "marcador@ejemplo.test"});
    assert_eq!(s.app.post("SSO/password/forgot", ("sso", &s.secret), &marker).await.status(), 200);
    let arrived = sink.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(recipients(&arrived), ["pgarcia@ejemplo.test", "marcador@ejemplo.test"]);

    let (id, token) = link_of(&mails[0]);
    let reset = |token: &str, pw: &str, confirm: &str| json!({"product": "mesa", "id": id, "token": token, "password": pw, "password_confirmation": confirm});
    let (status, body) = json(
        s.app.post("SSO/password/reset", ("sso", &s.secret), &reset(&token, "Nueva-Clave-77", "Otra-Clave-77")).await,
    )
    .await;
    assert_eq!((status, body["message"].as_str()), (422, Some("The password field confirmation does not match.")));
    let (status, body) =
        json(s.app.post("SSO/password/reset", ("sso", &s.secret), &reset(&token, "corta", "corta")).await).await;
    assert_eq!(status, 422);
    assert!(body["errors"]["password"][0].as_str().unwrap().contains("8 caracteres"), "{body}");
    let (status, body) = json(
        s.app.post("SSO/password/reset", ("sso", &s.secret), &reset("falso", "Nueva-Clave-77", "Nueva-Clave-77")).await,
    )
    .await;
    assert_eq!(status, 422);
    assert!(body["errors"]["token"].is_array());
    let (status, body) = json(
        s.app.post("SSO/password/reset", ("sso", &s.secret), &reset(&token, "Nueva-Clave-77", "Nueva-Clave-77")).await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Contraseña restablecida correctamente.");

    assert_eq!(s.password("pgarcia", PASSWORD).await.0, 401, "the old password is gone");
    assert_eq!(s.password("pgarcia", "Nueva-Clave-77").await.0, 200);
    assert_eq!(s.refresh_json(&old_token, "mesa").await.0, 401, "every old token is revoked");
    let (status, _) = json(
        s.app
            .post("SSO/password/reset", ("sso", &s.secret), &reset(&token, "Tercera-Clave-88", "Tercera-Clave-88"))
            .await,
    )
    .await;
    assert_eq!(status, 422, "a reset token works once");

    // A link older than 60 minutes is refused.
    s.app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(s.app.post("SSO/password/forgot", ("sso", &s.secret), &forgot).await.status(), 200);
    let mails = sink.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(recipients(&mails), ["pgarcia@ejemplo.test", "marcador@ejemplo.test", "pgarcia@ejemplo.test"]);
    let (id2, token2) = link_of(&mails[2]);
    s.app.clock.advance(chrono::Duration::minutes(60));
    let late = json!({"product": "mesa", "id": id2, "token": token2, "password": "Cuarta-Clave-99", "password_confirmation": "Cuarta-Clave-99"});
    let (status, _) = json(s.app.post("SSO/password/reset", ("sso", &s.secret), &late).await).await;
    assert_eq!(status, 422, "expired");
    assert_eq!(sink.messages().len(), 3, "no other e-mail");
}

crate::with_smtp_on_both_backends!(the_reset_email_arrives_and_its_link_resets_the_password);
