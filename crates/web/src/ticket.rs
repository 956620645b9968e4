//! A ticket's page: the thread, the reply box and the changes, through
//! [`TicketService`](helpdesk_domain::services::TicketService), with the
//! API's visibility rules (another department's ticket is absent: 404).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono_tz::Tz;
use helpdesk_domain::model::{
    Direction, InternalUser, Priority, SlaClock, Ticket, TicketStatus, TicketThread, Timestamp, UserFilter, served_name,
};
use helpdesk_domain::ports::Adapters;
use helpdesk_domain::services::{ChangeRequest, ReplyRequest, TicketError, Visit};

use helpdesk_http::files::{ServeError, serve_attachment};

use crate::WebState;
use crate::assets::{self, Served};
use crate::audit::audited;
use crate::html::clean;
use crate::pages::{Choice, visit};
use crate::render::{failed, fields, html, message, see_other};
use crate::session::{self, CSRF_FIELD};
use crate::texts::{self, T, Texts};
use crate::when::{self, Shown};

struct Message {
    kind: &'static str,
    label: &'static str,
    author: String,
    when: Shown,
    delivery: Option<String>,
    /// The customer's HTML, cleaned; `None`: the text is shown.
    html: Option<String>,
    text: String,
    attachments: Vec<AttachmentLink>,
}

struct AttachmentLink {
    id: i64,
    name: String,
}

struct EventLine {
    when: Shown,
    who: String,
    what: &'static str,
    before: String,
    after: String,
}

struct View {
    id: i64,
    subject: String,
    status: &'static str,
    priority: &'static str,
    department: String,
    assignee: String,
    requester: String,
    participants: String,
    messages: Vec<Message>,
    statuses: Vec<Choice>,
    assignees: Vec<Choice>,
    priorities: Vec<Choice>,
    departments: Vec<Choice>,
    events: Vec<EventLine>,
    /// The service level's lines, empty without a clock.
    sla: Option<SlaView>,
    /// The requester's other tickets (the latest activity first).
    others: Vec<OtherTicket>,
}

struct OtherTicket {
    id: i64,
    subject: String,
    status: &'static str,
    activity: Shown,
}

/// How many of the requester's other tickets the page lists.
const OTHERS: i64 = 10;

struct SlaView {
    state: &'static str,
    class: &'static str,
    first_response: String,
    resolution: String,
    paused_since: Option<Shown>,
}

#[derive(Template)]
#[template(path = "ticket.html")]
struct TicketPage<'a> {
    t: &'static Texts,
    css: &'static Served,
    js: &'static Served,
    csrf: &'a str,
    operator_name: &'a str,
    v: View,
    notice: Option<&'static str>,
    draft: &'a str,
    draft_note: bool,
}

/// A target of the clock: met at a time, or due.
fn target(done: Option<Timestamp>, due: Timestamp, now: Timestamp, zone: Tz) -> String {
    match done {
        Some(at) => format!("{} {}", T.sla_done_at, when::local(at, zone).text),
        None => when::due(now, due, zone).text,
    }
}

fn sla_view(clock: &SlaClock, now: Timestamp, zone: Tz) -> SlaView {
    let state = clock.state(now);
    SlaView {
        state: texts::sla(state),
        class: state.as_str(),
        first_response: target(clock.first_response_at, clock.first_response_due, now, zone),
        resolution: target(clock.resolved_at, clock.resolution_due, now, zone),
        paused_since: clock.paused_since.map(|at| when::local(at, zone)),
    }
}

/// The id in a path segment, if it is one.
fn ticket_id(path: &str) -> Option<i64> {
    path.parse::<i64>().ok().filter(|id| *id > 0)
}

fn not_found() -> HttpResponse {
    message(StatusCode::NOT_FOUND, T.not_found_title, T.not_found)
}

