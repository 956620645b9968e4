//! SSO: `SSO/access`, `SSO/refreshUserToken`, `SSO/password/forgot`,
//! `SSO/password/reset`.

use helpdesk_domain::Report;
use std::sync::LazyLock;

use actix_web::{HttpRequest, web};
use helpdesk_domain::model::{Endpoint, InternalUser};
use helpdesk_domain::ports::Adapters;
use helpdesk_domain::services::{Credentials, LoginRequest, LoginSuccess, SsoError};
use regex::Regex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::extract::{ApiRequest, Valid, de};
use crate::messages;
use crate::request::{bearer, client_ip};
use crate::validation::{Field, Rule, field};

/// `^\d+$` with `\d` meaning ASCII digits, as in PHP's PCRE without `u`.
static PIN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[0-9]+$").expect("valid regex"));

fn product_rule() -> Field {
    field("product", vec![Rule::Required, Rule::String, Rule::Max(100)])
}

/// The caller's own bitácora id, echoed as the parent of this request's
/// record (read by the bitácora middleware; no rules).
fn parent_rule() -> Field {
    field("id_bitacora_log", vec![])
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"product": "dolores", "user": "et", "password": "Cyberf4231&459", "pin": "zhartkghc", "id_device": 82, "id_bitacora_log": "123456", "usuario": "dnunez@cyberfuel.com", "modo": "normal"}))]
pub struct AccessRequest {
    #[serde(deserialize_with = "de::text")]
    product: String,
    #[allow(dead_code)] // documented and validated; the use case does not need it
    #[serde(default, deserialize_with = "de::opt_text")]
    user: Option<String>,
    /// required when `modo` is `normal`
    #[serde(default, deserialize_with = "de::opt_text")]
    password: Option<String>,
    /// `modo` `pin` only: 4 to 12 digits
    #[serde(default, deserialize_with = "de::opt_text")]
    pin: Option<String>,
    /// `modo` `pin` only
    #[serde(default, deserialize_with = "de::opt_int")]
    id_device: Option<i64>,
    #[allow(dead_code)] // documented and validated; the use case does not need it
    #[serde(default, deserialize_with = "de::opt_text")]
    id_bitacora_log: Option<String>,
    /// login or e-mail
    #[serde(deserialize_with = "de::text")]
    usuario: String,
    /// `normal` or `pin`
    #[serde(deserialize_with = "de::text")]
    modo: String,
}

impl ApiRequest for AccessRequest {
    const ENDPOINT: Endpoint = Endpoint::SsoAccess;

    fn rules() -> Vec<Field> {
        vec![
            product_rule(),
            field("user", vec![Rule::String, Rule::Max(191)]),
            field("password", vec![Rule::RequiredIf("modo", "normal"), Rule::String, Rule::Max(191)]),
            // The documented example sends `pin: "zhartkghc"` with `modo: normal`:
            // PIN fields are checked only in PIN mode, so that example works.
            field(
                "pin",
                vec![
                    Rule::ExcludeUnless("modo", "pin"),
                    Rule::Required,
                    Rule::Regex(&PIN),
                    Rule::Min(4),
                    Rule::Max(12),
                ],
            ),
            field("id_device", vec![Rule::ExcludeUnless("modo", "pin"), Rule::Required, Rule::Integer, Rule::Min(1)]),
            parent_rule(),
            field("usuario", vec![Rule::Required, Rule::String, Rule::Max(191)]),
            field("modo", vec![Rule::Required, Rule::String, Rule::In(&["normal", "pin"])]),
        ]
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"product": "est", "id_bitacora_log": "123456"}))]
pub struct RefreshRequest {
    #[serde(deserialize_with = "de::text")]
    product: String,
    #[allow(dead_code)] // documented and validated; the use case does not need it
    #[serde(default, deserialize_with = "de::opt_text")]
    id_bitacora_log: Option<String>,
}

impl ApiRequest for RefreshRequest {
    const ENDPOINT: Endpoint = Endpoint::SsoRefreshUserToken;

