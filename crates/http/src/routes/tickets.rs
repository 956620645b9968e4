//! The operators' ticket API: `GET api/tickets`, `GET api/tickets/{id}`,
//! `POST api/tickets/{id}/respuestas`, `PATCH api/tickets/{id}`,
//! `GET api/tickets/{id}/adjuntos/{id_adjunto}`. Consumer credentials and
//! the operator's user token (`Authorization: Bearer`) on every call.

use std::sync::LazyLock;

use actix_web::web;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::Adapters;
use helpdesk_domain::services::{ChangeRequest, ListRequest, MAX_REPLY_CHARS, Operator, ReplyRequest, TicketCursor};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::AppState;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::extract::{ApiRequest, Valid, de};
use crate::files::{self, ServeError};
use crate::messages;
use crate::validation::{Field, Rule, ValidationErrors, field, parse_date};

static ASSIGNEE_FILTER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(yo|nadie|[0-9]+)$").expect("valid regex"));
static ASSIGNEE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(nadie|[0-9]+)$").expect("valid regex"));

const STATUSES: &[&str] = &["abierto", "pendiente", "cerrado"];
const PRIORITIES: &[&str] = &["baja", "normal", "alta", "urgente"];

fn id_rule(name: &'static str) -> Field {
    field(name, vec![Rule::Required, Rule::Integer, Rule::Min(1)])
}

fn operator<A>(q: &Valid<impl ApiRequest, A>) -> Result<&Operator, ApiError> {
    q.operator.as_ref().ok_or_else(|| ApiError::internal("an operator endpoint without its gate"))
}

// ---- wire shapes ----------------------------------------------------------