/// What a ticket's page shows, names resolved.
async fn view<A: Adapters>(
    state: &WebState<A>,
    thread: TicketThread,
    others: Vec<Ticket>,
    zone: Tz,
) -> Result<View, Box<dyn std::error::Error + Send + Sync>> {
    let ticket = &thread.ticket;
    let now = state.clock.now();
    let departments = state.admin.departments().await?;
    let filter = UserFilter { department_id: Some(ticket.department_id), ..UserFilter::default() };
    let colleagues: Vec<InternalUser> = state.directory.find_users(filter).await?;
    let names: BTreeMap<i64, String> = colleagues.iter().map(|u| (u.id, u.name.clone())).collect();
    let name_of = |id: i64| names.get(&id).cloned().unwrap_or_else(|| format!("{} {id}", T.operator_n));

    let mut messages = Vec::new();
    for (d, files) in &thread.details {
        let (kind, label) = match d.direction {
            Direction::Incoming => ("entrante", T.incoming),
            Direction::Outgoing => ("saliente", T.outgoing),
            Direction::Note => ("nota", T.note),
        };
        let author = match (d.direction, d.author_id) {
            (Direction::Incoming, _) | (_, None) => d.from.clone(),
            (_, Some(id)) => name_of(id),
        };
        let delivery = thread.deliveries.get(&d.id).map(|x| {
            let mut s = texts::delivery(x.state).to_string();
            if x.attempts > 0 {
                s.push_str(&format!(" ({}: {})", T.attempts, x.attempts));
            }
            if let Some(reason) = &x.reason {
                s.push_str(&format!(": {reason}"));
            }
            s
        });
        let html = (d.direction == Direction::Incoming && !d.html.trim().is_empty()).then(|| clean(&d.html));
        messages.push(Message {
            kind,
            label,
            author,
            when: when::local(d.date, zone),
            delivery,
            html,
            text: d.body.clone(),
            attachments: files.iter().map(|a| AttachmentLink { id: a.id, name: served_name(&a.name) }).collect(),
        });
    }

    let choice = |value: String, label: String, selected: bool| Choice { value, label, selected };
    let statuses = [TicketStatus::Open, TicketStatus::Pending, TicketStatus::Closed]
        .into_iter()
        .map(|s| choice(s.as_str().into(), texts::status(s).into(), s == ticket.status))
        .collect();
    let priorities = Priority::ALL
        .into_iter()
        .map(|p| choice(p.as_str().into(), texts::priority(p).into(), p == ticket.priority))
        .collect();
    let mut assignees = vec![choice(String::new(), T.unassigned.into(), ticket.assignee_id.is_none())];
    for u in colleagues.iter().filter(|u| u.is_active() && u.can_take_tickets) {
        assignees.push(choice(u.id.to_string(), u.name.clone(), Some(u.id) == ticket.assignee_id));
    }
    if let Some(id) = ticket.assignee_id
        && !assignees.iter().any(|c| c.selected)
    {
        assignees.push(choice(id.to_string(), name_of(id), true));
    }
    let department_name =
        |id: i64| departments.iter().find(|d| d.id == id).map(|d| d.name.clone()).unwrap_or_else(|| id.to_string());
    let department_choices = departments
        .iter()
        .filter(|d| d.status.is_active() || d.id == ticket.department_id)
        .map(|d| choice(d.id.to_string(), d.name.clone(), d.id == ticket.department_id))
        .collect();
    let events = thread
        .events
        .iter()
        .map(|e| EventLine {
            when: when::local(e.at, zone),
            who: e.actor_id.map_or_else(|| T.system.to_string(), name_of),
            what: texts::event(e.kind),
            before: e.before.clone().unwrap_or_default(),
            after: e.after.clone().unwrap_or_default(),
        })
        .collect();
    Ok(View {
        id: ticket.id,
        subject: ticket.subject.clone(),
        status: texts::status(ticket.status),
        priority: texts::priority(ticket.priority),
        department: department_name(ticket.department_id),
        assignee: ticket.assignee_id.map_or_else(|| T.unassigned.to_string(), name_of),
        requester: ticket.requester.clone(),
        participants: thread.participants.join(", "),
        messages,
        statuses,
        assignees,
        priorities,
        departments: department_choices,
        events,
        sla: ticket.sla.map(|c| sla_view(&c, now, zone)),
        others: others
            .into_iter()
            .map(|t| OtherTicket {
                id: t.id,
                subject: t.subject,
                status: texts::status(t.status),
                activity: when::local(t.updated_at, zone),
            })
            .collect(),
    })
}

