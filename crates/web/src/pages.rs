//! The console's pages: thin handlers that read the request, call one
//! service and render a template.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use askama::Template;
use chrono_tz::Tz;
use helpdesk_domain::model::{
    AssigneeFilter, Priority, SlaState, Ticket, TicketOrder, TicketStatus, Timestamp, UserFilter,
};
use helpdesk_domain::ports::Adapters;
use helpdesk_domain::services::{ConsoleError, ListRequest, SsoError, TicketCursor, Visit};

use crate::WebState;
use crate::assets::{self, Scripts, Served};
use crate::audit::{ActingUser, audited};
use crate::live;
use crate::render::{failed, fields, html, message, params, see_other};
use crate::session::{self, CSRF_FIELD, SESSION_COOKIE, SIGN_IN_COOKIE};
use crate::texts::{self, T, Texts};
use crate::when::{self, Shown};

/// Tickets per page of the queue.
const PAGE: i64 = 50;

#[derive(Template)]
#[template(path = "entrar.html")]
struct SignInPage<'a> {
    t: &'static Texts,
    css: &'static Served,
    js: &'static Scripts,
    csrf: &'a str,
    login: &'a str,
    message: Option<&'static str>,
    notice: Option<&'static str>,
}

struct Row {
    id: i64,
    subject: String,
    requester: String,
    department: String,
    priority: &'static str,
    assignee: String,
    status: &'static str,
    sla: &'static str,
    sla_class: &'static str,
    due: Option<Shown>,
    activity: Shown,
    /// Who else is writing a reply to it now.
    answering: Option<String>,
}

struct ViewLink {
    key: &'static str,
    label: &'static str,
    count: String,
    current: bool,
}

pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "tickets.html")]
struct QueuePage<'a> {
    t: &'static Texts,
    css: &'static Served,
    js: &'static Scripts,
    csrf: &'a str,
    operator_name: &'a str,
    view: &'static str,
    view_key: &'static str,
    text: &'a str,
    departments: Vec<Choice>,
    priorities: Vec<Choice>,
    assignees: Vec<Choice>,
    /// Where the page asks for its live part.
    pulse: String,
    /// The fingerprint of the probe read before the live part.
    huella: String,
    /// The live part, rendered.
    live: String,
}

/// The live session of the request, or the page to answer instead (the
/// sign-in page for a browser without one).
pub async fn visit<A: Adapters>(state: &WebState<A>, req: &HttpRequest) -> Result<Visit, HttpResponse> {
    let Some(key) = session::session_key(req) else {
        return Err(see_other("/consola/entrar"));
    };
    match state.console.resume(&key).await {
        Ok(v) => {
            req.extensions_mut().insert(ActingUser(v.operator.id()));
            Ok(v)
        }
        Err(ConsoleError::SignedOut | ConsoleError::NotAnOperator) => {
            let mut res = see_other("/consola/entrar?fin=1");
            let _ = res.add_removal_cookie(&state.site.removal(SESSION_COOKIE));
            Err(res)
        }
        Err(e) => Err(failed(&e)),
    }
}

/// `GET /consola/entrar`: the sign-in form, with a fresh token for it.
pub async fn sign_in_form<A: Adapters>(state: web::Data<WebState<A>>, req: HttpRequest) -> HttpResponse {
    let p = params(&req);
    let notice = if p.contains_key("fin") {
        Some(T.signed_out)
    } else if p.contains_key("clave") {
        Some(T.password_changed)
    } else {
        None
    };
    let token = session::new_sign_in_token();
    let page =
        SignInPage { t: &T, css: assets::css(), js: assets::js(), csrf: &token, login: "", message: None, notice };
    with_form_token(&state, html(StatusCode::OK, &page), token)
}

/// A page with a form posted before any session: its token goes in a
/// cookie too (double submit).
pub(crate) fn with_form_token<A: Adapters>(state: &WebState<A>, mut res: HttpResponse, token: String) -> HttpResponse {
    let _ = res.add_cookie(&state.site.cookie(SIGN_IN_COOKIE, token));
    res
}

