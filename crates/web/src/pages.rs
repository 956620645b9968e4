//! The console's pages: thin handlers that read the request, call one
//! service and render a template.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use askama::Template;
use helpdesk_domain::model::{Ticket, TicketStatus, UserFilter};
use helpdesk_domain::ports::Store;
use helpdesk_domain::services::{ConsoleError, ListRequest, SsoError, TicketCursor, Visit};

use crate::WebState;
use crate::assets::{self, Served};
use crate::audit::{ActingUser, audited};
use crate::session::{self, CSRF_FIELD, SESSION_COOKIE, SIGN_IN_COOKIE};
use crate::texts::{self, T, Texts};

/// Tickets per page of the queue.
const PAGE: i64 = 50;

#[derive(Template)]
#[template(path = "entrar.html")]
struct SignInPage<'a> {
    t: &'static Texts,
    css: &'static Served,
    js: &'static Served,
    csrf: &'a str,
    login: &'a str,
    message: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "mensaje.html")]
struct MessagePage {
    t: &'static Texts,
    css: &'static Served,
    js: &'static Served,
    title: &'static str,
    text: &'static str,
}

struct Row {
    id: i64,
    subject: String,
    requester: String,
    department: String,
    priority: &'static str,
    assignee: String,
    status: &'static str,
    activity: String,
    activity_iso: String,
}

#[derive(Template)]
#[template(path = "tickets.html")]
struct QueuePage<'a> {
    t: &'static Texts,
    css: &'static Served,
    js: &'static Served,
    csrf: &'a str,
    operator_name: &'a str,
    view: &'static str,
    rows: Vec<Row>,
    next: Option<i64>,
}

pub(crate) fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body),
        Err(e) => {
            tracing::error!(error = %helpdesk_domain::Report(&e), "a console page did not render");
            HttpResponse::InternalServerError().content_type("text/plain; charset=utf-8").body(T.error)
        }
    }
}

/// A page that only says something (403, 404, 500, 503).
pub(crate) fn message(status: StatusCode, title: &'static str, text: &'static str) -> HttpResponse {
    html(status, &MessagePage { t: &T, css: assets::css(), js: assets::js(), title, text })
}

pub(crate) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((LOCATION, to.to_string())).finish()
}

/// The form's fields (`application/x-www-form-urlencoded`).
pub(crate) fn fields(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// A failure of the store or of a service: the page says so, the log says why.
pub(crate) fn failed(e: &(dyn std::error::Error + 'static)) -> HttpResponse {
    tracing::error!(error = %helpdesk_domain::Report(e), "console request failed");
    message(StatusCode::SERVICE_UNAVAILABLE, T.error_title, T.unavailable)
}

/// The live session of the request, or the page to answer instead (the
/// sign-in page for a browser without one).
pub async fn visit<S: Store>(state: &WebState<S>, req: &HttpRequest) -> Result<Visit, HttpResponse> {
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
pub async fn sign_in_form<S: Store>(state: web::Data<WebState<S>>, req: HttpRequest) -> HttpResponse {
    let ended = req.query_string().split('&').any(|p| p == "fin=1");
    sign_in_page(&state, StatusCode::OK, "", ended.then_some(T.signed_out))
}

fn sign_in_page<S: Store>(
    state: &WebState<S>,
    status: StatusCode,
    login: &str,
    message: Option<&'static str>,
) -> HttpResponse {
    let token = session::new_sign_in_token();
    let page = SignInPage { t: &T, css: assets::css(), js: assets::js(), csrf: &token, login, message };
    let mut res = html(status, &page);
    let _ = res.add_cookie(&state.site.cookie(SIGN_IN_COOKIE, token));
    res
}

/// `POST /consola/entrar`: signs in through the SSO rules; a new session
/// key each time; one message for any wrong credential.
pub async fn sign_in<S: Store>(state: web::Data<WebState<S>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    audited(&state, &req, &body, signing_in(&state, &req, &body)).await
}

async fn signing_in<S: Store>(state: &WebState<S>, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let form = fields(body);
    let given = form.get(CSRF_FIELD).map(String::as_str).unwrap_or_default();
    let expected = session::sign_in_token(req).unwrap_or_default();
    if !state.site.same_origin(req) || !session::token_matches(&expected, given) {
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
pub async fn sign_out<S: Store>(state: web::Data<WebState<S>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    audited(&state, &req, &body, signing_out(&state, &req, &body)).await
}

async fn signing_out<S: Store>(state: &WebState<S>, req: &HttpRequest, body: &[u8]) -> HttpResponse {
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

/// `GET /consola/tickets`: the open tickets the operator may see, newest
/// first, a page at a time (`?antes=ID`).
pub async fn queue<S: Store>(state: web::Data<WebState<S>>, req: HttpRequest) -> HttpResponse {
    let visit = match visit(&state, &req).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let before = req
        .query_string()
        .split('&')
        .find_map(|p| p.strip_prefix("antes="))
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v > 0);
    let list = ListRequest {
        status: Some(TicketStatus::Open),
        cursor: before.map(TicketCursor::Before),
        limit: PAGE,
        ..ListRequest::default()
    };
    let page = match state.tickets.list(&visit.operator, list).await {
        Ok(p) => p,
        Err(e) => return failed(&e),
    };
    let names = match names(&state, &page.tickets).await {
        Ok(n) => n,
        Err(e) => return failed(&*e),
    };
    let rows = page.tickets.iter().map(|t| row(t, &names)).collect();
    let next = match page.next {
        Some(TicketCursor::Before(id)) => Some(id),
        _ => None,
    };
    let name = visit.operator.user.name.clone();
    html(
        StatusCode::OK,
        &QueuePage {
            t: &T,
            css: assets::css(),
            js: assets::js(),
            csrf: &visit.session.csrf,
            operator_name: &name,
            view: T.view_open,
            rows,
            next,
        },
    )
}

/// Departments' and assignees' names for a page of tickets.
struct Names {
    departments: BTreeMap<i64, String>,
    users: BTreeMap<i64, String>,
}

async fn names<S: Store>(
    state: &WebState<S>,
    tickets: &[Ticket],
) -> Result<Names, Box<dyn std::error::Error + Send + Sync>> {
    let departments = state.admin.departments().await?.into_iter().map(|d| (d.id, d.name)).collect();
    let mut users = BTreeMap::new();
    let wanted: std::collections::BTreeSet<i64> = tickets.iter().map(|t| t.department_id).collect();
    for department_id in wanted {
        let filter = UserFilter { department_id: Some(department_id), ..UserFilter::default() };
        for u in state.directory.find_users(filter).await? {
            users.insert(u.id, u.name);
        }
    }
    Ok(Names { departments, users })
}

fn row(t: &Ticket, names: &Names) -> Row {
    Row {
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
        activity: t.updated_at.format("%Y-%m-%d %H:%M").to_string(),
        activity_iso: t.updated_at.and_utc().to_rfc3339(),
    }
}
