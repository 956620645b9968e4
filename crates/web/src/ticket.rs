//! A ticket's page: the thread, the reply box and the changes, through
//! [`TicketService`](helpdesk_domain::services::TicketService), with the
//! API's visibility rules (another department's ticket is absent: 404).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono_tz::Tz;
use helpdesk_domain::model::{
    Direction, InternalUser, Presence, Priority, SlaClock, Ticket, TicketFields, TicketStatus, TicketThread, Timestamp,
    UserFilter, served_name,
};
use helpdesk_domain::ports::Adapters;
use helpdesk_domain::services::{ChangeRequest, ReplyRequest, TicketError, Visit};

use helpdesk_http::files::{ServeError, serve_attachment};

use crate::WebState;
use crate::assets::{self, Scripts, Served};
use crate::audit::audited;
use crate::html::clean;
use crate::live;
use crate::pages::{Choice, visit};
use crate::render::{failed, fields, html, message, params, see_other};
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
    /// The newest message shown: a reply sent from this page is held if
    /// someone else's is newer.
    last_message: i64,
    /// The change form's fields as shown (the change is what differs).
    seen_status: &'static str,
    seen_assignee: String,
    seen_priority: &'static str,
    seen_department: i64,
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

/// The part of a ticket's page that updates itself: who else is on it, its
/// fields, its service level, its thread.
#[derive(Template)]
#[template(path = "ticket_vivo.html")]
struct TicketLive<'a> {
    t: &'static Texts,
    v: &'a View,
    /// "operador2 está viendo este ticket", one line per operator.
    present: Vec<String>,
}

/// The banner's lines: who else is on the ticket, and doing what.
fn present_lines(others: Vec<Presence>) -> Vec<String> {
    others
        .into_iter()
        .map(|p| format!("{} {}", p.name, if p.answering { T.is_answering } else { T.is_viewing }))
        .collect()
}

/// The fingerprint of what a ticket's live part shows: the ticket's stamp
/// (its row, its newest message and event, its replies' deliveries), the
/// banner, the minute.
fn ticket_probe(stamp: &str, present: &[String], now: Timestamp) -> String {
    live::fingerprint(&format!("{stamp}|{present:?}|{}", live::minute(now)))
}

/// The fingerprint a ticket page carries: the probe's, and the newest
/// message the part showed (so that a later request knows it unread).
fn ticket_huella(probe: &str, last_message: i64) -> String {
    format!("{probe}.{last_message}")
}

#[derive(Template)]
#[template(path = "ticket.html")]
struct TicketPage<'a> {
    t: &'static Texts,
    css: &'static Served,
    js: &'static Scripts,
    csrf: &'a str,
    operator_name: &'a str,
    v: View,
    /// Where the page asks for its live part.
    pulse: String,
    /// The fingerprint of the probe read before the live part.
    huella: String,
    /// The live part, rendered.
    live: String,
    notice: Option<&'static str>,
    /// The notice is a refusal (the page answers a POST that did nothing).
    warning: bool,
    form: Form<'a>,
}