/// Whether a form posted before any session carries the token of its cookie
/// and comes from the console's own origin.
pub(crate) fn form_token_ok<A: Adapters>(
    state: &WebState<A>,
    req: &HttpRequest,
    form: &HashMap<String, String>,
) -> bool {
    let given = form.get(CSRF_FIELD).map(String::as_str).unwrap_or_default();
    let expected = session::sign_in_token(req).unwrap_or_default();
    state.site.same_origin(req) && session::token_matches(&expected, given)
}

fn sign_in_page<A: Adapters>(
    state: &WebState<A>,
    status: StatusCode,
    login: &str,
    message: Option<&'static str>,
) -> HttpResponse {
    let token = session::new_sign_in_token();
    let page = SignInPage { t: &T, css: assets::css(), js: assets::js(), csrf: &token, login, message, notice: None };
    with_form_token(state, html(status, &page), token)
}

/// `POST /consola/entrar`: signs in through the SSO rules; a new session
/// key each time; one message for any wrong credential.
pub async fn sign_in<A: Adapters>(state: web::Data<WebState<A>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    audited(&state, &req, &body, signing_in(&state, &req, &body)).await
}

async fn signing_in<A: Adapters>(state: &WebState<A>, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let form = fields(body);
    if !form_token_ok(state, req, &form) {
        return message(StatusCode::FORBIDDEN, T.forbidden_title, T.forbidden);
    }
    let login = form.get("usuario").map(|s| s.trim()).unwrap_or_default();
    let password = form.get("contrasena").map(String::as_str).unwrap_or_default();
    if login.is_empty() || password.is_empty() {
        return sign_in_page(state, StatusCode::UNPROCESSABLE_ENTITY, login, Some(T.wrong_credentials));
    }
    let ip = (state.client_ip)(req).map(|ip| ip.to_string()).unwrap_or_default();
    match state.console.sign_in(login, password, &ip).await {
        Ok(signed) => {
            req.extensions_mut().insert(ActingUser(signed.operator.id()));
            let mut res = see_other("/consola/tickets");
            let _ = res.add_cookie(&state.site.cookie(SESSION_COOKIE, signed.key));
            let _ = res.add_removal_cookie(&state.site.removal(SIGN_IN_COOKIE));
            res
        }
        Err(ConsoleError::Sso(SsoError::InvalidCredentials | SsoError::UnknownProduct)) => {
            sign_in_page(state, StatusCode::UNAUTHORIZED, login, Some(T.wrong_credentials))
        }
        Err(ConsoleError::Sso(SsoError::Throttled { .. })) => {
            sign_in_page(state, StatusCode::TOO_MANY_REQUESTS, login, Some(T.throttled))
        }
        Err(ConsoleError::Sso(SsoError::NoProductAccess)) => {
            sign_in_page(state, StatusCode::FORBIDDEN, login, Some(T.no_access))
        }
        Err(ConsoleError::NotAnOperator) => sign_in_page(state, StatusCode::FORBIDDEN, login, Some(T.not_an_operator)),
        Err(e) => failed(&e),
    }
}

/// `POST /consola/salir`.
pub async fn sign_out<A: Adapters>(state: web::Data<WebState<A>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    audited(&state, &req, &body, signing_out(&state, &req, &body)).await
}

