//! `POST api/correo/getConfigCorreos` (mailboxes for the reading channel) and
//! `POST api/correo/save` (an incoming e-mail becomes a ticket).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use helpdesk_domain::model::IncomingMail;
use helpdesk_domain::model::{Endpoint, MailAccountFilter, MailAccountWithPassword, NewAttachment, Status};
use helpdesk_domain::ports::Adapters;
use helpdesk_domain::services::{Ingested, NOT_NOTIFIED, mail_summary, synology_summary};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::AppState;
use crate::audit::AuditCtx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::extract::{ApiRequest, Valid, de};
use crate::messages;
use crate::validation::{Field, Rule, field};

/// The subject of a mail sent without one.
const NO_SUBJECT: &str = "(sin asunto)";

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"id_cuenta_correo": 1, "user": "dnunez@cyberfuel.com", "departamento": 1, "estado": "activo"}))]
pub struct MailAccountsQuery {
    #[serde(default, deserialize_with = "de::opt_int")]
    id_cuenta_correo: Option<i64>,
    #[serde(default, deserialize_with = "de::trimmed")]
    user: Option<String>,
    #[serde(default, deserialize_with = "de::opt_int")]
    departamento: Option<i64>,
    /// `activo` or `inactivo`
    #[serde(default, deserialize_with = "de::trimmed")]
    estado: Option<String>,
}

impl ApiRequest for MailAccountsQuery {
    const ENDPOINT: Endpoint = Endpoint::MailAccounts;

    fn rules() -> Vec<Field> {
        vec![
            field("id_cuenta_correo", vec![Rule::Integer]),
            field("user", vec![Rule::String, Rule::Max(191)]),
            field("departamento", vec![Rule::Integer]),
            field("estado", vec![Rule::String, Rule::In(&["activo", "inactivo"])]),
        ]
    }
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

pub async fn get_config<A: Adapters>(
    st: web::Data<AppState<A>>,
    q: Valid<MailAccountsQuery, A>,
) -> Result<Reply, ApiError> {
    let MailAccountsQuery { id_cuenta_correo, user, departamento, estado } = q.input;
    let filter = MailAccountFilter {
        id: id_cuenta_correo,
        user,
        department_id: departamento,
        status: estado.and_then(|s| Status::parse(&s)),
    };
    let accounts = st.mail_accounts.list_with_passwords(filter).await?;
    Reply::ok(accounts.into_iter().map(CuentaCorreo::from).collect::<Vec<_>>(), messages::MAIL_ACCOUNTS)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AttachmentInput {
    #[serde(deserialize_with = "de::text")]
    name: String,
    /// relative to the channel's storage; no absolute paths, no `..`
    #[serde(deserialize_with = "de::text")]
    route: String,
    #[serde(rename = "type", deserialize_with = "de::text")]
    mime_type: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"sistema": "canal_lectura", "subject": "prueba", "from": "test@cyberfuel.com", "to": "test0@cyberfuel.com", "cc": "test1@cyberfuel.com", "bcc": "test2@cyberfuel.com", "reply_to": "test_reply@cyberfuel.com", "body": "contenido del correo en texto plano.", "html": "<p>Contenido del correo en HTML</p>", "date": "2025-10-10 12:00:00", "headers": {"X-Custom-Header": "Valor", "X-Tracking-ID": "abc123"}, "attachments": [{"name": "error_log.txt", "route": "logs/error_log.txt", "type": "text/plain"}]}))]
pub struct MailSaveRequest {
    #[serde(deserialize_with = "de::trimmed_text")]
    sistema: String,
    #[serde(default, deserialize_with = "de::opt_text")]
    subject: Option<String>,
    #[serde(deserialize_with = "de::trimmed_text")]
    from: String,
    #[serde(deserialize_with = "de::trimmed_text")]
    to: String,
    #[serde(default, deserialize_with = "de::trimmed")]
    cc: Option<String>,
    #[serde(default, deserialize_with = "de::trimmed")]
    bcc: Option<String>,
    #[serde(default, deserialize_with = "de::trimmed")]
    reply_to: Option<String>,
    /// required without `html`
    #[serde(default, deserialize_with = "de::text")]
    body: String,
    /// required without `body`
    #[serde(default, deserialize_with = "de::text")]
    html: String,
    /// `Y-m-d H:i:s`
    #[serde(deserialize_with = "de::trimmed_text")]
    date: String,
    /// header name to value (a list of values for repeated headers)
    #[serde(default, deserialize_with = "de::opt_object")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    headers: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "de::list")]
    attachments: Vec<AttachmentInput>,
}

