//! ADI: `SSO/ADI/setToken`, `SSO/ADI/generateToken`, `SSO/ADI/Token`.

use actix_web::{HttpRequest, HttpResponse, web};
use helpdesk_domain::model::{Endpoint, Status};
use helpdesk_domain::ports::Adapters;
use helpdesk_domain::services::AdiError;
use serde_json::json;

use crate::AppState;
use crate::call::{Accept, guarded, opt_string};
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::validation::{Field, Rule, field, validate};

fn set_rules() -> Vec<Field> {
    vec![
        field("sistema", vec![Rule::Required, Rule::String, Rule::Max(100)]),
        field("estado", vec![Rule::String, Rule::In(&["activo", "inactivo"])]),
        field("update_token", vec![Rule::String, Rule::In(&["S", "N"])]),
    ]
}

fn generate_rules() -> Vec<Field> {
    vec![
        field("username", vec![Rule::Required, Rule::String, Rule::Max(100)]),
        field("email", vec![Rule::Required, Rule::Email, Rule::Max(191)]),
        field("sistema", vec![Rule::Required, Rule::String, Rule::Max(100)]),
        field("token", vec![Rule::Required, Rule::String, Rule::Max(255)]),
    ]
}

fn redeem_rules() -> Vec<Field> {
    vec![field("token", vec![Rule::String, Rule::Max(4096)])]
}

pub async fn set_token<A: Adapters>(state: web::Data<AppState<A>>, req: HttpRequest) -> HttpResponse {
    let st = state.clone();
    guarded(&state, &req, Endpoint::AdiSetToken, Accept::Json, |_consumer, bag| async move {
        validate(&bag, &set_rules(), &[]).map_err(ApiError::Validation)?;
        let alias = opt_string(&bag, "sistema").unwrap_or_default();
        let status = opt_string(&bag, "estado").and_then(|s| Status::parse(&s));
        let rotate = opt_string(&bag, "update_token").as_deref() == Some("S");
        let reg = st.adi.set_system(&alias, status, rotate).await?;
        let message = match (reg.created, &reg.token) {
            (true, _) => "Registro creado correctamente.",
            (false, Some(_)) => "Token actualizado correctamente.",
            (false, None) => "Registro actualizado correctamente.",
        };
        Reply::ok(
            json!({ "alias_sistema": reg.system.alias, "message": message, "token_generado": reg.token }),
            message,
        )
    })
    .await
}

pub async fn generate_token<A: Adapters>(state: web::Data<AppState<A>>, req: HttpRequest) -> HttpResponse {
    let st = state.clone();
    guarded(&state, &req, Endpoint::AdiGenerateToken, Accept::Json, |_consumer, bag| async move {
        validate(&bag, &generate_rules(), &[]).map_err(ApiError::Validation)?;
        let text = |k: &str| opt_string(&bag, k).unwrap_or_default();
        let ticket =
            st.adi.generate_ticket(&text("sistema"), &text("token"), &text("username"), &text("email")).await?;
        let message = "Solicitud de acceso generada.";
        Reply::ok(json!({ "base64_encoded": ticket, "message": message }), message)
    })
    .await
}

pub async fn token<A: Adapters>(state: web::Data<AppState<A>>, req: HttpRequest) -> HttpResponse {
    let st = state.clone();
    guarded(&state, &req, Endpoint::AdiToken, Accept::Json, |_consumer, bag| async move {
        validate(&bag, &redeem_rules(), &[]).map_err(ApiError::Validation)?;
        let ticket = opt_string(&bag, "token").ok_or(AdiError::InvalidTicket)?;
        let login = st.adi.redeem(&ticket).await?;
        let message = "Usuario Autenticado.";
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
    })
    .await
}
