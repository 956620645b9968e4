//! `POST api/Synology/BotAsistencia/configurarIdUsuario`: the Synology Chat
//! bot's outgoing webhook (form-encoded from Synology, JSON from the
//! documented example). `HEAD` answers Synology's probe.

use helpdesk_domain::Report;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use helpdesk_domain::model::Endpoint;
use helpdesk_domain::ports::Adapters;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::AppState;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::extract::{ApiRequest, Valid, de};
use crate::messages;
use crate::request::Accept;
use crate::validation::{Field, Rule, field};

/// Retries of a failed reply, in the background: after 1, 2 and 4 seconds.
const REPLY_RETRIES: [u64; 3] = [1, 2, 4];

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"token": "<string del token>", "user_id": 120, "username": "dnunez", "thread_id": 1, "timestamp": 1752066920406u64, "text": "Hola."}))]
pub struct BotRequest {
    /// the bot's outgoing token (not consumer headers); checked before the
    /// other fields
    #[allow(dead_code)] // documented and validated; the use case does not need it
    #[serde(default, deserialize_with = "de::text")]
    token: String,
    #[serde(deserialize_with = "de::int")]
    user_id: i64,
    #[serde(deserialize_with = "de::trimmed_text")]
    username: String,
    #[allow(dead_code)] // documented and validated; the use case does not need it
    #[serde(default, deserialize_with = "de::opt_int")]
    thread_id: Option<i64>,
    #[allow(dead_code)] // documented and validated; the use case does not need it
    #[serde(default, deserialize_with = "de::opt_int")]
    timestamp: Option<i64>,
    #[allow(dead_code)] // documented and validated; the use case does not need it
    #[serde(default, deserialize_with = "de::opt_text")]
    text: Option<String>,
}

impl ApiRequest for BotRequest {
    const ENDPOINT: Endpoint = Endpoint::SynologyBot;
    const ACCEPT: Accept = Accept::JsonOrForm;

    fn rules() -> Vec<Field> {
        vec![
            // Checked by the gate, before these rules.
            field("token", vec![]),
            field("user_id", vec![Rule::Required, Rule::Integer, Rule::Min(1)]),
            field("username", vec![Rule::Required, Rule::String, Rule::Max(100)]),
            field("thread_id", vec![Rule::Integer]),
            field("timestamp", vec![Rule::Integer]),
            field("text", vec![Rule::String, Rule::Max(10_000)]),
        ]
    }
}

pub async fn probe() -> HttpResponse {
    HttpResponse::Ok().finish()
}

pub async fn configure<A: Adapters>(st: web::Data<AppState<A>>, q: Valid<BotRequest, A>) -> Result<Reply, ApiError> {
    let BotRequest { user_id, username, .. } = q.input;
    let link = st.bot.link(user_id, &username).await?;
    let updated = messages::bot_user_updated(&link.user.login);
    let (synology_response, message) = match link.reply {
        Ok(answer) => (answer, updated.clone()),
        Err(e) => {
            tracing::warn!(error = %Report(&e), user_id, "Synology reply failed; retrying in the background");
            let bot = st.bot.clone();
            let text = link.reply_text.clone();
            st.tasks.spawn(async move {
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
                messages::bot_reply_pending(&updated),
            )
        }
    };
    Reply::ok(json!({ "response_update_usuario": updated, "synology_response": synology_response }), message)
}