    fn rules() -> Vec<Field> {
        vec![product_rule(), parent_rule()]
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"product": "evktzdcpbcfbd", "email": "maegan64@example.net"}))]
pub struct ForgotRequest {
    /// max 100 characters
    #[serde(deserialize_with = "de::text")]
    product: String,
    /// an e-mail address, max 191 characters
    #[serde(deserialize_with = "de::text")]
    email: String,
}

impl ApiRequest for ForgotRequest {
    const ENDPOINT: Endpoint = Endpoint::SsoPasswordForgot;

    fn rules() -> Vec<Field> {
        vec![product_rule(), field("email", vec![Rule::Required, Rule::Email, Rule::Max(191)])]
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"product": "jlwnplitvwegmkx", "id": "tnybdlsbjefhjjgzbeab", "token": "oqjtxwdrlmobdv", "password": "}yf,FS<${nB)4s]]S", "password_confirmation": "oucmyx"}))]
pub struct ResetRequest {
    #[serde(deserialize_with = "de::text")]
    product: String,
    #[serde(deserialize_with = "de::text")]
    id: String,
    #[serde(deserialize_with = "de::text")]
    token: String,
    #[serde(deserialize_with = "de::text")]
    password: String,
    #[allow(dead_code)] // documented and validated; the use case does not need it
    #[serde(deserialize_with = "de::text")]
    password_confirmation: String,
}

impl ApiRequest for ResetRequest {
    const ENDPOINT: Endpoint = Endpoint::SsoPasswordReset;

    fn rules() -> Vec<Field> {
        vec![
            product_rule(),
            field("id", vec![Rule::Required, Rule::Max(1000)]),
            field("token", vec![Rule::Required, Rule::String, Rule::Max(255)]),
            field("password", vec![Rule::Required, Rule::String, Rule::Max(191), Rule::Confirmed]),
            field("password_confirmation", vec![Rule::Required, Rule::String, Rule::Max(191)]),
        ]
    }
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

pub async fn access<A: Adapters>(
    st: web::Data<AppState<A>>,
    req: HttpRequest,
    q: Valid<AccessRequest, A>,
) -> Result<Reply, ApiError> {
    let AccessRequest { product, password, pin, id_device, usuario, modo, .. } = q.input;
    let credentials = match modo.trim() {
        "pin" => Credentials::Pin {
            pin: pin.unwrap_or_default(),
            device_id: id_device.ok_or_else(|| ApiError::BadRequest("id_device".into()))?,
        },
        _ => Credentials::Password(password.unwrap_or_default()),
    };
    let request = LoginRequest { product, login: usuario.trim().to_string(), credentials, client_ip: client_ip(&req) };
    let ok = st.sso.login(request).await?;
    Reply::ok(LoggedIn::new(ok, Some(true)), messages::LOGGED_IN)
}

pub async fn refresh<A: Adapters>(
    st: web::Data<AppState<A>>,
    req: HttpRequest,
    q: Valid<RefreshRequest, A>,
) -> Result<Reply, ApiError> {
    let token = bearer(&req).ok_or(SsoError::InvalidToken)?;
    let ok = st.sso.refresh(&token, &q.input.product).await?;
    Reply::ok(LoggedIn::new(ok, None), messages::LOGGED_IN)
}

/// The same answer whether or not the address belongs to a user; the work
/// (and the e-mail) happens after the answer, so timing tells nothing either.
pub async fn forgot<A: Adapters>(st: web::Data<AppState<A>>, q: Valid<ForgotRequest, A>) -> Result<Reply, ApiError> {
    let ForgotRequest { product, email } = q.input;
    let product = st.sso.product(&product).await?;
    let sso = st.sso.clone();
    let mailer = st.mailer.clone();
    st.tasks.spawn(async move {
        if let Err(e) = sso.forgot(mailer.as_ref(), &product, &email).await {
            tracing::error!(error = %Report(&e), "password reset e-mail not sent");
        }
    });
    Reply::ok(serde_json::Value::Null, messages::FORGOT_ACCEPTED)
}

pub async fn reset<A: Adapters>(st: web::Data<AppState<A>>, q: Valid<ResetRequest, A>) -> Result<Reply, ApiError> {
    let ResetRequest { product, id, token, password, .. } = q.input;
    st.sso.reset(&product, &id, &token, &password).await?;
    Reply::ok(serde_json::Value::Null, messages::PASSWORD_RESET)
}
