//! ADI: `SSO/ADI/setToken`, `SSO/ADI/generateToken`, `SSO/ADI/Token`.

use actix_web::web;
use helpdesk_domain::model::{Endpoint, Status};
use helpdesk_domain::ports::Adapters;
use helpdesk_domain::services::AdiError;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::AppState;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::extract::{ApiRequest, Valid, de};
use crate::messages;
use crate::validation::{Field, Rule, field};

fn system_rule() -> Field {
    field("sistema", vec![Rule::Required, Rule::String, Rule::Max(100)])
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"sistema": "factura_profesional", "estado": "activo", "update_token": "S"}))]
pub struct SetTokenRequest {
    #[serde(deserialize_with = "de::trimmed_text")]
    sistema: String,
    /// `activo` or `inactivo`
    #[serde(default, deserialize_with = "de::trimmed")]
    estado: Option<String>,
    /// `S` or `N`
    #[serde(default, deserialize_with = "de::trimmed")]
    update_token: Option<String>,
}

impl ApiRequest for SetTokenRequest {
    const ENDPOINT: Endpoint = Endpoint::AdiSetToken;

    fn rules() -> Vec<Field> {
        vec![
            system_rule(),
            field("estado", vec![Rule::String, Rule::In(&["activo", "inactivo"])]),
            field("update_token", vec![Rule::String, Rule::In(&["S", "N"])]),
        ]
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"username": "dnunez", "email": "dnunez@cyberfuel.com", "sistema": "factura_profesional", "token": "activo"}))]
pub struct GenerateTokenRequest {
    #[serde(deserialize_with = "de::trimmed_text")]
    username: String,
    #[serde(deserialize_with = "de::trimmed_text")]
    email: String,
    #[serde(deserialize_with = "de::trimmed_text")]
    sistema: String,
    #[serde(deserialize_with = "de::trimmed_text")]
    token: String,
}

impl ApiRequest for GenerateTokenRequest {
    const ENDPOINT: Endpoint = Endpoint::AdiGenerateToken;

    fn rules() -> Vec<Field> {
        vec![
            field("username", vec![Rule::Required, Rule::String, Rule::Max(100)]),
            field("email", vec![Rule::Required, Rule::Email, Rule::Max(191)]),
            system_rule(),
            field("token", vec![Rule::Required, Rule::String, Rule::Max(255)]),
        ]
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"token": "<base64 generado>"}))]
pub struct RedeemRequest {
    #[serde(default, deserialize_with = "de::trimmed")]
    token: Option<String>,
}

impl ApiRequest for RedeemRequest {
    const ENDPOINT: Endpoint = Endpoint::AdiToken;

    fn rules() -> Vec<Field> {
        vec![field("token", vec![Rule::String, Rule::Max(4096)])]
    }
}

pub async fn set_token<A: Adapters>(
    st: web::Data<AppState<A>>,
    q: Valid<SetTokenRequest, A>,
) -> Result<Reply, ApiError> {
    let SetTokenRequest { sistema, estado, update_token } = q.input;
    let status = estado.and_then(|s| Status::parse(&s));
    let rotate = update_token.as_deref() == Some("S");
    let reg = st.adi.set_system(&sistema, status, rotate).await?;
    let message = match (reg.created, &reg.token) {
        (true, _) => messages::SYSTEM_CREATED,
        (false, Some(_)) => messages::SYSTEM_TOKEN_ROTATED,
        (false, None) => messages::SYSTEM_UPDATED,
    };
    Reply::ok(json!({ "alias_sistema": reg.system.alias, "message": message, "token_generado": reg.token }), message)
}

pub async fn generate_token<A: Adapters>(
    st: web::Data<AppState<A>>,
    q: Valid<GenerateTokenRequest, A>,
) -> Result<Reply, ApiError> {
    let GenerateTokenRequest { username, email, sistema, token } = q.input;
    let ticket = st.adi.generate_ticket(&sistema, &token, &username, &email).await?;
    let message = messages::LOGIN_TICKET_ISSUED;
    Reply::ok(json!({ "base64_encoded": ticket, "message": message }), message)
}

pub async fn token<A: Adapters>(st: web::Data<AppState<A>>, q: Valid<RedeemRequest, A>) -> Result<Reply, ApiError> {
    let ticket = q.input.token.ok_or(AdiError::InvalidTicket)?;
    let login = st.adi.redeem(&ticket).await?;
    let message = messages::LOGIN_TICKET_REDEEMED;
    Reply::ok(
        json!({
            "authenticated": true,
            "username": login.user.login,
            "email": login.user.email,
            "sistema": login.system.alias,
            "message": message,
        }),
        message,
    )
}
