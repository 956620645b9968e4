//! `POST api/Synology/BotAsistencia/configurarIdUsuario`: the Synology Chat
//! bot's outgoing webhook (form-encoded from Synology, JSON from the
//! documented example). `HEAD` answers Synology's probe.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use helpdesk_domain::model::Endpoint;
use helpdesk_domain::ports::Adapters;
use serde_json::{Value, json};

use crate::AppState;
use crate::call::{Accept, opt_int, opt_string, unguarded};
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::validation::{Field, Rule, field, validate};

/// Retries of a failed reply, in the background: after 1, 2 and 4 seconds.
const REPLY_RETRIES: [u64; 3] = [1, 2, 4];

fn rules() -> Vec<Field> {
    vec![
        field("user_id", vec![Rule::Required, Rule::Integer, Rule::Min(1)]),
        field("username", vec![Rule::Required, Rule::String, Rule::Max(100)]),
        field("thread_id", vec![Rule::Integer]),
        field("timestamp", vec![Rule::Integer]),
        field("text", vec![Rule::String, Rule::Max(10_000)]),
    ]
}

/// Whether the query string carries the token (or any other secret), by
/// normalised name (`token`, `Token`, `token[]`).
fn token_in_query(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| helpdesk_domain::services::is_secret_key(&k))
}

pub async fn probe() -> HttpResponse {
    HttpResponse::Ok().finish()
}

pub async fn configure<A: Adapters>(state: web::Data<AppState<A>>, req: HttpRequest) -> HttpResponse {
    let st = state.clone();
    let token_in_query = token_in_query(req.query_string());
    unguarded::<A, _, _>(&req, Endpoint::SynologyBot, Accept::JsonOrForm, |bag| async move {
        // A token in the URL ends up in proxy and access logs: refused
        // before anything else, even a right one (nothing is done; the
        // caller must move it to the body, where Synology sends it).
        if token_in_query {
            return Err(ApiError::BadRequest(
                "El token de Synology no se acepta en la URL; envíelo en el cuerpo (formulario o JSON).".into(),
            ));
        }
        // The token first: a caller without it learns nothing, not even
        // which fields are wrong.
        st.bot.check_token(bag.get("token").and_then(Value::as_str))?;
        validate(&bag, &rules(), &[]).map_err(ApiError::Validation)?;
        let user_id = opt_int(&bag, "user_id").unwrap_or_default();
        let username = opt_string(&bag, "username").unwrap_or_default();
        let link = st.bot.link(user_id, &username).await?;
        let updated = format!("Usuario {} actualizado.", link.user.login);
        let (synology_response, message) = match link.reply {
            Ok(answer) => (answer, updated.clone()),
            Err(e) => {
                tracing::warn!(error = %e, user_id, "Synology reply failed; retrying in the background");
                let bot = st.bot.clone();
                let text = link.reply_text.clone();
                tokio::spawn(async move {
                    for secs in REPLY_RETRIES {
                        tokio::time::sleep(Duration::from_secs(secs)).await;
                        if bot.resend(user_id, text.clone()).await.is_ok() {
                            return;
                        }
                    }
                    tracing::warn!(user_id, "Synology reply given up");
                });
                (
                    json!({ "success": false, "pendiente": true, "error": e.to_string() }),
                    format!("{updated} La respuesta por Synology Chat está pendiente."),
                )
            }
        };
        Reply::ok(json!({ "response_update_usuario": updated, "synology_response": synology_response }), message)
    })
    .await
}