async fn signing_out<A: Adapters>(state: &WebState<A>, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let visit = match visit(state, req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let form = fields(body);
    let given = form.get(CSRF_FIELD).map(String::as_str).unwrap_or_default();
    if !state.site.same_origin(req) || !session::token_matches(&visit.session.csrf, given) {
        return message(StatusCode::FORBIDDEN, T.forbidden_title, T.forbidden);
    }
    if let Some(key) = session::session_key(req)
        && let Err(e) = state.console.sign_out(&key).await
    {
        return failed(&e);
    }
    let mut res = see_other("/consola/entrar");
    let _ = res.add_removal_cookie(&state.site.removal(SESSION_COOKIE));
    res
}

/// The queue's views, by their key in the URL.
const VIEWS: [&str; 7] = ["sin-asignar", "mios", "abiertos", "pendientes", "en-riesgo", "sla-vencido", "cerrados"];

fn view_label(key: &str) -> &'static str {
    match key {
        "sin-asignar" => T.view_unassigned,
        "mios" => T.view_mine,
        "pendientes" => T.view_pending,
        "en-riesgo" => T.view_at_risk,
        "sla-vencido" => T.view_breached,
        "cerrados" => T.view_closed,
        _ => T.view_open,
    }
}

/// Counts are exact up to this; beyond, "999+".
const COUNT_CAP: i64 = 1000;

fn view_request(key: &str) -> ListRequest {
    let open = Some(TicketStatus::Open);
    match key {
        "sin-asignar" => ListRequest { status: open, assignee: AssigneeFilter::Nobody, ..ListRequest::default() },
        "mios" => ListRequest { status: open, assigned_to_me: true, ..ListRequest::default() },
        "pendientes" => ListRequest { status: Some(TicketStatus::Pending), ..ListRequest::default() },
        "en-riesgo" => ListRequest { sla: Some(SlaState::AtRisk), ..ListRequest::default() },
        // What is overdue now (a running clock past its next due time): a
        // range of `ix_ticket_vencimiento`, where "breached for good" would
        // read every ticket ever answered late.
        "sla-vencido" => ListRequest { overdue: true, ..ListRequest::default() },
        "cerrados" => ListRequest { status: Some(TicketStatus::Closed), ..ListRequest::default() },
        _ => ListRequest { status: open, ..ListRequest::default() },
    }
}

/// The queue's parameters, as the URL gives them.
struct QueueQuery {
    view_key: &'static str,
    department: Option<i64>,
    priority: Option<Priority>,
    assignee: Option<AssigneeFilter>,
    text: String,
    cursor: Option<String>,
    /// The filters as given (for the links that keep them).
    given: Vec<(&'static str, String)>,
}

impl QueueQuery {
    fn of(req: &HttpRequest) -> Self {
        let p = params(req);
        let get = |k: &str| p.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let view_key = VIEWS.into_iter().find(|k| Some(*k) == get("vista")).unwrap_or("abiertos");
        let given = ["departamento", "prioridad", "asignado"]
            .into_iter()
            .filter_map(|k| get(k).map(|v| (k, v.to_string())))
            .collect();
        QueueQuery {
            view_key,
            department: get("departamento").and_then(|v| v.parse::<i64>().ok()),
            priority: get("prioridad").and_then(Priority::parse),
            assignee: match get("asignado") {
                Some("nadie") => Some(AssigneeFilter::Nobody),
                Some(v) => v.parse::<i64>().ok().map(AssigneeFilter::User),
                None => None,
            },
            text: get("q").unwrap_or_default().chars().take(200).collect(),
            cursor: get("desde").map(str::to_string),
            given,
        }
    }

