//! SSO: `SSO/access`, `SSO/refreshUserToken`, `SSO/password/forgot`,
//! `SSO/password/reset`.

use std::sync::LazyLock;

use actix_web::{HttpRequest, HttpResponse, web};
use helpdesk_domain::model::{Endpoint, InternalUser};
use helpdesk_domain::ports::Adapters;
use helpdesk_domain::services::{Credentials, LoginRequest, LoginSuccess, SsoError};
use regex::Regex;
use serde::Serialize;

use crate::AppState;
use crate::call::{Accept, client_ip, guarded, opt_int, opt_string};
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::validation::{Field, Rule, field, validate};

/// `^\d+$` with `\d` meaning ASCII digits, as in PHP's PCRE without `u`.
static PIN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[0-9]+$").expect("valid regex"));

fn access_rules() -> Vec<Field> {
    vec![
        field("product", vec![Rule::Required, Rule::String, Rule::Max(100)]),
        field("user", vec![Rule::String, Rule::Max(191)]),
        field("password", vec![Rule::RequiredIf("modo", "normal"), Rule::String, Rule::Max(191)]),
        // The documented example sends `pin: "zhartkghc"` with `modo: normal`:
        // PIN fields are checked only in PIN mode, so that example works.
        field(
            "pin",
            vec![Rule::ExcludeUnless("modo", "pin"), Rule::Required, Rule::Regex(&PIN), Rule::Min(4), Rule::Max(12)],
        ),
        field("id_device", vec![Rule::ExcludeUnless("modo", "pin"), Rule::Required, Rule::Integer, Rule::Min(1)]),
        field("usuario", vec![Rule::Required, Rule::String, Rule::Max(191)]),
        field("modo", vec![Rule::Required, Rule::String, Rule::In(&["normal", "pin"])]),
    ]
}

fn refresh_rules() -> Vec<Field> {
    vec![field("product", vec![Rule::Required, Rule::String, Rule::Max(100)])]
}

fn forgot_rules() -> Vec<Field> {
    vec![
        field("product", vec![Rule::Required, Rule::String, Rule::Max(100)]),
        field("email", vec![Rule::Required, Rule::Email, Rule::Max(191)]),
    ]
}

fn reset_rules() -> Vec<Field> {
    vec![
        field("product", vec![Rule::Required, Rule::String, Rule::Max(100)]),
        field("id", vec![Rule::Required, Rule::Max(1000)]),
        field("token", vec![Rule::Required, Rule::String, Rule::Max(255)]),
        field("password", vec![Rule::Required, Rule::String, Rule::Max(191), Rule::Confirmed]),
        field("password_confirmation", vec![Rule::Required, Rule::String, Rule::Max(191)]),
    ]
}

/// The documented login answer (`authenticated` only for `SSO/access`).
#[derive(Debug, Serialize)]
struct LoggedIn {
    #[serde(skip_serializing_if = "Option::is_none")]
    authenticated: Option<bool>,
    id: i64,
    code: String,
    name: String,
    email: String,
    phone: String,
    token: String,
}

impl LoggedIn {
    fn new(ok: LoginSuccess, authenticated: Option<bool>) -> Self {
        let LoginSuccess { user, token } = ok;
        let InternalUser { id, code, name, email, mobile, .. } = user;
        LoggedIn { authenticated, id, code, name, email, phone: mobile, token }
    }
}

fn text(bag: &serde_json::Map<String, serde_json::Value>, key: &str) -> String {
    match bag.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

pub async fn access<A: Adapters>(state: web::Data<AppState<A>>, req: HttpRequest) -> HttpResponse {
    let st = state.clone();
    let ip = client_ip(&req);
    guarded(&state, &req, Endpoint::SsoAccess, Accept::Json, |_consumer, bag| async move {
        validate(&bag, &access_rules(), &[]).map_err(ApiError::Validation)?;
        let credentials = match opt_string(&bag, "modo").as_deref() {
            Some("pin") => Credentials::Pin {
                pin: text(&bag, "pin"),
                device_id: opt_int(&bag, "id_device").ok_or_else(|| ApiError::BadRequest("id_device".into()))?,
            },
            _ => Credentials::Password(text(&bag, "password")),
        };
        let request = LoginRequest {
            product: text(&bag, "product"),
            login: opt_string(&bag, "usuario").unwrap_or_default(),
            credentials,
            client_ip: ip,
        };
        let ok = st.sso.login(request).await?;
        Reply::ok(LoggedIn::new(ok, Some(true)), "Usuario logueado.")
    })
    .await
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string()).filter(|t| !t.is_empty())
}

pub async fn refresh<A: Adapters>(state: web::Data<AppState<A>>, req: HttpRequest) -> HttpResponse {
    let st = state.clone();
    let token = bearer(&req);
    guarded(&state, &req, Endpoint::SsoRefreshUserToken, Accept::Json, |_consumer, bag| async move {
        validate(&bag, &refresh_rules(), &[]).map_err(ApiError::Validation)?;
        let token = token.ok_or(SsoError::InvalidToken)?;
        let ok = st.sso.refresh(&token, &text(&bag, "product")).await?;
        Reply::ok(LoggedIn::new(ok, None), "Usuario logueado.")
    })
    .await
}

/// The same answer whether or not the address belongs to a user; the work
/// (and the e-mail) happens after the answer, so timing tells nothing either.
pub async fn forgot<A: Adapters>(state: web::Data<AppState<A>>, req: HttpRequest) -> HttpResponse {
    let st = state.clone();
    guarded(&state, &req, Endpoint::SsoPasswordForgot, Accept::Json, |_consumer, bag| async move {
        validate(&bag, &forgot_rules(), &[]).map_err(ApiError::Validation)?;
        let email = text(&bag, "email");
        let product = st.sso.product(&text(&bag, "product")).await?;
        let sso = st.sso.clone();
        let mailer = st.mailer.clone();
        tokio::spawn(async move {
            if let Err(e) = sso.forgot(mailer.as_ref(), &product, &email).await {
                tracing::error!(error = %e, "password reset e-mail not sent");
            }
        });
        Reply::ok(
            serde_json::Value::Null,
            "Si el correo pertenece a un usuario registrado, recibirá un enlace para restablecer la contraseña.",
        )
    })
    .await
}

pub async fn reset<A: Adapters>(state: web::Data<AppState<A>>, req: HttpRequest) -> HttpResponse {
    let st = state.clone();
    guarded(&state, &req, Endpoint::SsoPasswordReset, Accept::Json, |_consumer, bag| async move {
        validate(&bag, &reset_rules(), &[]).map_err(ApiError::Validation)?;
        st.sso.reset(&text(&bag, "product"), &text(&bag, "id"), &text(&bag, "token"), &text(&bag, "password")).await?;
        Reply::ok(serde_json::Value::Null, "Contraseña restablecida correctamente.")
    })
    .await
}
