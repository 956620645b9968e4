//! Answers every page shares: rendering a template, a page that only says
//! something, a redirect, a failure; and reading a form or query string.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use helpdesk_domain::RepoError;
use helpdesk_domain::services::{AdminError, ConsoleError, SsoError, TicketError};

use crate::assets::{self, Scripts, Served};
use crate::texts::{T, Texts};

#[derive(Template)]
#[template(path = "mensaje.html")]
struct MessagePage {
    t: &'static Texts,
    css: &'static Served,
    js: &'static Scripts,
    title: &'static str,
    text: &'static str,
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

/// The query string's parameters.
pub(crate) fn params(req: &HttpRequest) -> HashMap<String, String> {
    fields(req.query_string().as_bytes())
}

/// A failure of the store or of a service: the page says so (503 when the
/// store could not be reached or stayed busy: try again; 500 otherwise),
/// the log says why.
pub(crate) fn failed(e: &(dyn std::error::Error + 'static)) -> HttpResponse {
    tracing::error!(error = %helpdesk_domain::Report(e), "console request failed");
    if store_unavailable(e) {
        message(StatusCode::SERVICE_UNAVAILABLE, T.error_title, T.unavailable)
    } else {
        message(StatusCode::INTERNAL_SERVER_ERROR, T.error_title, T.error)
    }
}

/// Whether `e` is, or wraps, the store being down or busy.
fn store_unavailable(e: &(dyn std::error::Error + 'static)) -> bool {
    let down = |r: &RepoError| matches!(r, RepoError::Unavailable(_) | RepoError::Busy(_));
    if let Some(r) = e.downcast_ref::<RepoError>() {
        return down(r);
    }
    match (e.downcast_ref::<ConsoleError>(), e.downcast_ref::<TicketError>(), e.downcast_ref::<AdminError>()) {
        (Some(ConsoleError::Store(r) | ConsoleError::Sso(SsoError::Store(r))), _, _) => down(r),
        (_, Some(TicketError::Store(r)), _) => down(r),
        (_, _, Some(AdminError::Store(r))) => down(r),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_down_is_503_and_a_fault_500() {
        let down = ConsoleError::Store(RepoError::Unavailable("pool timeout".into()));
        assert_eq!(failed(&down).status(), StatusCode::SERVICE_UNAVAILABLE);
        let busy = TicketError::Store(RepoError::Busy("deadlocks".into()));
        assert_eq!(failed(&busy).status(), StatusCode::SERVICE_UNAVAILABLE);
        let bug = TicketError::Store(RepoError::corrupt("unknown estado"));
        assert_eq!(failed(&bug).status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(failed(&RepoError::NotFound).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