/// What the forms hold when a POST is answered with the page: the reply
/// being written, whether it was held for a newer message, the values the
/// operator chose in the change form.
#[derive(Default)]
struct Form<'a> {
    draft: &'a str,
    note: bool,
    /// The reply waits for "Enviar de todos modos".
    held: bool,
    /// The change form's choices (else the ticket's values).
    wanted: Option<TicketFields>,
    /// The change form says "Aplicar de todos modos".
    clashed: bool,
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
    wanted: Option<TicketFields>,
) -> Result<View, Box<dyn std::error::Error + Send + Sync>> {
    let ticket = &thread.ticket;
    let seen = TicketFields::of(ticket);
    let shown = wanted.unwrap_or(seen);
    let last_message = thread.details.iter().map(|(d, _)| d.id).max().unwrap_or(0);
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
        .map(|s| choice(s.as_str().into(), texts::status(s).into(), s == shown.status))
        .collect();
    let priorities = Priority::ALL
        .into_iter()
        .map(|p| choice(p.as_str().into(), texts::priority(p).into(), p == shown.priority))
        .collect();
    let mut assignees = vec![choice(String::new(), T.unassigned.into(), shown.assignee_id.is_none())];
    for u in colleagues.iter().filter(|u| u.is_active() && u.can_take_tickets) {
        assignees.push(choice(u.id.to_string(), u.name.clone(), Some(u.id) == shown.assignee_id));
    }
    if let Some(id) = shown.assignee_id
        && !assignees.iter().any(|c| c.selected)
    {
        assignees.push(choice(id.to_string(), name_of(id), true));
    }
    let department_name =
        |id: i64| departments.iter().find(|d| d.id == id).map(|d| d.name.clone()).unwrap_or_else(|| id.to_string());
    let department_choices = departments
        .iter()
        .filter(|d| d.status.is_active() || d.id == ticket.department_id || d.id == shown.department_id)
        .map(|d| choice(d.id.to_string(), d.name.clone(), d.id == shown.department_id))
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
        last_message,
        seen_status: seen.status.as_str(),
        seen_assignee: seen.assignee_id.map(|id| id.to_string()).unwrap_or_default(),
        seen_priority: seen.priority.as_str(),
        seen_department: seen.department_id,
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
    form: Form<'_>,
) -> HttpResponse {
    let thread = match state.tickets.show(&visit.operator, id).await {
        Ok(t) => t,
        Err(TicketError::NotFound) => return not_found(),
        Err(e) => return failed(&e),
    };
    // What the live updates will compare: the stamp of what is shown.
    let stamp = thread.stamp();
    let zone = match state.tickets.zone_of(&visit.operator).await {
        Ok(z) => z,
        Err(e) => return failed(&e),
    };
    let others = match state.tickets.requesters_others(&visit.operator, &thread.ticket, OTHERS).await {
        Ok(o) => o,
        Err(e) => return failed(&e),
    };
    let v = match view(state, thread, others, zone, form.wanted).await {
        Ok(v) => v,
        Err(e) => return failed(&*e),
    };
    let present = match state.console.present(visit, id, !form.draft.trim().is_empty()).await {
        Ok(p) => present_lines(p),
        Err(e) => return failed(&e),
    };
    let huella = ticket_huella(&ticket_probe(&stamp, &present, state.clock.now()), v.last_message);
    let live = match live::render(&TicketLive { t: &T, v: &v, present }) {
        Ok(l) => l,
        Err(page) => return *page,
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
            pulse: format!("/consola/tickets/{id}/vivo"),
            huella,
            live,
            v,
            notice,
            warning: !status.is_success(),
            form,
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
    page(&state, &visit, id, StatusCode::OK, notice, Form::default()).await
}

/// `GET /consola/tickets/{id}/vivo` (`respondiendo=1` while the page's
/// reply box holds text): records the operator's presence and answers the
/// page's live part (204 when the page shows it already), moving the reply
/// form's newest message seen (`ultimo`) with the thread while its reply
/// box is empty.
pub async fn pulse<A: Adapters>(
    state: web::Data<WebState<A>>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let visit = match live::watcher(&state, &req).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let Some(id) = ticket_id(&path) else { return live::stop(T.live_gone) };
    let asked = params(&req);
    let answering = asked.get("respondiendo").is_some_and(|v| v == "1");
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "a ticket page's live update failed");
        HttpResponse::ServiceUnavailable().finish()
    };
    let stamp = match state.tickets.thread_stamp(&visit.operator, id).await {
        Ok(s) => s,
        Err(TicketError::NotFound) => return live::stop(T.live_gone),
        Err(e) => return unavailable(&helpdesk_domain::Report(&e)),
    };
    let present = match state.console.present(&visit, id, answering).await {
        Ok(p) => present_lines(p),
        Err(e) => return unavailable(&helpdesk_domain::Report(&e)),
    };
    let probe = ticket_probe(&stamp, &present, state.clock.now());
    // The newest message seen moves with the thread while the reply box is
    // empty; a message arriving while the operator writes stays "unseen",
    // so that the reply is held for a look at it ("Enviar de todos modos").
    let shown_last = asked.get("ultimo").and_then(|v| v.parse::<i64>().ok());
    let moved = |last: i64| {
        (!answering && shown_last != Some(last))
            .then(|| format!(r#"<input type="hidden" id="ultimo" name="ultimo" value="{last}" hx-swap-oob="true">"#))
    };
    let given = live::given(&req);
    if let Some((given_probe, given_last)) = given.split_once('.')
        && given_probe == probe
    {
        // Nothing changed since the page's last part, whose newest message
        // the fingerprint carries.
        return match given_last.parse::<i64>().ok().and_then(moved) {
            None => live::unchanged(),
            Some(ultimo) => live::part("", Some(ultimo), &given),
        };
    }
    let thread = match state.tickets.show(&visit.operator, id).await {
        Ok(t) => t,
        Err(TicketError::NotFound) => return live::stop(T.live_gone),
        Err(e) => return unavailable(&helpdesk_domain::Report(&e)),
    };
    // The stamp of what is shown (a change since the probe included).
    let probe = ticket_probe(&thread.stamp(), &present, state.clock.now());
    let zone = match state.tickets.zone_of(&visit.operator).await {
        Ok(z) => z,
        Err(e) => return unavailable(&helpdesk_domain::Report(&e)),
    };
    let v = match view(&state, thread, Vec::new(), zone, None).await {
        Ok(v) => v,
        Err(e) => return unavailable(&helpdesk_domain::Report(&*e)),
    };
    let huella = ticket_huella(&probe, v.last_message);
    match live::render(&TicketLive { t: &T, v: &v, present }) {
        Ok(live) => live::part(&live, moved(v.last_message), &huella),
        Err(answer) => *answer,
    }
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
    let kept = |held| Form { draft: &text, note: internal, held, ..Form::default() };
    let then = match form.get("despues").map(String::as_str).unwrap_or_default() {
        "" => None,
        other => match TicketStatus::parse(other) {
            Some(s) => Some(s),
            None => return page(state, &visit, id, StatusCode::UNPROCESSABLE_ENTITY, None, kept(false)).await,
        },
    };
    // The newest message the page showed (a form without it: no check).
    let seen_last = form.get("ultimo").and_then(|v| v.parse::<i64>().ok());
    let request = ReplyRequest { body: text.clone(), html: None, internal, cc: None, seen_last };
    match state.tickets.reply(&visit.operator, id, request).await {
        Ok(_) => {}
        Err(TicketError::InvalidReply) => {
            return page(state, &visit, id, StatusCode::UNPROCESSABLE_ENTITY, Some(T.empty_reply), kept(false)).await;
        }
        Err(TicketError::NewerMessages(_)) => {
            return page(state, &visit, id, StatusCode::CONFLICT, Some(T.newer_messages), kept(true)).await;
        }
        Err(TicketError::NotFound) => return not_found(),
        Err(e) => return failed(&e),
    }
    if let Some(status) = then {
        let change = ChangeRequest { status: Some(status), ..ChangeRequest::default() };
        match state.tickets.change(&visit.operator, id, change).await {
            Ok(_) | Err(TicketError::NothingToChange) => {}
            Err(TicketError::Conflict) => {
                return page(state, &visit, id, StatusCode::CONFLICT, Some(T.conflict), Form::default()).await;
            }
            Err(e) => return failed(&e),
        }
    }
    see_other(&format!("/consola/tickets/{id}?hecho={}", if internal { "nota" } else { "respuesta" }))
}

/// `POST /consola/tickets/{id}/cambios`: what the operator set apart from
/// what the page showed becomes one change; a field someone else changed
/// meanwhile is shown, not overwritten (409, "Aplicar de todos modos").
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
    let field = |name: &str| form.get(name).map(|v| v.trim().to_string()).unwrap_or_default();
    // The fields as the page showed them and as the operator set them.
    let fields = |prefix: &str| -> Option<TicketFields> {
        let assignee = match field(&format!("{prefix}asignado")).as_str() {
            "" => None,
            v => Some(v.parse::<i64>().ok()?),
        };
        Some(TicketFields {
            status: TicketStatus::parse(&field(&format!("{prefix}estado")))?,
            assignee_id: assignee,
            department_id: field(&format!("{prefix}departamento")).parse().ok()?,
            priority: Priority::parse(&field(&format!("{prefix}prioridad")))?,
        })
    };
    let (Some(seen), Some(wanted)) = (fields("visto_"), fields("")) else {
        return page(state, &visit, id, StatusCode::UNPROCESSABLE_ENTITY, None, Form::default()).await;
    };
    let retry = |clashed| Form { wanted: Some(wanted), clashed, ..Form::default() };
    let (notice, status, form) = match state.tickets.change_seen(&visit.operator, id, seen, wanted).await {
        Ok(_) => return see_other(&format!("/consola/tickets/{id}?hecho=cambios")),
        Err(TicketError::NothingToChange) => return see_other(&format!("/consola/tickets/{id}?hecho=nada")),
        Err(TicketError::ChangedMeanwhile(_)) => (T.changed_meanwhile, StatusCode::CONFLICT, retry(true)),
        Err(TicketError::InvalidAssignee) => (T.invalid_assignee, StatusCode::UNPROCESSABLE_ENTITY, retry(false)),
        Err(TicketError::InvalidDepartment) => (T.invalid_department, StatusCode::UNPROCESSABLE_ENTITY, retry(false)),
        Err(TicketError::Conflict) => (T.conflict, StatusCode::CONFLICT, Form::default()),
        Err(TicketError::NotFound) => return not_found(),
        Err(e) => return failed(&e),
    };
    page(state, &visit, id, status, Some(notice), form).await
}