    /// `path` with this view, filters and search, from `cursor`.
    fn link(&self, path: &str, cursor: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("vista", self.view_key);
        for (k, v) in &self.given {
            q.append_pair(k, v);
        }
        if !self.text.is_empty() {
            q.append_pair("q", &self.text);
        }
        if let Some(c) = cursor {
            q.append_pair("desde", c);
        }
        format!("{path}?{}", q.finish())
    }
}

/// The part of the queue that updates itself: the views with their
/// counts, the rows (with who is answering each), the next page's link.
#[derive(Template)]
#[template(path = "tickets_vivo.html")]
struct QueueLive {
    t: &'static Texts,
    views: Vec<ViewLink>,
    rows: Vec<Row>,
    next: Option<String>,
}

/// What the queue's live part depends on, read cheaply (the views' counts
/// are kept `consola.counts_cache_ms`): the newest ticket, message and
/// event ids of all tickets, the counts, who is answering which ticket, the
/// minute. Read before the part, so that a change between the two shows at
/// the next request.
async fn queue_probe<A: Adapters>(
    state: &WebState<A>,
    visit: &Visit,
    q: &QueueQuery,
) -> Result<(String, Vec<ViewLink>), HttpResponse> {
    let stamp = state.tickets.activity_stamp().await.map_err(|e| failed(&e))?;
    let answering = state.console.answering_now(visit).await.map_err(|e| failed(&e))?;
    let mut views = Vec::new();
    for key in VIEWS {
        let count = match state.tickets.count(&visit.operator, view_request(key), COUNT_CAP).await {
            Ok(n) if n >= COUNT_CAP => "999+".to_string(),
            Ok(n) => n.to_string(),
            Err(e) => return Err(failed(&e)),
        };
        views.push(ViewLink { key, label: view_label(key), count, current: key == q.view_key });
    }
    let counts: Vec<&str> = views.iter().map(|v| v.count.as_str()).collect();
    let probe = format!("{stamp:?}|{counts:?}|{answering:?}|{}", live::minute(state.clock.now()));
    Ok((live::fingerprint(&probe), views))
}

/// The queue's live part for `visit` (with the views' counts read by the
/// probe), and the names it resolved.
async fn queue_live<A: Adapters>(
    state: &WebState<A>,
    visit: &Visit,
    q: &QueueQuery,
    views: Vec<ViewLink>,
) -> Result<(QueueLive, Names), HttpResponse> {
    let mut list = view_request(q.view_key);
    list.department_id = q.department;
    list.priority = q.priority;
    if let Some(a) = q.assignee {
        list.assignee = a;
    }
    list.text = Some(q.text.clone()).filter(|t| !t.is_empty());
    list.order = TicketOrder::LatestActivity;
    list.cursor = q.cursor.as_deref().and_then(|v| TicketCursor::decode(v, TicketOrder::LatestActivity));
    list.limit = PAGE;
    let page = state.tickets.list(&visit.operator, list).await.map_err(|e| failed(&e))?;
    let names = names(state, visit, &page.tickets).await.map_err(|e| failed(&*e))?;
    let zone = state.tickets.zone_of(&visit.operator).await.map_err(|e| failed(&e))?;
    let ids: Vec<i64> = page.tickets.iter().map(|t| t.id).collect();
    let answering = state.console.answering(visit, &ids).await.map_err(|e| failed(&e))?;
    let now = state.clock.now();
    let rows = page.tickets.iter().map(|t| row(t, &names, answering.get(&t.id), now, zone)).collect();
    let next = page.next.map(|cursor| q.link("/consola/tickets", Some(&cursor.encode())));
    Ok((QueueLive { t: &T, views, rows, next }, names))
}

/// `GET /consola/tickets`: a view of the tickets the operator may see
/// ("Abiertos" unless another is chosen), each view with its count,
/// filtered by department, priority, assignee and the search's words,
/// latest activity first, a page at a time (`desde=` the list's cursor).
pub async fn queue<A: Adapters>(state: web::Data<WebState<A>>, req: HttpRequest) -> HttpResponse {
    let visit = match visit(&state, &req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let q = QueueQuery::of(&req);
    let (huella, views) = match queue_probe(&state, &visit, &q).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let (live, names) = match queue_live(&state, &visit, &q, views).await {
        Ok(l) => l,
        Err(page) => return page,
    };
    let live = match live::render(&live) {
        Ok(l) => l,
        Err(page) => return *page,
    };
    let (department, priority, assignee) = (q.department, q.priority, q.assignee);
    let choice = |value: String, label: String, selected: bool| Choice { value, label, selected };
    let mut departments = vec![choice(String::new(), T.any.into(), department.is_none())];
    departments.extend(
        names.departments.iter().map(|(id, name)| choice(id.to_string(), name.clone(), Some(*id) == department)),
    );
    let mut priorities = vec![choice(String::new(), T.any.into(), priority.is_none())];
    priorities.extend(
        Priority::ALL.into_iter().map(|p| choice(p.as_str().into(), texts::priority(p).into(), Some(p) == priority)),
    );
    let mut assignees = vec![
        choice(String::new(), T.any.into(), assignee.is_none()),
        choice("nadie".into(), T.nobody.into(), assignee == Some(AssigneeFilter::Nobody)),
    ];
    assignees.extend(
        names
            .users
            .iter()
            .map(|(id, name)| choice(id.to_string(), name.clone(), assignee == Some(AssigneeFilter::User(*id)))),
    );
    let name = visit.operator.user.name.clone();
    html(
        StatusCode::OK,
        &QueuePage {
            t: &T,
            css: assets::css(),
            js: assets::js(),
            csrf: &visit.session.csrf,
            operator_name: &name,
            view: view_label(q.view_key),
            view_key: q.view_key,
            text: &q.text,
            departments,
            priorities,
            assignees,
            pulse: q.link("/consola/vivo", q.cursor.as_deref()),
            huella,
            live,
        },
    )
}

/// `GET /consola/vivo`: the queue's live part, as the page with the same
/// parameters would show it (204 while its probe is the page's).
pub async fn queue_pulse<A: Adapters>(state: web::Data<WebState<A>>, req: HttpRequest) -> HttpResponse {
    let visit = match live::watcher(&state, &req).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let q = QueueQuery::of(&req);
    let Ok((huella, views)) = queue_probe(&state, &visit, &q).await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    if live::given(&req) == huella {
        return live::unchanged();
    }
    let Ok((part, _)) = queue_live(&state, &visit, &q, views).await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    match live::render(&part) {
        Ok(live) => live::part(&live, None, &huella),
        Err(answer) => *answer,
    }
}

/// Departments' and assignees' names for a page of tickets.
struct Names {
    departments: BTreeMap<i64, String>,
    users: BTreeMap<i64, String>,
}

async fn names<A: Adapters>(
    state: &WebState<A>,
    visit: &Visit,
    tickets: &[Ticket],
) -> Result<Names, Box<dyn std::error::Error + Send + Sync>> {
    // The departments the operator may see (a lead: all).
    let departments = state
        .admin
        .departments()
        .await?
        .into_iter()
        .filter(|d| visit.operator.sees_all() || Some(d.id) == visit.operator.user.department_id)
        .map(|d| (d.id, d.name))
        .collect();
    let mut users = BTreeMap::new();
    let mut wanted: std::collections::BTreeSet<i64> = tickets.iter().map(|t| t.department_id).collect();
    wanted.extend(visit.operator.user.department_id);
    for department_id in wanted {
        let filter = UserFilter { department_id: Some(department_id), ..UserFilter::default() };
        for u in state.directory.find_users(filter).await? {
            users.insert(u.id, u.name);
        }
    }
    Ok(Names { departments, users })
}

fn row(t: &Ticket, names: &Names, answering: Option<&Vec<String>>, now: Timestamp, zone: Tz) -> Row {
    let state = t.sla.map(|c| c.state(now));
    let due = t.sla.and_then(|c| c.next_due()).map(|at| when::due(now, at, zone));
    let activity = when::local(t.updated_at, zone);
    Row {
        sla: state.map_or(T.sla_none, texts::sla),
        sla_class: state.map_or("sin_sla", SlaState::as_str),
        due,
        id: t.id,
        subject: t.subject.clone(),
        requester: t.requester.clone(),
        department: names.departments.get(&t.department_id).cloned().unwrap_or_else(|| t.department_id.to_string()),
        priority: texts::priority(t.priority),
        assignee: match t.assignee_id {
            None => T.unassigned.to_string(),
            Some(id) => names.users.get(&id).cloned().unwrap_or_else(|| id.to_string()),
        },
        status: texts::status(t.status),
        activity,
        answering: answering.map(|who| who.join(", ")),
    }
}