impl ApiRequest for MailSaveRequest {
    const ENDPOINT: Endpoint = Endpoint::MailSave;

    fn rules() -> Vec<Field> {
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

    fn item_rules() -> Vec<(&'static str, Vec<Field>)> {
        vec![(
            "attachments",
            vec![
                field("name", vec![Rule::Required, Rule::String, Rule::Max(255)]),
                field("route", vec![Rule::Required, Rule::String, Rule::Max(1024)]),
                field("type", vec![Rule::Required, Rule::String, Rule::Max(255)]),
            ],
        )]
    }
}

/// Header values as text: strings as they are, lists (several `Received`)
/// one per line, anything else as JSON.
fn header_map(v: Option<Map<String, Value>>) -> BTreeMap<String, String> {
    let Some(map) = v else { return BTreeMap::new() };
    map.into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join("\n"),
                other => other.to_string(),
            };
            (k, text)
        })
        .collect()
}

impl TryFrom<MailSaveRequest> for IncomingMail {
    type Error = ApiError;

    fn try_from(m: MailSaveRequest) -> Result<Self, ApiError> {
        let date = chrono::NaiveDateTime::parse_from_str(&m.date, "%Y-%m-%d %H:%M:%S")
            .map_err(|_| ApiError::BadRequest("date".into()))?;
        let attachments = m
            .attachments
            .into_iter()
            .map(|a| NewAttachment { name: a.name, route: a.route.trim().to_string(), mime_type: a.mime_type })
            .collect();
        Ok(IncomingMail {
            system: m.sistema,
            subject: m.subject.unwrap_or_else(|| NO_SUBJECT.into()),
            from: m.from,
            to: m.to,
            cc: m.cc,
            bcc: m.bcc,
            reply_to: m.reply_to,
            body: m.body,
            html: m.html,
            date,
            headers: header_map(m.headers),
            attachments,
            received_by: None,
        })
    }
}

/// `POST api/correo/save`: an incoming e-mail becomes a ticket, or a detail
/// of the ticket it continues. Answers flat, as documented.
pub async fn save<A: Adapters>(
    st: web::Data<AppState<A>>,
    req: HttpRequest,
    q: Valid<MailSaveRequest, A>,
) -> Result<Reply, ApiError> {
    let mail = q.input.try_into()?;
    // Without a delivery attempt to wait for, nothing after the mail's
    // writes can change the answer (200): the request's bitácora record is
    // written with them, one commit for both.
    let audit = AuditCtx::of(&req);
    let ingested = match st.limits.inline_delivery.is_none().then(|| audit.record_for_own_write(200)).flatten() {
        Some(record) => st.ingest.ingest_audited(mail, record).await?,
        None => st.ingest.ingest(mail).await?,
    };
    let outcome = match ingested {
        Ingested::Ticket(outcome) => {
            if outcome.audit_written {
                audit.written_with(200);
            }
            outcome
        }
        // No ticket: the documented fields stay, as strings, empty.
        Ingested::Held(held) => {
            return Ok(Reply::Raw {
                status: StatusCode::OK,
                body: json!({
                    "success": true,
                    "message": messages::mail_held(held.id, held.reason),
                    "ticket": "",
                    "id_detalle_ticket": "",
                    "notificacion_SLA_Synology": NOT_NOTIFIED,
                    "notificacion_SLA_Correo": NOT_NOTIFIED,
                    "id_departamento_asignado": "",
                    "id_usuario_asignado": "",
                }),
            });
        }
    };
    let notices = match (outcome.duplicate, st.limits.inline_delivery) {
        // First attempt now, so the answer can say "sent" (the worker
        // retries failures); a duplicate queued nothing new.
        (false, Some(wait)) => {
            let spawn = |task| drop(st.tasks.spawn(task));
            st.outbox.first_attempt(outcome.notices.clone(), outcome.detail_id, spawn, tokio::time::sleep(wait)).await?
        }
        _ => outcome.notices.clone(),
    };
    let message = if outcome.created_ticket {
        messages::ticket_created(outcome.ticket_id)
    } else {
        messages::detail_added(outcome.ticket_id)
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
}
