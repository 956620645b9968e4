//! `POST api/correo/getConfigCorreos` (mailboxes for the reading channel) and
//! `POST api/correo/save` (an incoming e-mail becomes a ticket).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use helpdesk_domain::model::IncomingMail;
use helpdesk_domain::model::{Endpoint, MailAccountFilter, MailAccountWithPassword, NewAttachment, Status};
use helpdesk_domain::ports::{Adapters, OutboxRepository};
use helpdesk_domain::services::{mail_summary, synology_summary};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::call::{Accept, guarded, opt_int, opt_string};
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::validation::{Field, Rule, field, validate};

fn rules() -> Vec<Field> {
    vec![
        field("id_cuenta_correo", vec![Rule::Integer]),
        field("user", vec![Rule::String, Rule::Max(191)]),
        field("departamento", vec![Rule::Integer]),
        field("estado", vec![Rule::String, Rule::In(&["activo", "inactivo"])]),
    ]
}

/// One mailbox, with the documented keys and types.
#[derive(Debug, Serialize)]
pub struct CuentaCorreo {
    pub id_cuenta_correo: i64,
    pub host: String,
    pub user: String,
    pub password: String,
    pub port: String,
    pub mail_boxes: Vec<String>,
    pub departamento: i64,
    pub estado: &'static str,
}

impl From<MailAccountWithPassword> for CuentaCorreo {
    fn from(a: MailAccountWithPassword) -> Self {
        let MailAccountWithPassword { account, password } = a;
        CuentaCorreo {
            id_cuenta_correo: account.id,
            host: account.host,
            user: account.user,
            password,
            port: account.port,
            mail_boxes: account.mailboxes,
            departamento: account.department_id,
            estado: account.status.as_str(),
        }
    }
}

pub async fn get_config<A: Adapters>(state: web::Data<AppState<A>>, req: HttpRequest) -> HttpResponse {
    let st = state.clone();
    guarded(&state, &req, Endpoint::MailAccounts, Accept::Json, |_consumer, bag| async move {
        validate(&bag, &rules(), &[]).map_err(ApiError::Validation)?;
        let filter = MailAccountFilter {
            id: opt_int(&bag, "id_cuenta_correo"),
            user: opt_string(&bag, "user"),
            department_id: opt_int(&bag, "departamento"),
            status: opt_string(&bag, "estado").and_then(|s| Status::parse(&s)),
        };
        let accounts = st.mail_accounts.list_with_passwords(filter).await?;
        // The documentation answers with an empty message here.
        Reply::ok(accounts.into_iter().map(CuentaCorreo::from).collect::<Vec<_>>(), "")
    })
    .await
}

fn save_rules() -> Vec<Field> {
    vec![
        field("sistema", vec![Rule::Required, Rule::String, Rule::Max(100)]),
        field("subject", vec![Rule::String, Rule::Max(2000)]),
        field("from", vec![Rule::Required, Rule::Mailbox, Rule::Max(400)]),
        field("to", vec![Rule::Required, Rule::MailboxList, Rule::Max(10_000)]),
        field("cc", vec![Rule::String, Rule::Max(10_000)]),
        field("bcc", vec![Rule::String, Rule::Max(10_000)]),
        field("reply_to", vec![Rule::Mailbox, Rule::Max(400)]),
        field("body", vec![Rule::RequiredWithoutAll(&["html"]), Rule::String]),
        field("html", vec![Rule::RequiredWithoutAll(&["body"]), Rule::String]),
        field("date", vec![Rule::Required, Rule::DateTime]),
        field("headers", vec![Rule::Object]),
        field("attachments", vec![Rule::Array, Rule::Max(100)]),
    ]
}

fn attachment_rules() -> Vec<(&'static str, Vec<Field>)> {
    vec![(
        "attachments",
        vec![
            field("name", vec![Rule::Required, Rule::String, Rule::Max(255)]),
            field("route", vec![Rule::Required, Rule::String, Rule::Max(1024)]),
            field("type", vec![Rule::Required, Rule::String, Rule::Max(255)]),
        ],
    )]
}

/// Header values as text: strings as they are, lists (several `Received`)
/// one per line, anything else as JSON.
fn header_map(v: Option<&Value>) -> BTreeMap<String, String> {
    let Some(Value::Object(map)) = v else { return BTreeMap::new() };
    map.iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join("\n"),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

fn incoming(bag: &Map<String, Value>) -> Result<IncomingMail, ApiError> {
    let text = |k: &str| match bag.get(k) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let date = chrono::NaiveDateTime::parse_from_str(text("date").trim(), "%Y-%m-%d %H:%M:%S")
        .map_err(|_| ApiError::BadRequest("date".into()))?;
    let attachments = match bag.get("attachments") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|a| NewAttachment {
                name: a["name"].as_str().unwrap_or_default().to_string(),
                route: a["route"].as_str().unwrap_or_default().trim().to_string(),
                mime_type: a["type"].as_str().unwrap_or_default().to_string(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let subject = opt_string(bag, "subject").map(|_| text("subject")).unwrap_or_else(|| "(sin asunto)".into());
    Ok(IncomingMail {
        system: text("sistema").trim().to_string(),
        subject,
        from: text("from").trim().to_string(),
        to: text("to").trim().to_string(),
        cc: opt_string(bag, "cc"),
        bcc: opt_string(bag, "bcc"),
        reply_to: opt_string(bag, "reply_to"),
        body: text("body"),
        html: text("html"),
        date,
        headers: header_map(bag.get("headers")),
        attachments,
        received_by: None,
    })
}

/// `POST api/correo/save`: an incoming e-mail becomes a ticket, or a detail
/// of the ticket it continues. Answers flat, as documented.
pub async fn save<A: Adapters>(state: web::Data<AppState<A>>, req: HttpRequest) -> HttpResponse {
    let st = state.clone();
    guarded(&state, &req, Endpoint::MailSave, Accept::Json, |_consumer, bag| async move {
        validate(&bag, &save_rules(), &attachment_rules()).map_err(ApiError::Validation)?;
        let outcome = st.ingest.ingest(incoming(&bag)?).await?;
        let mut notices = outcome.notices.clone();
        if let (false, Some(wait)) = (outcome.duplicate, st.limits.inline_delivery) {
            // First attempt now, so the answer can say "sent"; the task goes on
            // if it takes longer than `wait`, and the worker retries failures.
            let ids: Vec<i64> = notices.iter().map(|n| n.id).collect();
            let outbox = st.outbox.clone();
            let attempt = tokio::spawn(async move { outbox.deliver_now(ids).await });
            if tokio::time::timeout(wait, attempt).await.is_ok() {
                notices = st.store.notices_of_detail(outcome.detail_id).await?;
            }
        }
        let message = if outcome.created_ticket {
            format!("Se ha creado el ticket {}", outcome.ticket_id)
        } else {
            format!("Se ha agregado el detalle al ticket {}", outcome.ticket_id)
        };
        Ok(Reply::Raw {
            status: StatusCode::OK,
            body: json!({
                "success": true,
                "message": message,
                "ticket": outcome.ticket_id.to_string(),
                "id_detalle_ticket": outcome.detail_id.to_string(),
                "notificacion_SLA_Synology": synology_summary(&notices, &outcome.department),
                "notificacion_SLA_Correo": mail_summary(&notices),
                "id_departamento_asignado": outcome.department.id.to_string(),
                "id_usuario_asignado": outcome.assignee_id.map(|a| a.to_string()).unwrap_or_default(),
            }),
        })
    })
    .await
}