/// Renders the ticket's page for `visit` (with `notice`, and the reply the
/// operator was writing, when a POST is answered with the page).
async fn page<A: Adapters>(
    state: &WebState<A>,
    visit: &Visit,
    id: i64,
    status: StatusCode,
    notice: Option<&'static str>,
    draft: (&str, bool),
) -> HttpResponse {
    let thread = match state.tickets.show(&visit.operator, id).await {
        Ok(t) => t,
        Err(TicketError::NotFound) => return not_found(),
        Err(e) => return failed(&e),
    };
    let zone = match state.tickets.zone_of(&visit.operator).await {
        Ok(z) => z,
        Err(e) => return failed(&e),
    };
    let others = match state.tickets.requesters_others(&visit.operator, &thread.ticket, OTHERS).await {
        Ok(o) => o,
        Err(e) => return failed(&e),
    };
    let v = match view(state, thread, others, zone).await {
        Ok(v) => v,
        Err(e) => return failed(&*e),
    };
    let name = visit.operator.user.name.clone();
    html(
        status,
        &TicketPage {
            t: &T,
            css: assets::css(),
            js: assets::js(),
            csrf: &visit.session.csrf,
            operator_name: &name,
            v,
            notice,
            draft: draft.0,
            draft_note: draft.1,
        },
    )
}