fn stamp(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[derive(Debug, Serialize)]
pub struct TicketJson {
    id_ticket: i64,
    asunto: String,
    estado: &'static str,
    prioridad: &'static str,
    id_departamento: i64,
    id_usuario_asignado: Option<i64>,
    solicitante: String,
    sistema: String,
    creado: String,
    actualizado: String,
    cerrado: Option<String>,
    /// Its service level, when a policy covers it.
    sla: Option<SlaJson>,
}

#[derive(Debug, Serialize)]
pub struct SlaJson {
    politica: i64,
    vence_primera_respuesta: String,
    vence_resolucion: String,
    primera_respuesta_en: Option<String>,
    resuelto_en: Option<String>,
    pausado_desde: Option<String>,
    /// `en_tiempo`, `por_vencer`, `vencido`, `pausado` or `cumplido`
    estado: &'static str,
}

impl SlaJson {
    fn of(c: SlaClock, now: Timestamp) -> Self {
        SlaJson {
            politica: c.policy_id,
            vence_primera_respuesta: stamp(c.first_response_due),
            vence_resolucion: stamp(c.resolution_due),
            primera_respuesta_en: c.first_response_at.map(stamp),
            resuelto_en: c.resolved_at.map(stamp),
            pausado_desde: c.paused_since.map(stamp),
            estado: c.state(now).as_str(),
        }
    }
}

impl TicketJson {
    /// The ticket as the API shows it, its service level judged at `now`.
    pub fn of(t: Ticket, now: Timestamp) -> Self {
        TicketJson {
            id_ticket: t.id,
            asunto: t.subject,
            estado: t.status.as_str(),
            prioridad: t.priority.as_str(),
            id_departamento: t.department_id,
            id_usuario_asignado: t.assignee_id,
            solicitante: t.requester,
            sistema: t.system,
            creado: stamp(t.created_at),
            actualizado: stamp(t.updated_at),
            cerrado: t.closed_at.map(stamp),
            sla: t.sla.map(|c| SlaJson::of(c, now)),
        }
    }
}

#[derive(Debug, Serialize)]
struct AttachmentJson {
    id_adjunto: i64,
    nombre: String,
    tipo: String,
}

#[derive(Debug, Serialize)]
struct DetailJson {
    id_detalle_ticket: i64,
    direccion: &'static str,
    id_usuario_autor: Option<i64>,
    de: String,
    para: String,
    cc: Option<String>,
    asunto: String,
    message_id: Option<String>,
    texto: String,
    html: String,
    fecha: String,
    adjuntos: Vec<AttachmentJson>,
    /// A public reply's delivery; absent on other messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    entrega: Option<DeliveryJson>,
}

#[derive(Debug, Serialize)]
struct DeliveryJson {
    /// `en_cola`, `enviado`, `reintentando` or `fallido`
    estado: &'static str,
    intentos: i32,
    motivo: Option<String>,
}

#[derive(Debug, Serialize)]
struct EventJson {
    tipo: &'static str,
    antes: Option<String>,
    despues: Option<String>,
    id_usuario: Option<i64>,
    fecha: String,
}

#[derive(Debug, Serialize)]
struct ThreadJson {
    #[serde(flatten)]
    ticket: TicketJson,
    detalles: Vec<DetailJson>,
    eventos: Vec<EventJson>,
    participantes: Vec<String>,
}

impl ThreadJson {
    fn of(t: TicketThread, now: Timestamp) -> Self {
        let deliveries = t.deliveries;
        let detalles = t
            .details
            .into_iter()
            .map(|(d, attachments)| DetailJson {
                entrega: deliveries.get(&d.id).map(|e| DeliveryJson {
                    estado: e.state.as_str(),
                    intentos: e.attempts,
                    motivo: e.reason.clone(),
                }),
                id_detalle_ticket: d.id,
                direccion: d.direction.as_str(),
                id_usuario_autor: d.author_id,
                de: d.from,
                para: d.to,
                cc: d.cc,
                asunto: d.subject,
                message_id: d.message_id,
                texto: d.body,
                html: d.html,
                fecha: stamp(d.date),
                adjuntos: attachments
                    .into_iter()
                    .map(|a| AttachmentJson { id_adjunto: a.id, nombre: a.name, tipo: a.mime_type })
                    .collect(),
            })
            .collect();
        let eventos = t
            .events
            .into_iter()
            .map(|e| EventJson {
                tipo: e.kind.as_str(),
                antes: e.before,
                despues: e.after,
                id_usuario: e.actor_id,
                fecha: stamp(e.at),
            })
            .collect();
        ThreadJson { ticket: TicketJson::of(t.ticket, now), detalles, eventos, participantes: t.participants }
    }
}

fn invalid(field: &str, message: String) -> ApiError {
    let mut v = ValidationErrors::default();
    v.add(field, message);
    ApiError::Validation(v)
}

// ---- GET tickets ----------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[schema(example = json!({"estado": "abierto", "asignado": "yo", "texto": "impresora", "limite": 20}))]
pub struct TicketListQuery {
    /// `abierto`, `pendiente` or `cerrado`
    #[serde(default, deserialize_with = "de::trimmed")]
    estado: Option<String>,
    #[serde(default, deserialize_with = "de::opt_int")]
    departamento: Option<i64>,
    /// a user id, `yo` or `nadie`
    #[serde(default, deserialize_with = "de::trimmed")]
    asignado: Option<String>,
    /// `baja`, `normal`, `alta` or `urgente`
    #[serde(default, deserialize_with = "de::trimmed")]
    prioridad: Option<String>,
    /// words to find in the subject or any message (all of them)
    #[serde(default, deserialize_with = "de::trimmed")]
    texto: Option<String>,
    /// created on or after (`Y-m-d` or `Y-m-d H:i:s`)
    #[serde(default, deserialize_with = "de::trimmed")]
    desde: Option<String>,
    /// created on or before (`Y-m-d`: the whole day)
    #[serde(default, deserialize_with = "de::trimmed")]
    hasta: Option<String>,
    /// page size, 1 to 100 (20)
    #[serde(default, deserialize_with = "de::opt_int")]
    limite: Option<i64>,
    /// service level now: `en_tiempo`, `por_vencer`, `vencido`, `pausado` or `cumplido`
    #[serde(default, deserialize_with = "de::trimmed")]
    sla: Option<String>,
    /// `recientes` (newest first, the default), `vencimiento` (the nearest due time first) or `actividad`
    /// (the latest activity first)
    #[serde(default, deserialize_with = "de::trimmed")]
    orden: Option<String>,
    /// `siguiente` of the previous page (in the same order)
    #[serde(default, deserialize_with = "de::trimmed")]
    cursor: Option<String>,
    /// only tickets this e-mail address takes part in (a customer's tickets)
    #[serde(default, deserialize_with = "de::trimmed")]
    participante: Option<String>,
}

const SLA_STATES: &[&str] = &["en_tiempo", "por_vencer", "vencido", "pausado", "cumplido"];
const ORDERS: &[&str] = &["recientes", "vencimiento", "actividad"];

impl ApiRequest for TicketListQuery {
    const ENDPOINT: Endpoint = Endpoint::TicketList;

    fn rules() -> Vec<Field> {
        vec![
            field("estado", vec![Rule::String, Rule::In(STATUSES)]),
            field("departamento", vec![Rule::Integer]),
            field("asignado", vec![Rule::Regex(&ASSIGNEE_FILTER)]),
            field("prioridad", vec![Rule::String, Rule::In(PRIORITIES)]),
            field("texto", vec![Rule::String, Rule::Max(200)]),
            field("desde", vec![Rule::Date]),
            field("hasta", vec![Rule::Date]),
            field("limite", vec![Rule::Integer, Rule::Min(1), Rule::Max(100)]),
            field("sla", vec![Rule::String, Rule::In(SLA_STATES)]),
            field("orden", vec![Rule::String, Rule::In(ORDERS)]),
            field("cursor", vec![Rule::String, Rule::Max(100)]),
            field("participante", vec![Rule::String, Rule::Email, Rule::Max(320)]),
        ]
    }
}

/// The page size when none is asked for.
const DEFAULT_PAGE: i64 = 20;

pub async fn list<A: Adapters>(st: web::Data<AppState<A>>, q: Valid<TicketListQuery, A>) -> Result<Reply, ApiError> {
    let op = operator(&q)?;
    let input = &q.input;
    let order = match input.orden.as_deref() {
        Some("vencimiento") => TicketOrder::NearestDue,
        Some("actividad") => TicketOrder::LatestActivity,
        _ => TicketOrder::Newest,
    };
    let cursor = match input.cursor.as_deref() {
        Some(c) => Some(
            TicketCursor::decode(c, order)
                .ok_or_else(|| invalid("cursor", "The cursor field format is invalid.".into()))?,
        ),
        None => None,
    };
    let (assignee, assigned_to_me) = match input.asignado.as_deref() {
        None => (AssigneeFilter::Anyone, false),
        Some("yo") => (AssigneeFilter::Anyone, true),
        Some("nadie") => (AssigneeFilter::Nobody, false),
        Some(id) => (AssigneeFilter::User(id.parse().unwrap_or_default()), false),
    };
    // A bare date in `hasta` means to the end of that day.
    let until = input
        .hasta
        .as_deref()
        .and_then(|h| parse_date(h).map(|t| if h.len() == 10 { t + chrono::Duration::seconds(86_399) } else { t }));
    let request = ListRequest {
        status: input.estado.as_deref().and_then(TicketStatus::parse),
        department_id: input.departamento,
        assignee,
        assigned_to_me,
        priority: input.prioridad.as_deref().and_then(Priority::parse),
        text: input.texto.clone(),
        from: input.desde.as_deref().and_then(parse_date),
        until,
        sla: input.sla.as_deref().and_then(SlaState::parse),
        overdue: false,
        participant: input.participante.as_deref().and_then(Address::parse_bare),
        order,
        cursor,
        limit: input.limite.unwrap_or(DEFAULT_PAGE),
    };
    let page = st.tickets.list(op, request).await?;
    let message = messages::tickets_found(page.tickets.len());
    let now = st.clock.now();
    Reply::ok(
        json!({
            "tickets": page.tickets.into_iter().map(|t| TicketJson::of(t, now)).collect::<Vec<_>>(),
            "siguiente": page.next.map(|c| c.encode()),
        }),
        message,
    )
}

// ---- GET tickets/{id} -----------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
pub struct TicketPath {
    #[serde(deserialize_with = "de::int")]
    id: i64,
}

impl ApiRequest for TicketPath {
    const ENDPOINT: Endpoint = Endpoint::TicketShow;

    fn rules() -> Vec<Field> {
        vec![id_rule("id")]
    }
}

pub async fn show<A: Adapters>(st: web::Data<AppState<A>>, q: Valid<TicketPath, A>) -> Result<Reply, ApiError> {
    let thread = st.tickets.show(operator(&q)?, q.input.id).await?;
    let message = messages::ticket_shown(thread.ticket.id);
    Reply::ok(ThreadJson::of(thread, st.clock.now()), message)
}

// ---- POST tickets/{id}/respuestas -----------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"cuerpo": "Hola Ana: ya quedó configurada la impresora.", "interna": false, "cc": "jefe@cliente.test"}))]
pub struct ReplyBody {
    /// the ticket: taken from the path (a body value is ignored)
    #[serde(default, deserialize_with = "de::int")]
    id: i64,
    /// the text
    #[serde(deserialize_with = "de::text")]
    cuerpo: String,
    /// the same in HTML (optional)
    #[serde(default, deserialize_with = "de::opt_text")]
    html: Option<String>,
    /// an internal note, never mailed (default false)
    #[serde(default, deserialize_with = "de::boolean")]
    interna: bool,
    /// more addresses to copy
    #[serde(default, deserialize_with = "de::trimmed")]
    cc: Option<String>,
}

impl ApiRequest for ReplyBody {
    const ENDPOINT: Endpoint = Endpoint::TicketReply;

    fn rules() -> Vec<Field> {
        vec![
            id_rule("id"),
            field("cuerpo", vec![Rule::Required, Rule::String, Rule::Max(MAX_REPLY_CHARS)]),
            field("html", vec![Rule::String, Rule::Max(500_000)]),
            field("interna", vec![Rule::Boolean]),
            field("cc", vec![Rule::MailboxList, Rule::Max(10_000)]),
        ]
    }
}

pub async fn reply<A: Adapters>(st: web::Data<AppState<A>>, q: Valid<ReplyBody, A>) -> Result<Reply, ApiError> {
    let ReplyBody { id, cuerpo, html, interna, cc } = &q.input;
    let request =
        ReplyRequest { body: cuerpo.clone(), html: html.clone(), internal: *interna, cc: cc.clone(), seen_last: None };
    let out = st.tickets.reply(operator(&q)?, *id, request).await?;
    let message = if *interna { messages::NOTE_STORED } else { messages::REPLY_QUEUED };
    Reply::created(
        json!({ "id_detalle_ticket": out.detail_id, "message_id": format!("<{}>", out.message_id) }),
        message,
    )
}

// ---- PATCH tickets/{id} ---------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"estado": "pendiente", "asignado": 12, "prioridad": "alta"}))]
pub struct ChangeBody {
    /// the ticket: taken from the path (a body value is ignored)
    #[serde(default, deserialize_with = "de::int")]
    id: i64,
    /// `abierto`, `pendiente` (waiting on the customer) or `cerrado`
    #[serde(default, deserialize_with = "de::trimmed")]
    estado: Option<String>,
    /// an active operator of the department who takes tickets, or `nadie`
    #[serde(default, deserialize_with = "de::opt_text")]
    #[schema(value_type = Option<String>)]
    asignado: Option<String>,
    #[serde(default, deserialize_with = "de::opt_int")]
    departamento: Option<i64>,
    /// `baja`, `normal`, `alta` or `urgente`
    #[serde(default, deserialize_with = "de::trimmed")]
    prioridad: Option<String>,
}

impl ApiRequest for ChangeBody {
    const ENDPOINT: Endpoint = Endpoint::TicketUpdate;

    fn rules() -> Vec<Field> {
        vec![
            id_rule("id"),
            field(
                "estado",
                vec![
                    Rule::RequiredWithoutAll(&["asignado", "departamento", "prioridad"]),
                    Rule::String,
                    Rule::In(STATUSES),
                ],
            ),
            field(
                "asignado",
                vec![Rule::RequiredWithoutAll(&["estado", "departamento", "prioridad"]), Rule::Regex(&ASSIGNEE)],
            ),
            field(
                "departamento",
                vec![Rule::RequiredWithoutAll(&["estado", "asignado", "prioridad"]), Rule::Integer, Rule::Min(1)],
            ),
            field(
                "prioridad",
                vec![
                    Rule::RequiredWithoutAll(&["estado", "asignado", "departamento"]),
                    Rule::String,
                    Rule::In(PRIORITIES),
                ],
            ),
        ]
    }
}

pub async fn change<A: Adapters>(st: web::Data<AppState<A>>, q: Valid<ChangeBody, A>) -> Result<Reply, ApiError> {
    let input = &q.input;
    let assignee = match input.asignado.as_deref().map(str::trim) {
        None => None,
        Some("nadie") => Some(None),
        Some(id) => {
            Some(Some(id.parse().map_err(|_| invalid("asignado", "The selected asignado is invalid.".into()))?))
        }
    };
    let request = ChangeRequest {
        status: input.estado.as_deref().and_then(TicketStatus::parse),
        assignee,
        department_id: input.departamento,
        priority: input.prioridad.as_deref().and_then(Priority::parse),
    };
    let ticket = st.tickets.change(operator(&q)?, input.id, request).await?;
    let message = messages::ticket_updated(ticket.id);
    Reply::ok(TicketJson::of(ticket, st.clock.now()), message)
}

// ---- GET tickets/{id}/adjuntos/{id_adjunto} -------------------------------

#[derive(Debug, Deserialize, ToSchema)]
pub struct AttachmentPath {
    #[serde(deserialize_with = "de::int")]
    id: i64,
    #[serde(deserialize_with = "de::int")]
    id_adjunto: i64,
}

impl ApiRequest for AttachmentPath {
    const ENDPOINT: Endpoint = Endpoint::TicketAttachment;

    fn rules() -> Vec<Field> {
        vec![id_rule("id"), id_rule("id_adjunto")]
    }
}

pub async fn attachment<A: Adapters>(
    st: web::Data<AppState<A>>,
    req: actix_web::HttpRequest,
    q: Valid<AttachmentPath, A>,
) -> Result<Reply, ApiError> {
    let a = st.tickets.attachment(operator(&q)?, q.input.id, q.input.id_adjunto).await?;
    match files::serve_attachment(&st.attachments_dir, &a, &req).await {
        Ok(response) => Ok(Reply::Response(response)),
        Err(ServeError::Missing) => Err(ApiError::from(helpdesk_domain::services::TicketError::AttachmentNotFound)),
        Err(e) => Err(ApiError::internal_by(format!("cannot open attachment {}", a.id), e)),
    }
}