/// `GET /consola/tickets/{id}` (`?hecho=...` after a POST).
pub async fn show<A: Adapters>(
    state: web::Data<WebState<A>>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let visit = match visit(&state, &req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let Some(id) = ticket_id(&path) else { return not_found() };
    let done = req.query_string().split('&').find_map(|p| p.strip_prefix("hecho="));
    let notice = match done {
        Some("respuesta") => Some(T.done_reply),
        Some("nota") => Some(T.done_note),
        Some("cambios") => Some(T.done_change),
        Some("nada") => Some(T.nothing_changed),
        _ => None,
    };
    page(&state, &visit, id, StatusCode::OK, notice, ("", false)).await
}

/// `GET /consola/tickets/{id}/adjuntos/{adjunto}`: an attachment of a
/// ticket the operator may see, served inert as the API serves it (a
/// download, an allow-listed type, `sandbox`); anything else a 404 page.
pub async fn attachment<A: Adapters>(
    state: web::Data<WebState<A>>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let visit = match visit(&state, &req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let (Some(id), Some(attachment_id)) = (ticket_id(&path.0), ticket_id(&path.1)) else { return not_found() };
    let a = match state.tickets.attachment(&visit.operator, id, attachment_id).await {
        Ok(a) => a,
        Err(TicketError::NotFound | TicketError::AttachmentNotFound) => return not_found(),
        Err(e) => return failed(&e),
    };
    match serve_attachment(&state.attachments_dir, &a, &req).await {
        Ok(res) => res,
        Err(ServeError::Missing) => not_found(),
        Err(e) => failed(&e),
    }
}

/// The session and the form of a state-changing request, or the page
/// refusing it (403: no token or another origin; nothing done).
async fn checked<A: Adapters>(
    state: &WebState<A>,
    req: &HttpRequest,
    body: &[u8],
) -> Result<(Visit, std::collections::HashMap<String, String>), HttpResponse> {
    let visit = visit(state, req).await?;
    let form = fields(body);
    let given = form.get(CSRF_FIELD).map(String::as_str).unwrap_or_default();
    if !state.site.same_origin(req) || !session::token_matches(&visit.session.csrf, given) {
        return Err(message(StatusCode::FORBIDDEN, T.forbidden_title, T.forbidden));
    }
    Ok((visit, form))
}

/// `POST /consola/tickets/{id}/respuesta`: a reply or a note, then, when
/// asked, the new state.
pub async fn reply<A: Adapters>(
    state: web::Data<WebState<A>>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    audited(&state, &req, &body, replying(&state, &req, &path, &body)).await
}

async fn replying<A: Adapters>(state: &WebState<A>, req: &HttpRequest, path: &str, body: &[u8]) -> HttpResponse {
    let (visit, form) = match checked(state, req, body).await {
        Ok(ok) => ok,
        Err(page) => return page,
    };
    let Some(id) = ticket_id(path) else { return not_found() };
    let text = form.get("cuerpo").cloned().unwrap_or_default();
    let internal = form.get("nota").is_some_and(|v| v == "1");
    let then = match form.get("despues").map(String::as_str).unwrap_or_default() {
        "" => None,
        other => match TicketStatus::parse(other) {
            Some(s) => Some(s),
            None => return page(state, &visit, id, StatusCode::UNPROCESSABLE_ENTITY, None, (&text, internal)).await,
        },
    };
    let request = ReplyRequest { body: text.clone(), html: None, internal, cc: None };
    match state.tickets.reply(&visit.operator, id, request).await {
        Ok(_) => {}
        Err(TicketError::InvalidReply) => {
            return page(state, &visit, id, StatusCode::UNPROCESSABLE_ENTITY, Some(T.empty_reply), (&text, internal))
                .await;
        }
        Err(TicketError::NotFound) => return not_found(),
        Err(e) => return failed(&e),
    }
    if let Some(status) = then {
        let change = ChangeRequest { status: Some(status), ..ChangeRequest::default() };
        match state.tickets.change(&visit.operator, id, change).await {
            Ok(_) | Err(TicketError::NothingToChange) => {}
            Err(TicketError::Conflict) => {
                return page(state, &visit, id, StatusCode::CONFLICT, Some(T.conflict), ("", false)).await;
            }
            Err(e) => return failed(&e),
        }
    }
    see_other(&format!("/consola/tickets/{id}?hecho={}", if internal { "nota" } else { "respuesta" }))
}

/// `POST /consola/tickets/{id}/cambios`: what differs from the ticket as
/// it is now becomes one change.
pub async fn change<A: Adapters>(
    state: web::Data<WebState<A>>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    audited(&state, &req, &body, changing(&state, &req, &path, &body)).await
}

async fn changing<A: Adapters>(state: &WebState<A>, req: &HttpRequest, path: &str, body: &[u8]) -> HttpResponse {
    let (visit, form) = match checked(state, req, body).await {
        Ok(ok) => ok,
        Err(page) => return page,
    };
    let Some(id) = ticket_id(path) else { return not_found() };
    let current = match state.tickets.show(&visit.operator, id).await {
        Ok(t) => t.ticket,
        Err(TicketError::NotFound) => return not_found(),
        Err(e) => return failed(&e),
    };
    let field = |name: &str| form.get(name).map(|v| v.trim().to_string()).unwrap_or_default();
    let bad = || async { page(state, &visit, id, StatusCode::UNPROCESSABLE_ENTITY, None, ("", false)).await };
    let status = match TicketStatus::parse(&field("estado")) {
        Some(s) => (s != current.status).then_some(s),
        None => return bad().await,
    };
    let priority = match Priority::parse(&field("prioridad")) {
        Some(p) => (p != current.priority).then_some(p),
        None => return bad().await,
    };
    let assignee = match field("asignado").as_str() {
        "" => None,
        v => match v.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => return bad().await,
        },
    };
    let department = match field("departamento").parse::<i64>() {
        Ok(d) => (d != current.department_id).then_some(d),
        Err(_) => return bad().await,
    };
    let change = ChangeRequest {
        status,
        priority,
        assignee: (assignee != current.assignee_id).then_some(assignee),
        department_id: department,
    };
    if change == ChangeRequest::default() {
        return see_other(&format!("/consola/tickets/{id}?hecho=nada"));
    }
    let (notice, status) = match state.tickets.change(&visit.operator, id, change).await {
        Ok(_) => return see_other(&format!("/consola/tickets/{id}?hecho=cambios")),
        Err(TicketError::NothingToChange) => return see_other(&format!("/consola/tickets/{id}?hecho=nada")),
        Err(TicketError::InvalidAssignee) => (T.invalid_assignee, StatusCode::UNPROCESSABLE_ENTITY),
        Err(TicketError::InvalidDepartment) => (T.invalid_department, StatusCode::UNPROCESSABLE_ENTITY),
        Err(TicketError::Conflict) => (T.conflict, StatusCode::CONFLICT),
        Err(TicketError::NotFound) => return not_found(),
        Err(e) => return failed(&e),
    };
    page(state, &visit, id, status, Some(notice), ("", false)).await
}
